-- The top of the keel-jobs function library: helpers shared by every function. Each
-- function starts with begin(ARGV): ARGV[1] = key prefix, ARGV[2] = now (ms, the caller's
-- injected clock), ARGV[3] = '1' when succeeded jobs are kept; function-specific
-- arguments start at ARGV[4]. Key layout: see src/redis/mod.rs.
--
-- The per-call state below lives in the library's upvalues, loaded once and shared by
-- every call: Redis runs one function at a time, and begin() resets all of it first.
local P, NOW, KEEP
-- Event counters returned to the caller (same order as the store's Events).
local EV
-- Newly available jobs per queue: wake tokens pushed when the call ends.
local WOKEN
local function begin(args)
  P = args[1]
  NOW = tonumber(args[2])
  KEEP = args[3] == '1'
  EV = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
  WOKEN = {}
end
local E_ENQ, E_DUP, E_LEASED, E_DONE, E_FAILED, E_RETRIED = 1, 2, 3, 4, 5, 6
local E_DEAD, E_RECOVERED, E_RELEASED, E_CANCELLED, E_STALE = 7, 8, 9, 10, 11
local function ev(i, n) EV[i] = EV[i] + (n or 1) end
local function d(n) return string.format('%d', n) end
-- redis.call(cmd, key, items...) in slices of 2 000 items (`unpack` is limited by Lua's
-- C stack, ~8 000 values); `items` of ZADD must hold whole score/member pairs.
local function call_many(cmd, key, items)
  for i = 1, #items, 2000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 1999, #items)))
  end
end
local function jkey(id) return P .. 'j:' .. id end
local function ekey(id) return P .. 'e:' .. id end
local function ckey(q) return P .. 'c:' .. q end
-- Ready set member: score is -priority; the member sorts by (run_at, id) within it.
local function member(run_at, id) return string.format('%016d%020d', run_at, id) end
local function member_id(m) return d(tonumber(string.sub(m, 17))) end

local function load(id)
  local flat = redis.call('HGETALL', jkey(id))
  if #flat == 0 then return nil end
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end

local function record(id)
  local flat = redis.call('HGETALL', jkey(id))
  if #flat == 0 then return false end
  return {flat, redis.call('LRANGE', ekey(id), 0, -1)}
end

-- Idle workers block on a per-queue wake list (BLPOP); every script pushes at most one
-- token per newly available job (64 at most) when it ends.
local function wake(q, n) WOKEN[q] = (WOKEN[q] or 0) + n end
local function flush_wake()
  for q, n in pairs(WOKEN) do
    local w = P .. 'w:' .. q
    local ones = {}
    for i = 1, math.min(n, 64) do ones[i] = '1' end
    redis.call('RPUSH', w, unpack(ones))
    redis.call('LTRIM', w, -64, -1)
    redis.call('PEXPIRE', w, 60000)
  end
end

local function insert_pending(id, q, prio, run_at, retrying)
  if run_at <= NOW then
    redis.call('ZADD', P .. 'r:' .. q, -prio, member(run_at, id))
    if retrying then redis.call('HINCRBY', ckey(q), 'rr', 1) end
    wake(q, 1)
  else
    redis.call('ZADD', P .. 's:' .. q, run_at, id)
    if retrying then redis.call('HINCRBY', ckey(q), 'rs', 1) end
  end
end

local function remove_pending(id, h)
  local q = h.q
  local retrying = tonumber(h.ne) > 0
  if redis.call('ZREM', P .. 's:' .. q, id) == 1 then
    if retrying then redis.call('HINCRBY', ckey(q), 'rs', -1) end
  else
    redis.call('ZREM', P .. 'r:' .. q, member(tonumber(h.ra), id))
    if retrying then redis.call('HINCRBY', ckey(q), 'rr', -1) end
  end
end

-- Moves due scheduled jobs of q into its ready set (at most max per call).
local function promote(q, max)
  local s = P .. 's:' .. q
  local due = redis.call('ZRANGEBYSCORE', s, '-inf', NOW, 'LIMIT', 0, max)
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jkey(id), 'pr', 'ra', 'ne')
    redis.call('ZREM', s, id)
    redis.call('ZADD', P .. 'r:' .. q, -tonumber(f[1]), member(tonumber(f[2]), id))
    if tonumber(f[3]) > 0 then
      redis.call('HINCRBY', ckey(q), 'rs', -1)
      redis.call('HINCRBY', ckey(q), 'rr', 1)
    end
  end
end

-- Forgets a queue's bookkeeping once it holds no job.
local function prune(q)
  if redis.call('ZCARD', P .. 'r:' .. q) > 0 or redis.call('ZCARD', P .. 's:' .. q) > 0 then
    return
  end
  local c = redis.call('HGETALL', ckey(q))
  for i = 2, #c, 2 do
    if tonumber(c[i]) ~= 0 then return end
  end
  redis.call('DEL', ckey(q))
  redis.call('SREM', P .. 'queues', q)
end

local function release_unique(id, h)
  if h.uk and redis.call('HGET', P .. 'uniq', h.uk) == id then
    redis.call('HDEL', P .. 'uniq', h.uk)
  end
end

local function push_error(id, attempt, kind, msg)
  local e = ekey(id)
  redis.call('RPUSH', e, '{"attempt":' .. d(attempt) .. ',"at":' .. d(NOW) .. ',"kind":"' ..
    kind .. '","message":' .. cjson.encode(msg) .. '}')
  redis.call('LTRIM', e, -32, -1)
  redis.call('HINCRBY', jkey(id), 'ne', 1)
