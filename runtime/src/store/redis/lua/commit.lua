-- Commits one transition: checks the fence and the sequence number before
-- the first write (a script cannot roll back), then writes the checkpoint,
-- appends the history entry, consumes a signal, arms the run's timer, and
-- extends or releases the lease.
-- KEYS: 1 run hash, 2 history stream, 3 task stream, 4 active, 5 done,
--       6 attention, 7 signal list, 8 timers, 9 dispatch task stream
-- ARGV: 1 worker, 2 fence, 3 expected seq, 4 release ('1'/'0'), 5 receipt,
--       6 group, 7 lease ms, 8 history max, 9 retention ms, 10 id,
--       11 settled channel, 12 new seq, 13 step, 14 status, 15 event,
--       16 updated_at, 17 number of field/value pairs N, 18 the message to
--       publish if the run settles, 19 signal awaited ('' none), 20 wake at
--       ms ('' none), 21 nonce of the consumed signal ('' none), 22 dispatch
--       ('1'/'0'), 23 the stop request to clear, if still the stored one
--       ('' none), 24 trim the history
--       ('1'/'0'), 25 the run's timer member, 26 .. 25+2N pairs to set, then
--       names of fields to delete
local cur = redis.call('HMGET', KEYS[1], 'fence', 'lease_owner', 'seq', 'interrupt')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[1] then
  return {'fenced'}
end
if cur[3] ~= ARGV[3] then
  return {'stale', cur[3] or ''}
end
if ARGV[21] ~= '' then
  local suffix = '"nonce":' .. ARGV[21] .. '}'
  for _, e in ipairs(redis.call('LRANGE', KEYS[7], 0, -1)) do
    if string.sub(e, -string.len(suffix)) == suffix then
      redis.call('LREM', KEYS[7], 1, e)
      break
    end
  end
end
local buffered = ''
if ARGV[19] ~= '' then
  for _, e in ipairs(redis.call('LRANGE', KEYS[7], 0, -1)) do
    local ok, d = pcall(cjson.decode, e)
    if ok and d.name == ARGV[19] then
      buffered = e
      break
    end
  end
end
local n = tonumber(ARGV[17])
redis.call('HSET', KEYS[1], unpack(ARGV, 26, 25 + 2 * n))
if #ARGV > 25 + 2 * n then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 26 + 2 * n))
end
-- Only this script and interrupt.lua write `interrupt`, and scripts run
-- one at a time: the value read above is current.
local interrupt = cur[4] or ''
if ARGV[23] ~= '' and interrupt == ARGV[23] then
  redis.call('HDEL', KEYS[1], 'interrupt')
  interrupt = ''
end
if ARGV[24] == '1' then
  redis.call('DEL', KEYS[2])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*',
  'seq', ARGV[12], 'step', ARGV[13], 'status', ARGV[14], 'event', ARGV[15], 'at', ARGV[16])
local now = now_ms()
if ARGV[4] == '1' and buffered == '' then
  redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until', 'lease_receipt')
  drop_task(KEYS[3], ARGV[6], ARGV[5])
  if ARGV[22] == '1' then
    redis.call('XADD', KEYS[9], '*', 'id', ARGV[10])
  end
else
  redis.call('HSET', KEYS[1], 'lease_until', tostring(now + tonumber(ARGV[7])))
end
local status = ARGV[14]
if settled_statuses[status] then
  redis.call('ZREM', KEYS[8], ARGV[25])
  redis.call('DEL', KEYS[7])
  redis.call('ZREM', KEYS[4], ARGV[10])
  if status == 'compensation_failed' or status == 'parked' then
    redis.call('ZADD', KEYS[6], now, ARGV[10])
  else
    redis.call('ZADD', KEYS[5], now, ARGV[10])
    local retention = tonumber(ARGV[9])
    if retention > 0 then
      redis.call('PEXPIRE', KEYS[1], retention)
      redis.call('PEXPIRE', KEYS[2], retention)
      redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - retention)
    end
  end
  redis.call('PUBLISH', ARGV[11], ARGV[18])
elseif ARGV[20] ~= '' and buffered == '' then
  redis.call('ZADD', KEYS[8], ARGV[20], ARGV[25])
end
return {'ok', interrupt, buffered}
