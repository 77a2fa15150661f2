#!/usr/bin/env bash
# test_gateway_faults.sh - aas-gateway (docs/http.md) when things go wrong
# around it, on a real redis-server, the dev broker and one worker, reached
# with curl and python3's standard library (no venv):
#   - bad requests: a body over gateway.max.body.bytes (413, with
#     Content-Length and chunked), malformed JSON, non-UTF-8 text (400),
#     unknown models (404); the gateway answers normally afterwards;
#   - slow clients: 20 connections that stall inside their headers or body
#     while a normal request is answered promptly; the server closes them
#     after gateway.connection.timeout.s (2 s here);
#   - Kafka down (the dev broker's outage drill, SIGUSR1: its listeners
#     close, on the same ports): /v2/health/ready 503 with the reason, an
#     inference 503 within gateway.timeout.ms (plus slack), /v2/health/live
#     200 even while an inference waits; back up (SIGUSR2): ready and
#     inference 200 again;
#   - Redis away (killed): ready 503, inference 503 (latest and a pinned
#     version), live 200; restarted on the same port and data: 200 again;
#   - Kafka gone for good (the dev broker killed: it cannot come back on
#     the same port, its ports are chosen by librdkafka's mock cluster, so
#     the SIGUSR1/SIGUSR2 drill above is the recovery case): ready and
#     inference 503, live 200, and SIGTERM still ends the gateway with 0.
# Under the sanitizers (CI's second run) no report may appear in the log.
# Usage: tests/test_gateway_faults.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
GW=$BUILD/gateway/aas-gateway
MAX_BODY=65536
TIMEOUT_MS=8000      # gateway.timeout.ms
CONN_TIMEOUT_S=2     # gateway.connection.timeout.s
SLACK_S=10           # a noisy machine's allowance on top of a timeout

for f in "$P" "$GW" "$BUILD/worker/aas-worker" "$BUILD/tools/aas-devbroker" "$BUILD/bench/bench_e2e"; do
  [ -x "$f" ] || { echo "FAIL: $f not built" >&2; exit 1; }
done
for t in curl python3 redis-server redis-cli; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed" >&2; exit 77; }
done

