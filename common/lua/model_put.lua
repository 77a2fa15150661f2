-- model_put.lua
-- KEYS: model. ARGV: blob, meta, has_meta. Returns the new version.
local v = string.format('%d', redis.call('HINCRBY', KEYS[1], 'next', 1))
-- include: now.lua
redis.call('HSET', KEYS[1], 'v:' .. v, ARGV[1], 'created:' .. v, now,
  'latest', v)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'meta:' .. v, ARGV[2])
end
return tonumber(v)
