-- GCRA. KEYS[1] = TAT (µs, decimal). ARGV = cost, now|''. The emission interval and the
-- tolerance (µs) are this script's constants, written in by the limiter for its quota:
-- each `tonumber` of an argument is a libc `strtod` (≈ 3 000 instructions per argument
-- in the server, measured with callgrind), so nothing the quota fixes is sent per call.
-- Returns one integer: the backlog (≥ 0) when allowed; when denied, -1 - (TAT - now).
-- The client derives remaining / reset / retry from it and the quota.
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(ARGV[2])
end
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local cost = 1
if ARGV[1] ~= '1' then cost = tonumber(ARGV[1]) end
local new_tat = tat + cost * INTERVAL_US
local backlog = new_tat - now
if backlog <= TOLERANCE_US then
  if backlog > 0 then
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', math.ceil(backlog / 1000)))
  end
  return backlog
end
return now - tat - 1
