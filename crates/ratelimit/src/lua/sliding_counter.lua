-- Sliding counter. KEYS[1] = hash {index, previous, current}. ARGV = window_us, limit, cost, now|''.
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local index = math.floor(now / window)
local state = redis.call('HMGET', KEYS[1], 'index', 'previous', 'current')
local stored = tonumber(state[1]) or index
local previous = tonumber(state[2]) or 0
local current = tonumber(state[3]) or 0
if index < stored then
  -- The clock stepped back into an earlier window: no time passed.
  index = stored
  now = stored * window
end
if index == stored + 1 then
  previous = current
  current = 0
elseif index > stored + 1 then
  previous = 0
  current = 0
end
local start = index * window
local elapsed = now - start
local function weighted(extra)
  return previous * (window - elapsed) + (current + extra) * window
end
local function remaining(extra)
  return math.max(math.floor((limit * window - weighted(extra)) / window), 0)
end
local function reset_after(cur)
  if cur > 0 then return start + 2 * window - now end
  if previous > 0 then return start + window - now end
  return 0
end
local function elapsed_needed(prev, budget)
  if prev == 0 then return 0 end
  return math.max(window - math.min(math.floor(budget * window / prev), window), 0)
end
if weighted(cost) <= limit * window then
  current = current + cost
  if cost > 0 then
    redis.call('HSET', KEYS[1], 'index', string.format('%d', index), 'previous', previous, 'current', current)
    redis.call('PEXPIRE', KEYS[1], ttl_ms(start + 2 * window - now))
  end
  return {1, remaining(0), reset_after(current), 0}
end
local retry
if current + cost <= limit then
  retry = start + elapsed_needed(previous, limit - current - cost) - now
else
  retry = start + window + elapsed_needed(current, limit - cost) - now
end
return {0, remaining(0), reset_after(current), retry}
