package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts below do every multi-step change of the store in one
// atomic step on the server. They need Redis 7.0 or later. Each starts
// with prelude (the hot-path scripts with its "#!lua" line only), whose
// "#!lua" line (no flags) makes a Redis Cluster node refuse any key outside
// the slot of the script's first key, so that a slip in the key layout
// fails loudly instead of working by luck on a single node. Prelude reads
// the arguments every script gets (ARGV[1..4]: key prefix, number of
// shards, grace in milliseconds, and the key layout's version, "2", which
// no script reads) and defines the helpers. Times are microseconds since
// the Unix epoch (exact in a Lua number until the year 2255); the exact
// nanosecond values the store returns are kept as strings next to them.
//
// Keys (P is the prefix, k a shard, h the hex hash of a session ID, uh the
// hex hash of a user ID). A session's shard is read off its ID (see
// Store.PlaceID): a user's sessions all have the user's shard, so no key
// is needed to find a session.
//
//	P{k}:s:<h>   hash: a live session
//	P{k}:c:<h>   hash: a session claimed by Expired, until Ack
//	P{k}:u:<uh>  zset: the user's live sessions, scored by last activity
//	P{k}:e       zset: the shard's live sessions, scored by deadline
//	P{k}:l       zset: the shard's claimed sessions, scored by lease end
//	P{k}:n:<uh>  string: how many sessions P{k}:u:<uh> should list
//	P{k}:r:<t>   the reply of the call with op token t, for its retries
const prelude = "#!lua\n" + helpers

// helpers is prelude without its "#!lua" line, for scripts that define the
// helpers only on the paths that need them (Lua creates a closure for each
// local function every time the definition runs). Besides key names and
// TTLs: keep(name, us) makes an index outlive a deadline us by the grace,
// extending it by one grace more when it must (so seldom; PEXPIRETIME is
// one read); count keeps P{k}:n:<uh>, the number of entries the user
// index should hold, in step with ZADD/ZREM on it, and keepUser gives it
// the index's expiry, so that an index expiring by its TTL takes its count
// along and is not taken for lost; forget and finish drop a
// session from its indexes; members returns a user index's entries,
// rebuilding the index from P{k}:e first when its count says it lost some.
const helpers = `
local P, GRACE = ARGV[1], tonumber(ARGV[3])
local function key(k, s) return P .. '{' .. k .. '}:' .. s end
local function ttl(name, us) redis.call('PEXPIREAT', name, math.floor(us / 1000) + GRACE) end
` + usLua + `
local function keepAt(name, ms)
  if ms <= 0 then return end
  local t = redis.call('PEXPIRETIME', name)
  if t == -1 or (t >= 0 and t < ms) then redis.call('PEXPIREAT', name, ms + GRACE) end
end
local function keep(name, us) keepAt(name, math.floor(us / 1000) + GRACE) end
local function keepUser(k, uh, us)
  local U, C = key(k, 'u:' .. uh), key(k, 'n:' .. uh)
  local ms = math.floor(us / 1000) + GRACE
  local t = redis.call('PEXPIRETIME', U)
  if t == -1 or (t >= 0 and t < ms) then
    redis.call('PEXPIREAT', U, ms + GRACE)
    redis.call('PEXPIREAT', C, ms + GRACE)
  end
end
local function count(k, uh, d)
  local C = key(k, 'n:' .. uh)
  local n = redis.call('INCRBY', C, d)
  if n <= 0 then redis.call('DEL', C)
  elseif n == d then
    local t = redis.call('PEXPIRETIME', key(k, 'u:' .. uh))
    if t > 0 then redis.call('PEXPIREAT', C, t) end
  end
end
local function setCount(k, uh, n)
  local C = key(k, 'n:' .. uh)
  local t = redis.call('PEXPIRETIME', key(k, 'u:' .. uh))
  if n > 0 and t > 0 then redis.call('SET', C, n, 'PXAT', t) else redis.call('DEL', C) end
end
local function forget(k, h, uh)
  redis.call('ZREM', key(k, 'e'), h)
  if uh ~= '' and redis.call('ZREM', key(k, 'u:' .. uh), h) == 1 then count(k, uh, -1) end
end
local function withH(rec, h)
  rec[#rec + 1], rec[#rec + 2] = 'h', h
  return rec
end
local function withK(rec, h, k)
  rec[#rec + 1], rec[#rec + 2], rec[#rec + 3], rec[#rec + 4] = 'h', h, 'k', k
  return rec
end
local function finish(k, h, rk, uh)
  local rec = withH(redis.call('HGETALL', rk), h)
  redis.call('DEL', rk)
  forget(k, h, uh)
  return rec
end
local function rebuild(k, uh)
  local U = key(k, 'u:' .. uh)
  for _, m in ipairs(redis.call('ZRANGE', key(k, 'e'), 0, -1)) do
    local f = redis.call('HMGET', key(k, 's:' .. m), 'uh', 'a', 'dl')
    if f[1] == uh then
      redis.call('ZADD', U, us(f[2]), m)
      keepUser(k, uh, tonumber(f[3]))
    end
  end
  setCount(k, uh, redis.call('ZCARD', U))
end
local function members(k, uh)
  local U = key(k, 'u:' .. uh)
  local ms = redis.call('ZRANGE', U, 0, -1)
  local n = tonumber(redis.call('GET', key(k, 'n:' .. uh))) or 0
  if #ms < n then
    rebuild(k, uh)
    ms = redis.call('ZRANGE', U, 0, -1)
  elseif #ms > n then setCount(k, uh, #ms) end
  return ms
end
`

