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

-- The last line of defence against data that outgrew every limit: a
-- decision whose arguments are larger than `max` bytes is refused before
-- any write. (The runtime refuses it before sending; this holds for any
-- client.) The refusal, or nil.
local function over_size(max)
  if not max then
    return nil
  end
  local bytes = 0
  for i = 1, #ARGV do bytes = bytes + #ARGV[i] end
  if bytes > max then
    return {outcome = 'too_large', bytes = bytes, max = max}
  end
  return nil
end

-- What a guard reads of a run: fence, lease owner, seq, lease end and the
-- stop request; nil if the run does not exist.
local function guarded(run)
  local cur = redis.call('HMGET', run, 'fence', 'lease_owner', 'seq', 'lease_until', 'interrupt')
  if not cur[3] and redis.call('EXISTS', run) == 0 then
    return nil
  end
  return cur
end

-- A receipt that is no stream entry id would fail XACK after writes: the
-- error to return before any, or nil.
local function bad_receipt(receipt)
  if receipt ~= '' and not string.match(receipt, '^%d+%-%d+$') then
    return redis.error_reply('receipt ' .. receipt .. ' is no stream entry id; nothing was written')
  end
  return nil
end

-- The `held` guard on what `guarded` read: the worker's fence and, unless
-- `seq` is '', its sequence number. The refusal, or nil.
local function refuse_held(cur, worker, fence, seq)
  if cur[1] ~= fence or cur[2] ~= worker then
    return {outcome = 'fenced'}
  end
  if seq ~= '' and cur[3] ~= seq then
    return {outcome = 'stale', found = cur[3] or ''}
  end
  return nil
end

-- Appends a transition's entry to the run's history stream, trimmed to
-- about `max` entries.
local function append_history(stream, max, seq, step, status, event, at)
  redis.call('XADD', stream, 'MAXLEN', '~', max, '*',
    'seq', seq, 'step', step, 'status', status, 'event', event, 'at', at)
end

-- Extends the lease of the worker that holds the run by `lease_ms`.
local function keep_lease(run, lease_ms)
  redis.call('HSET', run, 'lease_until', tostring(now_ms() + tonumber(lease_ms)))
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
