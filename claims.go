package sessions

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// claim is one expired session a shared store handed to this manager: its
// token and when the claim lapses unless extended (zero: never).
type claim struct {
	token    string
	leaseEnd time.Time
}

// claimKeeper holds the claims of this manager's sweeps until the store
// has acknowledged them. While a claim's hooks are pending, and while its
// acknowledgement has not landed, the keeper extends its lease, so neither
// slow hooks nor a store that fails for a while hand the ending to another
// manager. Failed acknowledgements are retried until they land or the
// manager closes. It owns one goroutine, stopped by close.
type claimKeeper struct {
	st  Store
	log *slog.Logger

	mu     sync.Mutex
	held   map[string]lease // by token
	acks   []string         // tokens whose hooks ran, to acknowledge
	wake   chan struct{}    // one buffered signal: acks queued or held changed
	stop   chan struct{}
	done   chan struct{}
	retry  time.Duration // back-off after a failed store call; 0 when healthy
	lapsed int           // claims dropped since the last warning
}

// Bounds of the keeper's work.
const (
	keeperBatch    = 500              // tokens per Ack or Extend call
	keeperCallTime = 10 * time.Second // deadline of one store call
	keeperMinRetry = 50 * time.Millisecond
	keeperMaxRetry = 5 * time.Second
	keeperFinal    = 5 * time.Second // what close spends on the last acks
)

