package pgstore

import (
	"testing"
	"time"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/storetest"
)

func TestConformance(t *testing.T) {
	p := newPool(t)
	storetest.Run(t, func(t *testing.T) sessions.Store { return newStore(t, p) })
}

func TestConformanceLease(t *testing.T) {
	p := newPool(t)
	const lease = 300 * time.Millisecond
	storetest.RunLease(t, func(t *testing.T) sessions.Store { return newStore(t, p, WithLease(lease)) }, lease)
}
