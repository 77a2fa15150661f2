#!/usr/bin/env bash
# test_podcost.sh - busy-aware scale-in (worker/podcost.h): a training
# worker PATCHes its pod's controller.kubernetes.io/pod-deletion-cost.
# No API server runs here: a stand-in HTTPS server (tests/k8s_api_standin.py,
# a self-signed certificate made with openssl) records every request, and
# the worker is pointed at it with the k8s.* keys.  Checks, on a real
# redis-server and the dev broker:
#  - at start the worker sets the idle cost 0;
#  - while a training job runs: PATCH /api/v1/namespaces/NS/pods/POD with
#    the bearer token from k8s.token.file, Content-Type
#    application/merge-patch+json and cost N (worker.busy.deletion.cost);
#  - after the job: a PATCH back to 0; the job SUCCEEDED;
#  - the patch counter in GET /metrics;
#  - with the stand-in down (connection refused), a training job still
#    SUCCEEDS and the worker logs the failure;
#  - a server whose certificate the CA file does not vouch for gets no
#    request (TLS verification), and the worker says why;
#  - enabled=true with something missing is refused at start.
# This says nothing about a real API server's RBAC or admission.
# Usage: tests/test_podcost.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_podcost.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(mktemp -d /tmp/aas-podcost-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
T0=$SECONDS
API_PID=''
trap '[ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null; cleanup' EXIT
# The stand-in is on loopback: keep any proxy of the environment out.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*' NO_PROXY='*'
unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT POD_NAME POD_NAMESPACE
COST=4242 NS=aas-test POD=aas-trainer-7d9f-x2k4q TOKEN="test-token-$RANDOM$RANDOM"

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
  local t=$1; shift
  for _ in $(seq $((t * 5))); do "$@" && return 0; sleep 0.2; done
  return 1
}
# The costs PATCHed so far, in order, one a line.
costs() {
  python3 - "$RUN/api.jsonl" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1]).read().splitlines()
except FileNotFoundError:
    lines = []
for l in lines:
    r = json.loads(l)
    if r["method"] == "PATCH":
        print(json.loads(r["body"])["metadata"]["annotations"]
              ["controller.kubernetes.io/pod-deletion-cost"])
PY
}
has_cost() { costs | grep -qx "$1"; }
last_cost_is() { [ "$(costs | tail -1)" = "$1" ]; }

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$RUN/key.pem" -out "$RUN/cert.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" >"$RUN/openssl.log" 2>&1 \
  || { bad "openssl: $(cat "$RUN/openssl.log")"; exit 1; }
printf '%s\n' "$TOKEN" >"$RUN/token"
python3 "$ROOT/tests/k8s_api_standin.py" "$RUN/cert.pem" "$RUN/key.pem" "$RUN/api.port" \
  "$RUN/api.jsonl" >"$RUN/api.log" 2>&1 &
API_PID=$!
wait_for 30 test -s "$RUN/api.port" || { bad "stand-in API server did not start: $(cat "$RUN/api.log")"; exit 1; }
APORT=$(cat "$RUN/api.port")
start_servers 2
zcat "$ROOT/data/digits.csv.gz" >"$RUN/digits.csv"
# Long enough to watch (seconds on 2 cores), short enough for CI.
TRAIN=(train --model podcost --input "$RUN/digits.csv" --param hidden=256,256
       --param epochs=100 --param batch_size=16)
K8S=(-X k8s.pod.deletion.cost.enabled=true -X "k8s.api.url=https://127.0.0.1:$APORT/"
     -X "k8s.token.file=$RUN/token" -X "k8s.ca.file=$RUN/cert.pem" -X "k8s.namespace=$NS"
     -X "k8s.pod.name=$POD" -X "worker.busy.deletion.cost=$COST")

# enabled=true without a pod name (and no POD_NAME): refused at start.
expect 1 "k8s.pod.deletion.cost.enabled=true but no pod name" -- "$W" "${SERVERS[@]}" \
  -X k8s.pod.deletion.cost.enabled=true -X "k8s.api.url=https://127.0.0.1:$APORT"
expect 1 "not a DNS subdomain" -- "$W" "${SERVERS[@]}" "${K8S[@]}" -X "k8s.pod.name=Bad_Name"
expect 1 "not an https:// URL" -- "$W" "${SERVERS[@]}" "${K8S[@]}" \
  -X "k8s.api.url=http://127.0.0.1:$APORT"

MPORT=$(free_port)
"$W" "${SERVERS[@]}" "${K8S[@]}" -X worker.infer=false -X worker.id=podcost \
  -X "metrics.port=$MPORT" >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
wait_for 30 has_cost 0 && ok "at start the worker sets the idle cost 0" \
  || bad "no PATCH to 0 at start: $(costs | tr '\n' ' ') $(tail -3 "$RUN/worker.log")"

id=$("$P" "${SERVERS[@]}" "${TRAIN[@]}" 2>"$RUN/submit.log")
[ -n "$id" ] && ok "a training job submitted ($id)" || bad "train: $(cat "$RUN/submit.log")"
wait_for 120 has_cost "$COST" && ok "PATCH to cost $COST arrived" \
  || bad "no PATCH to $COST: $(costs | tr '\n' ' ') $(tail -3 "$RUN/worker.log")"
