-- unclaim.lua
-- The publish failed: give the id back unless the job has a status
-- (then a copy did arrive and a worker or QUEUED recorded it).
-- KEYS: job.  ARGV: payload hash.
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then return 0 end
if redis.call('HGET', KEYS[1], 'payload_hash') ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
