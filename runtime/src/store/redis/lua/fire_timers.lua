-- Moves due timers of runs on the served queues to their task streams.
-- Members are '<queue>\n<run id>'.
-- KEYS: 1 timers, 2.. task stream of each served queue
-- ARGV: 1 now ms, 2 max, 3.. the served queue names, in the order of KEYS
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local fired = 0
for _, member in ipairs(due) do
  local nl = string.find(member, '\n', 1, true)
  if nl then
    local queue = string.sub(member, 1, nl - 1)
    local id = string.sub(member, nl + 1)
    for i = 3, #ARGV do
      if ARGV[i] == queue then
        redis.call('XADD', KEYS[i - 1], '*', 'id', id)
        redis.call('ZREM', KEYS[1], member)
        fired = fired + 1
        break
      end
    end
  end
end
return fired
