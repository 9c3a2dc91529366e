package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below do every multi-step change of the store in one
// atomic step on the server. They need Redis 7.0 or later. Each starts
// with prelude (loadScript with its "#!lua" line only), whose "#!lua" line
// (no flags) makes a Redis Cluster node refuse any key outside the slot of
// the script's first key, so that a slip in the key layout fails loudly
// instead of working by luck on a single node. Prelude reads the arguments
// every script gets (ARGV[1..4]: key prefix, number of shards, grace in
// milliseconds, whether pointer keys are kept by the script) and defines
// the helpers. Times are microseconds since the Unix epoch (exact in a Lua
// number until the year 2255); the exact nanosecond values the store
// returns are kept as strings next to them.
//
// Keys (P is the prefix, k a shard number, h the hex hash of a session ID,
// uh the hex hash of a user ID):
//
//	P{k}:s:<h>   hash: a live session
//	P{k}:c:<h>   hash: a session claimed by Expired, until Ack
//	P{k}:u:<uh>  zset: the user's live sessions, scored by last activity
//	P{k}:e       zset: the shard's live sessions, scored by deadline
//	P{k}:l       zset: the shard's claimed sessions, scored by lease end
//	P{j}:p:<h>   string: k, the shard of the session (j is h's own shard)
const prelude = "#!lua\n" + helpers

// helpers is prelude without its "#!lua" line, for scripts that define the
// helpers only on the paths that need them (Lua creates a closure for each
// local function every time the definition runs).
const helpers = `
local P, N, GRACE, INLINE = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local function key(k, s) return P .. '{' .. k .. '}:' .. s end
local function ptr(h) return key(tonumber(string.sub(h, 1, 4), 16) % N, 'p:' .. h) end
local function ttl(name, us) redis.call('PEXPIREAT', name, math.floor(us / 1000) + GRACE) end
local function ttlGT(name, us)
  local t = math.floor(us / 1000) + GRACE
  if redis.call('PTTL', name) == -1 then redis.call('PEXPIREAT', name, t)
  else redis.call('PEXPIREAT', name, t, 'GT') end
end
local function forget(k, h, uh)
  redis.call('ZREM', key(k, 'e'), h)
  if uh ~= '' then redis.call('ZREM', key(k, 'u:' .. uh), h) end
  if INLINE then redis.call('DEL', ptr(h)) end
end
local function finish(k, h, rk, uh)
  local rec = redis.call('HGETALL', rk)
  redis.call('DEL', rk)
  forget(k, h, uh)
  return rec
end
local function touch(k, h, rk, at, atns)
  local f = redis.call('HMGET', rk, 'au', 'itu', 'adu', 'uh')
  local au, itu, adu, uh = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), f[4]
  if at > au then
    au = at
    redis.call('HSET', rk, 'a', atns, 'au', au)
  end
  local dl = au + itu
  if adu > 0 and adu < dl then dl = adu end
  redis.call('HSET', rk, 'dl', dl)
  redis.call('ZADD', key(k, 'e'), dl, h)
  ttl(rk, dl)
  if uh ~= '' then
    local U = key(k, 'u:' .. uh)
    redis.call('ZADD', U, au, h)
    ttlGT(U, dl)
  end
  if INLINE then ttl(ptr(h), dl) end
  return dl
end
`

// createScript adds a session and enforces the user's limit.
// KEYS[1]: P{k}:e. ARGV[5..]: k, h, uh, now, limit, policy ("r" rejects),
// deadline, activity, then the record's field/value pairs.
// Returns {1, removed} when added, {0, removed} when the limit rejected it.
var createScript = redis.NewScript(prelude + `
local k, h, uh = ARGV[5], ARGV[6], ARGV[7]
local now, limit, reject = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10] == 'r'
local dl, au = tonumber(ARGV[11]), tonumber(ARGV[12])
local rk = key(k, 's:' .. h)
if redis.call('EXISTS', rk) == 1 or redis.call('EXISTS', key(k, 'c:' .. h)) == 1 or
   (INLINE and redis.call('EXISTS', ptr(h)) == 1) then
  return redis.error_reply('ERR redisstore: session ID already in use')
end
local removed = {}
if uh ~= '' then
  local U = key(k, 'u:' .. uh)
  if limit > 0 then
    local live = {}
    for _, m in ipairs(redis.call('ZRANGE', U, 0, -1)) do
      local mk = key(k, 's:' .. m)
      local mdl = redis.call('HGET', mk, 'dl')
      if not mdl then forget(k, m, uh)
      elseif tonumber(mdl) <= now then removed[#removed + 1] = finish(k, m, mk, uh)
      else live[#live + 1] = m end
    end
    if #live >= limit then
      if reject then return {0, removed} end
      for i = 1, #live - limit + 1 do
        removed[#removed + 1] = finish(k, live[i], key(k, 's:' .. live[i]), uh)
      end
    end
  end
  redis.call('ZADD', U, au, h)
  ttlGT(U, math.max(dl, now))
end
for i = 13, #ARGV, 2 do redis.call('HSET', rk, ARGV[i], ARGV[i + 1]) end
local keep = math.max(dl, now)
ttl(rk, keep)
redis.call('ZADD', key(k, 'e'), dl, h)
if INLINE then redis.call('SET', ptr(h), k, 'PXAT', math.floor(keep / 1000) + GRACE) end
return {1, removed}
`)