end

local function drop_job(id, q)
  redis.call('DEL', jkey(id), ekey(id))
  redis.call('ZREM', P .. 'all', id)
  redis.call('ZREM', P .. 'qa:' .. q, id)
end

-- Inserts a new job; returns {id, created (1/0)}.
local function insert_new(q, k, p, pr, ma, ra, to, uk, tg, b)
  if uk ~= '' then
    local existing = redis.call('HGET', P .. 'uniq', uk)
    if existing then
      ev(E_DUP)
      return {existing, 0}
    end
  end
  local id = d(redis.call('INCR', P .. 'ids'))
  local f = {'id', id, 'q', q, 'k', k, 'p', p, 'pr', pr, 'a', '0', 'ma', ma, 'ra', ra, 'ea', d(NOW),
    'tg', tg, 'st', 'pending', 'ne', '0', 'lr', '0'}
  if to ~= '' then f[#f + 1] = 'to'; f[#f + 1] = to end
  if uk ~= '' then
    f[#f + 1] = 'uk'; f[#f + 1] = uk
    redis.call('HSET', P .. 'uniq', uk, id)
  end
  if b ~= '' then f[#f + 1] = 'b'; f[#f + 1] = b end
  redis.call('HSET', jkey(id), unpack(f))
  redis.call('ZADD', P .. 'all', id, id)
  redis.call('ZADD', P .. 'qa:' .. q, id, id)
  redis.call('SADD', P .. 'queues', q)
  insert_pending(id, q, tonumber(pr), tonumber(ra), false)
  ev(E_ENQ)
  return {id, 1}
end

local batch_done

-- Dead-letters a job whose last error (kind, msg) was just pushed.
local function bury(id, h, kind, msg)
  local q = h.q
  local g = redis.sha1hex(kind .. '\n' .. msg)
  redis.call('HSET', jkey(id), 'st', 'dead', 'at', d(NOW), 'dg', g)
  release_unique(id, h)
  redis.call('HINCRBY', ckey(q), 'dead', 1)
  redis.call('ZADD', P .. 'd:' .. q, id, id)
  redis.call('HSET', P .. 'dg:' .. q, g, kind .. '\n' .. msg)
  redis.call('ZADD', P .. 'dg:' .. q .. ':' .. g, NOW, id)
  ev(E_DEAD)
  if h.b then batch_done(h.b, false) end
end

-- Takes a dead job out of the dead indexes.
local function unbury(id, h)
  local q = h.q
  redis.call('ZREM', P .. 'd:' .. q, id)
  if h.dg then
    local gk = P .. 'dg:' .. q .. ':' .. h.dg
    redis.call('ZREM', gk, id)
    if redis.call('ZCARD', gk) == 0 then redis.call('HDEL', P .. 'dg:' .. q, h.dg) end
  end
  redis.call('HDEL', jkey(id), 'dg')
  redis.call('HINCRBY', ckey(q), 'dead', -1)
end

batch_done = function(bid, ok)
  local bk = P .. 'b:' .. bid
  if redis.call('EXISTS', bk) == 0 then return end
  local pending = redis.call('HINCRBY', bk, 'pending', -1)
  redis.call('HINCRBY', bk, ok and 'succeeded' or 'failed', 1)
  if pending > 0 then return end
  local failed = tonumber(redis.call('HGET', bk, 'failed'))
  local spec = redis.call('HGET', bk, failed == 0 and 'cs' or 'cf')
  redis.call('DEL', bk)
  if spec and spec ~= '' then
    local c = cjson.decode(spec)
    local tags = cjson.decode(c[8])
    tags[#tags + 1] = 'batch:' .. bid
    insert_new(c[1], c[2], c[3], c[4], c[5], d(NOW + tonumber(c[6])), c[7], '', cjson.encode(tags), '')
  end
end

-- Gives back an expired lease: available again (attempt counted) or dead.
local function expire(id)
  local h = load(id)
  local q = h.q
  redis.call('ZREM', P .. 'lease', id)
  redis.call('HINCRBY', ckey(q), 'running', -1)
  redis.call('HINCRBY', jkey(id), 'lr', 1)
  ev(E_RECOVERED)
  local a = tonumber(h.a)
  local msg = 'lease expired: worker lost during attempt ' .. d(a)
  push_error(id, a, 'LeaseExpired', msg)
  if a >= tonumber(h.ma) then
    bury(id, h, 'LeaseExpired', msg)
  else
    redis.call('HSET', jkey(id), 'st', 'pending', 'ra', d(NOW))
    insert_pending(id, q, tonumber(h.pr), NOW, true)
  end
end

local function reap(max)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'lease', '-inf', NOW, 'LIMIT', 0, max)
  for _, id in ipairs(ids) do expire(id) end
  return #ids
end

-- The job if `token` is its current, unexpired lease; else nil and 1 (stale) or
-- 2 (expired: the lease is given back now).
local function check_lease(id, token)
  local h = load(id)
  if h == nil or h.st ~= 'running' or h.tk ~= token then
    ev(E_STALE)
    return nil, 1
  end
  if tonumber(h.dl) <= NOW then
    expire(id)
    ev(E_STALE)
    return nil, 2
  end
  return h, 0
end

local function take_running(id, h)
  redis.call('ZREM', P .. 'lease', id)
  redis.call('HINCRBY', ckey(h.q), 'running', -1)
end

