-- Buffers a signal for a run, and wakes the run if it waits for it and no
-- worker holds it.
-- KEYS: 1 run hash, 2 signal list, 3 the run's task stream
-- ARGV: 1 signal name, 2 entry (JSON), 3 the sender's bound, for a run
--       that stores none (`signal_bound`), 4 run id
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local cur = redis.call('HMGET', KEYS[1], 'status', 'waiting', 'signal_bound')
if cur[1] and settled_statuses[cur[1]] then
  return {'settled', cur[1]}
end
local bound = tonumber(cur[3] or ARGV[3]) or tonumber(ARGV[3])
if redis.call('LLEN', KEYS[2]) >= bound then
  return {'full', tostring(bound)}
end
redis.call('RPUSH', KEYS[2], ARGV[2])
if cur[2] == 'signal:' .. ARGV[1] and not leased(KEYS[1]) then
  redis.call('XADD', KEYS[3], '*', 'id', ARGV[4])
end
return {'ok'}
