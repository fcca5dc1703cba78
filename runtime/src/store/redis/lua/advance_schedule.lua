-- Stores a schedule's progress if its next firing time is still the one the
-- caller fired (compare-and-set), so two workers never advance it twice.
-- KEYS: 1 schedules hash, 2 due sorted set
-- ARGV: 1 id, 2 expected next ms, 3 spec (JSON), 4 new next ms ('' none)
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
return 1
