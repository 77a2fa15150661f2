#!/usr/bin/env bash
# run_gateway_bench.sh - the HTTP gateway's benchmark (issue 15) in one
# command: what aas-gateway adds to a job's latency, its keep-alive
# throughput against the C client's, and a FastAPI + ONNX Runtime peer, on
# this machine, same cores, one run.
#
#   bench/run_gateway_bench.sh [--quick] [--devbroker] [--threads LIST]
#                              [--duration S] [--no-peer]
#
# Builds Release into build-bench/ (incremental; as run_bench.sh), starts
# redis-server (own port, temp dir) and real Apache Kafka
# (tools/kafka-local, 1 broker, 4 partitions: the broker of the published
# end-to-end figures; --devbroker: the dev broker instead), registers the
# 784-512-512-10 MLP with random weights (bench_e2e make-model --seed 7, as
# run_bench.sh), starts 2 workers (batching on: batch.max.rows=64,
# batch.max.delay.us=0; OMP_NUM_THREADS=1 each) and aas-gateway
# (gateway.threads = the largest of --threads, log.level=warn: no
# per-request log line), then:
#   1. latency, one request in flight: bench_gateway (C client and
#      POST /v2/models/NAME/infer on one keep-alive connection,
#      interleaved), and bench_e2e's own one-in-flight mode for reference;
#   2. load: bench_e2e burst (20,000 jobs, 1,000 in flight: the C client's
#      jobs/s), then wrk (keep-alive, bench/gateway_infer.lua, -t2) against
#      the gateway with as many connections as gateway threads, for each
#      count in --threads (default 8,32,64);
#   3. the peer: workers and gateway stopped, bench/peers/fastapi_ort.py
#      (uvicorn, 2 processes, ONNX Runtime with 1 intra-op thread each, the
#      same weights exported to ONNX) under the same wrk runs; then both
#      servers at 10x overload (10 x the largest connection count; the
#      gateway's gateway.connection.limit raised to fit), counting errors
#      and timeouts (wrk's 2 s).
# Around each load run, the CPU of every process it started (from /proc)
# and of the machine (the rest: load generator and other work), and for
# the gateway the requests a published job carried on average (its
# metrics: docs/http.md#batching).
# --duration S: seconds of each wrk run (default 15; --quick 5, with fewer
# jobs).  The peer's venv: bench/peers/setup-venv-gateway-peer.  Prints the
# CPU model and a table; RESULT lines in build-bench/gateway-bench-results.txt.
# Stops everything it started on exit.  Exit status 1 if a step failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
QUICK=0 USE_KAFKA=1 PEER=1 THREADS_LIST="8,32,64" DURATION=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --devbroker) USE_KAFKA=0; shift ;;
    --no-peer) PEER=0; shift ;;
    --threads) THREADS_LIST=${2:?--threads wants a comma list}; shift 2 ;;
    --duration) DURATION=${2:?--duration wants seconds}; shift 2 ;;
    -h|--help) sed -n '2,39p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_gateway_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $THREADS_LIST =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
  { echo "run_gateway_bench: --threads $THREADS_LIST: want a list like 8,32" >&2; exit 2; }
