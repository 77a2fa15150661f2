-- progress.lua
-- KEYS: job. ARGV: progress JSON.  Returns 1 if cancel was requested.
if redis.call('HGET', KEYS[1], 'status') ~= 'RUNNING' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  return 1
end
return 0
