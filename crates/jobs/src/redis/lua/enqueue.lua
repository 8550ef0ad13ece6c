-- enqueue / enqueue_many: ARGV[4..] = jobs, 10 fields each
-- (queue, kind, payload, priority, max_attempts, run_at, timeout_ms|'', unique|'', tags, batch|'').
-- Returns {events, id1, created1, id2, created2, ...}.
local out = {EV}
for i = 4, #ARGV, 10 do
  local r = insert_new(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
    ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9])
  out[#out + 1] = r[1]
  out[#out + 1] = r[2]
end
return out
