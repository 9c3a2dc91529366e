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
//     session to a claimed key, marks it with a nonce of the call and
//     enters it in a lease set; the claim's token (shard, hash, nonce)
//     needs no key, so a session sealed under a rotated-out key is
//     acknowledged all the same. A Manager extends the lease (Extend)
//     while the claim's hooks are pending and until Ack lands, so slow
//     hooks or a failing Ack never hand a claim to another manager. A
//     claim neither acknowledged nor extended within the lease (WithLease;
//     the claimer died or froze) is returned again, under a new nonce, by
//     a later Expired; the old token can then neither extend nor
//     acknowledge it, and a Manager runs no hook for a claim whose lease
//     it saw end. So a crash between the claim and the hooks delays the
//     hooks but does not lose them; a crash after the hooks ran but before
//     Ack lands runs them twice after the lease (the one window). Expired
//     reads a sorted set by deadline, so its work is proportional to what
//     is due.
//   - An expired session is never returned, swept or not: every read checks
//     the deadline (a plain HGETALL needs no script: Delete and Expired
//     take a session's hash away in one RENAME, so a hash that exists with
//     a deadline after the time of the call is a live session). Liveness
//     is judged at the time of the
//     call, by the store's clock (WithClock): Update and Activate record
//     activity at their at argument but fail with ErrNotFound, writing
//     nothing, for a session whose deadline passed before the call.
//   - Update and Activate write only to a session key that exists and is
//     live, in the same script that checks it: a save racing with Delete,
//     DeleteUser, an eviction or a claim never brings a session back.
//   - Every call is safe to resend (go-redis resends a command whose
//     connection failed after it was written, up to MaxRetries times, and
//     the server may have run the first copy): Create, Delete and
//     DeleteUser leave their reply in a key named by a token unique to the
//     call (P{k}:r:<token>, two minutes), and a second run of the same call
//     returns it instead of acting again, so a resent Delete returns the
//     record (its hooks run once), a resent DeleteUser the sessions it
//     ended, a resent Create success and the sessions it evicted (no "ID
//     already in use", no orphan session counted toward the limit). Update,
//     Activate and Load are safe as
//     they are: a second run writes the same values and activity never
//     moves back. (A resent Update can land after a concurrent Update of
//     the same value, as if the first had been slower.) Expired is safe to
//     resend too: its claims carry the call's nonce, and a second run
//     returns them. When a call gets no answer at all (every resend lost,
//     a timeout), the Store keeps its reply key for the next call on the
//     same session or user, and the Manager calls again in the background
//     until it gets an answer: a logout whose reply was lost ends once,
//     with its hooks, and a failed Create's session is ended rather than
//     left counting toward the limit. A call later than two minutes after
//     the first run is not recognised.
//   - Update writes only the changed values (one hash field per value), so
//     concurrent requests changing different keys lose nothing.
//   - Load and Activate are one round trip. Activate writes the activity
//     only when the stored one lags by WithTouchWindow (at most, and by
//     default, 5%) of the session's IdleTimeout, so the stored activity is
//     never further behind than that. A Store remembers the stored
//     activity it last saw of each session (WithSeen: 64Ki sessions by
//     default, about 3 MiB); while that says no write can be due (the stored activity only
//     moves forward), Activate is one HGETALL, as cheap for the server as
//     a GET; otherwise (a session this process has not seen, or one whose
//     write may be due) it is one script that reads the record and writes
//     the activity if due. Update is one round trip and writes the
//     activity on the same rule.
//   - A session is found from its ID alone: its shard is read off the ID's
//     first 16 bits, which the Manager lets the store choose (PlaceID,
//     sessions.Placer), so that a user's sessions share the user's shard.
//     No key points to a session, so none can be lost. A cookie thus tells
//     which of the shards its user is in (about 6 bits of a hash of the
//     user ID with 60 shards), and the ID keeps 122 − log2(shards) random
//     bits (116 with 60 shards, 118 with 16).
//   - Raw session IDs never reach Redis: keys and index entries use the
//     first 128 bits of SHA-256 of the ID, and the record keeps only the
//     ID sealed by the Manager (Record.SealedID). Records come back with
//     ID empty; the Manager unseals SealedID.
//   - Indexes repair themselves: an index entry whose session key was
//     deleted behind the store's back (eviction policy, manual DEL, TTL) is
//     dropped when Create, UserSessions, DeleteUser, All, Count, Expired or
//     a read meets it; it never counts toward the limit nor in Count.
//   - Derived keys lost behind the store's back (a volatile-* maxmemory
//     policy, a manual DEL) are rebuilt by the paths that read them, and
//     a session whose indexes are lost is still found by its ID (Load,
//     Activate, Update, Delete). A user index P{k}:u:<uh> that lost entries is rebuilt from the shard index
//     when UserSessions, DeleteUser or a limited Create reads it: the
//     count of the user's sessions kept in P{k}:n:<uh> tells, at the cost
//     of one GET, that entries are missing (a rebuild costs one HMGET per
//     session of the shard, and the server serves nothing else meanwhile).
//     The count expires with its index, so an
//     index dropped by its TTL is not taken for lost. Not repaired: a user
//     index lost together with its count (until each session's next
//     activity write adds it back), and
//     the shard index P{k}:e: a session enters it again on its next
//     activity write or Update, but one never active again is neither
//     counted by Count and All nor swept by Expired, and its key's TTL
//     drops it without hooks.
//   - Every key has a TTL: a session's key, its deadline plus WithGrace
//     (one hour by default), so nothing lives forever even if no sweeper
//     runs (a session dropped that way ends without hooks); the indexes
//     P{k}:u, P{k}:n, P{k}:e and P{k}:l, past the latest deadline or lease
//     they hold plus the grace (extended, by one grace more, when an entry
//     would outlive them); reply keys, two minutes. Under a volatile-*
//     maxmemory policy every key can therefore be evicted; see the repair
//     above for what comes back.
//
// # Keys
//
// P is the prefix (WithPrefix, default "sessions:"), k a shard (its number
// in [0, WithShards), or on Cluster its hash tag), h the hex hash of a session ID, uh that of a user ID:
//
//	P{k}:s:<h>   hash   a live session: sealed ID, user, times, values (fields "v:<key>")
//	P{k}:c:<h>   hash   a session claimed by Expired, until Ack
//	P{k}:u:<uh>  zset   the user's live sessions, scored by last activity
//	P{k}:e       zset   the shard's live sessions, scored by deadline
//	P{k}:l       zset   the shard's claimed sessions, scored by lease end
//	P{k}:n:<uh>  string how many sessions P{k}:u:<uh> should hold (expires with it)
//	P{k}:r:<t>   the reply of the call with op token t, kept for its resends
//
// A session's hash holds its sealed ID ("sid"), user ("uid") and user
// hash ("uh"), its times in nanoseconds (created "c", activity "a", idle
// timeout "it", absolute deadline "ad"), its deadline in microseconds
// ("dl") and its values; empty strings are not stored. The scripts derive
// the microseconds they compare from the nanosecond fields, and add the
// session's hash (from its key) to the records they return.
//
// A user's sessions live in the shard of the user's hash: the first 16
// bits of the hash modulo the number of shards, which the first 16 bits of
// each of the user's session IDs equal (PlaceID); an anonymous session
// lives in the shard its ID's first 16 bits name.
//
// Before 1.0 the layout may change. This one (version 2) has no pointer
// keys P{j}:p:<h>: a session stored by an earlier version is found only
// when its ID happens to name its user's shard, so upgrading signs most
// users out once; their sessions still expire, and are swept with their
// hooks, as before, and the old pointers expire by their TTL. Processes of
// different versions must not share a store. The shard is the hash tag, so all
// keys a script touches for one user share a Redis Cluster slot, and so do
// a shard's indexes.
//
// # Redis Cluster
//
// On a *redis.ClusterClient every script stays within one slot (the
// scripts declare this, and a cluster node refuses them otherwise). Every
// call on one session or one user costs what it costs on a single node;
// All, Count and Expired run one script per shard, and Ack of a claim
// made by another process one per shard.
//
// The sessions of one shard share a slot. On a Cluster client the store
// has DefaultClusterShards (60) shards unless WithShards says otherwise,
// and their hash tags ("i" or "i.j") are chosen so that shard i's slot
// lies in the middle of the i-th 60th of the slot space: the masters of a
// cluster whose slots are split evenly among 2, 3, 4, 5, 6, 10 or 12 of
// them hold the same number of shards each (20 each on 3 masters), and
// sessions spread evenly. Every process must use the same number of
// shards. Each shard costs All, Count and Expired one script.
//
// # Failover
//
// Redis replicates asynchronously: when a master fails over (Sentinel or
// Cluster), the changes it had not yet sent to the promoted replica are
// lost. Without WithDurability a logout may be undone (the session works
// again and may later get a second hook), a login lost, and an expiry
// claimed or acknowledged just before handed out again. With
// WithDurability(n, timeout) every call that creates or ends sessions
// returns success only once n replicas have acknowledged its change (WAIT
// on the connection that made it); otherwise it returns an error wrapping
// ErrNotDurable, and the change, made on the master, may or may not
// survive a failover.
//
// On Cluster the store adds a hook to the client that asks it to reload
// its slot map (at most every 100 ms) when a command fails with a
// connection error, a timeout, CLUSTERDOWN, MOVED, ASK, TRYAGAIN or
// READONLY, so that the store follows a failover as soon as the cluster
// has promoted a replica, instead of at go-redis's periodic reload (every
// 60 s by default).
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
//
// Retry safety costs each Create one small key (its packed reply, a few
// bytes when it evicted nothing) and each Delete its record, both kept for
// two minutes: at 100 logouts a second of 1 KB sessions, about 12 MB. A
// Load of a session that does not exist (an ended session's cookie) is one
// HGETALL.
package redisstore
