#!/usr/bin/env bash
# test_fair_share.sh - the fair share between tenants within a lane
# (worker.fair.*, docs/sharing.md#fair-share) on a real redis-server, the
# dev broker (one partition, so the lane is strictly ordered) and one
# worker:
#   - tenant flood queues 3,000 jobs, then tenant steady 5: with the fair
#     share on (the default) each steady job finishes while most of the
#     flood is still to run; every job SUCCEEDED, each written once, and
#     usage counts each tenant's jobs exactly;
#   - the same with worker.fair.jobs=0 (lanes in offset order): the steady
#     jobs finish after the flood, so the check above discriminates;
#   - the offsets the fair worker stored (out of offset order, through its
#     ledger) let the next worker start after them: it re-reads none of the
#     first run's jobs (skipped=0 when it stops).
# (The round robin and the ledger themselves: test_fair.)
# Usage: tests/test_fair_share.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
RUN=$(mktemp -d /tmp/aas-fair.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
T0=$SECONDS
FLOOD=3000
start_servers 1
RC() { redis-cli -p "$RPORT" "$@"; }
expect 0 "" -- "$BUILD/bench/bench_e2e" make-model --layers 64,128,128,10 --out "$RUN/m.aasm" --seed 3
expect 0 "^fs-mlp 1$" -- "$P" "${SERVERS[@]}" model register fs-mlp "$RUN/m.aasm"
python3 -c "
import random
r = random.Random(1)
for _ in range($FLOOD): print(','.join('%.3f' % r.random() for _ in range(64)))" >"$RUN/flood.csv"
ROW=$(head -1 "$RUN/flood.csv")

# finished_ms of each id in a file (one id a line), in its order.
finished() {
  sed 's/.*/HGET aas:job:{&} finished_ms/' "$1" | RC >"$RUN/fin"
  cat "$RUN/fin"
}

# run NAME FAIR_JOBS: queue the flood then the steady jobs, start a worker,
# wait for all; prints the flood jobs that finished after each steady job
# (the smallest count) into $RUN/NAME.after.
run() {
  local name=$1 fair=$2
  "$P" "${SERVERS[@]}" submit --model fs-mlp --input "$RUN/flood.csv" --no-header \
    --rows-per-job 1 --tenant flood >"$RUN/$name.flood" 2>"$RUN/$name.err" \
    || bad "$name: flood not submitted: $(cat "$RUN/$name.err")"
  : >"$RUN/$name.steady"
  for i in 1 2 3 4 5; do
    "$P" "${SERVERS[@]}" submit --model fs-mlp --values "$ROW" --tenant steady \
      --id "$name-st-$i" >/dev/null 2>>"$RUN/$name.err" && echo "$name-st-$i" >>"$RUN/$name.steady"
  done
  [ "$(wc -l <"$RUN/$name.flood")" = "$FLOOD" ] && [ "$(wc -l <"$RUN/$name.steady")" = 5 ] \
    && ok "$name: $FLOOD flood jobs then 5 steady jobs queued" || bad "$name: jobs not queued"
  "$W" "${SERVERS[@]}" -X worker.id="$name" -X worker.fair.jobs="$fair" \
    >"$RUN/$name.log" 2>&1 & WORKER_PID=$!
  # shellcheck disable=SC2046
  "$P" "${SERVERS[@]}" wait --timeout 240 $(cat "$RUN/$name.steady" "$RUN/$name.flood") \
    >"$RUN/$name.out" 2>&1 || bad "$name: wait: $(tail -3 "$RUN/$name.out")"
  local n; n=$(grep -c SUCCEEDED "$RUN/$name.out")
  [ "$n" = $((FLOOD + 5)) ] && ok "$name: all $((FLOOD + 5)) SUCCEEDED" \
    || bad "$name: $n of $((FLOOD + 5)) SUCCEEDED"
  local writes
  writes=$(cat "$RUN/$name.steady" "$RUN/$name.flood" | sed 's/.*/HGET aas:job:{&} result_writes/' \
    | RC | sort | uniq -c | tr -s ' ')
  [ "$writes" = " $((FLOOD + 5)) 1" ] && ok "$name: each result written once" \
    || bad "$name: result_writes: $writes"
  finished "$RUN/$name.flood" >"$RUN/$name.ff"
  local min=$FLOOD t after
  for t in $(finished "$RUN/$name.steady"); do
    after=$(awk -v t="$t" '$1 > t' "$RUN/$name.ff" | wc -l)
    [ "$after" -lt "$min" ] && min=$after
  done
  echo "$min" >"$RUN/$name.after"
  stop_proc "$WORKER_PID"
  WORKER_PID=''
}

run fair 20000
after=$(cat "$RUN/fair.after")
# Without the fair share this is 0 (checked below); with it, a steady job
# waits for about one quantum of the flood's, far less than half.
[ "$after" -ge $((FLOOD / 2)) ] \
  && ok "fair: every steady job finished before $after of the $FLOOD flood jobs" \
  || bad "fair: a steady job finished before only $after of the $FLOOD flood jobs"
usage=$("$P" "${SERVERS[@]}" usage --csv 2>&1)
grep -qE "^all,flood,fs-mlp,$FLOOD," <<<"$usage" && grep -qE "^all,steady,fs-mlp,5," <<<"$usage" \
  && ok "usage: flood $FLOOD jobs, steady 5" || bad "usage: $usage"

run ordered 0
after=$(cat "$RUN/ordered.after")
[ "$after" -le $((FLOOD / 20)) ] \
  && ok "fair share off: steady jobs wait for the flood ($after flood jobs after them)" \
  || bad "fair share off: $after flood jobs finished after a steady job (expected about 0)"
grep -q "stopping .*skipped=0 " "$RUN/ordered.log" \
  && ok "the next worker re-read none of the fair worker's jobs (skipped=0)" \
  || bad "the next worker re-read jobs: $(grep stopping "$RUN/ordered.log")"

echo "test_fair_share: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
