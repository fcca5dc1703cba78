-- Acknowledges a task that needs no work.
-- KEYS: 1 task stream
-- ARGV: 1 group, 2 receipt
drop_task(KEYS[1], ARGV[1], ARGV[2])
return {'ok'}