RUN=$(mktemp -d /tmp/aas-gwfaults.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
GW_PID='' BG_PID=''
# The gateway first (it holds clients of Redis and Kafka), then the rest.
gw_cleanup() {
  local pid
  for pid in "$BG_PID" "$GW_PID"; do stop_proc "$pid"; done
  cleanup
}
trap gw_cleanup EXIT
T0=$SECONDS

RPORT=$(free_port)
# Append-only on $RUN: the registry survives the restart below.
start_redis() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly yes --dir "$RUN" \
    >>"$RUN/redis.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
start_redis || { echo "FAIL: redis-server did not start" >&2; exit 1; }
"$BUILD/tools/aas-devbroker" --partitions 2 --bootstrap-file "$RUN/bs" >"$RUN/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do [ -s "$RUN/bs" ] && break; sleep 0.1; done
BS=$(cat "$RUN/bs")
export AAS_REDIS_PORT=$RPORT AAS_KAFKA_BOOTSTRAP_SERVERS=$BS
SERVERS=(-X "redis.port=$RPORT" -X "kafka.bootstrap.servers=$BS")

"$BUILD/worker/aas-worker" "${SERVERS[@]}" -X worker.id=gwf-w >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
expect 0 "" -- "$BUILD/bench/bench_e2e" make-model --layers 64,32,10 --out "$RUN/m.aasm" --seed 7
expect 0 "^gwf-mlp 1$" -- "$P" model register gwf-mlp "$RUN/m.aasm"

GPORT=$(free_port)
"$GW" "${SERVERS[@]}" -X "gateway.listen.port=$GPORT" -X "gateway.max.body.bytes=$MAX_BODY" \
  -X "gateway.timeout.ms=$TIMEOUT_MS" -X "gateway.connection.timeout.s=$CONN_TIMEOUT_S" \
  >"$RUN/gateway.log" 2>&1 &
GW_PID=$!
URL=http://127.0.0.1:$GPORT
for _ in $(seq 200); do curl -sf "$URL/v2/health/live" >/dev/null 2>&1 && break; sleep 0.1; done

ROW=$(seq -s, 0 63)
OIP="{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64],\"data\":[$ROW]}]}"
INFER=$URL/v2/models/gwf-mlp/infer

# check WANT_CODE BODY_PATTERN MAX_SECONDS -- curl args...: the status, a
# body pattern, and the answer's time (curl gives up at 120 s: a hang).
check() {
  local want=$1 pat=$2 max=$3; shift 4
  local out got t
  out=$(curl -s -o "$RUN/body" -w '%{http_code} %{time_total}' --max-time 120 "$@")
  got=${out% *} t=${out#* }
  if [ "$got" = "$want" ] && grep -qE -- "$pat" "$RUN/body" &&
     awk -v t="$t" -v m="$max" 'BEGIN { exit !(t <= m) }'; then
    ok "$want in ${t}s: curl ${*: -1}"
  else
    bad "want $want, /$pat/ within ${max}s; got $got in ${t}s: $(head -c 300 "$RUN/body") (curl ${*})"
  fi
}
infer_ok() {  # until an inference succeeds (the worker joins its group first)
  local i
  for i in $(seq "$1"); do
    [ "$(curl -s -o "$RUN/body" -w '%{http_code}' --max-time 60 -X POST -d "$OIP" "$INFER")" = 200 ] &&
      return 0
    sleep 1
  done
  return 1
}

echo "== baseline"
check 200 '"ready": ?true' 10 -- "$URL/v2/health/ready"
if infer_ok 60; then ok "an inference succeeds ($(head -c 120 "$RUN/body"))"
else bad "no inference succeeded within a minute: $(head -c 300 "$RUN/body")"; fi

echo "== bad requests"
head -c $((MAX_BODY + 1)) /dev/zero | tr '\0' ' ' >"$RUN/big.json"
check 413 '"error"' 10 -- -X POST -H 'Content-Type: application/json' --data-binary @"$RUN/big.json" "$INFER"
check 413 '"error"' 10 -- -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$RUN/big.json" "$INFER"
check 200 '"live": ?true' 10 -- "$URL/v2/health/live"
check 400 '"error": ?"malformed JSON' 10 -- -X POST -d '{"inputs":[{"name":"input",' "$INFER"
check 400 '"error"' 10 -- -X POST -d '{"text": 12' "$URL/v1/models/gwf-mlp/predict"
printf '{"model":"gwf-mlp","text":"caf\xc3\x28 \xff"}' >"$RUN/latin.json"
check 400 '"error"' 10 -- -X POST --data-binary @"$RUN/latin.json" "$URL/predict"
# The same bytes as a BYTES tensor in the binary data extension.
python3 - "$RUN/bin.body" <<'PY'
import json, struct, sys
t = b"caf\xc3\x28"
j = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
               "parameters": {"binary_data_size": 4 + len(t)}}]}).encode()
open(sys.argv[1], "wb").write(j + struct.pack("<I", len(t)) + t)
print(len(j), file=open(sys.argv[1] + ".len", "w"))
PY
check 400 'UTF-8' 10 -- -X POST -H "Inference-Header-Content-Length: $(cat "$RUN/bin.body.len")" \
  -H 'Content-Type: application/octet-stream' --data-binary @"$RUN/bin.body" "$INFER"
check 404 '"error": ?"unknown model' 10 -- -X POST -d "$OIP" "$URL/v2/models/nosuch/infer"
check 404 '"error": ?"unknown model' 10 -- -X POST -d "{\"instances\":[[$ROW]]}" "$URL/v1/models/nosuch/predict"
check 404 '"error"' 10 -- -X POST -d "$OIP" "$URL/v2/models/gwf-mlp/versions/9/infer"
check 200 '"outputs"' 30 -- -X POST -d "$OIP" "$INFER"

