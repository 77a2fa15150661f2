#!/usr/bin/env bash
# test_gateway.sh - aas-gateway (docs/http.md) on a real redis-server, the
# dev broker and one worker, reached as users reach it:
#   - curl: health, readiness, status codes of bad requests;
#   - tests/gateway_client_test.py in the venv of tools/setup-venv-gateway:
#     the official Open Inference Protocol client (tritonclient[http]) and
#     requests; results equal the C client's for the same inputs (1e-5),
#     in JSON and in the binary-data extension, from 12 threads too; async
#     jobs, cancel, and bad input (400/404/405/413) while the gateway keeps
#     serving;
#   - a slow client is dropped after gateway.connection.timeout.s;
#   - no worker: a request past gateway.timeout.ms is 504 with the job id,
#     the job stays QUEUED; Redis away: /v2/health/ready 503, live 200;
#   - SIGTERM: the gateway exits 0; its access log has statuses and no
#     bodies, and no sanitizer report (CI's ASan + UBSan run).
# Models: a 64-128-128-10 MLP (bench_e2e make-model, seed 7), an ONNX CNN
# (data/onnx/torch-cnn-op17, input [batch,1,8,8]) and a text
# classifier trained from data/text-intents.tsv (the gateway's default).
# Usage: tests/test_gateway.sh BUILD_DIR
# Python: $AAS_GATEWAY_PYTHON, else the venv of tools/setup-venv-gateway
# ($AAS_VENV_DIR or ~/.cache/aas, venv-gateway/bin/python); was under the
# repository.  Without it: exit 77 (skip), except under CI (CI=true), where
# .ci/run has made it and its absence is a failure.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
GW=$BUILD/gateway/aas-gateway
VPY=${AAS_GATEWAY_PYTHON:-${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-gateway/bin/python}
MAX_BODY=65536

if ! "$VPY" -c 'import tritonclient.http, requests, numpy' 2>/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL: $VPY cannot import tritonclient.http, requests, numpy (.ci/run runs tools/setup-venv-gateway)" >&2
    exit 1
  fi
  echo "SKIP: no gateway test venv at $VPY; make it with tools/setup-venv-gateway" >&2
  exit 77
fi
for f in "$P" "$GW" "$BUILD/worker/aas-worker" "$BUILD/tools/aas-devbroker" "$BUILD/bench/bench_e2e"; do
  [ -x "$f" ] || { echo "FAIL: $f not built" >&2; exit 1; }
done

RUN=$(mktemp -d /tmp/aas-gateway.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
GW_PID='' G2_PID=''
# The gateways first (they hold clients of Redis and Kafka), then the rest.
gw_cleanup() {
  local pid
  for pid in "$GW_PID" "$G2_PID"; do stop_proc "$pid"; done
  cleanup
}
trap gw_cleanup EXIT
T0=$SECONDS

start_servers 2

"$BUILD/worker/aas-worker" "${SERVERS[@]}" -X worker.id=gw-w >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!

# Models: the MLP registered, the text model trained by the worker.
expect 0 "" -- "$BUILD/bench/bench_e2e" make-model --layers 64,128,128,10 --out "$RUN/m.aasm" --seed 7
expect 0 "^gw-mlp 1$" -- "$P" model register gw-mlp "$RUN/m.aasm"
expect 0 "^gw-cnn 1$" -- "$P" model register gw-cnn "$ROOT/data/onnx/torch-cnn-op17/model.onnx"
expect 0 "SUCCEEDED model=intents" -- "$P" train --model intents --text-input "$ROOT/data/text-intents.tsv" --wait --timeout 120

GPORT=$(free_port)
"$GW" "${SERVERS[@]}" -X "gateway.listen.port=$GPORT" -X gateway.default.model=intents \
  -X "gateway.max.body.bytes=$MAX_BODY" -X gateway.threads=8 >"$RUN/gateway.log" 2>&1 &
GW_PID=$!
URL=http://127.0.0.1:$GPORT
for _ in $(seq 200); do curl -sf "$URL/v2/health/live" >/dev/null 2>&1 && break; sleep 0.1; done

# curl: status codes (check, code: cli_lib.sh).
check 200 '"live": ?true' -- "$URL/v2/health/live"
check 200 '"ready": ?true' -- "$URL/v2/health/ready"
check 200 '"name": ?"aas"' -- "$URL/v2"
check 200 '"FP32"' -- "$URL/v2/models/gw-mlp"
check 200 '"ready": ?true' -- "$URL/v2/models/gw-mlp/ready"
check 404 '"error"' -- "$URL/v2/models/nosuch/ready"
check 404 '"error"' -- "$URL/nosuch"
check 400 '"error"' -- -X POST -H 'Content-Type: application/json' -d '{"text":' "$URL/predict"
check 200 '"label": ?"greeting"' -- -X POST -d '{"text":"hello there, good morning"}' "$URL/predict"
head -c $((MAX_BODY + 1)) /dev/zero | tr '\0' ' ' > "$RUN/big.json"
check 413 '"error"' -- -X POST -H 'Content-Type: application/json' --data-binary @"$RUN/big.json" "$URL/predict"

# The Python clients.
echo "== tests/gateway_client_test.py"
if "$VPY" "$ROOT/tests/gateway_client_test.py" --url "127.0.0.1:$GPORT" --producer "$P" \
     --mlp gw-mlp --text-model intents --onnx gw-cnn --dim 64 --max-body "$MAX_BODY"; then
  ok "gateway_client_test.py"
else
  bad "gateway_client_test.py"
fi
check 200 '"live": ?true' -- "$URL/v2/health/live"

# Concurrent requests share a job (docs/http.md#batching).  Redis paused:
# the publisher's first job waits on its id claim and the other requests
# queue behind it; resumed, they go as one job.  Each answer must equal its
# row's answer alone, and the gateway must have published fewer jobs than
# requests.
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m {print $2 + 0; f = 1} END {if (!f) print 0}'; }
python3 - "$RUN" <<'PY'
import json, sys
for i in range(8):
    row = [((i * 64 + k) % 17) / 8.0 - 1.0 for k in range(64)]
    body = {"id": f"r{i}", "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": row}]}
    open(f"{sys.argv[1]}/merge{i}.json", "w").write(json.dumps(body))
