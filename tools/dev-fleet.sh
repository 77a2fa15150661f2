# dev-fleet.sh - sourced by tools/aas-demo and the examples: a throw-away
# fleet on this machine (redis-server on its own port in a temp dir, the
# embedded dev broker, N workers), stopped when the script exits.
#
#   ROOT=...; . "$ROOT/tools/dev-fleet.sh"
#   fleet_prepare            # Debian packages (as root), Release build in $ROOT/build
#   fleet_start N            # exports AAS_REDIS_PORT, AAS_KAFKA_BOOTSTRAP_SERVERS;
#                            # sets BIN, RUN (temp dir), P (aas-producer)
#   fleet_wait_assigned      # until every worker owns partitions
#
# AAS_DEMO_KEEP=DIR keeps a copy of the run directory (logs) at exit.

say() { printf '\033[1m== %s\033[0m\n' "$*"; }

fleet_prepare() {
  # shellcheck source=tools/packages.sh
  . "$ROOT/tools/packages.sh"
  local missing
  missing=$(aas_missing_packages)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: $missing"
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    else
      echo "missing packages; run: sudo apt-get install -y $missing" >&2
      exit 1
    fi
  fi
  say "building"
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
  BIN=$ROOT/build
  P=$BIN/producer/aas-producer
}

FLEET_PIDS=()
fleet_cleanup() {
  # Reverse start order: workers leave the group while the broker and
  # Redis are still up.
  local i
  for ((i = ${#FLEET_PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${FLEET_PIDS[$i]}" 2>/dev/null || true
    wait "${FLEET_PIDS[$i]}" 2>/dev/null || true
  done
  if [ -n "${RUN:-}" ]; then
    [ -n "${AAS_DEMO_KEEP:-}" ] && cp -r "$RUN" "$AAS_DEMO_KEEP"
    rm -rf "$RUN"
  fi
}

fleet_free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port" >&2; exit 1
}

fleet_start() {
  local workers=$1 i
  RUN=$(mktemp -d /tmp/aas-fleet.XXXXXX)
  trap fleet_cleanup EXIT INT TERM
  local redis_port
  redis_port=$(fleet_free_port)
  say "starting redis-server on 127.0.0.1:$redis_port"
  # A throw-away Redis, like everything here, so no persistence: the workers
  # say so at start ("redis persistence: appendonly=no ..."). A deployment
  # runs appendonly yes + appendfsync always (compose.yaml, docs/guarantees.md).
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$RUN" --daemonize no >"$RUN/redis.log" 2>&1 &
  FLEET_PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

  say "starting the dev broker"
  "$BIN/tools/aas-devbroker" --partitions 4 --bootstrap-file "$RUN/bootstrap" \
    >"$RUN/devbroker.out" 2>"$RUN/devbroker.log" &
  FLEET_PIDS+=($!)
  for _ in $(seq 200); do [ -s "$RUN/bootstrap" ] && break; sleep 0.1; done
  local bootstrap
  bootstrap=$(cat "$RUN/bootstrap")
  echo "bootstrap.servers=$bootstrap"

  export AAS_REDIS_PORT=$redis_port AAS_KAFKA_BOOTSTRAP_SERVERS=$bootstrap
  export AAS_LOG_LEVEL=warn
  # The dev broker holds an idle fetch for the whole fetch.wait.max.ms even
  # when a message arrives (real Kafka answers at once): keep it short here
  # (docs/performance.md, "Kafka settings for latency").
  say "starting $workers worker(s)"
  FLEET_WORKERS=$workers
  for i in $(seq "$workers"); do
    OMP_NUM_THREADS=1 "$BIN/worker/aas-worker" -X "worker.id=demo-w$i" -X log.level=info \
      -X kafka.fetch.wait.max.ms=1 >"$RUN/worker$i.log" 2>&1 &
    FLEET_PIDS+=($!)
  done
}

# Every worker must own partitions before timing anything (joining a group
# takes seconds on the dev broker: docs/devbroker.md).
fleet_wait_assigned() {
  local i
  for i in $(seq "$FLEET_WORKERS"); do
    for _ in $(seq 300); do grep -q 'rebalance=assign' "$RUN/worker$i.log" && break; sleep 0.1; done
  done
}
