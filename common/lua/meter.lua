-- meter.lua
-- KEYS: usage hash, metered-ids set (one tenant's hour), the tenant's
-- quota in-flight set (all three under the tenant's hash tag).
-- ARGV: job id, model, failed ('1'/'0'), rows, compute_us, queue_ms,
-- bytes_in, bytes_out, sample_epochs, ids_ttl_s.
-- The job leaves the in-flight set (its quota release: idempotent, so
-- also on a repeat), in the same round trip as its metering.
-- 1 = counted, 0 = this job was counted before (a redelivery, a retry).
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[2], ARGV[10])
local m = ARGV[2] .. '|'
redis.call('HINCRBY', KEYS[1], m .. 'jobs', 1)
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], m .. 'failed', 1) end
local names = {'rows', 'compute_us', 'queue_ms', 'bytes_in', 'bytes_out', 'sample_epochs'}
for i, n in ipairs(names) do
  if ARGV[3 + i] ~= '0' then redis.call('HINCRBY', KEYS[1], m .. n, ARGV[3 + i]) end
end
return 1
