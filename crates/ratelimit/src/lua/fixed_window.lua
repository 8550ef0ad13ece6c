-- Fixed window. KEYS[1] = hash {start (µs), count}. ARGV = window_us, limit, cost, now|''.
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local start = now - (now % window)
local state = redis.call('HMGET', KEYS[1], 'start', 'count')
local count = tonumber(state[2]) or 0
local stored = tonumber(state[1])
if stored ~= nil and stored > start then
  -- The clock stepped back into an earlier window: no time passed (keep the count).
  start = stored
  now = stored
end
if stored ~= start then count = 0 end
local until_end = start + window - now
if count + cost <= limit then
  count = count + cost
  if cost > 0 then
    redis.call('HSET', KEYS[1], 'start', string.format('%d', start), 'count', count)
    redis.call('PEXPIRE', KEYS[1], ttl_ms(until_end))
  end
  return {1, limit - count, until_end, 0}
end
return {0, limit - count, until_end, until_end}
