-- Creates or replaces a schedule.
-- KEYS: 1 schedules hash, 2 due sorted set
-- ARGV: 1 id, 2 spec (JSON), 3 next firing ms ('' none, or paused)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return {'ok'}
