#!/usr/bin/env bash
# test_gateway_access.sh - who may call aas-gateway, and the endpoints that
# build on it (docs/http.md#access), on a real redis-server, the dev broker
# and one worker, with curl:
#   - gateway.auth = file: no key, a malformed or unknown key -> 401 with
#     WWW-Authenticate; an infer-only key may predict but not train (403);
#     a job carries its caller's tenant, and another tenant cannot see it;
#     a train key uploads a data set (PUT /v1/datasets), trains a model
#     from it (POST /v1/jobs kind train -> 202 -> SUCCEEDED) and predicts
#     with it; health and /metrics need no key; a key removed from the file stops
#     working after gateway.auth.refresh.s; a keys file others can read is
#     refused at start; a tenant over its quota (aas-producer quota set)
#     gets 429 with Retry-After, other tenants do not;
#   - gateway.auth = redis: keys made by `aas-producer apikey add`, listed,
#     revoked (then 401);
#   - HTTPS with a self-signed certificate (curl --cacert);
#   - GET /metrics: request counts by route and status, bounded labels.
# Usage: tests/test_gateway_access.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
GW=$BUILD/gateway/aas-gateway
for f in "$P" "$GW" "$BUILD/worker/aas-worker" "$BUILD/tools/aas-devbroker"; do
  [ -x "$f" ] || { echo "FAIL: $f not built" >&2; exit 1; }
done
for t in curl jq openssl; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (tools/packages.sh)" >&2; exit 1; }
done

