-- getb.lua
-- KEYS: string key. ARGV: max.  nil = absent/empty, integer = its
-- length when over max, else the bytes.
local n = redis.call('STRLEN', KEYS[1])
if n == 0 then return false end
if n > tonumber(ARGV[1]) then return n end
return redis.call('GET', KEYS[1])