// usLua defines us(s): the microseconds, rounded down, of a time or
// duration kept in nanoseconds as a decimal string (the record's "a",
// "it" and "ad"), exact where a Lua number would not hold the nanoseconds;
// 0 for a field that is missing or empty (a zero time).
const usLua = `local function us(s)
  if not s or s == '' then return 0 end
  if #s > 3 and string.byte(s, 1) ~= 45 then return tonumber(string.sub(s, 1, -4)) end
  return math.floor(tonumber(s) / 1000)
end`

// createScript adds a session and enforces the user's limit.
// KEYS[1]: P{k}:e; KEYS[2]: the reply key of this call (see retry.go).
// ARGV[5..]: k, h, uh, now, limit, policy ("r" rejects), deadline,
// activity, then the record's field/value pairs.
// Returns {1, removed} when added, {0, removed} when the limit rejected it;
// a retry of the same call returns what the first run returned. It runs on
// every login, so it defines the helpers only on the path that reads a
// user's existing sessions, and a user with none (no index, no count)
// costs three writes for them.
var createScript = redis.NewScript("#!lua" + replied + `
local P, GRACE = ARGV[1], tonumber(ARGV[3])
local k, h, uh = ARGV[5], ARGV[6], ARGV[7]
local now, limit, reject = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10] == 'r'
local dl, au = tonumber(ARGV[11]), tonumber(ARGV[12])
local pre = P .. '{' .. k .. '}:'
local rk = pre .. 's:' .. h
if redis.call('EXISTS', rk, pre .. 'c:' .. h) > 0 then
  return redis.error_reply('ERR redisstore: session ID already in use')
end
local keepUntil = math.max(dl, now)
local ms = math.floor(keepUntil / 1000) + GRACE
local removed = {}
if uh ~= '' then
  local U, C = pre .. 'u:' .. uh, pre .. 'n:' .. uh
  local mem, n = {}, 0
  if limit > 0 then
    mem = redis.call('ZRANGE', U, 0, -1)
    n = tonumber(redis.call('GET', C)) or 0
  end
  if limit > 0 and #mem == 0 and n == 0 then
    -- The user has no session: neither U nor C exists.
    redis.call('ZADD', U, au, h)
    redis.call('PEXPIREAT', U, ms + GRACE)
    redis.call('SET', C, 1, 'PXAT', ms + GRACE)
  else
    -- A user whose sessions are all live, under the limit, and whose
    -- index holds what its count says needs no helper: one HGET per
    -- session reads its deadline. Anything else takes the path below from
    -- the start.
    local odd = limit > 0 and #mem ~= n
    if limit > 0 and not odd and #mem < limit then
      for _, m in ipairs(mem) do
        local mdl = redis.call('HGET', pre .. 's:' .. m, 'dl')
        if not mdl or tonumber(mdl) <= now then
          odd = true
          break
        end
      end
    else odd = limit > 0 end
    if odd then` + helpers + `
      if #mem < n then
        rebuild(k, uh)
        mem = redis.call('ZRANGE', U, 0, -1)
      elseif #mem > n then setCount(k, uh, #mem) end
      local live = {}
      for _, m in ipairs(mem) do
        local mk = key(k, 's:' .. m)
        local mdl = redis.call('HGET', mk, 'dl')
        if not mdl then forget(k, m, uh)
        elseif tonumber(mdl) <= now then removed[#removed + 1] = finish(k, m, mk, uh)
        else live[#live + 1] = m end
      end
      if #live >= limit then
        if reject then return reply({0, removed}) end
        for i = 1, #live - limit + 1 do
          removed[#removed + 1] = finish(k, live[i], key(k, 's:' .. live[i]), uh)
        end
      end
    end
    -- count(k, uh, 1) and keepUser(k, uh, keepUntil) of the helpers
    if redis.call('ZADD', U, au, h) == 1 then
      local c = redis.call('INCRBY', C, 1)
      if c <= 0 then redis.call('DEL', C)
      elseif c == 1 then
        local t = redis.call('PEXPIRETIME', U)
        if t > 0 then redis.call('PEXPIREAT', C, t) end
      end
    end
    local t = redis.call('PEXPIRETIME', U)
    if t == -1 or (t >= 0 and t < ms) then
      redis.call('PEXPIREAT', U, ms + GRACE)
      redis.call('PEXPIREAT', C, ms + GRACE)
    end
  end
end
if #ARGV < 8000 then redis.call('HSET', rk, unpack(ARGV, 13))
else
  for i = 13, #ARGV, 2 do redis.call('HSET', rk, ARGV[i], ARGV[i + 1]) end
end
redis.call('PEXPIREAT', rk, ms)
redis.call('ZADD', KEYS[1], dl, h)
if ms > 0 then
  local t = redis.call('PEXPIRETIME', KEYS[1])
  if t == -1 or (t >= 0 and t < ms) then redis.call('PEXPIREAT', KEYS[1], ms + GRACE) end
end
return reply({1, removed})
`)

