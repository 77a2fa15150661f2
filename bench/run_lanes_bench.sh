#!/usr/bin/env bash
# run_lanes_bench.sh - priority lanes (issue 16, docs/sharing.md): a priority
# job's latency behind a backlog of normal jobs, and the backlog's drain
# rate, with lanes on and off, on the dev broker and real Apache Kafka.
#
#   bench/run_lanes_bench.sh [--quick] [--no-kafka] [--workers N]
#                            [--backlog N] [--rounds N] [--probes N]
#
# Builds Release into build-bench/ (incremental), starts redis-server, the
# dev broker and real Kafka (tools/kafka-local, the five aas topics),
# registers a 64-128-128-10 MLP with random weights, then per broker and
# lanes on/off: starts N workers (default 2), and runs bench/bench_lanes:
# --rounds rounds (default 10) of a --backlog (default 10000) published
# while the workers are paused, then --probes (default 10) priority-10 jobs
# one after the other (each once the one before is done) as it drains (100 trials by
# default).  Lanes off: the workers and the client run with
# topic.infer.lanes=false, so the probe is one more job in the backlog
# (sorted only within its window).  RESULT lines go to
# build-bench/lanes-results.txt and a Markdown table to stdout.  --quick:
# backlog 3000, 3 rounds (a smoke run).  Stops everything it started.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${AAS_BENCH_BUILD:-$ROOT/build-bench}
KAFKA=1 WORKERS=2 BACKLOG=10000 ROUNDS=10 PROBES=10
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) BACKLOG=3000 ROUNDS=3; shift ;;
    --no-kafka) KAFKA=0; shift ;;
    --workers) WORKERS=${2:?}; shift 2 ;;
    --backlog) BACKLOG=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --probes) PROBES=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_lanes_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
PARTITIONS=4
NCPU=$(nproc)
. "$ROOT/bench/lib.sh"

say "building Release into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$NCPU" --target aas-worker aas-producer aas-devbroker bench_e2e \
  bench_lanes >/dev/null
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
E2E=$BUILD/bench/bench_e2e LANES=$BUILD/bench/bench_lanes
RESULTS=$BUILD/lanes-results.txt
: >"$RESULTS"

RUN=$(mktemp -d /tmp/aas-lanes-bench.XXXXXX)
PIDS=() WORKER_PIDS=() KDIR=
trap bench_fleet_cleanup EXIT
trap 'exit 130' INT TERM

bench_start_redis "$RUN"
declare -A BOOT=()
bench_start_brokers run_lanes_bench
# As bench/run_bench.sh: the dev broker holds an idle fetch for the full
# fetch.wait.max.ms (docs/devbroker.md).
declare -A BX=([kafka]="" [devbroker]="-X kafka.fetch.wait.max.ms=1")

say "registering a 64-128-128-10 MLP"
"$E2E" make-model --layers 64-128-128-10 --out "$RUN/m.aasm" --seed 7
"$PRODUCER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[devbroker]}" \
  model register bench-lanes-mlp "$RUN/m.aasm" >/dev/null

start_workers() { # broker lanes(true|false)
  local b=$1 lanes=$2 i omp=$(( NCPU / WORKERS ))
  [ "$omp" -ge 1 ] || omp=1
  WORKER_PIDS=() WORKER_LOGS=()
  for i in $(seq "$WORKERS"); do
    local log="$RUN/worker-$b-$lanes-$i.log"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$omp "$WORKER" -X "redis.port=$REDIS_PORT" \
      -X "kafka.bootstrap.servers=${BOOT[$b]}" -X "worker.id=lanes-$b-$lanes-w$i" \
      -X "topic.infer.lanes=$lanes" -X worker.train=false ${BX[$b]} >"$log" 2>&1 &
    WORKER_PIDS+=($!) WORKER_LOGS+=("$log")
  done
  for i in $(seq 0 $((WORKERS - 1))); do
    for _ in $(seq 900); do
      grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "${WORKER_LOGS[$i]}" && break
      sleep 0.1
    done
    grep -q 'rebalance=assign' "${WORKER_LOGS[$i]}" || { tail -n 5 "${WORKER_LOGS[$i]}" >&2; return 1; }
  done
  sleep 2 # the group settles (a second member's join rebalances the first)
}

stop_workers() {
  local p
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" || true; done
  WORKER_PIDS=()
}

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p') x$NCPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "workers: $WORKERS, partitions: $PARTITIONS per topic, backlog $BACKLOG x $ROUNDS rounds, $PROBES probes a round"
} | tee "$RUN/settings.txt" >&2

FAILED=0
for b in "${BROKERS[@]}"; do
  for lanes in true false; do
    say "$b, lanes $lanes, $WORKERS workers"
    start_workers "$b" "$lanes" || { echo "run_lanes_bench: workers did not start" >&2; FAILED=1; continue; }
    pids=$(IFS=,; echo "${WORKER_PIDS[*]}")
    # shellcheck disable=SC2086
    if "$LANES" --model bench-lanes-mlp --dim 64 --backlog "$BACKLOG" --rounds "$ROUNDS" \
         --probes "$PROBES" --pids "$pids" --label "$b-lanes-$lanes" \
         -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[$b]}" \
         -X "topic.infer.lanes=$lanes" ${BX[$b]} | tee -a "$RESULTS"; then :; else FAILED=1; fi
    stop_workers
  done
done

echo
cat "$RUN/settings.txt"
echo
echo "| broker | lanes | trials behind the backlog | latency p50 ms | p99 ms | max ms | backlog still queued at the trial's finish (median) | drain jobs/s (median round) | all probes p50 / p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '/^RESULT bench=lanes / {
  for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  n = split(v["label"], l, "-lanes-")
  printf "| %s | %s | %s | %s | %s | %s | %.0f %% | %s | %s / %s |\n", l[1], l[2], v["trials"],
    v["latency_p50_ms"], v["latency_p99_ms"], v["latency_max_ms"],
    100 * v["queued_at_finish_median"], v["drain_jobs_s"], v["all_p50_ms"], v["all_p99_ms"]
}' "$RESULTS"
exit $FAILED
