-- Shared helpers, prepended to every script.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Acknowledges a task and deletes its stream entry, so the stream only ever
-- holds work that is waiting or in progress.
local function drop_task(stream, group, receipt)
  if receipt ~= '' then
    redis.call('XACK', stream, group, receipt)
    redis.call('XDEL', stream, receipt)
  end
end

-- `settled_statuses` (every status a run ends in) is defined before this
-- file, from the runtime's own list, so the two cannot drift apart.

-- Takes the lease on one run for one task (see acquire.lua).
local function acquire_one(run, stream, signals, worker, lease_ms, receipt, group)
  if redis.call('EXISTS', run) == 0 then
    drop_task(stream, group, receipt)
    return {'missing'}
  end
  local cur = redis.call('HMGET', run, 'status', 'lease_owner', 'lease_until', 'lease_receipt')
  if cur[1] and settled_statuses[cur[1]] then
    drop_task(stream, group, receipt)
    return {'settled'}
  end
  local now = now_ms()
  if cur[2] and cur[2] ~= worker and tonumber(cur[3] or '0') > now then
    -- A duplicate task can go; the holder's own task must stay, so that it
    -- is delivered again if the holder dies.
    if cur[4] ~= receipt then
      drop_task(stream, group, receipt)
    end
    return {'busy'}
  end
  local fence = redis.call('HINCRBY', run, 'fence', 1)
  redis.call('HSET', run, 'lease_owner', worker, 'lease_until', tostring(now + tonumber(lease_ms)),
    'lease_receipt', receipt)
  return {'held', tostring(fence), redis.call('HGETALL', run), redis.call('LRANGE', signals, 0, -1)}
end

-- Whether a run is held by a worker whose lease is still valid.
local function leased(run)
  local cur = redis.call('HMGET', run, 'lease_owner', 'lease_until')
  return cur[1] and tonumber(cur[2] or '0') > now_ms()
end
