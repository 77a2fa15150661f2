-- lease.lua - KEYS: lease. ARGV: owner, ttl_ms.  One scheduler per
-- consumer group: take the lease when it is free, renew it when it is
-- ours (ttl_ms > 0), release it when it is ours (ttl_ms = 0).
-- Returns {1, owner, ttl} held by owner; {0, holder, pttl} held by
-- another (holder false: free, after a release).
local cur = redis.call('GET', KEYS[1])
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end
  return {0, false, 0}
end
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  return {1, ARGV[1], ttl}
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, cur, ttl}
end
return {0, cur, redis.call('PTTL', KEYS[1])}
