-- Takes the lease on a run for a task, unless another worker's lease is
-- still valid; bumps the fence so that older holders' commits are refused.
-- KEYS: 1 run hash, 2 task stream
-- ARGV: 1 worker, 2 lease ms, 3 receipt (task entry id), 4 group
if redis.call('EXISTS', KEYS[1]) == 0 then
  drop_task(KEYS[2], ARGV[4], ARGV[3])
  return {'missing'}
end
local cur = redis.call('HMGET', KEYS[1], 'status', 'lease_owner', 'lease_until', 'lease_receipt')
if cur[1] and settled_statuses[cur[1]] then
  drop_task(KEYS[2], ARGV[4], ARGV[3])
  return {'settled'}
end
local now = now_ms()
if cur[2] and cur[2] ~= ARGV[1] and tonumber(cur[3] or '0') > now then
  -- A duplicate task can go; the holder's own task must stay, so that it is
  -- delivered again if the holder dies.
  if cur[4] ~= ARGV[3] then
    drop_task(KEYS[2], ARGV[4], ARGV[3])
  end
  return {'busy'}
end
local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_until', tostring(now + tonumber(ARGV[2])),
  'lease_receipt', ARGV[3])
return {'held', tostring(fence), redis.call('HGETALL', KEYS[1])}
