#!/usr/bin/env bash
# run_tenants_bench.sh - two tenants share the workers (issue 16,
# docs/sharing.md "Fair share"): a steady tenant's latency alone and beside
# another tenant's flood, and the flood's drain rate, with the fair share on
# and off, on the dev broker and real Apache Kafka.
#
#   bench/run_tenants_bench.sh [--quick] [--no-kafka] [--workers N]
#                              [--flood N] [--rate R] [--seconds N]
#
# Builds Release into build-bench/ (incremental), starts redis-server, the
# dev broker and real Kafka (tools/kafka-local, the five aas topics),
# registers a 64-128-128-10 MLP with random weights, then per broker and
# fair share on/off: starts N workers (default 2), and runs
# bench/bench_tenants: tenant `steady` submits one-row jobs at --rate
# (default 50/s) for --seconds (default 20) alone; then, with the workers
# paused, tenant `flood` publishes --flood (default 20000) one-row jobs in
# the same lane, the workers go on, and the steady tenant runs again at once.
# Fair share off: the workers run with -X worker.fair.jobs=0 (each lane in
# offset order).  RESULT lines go to build-bench/tenants-results.txt and a
# Markdown table to stdout.  --quick: flood 5000, 5 s phases (a smoke run).
# AAS_BENCH_WORKER_X="-X key=value ..." is passed to every worker (e.g. to
# try other window sizes).
# Stops everything it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${AAS_BENCH_BUILD:-$ROOT/build-bench}
KAFKA=1 WORKERS=2 FLOOD=20000 RATE=50 DURATION=20
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) FLOOD=5000 DURATION=5; shift ;;
    --no-kafka) KAFKA=0; shift ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --flood) FLOOD=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --seconds) DURATION=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_tenants_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
PARTITIONS=4
NCPU=$(nproc)
. "$ROOT/bench/lib.sh"

say "building Release into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$NCPU" --target aas-worker aas-producer aas-devbroker bench_e2e \
  bench_tenants >/dev/null
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
E2E=$BUILD/bench/bench_e2e TENANTS=$BUILD/bench/bench_tenants
RESULTS=$BUILD/tenants-results.txt
: >"$RESULTS"

RUN=$(mktemp -d /tmp/aas-tenants-bench.XXXXXX)
PIDS=() WORKER_PIDS=() KDIR=
trap bench_fleet_cleanup EXIT
trap 'exit 130' INT TERM

bench_start_redis "$RUN"
declare -A BOOT=()
bench_start_brokers run_tenants_bench
# As bench/run_bench.sh: the dev broker holds an idle fetch for the full
# fetch.wait.max.ms (docs/devbroker.md).
declare -A BX=([kafka]="" [devbroker]="-X kafka.fetch.wait.max.ms=1")
# Fair share on: the workers' defaults; off: no read-ahead, offset order.
declare -A FX=([on]="" [off]="-X worker.fair.jobs=0")

say "registering a 64-128-128-10 MLP"
"$E2E" make-model --layers 64-128-128-10 --out "$RUN/m.aasm" --seed 7
"$PRODUCER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[devbroker]}" \
  model register bench-tenants-mlp "$RUN/m.aasm" >/dev/null

start_workers() { # broker fair(on|off)
  local b=$1 fair=$2 i omp=$(( NCPU / WORKERS ))
  [ "$omp" -ge 1 ] || omp=1
  WORKER_PIDS=() WORKER_LOGS=()
  for i in $(seq "$WORKERS"); do
    local log="$RUN/worker-$b-fair-$fair-$i.log"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$omp "$WORKER" -X "redis.port=$REDIS_PORT" \
      -X "kafka.bootstrap.servers=${BOOT[$b]}" -X "worker.id=tenants-$b-fair-$fair-w$i" \
      -X worker.train=false ${FX[$fair]} ${BX[$b]} ${AAS_BENCH_WORKER_X:-} >"$log" 2>&1 &
    WORKER_PIDS+=($!) WORKER_LOGS+=("$log")
  done
  for i in $(seq 0 $((WORKERS - 1))); do
    for _ in $(seq 900); do
      grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "${WORKER_LOGS[$i]}" && break
      kill -0 "${WORKER_PIDS[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    grep -q 'rebalance=assign' "${WORKER_LOGS[$i]}" || { tail -n 5 "${WORKER_LOGS[$i]}" >&2; return 1; }
  done
  sleep 2 # the group settles (a second member's join rebalances the first)
}

stop_workers() {
  local p
  for p in "${WORKER_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" || true; done
  WORKER_PIDS=()
}

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p') x$NCPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "workers: $WORKERS, partitions: $PARTITIONS per topic, steady $RATE jobs/s x ${DURATION} s per phase, flood $FLOOD jobs"
} | tee "$RUN/settings.txt" >&2

FAILED=0
for b in "${BROKERS[@]}"; do
  for fair in on off; do
    say "$b, fair share $fair, $WORKERS workers"
    start_workers "$b" "$fair" || { echo "run_tenants_bench: workers did not start" >&2; FAILED=1; stop_workers; continue; }
    pids=$(IFS=,; echo "${WORKER_PIDS[*]}")
    # shellcheck disable=SC2086
    if "$TENANTS" --model bench-tenants-mlp --dim 64 --rate "$RATE" --seconds "$DURATION" \
         --flood "$FLOOD" --pids "$pids" --label "$b-fair-$fair" \
         -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[$b]}" \
         ${BX[$b]} | tee -a "$RESULTS"; then :; else FAILED=1; fi
    stop_workers
  done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN/settings.txt"

echo
cat "$RUN/settings.txt"
echo
echo "| broker | fair share | steady alone p50 / p99 ms | steady under flood p50 / p99 / max ms | p99 ratio (target <= 2) | steady jobs during the drain: n, max ms, flood left at their finish (median) | flood drain jobs/s | flood finished when the steady phase ended |"
echo "|---|---|---|---|---|---|---|---|"
awk '/^RESULT bench=tenants / {
  for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  n = split(v["label"], l, "-fair-")
  printf "| %s | %s | %s / %s | %s / %s / %s | %s | %s, %s, %.0f %% | %s | %s of %s |\n", l[1], l[2],
    v["alone_p50_ms"], v["alone_p99_ms"], v["flood_p50_ms"], v["flood_p99_ms"], v["flood_max_ms"],
    v["p99_ratio"], v["during_n"], v["during_max_ms"], 100 * v["during_flood_left_median"], v["drain_jobs_s"],
    v["flood_done_at_end"], v["flood"]
}' "$RESULTS"
exit $FAILED
