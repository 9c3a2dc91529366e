package redisstore

import (
	"testing"
	"time"

	"github.com/tokyopredictor/sessions"
	"github.com/tokyopredictor/sessions/storetest"
)

func TestConformance(t *testing.T) {
	c := newClient(t)
	storetest.Run(t, func(t *testing.T) sessions.Store { return newStore(t, c) })
}

func TestConformanceLease(t *testing.T) {
	c := newClient(t)
	const lease = 300 * time.Millisecond
	storetest.RunLease(t, func(t *testing.T) sessions.Store { return newStore(t, c, WithLease(lease)) }, lease)
}

// TestConformanceOneShard runs the suite with every user in one shard.
func TestConformanceOneShard(t *testing.T) {
	c := newClient(t)
	storetest.Run(t, func(t *testing.T) sessions.Store { return newStore(t, c, WithShards(1)) })
}
