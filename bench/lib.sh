# lib.sh - shell pieces the benchmark scripts share (sourced, not run).

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# bench_free_port: a loopback port free right now, the kernel's pick (a
# random port that nobody listens on may still be the local end of a
# connection, and then cannot be bound).
bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' ||
    { echo "bench: no free port" >&2; exit 1; }
}

# bench_start_redis DIR: a throw-away redis-server in DIR, by default with
# no persistence (the published figures; a deployment fsyncs every write,
# docs/guarantees.md); AAS_BENCH_REDIS_DURABLE=1 runs it as compose.yaml
# does (appendonly yes, appendfsync always) to see what that costs.
# Sets REDIS_PORT, appends its pid to PIDS, returns once it answers.
bench_start_redis() {
  REDIS_PORT=$(bench_free_port)
  local persist=(--appendonly no)
  [ "${AAS_BENCH_REDIS_DURABLE:-0}" = 1 ] && persist=(--appendonly yes --appendfsync always)
  say "redis-server on 127.0.0.1:$REDIS_PORT (${persist[*]})"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' "${persist[@]}" \
    --dir "$1" --daemonize no >"$1/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null
}

# bench_ticks PID...: CPU clock ticks (utime + stime, all threads) these
# processes have used so far; a pid gone counts 0.  BENCH_HZ ticks a second.
BENCH_HZ=$(getconf CLK_TCK)
bench_ticks() {
  local p t=0 v
  for p in "$@"; do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# bench_cpu_ns PID...: CPU nanoseconds (all threads alive now) these
# processes have used so far, from the scheduler's own accounting: exact
# where bench_ticks counts 10 ms ticks (a backlog of a few thousand jobs
# drains in less than a second).  Threads that already ended are not
# counted, so measure across a span in which none ends.
bench_cpu_ns() {
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
    awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# bench_drain "PID..." LOG CMD...: hold the workers PID... stopped
# (SIGSTOP) while CMD (a bench_e2e with --ready-file $LOG.ready) publishes
# its backlog, then continue them and wait for CMD.  Sets DRAIN_NS (wall
# time from the continue to CMD's exit), DRAIN_CPU_NS (the workers' CPU
# over it, bench_cpu_ns) and DRAIN_RC (CMD's exit status).  With windows
# full, CPU per job is the workers' own cost, not that of a worker waiting
# for a load generator on the same cores.
bench_drain() {
  local pids=$1 log=$2 c0 w0 c1 w1 p; shift 2
  rm -f "$log.ready"
  # shellcheck disable=SC2086
  kill -STOP $pids
  "$@" --ready-file "$log.ready" >"$log" 2> >(grep -v 'CONFWARN\|Failed to acquire idempotence PID' >&2) &
  BENCH_DRAIN_PID=$!
  while [ ! -e "$log.ready" ] && kill -0 "$BENCH_DRAIN_PID" 2>/dev/null; do sleep 0.05; done
  # shellcheck disable=SC2086
  c0=$(bench_cpu_ns $pids) w0=$(date +%s%N)
  # shellcheck disable=SC2086
  kill -CONT $pids
  DRAIN_RC=0
  wait "$BENCH_DRAIN_PID" || DRAIN_RC=$?
  BENCH_DRAIN_PID=""
  # shellcheck disable=SC2086
  w1=$(date +%s%N) c1=$(bench_cpu_ns $pids)
  DRAIN_NS=$((w1 - w0)) DRAIN_CPU_NS=$((c1 - c0))
}

# bench_stages PORT...: "stage=seconds ..." summed over the workers whose
# /metrics listen on these loopback ports (aas_worker_stage_seconds_total),
# then "jobs=N" (aas_worker_jobs_total, every model and status).
bench_stages() {
  local p
  for p in "$@"; do curl -s --max-time 5 "http://127.0.0.1:$p/metrics" || true; done |
    awk '/^aas_worker_stage_seconds_total\{stage="/ { split($1, a, "\""); s[a[2]] += $2 }
         /^aas_worker_jobs_total\{/ { jobs += $2 }
         END { for (k in s) printf "%s=%.6f ", k, s[k]; printf "jobs=%d\n", jobs }'
}

# stop_pid PID: SIGTERM, wait up to 10 s for the exit, then SIGKILL; an
# empty or gone pid is fine.
stop_pid() {
  local p=$1 i
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# The fleet scripts' cleanup (run_bench.sh, run_lanes_bench.sh,
# run_tenants_bench.sh): workers (WORKER_PIDS, continued first: they may be
# paused) and a drain in progress (BENCH_DRAIN_PID), then PIDS in reverse,
# then the Kafka of KDIR; RUN is copied to AAS_BENCH_KEEP if set, then
# removed.
bench_fleet_cleanup() {
  local p i
  for p in "${WORKER_PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
  [ -n "${BENCH_DRAIN_PID:-}" ] && kill -TERM "$BENCH_DRAIN_PID" 2>/dev/null
  for p in "${WORKER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WORKER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  if [ -n "$KDIR" ]; then "$ROOT/tools/kafka-local" stop --dir "$KDIR" --rm >/dev/null 2>&1 || true; fi
  if [ -n "${AAS_BENCH_KEEP:-}" ]; then cp -r "$RUN" "$AAS_BENCH_KEEP"; fi
  rm -rf "$RUN"
}

# bench_start_brokers NAME: the dev broker, and (KAFKA=1) one real Kafka
# broker from tools/kafka-local with the five aas topics, PARTITIONS
# partitions each (the dead-letter topic 1), in RUN.  Sets BOOT[broker]
# (bootstrap servers), BROKERS (the ones that started) and KDIR; appends
# the dev broker's pid to PIDS.  A Kafka that does not start is said (as
# NAME) and left out.
bench_start_brokers() {
  say "dev broker ($PARTITIONS partitions)"
  "$BUILD/tools/aas-devbroker" --partitions "$PARTITIONS" --bootstrap-file "$RUN/devbroker.bs" \
    >"$RUN/devbroker.out" 2>"$RUN/devbroker.log" &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$RUN/devbroker.bs" ] && break; sleep 0.1; done
  BOOT[devbroker]=$(cat "$RUN/devbroker.bs")
  BROKERS=(devbroker)
  [ "$KAFKA" = 1 ] || return 0
  say "Apache Kafka (tools/kafka-local, 1 broker, $PARTITIONS partitions)"
  KDIR=$RUN/kafka
  local k=$ROOT/tools/kafka-local t
  if { "$k" start --dir "$KDIR" --owner $$ &&
       for t in aas.jobs.infer aas.jobs.infer.high aas.jobs.infer.low aas.jobs.train; do
         "$k" create-topic --dir "$KDIR" "$t" --partitions "$PARTITIONS" --replication 1 || exit 1
       done &&
       "$k" create-topic --dir "$KDIR" aas.jobs.dlq --partitions 1 --replication 1; } \
       >"$RUN/kafka-start.log" 2>&1; then
    BOOT[kafka]=$(cat "$KDIR/bootstrap")
    BROKERS+=(kafka)
  else
    tail -n 20 "$RUN/kafka-start.log" >&2
    echo "$1: real Kafka did not start; its rows are missing" >&2
    KDIR=
  fi
}

