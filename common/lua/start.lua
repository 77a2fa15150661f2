-- start.lua
-- KEYS: job. ARGV: worker, src ('' = keep), model ('' = keep), ttl_s,
-- tenant ('' = keep).
-- Returns the status after the call.
-- include: terminal.lua
local s = redis.call('HGET', KEYS[1], 'status')
if terminal(s) then
  redis.call('HINCRBY', KEYS[1], 'skips', 1)
  return s
end
-- include: now.lua
local f = {'status', 'RUNNING', 'worker', ARGV[1], 'started_ms', now}
if ARGV[2] ~= '' then f[7] = 'src'; f[8] = ARGV[2] end
if ARGV[3] ~= '' then f[#f + 1] = 'model'; f[#f + 1] = ARGV[3] end
if ARGV[5] and ARGV[5] ~= '' then f[#f + 1] = 'tenant'; f[#f + 1] = ARGV[5] end
redis.call('HSET', KEYS[1], unpack(f))
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'RUNNING ' .. n
