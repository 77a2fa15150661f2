-- gateway_infer.lua - wrk script of bench/run_gateway_bench.sh: every
-- request is POST $AAS_BENCH_PATH with the JSON body in the file
-- $AAS_BENCH_BODY (bench_gateway body writes one), over wrk's keep-alive
-- connections.  At the end it prints one line of counts that wrk's summary
-- folds together: status codes other than 200, by code.
local f = assert(io.open(assert(os.getenv("AAS_BENCH_BODY"), "AAS_BENCH_BODY unset"), "rb"))
wrk.method = "POST"
wrk.path = assert(os.getenv("AAS_BENCH_PATH"), "AAS_BENCH_PATH unset")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- Per-thread counts of non-200 answers (wrk runs one Lua state a thread).
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  codes = {}
end
function response(status, headers, body)
  if status ~= 200 then
    codes[status] = (codes[status] or 0) + 1
  end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    for k, v in pairs(c or {}) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. ":" .. v) end
  io.write(string.format("non200 %s\n", #parts > 0 and table.concat(parts, ",") or "none"))
  io.write(string.format("latency_us p50 %d p99 %d max %d\n",
    latency:percentile(50), latency:percentile(99), latency.max))
end