THREADS=(${THREADS_LIST//,/ })
MAX_T=$(printf '%s\n' "${THREADS[@]}" | sort -n | tail -1)
OVERLOAD=$((10 * MAX_T))
if [ "$QUICK" = 1 ]; then
  LAT_JOBS=300 E2E_LAT_JOBS=300 BURST_JOBS=3000 WARMUP=50 DURATION=${DURATION:-5}
else
  LAT_JOBS=2000 E2E_LAT_JOBS=1000 BURST_JOBS=20000 WARMUP=300 DURATION=${DURATION:-15}
fi
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "run_gateway_bench: --duration $DURATION" >&2; exit 2; }
PARTITIONS=4 WORKERS=2 NCPU=$(nproc)
MLP=784-512-512-10 MODEL=bench-mlp-784-512-512-10 DIM=784

. "$ROOT/bench/lib.sh"
FAILED=()
fail_step() { FAILED+=("$1"); printf 'run_gateway_bench: FAILED: %s\n' "$1" >&2; }
command -v wrk >/dev/null || { echo "run_gateway_bench: needs wrk (apt-get install wrk)" >&2; exit 1; }

# ---------------------------------------------------------------- build
say "building Release into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$NCPU" --target aas-worker aas-producer aas-gateway aas-devbroker \
  bench_e2e bench_gateway >/dev/null
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
GATEWAY=$BUILD/gateway/aas-gateway E2E=$BUILD/bench/bench_e2e GWB=$BUILD/bench/bench_gateway
RESULTS=$BUILD/gateway-bench-results.txt
: >"$RESULTS"
if [ "$PEER" = 1 ]; then
  say "peer venv (bench/peers/setup-venv-gateway-peer)"
  "$ROOT/bench/peers/setup-venv-gateway-peer" || { fail_step "peer venv"; PEER=0; }
  PY=${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-gateway-peer/bin/python
fi

# ---------------------------------------------------------------- services
RUN=$(mktemp -d /tmp/aas-gateway-bench.XXXXXX)
PIDS=() WORKER_PIDS=() GW_PID= PEER_PID= KDIR=
cleanup() {
  local p
  stop_pid "$PEER_PID"
  stop_pid "$GW_PID"
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  if [ -n "$KDIR" ]; then "$ROOT/tools/kafka-local" stop --dir "$KDIR" --rm >/dev/null 2>&1 || true; fi
  if [ -n "${AAS_BENCH_KEEP:-}" ]; then cp -r "$RUN" "$AAS_BENCH_KEEP"; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_start_redis "$RUN"
REDIS_PID=${PIDS[0]}
if [ "$USE_KAFKA" = 1 ]; then
  say "Apache Kafka (tools/kafka-local, 1 broker, $PARTITIONS partitions)"
  KDIR=$RUN/kafka K=$ROOT/tools/kafka-local
  if ! { "$K" start --dir "$KDIR" --owner $$ &&
         "$K" create-topic --dir "$KDIR" aas.jobs.infer --partitions "$PARTITIONS" --replication 1 &&
         "$K" create-topic --dir "$KDIR" aas.jobs.infer.high --partitions "$PARTITIONS" --replication 1 &&
         "$K" create-topic --dir "$KDIR" aas.jobs.infer.low --partitions "$PARTITIONS" --replication 1 &&
         "$K" create-topic --dir "$KDIR" aas.jobs.train --partitions "$PARTITIONS" --replication 1 &&
         "$K" create-topic --dir "$KDIR" aas.jobs.dlq --partitions 1 --replication 1; } \
       >"$RUN/kafka-start.log" 2>&1; then
    tail -n 20 "$RUN/kafka-start.log" >&2
    echo "run_gateway_bench: real Kafka did not start (needs Java 17 and Maven); --devbroker runs without" >&2
    KDIR=
    exit 1
  fi
  BROKER=kafka BOOT=$(cat "$KDIR/bootstrap") BX=() BROKER_PID=$(head -n 1 "$KDIR/pids")
else
  say "dev broker ($PARTITIONS partitions)"
  "$BUILD/tools/aas-devbroker" --partitions "$PARTITIONS" --bootstrap-file "$RUN/devbroker.bs" \
    >"$RUN/devbroker.out" 2>"$RUN/devbroker.log" &
  PIDS+=($!) BROKER_PID=$!
  for _ in $(seq 200); do [ -s "$RUN/devbroker.bs" ] && break; sleep 0.1; done
  # The dev broker holds an idle fetch for fetch.wait.max.ms (run_bench.sh).
  BROKER=devbroker BOOT=$(cat "$RUN/devbroker.bs") BX=(-X kafka.fetch.wait.max.ms=1)
fi
CONN=(-X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=$BOOT" "${BX[@]}")

say "registering $MODEL (random weights, seed 7)"
"$E2E" make-model --layers "$MLP" --out "$RUN/$MODEL.aasm" --seed 7
"$PRODUCER" "${CONN[@]}" model register "$MODEL" "$RUN/$MODEL.aasm" >/dev/null
"$GWB" body --dim "$DIM" >"$RUN/body.json"

start_workers() {
  local i log
  WORKER_PIDS=()
  for i in $(seq "$WORKERS"); do
    log=$RUN/worker-$i.log
    OMP_NUM_THREADS=$((NCPU / WORKERS > 0 ? NCPU / WORKERS : 1)) "$WORKER" "${CONN[@]}" \
      -X "worker.id=gwbench-w$i" -X log.level=info -X batch.max.rows=64 \
      -X batch.max.delay.us=0 >"$log" 2>&1 &
    WORKER_PIDS+=($!)
  done
  for i in $(seq "$WORKERS"); do
    log=$RUN/worker-$i.log
    for _ in $(seq 900); do
      grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "$log" && break
      sleep 0.1
    done
    grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "$log" || { tail -n 5 "$log" >&2; return 1; }
  done
}
stop_workers() {
  local p
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WORKER_PIDS=()
}
wait_http() { # port: until /v2/health/ready answers 200 (30 s)
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$1/v2/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
start_gateway() { # threads connection-limit
  GW_PORT=$(bench_free_port)
  "$GATEWAY" "${CONN[@]}" -X "gateway.listen.port=$GW_PORT" -X "gateway.threads=$1" \
    -X "gateway.connection.limit=$2" -X log.level=warn >"$RUN/gateway-$1.log" 2>&1 &
  GW_PID=$!
  wait_http "$GW_PORT" || { tail -n 5 "$RUN/gateway-$1.log" >&2; return 1; }
}

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p') x$NCPU, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "broker: $BROKER ($BOOT), $PARTITIONS partitions; redis 127.0.0.1:$REDIS_PORT (no persistence)"
  echo "fleet: $WORKERS workers, batch.max.rows=64 batch.max.delay.us=0, OMP_NUM_THREADS=$((NCPU / WORKERS)); model $MODEL"
  echo "gateway: log.level=warn; gateway.threads = wrk connections (${THREADS[*]}); overload: $OVERLOAD connections"
  echo "wrk: -t2 --latency -d${DURATION}s -s bench/gateway_infer.lua (keep-alive; 2 s timeout)"
  echo "peer: bench/peers/fastapi_ort.py, uvicorn 2 processes, ONNX Runtime intra-op 1 thread, same weights"
} | tee "$RUN/settings.txt" >&2

# Run a command, show its output, keep its RESULT lines.
record() {
  local log=$1 rc; shift
  set +e
  "$@" 2> >(grep -v 'CONFWARN\|Failed to acquire idempotence PID' >&2) | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  grep '^RESULT ' "$log" >>"$RESULTS" || true
  return "$rc"
}

# Where the CPU goes during a run: clock ticks of each of our processes
# (threads included) from /proc, and of the whole machine from /proc/stat;
# "other" is the rest: the load generator (wrk, bench_e2e) and whatever
# else runs on the machine.  Printed in cores (CPU seconds per second).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu_groups() { # one "name pid..." line per group
  local peer_kids=
  [ -z "$PEER_PID" ] || peer_kids=$(ps -o pid= --ppid "$PEER_PID" 2>/dev/null | tr '\n' ' ')
  echo "gateway $GW_PID"
  echo "workers ${WORKER_PIDS[*]}"
  echo "broker $BROKER_PID"
  echo "redis $REDIS_PID"
  echo "peer $PEER_PID $peer_kids"
}
CPU_T0=0 CPU_M0=0
declare -A CPU_G0
cpu_begin() {
  local name pids
  while read -r name pids; do CPU_G0[$name]=$(bench_ticks $pids); done < <(cpu_groups)
  CPU_M0=$(machine_ticks) CPU_T0=$(date +%s%N)
}
cores() { # ticks ns: CPU seconds per second
  awk -v t="$1" -v hz="$CPU_HZ" -v ns="$2" 'BEGIN { printf "%.2f", (ns > 0 ? t / hz / (ns / 1e9) : 0) }'
}
CPU_HZ=$BENCH_HZ
cpu_end() { # label: a RESULT line of cores per group
  local name pids ns line sum=0 t
  ns=$(( $(date +%s%N) - CPU_T0 ))
  line="RESULT bench=gateway mode=cpu run=$1"
  while read -r name pids; do
    t=$(( $(bench_ticks $pids) - ${CPU_G0[$name]:-0} ))
    sum=$((sum + t))
    line+=" $name=$(cores "$t" "$ns")"
  done < <(cpu_groups)
  t=$(( $(machine_ticks) - CPU_M0 - sum ))
  [ "$t" -ge 0 ] || t=0
  line+=" other=$(cores "$t" "$ns") cores=$NCPU"
  echo "$line" | tee -a "$RESULTS" >&2
}

# gw_published PORT: the gateway's published jobs and requests so far
# ("0 0" before its first job, or for another server).
gw_published() {
  curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null | awk '
    $1 == "aas_gateway_published_jobs_total" { j = $2 }
    $1 == "aas_gateway_published_requests_total" { r = $2 }
    END { printf "%d %d\n", j, r }'
}

# wrk_run SERVER PORT CONNS PATH TAG...: one wrk run, its figures as a
# RESULT line (for the gateway, with the requests a published job carried
# on average: docs/http.md#batching).
wrk_run() {
  local server=$1 port=$2 conns=$3 path=$4 tag=$5 log pub0 pub1
  log=$RUN/wrk-$server-$conns-$tag.log
  say "wrk: $server, $conns connections ($tag)"
  pub0=$(gw_published "$port")
  cpu_begin
  set +e
  AAS_BENCH_BODY=$RUN/body.json AAS_BENCH_PATH=$path \
    wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s "$ROOT/bench/gateway_infer.lua" \
    "http://127.0.0.1:$port" >"$log" 2>&1
  local rc=$?
  set -e
  cpu_end "$server-$conns"
  pub1=$(gw_published "$port")
  cat "$log" >&2
  [ "$rc" = 0 ] || { fail_step "wrk $server $conns"; return 0; }
  awk -v server="$server" -v conns="$conns" -v tag="$tag" -v pub0="$pub0" -v pub1="$pub1" '
    /^Requests\/sec:/ { rps = $2 }
    / requests in / { n = $1 }
    /^latency_us/ { p50 = $3 / 1000; p99 = $5 / 1000; mx = $7 / 1000 }
    /Socket errors:/ { gsub(/,/, ""); ce = $4; re = $6; we = $8; to = $10 }
    /^non200/ { non200 = $2 }
    END { split(pub0, a, " "); split(pub1, b, " "); jobs = b[1] - a[1]; reqs = b[2] - a[2]
          rpj = jobs > 0 ? sprintf("%.1f", reqs / jobs) : "-"
          printf "RESULT bench=gateway mode=load server=%s conns=%s run=%s rps=%.0f requests=%s " \
                 "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non200=%s err_connect=%d err_read=%d " \
                 "err_write=%d timeouts=%d requests_per_job=%s\n", server, conns, tag, rps, n,
                 p50, p99, mx, non200, ce, re, we, to, rpj }' "$log" | tee -a "$RESULTS" >&2
}

E2E_COMMON=(--brokers "$BOOT" --redis-port "$REDIS_PORT" --model "$MODEL" --dim "$DIM"
            --label "$BROKER" "${BX[@]}")
INFER=/v2/models/$MODEL/infer

# ---------------------------------------------------------------- 1 + 2: aas
say "workers ($WORKERS) and gateway ($MAX_T threads)"
start_workers || { fail_step "workers did not get partitions"; exit 1; }
start_gateway "$MAX_T" $((OVERLOAD + 64)) || { fail_step "gateway did not start"; exit 1; }

# The gateway's answer to the wrk body, to check the peer's against.
curl -sf -X POST --data-binary "@$RUN/body.json" "http://127.0.0.1:$GW_PORT$INFER" \
  >"$RUN/answer-gateway.json" || fail_step "gateway: POST $INFER"
say "1. latency, one in flight: C client and HTTP interleaved (bench_gateway)"
record "$RUN/latency.log" "$GWB" "${E2E_COMMON[@]}" --url "http://127.0.0.1:$GW_PORT" \
  --jobs "$LAT_JOBS" --warmup 100 || fail_step "bench_gateway"
say "1. reference: bench_e2e one in flight (its submitter and waiter threads)"
record "$RUN/e2e-latency.log" "$E2E" "${E2E_COMMON[@]}" --jobs "$E2E_LAT_JOBS" --inflight 1 \
  --warmup 50 || fail_step "bench_e2e latency"

say "2. C client burst (bench_e2e, $BURST_JOBS jobs, 1000 in flight)"
cpu_begin
record "$RUN/e2e-burst.log" "$E2E" "${E2E_COMMON[@]}" --jobs "$BURST_JOBS" --inflight 1000 \
  --warmup "$WARMUP" || fail_step "bench_e2e burst"
cpu_end "c-client-burst"  # (its warm-up included)
for t in "${THREADS[@]}"; do
  # Concurrency = threads: a gateway of exactly t threads, t connections.
  stop_pid "$GW_PID"; GW_PID=
  start_gateway "$t" $((OVERLOAD + 64)) || { fail_step "gateway ($t threads)"; continue; }
  wrk_run aas-gateway "$GW_PORT" "$t" "$INFER" "threads=$t"
done
stop_pid "$GW_PID"; GW_PID=
start_gateway "$MAX_T" $((OVERLOAD + 64)) || { fail_step "gateway ($MAX_T threads)"; exit 1; }
wrk_run aas-gateway "$GW_PORT" "$OVERLOAD" "$INFER" "overload"
stop_pid "$GW_PID"; GW_PID=
stop_workers

# ---------------------------------------------------------------- 3: peer
if [ "$PEER" = 1 ]; then
  PEER_PORT=$(bench_free_port)
  say "3. peer: FastAPI + ONNX Runtime on 127.0.0.1:$PEER_PORT (aas workers and gateway stopped)"
  "$PY" "$ROOT/bench/peers/fastapi_ort.py" --model "$RUN/$MODEL.aasm" --name "$MODEL" \
    --port "$PEER_PORT" --workers 2 --threads 1 >"$RUN/peer.log" 2>&1 &
  PEER_PID=$!
  if wait_http "$PEER_PORT"; then
    # Same weights, same function: its outputs for the body equal aas's.
    if curl -sf -X POST --data-binary "@$RUN/body.json" "http://127.0.0.1:$PEER_PORT$INFER" \
         >"$RUN/answer-peer.json" &&
       "$PY" -c 'import json, sys
a, b = (json.load(open(f))["outputs"][0]["data"] for f in sys.argv[1:])
sys.exit(not (len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5))' \
         "$RUN/answer-gateway.json" "$RUN/answer-peer.json"; then
      say "peer: its outputs equal the gateway's for the benchmark's body (1e-5)"
    else
      fail_step "peer: outputs differ from the gateway's (or no answer)"
    fi
    for t in "${THREADS[@]}"; do wrk_run fastapi-ort "$PEER_PORT" "$t" "$INFER" "threads=$t"; done
    wrk_run fastapi-ort "$PEER_PORT" "$OVERLOAD" "$INFER" "overload"
  else
    tail -n 20 "$RUN/peer.log" >&2
    fail_step "peer did not start"
  fi
  stop_pid "$PEER_PID"; PEER_PID=
fi

# ---------------------------------------------------------------- table
field() { # line key
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}
{
echo
echo "# aas-gateway benchmark $( [ "$QUICK" = 1 ] && echo '(--quick: rough figures)')"
echo
echo '```'
cat "$RUN/settings.txt"
echo '```'
echo
echo "## 1. Latency, one request in flight (ms)"
echo
echo "| path | n | p50 | p90 | p99 | max | mean |"
echo "|---|---|---|---|---|---|---|"
for p in client http diff; do
  l=$(grep "^RESULT bench=gateway mode=latency path=$p " "$RESULTS" || true)
  [ -n "$l" ] || continue
  case $p in
    client) name="C client: submit, flush, wait (interleaved)" ;;
    http) name="HTTP POST $INFER, keep-alive (interleaved)" ;;
    diff) name="**gateway adds** (HTTP - C client)" ;;
  esac
  echo "| $name | $(field "$l" n) | $(field "$l" p50_ms) | $(field "$l" p90_ms) | $(field "$l" p99_ms) | $(field "$l" max_ms | sed s/^nan$/-/) | $(field "$l" mean_ms) |"
done
l=$(grep "^RESULT bench=gateway mode=latency path=pair " "$RESULTS" || true)
[ -z "$l" ] || echo "| per-round difference HTTP - C client (same row, ms apart) | $(field "$l" n) | $(field "$l" p50_ms) | $(field "$l" p90_ms) | $(field "$l" p99_ms) | $(field "$l" max_ms | sed s/^nan$/-/) | $(field "$l" mean_ms) |"
l=$(grep '^RESULT bench=e2e mode=latency' "$RESULTS" || true)
[ -z "$l" ] || echo "| bench_e2e one in flight (reference, run after) | $(field "$l" jobs) | $(field "$l" p50_ms) | $(field "$l" p90_ms) | $(field "$l" p99_ms) | $(field "$l" max_ms) | |"
echo
echo "## 2-3. Throughput (keep-alive wrk; C client: bench_e2e burst)"
echo
echo "| server | connections | requests/s | p50 ms | p99 ms | max ms | non-2xx | socket errors (connect/read/write) | timeouts | requests per job |"
echo "|---|---|---|---|---|---|---|---|---|---|"
l=$(grep '^RESULT bench=e2e mode=burst' "$RESULTS" || true)
[ -z "$l" ] || echo "| C client (bench_e2e burst) | 1000 in flight | $(field "$l" jobs_per_s) | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" max_ms) | $(field "$l" failed) failed | | $(field "$l" timeouts) | 1 |"
grep '^RESULT bench=gateway mode=load' "$RESULTS" | while read -r l; do
  echo "| $(field "$l" server) | $(field "$l" conns)$( [ "$(field "$l" run)" = overload ] && echo ' (10x overload)') | $(field "$l" rps) | $(field "$l" p50_ms) | $(field "$l" p99_ms) | $(field "$l" max_ms) | $(field "$l" non200) | $(field "$l" err_connect)/$(field "$l" err_read)/$(field "$l" err_write) | $(field "$l" timeouts) | $(field "$l" requests_per_job) |"
