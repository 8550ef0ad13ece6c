-- heartbeat / fail / release of a lease (complete: complete.lua, in groups): ARGV[4] = op, ARGV[5] = id,
-- ARGV[6] = token, then per op: heartbeat: extend ms; fail: kind, message, retry_at|''.
-- Returns {events, code (0 ok, 1 stale, 2 expired), ...}.
local op, id, token = ARGV[4], ARGV[5], ARGV[6]
local h, code = check_lease(id, token)
if not h then return {EV, code} end
local q = h.q
if op == 'heartbeat' then
  local deadline = d(NOW + tonumber(ARGV[7]))
  redis.call('HSET', jkey(id), 'dl', deadline)
  redis.call('ZADD', P .. 'lease', deadline, id)
  return {EV, 0, deadline}
end
take_running(id, h)
if op == 'fail' then
  local kind, msg, retry_at = ARGV[7], ARGV[8], ARGV[9]
  local a = tonumber(h.a)
  push_error(id, a, kind, msg)
  ev(E_FAILED)
  if retry_at ~= '' and a < tonumber(h.ma) then
    local at = math.max(tonumber(retry_at), NOW)
    redis.call('HSET', jkey(id), 'st', 'pending', 'ra', d(at))
    insert_pending(id, q, tonumber(h.pr), at, true)
    ev(E_RETRIED)
    return {EV, 0, d(at)}
  end
  bury(id, h, kind, msg)
  return {EV, 0, false}
else -- release: the attempt does not count
  local a = math.max(tonumber(h.a) - 1, 0)
  local ra = math.min(tonumber(h.ra), NOW)
  redis.call('HSET', jkey(id), 'st', 'pending', 'a', d(a), 'ra', d(ra))
  insert_pending(id, q, tonumber(h.pr), ra, tonumber(h.ne) > 0)
  ev(E_RELEASED)
  return {EV, 0}
end
