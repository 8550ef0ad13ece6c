-- Token bucket. KEYS[1] = hash {tokens, last (µs)}. ARGV = interval_us, capacity, cost, now|''.
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = capacity
  last = now
end
if tokens > capacity then tokens = capacity end
if now > last then
  local added = math.floor((now - last) / interval)
  if tokens + added >= capacity then
    tokens = capacity
    last = now
  else
    tokens = tokens + added
    last = last + added * interval
  end
end
local function wait_for(have, want)
  if have >= want then return 0 end
  return math.max((want - have) * interval - math.max(now - last, 0), 0)
end
if tokens >= cost then
  tokens = tokens - cost
  local reset = wait_for(tokens, capacity)
  if reset > 0 then
    redis.call('HSET', KEYS[1], 'tokens', tokens, 'last', string.format('%d', last))
    redis.call('PEXPIRE', KEYS[1], ttl_ms(reset))
  else
    redis.call('DEL', KEYS[1])
  end
  return {1, tokens, reset, 0}
end
return {0, tokens, wait_for(tokens, capacity), wait_for(tokens, cost)}
