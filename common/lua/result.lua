-- result.lua
-- KEYS: job, result. ARGV: max.  A waiter's one read when the job may
-- be done: nil = not terminal (or unknown); {status} = terminal without
-- a result; {status, length} when over max; {status, bytes}.
-- include: terminal.lua
local s = redis.call('HGET', KEYS[1], 'status')
if not terminal(s) then return false end
local n = redis.call('STRLEN', KEYS[2])
if n == 0 then return {s} end
if n > tonumber(ARGV[1]) then return {s, n} end
return {s, redis.call('GET', KEYS[2])}