func newClaimKeeper(st Store, log *slog.Logger) *claimKeeper {
	k := &claimKeeper{
		st:   st,
		log:  log,
		held: make(map[string]lease),
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go k.run()
	return k
}

// lease is what the keeper knows of a held claim: when it ends (zero:
// never) and when to extend it next, halfway there.
type lease struct{ end, renew time.Time }

// leaseFrom returns the lease of a claim that ends at end, as known at now.
func leaseFrom(now, end time.Time) lease {
	if end.IsZero() {
		return lease{}
	}
	return lease{end: end, renew: now.Add(end.Sub(now) / 2)}
}

// hold takes claims in: their hooks are pending.
func (k *claimKeeper) hold(cs []claim) {
	now := time.Now()
	k.mu.Lock()
	for _, c := range cs {
		k.held[c.token] = leaseFrom(now, c.leaseEnd)
	}
	k.mu.Unlock()
	k.signal()
}

// live reports whether the claim is still this manager's: its lease has
// not ended (the keeper extends it in time unless the process was paused
// or the store failed). The hooks of a claim whose lease ended are not
// run: another manager may have taken the claim over and run them; if
// none did, the claim is handed out again and its hooks run then.
func (k *claimKeeper) live(token string) bool {
	k.mu.Lock()
	l, ok := k.held[token]
	k.mu.Unlock()
	return ok && (l.end.IsZero() || time.Now().Before(l.end))
}

// drop forgets a claim whose lease ended, without acknowledging it.
func (k *claimKeeper) drop(token string) {
	k.mu.Lock()
	delete(k.held, token)
	k.lapsed++
	k.mu.Unlock()
	k.signal()
}

// settle records that the hooks of a claim have run: it is acknowledged
// next, and kept extended until the acknowledgement lands.
func (k *claimKeeper) settle(token string) {
	k.mu.Lock()
	k.acks = append(k.acks, token)
	k.mu.Unlock()
	k.signal()
}

func (k *claimKeeper) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// close stops the goroutine after one last try, bounded in time, to
// acknowledge what is settled. Claims left unacknowledged are handed to
// another manager after their lease, which runs their hooks again.
func (k *claimKeeper) close() {
	close(k.stop)
	<-k.done
	ctx, cancel := context.WithTimeout(context.Background(), keeperFinal)
	defer cancel()
	k.ack(ctx)
	k.mu.Lock()
	left := len(k.held)
	k.mu.Unlock()
	if left > 0 {
		k.log.Warn("sessions: closing with expired sessions not acknowledged to the store; another manager will run their hooks again after the lease",
			"count", left)
	}
}

func (k *claimKeeper) run() {
	defer close(k.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), keeperCallTime)
		acked := k.ack(ctx)
		extended := k.extend(ctx) // even when acks fail: they stay held
		cancel()
		k.warnLapsed()
		timer.Reset(k.next(acked, extended))
		select {
		case <-k.stop:
			return
		case <-k.wake:
			if !acked || !extended { // after a failure, back off even when woken
				select {
				case <-k.stop:
					return
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
	}
}

// warnLapsed logs, once per round, the claims dropped because their lease
// ended before their hooks could run.
func (k *claimKeeper) warnLapsed() {
	k.mu.Lock()
	n := k.lapsed
	k.lapsed = 0
	k.mu.Unlock()
	if n > 0 {
		k.log.Warn("sessions: leases of claimed expiries ended before their hooks could run (was the process paused, or the store unreachable?); their hooks run where they are claimed next",
			"count", n)
	}
}

// next returns how long to wait before the next round: until the earliest
// extension is due, or less when acknowledgements failed (the back-off);
// after a failed extension, the back-off alone.
func (k *claimKeeper) next(acked, extended bool) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if acked && extended {
		k.retry = 0
	} else {
		k.retry = min(max(2*k.retry, keeperMinRetry), keeperMaxRetry)
	}
	wait, retry := time.Hour, k.retry
	for _, l := range k.held {
		if l.end.IsZero() {
			continue
		}
		if extended {
			wait = min(wait, max(l.renew.Sub(now), 0))
		}
		// Retry a failed call at least twice before a lease ends.
		retry = min(retry, max(l.end.Sub(now)/2, keeperMinRetry))
	}
	if retry > 0 {
		wait = min(wait, retry)
	}
	return wait
}

// ack acknowledges settled claims, a batch at a time; it reports whether
// every call succeeded. Claims whose acknowledgement failed stay queued.
func (k *claimKeeper) ack(ctx context.Context) bool {
	for {
		k.mu.Lock()
		batch := k.acks[:min(len(k.acks), keeperBatch)]
		k.mu.Unlock()
		if len(batch) == 0 {
			return true
		}
		if err := k.st.Ack(ctx, batch); err != nil {
			k.log.Warn("sessions: acknowledging handled expiries failed; retrying", "count", len(batch), "err", err)
			return false
		}
		k.mu.Lock()
		for _, t := range batch {
			delete(k.held, t)
		}
		k.acks = k.acks[len(batch):]
		k.mu.Unlock()
	}
}

// extend extends the claims whose extension is due; it reports whether
// every call succeeded.
//
// A claim whose lease has ended by the keeper's clock is not extended but
// dropped (the process was paused, or the store failed, for longer than
// half a lease): another manager may have it now. So is a claim the store
// no longer holds under its token. Their hooks, if not run yet, are not
// run here (hookRunner asks live first).
func (k *claimKeeper) extend(ctx context.Context) bool {
	now := time.Now()
	var due []string
	k.mu.Lock()
	for t, l := range k.held {
		switch {
		case l.renew.IsZero() || l.renew.After(now):
		case !now.Before(l.end):
			delete(k.held, t)
			k.lapsed++
		default:
			due = append(due, t)
		}
	}
	k.mu.Unlock()
	for len(due) > 0 {
		batch := due[:min(len(due), keeperBatch)]
		due = due[len(batch):]
		held, end, err := k.st.Extend(ctx, batch, now)
		if err != nil {
			k.log.Warn("sessions: extending the claims of pending hooks failed; retrying", "count", len(batch), "err", err)
			return false
		}
		l := leaseFrom(now, end)
		still := make(map[string]bool, len(held))
		for _, t := range held {
			still[t] = true
		}
		k.mu.Lock()
		for _, t := range batch {
			if _, ok := k.held[t]; !ok {
				continue
			}
			if still[t] {
				k.held[t] = l
			} else {
				delete(k.held, t)
				k.lapsed++
			}
		}
		k.mu.Unlock()
	}
	return true
}
