-- Job administration: ARGV[4] = op, then its arguments. Returns {events, ...}.
local op = ARGV[4]
if op == 'cancel' then
  -- ARGV[5] = id. Returns {events, 'cancelled'|'running'|'finished'|'missing'}.
  local id = ARGV[5]
  local h = load(id)
  if h == nil then return {EV, 'missing'} end
  if h.st == 'running' then return {EV, 'running'} end
  if h.st ~= 'pending' then return {EV, 'finished'} end
  remove_pending(id, h)
  release_unique(id, h)
  drop_job(id, h.q)
  ev(E_CANCELLED)
  if h.b then batch_done(h.b, false) end
  prune(h.q)
  return {EV, 'cancelled'}
elseif op == 'delete' then
  -- ARGV[5] = id. Returns {events, 'ok'|'running'|'missing'}.
  local id = ARGV[5]
  local h = load(id)
  if h == nil then return {EV, 'missing'} end
  if h.st == 'running' then return {EV, 'running'} end
  if h.st == 'pending' then
    remove_pending(id, h)
    if h.b then batch_done(h.b, false) end
  elseif h.st == 'dead' then
    unbury(id, h)
  else
    redis.call('HINCRBY', ckey(h.q), 'done', -1)
    redis.call('ZREM', P .. 'ok:' .. h.q, id)
  end
  release_unique(id, h)
  drop_job(id, h.q)
  prune(h.q)
  return {EV, 'ok'}
elseif op == 'retry_dead' or op == 'retry_all_dead' then
  local function revive(id)
    local h = load(id)
    if h == nil then return 'missing' end
    if h.st ~= 'dead' then return 'notdead' end
    if h.uk and redis.call('HEXISTS', P .. 'uniq', h.uk) == 1 then return 'unique' end
    unbury(id, h)
    if h.b then
      local bk = P .. 'b:' .. h.b
      if redis.call('EXISTS', bk) == 1 then
        redis.call('HINCRBY', bk, 'failed', -1)
        redis.call('HINCRBY', bk, 'pending', 1)
      else
        redis.call('HDEL', jkey(id), 'b')
      end
    end
    redis.call('HSET', jkey(id), 'st', 'pending', 'a', '0', 'ra', d(NOW))
    redis.call('HDEL', jkey(id), 'at')
    if h.uk then redis.call('HSET', P .. 'uniq', h.uk, id) end
    insert_pending(id, h.q, tonumber(h.pr), NOW, tonumber(h.ne) > 0)
    return 'ok'
  end
  if op == 'retry_dead' then return {EV, revive(ARGV[5])} end
  -- retry_all_dead: ARGV[5] = queue, ARGV[6] = after id, ARGV[7] = chunk.
  -- Returns {events, revived, last id seen, more (1/0)}.
  local ids = redis.call('ZRANGEBYSCORE', P .. 'd:' .. ARGV[5], '(' .. ARGV[6], '+inf', 'LIMIT', 0, tonumber(ARGV[7]))
  local n = 0
  for _, id in ipairs(ids) do
    if revive(id) == 'ok' then n = n + 1 end
  end
  return {EV, n, ids[#ids] or ARGV[6], #ids == tonumber(ARGV[7]) and 1 or 0}
elseif op == 'delete_all_dead' then
  -- ARGV[5] = queue, ARGV[6] = chunk. Returns {events, deleted, more (1/0)}.
  local q = ARGV[5]
  local ids = redis.call('ZRANGE', P .. 'd:' .. q, 0, tonumber(ARGV[6]) - 1)
  for _, id in ipairs(ids) do
    local h = load(id)
    unbury(id, h)
    release_unique(id, h)
    drop_job(id, q)
  end
  prune(q)
  return {EV, #ids, #ids == tonumber(ARGV[6]) and 1 or 0}
elseif op == 'pause' then
  redis.call('SADD', P .. 'paused', ARGV[5])
  return {EV}
elseif op == 'resume' then
  redis.call('SREM', P .. 'paused', ARGV[5])
  if redis.call('ZCARD', P .. 'r:' .. ARGV[5]) > 0 then wake(ARGV[5], 64) end
  return {EV}
elseif op == 'periodic' then
  -- ARGV[5] = schedule, ARGV[6] = tick, ARGV[7..16] = the job.
  -- Returns {events, false} when that tick (or a later one) was enqueued, else {events, id, created}.
  local last = redis.call('HGET', P .. 'cron', ARGV[5])
  if last and tonumber(last) >= tonumber(ARGV[6]) then return {EV, false} end
  redis.call('HSET', P .. 'cron', ARGV[5], ARGV[6])
  local r = insert_new(ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], '')
  return {EV, r[1], r[2]}
elseif op == 'batch' then
  -- ARGV[5] = callbacks (serde JSON), ARGV[6] = on_success spec|'', ARGV[7] = on_failure
  -- spec|'', ARGV[8..] = members, 10 fields each (the batch field is ignored).
  -- Returns {events, batch id, member ids...}.
  local bid = d(redis.call('INCR', P .. 'ids'))
  local total = (#ARGV - 7) / 10
  redis.call('HSET', P .. 'b:' .. bid, 'total', d(total), 'pending', d(total), 'succeeded', '0',
    'failed', '0', 'ca', d(NOW), 'cbs', ARGV[5], 'cs', ARGV[6], 'cf', ARGV[7])
  local out = {EV, bid}
  for i = 8, #ARGV, 10 do
    local r = insert_new(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
      ARGV[i + 6], '', ARGV[i + 8], bid)
    out[#out + 1] = r[1]
  end
  return out
elseif op == 'limits' then
  -- ARGV[5] = queue, ARGV[6] = concurrency|'', ARGV[7] = interval µs|'', ARGV[8] = tolerance µs|''.
  local k = P .. 'lim:' .. ARGV[5]
  redis.call('DEL', k)
  if ARGV[6] ~= '' then redis.call('HSET', k, 'conc', ARGV[6]) end
  if ARGV[7] ~= '' then redis.call('HSET', k, 'iv', ARGV[7], 'tol', ARGV[8]) end
  return {EV}
end
return redis.error_reply('keel-jobs: unknown admin op ' .. tostring(op))
