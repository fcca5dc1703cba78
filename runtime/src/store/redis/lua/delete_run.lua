-- Deletes everything of a run: its hash, history and signal list, its
-- timer and its index entries (also what a hash deleted by hand left
-- behind). Returns how many keys and members were removed.
-- KEYS: 1 run hash, 2 history stream, 3 signal list, 4 timers, 5 active,
--       6 done, 7 attention
-- ARGV: 1 run id, 2 a ZSCAN pattern matching the run's timer member
--       (`*\n<id>`, the id escaped)
local n = redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
for i = 5, 7 do
  n = n + redis.call('ZREM', KEYS[i], ARGV[1])
end
local cursor = '0'
repeat
  local page = redis.call('ZSCAN', KEYS[4], cursor, 'MATCH', ARGV[2], 'COUNT', 1000)
  cursor = page[1]
  for i = 1, #page[2], 2 do
    n = n + redis.call('ZREM', KEYS[4], page[2][i])
  end
until cursor == '0'
return n
