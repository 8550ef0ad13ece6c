-- GCRA for several decisions in one call (the limiter's batcher). KEYS[i] = TAT of the
-- i-th decision (µs, decimal); ARGV[1] = now|'', ARGV[i + 1] = the i-th cost. One `TIME`
-- for the whole batch (its decisions were all waiting at once), one `MGET` for every
-- TAT, and one `SET … PX` per key that moved, at the end: each `redis.call` costs
-- ≈ 6 000–8 000 server instructions (callgrind), more than the arithmetic of a decision.
-- The same key may appear several times: decisions are applied in order on the TAT the
-- previous one left (`tats`), and the final write is the one the last sequential call
-- would have made (same TAT, same TTL: `now` is the same for all). Returns one integer
-- per decision, as gcra.lua.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now = tonumber(ARGV[1])
end
local stored = redis.call('MGET', unpack(KEYS))
local tats = {}
local moved = {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local tat = tats[key]
  if tat == nil then tat = tonumber(stored[i]) or now end
  if tat < now then tat = now end
  local cost = 1
  if ARGV[i + 1] ~= '1' then cost = tonumber(ARGV[i + 1]) end
  local new_tat = tat + cost * INTERVAL_US
  local backlog = new_tat - now
  if backlog <= TOLERANCE_US then
    if backlog > 0 and tats[key] ~= new_tat then
      if moved[key] == nil then
        moved[key] = true
        moved[#moved + 1] = key
      end
      tats[key] = new_tat
    elseif tats[key] == nil then
      tats[key] = tat
    end
    out[i] = backlog
  else
    tats[key] = tat
    out[i] = now - tat - 1
  end
end
for j = 1, #moved do
  local key = moved[j]
  local tat = tats[key]
  redis.call('SET', key, string.format('%d', tat), 'PX', string.format('%d', math.ceil((tat - now) / 1000)))
end
return out