// byID starts the scripts that act on one session. KEYS[1] is the pointer
// key P{j}:p:<h> (then ARGV[6] is empty and the script reads the shard from
// it) or, on Cluster, P{k}:e with the shard in ARGV[6]. ARGV[7] is the time
// at which the session must be live. It leaves rk (the record key), f (its
// deadline and user hash) and live.
const byID = prelude + `
local h, k = ARGV[5], ARGV[6]
if k == '' then
  k = redis.call('GET', KEYS[1])
  if not k then return false end
end
local rk = key(k, 's:' .. h)
local f = redis.call('HMGET', rk, 'dl', 'uh')
if not f[1] then
  forget(k, h, '')
  return false
end
if tonumber(f[1]) <= tonumber(ARGV[7]) then return false end
`

// loadScript returns a live record, recording activity first when ARGV[8]
// is "1" and the stored activity lags ARGV[7] by at least ARGV[10] (a
// fraction) of the idle timeout. ARGV[9] is the activity in nanoseconds.
// It runs on every request, so it does what byID does with fewer
// commands: one HGETALL reads the record, its deadline and its activity
// (in RESP3, as a Lua table keyed by field, which the server builds faster
// than the RESP2 array), and the helpers are defined only on the paths
// that forget a vanished record or record activity. It returns the record
// packed by cmsgpack: one bulk string, cheaper to send and to decode than
// the field/value array.
var loadScript = redis.NewScript(`#!lua
local function record(rk)
  redis.setresp(3)
  local rec = redis.call('HGETALL', rk).map
  redis.setresp(2)
  return rec
end
local h, k = ARGV[5], ARGV[6]
if k == '' then
  k = redis.call('GET', KEYS[1])
  if not k then return false end
end
local rk = ARGV[1] .. '{' .. k .. '}:s:' .. h
local rec = record(rk)
if not rec.dl then` + helpers + `
  forget(k, h, '')
  return false
end
local at = tonumber(ARGV[7])
if tonumber(rec.dl) <= at then return false end
if ARGV[8] == '1' then
  local au = tonumber(rec.au)
  if at > au and at - au >= tonumber(rec.itu) * tonumber(ARGV[10]) then` + helpers + `
    touch(k, h, rk, at, ARGV[9])
    rec = record(rk)
  end
end
return cmsgpack.pack(rec)
`)

// updateScript writes changed values of a live session and its activity.
// ARGV[8]: activity in nanoseconds; ARGV[9]: how many field/value pairs
// follow; then the fields to delete. It returns the new deadline.
var updateScript = redis.NewScript(byID + `
local i = 10
for _ = 1, tonumber(ARGV[9]) do
  redis.call('HSET', rk, ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HDEL', rk, ARGV[i])
  i = i + 1
end
return touch(k, h, rk, tonumber(ARGV[7]), ARGV[8])
`)

// deleteScript removes a live session and returns it.
var deleteScript = redis.NewScript(byID + `
return finish(k, h, rk, f[2])
`)

// userScript returns (ARGV[8] "0") or removes and returns (ARGV[8] "1")
// the live sessions of a user. KEYS[1]: P{k}:u:<uh>. ARGV[5..7]: k, uh, now.
var userScript = redis.NewScript(prelude + `
local k, uh, now, del = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8] == '1'
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local mk = key(k, 's:' .. m)
  local mdl = redis.call('HGET', mk, 'dl')
  if not mdl then forget(k, m, uh)
  elseif tonumber(mdl) > now then
    if del then out[#out + 1] = finish(k, m, mk, uh)
    else out[#out + 1] = redis.call('HGETALL', mk) end
  end
end
return out
`)

