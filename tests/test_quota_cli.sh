#!/usr/bin/env bash
# test_quota_cli.sh - per-tenant quotas at the command line, on a real
# redis-server and the dev broker (docs/sharing.md#quotas):
#   - quota set/list/delete, with usage errors (exit 2) before connecting;
#   - submit over a rate quota exits 6 with the refusal on stderr, and
#     publishes nothing (the id is free again);
#   - with a worker: a job admitted under an in-flight quota is released
#     when it finishes (IN_FLIGHT back to 0), and a QUEUED job cancelled
#     by a client frees its slot;
#   - a worker holds jobs no client admitted to the tenant's rate: they
#     wait and succeed, none FAILED.
# Usage: tests/test_quota_cli.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
RUN=$(mktemp -d /tmp/aas-quota.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"

# 1. Usage errors need no server.
NOSERVER=(-X redis.port=1 -X kafka.bootstrap.servers=127.0.0.1:1 -X redis.timeout.ms=60000)
expect 2 "usage: quota" -- timeout 5 "$P" "${NOSERVER[@]}" quota
expect 2 "usage: quota" -- timeout 5 "$P" "${NOSERVER[@]}" quota list --rate 1
expect 2 "give --rate or --inflight" -- timeout 5 "$P" "${NOSERVER[@]}" quota set acme
expect 2 "--rate 'x'" -- timeout 5 "$P" "${NOSERVER[@]}" quota set acme --rate x
expect 2 "--burst needs a --rate" -- timeout 5 "$P" "${NOSERVER[@]}" quota set acme --burst 3 --inflight 2
expect 2 "--burst '0.5'" -- timeout 5 "$P" "${NOSERVER[@]}" quota set acme --rate 1 --burst 0.5
expect 2 "not valid" -- timeout 5 "$P" "${NOSERVER[@]}" quota delete 'a:b'
HELP=$("$P" --help)
grep -qE "^  quota set TENANT" <<<"$HELP" && grep -q "6 the tenant is over its quota" <<<"$HELP" \
  && ok "--help lists quota and exit code 6" || bad "--help lacks quota or exit code 6"

# 2. Real Redis and the dev broker, no worker yet.
start_servers 2
expect 0 "quota of acme: 0.2 jobs/s, burst 2, no in-flight limit" -- "$P" quota set acme --rate 0.2 --burst 2
expect 0 "quota of bolt: no rate limit, at most 1 in flight" -- "$P" quota set bolt --inflight 1
expect 0 "^acme +0.2 +2 +- +0 +2.00$" -- "$P" quota list
expect 0 "^bolt +- +- +1 +0 +-$" -- "$P" quota list
expect 0 "^q-1$" -- "$P" submit --model m --values 1 --tenant acme --id q-1
expect 0 "^q-2$" -- "$P" submit --model m --values 1 --tenant acme --id q-2
expect 6 "tenant acme is over its rate quota \(0.2 jobs/s, burst 2\): retry in [0-9]+ ms" -- \
  "$P" submit --model m --values 1 --tenant acme --id q-3
[ "$(redis-cli -p "$RPORT" exists 'aas:job:{q-3}')" = 0 ] && ok "refused job left no claim" \
  || bad "refused job's id still claimed"
expect 0 "^acme +0.2 +2 +- +2 " -- "$P" quota list
# Another tenant, and a job without one, are not held by acme's quota.
expect 0 "^u-1$" -- "$P" submit --model m --values 1 --tenant carl --id u-1
expect 0 "^u-2$" -- "$P" submit --model m --values 1 --id u-2
expect 0 "deleted" -- "$P" quota delete acme
expect 1 "tenant acme has no quota" -- "$P" quota delete acme
expect 0 "^q-3$" -- "$P" submit --model m --values 1 --tenant acme --id q-3

# 3. A worker releases what it finishes; a cancelled QUEUED job frees its
# slot.
expect 0 "^qm 1$" -- "$P" model register qm "$ROOT/data/digits-mlp.aasm"
ROW=$(sed -n 1p "$ROOT/data/digits-test.csv" | cut -d, -f1-64)
expect 0 "^c-1$" -- "$P" submit --model qm --values "$ROW" --tenant bolt --id c-1
expect 6 "tenant bolt is over its in-flight quota \(1 jobs submitted and not finished\): retry in 1000 ms" -- \
  "$P" submit --model qm --values "$ROW" --tenant bolt --id c-2
expect 0 "CANCELLED" -- "$P" cancel c-1
expect 0 "^bolt +- +- +1 +0 +-$" -- "$P" quota list
"$BUILD/worker/aas-worker" -X worker.id=quota-w >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
expect 0 "SUCCEEDED model=qm@1" -- "$P" submit --model qm --values "$ROW" --tenant bolt --id c-3 --wait --timeout 60
# The release follows the terminal write at once; give it a moment.
for _ in $(seq 50); do "$P" quota list 2>/dev/null | grep -qE "^bolt +- +- +1 +0 " && break; sleep 0.1; done
expect 0 "^bolt +- +- +1 +0 +-$" -- "$P" quota list
expect 0 "SUCCEEDED model=qm@1" -- "$P" submit --model qm --values "$ROW" --tenant bolt --id c-4 --wait --timeout 60
kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''

# 4. Workers enforce the rate on jobs no client admitted (here: published
# before the tenant had a quota): they wait, and all succeed.  At 2 jobs/s
# with a bucket of 1 (full when set), the fifth job cannot start before
# 2 s after the quota was set (checked with a margin: >= 1.5 s, Redis clock).
IDS=()
for i in 1 2 3 4 5; do
  "$P" submit --model qm --values "$ROW" --tenant raw --id "r-$i" >/dev/null 2>&1 && IDS+=("r-$i")
done
[ "${#IDS[@]}" = 5 ] && ok "5 jobs published without a quota" || bad "published ${#IDS[@]} of 5"
expect 0 "quota of raw: 2 jobs/s, burst 1" -- "$P" quota set raw --rate 2 --burst 1
T_SET=$(redis-cli -p "$RPORT" time | { read -r s; read -r us; echo $((s * 1000 + us / 1000)); })
"$BUILD/worker/aas-worker" -X worker.id=quota-w2 >"$RUN/worker2.log" 2>&1 &
WORKER_PID=$!
expect 0 "SUCCEEDED" -- "$P" wait "${IDS[@]}" --timeout 120
S=$(for id in "${IDS[@]}"; do redis-cli -p "$RPORT" hget "aas:job:{$id}" started_ms; done | sort -n)
SPREAD=$(( $(tail -1 <<<"$S") - T_SET ))
[ "$SPREAD" -ge 1500 ] && ok "worker held raw to its rate: last start $SPREAD ms after the quota" \
  || bad "raw's last job started only $SPREAD ms after its quota was set: $(tr '\n' ' ' <<<"$S")"
F=$(for id in "${IDS[@]}"; do redis-cli -p "$RPORT" hget "aas:job:{$id}" status; done | sort -u)
[ "$F" = SUCCEEDED ] && ok "none FAILED for quota" || bad "statuses: $F"
for _ in $(seq 50); do "$P" quota list 2>/dev/null | grep -qE "^raw +2 +1 +- +0 " && break; sleep 0.1; done
expect 0 "^raw +2 +1 +- +0 " -- "$P" quota list
kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''

echo "test_quota_cli: $FAILS failure(s)"
[ "$FAILS" = 0 ]
