-- finish.lua
-- KEYS: job, result, done. ARGV: status, version ('' = none), error
-- ('' = none), result bytes, has_result ('1'/'0'), ttl_s, usage ('' =
-- none: the metering figures, kept so a redelivery meters the same).
-- The finish time (ms, > 0) = written, 0 = already terminal.
-- include: terminal.lua
if terminal(redis.call('HGET', KEYS[1], 'status')) then
  return 0
end
-- include: now.lua
local f = {'status', ARGV[1], 'finished_ms', now}
if ARGV[2] ~= '' then f[#f + 1] = 'version'; f[#f + 1] = ARGV[2] end
if ARGV[3] ~= '' then f[#f + 1] = 'error'; f[#f + 1] = ARGV[3] end
if ARGV[7] and ARGV[7] ~= '' then f[#f + 1] = 'usage'; f[#f + 1] = ARGV[7] end
redis.call('HSET', KEYS[1], unpack(f))
redis.call('HINCRBY', KEYS[1], 'result_writes', 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
if ARGV[5] == '1' then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[6])
else redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[6])
if ARGV[8] and ARGV[8] ~= '' then redis.call('PUBLISH', ARGV[8], ARGV[9]) end
return tonumber(now)
