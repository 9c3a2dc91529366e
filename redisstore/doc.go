// Package redisstore is a sessions.Store kept in Redis, for running several
// processes behind a load balancer. Every manager that shares the store (same
// server, same prefix, same signing keys) sees the same sessions, and the
// per-user limit, expiry and termination hooks keep their guarantees across
// all of them:
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	store, err := redisstore.New(client)
//	...
//	m, err := sessions.NewManager(cfg, sessions.WithStore(store)) // cfg.Keys set
//
// It needs Redis 7.0 or later (standalone, Sentinel or Cluster) and works
// with any redis.UniversalClient.
//
// # Guarantees
//
// Every change that touches more than one key is one Lua script, so it is
// atomic on the server; nothing is checked in Go and then acted on.
//
//   - Create enforces the per-user limit in the script that adds the
//     session: no interleaving of Creates, from any number of processes,
//     leaves a user over the limit. It first ends the user's expired
//     sessions and drops index entries whose session key is gone.
//   - Each ending is returned to exactly one caller. Expired moves a due
//     session to a claimed key and enters it in a lease set; Ack deletes it.
//     A claim not acknowledged within the lease (WithLease; the claimer
//     died) is returned again by a later Expired, so a crash between the
//     claim and the hooks delays the hooks but does not lose them; a crash
//     after the hooks ran but before Ack runs them twice after the lease.
//     Expired reads a sorted set by deadline, so its work is proportional to
//     what is due.
//   - An expired session is never returned, swept or not: every read checks
//     the deadline in the script.
//   - Update and Activate write only to a session key that exists and is
//     live, in the same script that checks it: a save racing with Delete,
//     DeleteUser, an eviction or a claim never brings a session back.
//   - Update writes only the changed values (one hash field per value), so
//     concurrent requests changing different keys lose nothing.
//   - Load and Activate are one round trip. Activate writes the activity
//     only when the stored one lags by WithTouchWindow (at most, and by
//     default, 5%) of the session's IdleTimeout, so the stored activity is
//     never further behind than that. Update is one round trip.
//   - Raw session IDs never reach Redis: keys and index entries use the
//     first 128 bits of SHA-256 of the ID, and the record keeps only the
//     ID sealed by the Manager (Record.SealedID). Records come back with
//     ID empty; the Manager unseals SealedID.
//   - Indexes repair themselves: an index entry whose session key was
//     deleted behind the store's back (eviction policy, manual DEL, TTL) is
//     dropped when Create, UserSessions, DeleteUser, All, Count, Expired or
//     a read meets it; it never counts toward the limit nor in Count.
//   - Every per-session key has a TTL of its deadline plus WithGrace (one
//     hour by default), so nothing lives forever even if no sweeper runs;
//     a session dropped that way ends without hooks.
//
// # Keys
//
// P is the prefix (WithPrefix, default "sessions:"), k a shard number in
// [0, WithShards), h the hex hash of a session ID, uh that of a user ID:
//
//	P{k}:s:<h>   hash   a live session: sealed ID, user, times, values (fields "v:<key>")
//	P{k}:c:<h>   hash   a session claimed by Expired, until Ack
//	P{k}:u:<uh>  zset   the user's live sessions, scored by last activity
//	P{k}:e       zset   the shard's live sessions, scored by deadline
//	P{k}:l       zset   the shard's claimed sessions, scored by lease end
//	P{j}:p:<h>   string k, the shard of the session (j is h's own shard)
//
// A user's sessions live in the shard of the user's hash; an anonymous
// session in the shard of its own hash. The shard is the hash tag, so all
// keys a script touches for one user share a Redis Cluster slot, and so do
// a shard's indexes.
//
// # Redis Cluster
//
// On a *redis.ClusterClient every script stays within one slot (the
// scripts declare this, and a cluster node refuses them otherwise). The
// pointer key P{j}:p:<h> is in another slot than the session, so on
// Cluster:
//   - Load, Activate, Update and Delete first read the pointer, the first
//     time a Store meets a session (it caches the shard: it never changes),
//     which costs one more round trip then; later reads cost one.
//   - Create writes the pointer before the script (two round trips), and
//     the store deletes pointers and extends their TTL with separate
//     commands after the scripts; if the process dies in between, a stale
//     pointer remains until its TTL (it points to nothing and is harmless).
//   - All, Count and Expired run one script per shard, and Ack of a claim
//     made by another process one per shard.
//
// The sessions of one shard share a slot, so WithShards bounds how many
// cluster nodes the store spreads over (16 by default). Every process
// must use the same number of shards.
//
// # Costs and caveats
//
// Count and All read every live session (they verify each against its key):
// their work is proportional to the number of live sessions. UserSessions,
// DeleteUser and a limited Create are proportional to the user's sessions.
// Eviction picks the least recently active session by the stored activity,
// which may lag by the touch window. Methods that receive no time (Load,
// Delete, DeleteUser, UserSessions, All, and Create's expiry check) use
// the store's clock (WithClock); all processes' clocks should agree within
// a small part of the idle timeout. A Redis server at maxmemory with the
// noeviction policy refuses the scripts, reads included.
package redisstore
