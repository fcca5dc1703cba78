-- Replaces a schedule's spec if it is still the one the caller read
-- (compare-and-set on its stored text), so a pause never undoes a firing's
-- progress made meanwhile. Returns 1 if replaced, 0 if it changed or is gone.
-- KEYS: 1 schedules hash, 2 due sorted set
-- ARGV: 1 id, 2 the spec as read, 3 the new spec, 4 next firing ms ('' none)
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
return 1