echo "== slow clients"
# 20 connections: 10 stop inside their headers, 10 after their headers in
# the body.  While they stall, /v2/health/live and an inference must be
# answered (each within 5 s); then every stalled connection must be closed
# by the server after gateway.connection.timeout.s, well before 20 s.
if out=$(python3 - "$GPORT" "$CONN_TIMEOUT_S" "$OIP" <<'PY' 2>&1
import json, socket, sys, time, urllib.request
port, idle, oip = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
url = f"http://127.0.0.1:{port}"
slow = []
for i in range(20):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if i % 2:
        s.sendall(b"POST /v2/models/gwf-mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Len")
    else:
        s.sendall(b"POST /v2/models/gwf-mlp/infer HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(oip)
                  + oip[:20])
    slow.append(s)
t0 = time.time()
fails = []
for path, body in (("/v2/health/live", None), ("/v2/models/gwf-mlp/infer", oip)):
    t = time.time()
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, data=body), timeout=30) as r:
            code = r.status
    except Exception as e:  # an HTTPError has .code
        code = getattr(e, "code", repr(e))
    dt = time.time() - t
    print(f"{path}: {code} in {dt:.2f} s while 20 connections stall")
    if code != 200 or dt > 5:
        fails.append(path)
closed = {}
deadline = t0 + 20
for i, s in enumerate(slow):
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        got = s.recv(4096)
        # A 408 before closing is fine too; what counts is the close.
        while got:
            got = s.recv(4096)
        closed[i] = time.time() - t0
    except (ConnectionResetError, BrokenPipeError):
        closed[i] = time.time() - t0
    except socket.timeout:
        pass
    s.close()
print(f"closed by the server: {len(closed)}/20, after {min(closed.values(), default=0):.1f}"
      f"..{max(closed.values(), default=0):.1f} s (idle timeout {idle} s)")
if len(closed) != 20:
    fails.append("stalled connections left open")
sys.exit(1 if fails else 0)
PY
); then
  ok "slow clients: $(tr '\n' ';' <<<"$out")"
else
  bad "slow clients: $out"
fi
check 200 '"live": ?true' 10 -- "$URL/v2/health/live"

echo "== Kafka down (dev broker drill: SIGUSR1)"
kill -USR1 "$BROKER_PID"
sleep 1
check 503 '"error": ?"not ready: .*Kafka' 10 -- "$URL/v2/health/ready"
# An inference in the background, and liveness while it waits.
curl -s -o "$RUN/bg.body" -w '%{http_code} %{time_total}' --max-time 120 -X POST -d "$OIP" \
  "$INFER" >"$RUN/bg.out" &
BG_PID=$!
sleep 0.5
check 200 '"live": ?true' 5 -- "$URL/v2/health/live"
wait "$BG_PID"; BG_PID=''
read -r bcode btime <"$RUN/bg.out"
lim=$((TIMEOUT_MS / 1000 + SLACK_S))
if [ "$bcode" = 503 ] && awk -v t="$btime" -v m="$lim" 'BEGIN { exit !(t <= m) }'; then
  ok "inference with Kafka down: 503 in ${btime}s ($(head -c 160 "$RUN/bg.body"))"
else
  bad "inference with Kafka down: want 503 within ${lim}s, got $bcode in ${btime}s: $(head -c 300 "$RUN/bg.body")"
fi
LOST_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$RUN/bg.body" 2>/dev/null)
check 503 '"error"' $lim -- -X POST -d "{\"instances\":[[$ROW]]}" "$URL/v1/models/gwf-mlp/predict"
check 200 '"live": ?true' 5 -- "$URL/v2/health/live"

echo "== Kafka back (SIGUSR2)"
kill -USR2 "$BROKER_PID"
ready=0
for _ in $(seq 60); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/v2/health/ready")" = 200 ] && { ready=1; break; }
  sleep 0.5
