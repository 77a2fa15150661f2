-- model_meta.lua
-- KEYS: model. ARGV: version ('0' = latest), max meta length.
-- nil = unknown; {version, meta|nil|length-if-over-max, created}.
local v = ARGV[1]
if v == '0' then
  v = redis.call('HGET', KEYS[1], 'latest')
  if not v then return false end
end
if redis.call('HEXISTS', KEYS[1], 'v:' .. v) == 0 then return false end
local m = redis.call('HGET', KEYS[1], 'meta:' .. v)
if m and #m > tonumber(ARGV[2]) then m = #m end
local c = redis.call('HGET', KEYS[1], 'created:' .. v)
return {tonumber(v), m, c}
