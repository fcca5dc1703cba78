-- Commits one transition: checks the fence and the sequence number before
-- the first write (a script cannot roll back), then writes the checkpoint,
-- appends the history entry, and extends or releases the lease.
-- KEYS: 1 run hash, 2 history stream, 3 task stream, 4 active, 5 done, 6 attention
-- ARGV: 1 worker, 2 fence, 3 expected seq, 4 release ('1'/'0'), 5 receipt,
--       6 group, 7 lease ms, 8 history max, 9 retention ms, 10 id,
--       11 settled channel, 12 new seq, 13 step, 14 status, 15 event,
--       16 updated_at, 17 number of field/value pairs N, 18 the message to
--       publish if the run settles (its id, then the settled checkpoint),
--       19 .. 18+2N pairs to set, then names of fields to delete
local cur = redis.call('HMGET', KEYS[1], 'fence', 'lease_owner', 'seq')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[1] then
  return {'fenced'}
end
if cur[3] ~= ARGV[3] then
  return {'stale', cur[3] or ''}
end
local n = tonumber(ARGV[17])
redis.call('HSET', KEYS[1], unpack(ARGV, 19, 18 + 2 * n))
if #ARGV > 18 + 2 * n then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 19 + 2 * n))
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*',
  'seq', ARGV[12], 'step', ARGV[13], 'status', ARGV[14], 'event', ARGV[15], 'at', ARGV[16])
local now = now_ms()
if ARGV[4] == '1' then
  redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until', 'lease_receipt')
  drop_task(KEYS[3], ARGV[6], ARGV[5])
else
  redis.call('HSET', KEYS[1], 'lease_until', tostring(now + tonumber(ARGV[7])))
end
local status = ARGV[14]
if settled_statuses[status] then
  redis.call('ZREM', KEYS[4], ARGV[10])
  if status == 'completed' or status == 'failed' then
    redis.call('ZADD', KEYS[5], now, ARGV[10])
    local retention = tonumber(ARGV[9])
    if retention > 0 then
      redis.call('PEXPIRE', KEYS[1], retention)
      redis.call('PEXPIRE', KEYS[2], retention)
      redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - retention)
    end
  else
    redis.call('ZADD', KEYS[6], now, ARGV[10])
  end
  redis.call('PUBLISH', ARGV[11], ARGV[18])
end
return {'ok'}
