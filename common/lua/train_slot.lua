-- train_slot.lua - KEYS: slots (zset: worker id -> end of its lease, ms),
-- workers (set of worker ids).  ARGV: id, lease_ms (0: release), floor,
-- heartbeat key prefix ("<prefix>worker:{"), group.
-- A worker of the group may start training only while at least floor
-- other live workers of the group (a heartbeat naming the group) hold no
-- training slot: the inference floor (docs/training.md#inference-floor).
-- A slot is held for lease_ms and renewed by asking again; a worker that
-- dies loses it when the lease ends.  The heartbeat keys are read by name
-- (not in KEYS): a single Redis (or Sentinel), as the rest of aas.
-- Returns {held (1/0), live workers of the group, slots held}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if lease == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return {0, 0, redis.call('ZCARD', KEYS[1])}
end
local live = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local hb = redis.call('GET', ARGV[4] .. m .. '}')
  if hb then
    local ok, rec = pcall(cjson.decode, hb)
    if ok and type(rec) == 'table' and rec.group == ARGV[5] then live = live + 1 end
  end
end
local training = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return {1, live, training}
end
-- Taking a slot leaves live - training - 1 workers serving inference.
if live - training - 1 >= tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], lease * 2)
  return {1, live, training + 1}
end
return {0, live, training}
