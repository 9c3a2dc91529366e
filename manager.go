package sessions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Option configures a Manager.
type Option func(*options)

type options struct {
	store   Store
	log     *slog.Logger
	onError func(http.ResponseWriter, *http.Request, error)
	web     webOptions // web.go
}

// WithStore sets the store. The default is a new MemoryStore of the
// manager's own.
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithLogger sets the logger. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithErrorHandler sets what the Middleware does when the store fails or
// the request's session ended while the request ran: it gets the error and
// must write the response (see DefaultErrorHandler for the default).
func WithErrorHandler(f func(http.ResponseWriter, *http.Request, error)) Option {
	return func(o *options) { o.onError = f }
}

// Manager creates, finds and ends sessions, and expires idle ones in the
// background. Its methods are safe for concurrent use. Close it when done:
// it owns a goroutine for the hooks and, unless disabled, one for sweeps.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	onError func(http.ResponseWriter, *http.Request, error)
	cookies *cookieCodec
	mem     *MemoryStore // the store, when it is a MemoryStore
	memSh   *sharedState // the memory store: what its sessions share (see Session.logger)
	b       backend
	hooks   *hookRunner
	keeper  *claimKeeper // holds a shared store's claims; nil with the memory store
	retry   *retrier     // finishes a shared store's unanswered calls; nil with the memory store
	web     webState     // web.go: token header, one-time warnings
	placer  Placer       // the store, when it places session IDs

	closed  atomic.Bool
	closing chan struct{} // closed when Close starts: sweeps stop waiting for hooks
	// guard is held for reading by every operation that may end sessions,
	// so that Close can wait for them before it drains the hooks.
	guard     sync.RWMutex
	closeOnce sync.Once
	stopSweep context.CancelFunc
	sweepDone chan struct{}

	stats counters
}

type counters struct {
	created, rejected, invalidCookies, storeErrors atomic.Uint64
	ended                                          [len(reasonNames)]atomic.Uint64
}

// NewManager validates cfg, fills in its defaults and returns a Manager.
// It starts the background sweeper unless cfg.DisableAutoCleanup is set.
// Errors wrap ErrInvalidConfig and name the setting at fault. With no Keys,
// a memory-store manager signs with a random key made now; a shared store
// without Keys is an error, since other processes must verify its cookies.
func NewManager(cfg Config, opts ...Option) (*Manager, error) {
	o := options{log: slog.Default(), onError: DefaultErrorHandler}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.log == nil {
		o.log = slog.Default()
	}
	if o.onError == nil {
		o.onError = DefaultErrorHandler
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	mem, isMem := o.store.(*MemoryStore)
	if o.store == nil || (isMem && mem == nil) {
		mem, isMem = NewMemoryStore(), true
	}
	keys := slices.Clone(cfg.Keys)
	if len(keys) == 0 {
		if !isMem {
			return nil, fmt.Errorf("%w: Keys: a shared store needs signing keys that every process shares", ErrInvalidConfig)
		}
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("sessions: making a signing key: %w", err)
		}
		keys = [][]byte{k}
	}
	cfg.Keys = keys

	var keeper *claimKeeper
	var retry *retrier
	var claims claimHolder
	if !isMem {
		keeper = newClaimKeeper(o.store, o.log)
		retry = newRetrier(o.log)
		claims = keeper
	}
	m := &Manager{
		cfg:     cfg,
		log:     o.log,
		onError: o.onError,
		cookies: newCookieCodec(cfg.Cookie, keys),
		hooks:   newHookRunner(o.log, claims),
		keeper:  keeper,
		closing: make(chan struct{}),
		retry:   retry,
		web:     webState{webOptions: o.web},
	}
	if isMem {
		m.mem = mem
		m.memSh = &sharedState{log: o.log, closed: &m.closed}
		mem.attach()
		m.b = &memBackend{st: mem, cfg: &m.cfg}
	} else {
		sealer, err := newIDSealer(keys)
		if err != nil {
			m.hooks.close()
			m.keeper.close()
			m.retry.close()
			return nil, fmt.Errorf("sessions: %w", err)
		}
		m.b = &storeBackend{st: o.store, cfg: &m.cfg, sealer: sealer, log: o.log, closed: &m.closed}
		m.placer, _ = o.store.(Placer)
		m.cookies.verified = make([]atomic.Uint64, verifiedSlots)
	}
	if !cfg.DisableAutoCleanup {
		ctx, cancel := context.WithCancel(context.Background())
		m.stopSweep, m.sweepDone = cancel, make(chan struct{})
		go m.sweeper(ctx)
	}
	return m, nil
}

// enter starts an operation that may end sessions; the caller must call
// m.guard.RUnlock after it. It fails once the manager is closed.
func (m *Manager) enter() error {
	m.guard.RLock()
	if m.closed.Load() {
		m.guard.RUnlock()
		return ErrClosed
	}
	return nil
}

