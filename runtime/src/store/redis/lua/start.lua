-- Creates a run unless one with this id exists, and queues its first task.
-- KEYS: 1 run hash, 2 history stream, 3 task stream, 4 active index
-- ARGV: 1 id, 2 history max length, 3 created_at (ms), then field/value pairs
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'existing', redis.call('HGETALL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'fence', '0', unpack(ARGV, 4))
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'seq', '0', 'step', 'start', 'status', 'running', 'event', 'created', 'at', ARGV[3])
return {'created'}
