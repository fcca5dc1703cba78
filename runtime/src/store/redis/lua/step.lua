-- Applies the decision a worker commits most: a step of a run whose
-- worker keeps its lease (the core's effects are `keep_lease` alone; the
-- record is written, a history entry appended, no new generation begins).
-- It does what apply.lua does for such a decision, with the same guard
-- (common.lua) and the same replies, but reads its arguments from fixed
-- places instead of a document: they are named once, in Rust
-- (`StepArguments` in step.rs), and a line generated from those names
-- binds them to locals of the same names before this file
-- (`local worker, fence, .. = ARGV[1], ARGV[2], ..`), with
-- `step_arguments` their number.
--
-- KEYS: 1 run hash, 2 history stream
-- ARGV: the named arguments, then `delete_count` names of fields to
--       delete, then `pair_count` field/value pairs to write
local run = KEYS[1]
local function reply(t) return cjson.encode(t) end

local oversized = over_size(tonumber(max_bytes))
if oversized then
  return reply(oversized)
end
local cur = guarded(run)
if not cur then
  return reply({outcome = 'missing'})
end
local bad = bad_receipt(receipt)
if bad then
  return bad
end
local refused = refuse_held(cur, worker, fence, seq)
if refused then
  return reply(refused)
end

local deletes, writes = tonumber(delete_count), tonumber(pair_count)
local delete_from = step_arguments + 1
local pairs_from = delete_from + deletes
if pairs_from + 2 * writes - 1 ~= #ARGV then
  return redis.error_reply('the step has ' .. #ARGV .. ' arguments, not what it counts; nothing was written')
end
if writes > 0 then
  redis.call('HSET', run, unpack(ARGV, pairs_from, pairs_from + 2 * writes - 1))
end
if deletes > 0 then
  redis.call('HDEL', run, unpack(ARGV, delete_from, delete_from + deletes - 1))
end
append_history(KEYS[2], history_max, h_seq, h_step, h_status, h_event, h_at)
keep_lease(run, lease_ms)

return reply({outcome = 'applied', interrupt = cur[5] or '', signal = ''})
