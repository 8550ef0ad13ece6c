-- Reads (counts also promotes due jobs): ARGV[4] = op, then its arguments.
local op = ARGV[4]
if op == 'get' then
  return {EV, record(ARGV[5])}
elseif op == 'counts' then
  -- Returns {events, {queue, scheduled, available, running, retrying, dead, succeeded, paused}...}.
  local names = redis.call('SUNION', P .. 'queues', P .. 'paused')
  local out = {}
  for _, q in ipairs(names) do
    promote(q, 10000)
    local c = redis.call('HMGET', ckey(q), 'running', 'dead', 'done', 'rr', 'rs')
    for i = 1, 5 do c[i] = tonumber(c[i] or '0') end
    local zr = redis.call('ZCARD', P .. 'r:' .. q)
    local zs = redis.call('ZCARD', P .. 's:' .. q)
    out[#out + 1] = {q, zs - c[5], zr - c[4], c[1], c[4] + c[5], c[2], c[3],
      redis.call('SISMEMBER', P .. 'paused', q)}
  end
  return {EV, out}
elseif op == 'list' then
  -- ARGV[5] = queue|'', ARGV[6] = state|'', ARGV[7] = kind|'', ARGV[8] = after, ARGV[9] = limit.
  -- Scans the narrowest id index, at most 100 000 entries per call.
  local q, state, kind = ARGV[5], ARGV[6], ARGV[7]
  local after, limit = ARGV[8], tonumber(ARGV[9])
  local idx = P .. 'all'
  if q ~= '' and state == 'Dead' then idx = P .. 'd:' .. q
  elseif q ~= '' and state == 'Succeeded' then idx = P .. 'ok:' .. q
  elseif q ~= '' then idx = P .. 'qa:' .. q end
  local out, scanned = {}, 0
  while #out < limit and scanned < 100000 do
    local ids = redis.call('ZRANGEBYSCORE', idx, '(' .. after, '+inf', 'LIMIT', 0, 500)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      after = id
      scanned = scanned + 1
      local f = redis.call('HMGET', jkey(id), 'q', 'k', 'st', 'ne', 'ra')
      local s
      if f[3] == 'running' then s = 'Running'
      elseif f[3] == 'dead' then s = 'Dead'
      elseif f[3] == 'succeeded' then s = 'Succeeded'
      elseif f[4] ~= '0' then s = 'Retrying'
      elseif tonumber(f[5]) > NOW then s = 'Scheduled'
      else s = 'Available' end
      if (q == '' or f[1] == q) and (kind == '' or f[2] == kind) and (state == '' or s == state) then
        out[#out + 1] = record(id)
        if #out >= limit then break end
      end
    end
  end
  return {EV, out}
elseif op == 'dead_by_error' then
  -- ARGV[5] = queue|''. Returns {events, {label, count, latest, tied ids...}...}.
  local names = ARGV[5] ~= '' and {ARGV[5]} or redis.call('SMEMBERS', P .. 'queues')
  local out = {}
  for _, q in ipairs(names) do
    local groups = redis.call('HGETALL', P .. 'dg:' .. q)
    for i = 1, #groups, 2 do
      local gk = P .. 'dg:' .. q .. ':' .. groups[i]
      local top = redis.call('ZREVRANGE', gk, 0, 0, 'WITHSCORES')
      if #top > 0 then
        local g = {groups[i + 1], redis.call('ZCARD', gk), top[2]}
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', gk, top[2], top[2], 'LIMIT', 0, 100)) do
          g[#g + 1] = id
        end
        out[#out + 1] = g
      end
    end
  end
  return {EV, out}
elseif op == 'batch' then
  return {EV, redis.call('HGETALL', P .. 'b:' .. ARGV[5])}
elseif op == 'limits' then
  return {EV, redis.call('HMGET', P .. 'lim:' .. ARGV[5], 'conc', 'iv', 'tol')}
end
return redis.error_reply('keel-jobs: unknown read op ' .. tostring(op))
