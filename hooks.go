package sessions

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// hookRunner runs termination hooks on one goroutine of its own, in the
// order sessions ended, off the request path and outside every store lock.
// A hook that panics is logged; the others still run.
type hookRunner struct {
	log    *slog.Logger
	claims claimHolder // the claims of a shared store's sweeps; nil with the memory store

	mu     sync.Mutex
	cond   sync.Cond
	hooks  []func(Event) // replaced, never changed in place
	queue  []hookJob
	closed bool
	done   chan struct{} // closed when the goroutine has stopped
	gid    atomic.Uint64 // the goroutine's ID (goid.go), so that a hook's own calls never wait for it
}

// hookJob is one ended session's event, with the store's claim on it when
// a shared store's sweep ended it, and what to call after its hooks ran; a
// job with only after set is a barrier.
type hookJob struct {
	ev    Event
	claim string
	after func()
}

// claimHolder holds the claims of a shared store's sweeps (claimKeeper).
type claimHolder interface {
	live(claim string) bool // still this manager's: run its hooks
	settle(claim string)    // its hooks ran: acknowledge it
	drop(claim string)      // its lease ended first: leave it to whoever claims it next
}

// newHookRunner starts a runner; claims, when not nil, holds the claims of
// the jobs that have one.
func newHookRunner(log *slog.Logger, claims claimHolder) *hookRunner {
	h := &hookRunner{log: log, claims: claims, done: make(chan struct{})}
	h.cond.L = &h.mu
	go h.run()
	return h
}

// hooked reports whether any hook is registered.
func (h *hookRunner) hooked() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hooks) > 0
}

func (h *hookRunner) add(f func(Event)) {
	h.mu.Lock()
	h.hooks = append(h.hooks[:len(h.hooks):len(h.hooks)], f)
	h.mu.Unlock()
}

// enqueue queues jobs; it never blocks on hooks. Jobs queued after close
// run at once on the caller's goroutine, so none is lost.
func (h *hookRunner) enqueue(jobs ...hookJob) {
	h.mu.Lock()
	if h.closed {
		hooks := h.hooks
		h.mu.Unlock()
		for _, j := range jobs {
			h.runJob(hooks, j)
		}
		return
	}
	h.queue = append(h.queue, jobs...)
	h.mu.Unlock()
	h.cond.Signal()
}

// wait returns once every job queued before it has run.
func (h *hookRunner) wait() { <-h.drained() }

// drained returns a channel closed once every job queued before the call
// has run. Called from a hook (Cleanup in a hook), it is closed already:
// the jobs behind the running hook cannot run before it returns.
func (h *hookRunner) drained() <-chan struct{} {
	done := make(chan struct{})
	if h.inHook() {
		close(done)
		return done
	}
	h.enqueue(hookJob{after: func() { close(done) }})
	return done
}

// close runs what is queued, then stops the goroutine. Called from a hook
// (Close in a hook), it does not wait: the goroutine runs what is queued
// once the hook returns, then stops.
func (h *hookRunner) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cond.Signal()
	if !h.inHook() {
		<-h.done
	}
}

// inHook reports whether the caller is the runner's goroutine: a hook.
func (h *hookRunner) inHook() bool {
	g := h.gid.Load()
	return g != 0 && g == goid()
}

func (h *hookRunner) run() {
	defer close(h.done)
	h.gid.Store(goid())
	for {
		h.mu.Lock()
		for len(h.queue) == 0 && !h.closed {
			h.cond.Wait()
		}
		if len(h.queue) == 0 {
			h.mu.Unlock()
			return
		}
		jobs, hooks := h.queue, h.hooks
		h.queue = nil
		h.mu.Unlock()
		for _, j := range jobs {
			h.runJob(hooks, j)
		}
	}
}

func (h *hookRunner) runJob(hooks []func(Event), j hookJob) {
	if j.claim != "" && h.claims != nil && !h.claims.live(j.claim) {
		h.claims.drop(j.claim)
		j.ev.Reason = 0 // run no hook, only what comes after
		j.claim = ""
	}
	if j.ev.Reason != 0 {
		for _, f := range hooks {
			h.call(f, j.ev)
		}
	}
	if j.claim != "" && h.claims != nil {
		h.claims.settle(j.claim)
	}
	if j.after != nil {
		j.after()
	}
}

func (h *hookRunner) call(f func(Event), ev Event) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("sessions: termination hook panicked",
				"panic", p, "session", logID(ev.SessionID), "reason", ev.Reason.String())
		}
	}()
	f(ev)
}
