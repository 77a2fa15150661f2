#!/usr/bin/env bash
# test_job_auth.sh - signed jobs (worker.auth = keys, docs/sharing.md#access)
# on a real redis-server, the dev broker and one worker: a job runs only if
# its aas.auth header is a valid signature by a registered API key of the
# job's tenant with the job's scope.
#   - signed by its tenant's key (client.key from AAS_CLIENT_KEY): runs,
#     for inference and, with scope train, training;
#   - a tenant's key claiming another tenant, an unsigned job, a message
#     changed after signing, a forged signature, an infer-only key
#     training, a revoked key: none runs; each is dead-lettered with its
#     reason (header aas.error), counted by reason in
#     aas_worker_jobs_rejected_total, logged; nothing is written under its
#     id (it stays as its client left it, QUEUED) and nothing is metered;
#   - a key added after the worker started works at its first job;
#   - through aas-gateway (gateway.auth = redis) the caller's key signs the
#     job: it runs as the caller's tenant;
#   - no API key appears in a log.
# (Signing and the key table themselves: test_apikey.)
# Usage: tests/test_job_auth.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker GW=$BUILD/gateway/aas-gateway
RUN=$(mktemp -d /tmp/aas-jobauth.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
GW_PID=''
trap 'stop_proc "$GW_PID"; cleanup' EXIT
T0=$SECONDS
start_servers 1
RC() { redis-cli -p "$RPORT" "$@"; }
MPORT=$(free_port)

ACME=$("$P" apikey add acme --scopes infer 2>"$RUN/add.err")
GLOBEX=$("$P" apikey add globex --scopes infer,train 2>>"$RUN/add.err")
[[ "$ACME" =~ ^aas_ && "$GLOBEX" =~ ^aas_ ]] && ok "keys for acme (infer) and globex (infer,train)" \
  || bad "apikey add: $(cat "$RUN/add.err")"

"$W" "${SERVERS[@]}" -X worker.id=ja-w -X worker.auth=keys -X worker.auth.refresh.s=1 \
  -X metrics.port="$MPORT" >"$RUN/worker.log" 2>&1 & WORKER_PID=$!

# Training needs scope train: globex's key, globex's tenant.
AAS_CLIENT_KEY=$GLOBEX expect 0 "SUCCEEDED model=intents" -- "$P" train --model intents \
  --text-input "$ROOT/data/text-intents.tsv" --tenant globex --wait --timeout 120
TEXT="hello there, good morning"
AAS_CLIENT_KEY=$ACME expect 0 "SUCCEEDED" -- "$P" submit --model intents --text "$TEXT" \
  --tenant acme --id ja-ok --wait --timeout 60
AAS_CLIENT_KEY=$ACME expect 1 "needs a tenant" -- "$P" submit --model intents --text "$TEXT" --id ja-nt

# submit_bad ID ARGS...: publish a job that must not run (exit 0: the
# client cannot know); its rejection is checked below.
submit_bad() {
  local id=$1; shift
  "$P" submit --model intents --text "$TEXT" --id "$id" "$@" >/dev/null 2>"$RUN/$id.err" \
    || bad "$id: not published: $(cat "$RUN/$id.err")"
}
AAS_CLIENT_KEY=$ACME submit_bad ja-tenant --tenant globex
submit_bad ja-unsigned --tenant acme
AAS_CLIENT_KEY=$ACME "$P" train --model intents2 --text-input "$ROOT/data/text-intents.tsv" \
  --tenant acme --id ja-scope >/dev/null 2>"$RUN/scope.err" || bad "ja-scope: $(cat "$RUN/scope.err")"

# A message changed after it was signed, and a forged signature: the
# signed ja-ok message as it is on the topic, then sent again by kcat.
TOPIC=aas.jobs.infer
kcat -b "$BS" -C -t "$TOPIC" -o beginning -e -q -f '%k\n' >"$RUN/keys.txt" 2>/dev/null
OFF=$(grep -n '^ja-ok$' "$RUN/keys.txt" | head -1 | cut -d: -f1)
kcat -b "$BS" -C -t "$TOPIC" -o $((OFF - 1)) -c 1 -e -q -f '%s' >"$RUN/ok.bin" 2>/dev/null
HDR=$(kcat -b "$BS" -C -t "$TOPIC" -o $((OFF - 1)) -c 1 -e -q -f '%h' 2>/dev/null | tr ',' '\n' | grep '^aas.auth=' | cut -d= -f2)
[[ "$HDR" =~ ^v1:[0-9a-f]{16}:[0-9a-f]{64}$ ]] && ok "the signed job carries aas.auth=v1:<id>:<mac>" \
  || bad "aas.auth header of ja-ok: '$HDR'"
python3 - "$RUN/ok.bin" "$RUN/tampered.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(b'morning')          # the text: "good morning" becomes "good mOrning"
b[i + 1] ^= 0x20
open(sys.argv[2], 'wb').write(b)
PY
# A new id would be a different message: the same id, already SUCCEEDED,
# shows the check comes before anything else.
kcat -b "$BS" -P -t "$TOPIC" -k ja-ok -H "aas.auth=$HDR" "$RUN/tampered.bin" 2>"$RUN/kcat.err" \
  || bad "kcat: $(cat "$RUN/kcat.err")"
FORGED=${HDR%:*}:$(printf '0%.0s' $(seq 64))
kcat -b "$BS" -P -t "$TOPIC" -k ja-ok -H "aas.auth=$FORGED" "$RUN/ok.bin" 2>>"$RUN/kcat.err" \
  || bad "kcat: $(cat "$RUN/kcat.err")"

# A key added now works at once; a revoked one stops within the refresh.
INITECH=$("$P" apikey add initech 2>>"$RUN/add.err")
AAS_CLIENT_KEY=$INITECH expect 0 "SUCCEEDED" -- "$P" submit --model intents --text "$TEXT" \
  --tenant initech --id ja-new --wait --timeout 60
"$P" apikey revoke --tenant initech >/dev/null 2>&1 || bad "revoke initech"
sleep 2.5   # > worker.auth.refresh.s
AAS_CLIENT_KEY=$INITECH submit_bad ja-revoked --tenant initech

# Each rejection is dead-lettered with its reason.
declare -A WANT=([ja-tenant]="belongs to tenant acme, the job claims tenant globex"
  [ja-unsigned]="unsigned job" [ja-scope]="may not train" [ja-revoked]="unknown or revoked key")
for _ in $(seq 120); do
  kcat -b "$BS" -C -t aas.jobs.dlq -o beginning -e -q -f '%k %h\n' >"$RUN/dlq.txt" 2>/dev/null
  [ "$(grep -c 'not authenticated' "$RUN/dlq.txt")" -ge 6 ] && break; sleep 0.5
done
for id in "${!WANT[@]}"; do
  grep "^$id " "$RUN/dlq.txt" | grep -q "not authenticated: .*${WANT[$id]}" \
    && ok "$id dead-lettered: ${WANT[$id]}" || bad "$id: dead letter: $(grep "^$id " "$RUN/dlq.txt")"
done
[ "$(grep '^ja-ok ' "$RUN/dlq.txt" | grep -c 'bad signature')" = 2 ] \
  && ok "the changed message and the forged signature dead-lettered: bad signature" \
  || bad "ja-ok dead letters: $(grep '^ja-ok ' "$RUN/dlq.txt")"
for id in ja-tenant ja-unsigned ja-scope ja-revoked; do
  st=$(RC HGET "aas:job:{$id}" status); wk=$(RC HGET "aas:job:{$id}" worker)
  [ "$st" = QUEUED ] && [ -z "$wk" ] && ok "$id: nothing written under its id (QUEUED, no worker)" \
    || bad "$id: status=$st worker=$wk"
done
[ "$(RC HGET 'aas:job:{ja-ok}' result_writes)" = 1 ] && ok "ja-ok's result written once, untouched" \
  || bad "ja-ok result_writes: $(RC HGET 'aas:job:{ja-ok}' result_writes)"
curl -s "http://127.0.0.1:$MPORT/metrics" >"$RUN/metrics"
for r in wrong_tenant:1 unsigned:1 scope:1 unknown_key:1 bad_signature:2; do
  grep -qE "^aas_worker_jobs_rejected_total\{reason=\"${r%:*}\"\} ${r#*:}$" "$RUN/metrics" \
    && ok "rejected_total{reason=${r%:*}} = ${r#*:}" \
    || bad "rejected_total ${r%:*}: $(grep rejected_total "$RUN/metrics")"
done

echo "== metering: only the jobs that ran"
"$P" usage --csv >"$RUN/usage.csv" 2>&1
grep -qE '^all,acme,intents,1,0,' "$RUN/usage.csv" && ok "acme metered 1 job" \
  || bad "acme usage: $(grep acme "$RUN/usage.csv")"
grep -qE '^all,globex,intents,1,0,' "$RUN/usage.csv" && ! grep -q '^all,globex,intents2' "$RUN/usage.csv" \
  && ok "globex metered its training job only" || bad "globex usage: $(grep globex "$RUN/usage.csv")"

echo "== through aas-gateway: the caller's key signs"
GPORT=$(free_port)
"$GW" "${SERVERS[@]}" -X "gateway.listen.port=$GPORT" -X gateway.auth=redis \
  -X gateway.auth.refresh.s=1 >"$RUN/gateway.log" 2>&1 & GW_PID=$!
URL=http://127.0.0.1:$GPORT
for _ in $(seq 200); do curl -s "$URL/v2/health/ready" 2>/dev/null | grep -q true && break; sleep 0.1; done
check 200 '"label"' -- -H "Authorization: Bearer $ACME" -X POST -d "{\"text\":\"$TEXT\"}" \
  "$URL/v1/models/intents/predict"
for _ in $(seq 50); do "$P" usage --csv 2>/dev/null | grep -qE '^all,acme,intents,2,' && break; sleep 0.1; done
expect 0 "^all,acme,intents,2,0," -- "$P" usage --tenant acme --csv

if grep -qF -e "$ACME" -e "$GLOBEX" -e "$INITECH" "$RUN"/*.log "$RUN"/*.err; then
  bad "an API key is in a log"
else ok "no API key in any log"; fi
grep -c 'rejected' "$RUN/worker.log" | sed 's/^/   worker log lines "rejected": /'
echo "($((SECONDS - T0)) s)"
[ "$FAILS" = 0 ] && echo "test_job_auth: all passed" || { echo "test_job_auth: $FAILS failed"; exit 1; }
