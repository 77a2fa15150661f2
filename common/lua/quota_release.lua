-- quota_release.lua
-- A job became terminal (or was never published): its id leaves its
-- tenant's in-flight set.  KEYS: in-flight set.  ARGV: job id.
-- Returns 1 if it was there, 0 if not (released before: idempotent).
-- A script rather than a bare ZREM so many go out in one pipelined round
-- trip with the store's script helper.
return redis.call('ZREM', KEYS[1], ARGV[1])
