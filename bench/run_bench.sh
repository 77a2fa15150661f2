#!/usr/bin/env bash
# run_bench.sh - the aas benchmark in one command (issue 7): kernel, end to
# end, transport limits and the peers, on this machine, in one run.
#
#   bench/run_bench.sh [--quick] [--no-kafka] [--no-peers] [--onnx]
#                      [--mlps LIST] [--workers LIST] [--omp-wait LIST] [--window1]
#                      [--baseline PATH]
#
# Builds Release into build-bench/ (incremental), starts redis-server (own
# port, temp dir), the dev broker and real Apache Kafka (tools/kafka-local),
# registers two MLPs with random weights (64-128-128-10, 784-512-512-10),
# then for each broker x {1, 2 workers} x {batching on, off} starts the
# workers and, for both MLPs, runs bench_e2e as a burst (many jobs in
# flight: jobs/s) and one job at a time (latency), then as a backlog
# drained (the workers held stopped with SIGSTOP while 20,000 jobs, 5,000
# on the dev broker, are published, then continued: CPU per job with full
# windows, issue 18); then bench_transport
# (Kafka, dev broker, Redis), build-bench/bench/bench_kernel if it exists,
# and the Python peers (Celery, ONNX Runtime) if bench/peers exists.
# Every RESULT line goes to build-bench/bench-results.txt; Markdown tables
# at the end.  --quick: fewer jobs and messages (a smoke run; its figures
# are rough).  --onnx: also a 784-512-512-10 MLP exported from PyTorch,
# served once as ONNX (784-torch-onnx) and once as AASMLP1 with the same
# weights (784-torch-native), for the ONNX end-to-end comparison (issue 13;
# needs ~/.cache/aas/venv-onnx, see bench/run_onnx_bench.sh).  --mlps LIST keeps only
# those models (comma list of the names above); --workers LIST the worker
# counts (default 1,2); --omp-wait LIST the workers' worker.omp.wait.policy
# values, each a run of its own (default passive; passive,active compares
# them in one run); --window1 adds batching mode off-w1 (no batching and one
# job a window, written alone: the worker before worker.window.jobs).
# --baseline PATH: every end-to-end step also with the aas-worker at PATH
# (e.g. a Release build of an older commit), build=baseline in the tables,
# so a change is measured against what it replaces in the same run;
# --baseline-first runs it before this build in every step (the later of
# two runs on a broker just started has been the faster: swap to check).
# Stops everything it started on exit.  Exit status 1 if any step failed
# (e.g. a job did not succeed), after printing what it has.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
QUICK=0 KAFKA=1 PEERS=1 ONNX=0 ONLY_MLPS="" WORKER_COUNTS="1 2" OMP_WAITS="passive" WINDOW1=0 BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --no-kafka) KAFKA=0; shift ;;
    --no-peers) PEERS=0; shift ;;
    --onnx) ONNX=1; shift ;;
    --mlps) ONLY_MLPS=${2:?--mlps wants a comma list}; shift 2 ;;
    --workers) WORKER_COUNTS=${2:?--workers wants a comma list}; WORKER_COUNTS=${WORKER_COUNTS//,/ }; shift 2 ;;
    --window1) WINDOW1=1; shift ;;
    --baseline) BASELINE=${2:?--baseline wants the path of an aas-worker}; shift 2 ;;
    --baseline-first) BASELINE_FIRST=1; shift ;;
    --omp-wait) OMP_WAITS=${2:?--omp-wait wants a comma list}; OMP_WAITS=${OMP_WAITS//,/ }; shift 2 ;;
    -h|--help) sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$QUICK" = 1 ]; then
  BURST_JOBS=2000 LAT_JOBS=300 WARMUP=100 TR_COUNT=20000 REDIS_COUNT=50000
  declare -A BACKLOG=([kafka]=2000 [devbroker]=2000)
  CELERY_ARGS=(--quick) ORT_ARGS=(--quick)
else
  BURST_JOBS=20000 LAT_JOBS=2000 WARMUP=300 TR_COUNT=200000 REDIS_COUNT=200000
  # The dev broker keeps 5 MiB a partition: 5,000 784-float jobs on 4.
  declare -A BACKLOG=([kafka]=20000 [devbroker]=5000)
  CELERY_ARGS=(--jobs 5000) ORT_ARGS=()
