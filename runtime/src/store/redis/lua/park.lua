-- Parks a run that cannot go on: sets status and reason, leaves every other
-- field as it is, releases the lease and the task. Fenced like a commit.
-- KEYS: 1 run hash, 2 history stream, 3 task stream, 4 active, 5 attention
-- ARGV: 1 worker, 2 fence, 3 receipt, 4 group, 5 reason, 6 history max,
--       7 id, 8 settled channel, 9 updated_at
local cur = redis.call('HMGET', KEYS[1], 'fence', 'lease_owner', 'seq', 'step')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[1] then
  return {'fenced'}
end
local seq = tostring((tonumber(cur[3] or '0') or 0) + 1)
redis.call('HSET', KEYS[1], 'status', 'parked', 'reason', ARGV[5], 'seq', seq, 'updated_at', ARGV[9])
redis.call('HDEL', KEYS[1], 'lease_owner', 'lease_until', 'lease_receipt')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
  'seq', seq, 'step', cur[4] or '', 'status', 'parked', 'event', 'parked: ' .. ARGV[5], 'at', ARGV[9])
drop_task(KEYS[3], ARGV[4], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[7])
redis.call('ZADD', KEYS[5], now_ms(), ARGV[7])
redis.call('PUBLISH', ARGV[8], ARGV[7])
return {'ok'}
