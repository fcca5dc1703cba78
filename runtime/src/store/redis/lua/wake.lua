-- Queues a task for a run that is not settled.
-- KEYS: 1 run hash, 2 the run's task stream
-- ARGV: 1 run id
local status = redis.call('HGET', KEYS[1], 'status')
if status and not settled_statuses[status] then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
end
return {'ok'}
