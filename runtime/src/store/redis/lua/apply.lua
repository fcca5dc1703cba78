-- Applies one decision of the core (`crate::core::decide`) to one run:
-- checks its guard before the first write (a script cannot roll back),
-- then writes the record's fields, appends the history entry and carries
-- out the named effects in order. It holds no policy: what to do comes
-- from the decision; this only knows how to do it in Redis.
--
-- KEYS: 1 run hash, 2 history stream, 3 signal list, 4 timers, 5 active,
--       6 done, 7 attention, 8 the stream of the task the lease was taken
--       for, 9.. streams effects dispatch to (named by index)
-- ARGV: 1 the decision as JSON (below), 2.. field/value pairs to write
--
-- The decision: {id, guard, pairs, delete, history, history_max, group,
-- retention_ms, channel, max_bytes, effects}. guard.kind is `absent`, `held`
-- ({worker, fence, seq, receipt, lease_ms}; seq '' = unchecked) or
-- `current` ({seq, exclusive}), `exists` or `unended` (not completed, failed,
-- cancelled, terminated or timed out). Each effect has an `op`.
--
-- The reply is JSON: {"outcome": "applied", "interrupt": .., "signal": ..}
-- or a refusal: `exists` (with the fields), `missing`, `fenced`, `stale`
-- (with the seq found), `held`, `full` (with the bound), `too_large` (with
-- the size and the maximum).
local d = cjson.decode(ARGV[1])
local run = KEYS[1]
local g = d.guard
local function reply(t) return cjson.encode(t) end
-- The stop request stored, read with the guard and kept up to date by the
-- effects below, for the reply.
local interrupt = false

local oversized = over_size(d.max_bytes)
if oversized then
  return reply(oversized)
end

if g.kind == 'absent' then
  if redis.call('EXISTS', run) == 1 then
    return reply({outcome = 'exists', fields = redis.call('HGETALL', run)})
  end
else
  local cur = guarded(run)
  if not cur then
    return reply({outcome = 'missing'})
  end
  interrupt = cur[5]
  if g.kind == 'held' then
    local bad = bad_receipt(g.receipt)
    if bad then
      return bad
    end
    local refused = refuse_held(cur, g.worker, g.fence, g.seq)
    if refused then
      return reply(refused)
    end
  elseif g.kind == 'exists' then
    -- nothing more to check
  elseif g.kind == 'unended' then
    local status = redis.call('HGET', run, 'status')
    if status and settled_statuses[status] and status ~= 'parked'
        and status ~= 'compensation_failed' then
      return reply({outcome = 'ended', status = status})
    end
  elseif g.kind == 'current' then
    if cur[3] ~= g.seq then
      return reply({outcome = 'stale', found = cur[3] or ''})
    end
    if g.exclusive and cur[2] and tonumber(cur[4] or '0') > now_ms() then
      return reply({outcome = 'held'})
    end
  else
    return redis.error_reply('unknown guard kind ' .. tostring(g.kind))
  end
end

-- Everything that can refuse the decision is checked before any write: an
-- effect this script does not know, a full signal buffer.
local known = {
  keep_lease = true, release = true, dispatch = true, wake_if_waiting = true,
  arm_timer = true, clear_timer = true, await_signal = true, consume_signal = true,
  append_signal = true, drop_signals = true, drop_unreadable_signals = true,
  set_interrupt = true, clear_interrupt = true, trim_history = true, index = true,
  expire = true, publish = true,
}
for _, e in ipairs(d.effects) do
  if not known[e.op] then
    return redis.error_reply('unknown effect ' .. tostring(e.op) .. '; nothing was written')
  end
  if e.op == 'append_signal' and redis.call('LLEN', KEYS[3]) >= e.bound then
    return reply({outcome = 'full', bound = e.bound})
  end
end

-- Signals first: what the run waits for is looked up after this decision's
-- own consumption. Entries are matched by their decoded fields.
local buffered = nil
local trim = false
for _, e in ipairs(d.effects) do
  if e.op == 'consume_signal' then
    for _, raw in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
      local ok, s = pcall(cjson.decode, raw)
      if ok and type(s) == 'table' and s.nonce == e.nonce then
        redis.call('LREM', KEYS[3], 1, raw)
        break
      end
    end
  elseif e.op == 'append_signal' then
    redis.call('RPUSH', KEYS[3], e.entry)
  elseif e.op == 'await_signal' then
    for _, raw in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
      local ok, s = pcall(cjson.decode, raw)
      if ok and type(s) == 'table' and s.name == e.name then
        buffered = raw
        break
      end
    end
  elseif e.op == 'trim_history' then
    trim = true
  end