fi
INFLIGHT=1000          # burst: jobs in flight (3.2 MB of 784-float jobs:
                       # under the dev broker's 5 MiB per partition)
PARTITIONS=4
NCPU=$(nproc)
MLPS=("64-128-128-10" "784-512-512-10")

. "$ROOT/bench/lib.sh"
FAILED=()
fail_step() { FAILED+=("$1"); printf 'run_bench: FAILED: %s\n' "$1" >&2; }

# ---------------------------------------------------------------- build
say "building Release into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$NCPU" >/dev/null
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
declare -A WORKER_BIN=([this]=$WORKER)
BUILDS="this"
if [ -n "$BASELINE" ]; then
  [ -x "$BASELINE" ] || { echo "run_bench: --baseline $BASELINE is not an executable" >&2; exit 2; }
  WORKER_BIN[baseline]=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
  BUILDS="this baseline"
  [ "${BASELINE_FIRST:-0}" = 1 ] && BUILDS="baseline this"
fi
E2E=$BUILD/bench/bench_e2e TRANSPORT=$BUILD/bench/bench_transport
RESULTS=$BUILD/bench-results.txt
: >"$RESULTS"

# ---------------------------------------------------------------- services
RUN=$(mktemp -d /tmp/aas-bench.XXXXXX)
PIDS=() WORKER_PIDS=() KDIR= BENCH_DRAIN_PID=
trap bench_fleet_cleanup EXIT
trap 'exit 130' INT TERM


bench_start_redis "$RUN"

say "dev broker ($PARTITIONS partitions)"
"$BUILD/tools/aas-devbroker" --partitions "$PARTITIONS" --bootstrap-file "$RUN/devbroker.bs" \
  >"$RUN/devbroker.out" 2>"$RUN/devbroker.log" &
PIDS+=($!)
for _ in $(seq 200); do [ -s "$RUN/devbroker.bs" ] && break; sleep 0.1; done
declare -A BOOT=([devbroker]=$(cat "$RUN/devbroker.bs"))
BROKERS=()

kafka_up() {
  local k=$ROOT/tools/kafka-local
  "$k" start --dir "$KDIR" --owner $$ &&
    "$k" create-topic --dir "$KDIR" aas.jobs.infer --partitions "$PARTITIONS" --replication 1 &&
    "$k" create-topic --dir "$KDIR" aas.jobs.infer.high --partitions "$PARTITIONS" --replication 1 &&
    "$k" create-topic --dir "$KDIR" aas.jobs.infer.low --partitions "$PARTITIONS" --replication 1 &&
    "$k" create-topic --dir "$KDIR" aas.jobs.train --partitions "$PARTITIONS" --replication 1 &&
    "$k" create-topic --dir "$KDIR" aas.jobs.dlq --partitions 1 --replication 1
}
if [ "$KAFKA" = 1 ]; then
  say "Apache Kafka (tools/kafka-local, 1 broker, $PARTITIONS partitions)"
  KDIR=$RUN/kafka
  if kafka_up >"$RUN/kafka-start.log" 2>&1; then
    BOOT[kafka]=$(cat "$KDIR/bootstrap")
    BROKERS+=(kafka)
  else
    tail -n 20 "$RUN/kafka-start.log" >&2
    fail_step "real Kafka did not start (tools/kafka-local; needs Java 17 and Maven): its rows are missing"
    KDIR=
  fi
fi
BROKERS+=(devbroker)

# Broker-specific settings, for workers and client alike.  The dev broker
# holds an idle fetch for the full fetch.wait.max.ms (docs/devbroker.md);
# real Kafka answers a long-poll fetch as soon as data arrives, so it keeps
# the defaults (the worker's own fetch.wait.max.ms=10).
declare -A BX=([kafka]="" [devbroker]="-X kafka.fetch.wait.max.ms=1")

# Batching keys exist only in a worker that has dynamic batching.
if "$WORKER" --config-reference | grep 'batch.max.rows' >/dev/null; then  # not -q: with pipefail, an early exit SIGPIPEs the worker
  BATCH_MODES=(on off)
  # off-w1: batching off as it was before windows were decoupled from the
  # pass size (one job a window, each written alone), with --window1.
  declare -A BATCH_X=([on]="-X batch.max.rows=64 -X batch.max.delay.us=0" [off]="-X batch.max.rows=1"
                      [off-w1]="-X batch.max.rows=1 -X worker.window.jobs=1 -X batch.record.us=0")
  [ "$WINDOW1" = 1 ] && BATCH_MODES+=(off-w1)
