package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokyopredictor/sessions"
)

var _ sessions.Store = (*Store)(nil)

// Defaults of the options.
const (
	DefaultPrefix      = "sessions:"
	DefaultShards      = 16
	DefaultLease       = 5 * time.Minute
	DefaultGrace       = time.Hour
	DefaultTouchWindow = 0.05
	DefaultSweepBatch  = 500
	DefaultSeen        = 1 << 16
)

// Option configures a Store; pass options to New.
type Option func(*options)

type options struct {
	prefix      string
	shards      int
	shardsSet   bool // WithShards was given
	lease       time.Duration
	grace       time.Duration
	touchWindow float64
	sweepBatch  int
	seen        int
	now         func() time.Time
	wait        waitOption // durability.go
}

// WithPrefix sets the prefix of every key the store writes; the default is
// "sessions:". Stores with different prefixes share nothing. The prefix must
// not contain '{' or '}' (they would break the hash tags).
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// WithShards sets how many groups (hash slots on Redis Cluster) the store
// spreads users over; the default (or 0) is 16, or DefaultClusterShards
// (60) on a Cluster client, whose shards are spread evenly over the slots;
// the maximum is 4096. Every process sharing the store must use the same
// number: changing it orphans the sessions already stored.
func WithShards(n int) Option { return func(o *options) { o.shards, o.shardsSet = n, true } }

// WithLease sets how long a session claimed by Expired stays claimed
// without Ack before a later Expired returns it again (the claimer is then
// presumed dead). It must exceed the time a manager needs to run the
// termination hooks of one batch of claims, or their hooks run twice; the
// default is five minutes. A shorter lease hands the endings of a crashed
// process to another sooner.
func WithLease(d time.Duration) Option { return func(o *options) { o.lease = d } }

// WithGrace sets how long Redis keeps a session past its deadline (or past
// the end of its lease, once claimed) before the key's TTL drops it
// silently. It is a safety net so that no key lives forever; sweepers
// normally end sessions long before. Its default is one hour.
func WithGrace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithTouchWindow sets, as a fraction of a session's IdleTimeout, how far
// the stored last activity may lag behind before Activate writes it again.
// It must be between 0 (write on every request) and 0.05, the default.
func WithTouchWindow(fraction float64) Option { return func(o *options) { o.touchWindow = fraction } }

// WithSweepBatch sets how many expired sessions one server-side script
// claims at most; Expired runs as many scripts as it needs. Smaller batches
// block the server for less time. The default is 500.
func WithSweepBatch(n int) Option { return func(o *options) { o.sweepBatch = n } }

// WithSeen sets how many sessions' stored activity a Store remembers, so
// that Activate knows when no activity write can be due and reads with a
// plain HGETALL instead of a script (see Activate). The default,
// DefaultSeen, remembers 65,536 sessions in about 3 MiB; a process that
// serves more live sessions than it remembers reads many of them with the
// script (about 2.5× the server's CPU of the HGETALL). 0 remembers none.
// It must not exceed 1<<26.
func WithSeen(n int) Option { return func(o *options) { o.seen = n } }

// WithClock sets the clock the store reads for methods that receive no time
// from their caller (Load, Delete, DeleteUser, UserSessions, All); the
// default is time.Now. Every process sharing the store should have clocks
// within a small fraction of the idle timeout of each other.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Store is a sessions.Store kept in Redis, shared by any number of managers
// in any number of processes. Create it with New. Its methods are safe for
// concurrent use. See the package documentation for the key layout and what
// each method guarantees.
type Store struct {
	c       redis.UniversalClient
	o       options
	cluster bool
	topo    *reloader // on Cluster: reloads the slot map (topology.go)
	base    []any     // ARGV[1..4] of every script
	shardID []string
	rotate  atomic.Uint32
	// The op tokens of Create, Delete and DeleteUser (retry.go): a random
	// base and a counter.
	opBase string
	ops    atomic.Uint64

	// The reply keys of calls that got no answer (retry.go).
	mu         sync.Mutex
	unanswered map[string]unanswered
	// What this Store last saw of sessions' stored activity (touchDue),
	// under a lock of its own: every read takes it.
	seenMu sync.Mutex
	seen   map[[16]byte]seenAt
}

