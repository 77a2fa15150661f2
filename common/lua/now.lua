-- now: the Redis server's clock in unix ms, as a decimal string
-- (string.format %d keeps 13-digit numbers out of exponent notation).
-- Included by scripts that stamp times ("-- include: now.lua").
local t = redis.call('TIME')
local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
