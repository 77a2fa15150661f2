#!/usr/bin/env bash
# test_train_floor.sh - the inference floor (worker.train.floor,
# docs/training.md#inference-floor) on a real redis-server, the dev broker
# and workers of one group, with the digits data set:
#   - one worker with floor 1: a training job waits (QUEUED, the log says
#     why) while an inference job submitted after it is served;
#   - a second worker joins: the job trains and SUCCEEDED, and the slot it
#     held is released (no slot left in Redis);
#   - four more training jobs, two on each worker's partition: all
#     SUCCEEDED; in samples taken every 0.1 s one slot, never two, was
#     held, and the workers' logs show no two trainings overlapping
#     (without the floor both train at once: checked by hand);
#   - parallelism=auto under the floor trains on one worker.
# (The slot logic itself, with leases, is test_store's
# train_slots_keep_the_inference_floor.)
# Usage: tests/test_train_floor.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
RUN=$(mktemp -d /tmp/aas-floor.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
W2=''
T0=$SECONDS
trap 'stop_proc "$W2"; cleanup' EXIT

start_servers 2
zcat "$ROOT/data/digits.csv.gz" > "$RUN/digits.csv"
expect 0 "rows" -- "$P" "${SERVERS[@]}" dataset put digits "$RUN/digits.csv" --no-header
expect 0 "" -- "$BUILD/bench/bench_e2e" make-model --layers 64,16,10 --out "$RUN/m.aasm" --seed 7
expect 0 "^fl-mlp 1$" -- "$P" "${SERVERS[@]}" model register fl-mlp "$RUN/m.aasm"
# Round robin puts one of the two training partitions on each worker (the
# default, cooperative-sticky, balances counts over all topics and may
# give one worker both).
FLOOR=(-X worker.train.floor=1 -X worker.heartbeat.ms=500
       -X kafka.partition.assignment.strategy=roundrobin)
"$W" "${SERVERS[@]}" "${FLOOR[@]}" -X worker.id=fw1 >"$RUN/w1.log" 2>&1 & WORKER_PID=$!
RC() { redis-cli -p "$RPORT" "$@"; }
for _ in $(seq 100); do [ "$(RC EXISTS 'aas:worker:{fw1}')" = 1 ] && break; sleep 0.1; done

# About a second of training each (so the samples below see them).
TRAIN=(train --model fl --dataset digits --param epochs=150 --param hidden=128
       --param scale=0.0625)
expect 0 "" -- "$P" "${SERVERS[@]}" "${TRAIN[@]}" --id fl-1
expect 0 "SUCCEEDED" -- "$P" "${SERVERS[@]}" submit --model fl-mlp --id fl-inf-1 \
  --values "$(seq -s, 1 64)" --wait --timeout 60
sleep 3
expect 0 "QUEUED" -- "$P" "${SERVERS[@]}" status fl-1
grep -q "training waits: worker.train.floor=1, live workers=1, training=0" "$RUN/w1.log" \
  && ok "the lone worker says why the job waits" || bad "no 'training waits' line in w1.log"

"$W" "${SERVERS[@]}" "${FLOOR[@]}" -X worker.id=fw2 >"$RUN/w2.log" 2>&1 & W2=$!
expect 0 "SUCCEEDED" -- "$P" "${SERVERS[@]}" wait --timeout 120 fl-1
n=$(RC ZCARD 'aas:trainslots:{aas-workers}')
[ "$n" = 0 ] && ok "its slot was released" || bad "slots held after the job: $n"

# Four more: never two training at once.
# Each worker must hold a training partition first (the dev broker makes a
# joining member wait for the rebalance; round robin above), and the four ids go two to each
# partition (the producer's partitioner: CRC-32 of the id, mod 2), so
# without the floor both workers would train at once.
for _ in $(seq 300); do
  a=$(RC GET 'aas:worker:{fw1}'); b=$(RC GET 'aas:worker:{fw2}')
  [[ $a == *aas.jobs.train/* && $b == *aas.jobs.train/* ]] && break
  sleep 0.1
done
[[ $a == *aas.jobs.train/* && $b == *aas.jobs.train/* ]] && ok "each worker holds a training partition" \
  || bad "training partitions not on both workers: $a / $b"
IDS="fl-2 fl-3 fl-4 fl-5"
for i in $IDS; do expect 0 "" -- "$P" "${SERVERS[@]}" "${TRAIN[@]}" --id "$i"; done
# Sampled: the slots held (one ZCARD, atomic). The heartbeats are not
# sampled: each is up to worker.heartbeat.ms stale, so a worker that just
# finished still says "training" while the other starts, and two GETs are
# not one instant. What each worker did is read from its own log instead:
# "training started" comes after its slot is taken and "training recorded"
# before it is released, so the intervals of two workers never overlap.
max=0
for _ in $(seq 1800); do
  t=$(RC ZCARD 'aas:trainslots:{aas-workers}')
  [ "$t" -gt "$max" ] && max=$t
  done_n=0
  for i in $IDS; do
    RC HGET "aas:job:{$i}" status | grep -qE 'SUCCEEDED|FAILED' && done_n=$((done_n + 1))
  done
  [ "$done_n" = 4 ] && break
  sleep 0.1
done
out=$("$P" "${SERVERS[@]}" wait --timeout 60 $IDS 2>&1)
[ "$(grep -c SUCCEEDED <<<"$out")" = 4 ] && ok "four jobs SUCCEEDED" || bad "not all four: $out"
[ "$max" = 1 ] && ok "one slot held at a time (max $max)" \
  || bad "$max training slots held at once under worker.train.floor=1"
# Each line: worker start end (ISO times, ms, compare as strings).
intervals() {
  awk -v w="$1" '
    / training started / { for (i = 1; i <= NF; i++) if ($i ~ /^job=/) s[$i] = $1 }
    / training recorded / { for (i = 1; i <= NF; i++) if ($i ~ /^job=/ && ($i in s)) {
                              print w, s[$i], $1; delete s[$i] } }
    END { for (j in s) print w, s[j], "9999" }' "$2"
}
{ intervals w1 "$RUN/w1.log"; intervals w2 "$RUN/w2.log"; } > "$RUN/intervals"
n_iv=$(wc -l < "$RUN/intervals")
overlap=$(awk '{ w[NR] = $1; s[NR] = $2; e[NR] = $3 }
  END { for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++)
          if (w[i] != w[j] && s[i] < e[j] && s[j] < e[i]) print w[i], s[i], e[i], "and", w[j], s[j], e[j] }' \
  "$RUN/intervals")
[ "$n_iv" -ge 5 ] && [ -z "$overlap" ] \
  && ok "the workers' logs show one training at a time ($n_iv trainings)" \
  || bad "trainings overlap or are missing ($n_iv): $overlap"
# parallelism=auto keeps the floor: with two workers and floor 1, the job
# trains on one (1 + the other idle worker - the floor).
expect 0 "SUCCEEDED" -- "$P" "${SERVERS[@]}" "${TRAIN[@]}" --param parallelism=auto --id fl-auto \
  --wait --timeout 120
grep -h 'job=fl-auto parallelism=auto' "$RUN"/w*.log | grep -q ': 1 shard (.*floor=1)' \
  && ok "parallelism=auto under the floor: $(grep -ho 'job=fl-auto parallelism=auto.*' "$RUN"/w*.log)" \
  || bad "auto under the floor: $(grep -h 'job=fl-auto parallelism' "$RUN"/w*.log)"
echo "test_train_floor: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