// scanScript returns every live record (ARGV[6] "a") or {sessions, users}
// (ARGV[6] "c") of the shards ARGV[7..], live at ARGV[5]. KEYS: their
// P{k}:e keys. Index entries whose record is gone are dropped.
var scanScript = redis.NewScript(prelude + `
local now, all = tonumber(ARGV[5]), ARGV[6] == 'a'
local out, n, users = {}, 0, 0
for i = 7, #ARGV do
  local k = ARGV[i]
  local seen = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key(k, 'e'), '(' .. ARGV[5], '+inf')) do
    local mk = key(k, 's:' .. m)
    local f = redis.call('HMGET', mk, 'dl', 'uh')
    if not f[1] then forget(k, m, '')
    elseif tonumber(f[1]) > now then
      n = n + 1
      if f[2] ~= '' and not seen[f[2]] then
        seen[f[2]] = true
        users = users + 1
      end
      if all then out[#out + 1] = redis.call('HGETALL', mk) end
    end
  end
end
if all then return out end
return {n, users}
`)

// expiredScript claims up to ARGV[6] sessions of the shards ARGV[9..] that
// are due at ARGV[5]: first claims whose lease ran out (their claimer died),
// then sessions whose deadline passed, which it moves from P{k}:s:<h> to
// P{k}:c:<h> and enters in P{k}:l until ARGV[5] + ARGV[7] (the lease). Each
// claim is marked with ARGV[8], a nonce of this call, in the claimed hash's
// field "cl": Ack and Extend act only on a claim whose mark they name. A
// retry of the same call (same nonce: a client resending after a lost
// reply) finds the claims of the first run, scored at the same lease end
// and marked with its nonce, and returns them instead of claiming more.
// KEYS: the shards' P{k}:e and P{k}:l keys.
var expiredScript = redis.NewScript(prelude + `
local now, max, lease, nonce = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local untilT = now + lease
local out = {}
for i = 9, #ARGV do
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key(ARGV[i], 'l'), untilT, untilT)) do
    local ck = key(ARGV[i], 'c:' .. m)
    if redis.call('HGET', ck, 'cl') == nonce then out[#out + 1] = redis.call('HGETALL', ck) end
  end
end
if #out > 0 then return out end
local function claim(k, m, ck)
  redis.call('HSET', ck, 'cl', nonce)
  redis.call('ZADD', key(k, 'l'), untilT, m)
  ttl(ck, untilT)
  out[#out + 1] = redis.call('HGETALL', ck)
end
for i = 9, #ARGV do
  local k = ARGV[i]
  local L, E = key(k, 'l'), key(k, 'e')
  -- Every entry looked at leaves the range (claimed again, claimed,
  -- dropped or re-scored past now), so these loops end.
  while #out < max do
    local due = redis.call('ZRANGEBYSCORE', L, '-inf', ARGV[5], 'LIMIT', 0, max - #out)
    if #due == 0 then break end
    for _, m in ipairs(due) do
      local ck = key(k, 'c:' .. m)
      if redis.call('EXISTS', ck) == 0 then redis.call('ZREM', L, m)
      else claim(k, m, ck) end
    end
  end
  while #out < max do
    local due = redis.call('ZRANGEBYSCORE', E, '-inf', ARGV[5], 'LIMIT', 0, max - #out)
    if #due == 0 then break end
    for _, m in ipairs(due) do
      local rk = key(k, 's:' .. m)
      local f = redis.call('HMGET', rk, 'dl', 'uh')
      if not f[1] then forget(k, m, '')
      elseif tonumber(f[1]) > now then redis.call('ZADD', E, tonumber(f[1]), m)
      else
        local ck = key(k, 'c:' .. m)
        redis.call('RENAME', rk, ck)
        forget(k, m, f[2])
        claim(k, m, ck)
      end
    end
  end
end
return out
`)

// claimScript acknowledges (ARGV[5] "a") or extends until ARGV[6] (ARGV[5]
// "e") the claims named by the triples ARGV[7..]: a shard number, a session
// hash and the nonce that marked the claim. A claim marked by another nonce
// (handed out again since) or gone (acknowledged already) is left alone.
// KEYS: the P{k}:l keys of the shards named. It returns how many claims it
// acted on.
var claimScript = redis.NewScript(prelude + `
local ack, untilT = ARGV[5] == 'a', tonumber(ARGV[6])
local n = 0
for i = 7, #ARGV, 3 do
  local k, h, nonce = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ck = key(k, 'c:' .. h)
  if redis.call('HGET', ck, 'cl') == nonce then
    n = n + 1
    if ack then
      redis.call('ZREM', key(k, 'l'), h)
      redis.call('DEL', ck)
    else
      redis.call('ZADD', key(k, 'l'), 'XX', untilT, h)
      ttl(ck, untilT)
    end
  end
end
return n
`)
