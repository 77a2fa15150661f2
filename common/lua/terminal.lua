-- terminal(s): is s a terminal job status?  Included by scripts that
-- must not overwrite a finished job ("-- include: terminal.lua").
local function terminal(s)
  return s == 'SUCCEEDED' or s == 'FAILED' or s == 'EXPIRED' or
         s == 'CANCELLED'
end
