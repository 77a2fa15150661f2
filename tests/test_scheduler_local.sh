#!/usr/bin/env bash
# test_scheduler_local.sh - the workers the local actuator starts (issue
# 17, defect 4), on a real redis-server and the dev broker: they get the
# scheduler's connection settings (here given to the scheduler with -X
# only, none in the environment) through logdir/aas-worker.conf (mode
# 600), each its own metrics port (reported in the heartbeat and by
# `status`, and serving /metrics there), and each its own log file.
# Usage: tests/test_scheduler_local.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_scheduler_local.sh BUILD_DIR}" && pwd)
RUN=$(mktemp -d /tmp/aas-schedlocal-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
SCHED=$BUILD/scheduler/aas-scheduler
T0=$SECONDS
SPID=''
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; cleanup' EXIT

start_servers 2
unset AAS_REDIS_PORT AAS_KAFKA_BOOTSTRAP_SERVERS
# Two consecutive free ports, below the ephemeral range (32768-60999), so
# that no connection's local end takes BASE + 1 after the check (a kernel
# pick is in that range, and BASE + 1 was not checked: the test failed
# when a concurrent test's connection held it).
BASE=$(python3 -c '
import random, socket
for _ in range(200):
    b = random.randint(20000, 32000)
    try:
        s = [socket.socket() for _ in range(2)]
        for i, x in enumerate(s):
            x.bind(("127.0.0.1", b + i))
        print(b)
        break
    except OSError:
        pass
    finally:
        for x in s:
            x.close()
')
LOGS=$RUN/logs
( cd "$RUN" && PATH="$BUILD/worker:$PATH" exec "$SCHED" "${SERVERS[@]}" -X worker.group=local-g \
    -X scheduler.min=2 -X scheduler.max=2 -X scheduler.interval.ms=500 \
    -X "scheduler.worker.logdir=$LOGS" -X "scheduler.worker.metrics.port=$BASE" run \
    >"$RUN/sched.log" 2>&1 ) &
SPID=$!
live=0
for _ in $(seq 300); do
  out=$("$SCHED" "${SERVERS[@]}" -X worker.group=local-g status 2>/dev/null)
  live=$(sed -n 's/^workers: \([0-9]*\) live/\1/p' <<<"$out")
  [ "${live:-0}" -ge 2 ] && break
  sleep 0.2
done
[ "${live:-0}" = 2 ] && ok "2 workers started, live (they reached Redis with the scheduler's settings)" \
  || bad "workers live: ${live:-?}: $(tail -5 "$RUN/sched.log"; tail -3 "$LOGS"/*.log 2>/dev/null)"
ports=$(awk '/^  sched-/ {print $8}' <<<"$out" | sort -n | tr '\n' ' ')
[ "$ports" = "$BASE $((BASE + 1)) " ] && ok "status shows their metrics ports: $ports" \
  || bad "metrics ports in status: '$ports' (want $BASE $((BASE + 1))): $out"
for p in $BASE $((BASE + 1)); do
  # To a file first: `curl | grep -q` under pipefail fails whenever grep
  # stops reading before curl has written the whole page (SIGPIPE).
  curl -sf "http://127.0.0.1:$p/metrics" >"$RUN/metrics.$p" && grep -q '^aas_worker_' "$RUN/metrics.$p" \
    && ok "worker metrics on :$p" \
    || bad "no worker metrics on :$p"
done
n=$(ls "$LOGS"/sched-*.log 2>/dev/null | wc -l)
[ "$n" = 2 ] && grep -q "worker=" "$LOGS"/sched-*.log && ok "each worker logs to its own file ($n)" \
  || bad "worker log files: $n in $LOGS"
mode=$(stat -c %a "$LOGS/aas-worker.conf" 2>/dev/null)
[ "$mode" = 600 ] && grep -q "^redis.port = $RPORT$" "$LOGS/aas-worker.conf" \
  && grep -q "^worker.group = local-g$" "$LOGS/aas-worker.conf" \
  && ok "aas-worker.conf: mode 600, the scheduler's redis.port and worker.group" \
  || bad "aas-worker.conf: mode $mode: $(cat "$LOGS/aas-worker.conf" 2>&1 | head -20)"
# Partitions assigned: the workers reached Kafka too (a group join takes
# a few seconds on the dev broker).
held=0
for _ in $(seq 150); do
  out=$("$SCHED" "${SERVERS[@]}" -X worker.group=local-g status 2>/dev/null)
  awk '/^  sched-/ {print $NF}' <<<"$out" | grep -q '[0-9]' && { held=1; break; }
  sleep 0.2
done
[ "$held" = 1 ] && ok "workers hold partitions (Kafka reached)" || bad "no partitions held: $out"

pgrep -f -- "-c $LOGS/aas-worker.conf" >/dev/null && ok "its workers run with its config file" \
  || bad "no worker runs with -c $LOGS/aas-worker.conf"
kill -TERM "$SPID"; wait "$SPID" 2>/dev/null; SPID=''
sleep 1
# Its own workers only (their config file is in $LOGS): another test's
# fleet may use the same worker ids.
pgrep -f -- "-c $LOGS/aas-worker.conf" >/dev/null && bad "workers still running after the scheduler stopped" \
  || ok "the scheduler's workers stopped with it"
echo "test_scheduler_local: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
