-- quota_get.lua
-- Read a tenant's quota and its state now, writing nothing.
-- KEYS: quota hash, in-flight set.  ARGV: stale_ms.
-- Returns {} when the tenant has no quota, else {rate, burst, inflight_max,
-- inflight_now, tokens_now} (rate, burst and tokens as strings: fractions;
-- tokens_now '' when there is no rate limit).
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local q = redis.call('HMGET', KEYS[1], 'rate', 'burst', 'inflight', 'tokens', 'ts')
local rate = tonumber(q[1]) or 0
local burst = tonumber(q[2]) or math.max(1, rate)
-- include: now.lua
local nowms = tonumber(now)
local n = redis.call('ZCOUNT', KEYS[2], '(' .. (nowms - tonumber(ARGV[1])), '+inf')
local tokens = ''
if rate > 0 then
  local t = tonumber(q[4]) or burst
  local ts = tonumber(q[5]) or nowms
  if nowms > ts then t = t + (nowms - ts) * rate / 1000 end
  if t > burst then t = burst end
  tokens = string.format('%.3f', t)
end
return {q[1] or '0', tostring(burst), tonumber(q[3]) or 0, n, tokens}