// byID starts the scripts that act on one session. KEYS[1] is P{k}:e,
// ARGV[5] the session's hash and ARGV[6] its shard k. ARGV[7] is the time
// of the call (the store's clock), at which the session must be live. It
// leaves rk (the record key) and f (its deadline and user hash).
const byID = prelude + byIDBody

const byIDBody = `
local h, k = ARGV[5], ARGV[6]
local rk = key(k, 's:' .. h)
local f = redis.call('HMGET', rk, 'dl', 'uh')
if not f[1] then
  forget(k, h, '')
  return false
end
if tonumber(f[1]) <= tonumber(ARGV[7]) then return false end
`

// refileLua files a session whose activity was just written under its new
// deadline, inline (no helper functions, for the hot paths of
// activateScript and updateScript): the deadline index, the user index
// scored by the activity, and the TTLs of the record and the indexes
// (extended by one more grace when due). It reads the locals dl, au (the
// activity), h, rk, uh (nil or empty for an anonymous session), pre
// (P{k}:) and GRACE, and leaves ms (the record's expiry, Unix ms).
const refileLua = `
local ms = math.floor(dl / 1000) + GRACE
local function keepAt(name)
  if ms <= 0 then return false end
  local t = redis.call('PEXPIRETIME', name)
  if t == -1 or (t >= 0 and t < ms) then
    redis.call('PEXPIREAT', name, ms + GRACE)
    return true
  end
  return false
end
local E = pre .. 'e'
redis.call('ZADD', E, dl, h)
keepAt(E)
redis.call('PEXPIREAT', rk, ms)
if uh and uh ~= '' then
  local U = pre .. 'u:' .. uh
  redis.call('ZADD', U, au, h)
  if keepAt(U) then redis.call('PEXPIREAT', pre .. 'n:' .. uh, ms + GRACE) end
end
`

