package redisstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Retry safety. go-redis sends a command again (MaxRetries, 3 by default)
// when the connection fails after the command was written: the server may
// have run the script already. (A caller that calls again after an error
// makes a new call, with a new token: that is not recognised.) Update, Activate and Load are safe to
// run twice (they write the same values and never move activity back).
// Create, Delete and DeleteUser are not: a second run would report "ID
// already in use", "not found" or no sessions, and lose the first run's
// evictions and endings. So each of those calls carries an op token, unique
// to the call and the same on every resend, in the name of a reply key in
// the slot of its script (KEYS[2]: P{k}:r:<token>). The script first looks
// for that key and, when it exists, returns what it holds; otherwise it
// does its work and leaves its reply there for replyTTL:
//
//   - Create stores its reply, packed by cmsgpack (3 bytes when it evicted
//     nothing, plus the evicted records);
//   - Delete renames the session's hash to the reply key instead of
//     deleting it (nothing is copied; the record is freed when the key
//     expires);
//   - DeleteUser stores the records it removed, packed, when there were any.
//
// A resend later than replyTTL after the first run is not recognised.
const replyTTL = 2 * time.Minute

// replyMillis is replyTTL in milliseconds, for the scripts' text.
var replyMillis = strconv.FormatInt(replyTTL.Milliseconds(), 10)

// replied starts a script whose reply is kept in KEYS[2]: a resend returns
// the kept reply; otherwise the script returns reply(v), which keeps v.
var replied = `
local done = redis.call('GET', KEYS[2])
if done then return cmsgpack.unpack(done) end
local function reply(v)
  redis.call('SET', KEYS[2], cmsgpack.pack(v), 'PX', ` + replyMillis + `)
  return v
end
`

// newOpBase returns the random start of a Store's op tokens (a counter
// follows), so that a token costs no system call and no two Stores share
// one.
func newOpBase() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "."
}

// replyKey returns a fresh reply key in shard k's slot.
func (s *Store) replyKey(k string) string {
	n := s.ops.Add(1)
	return s.key(k, "r:"+s.opBase+strconv.FormatUint(n, 36))
}

// A call that failed with anything but an answer (a connection lost after
// every resend, a timeout) may have run on the server all the same. Its
// reply key is kept, by what the call acted on ("c:"/"d:" and the session
// hash, "u:" and the user hash), so that the next call on the same
// session or user from this Store, a caller's retry, uses it again and gets
// the first run's reply: a logout retried after a lost reply returns the
// ended record, and its hooks run, instead of "not found". A call takes the
// key out while it runs, so two concurrent calls never share one.

// unanswered is a failed call's reply key and when it was made.
type unanswered struct {
	key string
	at  time.Time
}

// maxUnanswered bounds the failed calls a Store remembers.
const maxUnanswered = 4096

// takeReplyKey returns the reply key of the last unanswered call on what,
// if it is recent enough to be recognised by the server, or a fresh one in
// shard k's slot.
func (s *Store) takeReplyKey(what, k string) string {
	s.mu.Lock()
	u, ok := s.unanswered[what]
	delete(s.unanswered, what)
	s.mu.Unlock()
	if ok && time.Since(u.at) < replyTTL-10*time.Second {
		return u.key
	}
	return s.replyKey(k)
}

// settleReplyKey records how a call that used key ended: when err is not an
// answer from the server (nil, redis.Nil, or an error reply), the key is
// kept for the next call on what.
func (s *Store) settleReplyKey(what, key string, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return
	}
	s.mu.Lock()
	if len(s.unanswered) >= maxUnanswered {
		clear(s.unanswered)
	}
	if _, ok := s.unanswered[what]; !ok {
		s.unanswered[what] = unanswered{key: key, at: time.Now()}
	}
	s.mu.Unlock()
}
