-- cancel.lua
-- KEYS: job, result, done. ARGV: result bytes, ttl_s, channel ('' =
-- none) and job id, as finish.lua.  Returns the status after the call, or
-- 'UNKNOWN'.
-- include: terminal.lua
local s = redis.call('HGET', KEYS[1], 'status')
if not s then return 'UNKNOWN' end
if terminal(s) then return s end
if s == 'RUNNING' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1')
  return s
end
-- include: now.lua
redis.call('HSET', KEYS[1], 'status', 'CANCELLED', 'finished_ms', now,
  'error', 'cancelled by a client before it ran', 'cancel_requested', '1')
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'result_writes', 1)
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], 'CANCELLED')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
if ARGV[3] and ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 'CANCELLED'
