-- Sliding log. KEYS[1] = zset of request ids scored by time (µs), KEYS[2] = id sequence.
-- ARGV = window_us, limit, cost, now|''. A request at t counts while now < t + window.
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local total = redis.call('ZCARD', KEYS[1])
local function reset_after()
  local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #newest == 0 then return 0 end
  return tonumber(newest[2]) + window - now
end
if total + cost <= limit then
  if cost > 0 then
    local seq = redis.call('INCRBY', KEYS[2], cost)
    for i = 1, cost do
      redis.call('ZADD', KEYS[1], string.format('%d', now), seq - cost + i)
    end
    redis.call('PEXPIRE', KEYS[1], ttl_ms(window))
    redis.call('PEXPIRE', KEYS[2], ttl_ms(window))
  end
  return {1, limit - total - cost, reset_after(), 0}
end
local need = total + cost - limit
local oldest = redis.call('ZRANGE', KEYS[1], need - 1, need - 1, 'WITHSCORES')
local retry = tonumber(oldest[2]) + window - now
return {0, math.max(limit - total, 0), reset_after(), retry}
