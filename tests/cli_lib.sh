# cli_lib.sh - sourced by the shell tests of aas-producer (test_cli.sh,
# test_cli_text.sh, test_dataset_cli.sh): counting checks, and stopping
# what a test started.  The test sets RUN (its temp dir) and, as it starts
# them, REDIS_PID, BROKER_PID, BROKER2_PID and WORKER_PID; it ends with
# its own summary of FAILS.
FAILS=0 REDIS_PID='' BROKER_PID='' BROKER2_PID='' WORKER_PID=''
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
# expect CODE PATTERN -- command...: exit code and a stderr/stdout pattern
expect() {
  local want=$1 pat=$2; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" <<<"$out"; then ok "$want: ${*:2:6}"
  else bad "want exit $want and /$pat/, got $rc: $out (${*})"; fi
}
# stop_proc PID: SIGTERM, and wait for the exit up to STOP_TIMEOUT_S
# (default 60).  A program still running then is a shutdown hang, a defect:
# its threads' stacks (gdb, when installed) and the end of the test's logs
# are printed, it is killed, and the test fails (STOP_HUNG=1).  A worker
# that ran into its own worker.shutdown.timeout.s (exit status 3) is
# reported with the logs' tails, as a note: bounded, it loses nothing.
STOP_HUNG=0
stop_proc() {
  local pid=$1 i rc cmd
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")
  for i in $(seq $((${STOP_TIMEOUT_S:-60} * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rc=0; wait "$pid" 2>/dev/null || rc=$?
      if [ "$rc" = 3 ] && [[ "$cmd" == *aas-worker* ]]; then
        echo "note: ${cmd:0:120} (pid $pid) exited by its shutdown timeout"
        for i in "$RUN"/*.log; do [ -f "$i" ] && { echo "--- $i (tail)"; tail -n 20 "$i"; }; done
      fi
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL ${cmd:0:200} (pid $pid) still running ${STOP_TIMEOUT_S:-60} s after SIGTERM"
  if command -v gdb >/dev/null; then
    gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)' | head -n 150
  fi
  for i in "$RUN"/*.log; do [ -f "$i" ] && { echo "--- $i (tail)"; tail -n 20 "$i"; }; done
  kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  STOP_HUNG=1
}
# Workers first, so they leave while the broker and Redis are up.
cleanup() {
  local pid
  for pid in "$WORKER_PID" "$BROKER_PID" "$BROKER2_PID" "$REDIS_PID"; do stop_proc "$pid"; done
  rm -rf "$RUN"
  [ "$STOP_HUNG" = 0 ] || exit 1
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# HTTP (the gateway tests): code CURL_ARGS... prints the status and keeps
# the body in $RUN/body; check WANT_CODE BODY_PATTERN -- CURL_ARGS...
code() { curl -s -o "$RUN/body" -w '%{http_code}' "$@"; }
check() {
  local want=$1 pat=$2; shift 3
  local got; got=$(code "$@")
  if [ "$got" = "$want" ] && grep -qE -- "$pat" "$RUN/body"; then ok "$want: curl ${*}"
  else bad "want $want and /$pat/, got $got: $(head -c 300 "$RUN/body") (curl ${*})"; fi
}
# start_servers PARTITIONS: a private redis-server and dev broker on free
# loopback ports ($BUILD/tools/aas-devbroker); sets RPORT, REDIS_PID,
# BROKER_PID, BS and SERVERS (-X arguments for the programs) and exports
# AAS_REDIS_PORT and AAS_KAFKA_BOOTSTRAP_SERVERS.
start_servers() {
  RPORT=$(free_port)
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
    >"$RUN/redis.log" 2>&1 & REDIS_PID=$!
  "$BUILD/tools/aas-devbroker" --partitions "${1:-2}" --bootstrap-file "$RUN/bs" >"$RUN/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do [ -s "$RUN/bs" ] && redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  BS=$(cat "$RUN/bs")
  export AAS_REDIS_PORT=$RPORT AAS_KAFKA_BOOTSTRAP_SERVERS=$BS
  SERVERS=(-X "redis.port=$RPORT" -X "kafka.bootstrap.servers=$BS")
}