// activateScript returns a live record, recording activity at ARGV[7]
// (microseconds; ARGV[8] in nanoseconds) first when the stored activity
// lags it by at least ARGV[9] (a fraction) of the idle timeout. ARGV[10]
// is the time of the call (the store's clock), at which the session must
// be live. KEYS[1]: P{k}:e. Activate runs it instead of a plain HGETALL
// when the activity may be due (see Store.load), so that a read costs one
// round trip whether or not it writes. It reads the record in RESP3 (a Lua
// table keyed by field, which the server builds faster than the RESP2
// array), patches what it read when it writes, and returns the record
// packed by cmsgpack: one bulk string, cheaper to send and to decode than
// the field/value array.
var activateScript = redis.NewScript(`#!lua
local h, k = ARGV[5], ARGV[6]
local rk = ARGV[1] .. '{' .. k .. '}:s:' .. h
redis.setresp(3)
local rec = redis.call('HGETALL', rk).map
redis.setresp(2)
if not rec.dl or tonumber(rec.dl) <= tonumber(ARGV[10]) then return false end
` + usLua + `
local at, au, itu = tonumber(ARGV[7]), us(rec.a), us(rec.it)
if at > au and at - au >= itu * tonumber(ARGV[9]) then
  local GRACE, adu, uh = tonumber(ARGV[3]), us(rec.ad), rec.uh
  local dl = at + itu
  if adu > 0 and adu < dl then dl = adu end
  local dls = string.format('%d', dl)
  redis.call('HSET', rk, 'a', ARGV[8], 'dl', dls)
  local pre = ARGV[1] .. '{' .. k .. '}:'
  au = at
` + refileLua + `
  rec.a, rec.dl = ARGV[8], dls
end
return cmsgpack.pack(rec)
`)

// updateScript writes changed values of a live session and its activity.
// KEYS[1]: P{k}:e. ARGV[7]: the time of the call (the store's clock), at
// which the session must be live; ARGV[8]: activity in microseconds;
// ARGV[9]: in nanoseconds; ARGV[10]: the touch window (a fraction of the
// idle timeout); ARGV[11]: how many field/value pairs follow; then the
// fields to delete. It returns 1. Running it twice leaves what running it
// once leaves. It runs on every request that changes its session, so its
// common path is two commands and no Lua table: one HMGET reads the
// deadline and times, one HSET writes the values straight from ARGV (one
// HDEL deletes). Only when the stored activity lags at by the touch window
// or more, as Activate writes it, does it write the activity and file the
// session again; the helpers are defined only on the path that forgets a
// vanished record.
var updateScript = redis.NewScript(`#!lua
local h, k = ARGV[5], ARGV[6]
local pre = ARGV[1] .. '{' .. k .. '}:'
local rk = pre .. 's:' .. h
local f = redis.call('HMGET', rk, 'dl', 'a', 'it')
if not f[1] then` + helpers + `
  forget(k, h, '')
  return false
end
if tonumber(f[1]) <= tonumber(ARGV[7]) then return false end
local last = 11 + 2 * tonumber(ARGV[11])
if last > 11 then
  if last < 7800 then redis.call('HSET', rk, unpack(ARGV, 12, last))
  else
    for i = 12, last, 2 do redis.call('HSET', rk, ARGV[i], ARGV[i + 1]) end
  end
end
if last < #ARGV then
  if #ARGV - last < 7000 then redis.call('HDEL', rk, unpack(ARGV, last + 1))
  else
    for i = last + 1, #ARGV do redis.call('HDEL', rk, ARGV[i]) end
  end
end
` + usLua + `
local at, au, itu = tonumber(ARGV[8]), us(f[2]), us(f[3])
if at > au and at - au >= itu * tonumber(ARGV[10]) then
  local g = redis.call('HMGET', rk, 'ad', 'uh')
  local GRACE, adu, uh = tonumber(ARGV[3]), us(g[1]), g[2]
  local dl = at + itu
  if adu > 0 and adu < dl then dl = adu end
  redis.call('HSET', rk, 'a', ARGV[9], 'dl', string.format('%d', dl))
  au = at
` + refileLua + `
end
return 1
`)