end

if d.pairs > 0 then
  redis.call('HSET', run, unpack(ARGV, 2, 1 + 2 * d.pairs))
end
if #d.delete > 0 then
  redis.call('HDEL', run, unpack(d.delete))
end
-- A creation drops what an earlier run of the id left: one DEL for both.
local signals_dropped = false
if trim then
  for _, e in ipairs(d.effects) do
    if e.op == 'drop_signals' then
      signals_dropped = true
    end
  end
  if signals_dropped then
    redis.call('DEL', KEYS[2], KEYS[3])
  else
    redis.call('DEL', KEYS[2])
  end
end
if type(d.history) == 'table' then
  local h = d.history
  append_history(KEYS[2], d.history_max, h.seq, h.step, h.status, h.event, h.at)
end

local indexes = {active = KEYS[5], done = KEYS[6], attention = KEYS[7]}
-- The time the decision was made, from its index score: retention counts
-- from it, on the deciding worker's clock, like every score in the index.
local decided_at = nil

for _, e in ipairs(d.effects) do
  local op = e.op
  if op == 'keep_lease' then
    keep_lease(run, g.lease_ms)
  elseif op == 'release' then
    if buffered then
      keep_lease(run, g.lease_ms)
    else
      redis.call('HDEL', run, 'lease_owner', 'lease_until', 'lease_receipt')
      if g.kind == 'held' then
        drop_task(KEYS[8], d.group, g.receipt)
      end
    end
  elseif op == 'dispatch' then
    redis.call('XADD', KEYS[e.stream], '*', 'id', d.id)
  elseif op == 'wake_if_waiting' then
    if redis.call('HGET', run, 'waiting') == e.waiting then
      redis.call('XADD', KEYS[e.stream], '*', 'id', d.id)
    end
  elseif op == 'arm_timer' then
    if not buffered then
      redis.call('ZADD', KEYS[4], e.at, e.member)
    end
  elseif op == 'clear_timer' then
    redis.call('ZREM', KEYS[4], e.member)
  elseif op == 'drop_unreadable_signals' then
    for _, raw in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
      local ok, sig = pcall(cjson.decode, raw)
      if not ok or type(sig) ~= 'table' or type(sig.nonce) ~= 'number'
          or type(sig.name) ~= 'string' or type(sig.sent_at_ms) ~= 'number'
          or sig.payload == nil then
        redis.call('LREM', KEYS[3], 0, raw)
      end
    end
  elseif op == 'drop_signals' then
    if not signals_dropped then
      redis.call('DEL', KEYS[3])
    end
  elseif op == 'set_interrupt' then
    -- A cancel does not replace a stored terminate: the harder stop stands.
    local keep = false
    if e.kind == 'cancel' and interrupt then
      local ok, i = pcall(cjson.decode, interrupt)
      keep = ok and type(i) == 'table' and i.kind == 'terminate'
    end
    if not keep then
      redis.call('HSET', run, 'interrupt', e.value)
      interrupt = e.value
    end
  elseif op == 'clear_interrupt' then
    if interrupt then
      local ok, i = pcall(cjson.decode, interrupt)
      if ok and type(i) == 'table' and i.kind == e.kind and i.reason == e.reason then
        redis.call('HDEL', run, 'interrupt')
        interrupt = false
      end
    end
  elseif op == 'index' then
    decided_at = e.score
    redis.call('ZADD', indexes[e.index], e.score, d.id)
    if type(e.from) == 'string' then
      redis.call('ZREM', indexes[e.from], d.id)
    else
      for name, key in pairs(indexes) do
        if name ~= e.index then
          redis.call('ZREM', key, d.id)
        end
      end
    end
  elseif op == 'expire' then
    local retention = d.retention_ms
    if retention > 0 then
      redis.call('PEXPIRE', run, retention)
      redis.call('PEXPIRE', KEYS[2], retention)
      redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', (decided_at or now_ms()) - retention)
    end
  elseif op == 'publish' then
    redis.call('PUBLISH', d.channel, e.message)
  end
  -- await_signal, consume_signal, append_signal, trim_history: done above.
end

return reply({
  outcome = 'applied',
  interrupt = interrupt or '',
  signal = buffered or '',
})
