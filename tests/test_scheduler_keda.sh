#!/usr/bin/env bash
# test_scheduler_keda.sh - what Kubernetes reads from aas programs (issue
# 17), on a real redis-server and the dev broker:
#   - the scheduler with scheduler.actuator=none serves GET /keda on its
#     metrics port, read here exactly as KEDA's metrics-api scaler reads it
#     (HTTP GET, JSON, the value at valueLocation "desired_workers" parsed
#     as a number): the minimum with no backlog, more once a backlog of
#     500 jobs waits on the group; /healthz 200, /readyz 200 once it
#     measured;
#   - a worker's /healthz is 200 and its /readyz turns 200 once it has
#     joined its consumer group;
#   - the scheduler counts only the workers of its own group: a worker of
#     another group (keda-w), live in the same Redis, is not in /keda's
#     live_workers nor in status's workers (status lists it apart, with its
#     group); a training-only worker whose kafka.group.id is keda-g is.
# Usage: tests/test_scheduler_keda.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_scheduler_keda.sh BUILD_DIR}" && pwd)
RUN=$(mktemp -d /tmp/aas-keda-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
T0=$SECONDS
SPID='' W2PID=''
trap '[ -n "$W2PID" ] && kill "$W2PID" 2>/dev/null && wait "$W2PID" 2>/dev/null
      [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; cleanup' EXIT
start_servers 2
SP=$(free_port) WP=$(free_port) WP2=$(free_port)
"$BUILD/scheduler/aas-scheduler" "${SERVERS[@]}" -X worker.group=keda-g -X scheduler.actuator=none \
  -X scheduler.min=1 -X scheduler.max=8 -X scheduler.interval.ms=300 -X "metrics.port=$SP" run \
  >"$RUN/sched.log" 2>&1 &
SPID=$!
# keda VALUE_LOCATION: what the metrics-api scaler would take as the metric
# (GET, JSON, a gjson path: here a top-level key; a number or a numeric string).
keda() {
  python3 - "http://127.0.0.1:$SP/keda" "$1" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    assert r.status == 200, r.status
    doc = json.loads(r.read())
v = doc
for part in sys.argv[2].split("."):
    v = v[part]
print(int(float(v)))
PY
}
wait_for() { local n=$(($1 * 10)); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
http() { curl -s -o "$RUN/body" -w '%{http_code}' --max-time 5 "$1"; }
is_200() { [ "$(http "$1")" = 200 ]; }

wait_for 30 is_200 "http://127.0.0.1:$SP/readyz" && ok "scheduler /readyz 200 once it measured" \
  || bad "scheduler /readyz: $(http "http://127.0.0.1:$SP/readyz") $(cat "$RUN/body")"
is_200 "http://127.0.0.1:$SP/healthz" && ok "scheduler /healthz 200" || bad "scheduler /healthz $(cat "$RUN/body")"
d=$(keda desired_workers 2>&1)
[ "$d" = 1 ] && ok "idle: KEDA reads desired_workers=1 (scheduler.min)" || bad "idle: KEDA would read '$d'"

# A backlog on the group's topic (no worker of keda-g runs): 500 jobs.
python3 -c 'print("\n".join("job-%d" % i for i in range(500)))' |
  kcat -P -b "$BS" -t aas.jobs.infer -q 2>"$RUN/kcat.log" || bad "kcat: $(cat "$RUN/kcat.log")"
more=0
for _ in $(seq 100); do d=$(keda desired_workers 2>/dev/null); [ "${d:-0}" -ge 2 ] && { more=1; break; }; sleep 0.2; done
[ "$more" = 1 ] && ok "backlog of 500: KEDA reads desired_workers=$d" \
  || bad "backlog: KEDA reads '$d': $(curl -s "http://127.0.0.1:$SP/keda")"
grep -q '"leader": *true' <(curl -s "http://127.0.0.1:$SP/keda") && ok "/keda says it leads" \
  || bad "/keda: $(curl -s "http://127.0.0.1:$SP/keda")"

# A worker (its own group: it leaves keda-g's backlog alone).
"$BUILD/worker/aas-worker" "${SERVERS[@]}" -X worker.group=keda-w -X "metrics.port=$WP" \
  -X worker.heartbeat.ms=300 >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
wait_for 30 is_200 "http://127.0.0.1:$WP/healthz" && ok "worker /healthz 200" \
  || bad "worker /healthz: $(cat "$RUN/body")"
wait_for 60 is_200 "http://127.0.0.1:$WP/readyz" && ok "worker /readyz 200 once in its group" \
  || bad "worker /readyz: $(http "http://127.0.0.1:$WP/readyz") $(cat "$RUN/body")"

# Only the scheduler's own group counts.  keda-w's worker is live (ready:
# its heartbeat is written, and it names its group) ...
st=$("$BUILD/scheduler/aas-scheduler" "${SERVERS[@]}" -X worker.group=keda-g status --json \
  --sample-ms 0 2>"$RUN/status.err")
grep -qE '^\{"other_group_worker":\{.*"group": ?"keda-w"' <<<"$st" \
  && ok "status --json lists the keda-w worker apart, with its group" \
  || bad "status --json, other group's worker: $(grep -i worker <<<"$st") $(cat "$RUN/status.err")"
grep -q '^{"worker":' <<<"$st" && bad "status --json counts keda-w's worker as keda-g's: $st" \
  || ok "status --json: no worker of keda-g"
# ... and a training-only worker joins keda-g through kafka.group.id (its
# worker.group stays the default): the scheduler counts it, and it alone.
"$BUILD/worker/aas-worker" "${SERVERS[@]}" -X kafka.group.id=keda-g -X worker.infer=false \
  -X "metrics.port=$WP2" -X worker.heartbeat.ms=300 >"$RUN/worker2.log" 2>&1 &
W2PID=$!
wait_for 60 is_200 "http://127.0.0.1:$WP2/readyz" && ok "keda-g's training worker /readyz 200" \
  || bad "keda-g worker /readyz: $(http "http://127.0.0.1:$WP2/readyz") $(cat "$RUN/body")"
live=''
for _ in $(seq 150); do live=$(keda live_workers 2>/dev/null); [ "$live" = 1 ] && break; sleep 0.2; done
[ "$live" = 1 ] && ok "/keda live_workers=1: keda-g's worker, not keda-w's" \
  || bad "/keda live_workers '$live' (want 1): $(curl -s "http://127.0.0.1:$SP/keda")"
# Both workers stay live meanwhile (their heartbeats last 2 s, renewed
# every 0.3 s): over ten more ticks the count never takes keda-w's in.
seen=''
for _ in $(seq 10); do seen="$seen $(keda live_workers 2>/dev/null)"; sleep 0.3; done
kill -0 "$WORKER_PID" 2>/dev/null && ! grep -qvE '^( 1)+$' <<<"$seen" \
  && ok "/keda live_workers stays 1 with both workers live:$seen" \
  || bad "/keda live_workers over ten ticks:$seen (keda-w worker alive: $(kill -0 "$WORKER_PID" 2>&1 && echo yes))"
st=$("$BUILD/scheduler/aas-scheduler" "${SERVERS[@]}" -X worker.group=keda-g status \
  --sample-ms 0 2>"$RUN/status.err")
grep -q '^workers: 1 live$' <<<"$st" \
  && grep -q '^workers of other consumer groups (not counted for group keda-g): 1 live$' <<<"$st" \
  && grep -qE '^  [^ ]+ +keda-w ' <<<"$st" \
  && ok "status: 1 live worker of keda-g, keda-w's listed apart with its group" \
  || bad "status workers: $st $(cat "$RUN/status.err")"

echo "test_scheduler_keda: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
