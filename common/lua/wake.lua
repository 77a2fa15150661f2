-- wake.lua
-- KEYS: job, done. ARGV: token.  A waiter's push-back after BLPOP: only
-- when terminal, and with the job hash's remaining TTL (BLPOP of the
-- only element deleted the list and its TTL).  Returns the status.
-- include: terminal.lua
local s = redis.call('HGET', KEYS[1], 'status')
if terminal(s) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return s
