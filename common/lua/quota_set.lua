-- quota_set.lua
-- Replace a tenant's quota: the limits given are stored, the others
-- removed; the bucket's state (tokens, ts) is kept, so re-setting a quota
-- does not refill it.  KEYS: quota hash.  ARGV: rate, burst, inflight
-- ('' = not set; the caller has validated them).
redis.call('HDEL', KEYS[1], 'rate', 'burst', 'inflight')
local names = {'rate', 'burst', 'inflight'}
for i, f in ipairs(names) do
  if ARGV[i] ~= '' then redis.call('HSET', KEYS[1], f, ARGV[i]) end
end
return 1
