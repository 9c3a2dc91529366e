package sessions

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// A shared store's call that fails without an answer (the connection lost
// after every resend, a timeout) may have run all the same. For an ending
// that would mean a session gone and its hooks never run; for a creation, a
// session no cookie holds, counted toward its user's limit until it
// expires. So the Manager finishes such calls in the background: it calls
// again, on the same session, until the store answers. A store that keeps
// the replies of unanswered calls (redisstore does, for two minutes) then
// returns the first run's ending, and its hooks run once.

// retryFor is how long a retrier keeps trying one call; redisstore
// recognises a call again for two minutes.
const retryFor = 90 * time.Second

// Back-off of a retrier between tries of one call.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// retrier runs calls again until they return done, with back-off, for at
// most retryFor each. It owns one goroutine, stopped by close.
type retrier struct {
	log *slog.Logger

	mu   sync.Mutex
	jobs []*retryJob
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// retryJob is one call to finish: run tries it once and reports whether it
// is done (answered, whatever the answer).
type retryJob struct {
	what  string // for the log: what the call was
	run   func(ctx context.Context) (done bool)
	first time.Time
	next  time.Time
	wait  time.Duration
}

func newRetrier(log *slog.Logger) *retrier {
	r := &retrier{log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// add queues a call to finish.
func (r *retrier) add(what string, run func(ctx context.Context) bool) {
	now := time.Now()
	r.mu.Lock()
	r.jobs = append(r.jobs, &retryJob{what: what, run: run, first: now, next: now.Add(retryMin), wait: retryMin})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close stops the goroutine; calls not finished by then are logged.
func (r *retrier) close() {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		r.log.Warn("sessions: closing before a failed store call could be finished", "call", j.what)
	}
}

func (r *retrier) loop() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(r.round())
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// round tries every job that is due and returns how long until the next.
func (r *retrier) round() time.Duration {
	now := time.Now()
	r.mu.Lock()
	var due []*retryJob
	for _, j := range r.jobs {
		if !j.next.After(now) {
			due = append(due, j)
		}
	}
	r.mu.Unlock()
	for _, j := range due {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ok := j.run(ctx)
		cancel()
		now = time.Now()
		r.mu.Lock()
		switch {
		case ok:
			r.drop(j)
		case now.Sub(j.first) >= retryFor:
			r.drop(j)
			r.log.Error("sessions: gave up finishing a failed store call", "call", j.what, "after", now.Sub(j.first))
		default:
			j.wait = min(2*j.wait, retryMax)
			j.next = now.Add(j.wait)
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	wait := time.Hour
	for _, j := range r.jobs {
		wait = min(wait, max(j.next.Sub(now), 0))
	}
	return wait
}

// drop removes j; r.mu is held.
func (r *retrier) drop(j *retryJob) {
	for i, o := range r.jobs {
		if o == j {
			r.jobs = append(r.jobs[:i], r.jobs[i+1:]...)
			return
		}
	}
}

// unanswered reports whether a store call's error may hide a change that
// was made: anything but an answer that it was not.
func unanswered(err error) bool {
	return err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrLimitReached) &&
		!errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnsupportedValue)
}