// deleteScript removes a live session and returns it. KEYS[2] is the
// reply key of this call: the record is renamed to it, so that a retry
// returns the record again (and nothing is copied).
var deleteScript = redis.NewScript(prelude + `
if redis.call('EXISTS', KEYS[2]) == 1 then return redis.call('HGETALL', KEYS[2]) end
` + byIDBody + `
redis.call('RENAME', rk, KEYS[2])
redis.call('PEXPIRE', KEYS[2], ` + replyMillis + `)
forget(k, h, f[2])
return redis.call('HGETALL', KEYS[2])
`)

// userScript returns (ARGV[8] "0") or removes and returns (ARGV[8] "1")
// the live sessions of a user. KEYS[1]: P{k}:u:<uh>; KEYS[2], when
// removing: the reply key of this call. ARGV[5..7]: k, uh, now. A user
// index that lost entries (its count P{k}:n:<uh> says so) is rebuilt first.
var userScript = redis.NewScript(prelude + `
local k, uh, now, del = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8] == '1'
if del then
  local done = redis.call('GET', KEYS[2])
  if done then return cmsgpack.unpack(done) end
end
local out = {}
for _, m in ipairs(members(k, uh)) do
  local mk = key(k, 's:' .. m)
  local mdl = redis.call('HGET', mk, 'dl')
  if not mdl then forget(k, m, uh)
  elseif tonumber(mdl) > now then
    if del then out[#out + 1] = finish(k, m, mk, uh)
    else out[#out + 1] = withH(redis.call('HGETALL', mk), m) end
  end
end
if del and #out > 0 then redis.call('SET', KEYS[2], cmsgpack.pack(out), 'PX', ` + replyMillis + `) end
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
      if all then out[#out + 1] = withH(redis.call('HGETALL', mk), m) end
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
// Each record returned carries its hash ("h") and shard ("k"), which name
// the claim. KEYS: the shards' P{k}:e and P{k}:l keys.
var expiredScript = redis.NewScript(prelude + `
local now, max, lease, nonce = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local untilT = now + lease
local out = {}
for i = 9, #ARGV do
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key(ARGV[i], 'l'), untilT, untilT)) do
    local ck = key(ARGV[i], 'c:' .. m)
    if redis.call('HGET', ck, 'cl') == nonce then out[#out + 1] = withK(redis.call('HGETALL', ck), m, ARGV[i]) end
  end
end
if #out > 0 then return out end
local function claim(k, m, ck)
  redis.call('HSET', ck, 'cl', nonce)
  redis.call('ZADD', key(k, 'l'), untilT, m)
  keep(key(k, 'l'), untilT)
  ttl(ck, untilT)
  out[#out + 1] = withK(redis.call('HGETALL', ck), m, k)
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
// KEYS: the P{k}:l keys of the shards named. It returns the positions
// (from 0) of the triples it acted on.
var claimScript = redis.NewScript(prelude + `
local ack, untilT = ARGV[5] == 'a', tonumber(ARGV[6])
local done = {}
for i = 7, #ARGV, 3 do
  local k, h, nonce = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ck = key(k, 'c:' .. h)
  if redis.call('HGET', ck, 'cl') == nonce then
    done[#done + 1] = (i - 7) / 3
    if ack then
      redis.call('ZREM', key(k, 'l'), h)
      redis.call('DEL', ck)
    else
      redis.call('ZADD', key(k, 'l'), 'XX', untilT, h)
      keep(key(k, 'l'), untilT)
      ttl(ck, untilT)
    end
  end
end
return done
`)
