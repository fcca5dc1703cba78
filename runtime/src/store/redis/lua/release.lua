-- Gives a lease up without a transition, acknowledging the task; with
-- dispatch, queues a task for the run on another stream. Fenced.
-- KEYS: 1 run hash, 2 task stream, 3 dispatch stream, 4 timers
-- ARGV: 1 worker, 2 fence, 3 receipt, 4 group, 5 dispatch ('1'/'0'), 6 id,
--       7 wake at ms ('' none), 8 the run's timer member
local cur = redis.call('HMGET', KEYS[1], 'fence', 'lease_owner')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[1] then
  return {'fenced'}
end
redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until', 'lease_receipt')
drop_task(KEYS[2], ARGV[4], ARGV[3])
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[6])
end
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[8])
end
return {'ok'}