PY
INFER=$URL/v2/models/gw-mlp/versions/1/infer
for i in $(seq 0 7); do
  curl -s -X POST --data-binary @"$RUN/merge$i.json" "$INFER" >"$RUN/alone$i.out"
done
# Once at the same time first, so that every HTTP thread has its Redis
# connection before Redis is paused.
CPIDS=()
for i in $(seq 0 7); do
  curl -s -o /dev/null -X POST --data-binary @"$RUN/merge$i.json" "$INFER" &
  CPIDS+=($!)
done
wait "${CPIDS[@]}"
J0=$(metric aas_gateway_published_jobs_total); R0=$(metric aas_gateway_published_requests_total)
kill -STOP "$REDIS_PID"
CPIDS=()
for i in $(seq 0 7); do
  curl -s -m 30 -X POST --data-binary @"$RUN/merge$i.json" "$INFER" >"$RUN/merged$i.out" &
  CPIDS+=($!)
done
sleep 1.5
kill -CONT "$REDIS_PID"
wait "${CPIDS[@]}"
J1=$(metric aas_gateway_published_jobs_total); R1=$(metric aas_gateway_published_requests_total)
SAME=$(python3 - "$RUN" <<'PY'
import json, sys
same = 0
for i in range(8):
    try:
        a = json.load(open(f"{sys.argv[1]}/alone{i}.out"))
        b = json.load(open(f"{sys.argv[1]}/merged{i}.out"))
        x, y = a["outputs"][0], b["outputs"][0]
        if (b["id"] == f"r{i}" and x["shape"] == y["shape"] == [1, 10] and
                all(abs(p - q) <= 1e-5 for p, q in zip(x["data"], y["data"]))):
            same += 1
    except Exception as e:
        print(f"row {i}: {e}", file=sys.stderr)
print(same)
PY
)
[ "$SAME" = 8 ] && ok "8 concurrent requests: each answer equals its row's answer alone" \
  || bad "8 concurrent requests: $SAME of 8 answers equal their row's answer alone"
if [ $((R1 - R0)) = 8 ] && [ $((J1 - J0)) -lt 8 ] && [ $((J1 - J0)) -ge 1 ]; then
  ok "the 8 requests were published as $((J1 - J0)) jobs"
else
  bad "published requests $R0 -> $R1, jobs $J0 -> $J1: want 8 requests in fewer than 8 jobs"
fi