else
  BATCH_MODES=(n/a)
  declare -A BATCH_X=([n/a]="")
  say "this aas-worker has no batch.max.rows: batching rows are labelled n/a"
fi

# ---------------------------------------------------------------- models
say "registering models with random weights"
declare -A MODEL_NAME MODEL_DIM
for m in "${MLPS[@]}"; do
  name="bench-mlp-$m"
  "$E2E" make-model --layers "$m" --out "$RUN/$name.aasm" --seed 7
  "$PRODUCER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[devbroker]}" model register "$name" "$RUN/$name.aasm" >/dev/null
  MODEL_NAME[$m]=$name
  MODEL_DIM[$m]=${m%%-*}
done
PEER_MLPS=("${MLPS[@]}")   # the peers know the random-weight MLPs only
if [ "$ONNX" = 1 ]; then
  PY=${AAS_ONNX_PYTHON:-${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-onnx/bin/python}
  say "exporting a 784-512-512-10 MLP from PyTorch (ONNX + AASMLP1, same weights)"
  mkdir -p "$RUN/onnx"
  "$PY" "$ROOT/tools/onnx-fixtures-torch.py" bench-mlp "$RUN/onnx" >&2
  for kind in native onnx; do
    f=$RUN/onnx/mlp.aasm
    [ "$kind" = onnx ] && f=$RUN/onnx/mlp.onnx
    "$PRODUCER" -X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=${BOOT[devbroker]}" \
      model register "bench-mlp-784-torch-$kind" "$f" >/dev/null
    MODEL_NAME[784-torch-$kind]=bench-mlp-784-torch-$kind
    MODEL_DIM[784-torch-$kind]=784
    MLPS+=("784-torch-$kind")
  done
fi
if [ -n "$ONLY_MLPS" ]; then
  KEEP=()
  for m in "${MLPS[@]}"; do [[ ",$ONLY_MLPS," == *",$m,"* ]] && KEEP+=("$m"); done
  [ ${#KEEP[@]} -gt 0 ] || { echo "run_bench: --mlps $ONLY_MLPS matches none of ${MLPS[*]}" >&2; exit 2; }
  MLPS=("${KEEP[@]}")
fi

{
  echo "settings:"
  echo "  machine: $(lscpu | sed -n 's/^Model name: *//p') x$NCPU, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  partitions: $PARTITIONS; burst: $BURST_JOBS jobs, $INFLIGHT in flight; latency: $LAT_JOBS jobs, 1 in flight; warm-up $WARMUP jobs"
  for b in "${BROKERS[@]}"; do
    echo "  $b (${BOOT[$b]}): workers and client ${BX[$b]:-with default settings}"
  done
  for mode in "${BATCH_MODES[@]}"; do echo "  batching $mode: ${BATCH_X[$mode]:-(worker defaults)}"; done
  echo "  workers: OMP_NUM_THREADS = $NCPU cores / workers"
  if [ -n "$BASELINE" ]; then echo "  build=this: $WORKER; build=baseline: ${WORKER_BIN[baseline]}"; fi
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

# The workers' OpenMP wait comes from --omp-wait alone (the environment's
# would override worker.omp.wait.policy).
unset OMP_WAIT_POLICY GOMP_SPINCOUNT
start_workers() { # broker n batching omp-wait-policy build
  local b=$1 n=$2 mode=$3 wait=$4 build=$5 i omp=$(( NCPU / $2 ))
  [ "$omp" -ge 1 ] || omp=1
  WORKER_PIDS=() WORKER_LOGS=() WORKER_PORTS=()
  for i in $(seq "$n"); do
    local log="$RUN/worker-$b-$n-${mode//\//}-$wait-$build-$i.log" port
    port=$(bench_free_port)
    WORKER_PORTS+=("$port")
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$omp "${WORKER_BIN[$build]}" -X "redis.port=$REDIS_PORT" -X "worker.omp.wait.policy=$wait" \
      -X "metrics.port=$port" \
      -X "kafka.bootstrap.servers=${BOOT[$b]}" -X "worker.id=bench-$b-w$i" \
      -X log.level=info ${BX[$b]} ${BATCH_X[$mode]} >"$log" 2>&1 &
    WORKER_PIDS+=($!) WORKER_LOGS+=("$log")
  done
  # Ready when every worker owns partitions of the inference topic.
  for i in $(seq 0 $((n - 1))); do
    for _ in $(seq 900); do
      grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "${WORKER_LOGS[$i]}" && break
      kill -0 "${WORKER_PIDS[$i]}" 2>/dev/null || break
      sleep 0.1
    done
    if ! grep -q 'rebalance=assign partitions=.*aas.jobs.infer' "${WORKER_LOGS[$i]}"; then
      tail -n 5 "${WORKER_LOGS[$i]}" >&2
      return 1
    fi
  done
}

stop_workers() {
  local p rc=0
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" || rc=1; done
  WORKER_PIDS=()
  return $rc
}

# stage_result MODE BEFORE AFTER TAGS: a RESULT line of the workers' loop
# time by stage between two bench_stages readings, µs per job.
stage_result() {
  awk -v a="$2" -v b="$3" -v mode="$1" -v tags="$4" '
    function load(str, arr,   i, n, kv, x) { n = split(str, kv, " ");
      for (i = 1; i <= n; i++) { split(kv[i], x, "="); arr[x[1]] = x[2] } }
    BEGIN { load(a, A); load(b, B); jobs = B["jobs"] - A["jobs"]; if (jobs <= 0) exit
      line = "RESULT bench=e2e mode=" mode " " tags " jobs=" jobs
      split("poll collect admit model forward result record settle", st, " ")
      for (i = 1; i <= 8; i++) line = line sprintf(" %s_us=%.1f", st[i], (B[st[i]] - A[st[i]]) / jobs * 1e6)
      print line }' | tee -a "$RESULTS"
}

# ---------------------------------------------------------------- end to end
for b in "${BROKERS[@]}"; do
  for n in $WORKER_COUNTS; do
    for mode in "${BATCH_MODES[@]}"; do
     for wait in $OMP_WAITS; do
     for build in $BUILDS; do
      what="$b, $n worker(s), batching $mode, OpenMP wait $wait, build $build"
      say "e2e: $what"
      if ! start_workers "$b" "$n" "$mode" "$wait" "$build"; then
        fail_step "workers did not get partitions ($what)"
        stop_workers || true
        continue
      fi
      for m in "${MLPS[@]}"; do
        tags=(--tag "broker=$b" --tag "mlp=$m" --tag "workers=$n" --tag "batching=$mode"
              --tag "omp_wait=$wait" --tag "build=$build")
        # shellcheck disable=SC2206  # BX holds "-X key=value" words
        common=(--brokers "${BOOT[$b]}" --redis-port "$REDIS_PORT" --model "${MODEL_NAME[$m]}"
                --dim "${MODEL_DIM[$m]}" --label "$b" "${tags[@]}" ${BX[$b]})
        # The workers' CPU over the burst (warm-up included), all threads,
        # from /proc: CPU per job beside jobs/s (issue 18).
        t0=$(bench_ticks "${WORKER_PIDS[@]}") s0=$(bench_stages "${WORKER_PORTS[@]}")
        record "$RUN/e2e-$b-$n-${mode//\//}-$wait-$build-$m-burst.log" "$E2E" "${common[@]}" \
          --jobs "$BURST_JOBS" --inflight "$INFLIGHT" --warmup "$WARMUP" ||
          fail_step "bench_e2e burst ($m, $what)"
        t1=$(bench_ticks "${WORKER_PIDS[@]}") s1=$(bench_stages "${WORKER_PORTS[@]}")
        echo "RESULT bench=e2e mode=cpu broker=$b mlp=$m workers=$n batching=$mode omp_wait=$wait build=$build" \
          "jobs=$((BURST_JOBS + WARMUP)) worker_cpu_s=$(awk -v t=$((t1 - t0)) -v hz="$BENCH_HZ" 'BEGIN { printf "%.2f", t / hz }')" \
          "worker_cpu_us_per_job=$(awk -v t=$((t1 - t0)) -v hz="$BENCH_HZ" -v j=$((BURST_JOBS + WARMUP)) 'BEGIN { printf "%.1f", t / hz / j * 1e6 }')" |
          tee -a "$RESULTS"
        # The loop's time by stage over the burst, per job (µs; summed over
        # the workers, so with 2 workers a job's stages add up to twice the
        # wall time: each worker's poll includes its idle waits).
        stage_result stages "$s0" "$s1" "broker=$b mlp=$m workers=$n batching=$mode omp_wait=$wait build=$build"
        record "$RUN/e2e-$b-$n-${mode//\//}-$wait-$build-$m-latency.log" "$E2E" "${common[@]}" \
          --jobs "$LAT_JOBS" --inflight 1 --warmup 50 ||
          fail_step "bench_e2e latency ($m, $what)"
        # A backlog drained (issue 18): the workers held stopped while
        # ${BACKLOG[$b]} jobs are published, then let go.  Windows are full,
        # so CPU per job is the worker's own cost; exact CPU (schedstat).
        s0=$(bench_stages "${WORKER_PORTS[@]}")
        bench_drain "${WORKER_PIDS[*]}" "$RUN/e2e-$b-$n-${mode//\//}-$wait-$build-$m-backlog.log" \
          "$E2E" "${common[@]}" --jobs "${BACKLOG[$b]}" --inflight "${BACKLOG[$b]}" --warmup 0
        [ "$DRAIN_RC" = 0 ] || fail_step "bench_e2e backlog ($m, $what)"
        s1=$(bench_stages "${WORKER_PORTS[@]}")
        echo "RESULT bench=e2e mode=backlog broker=$b mlp=$m workers=$n batching=$mode omp_wait=$wait build=$build" \
          "jobs=${BACKLOG[$b]} drain_s=$(awk -v t="$DRAIN_NS" 'BEGIN { printf "%.3f", t / 1e9 }')" \
          "jobs_per_s=$(awk -v t="$DRAIN_NS" -v j="${BACKLOG[$b]}" 'BEGIN { printf "%.0f", j / (t / 1e9) }')" \
          "worker_cpu_us_per_job=$(awk -v c="$DRAIN_CPU_NS" -v j="${BACKLOG[$b]}" 'BEGIN { printf "%.1f", c / 1e3 / j }')" |
          tee -a "$RESULTS"
        stage_result backlog_stages "$s0" "$s1" "broker=$b mlp=$m workers=$n batching=$mode omp_wait=$wait build=$build"
      done
      stop_workers || fail_step "a worker did not exit 0 ($what)"
     done
     done
    done
  done
done

# ---------------------------------------------------------------- transport
for b in "${BROKERS[@]}"; do
  create="admin"
  [ "$b" = devbroker ] && create=auto
  for size in "--job-dim 784" "--size 4096"; do
    say "transport: $b $size"
    # shellcheck disable=SC2086
    record "$RUN/transport-$b-${size// /}.log" "$TRANSPORT" kafka --brokers "${BOOT[$b]}" \
      --label "$b" --create "$create" --count "$TR_COUNT" --partitions "$PARTITIONS" $size \
      ${BX[$b]//kafka./} || fail_step "bench_transport $b $size"
  done
done
say "transport: redis"
record "$RUN/transport-redis.log" "$TRANSPORT" redis --port "$REDIS_PORT" --count "$REDIS_COUNT" ||
  fail_step "bench_transport redis"

# ---------------------------------------------------------------- kernel
if [ -x "$BUILD/bench/bench_kernel" ]; then
  say "kernel: bench_kernel"
  record "$RUN/kernel.log" "$BUILD/bench/bench_kernel" || fail_step "bench_kernel"
else
  say "kernel: $BUILD/bench/bench_kernel not built here; skipped"
fi

# ---------------------------------------------------------------- peers
if [ "$PEERS" = 1 ] && [ -d "$ROOT/bench/peers" ]; then
  say "peers: Python venv (bench/peers/setup_venv.sh)"
  if "$ROOT/bench/peers/setup_venv.sh" "$BUILD/peers-venv"; then
    PY=$BUILD/peers-venv/bin/python
    say "peers: Celery"
    record "$RUN/celery.log" "$PY" "$ROOT/bench/peers/bench_celery.py" --workers 1,2 \
      --mlp "$(IFS=,; echo "${PEER_MLPS[*]}")" "${CELERY_ARGS[@]}" || fail_step "bench_celery.py"
    say "peers: ONNX Runtime"
    record "$RUN/onnxruntime.log" "$PY" "$ROOT/bench/peers/bench_onnxruntime.py" \
      "${ORT_ARGS[@]}" || fail_step "bench_onnxruntime.py"
  else
    fail_step "bench/peers/setup_venv.sh"
  fi
else
  say "peers: bench/peers absent (or --no-peers); skipped"
fi

# ---------------------------------------------------------------- tables
# md_table FILTER COLUMNS...: a Markdown table of the RESULT lines whose
# fields match FILTER (awk condition on f["key"]), columns "key:Title".
md_table() {
  local filter=$1; shift
  awk -v cols="$*" '
    function val(k) { return (k in f) ? f[k] : "" }
    BEGIN { n = split(cols, c, " ");
      for (i = 1; i <= n; i++) { split(c[i], kt, ":"); key[i] = kt[1]; title[i] = kt[2]; gsub(/_/, " ", title[i]) }
      line = "|"; sep = "|";
      for (i = 1; i <= n; i++) { line = line " " title[i] " |"; sep = sep "---|" }
      print line; print sep }
    { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
    '"$filter"' { line = "|"; for (i = 1; i <= n; i++) line = line " " val(key[i]) " |"; print line }
  ' "$RESULTS"
}

# The columns of both stage tables (burst and backlog).
STAGE_COLS=(broker:broker mlp:MLP workers:workers batching:batching omp_wait:OpenMP_wait build:build
            poll_us:poll collect_us:collect admit_us:admit model_us:model forward_us:forward
            result_us:result record_us:record settle_us:settle)
{
echo
echo "# aas benchmark $( [ "$QUICK" = 1 ] && echo '(--quick: rough figures)')"
echo
echo '```'
cat "$RUN/settings.txt"
echo '```'
echo
echo "## End to end (jobs/s and p50/p99 of the burst: $INFLIGHT in flight; one in flight: latency)"
echo
echo "| broker | MLP | workers | batching | OpenMP wait | build | jobs/s | worker CPU µs/job | p50 ms | p99 ms | one in flight p50 ms | one in flight p99 ms | read lag p99 ms (burst) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
awk '
  { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
  f["bench"] == "e2e" && f["mode"] == "cpu" {
    cpu[f["broker"] SUBSEP f["mlp"] SUBSEP f["workers"] SUBSEP f["batching"] SUBSEP f["omp_wait"] SUBSEP f["build"]] = f["worker_cpu_us_per_job"]
  }
  f["bench"] == "e2e" && (f["mode"] == "burst" || f["mode"] == "latency") {
    k = f["broker"] SUBSEP f["mlp"] SUBSEP f["workers"] SUBSEP f["batching"] SUBSEP f["omp_wait"] SUBSEP f["build"]
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    if (f["mode"] == "burst") { jps[k] = f["jobs_per_s"]; b50[k] = f["p50_ms"]; b99[k] = f["p99_ms"]; lag[k] = f["read_lag_p99_ms"] }
    else { l50[k] = f["p50_ms"]; l99[k] = f["p99_ms"] }
  }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, a, SUBSEP)
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a[1], a[2], a[3], a[4], a[5], a[6], jps[k], cpu[k], b50[k], b99[k], l50[k], l99[k], lag[k] } }
' "$RESULTS"
echo
echo "## Cost per job: a backlog drained (workers held stopped while it is published; CPU from schedstat)"
echo
md_table 'f["bench"] == "e2e" && f["mode"] == "backlog"' \
  broker:broker mlp:MLP workers:workers batching:batching omp_wait:OpenMP_wait build:build jobs:backlog \
  jobs_per_s:drain_jobs/s worker_cpu_us_per_job:worker_CPU_µs/job
echo
echo "Worker loop by stage while draining (µs per job of wall time, summed over the workers):"
echo
md_table 'f["bench"] == "e2e" && f["mode"] == "backlog_stages"' "${STAGE_COLS[@]}"
echo
echo "## Worker loop by stage (µs per job over the burst, summed over the workers; aas_worker_stage_seconds_total)"
echo
md_table 'f["bench"] == "e2e" && f["mode"] == "stages"' "${STAGE_COLS[@]}"
echo
echo "## Transport limits"
echo
md_table 'f["bench"] == "transport" && f["target"] != "redis"' \
  target:target size:bytes count:messages produce_msgs_per_s:produce_msgs/s \
  consume_msgs_per_s:consume_msgs/s msgs_per_s:produce-then-consume_msgs/s topic_create:topic
echo
md_table 'f["bench"] == "transport" && f["target"] == "redis"' \
  target:target mode:mode batch:jobs_per_batch count:jobs msgs_per_s:jobs/s_HSET+EXPIRE commands_per_s:commands/s
if grep -q '^RESULT bench=kernel' "$RESULTS"; then
  echo
  echo "## Kernel (bench_kernel): GFLOP/s of the 784-512-512-10 forward"
  echo
  echo "| threads | batch | aas f32 | bare oneDNN inner_product | oneDNN sgemm | naive C | ONNX Runtime f32 | aas bf16 | aas int8 |"
  echo "|---|---|---|---|---|---|---|---|---|"
  awk '
    { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
    f["bench"] == "kernel" && f["section"] == "kernel" {
      k = f["threads"] SUBSEP f["batch"]; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
      g[k, f["impl"]] = f["gflops"] }
    f["peer"] == "onnxruntime" && f["mlp"] == "784-512-512-10" { g[f["threads"] SUBSEP f["batch"], "ort"] = f["gflops"] }
    END { for (i = 1; i <= n; i++) { k = order[i]; split(k, a, SUBSEP)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a[1], a[2], g[k, "aas_f32"], g[k, "onednn_ip"],
        g[k, "sgemm"], g[k, "naive"], g[k, "ort"], g[k, "aas_bf16"], g[k, "aas_int8"] } }
  ' "$RESULTS"
  echo
  # bench_kernel's own fields, one table per section= value (if it has any).
  sections=$(grep '^RESULT bench=kernel' "$RESULTS" | sed -n 's/.* section=\([^ ]*\).*/\1/p' | awk '!s[$0]++')
  [ -n "$sections" ] || sections=-
  for sec in $sections; do
    [ "$sec" = kernel ] && continue # the table above
    if [ "$sec" = - ]; then pat='^RESULT bench=kernel'; filter='f["bench"] == "kernel"'
    else pat="^RESULT bench=kernel.* section=$sec( |\$)"; filter="f[\"bench\"] == \"kernel\" && f[\"section\"] == \"$sec\""
      echo "$sec:"; echo; fi
    keys=$(grep -E "$pat" "$RESULTS" | tr ' ' '\n' | grep '=' | cut -d= -f1 | grep -vx 'bench\|section' |
           awk '!s[$0]++' | sed 's/.*/&:&/' | tr '\n' ' ')
    # shellcheck disable=SC2086
    md_table "$filter" $keys
    echo
  done
fi
if grep -q '^RESULT peer=' "$RESULTS"; then
  echo
  echo "## Peers"
  echo
  md_table 'f["peer"] == "celery" && f["mode"] == "burst"' \
    peer:peer mlp:MLP workers:workers jobs:burst_jobs jobs_per_s:jobs/s payload:payload
  echo
  md_table 'f["peer"] == "celery" && f["mode"] == "latency"' \
    peer:peer mlp:MLP workers:workers jobs:one-at-a-time_jobs p50_ms:p50_ms p99_ms:p99_ms
  echo
  md_table 'f["peer"] == "onnxruntime"' \
    peer:peer mlp:MLP batch:batch threads:threads ms:ms_per_forward gflops:GFLOP/s rows_per_s:rows/s op:op
  echo
  echo "## aas / Celery, 784-512-512-10, 2 workers, burst jobs/s"
  echo
  echo "| broker | batching | aas jobs/s | Celery jobs/s | ratio |"
  echo "|---|---|---|---|---|"
  awk '
    { delete f; for (i = 2; i <= NF; i++) { p = index($i, "="); if (p) f[substr($i, 1, p - 1)] = substr($i, p + 1) } }
    f["peer"] == "celery" && f["mode"] == "burst" && f["mlp"] == "784-512-512-10" && f["workers"] == 2 { cel = f["jobs_per_s"] }
    f["bench"] == "e2e" && f["mode"] == "burst" && f["mlp"] == "784-512-512-10" && f["workers"] == 2 && f["build"] != "baseline" {
      row[++n] = f["broker"] " | " f["batching"]; aas[n] = f["jobs_per_s"] }
    END { for (i = 1; i <= n; i++) {
            ratio = (cel + 0 > 0) ? sprintf("%.1fx", aas[i] / cel) : "?"
            printf "| %s | %s | %s | %s |\n", row[i], aas[i], (cel == "" ? "?" : cel), ratio } }
  ' "$RESULTS"
fi
echo
echo "RESULT lines: $RESULTS"
} | tee "$BUILD/bench-tables.md"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo >&2
  printf 'run_bench: %d step(s) failed:\n' "${#FAILED[@]}" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