done
[ "$ready" = 1 ] && ok "ready again after the broker came back" || bad "not ready 30 s after the broker came back"
if infer_ok 30; then ok "an inference succeeds after the broker came back"
else bad "no inference succeeded within 30 s of the broker's return: $(head -c 300 "$RUN/body")"; fi
# Answered 503: the gateway withdrew its message, so the job does not run
# after the broker's return (a caller retrying on 503 runs it once).
if [ -n "$LOST_ID" ]; then
  sleep 3
  st=$(curl -s --max-time 10 "$URL/v1/jobs/$LOST_ID")
  if grep -qE '"status": ?"(SUCCEEDED|RUNNING|QUEUED)"' <<<"$st"; then
    bad "the job answered 503 during the outage ran anyway: $st"
  else ok "the job answered 503 during the outage was withdrawn: $st"; fi
fi

echo "== Redis away"
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=''
check 503 '"error": ?"not ready' 15 -- "$URL/v2/health/ready"
check 503 '"error"' $lim -- -X POST -d "$OIP" "$INFER"
check 503 '"error"' $lim -- -X POST -d "$OIP" "$URL/v2/models/gwf-mlp/versions/1/infer"
# Nothing was published (client.redis.required): the answer names no job.
grep -q '"id"' "$RUN/body" && bad "a 503 with Redis away published a job: $(cat "$RUN/body")" \
  || ok "with Redis away nothing is published"
check 200 '"live": ?true' 5 -- "$URL/v2/health/live"

echo "== Redis back (same port, same data)"
start_redis || bad "redis-server did not restart"
ready=0
for _ in $(seq 60); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/v2/health/ready")" = 200 ] && { ready=1; break; }
  sleep 0.5
done
[ "$ready" = 1 ] && ok "ready again after Redis came back" || bad "not ready 30 s after Redis came back"
if infer_ok 30; then ok "an inference succeeds after Redis came back"
else bad "no inference succeeded within 30 s of Redis's return: $(head -c 300 "$RUN/body")"; fi

echo "== Kafka gone (dev broker killed; no restart on the same port)"
kill -KILL "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null; BROKER_PID=''
check 503 '"error": ?"not ready: .*Kafka' 10 -- "$URL/v2/health/ready"
check 503 '"error"' $lim -- -X POST -d "$OIP" "$INFER"
check 200 '"live": ?true' 5 -- "$URL/v2/health/live"

# SIGTERM with an unacknowledged job in a client: the client's close waits
# for it up to client.timeout.ms (30 s by default), then purges it, so the
# exit takes up to that long (docs/http.md); past 60 + slack s is a hang.
kill -TERM "$GW_PID"
t=$SECONDS
for _ in $(seq $(((60 + SLACK_S) * 10))); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$GW_PID" 2>/dev/null; then
  bad "gateway still running $((SECONDS - t)) s after SIGTERM"
  kill -KILL "$GW_PID"; wait "$GW_PID" 2>/dev/null
else
  rc=0; wait "$GW_PID" || rc=$?
  [ "$rc" = 0 ] && ok "gateway exits 0 on SIGTERM with Kafka gone ($((SECONDS - t)) s)" \
    || bad "gateway exit $rc on SIGTERM with Kafka gone"
fi
GW_PID=''

if grep -lE 'runtime error:|AddressSanitizer|LeakSanitizer' "$RUN"/gateway.log; then
  bad "sanitizer report in the gateway log"; grep -hE -A5 'runtime error:|Sanitizer' "$RUN"/gateway.log | head -40
else
  ok "no sanitizer report in the gateway log"
fi

if [ "$FAILS" != 0 ]; then
  echo "--- gateway.log (tail)"; tail -n 30 "$RUN/gateway.log"
  echo "--- worker.log (tail)"; tail -n 15 "$RUN/worker.log"
fi
echo "test_gateway_faults: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
