-- Claims tasks whose worker has been silent for longer than `min idle` (it
-- died, or is stalled past its lease), with their delivery counts.
-- KEYS: 1 task stream
-- ARGV: 1 group, 2 consumer, 3 min idle ms, 4 count
local out = {}
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
for _, p in ipairs(pending) do
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1])
  local entry = claimed[1]
  if entry and entry[2] then
    local run = ''
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'id' then run = entry[2][i + 1] end
    end
    table.insert(out, {entry[1], run, tostring(p[4] + 1)})
  elseif not entry then
    -- The entry was deleted (its task was acknowledged meanwhile).
    redis.call('XACK', KEYS[1], ARGV[1], p[1])
  end
end
return out
