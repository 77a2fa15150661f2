-- model_delete.lua
-- KEYS: model. ARGV: version.  -1 = no such version, else the number of
-- versions left.  Moves latest to the highest remaining version.
local v = ARGV[1]
if redis.call('HEXISTS', KEYS[1], 'v:' .. v) == 0 then return -1 end
redis.call('HDEL', KEYS[1], 'v:' .. v, 'meta:' .. v, 'created:' .. v)
local best, count = 0, 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'v:' then
    local n = tonumber(string.sub(f, 3))
    if n then
      count = count + 1
      if n > best then best = n end
    end
  end
end
if redis.call('HGET', KEYS[1], 'latest') == v then
  if best > 0 then
    redis.call('HSET', KEYS[1], 'latest', string.format('%d', best))
  else
    redis.call('HDEL', KEYS[1], 'latest')
  end
end
return count
