-- model_versions.lua
-- KEYS: model. Returns the versions present, ascending.
local out = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'v:' then
    local n = tonumber(string.sub(f, 3))
    if n then table.insert(out, n) end
  end
end
table.sort(out)
return out