st=$("$P" "${SERVERS[@]}" status "$id" 2>&1)
grep -q RUNNING <<<"$st" && ok "the job was RUNNING when cost $COST was seen" \
  || bad "want RUNNING after the busy PATCH (make the job longer?): $st"
python3 - "$RUN/api.jsonl" "$NS" "$POD" "$TOKEN" "$COST" <<'PY' && ok "the busy PATCH: path, bearer token, merge-patch type, body" || bad "the busy PATCH is wrong (above)"
import json, sys
log, ns, pod, token, cost = sys.argv[1:6]
recs = [json.loads(l) for l in open(log)]
busy = [r for r in recs if r["method"] == "PATCH" and
        json.loads(r["body"]) == {"metadata": {"annotations": {
            "controller.kubernetes.io/pod-deletion-cost": cost}}}]
ok = bool(busy)
for r in busy:
    for what, got, want in (("path", r["path"], f"/api/v1/namespaces/{ns}/pods/{pod}"),
                            ("authorization", r["authorization"], f"Bearer {token}"),
                            ("content type", r["content_type"], "application/merge-patch+json")):
        if got != want:
            print(f"  {what}: got {got!r}, want {want!r}")
            ok = False
if not busy:
    print("  no busy PATCH with the exact body; got:", [r["body"] for r in recs])
sys.exit(0 if ok else 1)
PY
expect 0 "SUCCEEDED" -- "$P" "${SERVERS[@]}" wait --timeout 240 "$id"
wait_for 60 last_cost_is 0 && ok "after the job: PATCH back to 0" \
  || bad "the last PATCH is not 0: $(costs | tr '\n' ' ')"
seq_=$(costs | tr '\n' ' ')
[ "$seq_" = "0 $COST 0 " ] && ok "costs in order: $seq_" || bad "want '0 $COST 0 ', got '$seq_'"
grep -q "$TOKEN" "$RUN/worker.log" && bad "the token is in the worker's log" \
  || ok "the token is not in the worker's log"
m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
grep -q 'aas_worker_pod_deletion_cost_patches_total{result="ok"} 3' <<<"$m" \
  && ok "metrics: 3 successful PATCHes" \
  || bad "metrics: $(grep pod_deletion <<<"$m")"
kill "$WORKER_PID" && wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''

# The API server away (connection refused): training goes on regardless.
kill "$API_PID" && wait "$API_PID" 2>/dev/null; API_PID=''
"$W" "${SERVERS[@]}" "${K8S[@]}" -X worker.infer=false -X worker.id=podcost2 \
  -X "metrics.port=$MPORT" >"$RUN/worker2.log" 2>&1 &
WORKER_PID=$!
expect 0 "SUCCEEDED model=podcost" -- "$P" "${SERVERS[@]}" train --model podcost \
  --input "$RUN/digits.csv" --param hidden=16 --param epochs=5 --wait --timeout 240
grep -q "pod deletion cost not set" "$RUN/worker2.log" \
  && ok "the failure is logged: $(grep -m1 -o 'pod deletion cost not set.*' "$RUN/worker2.log" | cut -c1-150)" \
  || bad "no failure line: $(tail -3 "$RUN/worker2.log")"
m=$(curl -s "http://127.0.0.1:$MPORT/metrics")
grep -qE 'aas_worker_pod_deletion_cost_patches_total\{result="failed"\} [1-9]' <<<"$m" \
  && ok "metrics: failed PATCHes counted" || bad "metrics: $(grep pod_deletion <<<"$m")"
kill -0 "$WORKER_PID" 2>/dev/null && ok "the worker is still running" || bad "the worker died"
kill "$WORKER_PID" && wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''

# A server with another self-signed certificate: the handshake fails, the
# token never leaves the worker.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$RUN/key2.pem" -out "$RUN/cert2.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" >>"$RUN/openssl.log" 2>&1
rm -f "$RUN/api.port" "$RUN/api2.jsonl"
python3 "$ROOT/tests/k8s_api_standin.py" "$RUN/cert2.pem" "$RUN/key2.pem" "$RUN/api.port" \
  "$RUN/api2.jsonl" >"$RUN/api.log" 2>&1 &
API_PID=$!
wait_for 30 test -s "$RUN/api.port" || bad "stand-in API server did not restart"
"$W" "${SERVERS[@]}" "${K8S[@]}" -X "k8s.api.url=https://127.0.0.1:$(cat "$RUN/api.port")" \
  -X worker.infer=false -X worker.id=podcost3 >"$RUN/worker3.log" 2>&1 &
WORKER_PID=$!
wait_for 60 grep -q "pod deletion cost not set" "$RUN/worker3.log" \
  && grep -qi "certificate" "$RUN/worker3.log" \
  && ok "an untrusted certificate is refused: $(grep -m1 -o 'SSL.*' "$RUN/worker3.log" | cut -c1-80)" \
  || bad "no certificate failure: $(tail -3 "$RUN/worker3.log")"
[ ! -s "$RUN/api2.jsonl" ] && ok "the untrusted server got no request" \
  || bad "the untrusted server got: $(head -c 300 "$RUN/api2.jsonl")"
echo "test_podcost: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
