-- Puts a parked run or a failed compensation back to work (an operator
-- fixed the cause): back to `compensating` if it was unwinding (only then
-- is `ending` set), to `running` otherwise; a fresh retry budget, one
-- history entry, a task on the run's queue. Refused while a worker holds
-- the run. Mirrors `MemoryStore::resume`.
-- KEYS: 1 run hash, 2 history stream, 3 task stream, 4 active, 5 attention
-- ARGV: 1 id, 2 event, 3 history max, 4 updated_at, 5 settled channel,
--       6 the message that tells waiters the run is no longer settled
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'missing'}
end
local cur = redis.call('HMGET', KEYS[1], 'status', 'seq', 'step', 'ending', 'created_at', 'stopped')
if cur[1] ~= 'parked' and cur[1] ~= 'compensation_failed' then
  return {'not_stopped', cur[1] or ''}
end
if leased(KEYS[1]) then
  return {'held'}
end
local status = 'running'
if cur[4] then
  status = 'compensating'
end
local seq = tostring((tonumber(cur[2] or '0') or 0) + 1)
redis.call('HSET', KEYS[1], 'status', status, 'seq', seq, 'attempts', '0', 'updated_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'last_error', 'lease_owner', 'lease_until', 'lease_receipt')
-- The failure is resolved: the reason goes back to why the run was
-- stopped, if it was.
if cur[6] then
  redis.call('HSET', KEYS[1], 'reason', cur[6])
else
  redis.call('HDEL', KEYS[1], 'reason')
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'seq', seq, 'step', cur[3] or '', 'status', status, 'event', ARGV[2], 'at', ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(cur[5] or '0') or 0, ARGV[1])
redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return {'ok', status}
