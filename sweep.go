package sessions

import (
	"context"
	"time"
)

// sweepBatch is how many expired sessions one store call claims.
const sweepBatch = 1000

// sweep claims expired sessions in batches and queues their hooks. With no
// hook registered and nothing to acknowledge it only counts them. On a
// shared store every claim is held by the keeper until its hooks have run
// and the store has acknowledged it; and while hooks run, the sweep claims
// no more than one batch ahead of them, so that a backlog is shared with
// the other managers' sweepers instead of piling up in this one.
func (m *Manager) sweep(ctx context.Context) (int, error) {
	total := 0
	var evs []Event // reused: jobs copy the events they need
	var pending <-chan struct{}
	for {
		now := time.Now()
		hooked := m.hooks.hooked()
		var claims []claim
		var err error
		evs, claims, err = m.b.expired(ctx, now, sweepBatch, hooked, evs)
		switch {
		case hooked:
			jobs := m.jobs(evs)
			if len(claims) > 0 {
				m.keeper.hold(claims)
				for i := range jobs {
					jobs[i].claim = claims[i].token
				}
			}
			m.hooks.enqueue(jobs...)
		case len(claims) > 0:
			m.countEnded(evs)
			m.keeper.hold(claims)
			for _, c := range claims {
				m.keeper.settle(c.token)
			}
		default:
			m.countEnded(evs)
		}
		total += len(evs)
		if err != nil {
			return total, m.storeErr("sweep", err)
		}
		if len(evs) < sweepBatch || ctx.Err() != nil || m.closed.Load() {
			return total, ctx.Err()
		}
		if hooked && m.keeper != nil {
			// Wait for the hooks of the batch before the last one.
			if pending != nil {
				select {
				case <-pending:
				case <-ctx.Done():
					return total, ctx.Err()
				case <-m.closing: // a hook may be closing the manager
					return total, nil
				}
			}
			pending = m.hooks.drained()
		}
	}
}

func (m *Manager) sweeper(ctx context.Context) {
	defer close(m.sweepDone)
	t := time.NewTicker(m.cfg.CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.enter() != nil {
			return
		}
		n, err := m.sweep(ctx)
		m.guard.RUnlock()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("sessions: sweep failed", "err", err)
		} else if n > 0 {
			m.log.Debug("sessions: sweep ended expired sessions", "count", n)
		}
	}
}