// New returns a Store that keeps sessions through client, which may be a
// standalone, Sentinel (failover) or Cluster client. It does not contact
// the server. It returns an error for an invalid option.
func New(client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	o := options{
		prefix:      DefaultPrefix,
		lease:       DefaultLease,
		grace:       DefaultGrace,
		touchWindow: DefaultTouchWindow,
		sweepBatch:  DefaultSweepBatch,
		seen:        DefaultSeen,
		now:         time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.shardsSet {
		o.shards = defaultShards(client)
	}
	switch {
	case strings.ContainsAny(o.prefix, "{}"):
		return nil, fmt.Errorf("redisstore: prefix %q contains a brace", o.prefix)
	case o.shards < 1 || o.shards > 4096:
		return nil, fmt.Errorf("redisstore: shards %d not in [1, 4096]", o.shards)
	case o.lease < time.Millisecond:
		return nil, fmt.Errorf("redisstore: lease %v shorter than 1ms", o.lease)
	case o.grace < time.Millisecond:
		return nil, fmt.Errorf("redisstore: grace %v shorter than 1ms", o.grace)
	case !(o.touchWindow >= 0 && o.touchWindow <= 0.05):
		return nil, fmt.Errorf("redisstore: touch window %v not in [0, 0.05]", o.touchWindow)
	case o.seen < 0 || o.seen > 1<<26:
		return nil, fmt.Errorf("redisstore: seen %d not in [0, 1<<26]", o.seen)
	case o.sweepBatch < 1:
		return nil, fmt.Errorf("redisstore: sweep batch %d < 1", o.sweepBatch)
	case o.now == nil:
		return nil, errors.New("redisstore: nil clock")
	case o.wait.check() != nil:
		return nil, o.wait.check()
	}
	_, cluster := client.(*redis.ClusterClient)
	s := &Store{c: client, o: o, cluster: cluster, unanswered: make(map[string]unanswered), seen: make(map[[16]byte]seenAt)}
	if cluster {
		s.topo = newReloader(client.(*redis.ClusterClient))
	}
	s.base = []any{o.prefix, o.shards, o.grace.Milliseconds(), layoutVersion}
	s.opBase = newOpBase()
	s.shardID = make([]string, o.shards)
	for i := range s.shardID {
		s.shardID[i] = strconv.Itoa(i)
	}
	if cluster {
		s.shardID = clusterTags(o.shards) // spread evenly over the slots
	}
	return s, nil
}

// layoutVersion is ARGV[4] of every script: the version of the key layout
// (2: a session's shard is read off its ID; version 1 kept pointer keys).
// No script reads it; it names the layout in MONITOR output.
const layoutVersion = "2"

// ErrUnplacedID is returned by Create for a session of a user whose ID was
// not placed for that user (see PlaceID): such a session could not be
// found from its ID. A Manager places every ID it makes.
var ErrUnplacedID = errors.New("redisstore: session ID not placed for its user (see Store.PlaceID)")

// errNotFound is what methods return for an ID with no live session.
var errNotFound = fmt.Errorf("redisstore: %w", sessions.ErrNotFound)

// hashID returns the hex hash that stands for a session ID in Redis.
func hashID(id string) string {
	sum := hashSum(id)
	return hex.EncodeToString(sum[:])
}

// hashSum returns the hash of a session ID, as bytes: the first 128 bits
// of its SHA-256.
func hashSum(id string) (h [16]byte) {
	sum := sha256.Sum256([]byte(id))
	copy(h[:], sum[:16])
	return h
}

// hashUser returns the hex hash that stands for a user ID in Redis.
func hashUser(userID string) string {
	sum := sha256.Sum256([]byte("user\x00" + userID))
	return hex.EncodeToString(sum[:16])
}

// shardOf returns the shard of a hex string (a user hash, or a session ID,
// which starts with the hex of its first 16 bits): those 16 bits modulo the
// number of shards. ok is false when s does not start with 4 hex digits.
func (s *Store) shardOf(h string) (k string, ok bool) {
	if len(h) < 4 {
		return "", false
	}
	v, err := strconv.ParseUint(h[:4], 16, 16)
	if err != nil {
		return "", false
	}
	return s.shardID[int(v)%s.o.shards], true
}

// userShard returns the shard of a user hash.
func (s *Store) userShard(uh string) string {
	k, _ := s.shardOf(uh)
	return k
}

// PlaceID implements sessions.Placer: the first 16 bits of a session ID of
// a user are congruent to the first 16 bits of the user's hash modulo the
// number of shards, so that the session lives in its user's shard (one
// hash slot on Cluster: the user's limit is enforced in one atomic step)
// and is found from its ID alone. Of the 16 drawn bits, the quotient by
// the number of shards stays random (12 bits with 16 shards, 10 with 60).
// An anonymous session's ID keeps all its drawn bits. A cookie therefore
// tells which shard its user is in, and nothing else about the user.
func (s *Store) PlaceID(userID string, drawn uint16) uint16 {
	if userID == "" {
		return drawn
	}
	uh := hashUser(userID)
	want, _ := strconv.ParseUint(uh[:4], 16, 16)
	n := s.o.shards
	v := int(drawn) - int(drawn)%n + int(want)%n
	if v > 0xffff {
		v -= n
	}
	return uint16(v)
}

func (s *Store) key(k, suffix string) string {
	return s.o.prefix + "{" + k + "}:" + suffix
}

// args returns the common script arguments followed by more.
func (s *Store) args(more ...any) []any {
	a := make([]any, 0, len(s.base)+len(more))
	return append(append(a, s.base...), more...)
}

// micros returns t in whole microseconds since the Unix epoch, rounded
// down, as the scripts compare times.
func micros(t time.Time) int64 {
	ns := t.UnixNano()
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us
}

// Create implements sessions.Store. rec must carry SealedID (the Manager
// fills it): the store keeps no raw ID. The ID of a session with a user
// must be placed for that user (PlaceID: the Manager does it), or Create
// returns ErrUnplacedID. On RejectNew at the limit it
// returns the expired records it removed together with an error wrapping
// sessions.ErrLimitReached. It reads the store's clock (WithClock) to tell
// which of the user's records expired.
func (s *Store) Create(ctx context.Context, rec sessions.Record, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	if rec.ID == "" {
		return nil, errors.New("redisstore: create: empty session ID")
	}
	if len(rec.SealedID) == 0 {
		// The store keeps no raw IDs: without the sealed one, what it
		// returns could not be matched to a session.
		return nil, errors.New("redisstore: create: record without SealedID")
	}
	h := hashID(rec.ID)
	k, ok := s.shardOf(rec.ID)
	if !ok {
		return nil, fmt.Errorf("redisstore: create: session ID %.8q… does not start with 4 hex digits", rec.ID)
	}
	uh := ""
	if rec.UserID != "" {
		uh = hashUser(rec.UserID)
		if s.userShard(uh) != k {
			return nil, ErrUnplacedID
		}
	}
	return s.create(ctx, rec, k, h, uh, limit, policy)
}

// create adds rec, whose ID hashes to h, in shard k (its user's, whose
// hash is uh).
func (s *Store) create(ctx context.Context, rec sessions.Record, k, h, uh string, limit int, policy sessions.LimitPolicy) ([]sessions.Record, error) {
	dl := micros(rec.Deadline())
	au := micros(rec.LastActivity)
	pol := "e"
	if policy == sessions.RejectNew {
		pol = "r"
	}
	if limit < 0 {
		limit = 0
	}
	now := micros(s.o.now())
	args := s.args(k, h, uh, now, limit, pol, dl, au)
	args = appendFields(args, uh, &rec)
	rk := s.takeReplyKey("c:"+h, k)
	res, err := s.run(ctx, true, createScript, []string{s.key(k, "e"), rk}, args...).Slice()
	s.settleReplyKey("c:"+h, rk, err)
	if err != nil {
		return nil, fmt.Errorf("redisstore: create: %w", err)
	}
	removed, _, err := decodeRecords(res[1])
	if err != nil {
		return nil, fmt.Errorf("redisstore: create: %w", err)
	}
	added, _ := res[0].(int64)
	if added == 0 {
		return removed, fmt.Errorf("redisstore: create: %w", sessions.ErrLimitReached)
	}
	return removed, nil
}

// appendFields appends the field/value pairs that store rec. The scripts
// read the microseconds of the activity, idle timeout and absolute
// deadline from "a", "it" and "ad" (usLua); empty strings are not stored.
func appendFields(args []any, uh string, rec *sessions.Record) []any {
	args = append(args,
		"sid", rec.SealedID,
		"uid", rec.UserID,
		"uh", uh,
		"c", nanos(rec.CreatedAt),
		"a", nanos(rec.LastActivity),
		"it", int64(rec.IdleTimeout),
		"dl", micros(rec.Deadline()),
	)
	for _, f := range [...]struct{ name, v string }{
		{"ad", nanos(rec.AbsoluteDeadline)}, {"ua", rec.UserAgent}, {"ra", rec.RemoteAddr},
	} {
		if f.v != "" {
			args = append(args, f.name, f.v)
		}
	}
	for name, v := range rec.Values {
		args = append(args, valuePrefix+name, v)
	}
	return args
}

// valuePrefix starts the hash field of each session value.
const valuePrefix = "v:"

func nanos(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// Load implements sessions.Store: one HGETALL.
func (s *Store) Load(ctx context.Context, id string) (sessions.Record, error) {
	return s.load(ctx, "load", id, s.o.now(), false)
}

// Activate and Update judge liveness at the time of the call, by the
// store's clock (WithClock), and record activity at their at argument: a
// session that expired before the call is not found, whatever at says.

// Activate implements sessions.Store in one round trip: one HGETALL when
// this Store knows the stored activity is recent enough, else a script
// that reads the record and writes the activity when it is due.
func (s *Store) Activate(ctx context.Context, id string, at time.Time) (sessions.Record, error) {
	rec, err := s.load(ctx, "activate", id, at, true)
	if err == nil {
		rec.LastActivity = at
	}
	return rec, err
}

// load reads the record of id. A plain HGETALL needs no script: a record
// is live while its hash exists (Delete and Expired rename it away in one
// step) and its deadline "dl" is after the time of the call. Activate
// must also write the activity when the stored one lags at by the touch
// window, in the same round trip, so it runs activateScript unless this
// Store saw the session's stored activity (it only moves forward) recent
// enough that no write can be due (see seen).
func (s *Store) load(ctx context.Context, op, id string, at time.Time, activate bool) (sessions.Record, error) {
	k, ok := s.shardOf(id)
	if !ok {
		return sessions.Record{}, errNotFound
	}
	sum := hashSum(id)
	h := hex.EncodeToString(sum[:])
	now := at // Load passes the store's clock as at
	if activate {
		now = s.o.now()
	}
	atus := micros(at)
	var rec sessions.Record
	var f stored
	if !activate || !s.touchDue(sum, atus) {
		fields, err := s.c.HGetAll(ctx, s.key(k, "s:"+h)).Result()
		if err != nil {
			return sessions.Record{}, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		if rec, f, err = decodeMap(fields); err != nil {
			return sessions.Record{}, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		if f.dl <= micros(now) {
			return sessions.Record{}, errNotFound // gone (no fields) or expired
		}
	} else {
		res, err := activateScript.Run(ctx, s.c, []string{s.key(k, "e")},
			s.args(h, k, atus, at.UnixNano(), s.o.touchWindow, micros(now))...).Text()
		if errors.Is(err, redis.Nil) {
			return sessions.Record{}, errNotFound
		}
		if err != nil {
			return sessions.Record{}, fmt.Errorf("redisstore: %s: %w", op, err)
		}
		if rec, f, err = decodePacked(res); err != nil {
			return sessions.Record{}, fmt.Errorf("redisstore: %s: %w", op, err)
		}
	}
	s.saw(sum, f.au, int64(rec.IdleTimeout/time.Microsecond))
	return rec, nil
}

// seenAt is what a Store last saw of a session: its stored activity and
// its idle timeout, in microseconds.
type seenAt struct{ au, itu int64 }

// touchDue reports whether an activity write at atus may be due for the
// session whose ID hashes to h: always, unless this Store saw the
// session's stored activity within the touch window before atus. The
// stored activity never moves back, so a write this Store thinks not due
// is not due, whichever process wrote last.
func (s *Store) touchDue(h [16]byte, atus int64) bool {
	s.seenMu.Lock()
	v, ok := s.seen[h]
	s.seenMu.Unlock()
	return !ok || atus > v.au && float64(atus-v.au) >= float64(v.itu)*s.o.touchWindow
}

// saw records the stored activity au of the session whose ID hashes to h.
func (s *Store) saw(h [16]byte, au, itu int64) {
	s.seenMu.Lock()
	if v, ok := s.seen[h]; !ok || au > v.au {
		if !ok && len(s.seen) >= s.o.seen {
			clear(s.seen) // full (WithSeen): start over
		}
		if s.o.seen > 0 {
			s.seen[h] = seenAt{au: au, itu: itu}
		}
	}
	s.seenMu.Unlock()
}

// Update implements sessions.Store in one round trip: it writes only the
// given keys, so concurrent updates of different keys lose nothing, and it
// never recreates a session that is gone. It writes the activity as
// Activate does: when the stored one lags at by the touch window or more.
func (s *Store) Update(ctx context.Context, id string, at time.Time, set map[string][]byte, del []string) error {
	k, ok := s.shardOf(id)
	if !ok {
		return errNotFound
	}
	args := s.args(hashID(id), k, micros(s.o.now()), micros(at), strconv.FormatInt(at.UnixNano(), 10), s.o.touchWindow, len(set))
	for name, v := range set {
		args = append(args, valuePrefix+name, v)
	}
	for _, name := range del {
		args = append(args, valuePrefix+name)
	}
	err := updateScript.Run(ctx, s.c, []string{s.key(k, "e")}, args...).Err()
	if errors.Is(err, redis.Nil) {
		return errNotFound
	}
	if err != nil {
		return fmt.Errorf("redisstore: update: %w", err)
	}
	return nil
}

// Delete implements sessions.Store.
func (s *Store) Delete(ctx context.Context, id string) (sessions.Record, error) {
	k, ok := s.shardOf(id)
	if !ok {
		return sessions.Record{}, errNotFound
	}
	h := hashID(id)
	rk := s.takeReplyKey("d:"+h, k)
	res, err := s.run(ctx, true, deleteScript, []string{s.key(k, "e"), rk}, s.args(h, k, micros(s.o.now()))...).Slice()
	s.settleReplyKey("d:"+h, rk, err)
	if errors.Is(err, redis.Nil) {
		return sessions.Record{}, errNotFound
	}
	if err != nil {
		return sessions.Record{}, fmt.Errorf("redisstore: delete: %w", err)
	}
	rec, _, err := decodeRecord(res)
	if err != nil {
		return sessions.Record{}, fmt.Errorf("redisstore: delete: %w", err)
	}
	return rec, nil
}

// DeleteUser implements sessions.Store. Sessions of the user that expired
// but were not yet swept are left to Expired.
func (s *Store) DeleteUser(ctx context.Context, userID string) ([]sessions.Record, error) {
	recs, err := s.user(ctx, userID, true)
	if err != nil {
		return nil, fmt.Errorf("redisstore: delete user: %w", err)
	}
	return recs, nil
}

// UserSessions implements sessions.Store.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]sessions.Record, error) {
	recs, err := s.user(ctx, userID, false)
	if err != nil {
		return nil, fmt.Errorf("redisstore: user sessions: %w", err)
	}
	return recs, nil
}

func (s *Store) user(ctx context.Context, userID string, del bool) ([]sessions.Record, error) {
	if userID == "" {
		return nil, nil
	}
	uh := hashUser(userID)
	k := s.userShard(uh)
	mode, keys := "0", []string{s.key(k, "u:"+uh)}
	if del {
		mode, keys = "1", append(keys, s.takeReplyKey("u:"+uh, k))
	}
	res, err := s.run(ctx, del, userScript, keys, s.args(k, uh, micros(s.o.now()), mode)...).Slice()
	if del {
		s.settleReplyKey("u:"+uh, keys[1], err)
	}
	if err != nil {
		return nil, err
	}
	recs, _, err := decodeRecords(res)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs, nil
}

// All implements sessions.Store. Its work is proportional to the number of
// live sessions; it runs one script per shard group.
func (s *Store) All(ctx context.Context) ([]sessions.Record, error) {
	now := micros(s.o.now())
	var all []sessions.Record
	err := s.eachGroup(func(shards []string) error {
		res, err := scanScript.Run(ctx, s.c, s.shardKeys(shards, "e"), s.args(appendShards([]any{now, "a"}, shards)...)...).Slice()
		if err != nil {
			return err
		}
		recs, _, err := decodeRecords(res)
		all = append(all, recs...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: all: %w", err)
	}
	return all, nil
}

// Count implements sessions.Store. It checks every live entry against its
// record (so a key deleted behind the store's back is not counted and its
// index entry is dropped): its work is proportional to the number of live
// sessions.
func (s *Store) Count(ctx context.Context, now time.Time) (int, int, error) {
	var n, users int64
	err := s.eachGroup(func(shards []string) error {
		res, err := scanScript.Run(ctx, s.c, s.shardKeys(shards, "e"), s.args(appendShards([]any{micros(now), "c"}, shards)...)...).Int64Slice()
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("unexpected reply %v", res)
		}
		n += res[0]
		users += res[1]
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("redisstore: count: %w", err)
	}
	return int(n), int(users), nil
}

// eachGroup calls f with all shards at once, or on Cluster with one shard
// at a time (a script must stay within one hash slot there).
func (s *Store) eachGroup(f func(shards []string) error) error {
	if !s.cluster {
		return f(s.shardID)
	}
	for _, k := range s.shardID {
		if err := f([]string{k}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) shardKeys(shards []string, suffix string) []string {
	keys := make([]string, len(shards))
	for i, k := range shards {
		keys[i] = s.key(k, suffix)
	}
	return keys
}

func appendShards(args []any, shards []string) []any {
	for _, k := range shards {
		args = append(args, k)
	}
	return args
}

// Expired implements sessions.Store. Claimed sessions stay in Redis under a
// lease (WithLease) until Ack; Extend renews it; a claim neither
// acknowledged nor extended in time is returned again, under a new token, by
// a later call. A claim's token ("<shard>:<hash>:<nonce>") names where the
// claim lives and which call made it, so Ack and Extend need no key and no
// memory of this Store. The work is proportional to what is due, plus a
// constant per shard.
func (s *Store) Expired(ctx context.Context, now time.Time, max int) ([]sessions.Record, error) {
	if max <= 0 {
		return nil, nil
	}
	// Start at a different shard each time so that a small max does not
	// starve the last shards.
	start := int(s.rotate.Add(1)) % s.o.shards
	order := make([]string, 0, s.o.shards)
	order = append(append(order, s.shardID[start:]...), s.shardID[:start]...)
	nowus := micros(now)
	leaseEnd := time.UnixMicro(nowus).Add(s.o.lease)
	var out []sessions.Record
	step := func(shards []string) error {
		for len(out) < max {
			want := min(max-len(out), s.o.sweepBatch)
			nonce := newNonce()
			keys := append(s.shardKeys(shards, "e"), s.shardKeys(shards, "l")...)
			args := appendShards([]any{nowus, want, int64(s.o.lease / time.Microsecond), nonce}, shards)
			res, err := s.run(ctx, true, expiredScript, keys, s.args(args...)...).Slice()
			if err != nil {
				return err
			}
			recs, fs, err := decodeRecords(res)
			if err != nil {
				return err
			}
			for i, f := range fs {
				if f.k == "" {
					return errors.New("claimed record without its shard")
				}
				recs[i].Claim = f.k + ":" + f.h + ":" + nonce
				recs[i].LeaseEnd = leaseEnd
			}
			out = append(out, recs...)
			if len(recs) < want {
				return nil
			}
		}
		return nil
	}
	var err error
	if s.cluster {
		for _, k := range order {
			if err = step([]string{k}); err != nil || len(out) >= max {
				break
			}
		}
	} else {
		err = step(order)
	}
	if err != nil {
		// Whatever was claimed before the failure is returned too, so that
		// the caller handles it instead of waiting for the lease.
		return out, fmt.Errorf("redisstore: expired: %w", err)
	}
	return out, nil
}

// newNonce returns 64 random bits in hex, naming one claiming call.
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Ack implements sessions.Store: it forgets the claims whose endings were
// handled. Claims unknown, acknowledged already or handed out again under
// another token are ignored.
func (s *Store) Ack(ctx context.Context, claims []string) error {
	if _, err := s.claims(ctx, "a", 0, claims); err != nil {
		return fmt.Errorf("redisstore: ack: %w", err)
	}
	return nil
}

// Extend implements sessions.Store: claims still held under their tokens
// are held for another lease (WithLease) from now, and returned.
func (s *Store) Extend(ctx context.Context, claims []string, now time.Time) ([]string, time.Time, error) {
	until := time.UnixMicro(micros(now)).Add(s.o.lease)
	held, err := s.claims(ctx, "e", micros(until), claims)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("redisstore: extend: %w", err)
	}
	return held, until, nil
}

// claims runs claimScript in mode "a" (ack) or "e" (extend until untilus)
// on the well-formed tokens among claims, one script per shard group, and
// returns the tokens it acted on.
func (s *Store) claims(ctx context.Context, mode string, untilus int64, claims []string) ([]string, error) {
	type group struct {
		tokens  []string
		triples []any
	}
	byShard := make(map[string]*group)
	for _, c := range claims {
		k, h, nonce, ok := parseClaim(c, s.isShard)
		if !ok {
			continue
		}
		g := byShard[k]
		if g == nil {
			g = &group{}
			byShard[k] = g
		}
		g.tokens = append(g.tokens, c)
		g.triples = append(g.triples, k, h, nonce)
	}
	var done []string
	run := func(keys []string, g *group) error {
		pos, err := s.run(ctx, true, claimScript, keys, s.args(append([]any{mode, untilus}, g.triples...)...)...).Int64Slice()
		for _, i := range pos {
			if i >= 0 && int(i) < len(g.tokens) {
				done = append(done, g.tokens[i])
			}
		}
		return err
	}
	if !s.cluster {
		if len(byShard) == 0 {
			return nil, nil
		}
		all := &group{}
		var keys []string
		for k, g := range byShard {
			keys = append(keys, s.key(k, "l"))
			all.tokens = append(all.tokens, g.tokens...)
			all.triples = append(all.triples, g.triples...)
		}
		return done, run(keys, all)
	}
	var err error
	for k, g := range byShard {
		err = errors.Join(err, run([]string{s.key(k, "l")}, g))
	}
	return done, err
}

// parseClaim splits a claim token made by Expired; ok is false for a token
// this store could not have made.
func parseClaim(c string, isShard func(string) bool) (k, h, nonce string, ok bool) {
	k, rest, ok1 := strings.Cut(c, ":")
	h, nonce, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || !isShard(k) || !isHex(h, 32) || !isHex(nonce, 16) {
		return "", "", "", false
	}
	return k, h, nonce, true
}

// isHex reports whether s is n lower-case hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// stored holds the script-side fields of a decoded record.
type stored struct {
	h, k   string // the session's hash and, from Expired, its shard
	au, dl int64
}

// decodeRecords decodes a list of records as the scripts return them,
// each with its hash ("h") and, from expiredScript, its shard ("k"), which
// it returns beside them.
func decodeRecords(v any) ([]sessions.Record, []stored, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("unexpected reply %T", v)
	}
	recs := make([]sessions.Record, 0, len(list))
	fs := make([]stored, 0, len(list))
	for _, item := range list {
		fields, ok := item.([]any)
		if !ok {
			return nil, nil, fmt.Errorf("unexpected reply %T", item)
		}
		rec, f, err := decodeRecord(fields)
		if err == nil && f.h == "" {
			err = errors.New("record without hash")
		}
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, rec)
		fs = append(fs, f)
	}
	return recs, fs, nil
}

// decodeRecord decodes the reply of HGETALL on a session hash.
func decodeRecord(fields []any) (sessions.Record, stored, error) {
	var d recordDecoder
	if len(fields)%2 != 0 {
		return d.rec, d.f, errors.New("odd number of fields in record")
	}
	for i := 0; i < len(fields); i += 2 {
		name, _ := fields[i].(string)
		val, _ := fields[i+1].(string)
		d.field(name, val, nil)
	}
	return d.finish()
}

// decodeMap decodes the reply of HGETALL on a session hash, as go-redis
// returns it; an empty map (no such key) decodes to a zero record.
func decodeMap(fields map[string]string) (sessions.Record, stored, error) {
	var d recordDecoder
	for name, val := range fields {
		d.field(name, val, nil)
	}
	return d.finish()
}

// decodePacked decodes what cmsgpack.pack makes of a session hash (a
// MessagePack map of strings, or an array of fields and values). Decoding
// it costs one allocation for the byte values of the record instead of one
// per field.
func decodePacked(p string) (sessions.Record, stored, error) {
	var d recordDecoder
	n, p, err := unpackHeader(p)
	if err != nil {
		return d.rec, d.f, err
	}
	if n%2 != 0 {
		return d.rec, d.f, errors.New("odd number of fields in record")
	}
	// The byte values (SealedID and Values) are capped slices of one copy
	// of the reply, so that appending to one never writes into another.
	buf := []byte(p)
	for range n / 2 {
		var name, val string
		if name, p, err = unpackString(p); err != nil {
			return d.rec, d.f, err
		}
		if val, p, err = unpackString(p); err != nil {
			return d.rec, d.f, err
		}
		end := len(buf) - len(p) // val is buf[end-len(val):end]
		d.field(name, val, buf[end-len(val):end:end])
	}
	if p != "" {
		return d.rec, d.f, errors.New("trailing bytes after record")
	}
	return d.finish()
}

// unpackHeader reads the header of a MessagePack array or map, in the
// forms cmsgpack writes, and returns how many elements follow (two per
// map entry) and what follows.
func unpackHeader(p string) (int, string, error) {
	n, h, pairs := -1, 0, false
	switch {
	case p == "":
	case p[0]&0xf0 == 0x90: // fixarray
		n, h = int(p[0]&0x0f), 1
	case p[0]&0xf0 == 0x80: // fixmap
		n, h, pairs = int(p[0]&0x0f), 1, true
	case (p[0] == 0xdc || p[0] == 0xde) && len(p) >= 3: // array 16, map 16
		n, h, pairs = int(p[1])<<8|int(p[2]), 3, p[0] == 0xde
	case (p[0] == 0xdd || p[0] == 0xdf) && len(p) >= 5: // array 32, map 32
		n, h, pairs = int(p[1])<<24|int(p[2])<<16|int(p[3])<<8|int(p[4]), 5, p[0] == 0xdf
	}
	if n < 0 {
		return 0, "", errors.New("bad packed record")
	}
	if pairs {
		n *= 2
	}
	return n, p[h:], nil
}

// unpackString reads a MessagePack string, in the forms cmsgpack writes,
// and returns it (a substring of p) and what follows.
func unpackString(p string) (string, string, error) {
	n, h := -1, 0
	switch {
	case p == "":
	case p[0]&0xe0 == 0xa0: // fixstr
		n, h = int(p[0]&0x1f), 1
	case p[0] == 0xd9 && len(p) >= 2: // str 8
		n, h = int(p[1]), 2
	case p[0] == 0xda && len(p) >= 3: // str 16
		n, h = int(p[1])<<8|int(p[2]), 3
	case p[0] == 0xdb && len(p) >= 5: // str 32
		n, h = int(p[1])<<24|int(p[2])<<16|int(p[3])<<8|int(p[4]), 5
	}
	if n < 0 || len(p)-h < n {
		return "", "", errors.New("bad packed record")
	}
	return p[h : h+n], p[h+n:], nil
}

// recordDecoder fills a record from the fields of its hash.
type recordDecoder struct {
	rec sessions.Record
	f   stored
	err error
}

// field decodes one field; raw, when not nil, holds val's bytes and may be
// kept by the record.
func (d *recordDecoder) field(name, val string, raw []byte) {
	own := func() []byte {
		if raw != nil {
			return raw
		}
		return []byte(val)
	}
	if v, ok := strings.CutPrefix(name, valuePrefix); ok {
		if d.rec.Values == nil {
			d.rec.Values = make(map[string][]byte)
		}
		d.rec.Values[v] = own()
		return
	}
	switch name {
	case "h":
		d.f.h = val
	case "k":
		d.f.k = val
	case "sid":
		d.rec.SealedID = own()
	case "uid":
		d.rec.UserID = val
	case "c":
		d.rec.CreatedAt = d.time(val)
	case "a":
		d.rec.LastActivity = d.time(val)
	case "dl":
		d.f.dl = d.num(val)
	case "it":
		d.rec.IdleTimeout = time.Duration(d.num(val))
	case "ad":
		d.rec.AbsoluteDeadline = d.time(val)
	case "ua":
		d.rec.UserAgent = val
	case "ra":
		d.rec.RemoteAddr = val
	}
}

func (d *recordDecoder) num(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("bad number %q in record", s)
	}
	return n
}

func (d *recordDecoder) time(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return time.Unix(0, d.num(s))
}

func (d *recordDecoder) finish() (sessions.Record, stored, error) {
	if !d.rec.LastActivity.IsZero() {
		d.f.au = micros(d.rec.LastActivity)
	}
	return d.rec, d.f, d.err
}
