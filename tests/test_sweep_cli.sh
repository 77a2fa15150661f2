#!/usr/bin/env bash
# test_sweep_cli.sh - `aas-producer sweep` (docs/training.md#sweeps) on a
# real redis-server, the dev broker and two workers, with the digits data
# set:
#   - usage errors exit 2 before connecting (no --grid, a bad grid, --param
#     epochs, a sweep status of an invalid id);
#   - a 4-configuration grid with successive halving (eta 2, 4 epochs)
#     runs 4 + 2 + 1 trials at 1, 2 and 4 epochs, every one SUCCEEDED;
#     exactly one new version of the model is registered and its metadata
#     names the best trial of the last rung; the trials' scratch models are
#     gone;
#   - sweep status prints every trial (7 rows) and the result, also as CSV;
#   - the same sweep run again (--id) publishes nothing new, registers
#     nothing, and says the best was registered before;
#   - a coordinator killed after its first rung: run again with the same
#     --id, the sweep finishes, with one version registered;
#   - --random 2 --seed 7 without halving: 2 of the 4 configurations, at
#     --epochs each, one version; the same seed draws the same two.
# Usage: tests/test_sweep_cli.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
RUN=$(mktemp -d /tmp/aas-sweep.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
T0=$SECONDS
W2=''
trap '[ -n "$W2" ] && kill "$W2" 2>/dev/null && wait "$W2" 2>/dev/null; cleanup' EXIT

NOSERVER=(-X redis.port=1 -X kafka.bootstrap.servers=127.0.0.1:1 -X redis.timeout.ms=60000)
expect 2 "needs --dataset NAME and --grid" -- timeout 5 "$P" "${NOSERVER[@]}" sweep run m --dataset d
expect 2 "is not KEY=V1" -- timeout 5 "$P" "${NOSERVER[@]}" sweep run m --dataset d --grid lr
expect 2 "give --epochs and --dataset" -- timeout 5 "$P" "${NOSERVER[@]}" sweep run m --dataset d --grid 'lr=0.1' --param epochs=3
expect 2 "is not a valid id" -- timeout 5 "$P" "${NOSERVER[@]}" sweep status 'a{b}'
expect 2 "sweep run MODEL" -- timeout 5 "$P" "${NOSERVER[@]}" sweep go

start_servers 2
zcat "$ROOT/data/digits.csv.gz" > "$RUN/digits.csv"
expect 0 "rows" -- "$P" "${SERVERS[@]}" dataset put digits "$RUN/digits.csv" --no-header
"$W" "${SERVERS[@]}" -X worker.id=w1 >"$RUN/w1.log" 2>&1 & WORKER_PID=$!
"$W" "${SERVERS[@]}" -X worker.id=w2 >"$RUN/w2.log" 2>&1 & W2=$!

GRID='learning_rate=0.01|0.001;hidden=32|8'
SW=("$P" "${SERVERS[@]}" sweep run digits-sw --dataset digits --grid "$GRID" --halving --eta 2
    --epochs 4 --param scale=0.0625 --timeout 300)
out=$("${SW[@]}" --id s1 2>&1); rc=$?
echo "$out" | sed 's/^/   /'
[ "$rc" = 0 ] && ok "sweep s1 exits 0" || bad "sweep s1 exit $rc"
n=$(grep -c "val_accuracy" <<<"$out")
[ "$n" -ge 7 ] && ok "7 trials reported" || bad "trials reported: $n"
grep -q "3 rung(s) of successive halving" <<<"$out" && ok "3 rungs" || bad "rungs: $out"
grep -q -- "-> digits-sw version 1" <<<"$out" && ok "the best registered as version 1" \
  || bad "no registration line"
vers=$("$P" "${SERVERS[@]}" model versions digits-sw 2>&1)
[ "$vers" = "digits-sw 1" ] && ok "one version of digits-sw" || bad "versions: $vers"
meta=$("$P" "${SERVERS[@]}" model show digits-sw 2>&1)
grep -q '"sweep":"s1"' <<<"$meta" && grep -q '"trial":"sw-s1-r2-' <<<"$meta" \
  && ok "its metadata names the sweep and a last-rung trial" || bad "meta: $meta"
left=$("$P" "${SERVERS[@]}" model list 2>&1)
grep -q "digits-sw.sw-" <<<"$left" && bad "scratch models left: $left" || ok "scratch models deleted"

st=$("$P" "${SERVERS[@]}" sweep status s1 2>&1)
echo "$st" | sed 's/^/   /'
[ "$(grep -cE '^[0-9] +[0-9]+ +[0-9]+ +SUCCEEDED' <<<"$st")" = 7 ] && ok "status: 7 SUCCEEDED rows" \
  || bad "status rows: $st"
grep -q '^result: .*"version":1' <<<"$st" && ok "status: the result" || bad "no result line"
csv=$("$P" "${SERVERS[@]}" sweep status s1 --csv 2>&1)
[ "$(wc -l <<<"$csv")" = 8 ] && head -1 <<<"$csv" | grep -q '^rung,config,epochs' \
  && ok "status --csv: header and 7 rows" || bad "csv: $csv"

jobs_before=$(redis-cli -p "$RPORT" --scan --pattern 'aas:job:{sw-s1-*' | wc -l)
out=$("${SW[@]}" --id s1 2>&1); rc=$?
[ "$rc" = 0 ] && grep -q "registered before, as digits-sw version 1" <<<"$out" \
  && ok "run again: registered before, nothing new" || bad "rerun ($rc): $out"
jobs_after=$(redis-cli -p "$RPORT" --scan --pattern 'aas:job:{sw-s1-*' | wc -l)
[ "$jobs_before" = "$jobs_after" ] && ok "run again: no new trial job ($jobs_after)" \
  || bad "trial jobs $jobs_before -> $jobs_after"
vers=$("$P" "${SERVERS[@]}" model versions digits-sw 2>&1)
[ "$vers" = "digits-sw 1" ] && ok "still one version" || bad "versions: $vers"

# The coordinator killed once its first rung is recorded; run again.
"${SW[@]/digits-sw/digits-k}" --id s2 >"$RUN/s2.log" 2>&1 & CP=$!
for _ in $(seq 600); do [ "$(grep -c '^rung 0' "$RUN/s2.log")" -ge 4 ] && break; sleep 0.1; done
kill -KILL "$CP" 2>/dev/null; wait "$CP" 2>/dev/null
grep -q '^rung 0' "$RUN/s2.log" && ok "coordinator killed after its first rung" \
  || bad "the first rung never finished: $(cat "$RUN/s2.log")"
out=$("${SW[@]/digits-sw/digits-k}" --id s2 2>&1); rc=$?
[ "$rc" = 0 ] && grep -q -- "-> digits-k version 1" <<<"$out" \
  && ok "run again: the sweep finishes, version 1" || bad "resume ($rc): $out"
vers=$("$P" "${SERVERS[@]}" model versions digits-k 2>&1)
[ "$vers" = "digits-k 1" ] && ok "one version of digits-k" || bad "versions: $vers"

RS=("$P" "${SERVERS[@]}" sweep run digits-r --dataset digits --grid "$GRID" --epochs 2
    --random 2 --seed 7 --param scale=0.0625 --timeout 300)
out=$("${RS[@]}" --id s3 2>&1); rc=$?
n=$(grep -c "^rung 0 .*epochs 2 " <<<"$out")
[ "$rc" = 0 ] && grep -q "2 configuration(s) drawn at random from the grid, 1 rung" <<<"$out" \
  && [ "$n" = 2 ] && grep -q -- "-> digits-r version 1" <<<"$out" \
  && ok "random search: 2 trials of 4, one version" || bad "random ($rc, $n trials): $out"
out2=$("${RS[@]}" --id s4 2>&1)
[ "$(grep '^rung' <<<"$out" | awk '{print $3, $4}')" = "$(grep '^rung' <<<"$out2" | awk '{print $3, $4}')" ] \
  && ok "the same seed draws the same configurations" || bad "draws differ: $out / $out2"

echo "test_sweep_cli: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
