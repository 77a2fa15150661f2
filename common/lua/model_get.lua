-- model_get.lua
-- KEYS: model. ARGV: version ('0' = latest), max.  nil = unknown;
-- {version, bytes}; {version, length} when over max.
local v = ARGV[1]
if v == '0' then
  v = redis.call('HGET', KEYS[1], 'latest')
  if not v then return false end
end
local n = redis.call('HSTRLEN', KEYS[1], 'v:' .. v)
if n == 0 then return false end
if n > tonumber(ARGV[2]) then return {tonumber(v), n} end
return {tonumber(v), redis.call('HGET', KEYS[1], 'v:' .. v)}
