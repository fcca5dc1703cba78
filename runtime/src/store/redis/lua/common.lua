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

local settled_statuses = {completed = true, failed = true, compensation_failed = true, parked = true}
