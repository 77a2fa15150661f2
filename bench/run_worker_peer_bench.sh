#!/usr/bin/env bash
# run_worker_peer_bench.sh - aas-worker beside a Python worker peer (issue
# 18): the same bench_e2e burst against each, alone, in one run.
#
#   bench/run_worker_peer_bench.sh [--quick] [--threads N] [--jobs N]
#                                  [--inflight K] [--mlps LIST] [--batching LIST]
#                                  [--backlog N]
#
# Builds Release into build-bench/ (incremental), sets up the peers' venv
# (bench/peers/setup_venv.sh), starts redis-server (own port, temp dir) and
# registers two MLPs with random weights (64-128-128-10, 784-512-512-10).
# Then for each MLP x batching (on, off) x worker (aas: one aas-worker with
# OMP_NUM_THREADS=N; py: one bench/peers/py_worker.py, ONNX Runtime with N
# intra-op threads) it starts a fresh dev broker (4 partitions, so no run
# sees another's messages or offsets), the one worker, waits until it owns
# partitions, and runs bench_e2e as a burst (default 20,000 jobs + 300
# warm-up, 1000 in flight; --quick: 2,000 + 100).  The worker's CPU over the
# burst (utime + stime, all threads, /proc) gives CPU µs per job.
# Batching on: aas batch.max.rows=64, batch.max.delay.us=0; the peer runs
# the rows of the (up to 64) messages consumed together in one
# session.run.  Off: aas batch.max.rows=1; the peer --no-batch.
# --threads N (default 2), --jobs, --inflight override the burst;
# --mlps and --batching keep those values (comma lists).  RESULT lines go
# to build-bench/worker-peer-results.txt, a Markdown table to stdout and
# build-bench/worker-peer-table.md.  --backlog N: instead of the burst,
# after the warm-up the worker is stopped (SIGSTOP), N jobs are published
# (all in flight), and the worker is continued (SIGCONT) to drain them: its
# windows are full, so CPU per job is the worker's own cost and not that of
# a worker waiting for a load generator on the same 2 cores (exact CPU, from
# /proc/PID/task/*/schedstat; jobs/s = N / drain time).  The dev broker keeps
# 5 MiB a partition: N <= 6,000 for 784-float jobs on 4 partitions.
# Stops everything it started on exit; exit status 1 if a step failed (e.g.
# a job did not succeed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
QUICK=0 THREADS=2 JOBS="" INFLIGHT=1000 ONLY_MLPS="" BATCHING="on off" BACKLOG=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --threads) THREADS=${2:?--threads wants N}; shift 2 ;;
    --jobs) JOBS=${2:?--jobs wants N}; shift 2 ;;
    --inflight) INFLIGHT=${2:?--inflight wants K}; shift 2 ;;
    --mlps) ONLY_MLPS=${2:?--mlps wants a comma list}; shift 2 ;;
    --backlog) BACKLOG=${2:?--backlog wants N}; shift 2 ;;
    --batching) BATCHING=${2:?--batching wants a comma list}; BATCHING=${BATCHING//,/ }; shift 2 ;;
    -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_worker_peer_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then BURST_JOBS=${JOBS:-2000} WARMUP=100
else BURST_JOBS=${JOBS:-20000} WARMUP=300; fi
PARTITIONS=4
MLPS=("64-128-128-10" "784-512-512-10")
if [ -n "$ONLY_MLPS" ]; then
  KEEP=()
  for m in "${MLPS[@]}"; do [[ ",$ONLY_MLPS," == *",$m,"* ]] && KEEP+=("$m"); done
  [ ${#KEEP[@]} -gt 0 ] || { echo "run_worker_peer_bench: --mlps $ONLY_MLPS matches none of ${MLPS[*]}" >&2; exit 2; }
  MLPS=("${KEEP[@]}")
fi

. "$ROOT/bench/lib.sh"
FAILED=()
fail_step() { FAILED+=("$1"); printf 'run_worker_peer_bench: FAILED: %s\n' "$1" >&2; }

# ---------------------------------------------------------------- build
say "building Release into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 >/dev/null
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
E2E=$BUILD/bench/bench_e2e DEVBROKER=$BUILD/tools/aas-devbroker
say "Python venv (bench/peers/setup_venv.sh)"
"$ROOT/bench/peers/setup_venv.sh" "$BUILD/peers-venv"
PY=$BUILD/peers-venv/bin/python
RESULTS=$BUILD/worker-peer-results.txt
: >"$RESULTS"

# ---------------------------------------------------------------- services
RUN=$(mktemp -d /tmp/aas-peerbench.XXXXXX)
PIDS=() WORKER_PID="" BROKER_PID="" BENCH_DRAIN_PID=""
cleanup() {
  local i
  [ -n "$WORKER_PID" ] && kill -CONT "$WORKER_PID" 2>/dev/null
  stop_pid "$BENCH_DRAIN_PID"
  stop_pid "$WORKER_PID"
  stop_pid "$BROKER_PID"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  if [ -n "${AAS_BENCH_KEEP:-}" ]; then cp -r "$RUN" "$AAS_BENCH_KEEP"; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_start_redis "$RUN"

start_broker() { # tag
  rm -f "$RUN/devbroker.bs"
  "$DEVBROKER" --partitions "$PARTITIONS" --bootstrap-file "$RUN/devbroker.bs" \
    >"$RUN/devbroker-$1.out" 2>"$RUN/devbroker-$1.log" &
  BROKER_PID=$!
  for _ in $(seq 200); do [ -s "$RUN/devbroker.bs" ] && break; sleep 0.1; done
  BOOT=$(cat "$RUN/devbroker.bs")
}

say "registering models with random weights"
start_broker models
declare -A MODEL_NAME MODEL_DIM
for m in "${MLPS[@]}"; do
  name="bench-mlp-$m"
  "$E2E" make-model --layers "$m" --out "$RUN/$name.aasm" --seed 7
  "$PRODUCER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=$BOOT" \
    model register "$name" "$RUN/$name.aasm" >/dev/null
  MODEL_NAME[$m]=$name
  MODEL_DIM[$m]=${m%%-*}
done
stop_pid "$BROKER_PID"; BROKER_PID=""

CPU_MODEL=$(lscpu | sed -n 's/^Model name: *//p')
{
  echo "settings:"
  echo "  date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $CPU_MODEL x$(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  dev broker, $PARTITIONS partitions, fetch.wait.max.ms=1 (workers and client); a fresh broker per run"
  echo "  burst: $BURST_JOBS one-row jobs + $WARMUP warm-up, $INFLIGHT in flight; 1 worker, $THREADS threads"
  echo "  aas: aas-worker, OMP_NUM_THREADS=$THREADS; batching on: batch.max.rows=64 batch.max.delay.us=0; off: batch.max.rows=1"
  echo "  py: bench/peers/py_worker.py ($("$PY" -c 'import importlib.metadata, onnxruntime, confluent_kafka, fastavro, redis; print("onnxruntime", onnxruntime.__version__, "confluent-kafka", importlib.metadata.version("confluent-kafka"), "librdkafka", confluent_kafka.libversion()[0], "fastavro", fastavro.__version__, "redis-py", redis.__version__)')), $THREADS intra-op threads;"
  echo "      batching on: rows of up to 64 consumed messages a session.run; off: --no-batch"
} | tee "$RUN/settings.txt" >&2

unset OMP_WAIT_POLICY GOMP_SPINCOUNT
start_worker() { # impl mlp batching log -> WORKER_PID, waits for partitions
  local impl=$1 m=$2 mode=$3 log=$4 ready
  if [ "$impl" = aas ]; then
    local bx=(-X batch.max.rows=64 -X batch.max.delay.us=0)
    [ "$mode" = off ] && bx=(-X batch.max.rows=1)
    OMP_NUM_THREADS=$THREADS "$WORKER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=$BOOT" \
      -X "worker.id=bench-aas" -X "metrics.port=$(bench_free_port)" -X log.level=info \
      -X kafka.fetch.wait.max.ms=1 "${bx[@]}" >"$log" 2>&1 &
    ready='rebalance=assign partitions=.*aas.jobs.infer'
  else
    local nb=()
    [ "$mode" = off ] && nb=(--no-batch)
    "$PY" "$ROOT/bench/peers/py_worker.py" --brokers "$BOOT" --redis-port "$REDIS_PORT" \
      --model "${MODEL_NAME[$m]}" --model-file "$RUN/${MODEL_NAME[$m]}.aasm" \
      --threads "$THREADS" --worker-id bench-py -X fetch.wait.max.ms=1 "${nb[@]}" >"$log" 2>&1 &
    ready='py_worker: assigned .*aas.jobs.infer'
  fi
  WORKER_PID=$!
  for _ in $(seq 900); do
    grep -qs "$ready" "$log" && return 0
    kill -0 "$WORKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 5 "$log" >&2
  return 1
}

# ---------------------------------------------------------------- runs
for m in "${MLPS[@]}"; do
  for mode in $BATCHING; do
    for impl in aas py; do
      what="$impl worker, $m, batching $mode"
      tag="$impl-$m-$mode"
      say "burst: $what"
      start_broker "$tag"
      e2e=("$E2E" --brokers "$BOOT" --redis-port "$REDIS_PORT" --model "${MODEL_NAME[$m]}"
           --dim "${MODEL_DIM[$m]}" --label devbroker --tag "worker=$impl" --tag "mlp=$m"
           --tag "batching=$mode" --tag "threads=$THREADS" -X kafka.fetch.wait.max.ms=1)
      if ! start_worker "$impl" "$m" "$mode" "$RUN/worker-$tag.log"; then
        fail_step "worker did not get partitions ($what)"
      elif [ "$BACKLOG" -gt 0 ]; then
        # Warm up (model load, group settled), hold the worker stopped while
        # the backlog is published, then let it drain.
        if ! "${e2e[@]}" --jobs "$WARMUP" --inflight 64 --warmup 0 >"$RUN/warm-$tag.log" 2>&1; then
          tail -n 5 "$RUN/warm-$tag.log" >&2
          fail_step "warm-up ($what)"
        else
          bench_drain "$WORKER_PID" "$RUN/e2e-$tag.log" "${e2e[@]}" --jobs "$BACKLOG" \
            --inflight "$BACKLOG" --warmup 0 --tag "backlog=$BACKLOG"
          [ "$DRAIN_RC" = 0 ] || fail_step "bench_e2e backlog ($what)"
          echo "RESULT bench=worker_peer mode=backlog worker=$impl mlp=$m batching=$mode threads=$THREADS" \
            "jobs=$BACKLOG drain_s=$(awk -v t="$DRAIN_NS" 'BEGIN { printf "%.3f", t / 1e9 }')" \
            "jobs_per_s=$(awk -v t="$DRAIN_NS" -v n="$BACKLOG" 'BEGIN { printf "%.0f", n / (t / 1e9) }')" \
            "worker_cpu_s=$(awk -v c="$DRAIN_CPU_NS" 'BEGIN { printf "%.3f", c / 1e9 }')" \
            "worker_cpu_us_per_job=$(awk -v c="$DRAIN_CPU_NS" -v n="$BACKLOG" 'BEGIN { printf "%.1f", c / 1e3 / n }')" |
            tee -a "$RESULTS"
        fi
      else
        t0=$(bench_ticks "$WORKER_PID")
        set +e
        "${e2e[@]}" --jobs "$BURST_JOBS" --inflight "$INFLIGHT" --warmup "$WARMUP" \
          2> >(grep -v 'CONFWARN\|Failed to acquire idempotence PID' >&2) | tee "$RUN/e2e-$tag.log"
        rc=${PIPESTATUS[0]}
        set -e
        t1=$(bench_ticks "$WORKER_PID")
        grep '^RESULT bench=e2e ' "$RUN/e2e-$tag.log" >>"$RESULTS" || true
        [ "$rc" = 0 ] || fail_step "bench_e2e burst ($what)"
        echo "RESULT bench=worker_peer mode=cpu worker=$impl mlp=$m batching=$mode threads=$THREADS" \
          "jobs=$((BURST_JOBS + WARMUP)) worker_cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$BENCH_HZ" 'BEGIN { printf "%.2f", t / hz }')" \
          "worker_cpu_us_per_job=$(awk -v t=$((t1 - t0)) -v hz="$BENCH_HZ" -v j=$((BURST_JOBS + WARMUP)) 'BEGIN { printf "%.1f", t / hz / j * 1e6 }')" |
          tee -a "$RESULTS"
      fi
      stop_pid "$WORKER_PID"; WORKER_PID=""
      stop_pid "$BROKER_PID"; BROKER_PID=""
    done
  done
done

# ---------------------------------------------------------------- table
{
echo
echo "# aas-worker and the Python worker peer $( [ "$QUICK" = 1 ] && echo '(--quick: rough figures)')$( [ "$BACKLOG" -gt 0 ] && echo " (a backlog of $BACKLOG jobs drained: jobs/s = drain rate)")"
echo
echo '```'
cat "$RUN/settings.txt"
echo '```'
echo
echo "| MLP | batching | worker | jobs/s | p50 ms | p99 ms | worker CPU µs/job | CPU py / aas | jobs/s aas / py |"
echo "|---|---|---|---|---|---|---|---|---|"
awk '
  { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
  { k = f["mlp"] SUBSEP f["batching"] }
  f["bench"] == "worker_peer" && f["mode"] == "cpu" { cpu[k, f["worker"]] = f["worker_cpu_us_per_job"] }
  f["bench"] == "worker_peer" && f["mode"] == "backlog" {
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    cpu[k, f["worker"]] = f["worker_cpu_us_per_job"]; jps[k, f["worker"]] = f["jobs_per_s"]
    p50[k, f["worker"]] = "-"; p99[k, f["worker"]] = "-" }
  f["bench"] == "e2e" && f["mode"] == "burst" {
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    jps[k, f["worker"]] = f["jobs_per_s"]; p50[k, f["worker"]] = f["p50_ms"]; p99[k, f["worker"]] = f["p99_ms"] }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, a, SUBSEP)
    r = (cpu[k, "aas"] + 0 > 0 && cpu[k, "py"] != "") ? sprintf("%.1fx", cpu[k, "py"] / cpu[k, "aas"]) : "?"
    t = (jps[k, "py"] + 0 > 0 && jps[k, "aas"] != "") ? sprintf("%.1fx", jps[k, "aas"] / jps[k, "py"]) : "?"
    split("aas py", w, " ")
    for (j = 1; j <= 2; j++)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a[1], a[2], w[j], jps[k, w[j]], p50[k, w[j]],
        p99[k, w[j]], cpu[k, w[j]], (j == 2 ? r : ""), (j == 2 ? t : "") } }
' "$RESULTS"
echo
echo "RESULT lines: $RESULTS"
} | tee "$BUILD/worker-peer-table.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo >&2
  printf 'run_worker_peer_bench: %d step(s) failed:\n' "${#FAILED[@]}" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
