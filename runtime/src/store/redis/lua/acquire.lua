-- Takes the leases on runs for a batch of tasks, unless another worker's
-- lease on a run is still valid; bumps each fence so that older holders'
-- commits are refused. One answer per task, in order: the run's fields and
-- its buffered signals.
-- KEYS: run hash 1..N, then task stream 1..N, then signal list 1..N
-- ARGV: 1 worker, 2 lease ms, 3 group, then receipt 1..N
local n = #KEYS / 3
local out = {}
for i = 1, n do
  out[i] = acquire_one(KEYS[i], KEYS[n + i], KEYS[2 * n + i], ARGV[1], ARGV[2], ARGV[3 + i], ARGV[3])
end
return out
