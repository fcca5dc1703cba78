-- Extends a held lease, and resets the idle time of its task so that no
-- other worker reclaims it meanwhile. Reports a stop request.
-- KEYS: 1 run hash, 2 task stream
-- ARGV: 1 worker, 2 fence, 3 lease ms, 4 receipt, 5 group
local cur = redis.call('HMGET', KEYS[1], 'fence', 'lease_owner', 'interrupt')
if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[1] then
  return {'fenced'}
end
redis.call('HSET', KEYS[1], 'lease_until', tostring(now_ms() + tonumber(ARGV[3])))
if ARGV[4] ~= '' then
  redis.call('XCLAIM', KEYS[2], ARGV[5], ARGV[1], 0, ARGV[4], 'JUSTID')
end
return {'ok', cur[3] or ''}
