-- Shared preamble: `now` in microseconds from the server's clock (or, only to demonstrate
-- clock skew, from the last argument when it is not empty). Redis >= 5 replicates script
-- effects, so calling TIME before a write is allowed.
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function ttl_ms(us)
  local ms = math.ceil(us / 1000)
  if ms < 1 then ms = 1 end
  return ms
end
