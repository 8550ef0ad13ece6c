-- complete_many: acknowledges a group of successful runs in one call (the store gathers
-- concurrent `complete` calls). ARGV[4..] = id, token pairs. Each pair is checked as
-- settle.lua checks a lease, in order; a stale or expired one changes nothing of its own
-- (an expired lease is given back, as ever). The index updates of the group (lease set,
-- running counters, id indexes, succeeded total) are sent once per group, not per job.
-- Returns {events, succeeded total (0 when none succeeded), code per pair (0 ok, 1
-- stale, 2 expired)}.
local out = {EV, 0}
local done = {}
local per_queue = {}
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local h, code = check_lease(id, ARGV[i + 1])
  if h then
    local q = h.q
    done[#done + 1] = id
    local ids = per_queue[q]
    if not ids then ids = {}; per_queue[q] = ids end
    ids[#ids + 1] = id
    release_unique(id, h)
    ev(E_DONE)
    if h.b then batch_done(h.b, true) end
    if KEEP then
      redis.call('HSET', jkey(id), 'st', 'succeeded', 'at', d(NOW))
      redis.call('ZADD', P .. 'ok:' .. q, id, id)
    else
      redis.call('DEL', jkey(id), ekey(id))
    end
    -- Either way the job is no longer 'running': a second pair for it in this group
    -- is stale, as it would be in a later call.
  end
  out[#out + 1] = code
end
if #done > 0 then
  call_many('ZREM', P .. 'lease', done)
  out[2] = redis.call('INCRBY', P .. 'succ', #done)
  if not KEEP then call_many('ZREM', P .. 'all', done) end
  for q, ids in pairs(per_queue) do
    redis.call('HINCRBY', ckey(q), 'running', -#ids)
    if KEEP then
      redis.call('HINCRBY', ckey(q), 'done', #ids)
    else
      call_many('ZREM', P .. 'qa:' .. q, ids)
      prune(q)
    end
  end
end
return out
