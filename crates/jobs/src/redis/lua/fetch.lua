-- fetch: ARGV[4] = queue, ARGV[5] = limit, ARGV[6] = lease ms.
-- Reaps expired leases, promotes due jobs, applies the queue's global concurrency limit
-- and rate limit (GCRA, in µs), then leases jobs in (priority desc, run_at, id) order.
-- Returns {events, {record...}, tokens..., deadline}.
local q = ARGV[4]
local n = tonumber(ARGV[5])
local lease = tonumber(ARGV[6])
reap(1000)
if redis.call('SISMEMBER', P .. 'paused', q) == 1 then return {EV, {}} end
promote(q, 10000)
local lim = redis.call('HMGET', P .. 'lim:' .. q, 'conc', 'iv', 'tol')
if lim[1] then
  local running = tonumber(redis.call('HGET', ckey(q), 'running') or '0')
  n = math.min(n, tonumber(lim[1]) - running)
end
local tat, now_us, iv
if lim[2] and n > 0 then
  iv = tonumber(lim[2])
  now_us = NOW * 1000
  tat = tonumber(redis.call('GET', P .. 'gcra:' .. q) or '0')
  if tat < now_us then tat = now_us end
  n = math.min(n, math.floor((now_us + tonumber(lim[3]) - tat) / iv))
end
if n <= 0 then return {EV, {}} end
local r = P .. 'r:' .. q
local members = redis.call('ZRANGE', r, 0, n - 1)
local got = #members
if got == 0 then return {EV, {}} end
redis.call('ZREMRANGEBYRANK', r, 0, got - 1)
if tat then
  local new_tat = tat + got * iv
  redis.call('SET', P .. 'gcra:' .. q, d(new_tat), 'PX', math.ceil((new_tat - now_us) / 1000) + 1000)
end
local last = redis.call('INCRBY', P .. 'tokens', got)
local deadline = d(NOW + lease)
local now = d(NOW)
local out = {}
local c = ckey(q)
local retrying = 0
local leased = {}
for i, m in ipairs(members) do
  local id = member_id(m)
  local jk = jkey(id)
  redis.call('HINCRBY', jk, 'a', 1)
  redis.call('HSET', jk, 'st', 'running', 'tk', d(last - got + i), 'dl', deadline, 'sa', now)
  leased[2 * i - 1] = deadline
  leased[2 * i] = id
  -- The record as `record(id)` returns it; the error history only when there is one.
  local flat = redis.call('HGETALL', jk)
  local errors = {}
  for f = 1, #flat, 2 do
    if flat[f] == 'ne' and flat[f + 1] ~= '0' then
      retrying = retrying + 1
      errors = redis.call('LRANGE', ekey(id), 0, -1)
    end
  end
  out[i] = {flat, errors}
end
call_many('ZADD', P .. 'lease', leased)
if retrying > 0 then redis.call('HINCRBY', c, 'rr', -retrying) end
redis.call('HINCRBY', c, 'running', got)
ev(E_LEASED, got)
return {EV, out}
