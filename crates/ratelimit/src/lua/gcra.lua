-- GCRA. KEYS[1] = TAT (µs). ARGV = interval_us, tolerance_us, cost, now|''.
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local backlog = new_tat - now
if backlog <= tolerance then
  if backlog > 0 then
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', ttl_ms(backlog))
  end
  return {1, math.floor((tolerance - backlog) / interval), backlog, 0}
end
local current = tat - now
return {0, math.floor(math.max(tolerance - current, 0) / interval), current, backlog - tolerance}
