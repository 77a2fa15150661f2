-- claim.lua
-- Before publishing: take the id.  KEYS: job.  ARGV: payload hash,
-- ttl_s, idempotent ('1'/'0').  NEW = the id is ours; SAME = taken by
-- the same payload and the caller resubmits on purpose; EXISTS = taken
-- by the same payload; OTHER = taken by another payload (or by a job
-- from before payload hashes).
local h = redis.call('HGET', KEYS[1], 'payload_hash')
if not h then
  if redis.call('EXISTS', KEYS[1]) == 1 then return 'OTHER' end
  redis.call('HSET', KEYS[1], 'payload_hash', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 'NEW'
end
if h ~= ARGV[1] then return 'OTHER' end
if ARGV[3] == '1' then return 'SAME' end
return 'EXISTS'