// Create starts a session for userID ("" for an anonymous one) holding a
// copy of data, enforcing Config.MaxSessionsPerUser atomically: with
// EvictOldest it ends the user's least recently active session
// (ReasonEvicted); with RejectNew it returns ErrLimitReached and creates
// nothing. Every value in data must be one Session.Set accepts, on every
// store; otherwise the error wraps ErrUnsupportedValue and names the key.
func (m *Manager) Create(ctx context.Context, userID string, data map[string]any) (*Session, error) {
	return m.create(ctx, userID, data, nil)
}

// newID returns a new random session ID (UUID version 4, from
// crypto/rand) for a session of userID, placed by the store when it is a
// Placer.
func (m *Manager) newID(userID string) (uuid.UUID, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return id, fmt.Errorf("sessions: making a session ID: %w", err)
	}
	if m.placer != nil {
		v := m.placer.PlaceID(userID, uint16(id[0])<<8|uint16(id[1]))
		id[0], id[1] = byte(v>>8), byte(v)
	}
	return id, nil
}

// endLater ends session id in the background (retry.go) after a call
// (what: "create" or "end") that got no answer, and fires the hooks of the
// ending the store reports; nothing with the memory store.
func (m *Manager) endLater(what string, id uuid.UUID, reason Reason) {
	if m.retry == nil {
		return
	}
	m.retry.add(what+" "+logID(id.String()), func(ctx context.Context) bool {
		ev, err := m.b.end(ctx, id, reason, time.Now())
		if err == nil {
			m.fire(ev)
		}
		return !unanswered(err)
	})
}

func (m *Manager) create(ctx context.Context, userID string, data map[string]any, info *clientInfo) (*Session, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.guard.RUnlock()
	id, err := m.newID(userID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if err := checkData(data); err != nil {
		return nil, err
	}
	s := &Session{id: id, userID: userID, created: now.UnixNano(), idle: m.cfg.IdleTimeout, info: info, sh: m.memSh}
	if m.cfg.AbsoluteTimeout > 0 {
		s.absolute = now.Add(m.cfg.AbsoluteTimeout).UnixNano()
	}
	s.last.Store(now.UnixNano())
	s.setData(data)
	ended, err := m.b.create(ctx, s, now)
	m.fire(ended...)
	switch {
	case errors.Is(err, ErrLimitReached):
		m.stats.rejected.Add(1)
		return nil, err
	case err != nil:
		if unanswered(err) { // it may exist all the same: end it
			m.endLater("create", id, ReasonTerminated)
		}
		return nil, m.storeErr("create", err)
	}
	m.stats.created.Add(1)
	return s, nil
}

// Get returns the live session id without recording activity. An unknown,
// malformed, ended or expired ID is ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	return m.get(ctx, id, false)
}

// Touch records activity on the session id now. It returns ErrNotFound as
// Get does.
func (m *Manager) Touch(ctx context.Context, id string) error {
	_, err := m.get(ctx, id, true)
	return err
}

func (m *Manager) get(ctx context.Context, id string, touch bool) (*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	uid, err := parseID(id)
	if err != nil {
		return nil, err
	}
	s, err := m.b.get(ctx, uid, touch, time.Now())
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, m.storeErr("get", err)
	}
	return s, err
}

// UserSessions returns the live sessions of userID, in no set order; none is
// an empty slice and no error.
func (m *Manager) UserSessions(ctx context.Context, userID string) ([]*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	ss, err := m.b.userSessions(ctx, userID, time.Now())
	if err != nil {
		return nil, m.storeErr("user sessions", err)
	}
	return ss, nil
}

// All returns every live session in the store, in no set order.
func (m *Manager) All(ctx context.Context) ([]*Session, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	ss, err := m.b.all(ctx, time.Now())
	if err != nil {
		return nil, m.storeErr("all", err)
	}
	return ss, nil
}

// Terminate ends the session id (ReasonTerminated); ErrNotFound if it is
// not live.
func (m *Manager) Terminate(ctx context.Context, id string) error {
	uid, err := parseID(id)
	if err != nil {
		if m.closed.Load() {
			return ErrClosed
		}
		return err
	}
	return m.end(ctx, uid, ReasonTerminated)
}

// end ends the session id for reason.
func (m *Manager) end(ctx context.Context, id uuid.UUID, reason Reason) error {
	if err := m.enter(); err != nil {
		return err
	}
	defer m.guard.RUnlock()
	ev, err := m.b.end(ctx, id, reason, time.Now())
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		if unanswered(err) { // it may have ended all the same: finish it
			m.endLater("end", id, reason)
		}
		return m.storeErr("end", err)
	}
	m.fire(ev)
	return nil
}

// TerminateUser ends every session of userID (ReasonTerminated) and returns
// how many; a user with none is (0, nil).
func (m *Manager) TerminateUser(ctx context.Context, userID string) (int, error) {
	if err := m.enter(); err != nil {
		return 0, err
	}
	defer m.guard.RUnlock()
	evs, err := m.b.endUser(ctx, userID, ReasonTerminated, time.Now())
	m.fire(evs...)
	if err != nil {
		return len(evs), m.storeErr("terminate user", err)
	}
	return len(evs), nil
}

