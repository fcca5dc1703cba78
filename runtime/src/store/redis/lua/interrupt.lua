-- Records a stop request (cancel, terminate) and wakes the run unless a
-- worker holds it (the holder sees it at its next commit or renewal).
-- KEYS: 1 run hash, 2 the run's task stream
-- ARGV: 1 request (JSON), 2 run id
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local status = redis.call('HGET', KEYS[1], 'status')
if status and settled_statuses[status] then
  return {'settled', status}
end
redis.call('HSET', KEYS[1], 'interrupt', ARGV[1])
if not leased(KEYS[1]) then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])
end
return {'ok'}