# No worker: a synchronous request outlives gateway.timeout.ms -> 504 with
# the job id, and the job goes on (QUEUED); a second gateway, short timeout.
kill "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''
G2PORT=$(free_port)
"$GW" "${SERVERS[@]}" -X "gateway.listen.port=$G2PORT" -X gateway.timeout.ms=500 \
  -X gateway.connection.timeout.s=1 \
  >"$RUN/gateway2.log" 2>&1 &
G2_PID=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$G2PORT/v2/health/live" >/dev/null 2>&1 && break; sleep 0.1; done
check 504 '"id": ?"[^"]+"' -- -X POST -d '{"text":"hello"}' "http://127.0.0.1:$G2PORT/v1/models/intents/predict"
JID=$(jq -r .id "$RUN/body" 2>/dev/null)
check 200 '"status": ?"QUEUED"' -- "$URL/v1/jobs/$JID"
# No gateway.default.model and none in the body: 400, before any job.
check 400 '"error"' -- -X POST -d '{"text":"hello"}' "http://127.0.0.1:$G2PORT/predict"
# A slow client (headers never finished) is dropped after
# gateway.connection.timeout.s (1 s here), and others are served meanwhile.
SLOW=$(python3 - "$G2PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
s.settimeout(10)
t = time.time()
try:
    got = "dropped" if s.recv(100) == b"" else "answered"
except ConnectionError:
    got = "dropped"
except socket.timeout:
    got = "kept"
print(f"{time.time() - t:.1f} s {got}")
PY
)
[[ $SLOW =~ ^[0-4]\.[0-9]\ s\ dropped$ ]] && ok "a slow client is dropped after the idle timeout ($SLOW)" \
  || bad "a slow client was not dropped within 5 s: $SLOW"
check 200 '"live": ?true' -- "http://127.0.0.1:$G2PORT/v2/health/live"
# SIGTERM while a request waits for its job: it still gets its answer (504
# here: no worker), then the gateway exits 0.
curl -s -o "$RUN/inflight" -w '%{http_code}' -X POST -d '{"text":"hello"}' \
  "http://127.0.0.1:$G2PORT/v1/models/intents/predict" >"$RUN/inflight.code" &
CURL_PID=$!
# (2: the waiting request and this scrape itself)
for _ in $(seq 50); do grep -q 'aas_gateway_requests_in_flight 2' <(curl -s "http://127.0.0.1:$G2PORT/metrics") && break; sleep 0.02; done
kill -TERM "$G2_PID"
wait "$CURL_PID"
[ "$(cat "$RUN/inflight.code")" = 504 ] && grep -q '"id"' "$RUN/inflight" \
  && ok "a request in flight at SIGTERM gets its answer" \
  || bad "request in flight at SIGTERM: $(cat "$RUN/inflight.code") $(cat "$RUN/inflight")"
rc=0; wait "$G2_PID" || rc=$?
G2_PID=''
[ "$rc" = 0 ] && ok "second gateway exits 0 on SIGTERM" || bad "second gateway exit $rc on SIGTERM"

# Redis away: not ready (503), still live.
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=''
check 503 '"error"|"ready": ?false' -- "$URL/v2/health/ready"
check 200 '"live": ?true' -- "$URL/v2/health/live"

# SIGTERM: finish in flight, exit 0.
kill -TERM "$GW_PID"
rc=0; wait "$GW_PID" || rc=$?
GW_PID=''
[ "$rc" = 0 ] && ok "gateway exits 0 on SIGTERM" || bad "gateway exit $rc on SIGTERM"

# Access log: one line a request, never a body (docs/http.md).
grep -q 'good morning' "$RUN/gateway.log" && bad "a request body is in the gateway log" \
  || ok "no request body in the gateway log"
grep -qE 'status=404' "$RUN/gateway.log" && ok "access log has the status" \
  || bad "no status= in the access log: $(tail -n 3 "$RUN/gateway.log")"

# Under the sanitizers (CI's second run) a report need not change the exit
# code (UBSan goes on): none may appear.
if grep -lE 'runtime error:|AddressSanitizer|LeakSanitizer' "$RUN"/gateway*.log; then
  bad "sanitizer report in a gateway log"; grep -hE -A5 'runtime error:|Sanitizer' "$RUN"/gateway*.log | head -40
else
  ok "no sanitizer report in the gateway logs"
fi

if [ "$FAILS" != 0 ]; then
  echo "--- gateway.log (tail)"; tail -n 30 "$RUN/gateway.log"
  echo "--- worker.log (tail)"; tail -n 15 "$RUN/worker.log"
fi
echo "test_gateway: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