// Cleanup ends every session that has expired (ReasonIdle or
// ReasonAbsolute), as the background sweeper does, and returns how many it
// ended. It returns once the termination hooks of those sessions have run;
// called from a hook, it returns at once instead, and their hooks run after
// the calling hook returns.
func (m *Manager) Cleanup(ctx context.Context) (int, error) {
	if err := m.enter(); err != nil {
		return 0, err
	}
	n, err := m.sweep(ctx)
	m.guard.RUnlock()
	m.hooks.wait()
	return n, err
}

// Stats describes the store and this manager's work.
type Stats struct {
	ActiveSessions int  // live sessions in the whole store (all managers sharing it)
	UniqueUsers    int  // distinct users among them; anonymous sessions count as none
	AutoCleanup    bool // the background sweeper is running

	Created        uint64            // sessions this manager created
	Rejected       uint64            // creations this manager refused (RejectNew)
	InvalidCookies uint64            // requests whose session cookie did not verify
	StoreErrors    uint64            // store calls that failed
	Ended          map[Reason]uint64 // endings this manager handled, by reason
	Err            error             // set when the store could not be counted
}

// Stats returns the store's counts and this manager's counters. After Close
// it still answers, with AutoCleanup false.
func (m *Manager) Stats() Stats {
	st := Stats{
		AutoCleanup:    m.stopSweep != nil && !m.closed.Load(),
		Created:        m.stats.created.Load(),
		Rejected:       m.stats.rejected.Load(),
		InvalidCookies: m.stats.invalidCookies.Load(),
		StoreErrors:    m.stats.storeErrors.Load(),
		Ended:          make(map[Reason]uint64),
	}
	for r := ReasonLogout; r <= ReasonShutdown; r++ {
		if n := m.stats.ended[r].Load(); n > 0 {
			st.Ended[r] = n
		}
	}
	st.ActiveSessions, st.UniqueUsers, st.Err = m.b.count(context.Background(), time.Now())
	return st
}

// OnTerminate registers hook to run for every session that ends, whatever
// ends it. Hooks run one at a time on a goroutine of the manager's, in the
// order sessions ended, never on the request path nor under a store lock. A
// hook that panics is logged and the others still run. When several managers
// share a store, each ending runs the hooks of exactly one of them.
func (m *Manager) OnTerminate(hook func(Event)) {
	if hook != nil {
		m.hooks.add(hook)
	}
}

// Close stops the sweeper and waits for every pending hook. With the memory
// store, the last manager using it ends every live session
// (ReasonShutdown); a shared store keeps its sessions for other processes.
// After Close, methods that read or change sessions return ErrClosed. Close
// is idempotent and returns nil. Called from a hook, it does not wait for
// the hooks (the pending ones run after the calling hook returns).
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.closing)
		if m.stopSweep != nil {
			m.stopSweep() // a sweep in progress stops at its next batch
		}
		m.guard.Lock() // wait for operations in flight
		m.guard.Unlock()
		if m.stopSweep != nil {
			<-m.sweepDone
		}
		if m.retry != nil {
			m.retry.close() // before the hooks: it may fire some
		}
		if mb, ok := m.b.(*memBackend); ok && mb.st.detach() {
			m.fire(mb.shutdown(time.Now())...)
		}
		if m.keeper != nil && m.hooks.inHook() {
			// Close from a hook: the keeper must outlive the hooks queued
			// behind this one, to acknowledge their claims.
			m.hooks.enqueue(hookJob{after: m.keeper.close})
			m.hooks.close()
		} else {
			m.hooks.close()
			if m.keeper != nil {
				m.keeper.close() // after the hooks: it acknowledges their claims
			}
		}
	})
	return nil
}

// fire queues the hooks of ended sessions.
func (m *Manager) fire(evs ...Event) {
	if len(evs) > 0 {
		m.hooks.enqueue(m.jobs(evs)...)
	}
}

func (m *Manager) jobs(evs []Event) []hookJob {
	m.countEnded(evs)
	jobs := make([]hookJob, len(evs))
	for i, ev := range evs {
		jobs[i] = hookJob{ev: ev}
	}
	return jobs
}

// countEnded adds evs to the counts of endings by reason.
func (m *Manager) countEnded(evs []Event) {
	var n [len(reasonNames)]uint64
	for _, ev := range evs {
		n[ev.Reason]++
	}
	for r, c := range n {
		if c > 0 {
			m.stats.ended[r].Add(c)
		}
	}
}

func (m *Manager) storeErr(op string, err error) error {
	if errors.Is(err, ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	m.stats.storeErrors.Add(1)
	return fmt.Errorf("sessions: store %s: %w", op, err)
}

// logID returns a short, one-way tag of a session ID for logs; a raw ID is
// never logged.
func logID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:4])
}