done
echo
echo "## CPU during each run (cores busy, of $NCPU; other = load generator and the rest of the machine)"
echo
echo "| run | gateway | workers | broker | redis | peer | other |"
echo "|---|---|---|---|---|---|---|"
grep '^RESULT bench=gateway mode=cpu' "$RESULTS" | while read -r l; do
  echo "| $(field "$l" run) | $(field "$l" gateway) | $(field "$l" workers) | $(field "$l" broker) | $(field "$l" redis) | $(field "$l" peer) | $(field "$l" other) |"
done
echo
# The targets, from the figures above.
awk '
  { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
  f["mode"] == "latency" && f["path"] == "diff" { d50 = f["p50_ms"] + 0; d99 = f["p99_ms"] + 0; have_d = 1 }
  f["bench"] == "e2e" && f["mode"] == "burst" { burst = f["jobs_per_s"] + 0 }
  f["mode"] == "load" && f["server"] == "aas-gateway" && f["run"] != "overload" && f["rps"] + 0 > best + 0 { best = f["rps"] + 0; bestc = f["conns"] }
  END {
    print "## Targets (issue 15)"; print ""
    if (have_d) printf "- latency overhead: p50 %+.3f ms (target <= 0.3): %s; p99 %+.3f ms (target <= 1): %s\n",
      d50, (d50 <= 0.3 ? "met" : "NOT met"), d99, (d99 <= 1 ? "met" : "NOT met")
    if (burst + 0 > 0 && best != "") printf "- keep-alive load: %.0f requests/s (%s connections = threads) vs C client burst %.0f jobs/s = %.0f %% (target >= 80 %%): %s\n",
      best, bestc, burst, 100 * best / burst, (best >= 0.8 * burst ? "met" : "NOT met")
  }' "$RESULTS"
echo
echo "RESULT lines: $RESULTS"
} | tee "$BUILD/gateway-bench-tables.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo >&2
  printf 'run_gateway_bench: %d step(s) failed:\n' "${#FAILED[@]}" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
