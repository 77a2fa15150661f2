-- quota_admit.lua
-- Admit one job against its tenant's quota (docs/sharing.md#quotas).
-- KEYS: quota hash <p>quota:{t}, in-flight set <p>quota:{t}:inflight
-- (one tenant: same hash tag, one cluster slot).
-- ARGV: job id, stale_ms (in-flight entries older than this are pruned:
-- a job lost before it ended cannot hold a slot for longer), inflight
-- retry hint ms, enforce_inflight ('0': a worker counts the job in flight
-- but does not refuse it for the in-flight limit; absent = '1').
-- Returns {verdict, wait_ms, rate, burst, inflight_max, inflight_now}:
-- verdict 'NONE' (no quota: unlimited), 'OK' (admitted now, one token
-- taken), 'AGAIN' (admitted before: no second token), 'RATE' or
-- 'INFLIGHT' (refused; retry after wait_ms).  Writes only when it admits.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NONE', 0, '0', '0', 0, 0} end
local q = redis.call('HMGET', KEYS[1], 'rate', 'burst', 'inflight', 'tokens', 'ts')
local rate = tonumber(q[1]) or 0
local burst = tonumber(q[2]) or math.max(1, rate)
local maxin = tonumber(q[3]) or 0
-- include: now.lua
local nowms = tonumber(now)
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return {'AGAIN', 0, q[1] or '0', tostring(burst), maxin, redis.call('ZCARD', KEYS[2])}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowms - tonumber(ARGV[2]))
local n = redis.call('ZCARD', KEYS[2])
if maxin > 0 and n >= maxin and ARGV[4] ~= '0' then
  return {'INFLIGHT', tonumber(ARGV[3]), q[1] or '0', tostring(burst), maxin, n}
end
local tokens = burst
if rate > 0 then
  tokens = tonumber(q[4]) or burst
  local ts = tonumber(q[5]) or nowms
  if nowms > ts then tokens = tokens + (nowms - ts) * rate / 1000 end
  if tokens > burst then tokens = burst end
  if tokens < 1 then
    local wait = math.ceil((1 - tokens) * 1000 / rate)
    if wait < 1 then wait = 1 end
    return {'RATE', wait, q[1], tostring(burst), maxin, n}
  end
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens - 1), 'ts', now)
end
redis.call('ZADD', KEYS[2], nowms, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'OK', 0, q[1] or '0', tostring(burst), maxin, n + 1}
