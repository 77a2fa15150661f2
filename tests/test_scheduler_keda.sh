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
#     joined its consumer group.
# Usage: tests/test_scheduler_keda.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_scheduler_keda.sh BUILD_DIR}" && pwd)
RUN=$(mktemp -d /tmp/aas-keda-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
T0=$SECONDS
SPID=''
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null; cleanup' EXIT
start_servers 2
SP=$(free_port) WP=$(free_port)
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

echo "test_scheduler_keda: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
