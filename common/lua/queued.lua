-- queued.lua
-- KEYS: job. ARGV: model, submit_ms, ttl_s, tenant ('' = none).
-- 1 = recorded, 0 = known
-- (a status is there: a worker took the job first, or it is done).
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then return 0 end
-- include: now.lua
redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'model', ARGV[1],
  'submit_ms', ARGV[2], 'queued_ms', now, 'attempts', '0',
  'result_writes', '0', 'skips', '0')
if ARGV[4] and ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'tenant', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
