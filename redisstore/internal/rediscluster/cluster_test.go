package rediscluster

import (
	"context"
	"testing"
	"time"
)

func TestSlotRange(t *testing.T) {
	// What redis-cli --cluster create assigns to 3 masters.
	want := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, w := range want {
		if f, l := SlotRange(i, 3); f != w[0] || l != w[1] {
			t.Errorf("SlotRange(%d, 3) = %d-%d, want %d-%d", i, f, l, w[0], w[1])
		}
	}
	if f, l := SlotRange(0, 1); f != 0 || l != Slots-1 {
		t.Errorf("SlotRange(0, 1) = %d-%d", f, l)
	}
}

// TestFailover starts 3 masters and 3 replicas, kills a master and checks
// that its replica takes its slots.
func TestFailover(t *testing.T) {
	c := Start(t, Options{NodeTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v, %v", masters, err)
	}
	victim, err := c.MasterOf(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := c.ReplicaOf(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover of %s to %s took %v", victim, replica, time.Since(start))
	if got, err := c.MasterOf(ctx, 0); err != nil || got != replica {
		t.Fatalf("slot 0 served by %q (%v), want the replica %s", got, err, replica)
	}
	if len(c.Live()) != 5 {
		t.Fatalf("%d live nodes, want 5", len(c.Live()))
	}
}