RUN=$(mktemp -d /tmp/aas-gwaccess.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
GW_PID=''
gw_stop() { [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null; GW_PID=''; }
gw_cleanup() { gw_stop; cleanup; }
trap gw_cleanup EXIT
T0=$SECONDS

start_servers 1
"$BUILD/worker/aas-worker" "${SERVERS[@]}" -X worker.id=gwa-w >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
expect 0 "SUCCEEDED model=intents" -- "$P" train --model intents --text-input "$ROOT/data/text-intents.tsv" --wait --timeout 120

# gw_start NAME ARGS...: a gateway on a free port ($URL), waited for.
gw_start() {
  local name=$1 scheme=http; shift
  GPORT=$(free_port)
  "$GW" "${SERVERS[@]}" -X "gateway.listen.port=$GPORT" -X gateway.auth.refresh.s=1 "$@" \
    >"$RUN/$name.log" 2>&1 &
  GW_PID=$!
  case " $* " in *gateway.tls.cert.file*) scheme=https ;; esac
  URL=$scheme://127.0.0.1:$GPORT
  for _ in $(seq 200); do
    curl -sk "$URL/v2/health/live" 2>/dev/null | grep -q live && return 0
    kill -0 "$GW_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

ALICE=alice-key-0123456789abcdef      # infer only
BOB=bob-key-fedcba9876543210xyz       # infer and train
DAVE=dave-key-hashed-0000000000000    # listed by its SHA-256 only
DAVE_SHA=$(printf %s "$DAVE" | sha256sum | cut -d' ' -f1)
KEYS=$RUN/keys
cat >"$KEYS" <<KEYS
# tenant  key  scopes
alice $ALICE
bob   $BOB   infer,train
dave  sha256:$DAVE_SHA all
KEYS

echo "== a keys file others can read is refused"
chmod 644 "$KEYS"
if gw_start refused -X gateway.auth=file -X "gateway.auth.file=$KEYS"; then
  bad "gateway started with a world-readable keys file"
else
  wait "$GW_PID" 2>/dev/null; GW_PID=''
  if grep -q "readable by group or others" "$RUN/refused.log" && ! grep -q "$ALICE" "$RUN/refused.log"; then
    ok "world-readable keys file refused, no key in the log"
  else bad "keys file refusal: $(cat "$RUN/refused.log")"; fi
fi
chmod 600 "$KEYS"

echo "== gateway.auth = file"
gw_start file -X gateway.auth=file -X "gateway.auth.file=$KEYS" -X gateway.default.model=intents \
  || bad "gateway with a keys file did not start: $(cat "$RUN/file.log")"
A=(-H "Authorization: Bearer $ALICE")
B=(-H "Authorization: Bearer $BOB")
check 200 '"live": ?true' -- "$URL/v2/health/live"
check 200 '"ready": ?true' -- "$URL/v2/health/ready"
check 401 'API key is required' -- -X POST -d '{"text":"hello"}' "$URL/predict"
got=$(curl -s -D - -o /dev/null -X POST -d '{"text":"hello"}' "$URL/predict" | tr -d '\r')
grep -qi '^WWW-Authenticate: Bearer' <<<"$got" && ok "401 carries WWW-Authenticate: Bearer" \
  || bad "no WWW-Authenticate on 401: $got"
check 401 'Bearer <key>' -- -H "Authorization: Basic YWxpY2U6eA==" "$URL/v2/models/intents"
check 401 'unknown or revoked' -- -H "Authorization: Bearer wrong-key-0123456789" "$URL/v2"
check 200 '"label": ?"greeting"' -- "${A[@]}" -X POST -d '{"text":"hello there, good morning"}' "$URL/predict"
check 200 '"label"' -- -H "Authorization: bearer   $DAVE" -X POST -d '{"text":"good morning"}' "$URL/predict"
check 200 '"BYTES"' -- "${A[@]}" "$URL/v2/models/intents"

# The tenant travels with the job (the job's tenant field), and only its
# tenant sees it.
check 202 '"id"' -- "${A[@]}" -H 'Prefer: respond-async' -X POST -d '{"text":"see you later alligator"}' "$URL/predict"
AJ=$(jq -r .id "$RUN/body")
expect 0 "SUCCEEDED" -- "$P" wait "$AJ" --timeout 60
expect 0 "tenant=alice" -- "$P" status "$AJ"
check 200 '"tenant": ?"alice"' -- "${A[@]}" "$URL/v1/jobs/$AJ"
check 404 'unknown job' -- "${B[@]}" "$URL/v1/jobs/$AJ"
check 404 'unknown job' -- "${B[@]}" -X DELETE "$URL/v1/jobs/$AJ"

echo "== a tenant over its quota gets 429 with Retry-After"
# One token, refilled every 20 s: the second request is refused, nothing is
# published for it, and the caller is told when to come back.
expect 0 "quota of dave" -- "$P" quota set dave --rate 0.05 --burst 1
# While no tenant had a quota, clients skipped admission, asking again at
# most once a second (docs/sharing.md#quotas): the first quota holds from
# then on.
sleep 1.2
D=(-H "Authorization: Bearer $DAVE")
check 200 '"label"' -- "${D[@]}" -X POST -d '{"text":"good morning"}' "$URL/predict"
got=$(curl -s -D - -o "$RUN/body" -X POST "${D[@]}" -d '{"text":"good evening"}' "$URL/predict" | tr -d '\r')
ra=$(grep -i '^Retry-After:' <<<"$got" | awk '{print $2}')
if grep -q '^HTTP/[0-9.]* 429' <<<"$got" && [ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 20 ] \
   && grep -q '"error": *"job [0-9a-f]*: tenant dave is over its rate quota (0.05 jobs/s, burst 1): retry in' "$RUN/body"; then
  ok "429 with Retry-After: $ra and the refusal"
else bad "quota refusal over HTTP: $got $(cat "$RUN/body")"; fi
check 200 '"label"' -- "${A[@]}" -X POST -d '{"text":"good morning"}' "$URL/predict"  # alice is not held
expect 0 "deleted" -- "$P" quota delete dave
check 200 '"label"' -- "${D[@]}" -X POST -d '{"text":"good night"}' "$URL/predict"

echo "== training over HTTP"
check 403 'may not train' -- "${A[@]}" -X PUT -H 'Content-Type: text/tab-separated-values' \
  --data-binary @"$ROOT/data/text-intents.tsv" "$URL/v1/datasets/gw-intents"
check 415 'Content-Type' -- "${B[@]}" -X PUT -H 'Content-Type: application/json' \
  --data-binary @"$ROOT/data/text-intents.tsv" "$URL/v1/datasets/gw-intents"
check 400 'header=present' -- "${B[@]}" -X PUT -H 'Content-Type: text/csv' \
  --data-binary $'1,2,0\n' "$URL/v1/datasets/gw-csv"
check 201 '"rows": ?[1-9]' -- "${B[@]}" -X PUT -H 'Content-Type: text/tab-separated-values' \
  --data-binary @"$ROOT/data/text-intents.tsv" "$URL/v1/datasets/gw-intents"
expect 0 "gw-intents" -- "$P" dataset list
check 403 'may not train' -- "${A[@]}" -X POST -d '{"kind":"train","model":"gw-int","params":{"dataset":"gw-intents"}}' "$URL/v1/jobs"
check 400 'unknown field' -- "${B[@]}" -X POST -d '{"kind":"train","model":"gw-int","param":{}}' "$URL/v1/jobs"
check 400 'not allowed' -- "${B[@]}" -X POST -d '{"kind":"train","model":"gw-int","params":{"tenant":"eve"}}' "$URL/v1/jobs"
check 400 'kind' -- "${B[@]}" -X POST -d '{"kind":"dance"}' "$URL/v1/jobs"
check 202 '"status": ?"QUEUED"' -- "${B[@]}" -X POST -d '{"kind":"train","model":"gw-int","params":{"dataset":"gw-intents","epochs":10}}' "$URL/v1/jobs"
TJ=$(jq -r .id "$RUN/body")
st=''
for _ in $(seq 240); do
  code "${B[@]}" "$URL/v1/jobs/$TJ" >/dev/null
  st=$(jq -r .status "$RUN/body" 2>/dev/null)
  case "$st" in SUCCEEDED|FAILED|CANCELLED|EXPIRED) break ;; esac
  sleep 0.5
done
[ "$st" = SUCCEEDED ] && ok "training job $TJ SUCCEEDED over HTTP" || bad "training job $TJ: $(cat "$RUN/body")"
# Its result is the training's (metrics, curves), not a prediction.
jq -e '.version >= 1 and .training.metrics.val_accuracy > 0 and (.training.train_loss_curve | length) == 10 and .label == null' \
  "$RUN/body" >/dev/null && ok "a training job's result: version, metrics, curves" \
  || bad "training job result: $(cat "$RUN/body")"
check 200 '"label": ?"greeting"' -- "${B[@]}" -X POST -d '{"text":"hello there, good morning"}' "$URL/v1/models/gw-int/predict"
# An inference job by /v1/jobs: always 202, then its result.
check 202 '"id"' -- "${A[@]}" -X POST -d '{"model":"intents","text":"hello there, good morning"}' "$URL/v1/jobs"
IJ=$(jq -r .id "$RUN/body")
for _ in $(seq 120); do
  code "${A[@]}" "$URL/v1/jobs/$IJ" >/dev/null
  grep -q '"SUCCEEDED"' "$RUN/body" && break; sleep 0.25
done
check 200 '"label": ?"greeting"' -- "${A[@]}" "$URL/v1/jobs/$IJ"

echo "== usage: the gateway's jobs metered under their keys' tenants"
for _ in $(seq 50); do "$P" usage --tenant alice --csv 2>/dev/null | grep -q '^all,alice,intents,' && break; sleep 0.1; done
expect 0 "^all,alice,intents,[1-9]" -- "$P" usage --tenant alice --csv
# bob's predict and his training job (sample-epochs), under his tenant.
expect 0 "^all,bob,gw-int,2,0,[0-9]+,[0-9]+,[0-9]+,[0-9]+,[0-9]+,[1-9][0-9]*$" -- "$P" usage --tenant bob --csv
expect 2 "usage" -- "$P" usage --since yesterday
"$P" usage --since -1d 2>&1 | sed 's/^/   /'

echo "== a key removed from the file stops working"
grep -v '^alice' "$KEYS" >"$KEYS.new" && chmod 600 "$KEYS.new" && mv "$KEYS.new" "$KEYS"
for _ in $(seq 100); do
  [ "$(code "${A[@]}" "$URL/v2")" = 401 ] && break; sleep 0.1
done
check 401 'unknown or revoked' -- "${A[@]}" "$URL/v2"
check 200 '"name"' -- "${B[@]}" "$URL/v2"

echo "== /metrics"
check 200 'aas_gateway_requests_total' -- "$URL/metrics"
grep -qE '^aas_gateway_requests_total\{code="401",method="POST",route="predict"\} [1-9]' "$RUN/body" \
  && ok "metrics count the 401s of /predict" || bad "no 401 predict count: $(grep requests_total "$RUN/body")"
grep -qE '^aas_gateway_request_duration_seconds_count\{route="predict"\} [1-9]' "$RUN/body" \
  && ok "latency histogram per route" || bad "no latency histogram"
grep -qE '^aas_gateway_auth_refused_total\{code="403"\} [1-9]' "$RUN/body" \
  && ok "403s counted" || bad "no 403 count"
# Unknown paths do not make new label values.
for i in 1 2 3; do curl -s -o /dev/null "${B[@]}" "$URL/nosuch-$i-$RANDOM"; done
code "$URL/metrics" >/dev/null
grep -q 'nosuch' "$RUN/body" && bad "a client's path became a label" || ok "paths are not labels"
if grep -qE "$BOB|$ALICE|$DAVE" "$RUN/file.log"; then bad "a key is in the gateway's log"; else ok "no key in the log"; fi
gw_stop

echo "== gateway.auth = redis"
expect 2 "tenant" -- "$P" apikey add 'bad tenant!'
expect 2 "unknown scope" -- "$P" apikey add carol --scopes fly
CAROL=$("$P" apikey add carol --scopes infer,train 2>"$RUN/add.err")
[[ "$CAROL" =~ ^aas_[A-Za-z0-9_-]{43}$ ]] && ok "apikey add prints a key" || bad "apikey add: $CAROL $(cat "$RUN/add.err")"
if redis-cli -p "$RPORT" hgetall aas:apikeys | grep -q "$CAROL"; then bad "the key itself is in Redis"; else ok "only the key's hash is stored"; fi
expect 0 "carol +infer,train" -- "$P" apikey list
gw_start redis -X gateway.auth=redis || bad "gateway with redis keys did not start: $(cat "$RUN/redis.log")"
check 200 '"name"' -- -H "Authorization: Bearer $CAROL" "$URL/v2"
check 401 'unknown' -- -H "Authorization: Bearer $BOB" "$URL/v2"
# A key added while the gateway runs works after a refresh.
ERIN=$("$P" apikey add erin 2>/dev/null)
for _ in $(seq 100); do [ "$(code -H "Authorization: Bearer $ERIN" "$URL/v2")" = 200 ] && break; sleep 0.1; done
check 200 '"name"' -- -H "Authorization: Bearer $ERIN" "$URL/v2"
check 403 'may not train' -- -H "Authorization: Bearer $ERIN" -X POST -d '{"kind":"train","model":"x","params":{"dataset":"gw-intents"}}' "$URL/v1/jobs"
expect 0 "revoked .* carol" -- "$P" apikey revoke --tenant carol
for _ in $(seq 100); do [ "$(code -H "Authorization: Bearer $CAROL" "$URL/v2")" = 401 ] && break; sleep 0.1; done
check 401 'unknown or revoked' -- -H "Authorization: Bearer $CAROL" "$URL/v2"
gw_stop

echo "== HTTPS"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$RUN/tls.key" -out "$RUN/tls.crt" -days 1 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 \
  || bad "openssl could not make a certificate"
expect 1 "both gateway.tls.cert.file and gateway.tls.key.file" -- "$GW" "${SERVERS[@]}" -X gateway.listen.port=0 -X "gateway.tls.cert.file=$RUN/tls.crt"
gw_start tls -X "gateway.tls.cert.file=$RUN/tls.crt" -X "gateway.tls.key.file=$RUN/tls.key" -X gateway.default.model=intents \
  || bad "HTTPS gateway did not start: $(cat "$RUN/tls.log")"
check 200 '"label": ?"greeting"' -- --cacert "$RUN/tls.crt" -X POST -d '{"text":"hello there, good morning"}' "$URL/predict"
if curl -s --max-time 5 "http://127.0.0.1:$GPORT/v2/health/live" | grep -q live; then
  bad "plain HTTP answered on the HTTPS port"
else ok "plain HTTP is not served on the HTTPS port"; fi
if curl -s --max-time 5 "$URL/v2/health/live" >/dev/null 2>&1; then
  bad "an unknown certificate was accepted without --cacert"
else ok "the client verifies the certificate"; fi
gw_stop

echo "test_gateway_access: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
