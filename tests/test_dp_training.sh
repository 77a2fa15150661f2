#!/usr/bin/env bash
# test_dp_training.sh - data-parallel training across the fleet
# (parallelism=N, docs/training.md#data-parallel-training) on a real
# redis-server, the dev broker (2 partitions) and two workers, each holding
# one training partition:
#   - digits with parallelism=2: the job SUCCEEDED, its shard task
#     <id>.s1 SUCCEEDED on the other worker and ran rounds there, the model
#     was registered once, its validation accuracy is that of a digits
#     model (>= 0.9);
#   - the shard's worker SIGKILLed mid-job: the coordinator redoes the
#     missing shard's rounds, the job SUCCEEDED, one more version, accuracy
#     as before;
#   - parallelism=auto with both workers idle: 2 shards, recorded in Redis;
#   - a coordinator waits for another's lease on the job, then trains and
#     releases it;
#   - a text classifier from a TSV data set with parallelism=2: the shard
#     task ran rounds on the other worker and the model answers texts;
#   - bad parallelism values, a topic slice with parallelism, and a
#     crafted shard task for another tenant's job, are FAILED with a
#     reason.
# (The rounds themselves, and accuracy against one worker: test_train.)
# Usage: tests/test_dp_training.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
RUN=$(mktemp -d /tmp/aas-dp.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
W2=''
T0=$SECONDS
trap 'stop_proc "$W2"; cleanup' EXIT
start_servers 2
RC() { redis-cli -p "$RPORT" "$@"; }
zcat "$ROOT/data/digits.csv.gz" > "$RUN/digits.csv"
# Round robin: one training partition each (docs/training.md).
WX=(-X worker.heartbeat.ms=500 -X kafka.partition.assignment.strategy=roundrobin)
"$W" "${SERVERS[@]}" "${WX[@]}" -X worker.id=dpw1 >"$RUN/w1.log" 2>&1 & WORKER_PID=$!
"$W" "${SERVERS[@]}" "${WX[@]}" -X worker.id=dpw2 >"$RUN/w2.log" 2>&1 & W2=$!
for _ in $(seq 300); do
  a=$(RC GET 'aas:worker:{dpw1}'); b=$(RC GET 'aas:worker:{dpw2}')
  [[ $a == *aas.jobs.train/* && $b == *aas.jobs.train/* ]] && break
  sleep 0.1
done
[[ $a == *aas.jobs.train/* && $b == *aas.jobs.train/* ]] && ok "each worker holds a training partition" \
  || bad "training partitions not on both workers: $a / $b"

TRAIN=(train --model dp --input "$RUN/digits.csv" --param parallelism=2 --param hidden=64
       --param learning_rate=0.003 --param scale=0.0625 --param threads=1)
expect 0 "SUCCEEDED" -- "$P" "${TRAIN[@]}" --param epochs=40 --id dp-1 --wait --timeout 120
expect 0 "SUCCEEDED" -- "$P" wait --timeout 30 dp-1.s1
cw=$(RC HGET 'aas:job:{dp-1}' worker); sw=$(RC HGET 'aas:job:{dp-1.s1}' worker)
[ -n "$cw" ] && [ -n "$sw" ] && [ "$cw" != "$sw" ] && ok "coordinator $cw, shard 1 on $sw" \
  || bad "workers: coordinator '$cw' shard '$sw'"
rounds=$(grep -ho 'job=dp-1.s1 shard 1 of 2 of job dp-1: rounds=[0-9]*' "$RUN"/w*.log | grep -o '[0-9]*$')
[ "${rounds:-0}" -ge 1 ] && ok "the shard's worker ran $rounds of the 40 rounds" \
  || bad "shard rounds: '$rounds'"
acc=$(RC HGET 'aas:model:{dp}' meta:1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["val_accuracy"])')
python3 -c "import sys; sys.exit(0 if $acc >= 0.9 else 1)" && ok "val_accuracy $acc" \
  || bad "val_accuracy $acc"
expect 0 "^dp +latest=1" -- "$P" model list
[ "$(RC EXISTS 'aas:dp:{dp-1}:g:40' 'aas:dp:{dp-1}:g:39' 'aas:dp:{dp-1}:s:39:1')" = 1 ] \
  && ok "only the last global state is kept" || bad "round keys left: $(RC KEYS 'aas:dp:*' | tr '\n' ' ')"

echo "== parallelism=auto"
# Both workers idle, each with a training partition, no floor: 2 shards
# (once the heartbeats say so: the last job's shard worker said
# "training" until its next beat).
for _ in $(seq 100); do
  RC MGET 'aas:worker:{dpw1}' 'aas:worker:{dpw2}' | grep -q '"training":"' || break
  sleep 0.1
done
expect 0 "SUCCEEDED" -- "$P" train --model dpa --input "$RUN/digits.csv" --param parallelism=auto \
  --param hidden=32 --param epochs=10 --param scale=0.0625 --id dpa-1 --wait --timeout 120
grep -h 'job=dpa-1 parallelism=auto' "$RUN"/w*.log | grep -q ': 2 shards (other live workers=1, idle with a training partition=1, floor=0)' \
  && ok "auto chose 2 shards: $(grep -ho 'job=dpa-1 parallelism=auto.*' "$RUN"/w*.log)" \
  || bad "auto: $(grep -h 'job=dpa-1 parallelism' "$RUN"/w*.log)"
[ "$(RC GET 'aas:dp:{dpa-1}:shards')" = 2 ] && ok "the choice is recorded" \
  || bad "dp shards key: $(RC GET 'aas:dp:{dpa-1}:shards')"
expect 0 "SUCCEEDED" -- "$P" wait --timeout 30 dpa-1.s1

echo "== the coordinator's lease"
# Another coordinator holds the job's lease for 3 s: this one waits for it,
# then trains, and releases the lease at the end.
RC SET 'aas:dp:{dpl-1}:lease' 'other-worker/1' PX 3000 >/dev/null
expect 0 "SUCCEEDED" -- "$P" train --model dpl --input "$RUN/digits.csv" --param parallelism=2 \
  --param hidden=32 --param epochs=5 --param scale=0.0625 --id dpl-1 --wait --timeout 120
grep -hq 'job=dpl-1 waits for coordinator other-worker/1 (lease' "$RUN"/w*.log \
  && ok "it waited for the lease's holder" || bad "no wait for the lease: $(grep -h 'job=dpl-1' "$RUN"/w*.log | head -3)"
[ "$(RC EXISTS 'aas:dp:{dpl-1}:lease')" = 0 ] && ok "the lease is released at the end" \
  || bad "lease left: $(RC GET 'aas:dp:{dpl-1}:lease')"

echo "== text: a TSV data set"
expect 0 "rows=200" -- "$P" dataset put intents "$ROOT/data/text-intents.tsv"
expect 0 "SUCCEEDED" -- "$P" train --model dpt --dataset intents --param parallelism=2 \
  --param epochs=20 --id dpt-1 --wait --timeout 120
expect 0 "SUCCEEDED" -- "$P" wait --timeout 30 dpt-1.s1
rounds=$(grep -ho 'job=dpt-1.s1 shard 1 of 2 of job dpt-1: rounds=[0-9]*' "$RUN"/w*.log | grep -o '[0-9]*$')
[ "${rounds:-0}" -ge 1 ] && ok "the text shard's worker ran $rounds of the 20 rounds" \
  || bad "text shard rounds: '$rounds'"
expect 0 "name=greeting" -- "$P" submit --model dpt --text 'hello there, good morning' --wait --timeout 60
expect 0 "name=weather" -- "$P" submit --model dpt --text 'will it rain tomorrow' --wait --timeout 60

echo "== the shard's worker killed mid-job"
"$P" "${TRAIN[@]}" --param epochs=400 --id dp-2 >/dev/null 2>"$RUN/dp2.err" || bad "dp-2: $(cat "$RUN/dp2.err")"
for _ in $(seq 300); do
  [ "$(RC HGET 'aas:job:{dp-2.s1}' status)" = RUNNING ] && [ "$(RC GET 'aas:dp:{dp-2}:round')" -ge 3 ] 2>/dev/null && break
  sleep 0.1
done
victim=$(RC HGET 'aas:job:{dp-2.s1}' worker)
if [ "$victim" = dpw1 ]; then kill -KILL "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''
elif [ "$victim" = dpw2 ]; then kill -KILL "$W2"; wait "$W2" 2>/dev/null; W2=''
else bad "dp-2.s1 not running: status $(RC HGET 'aas:job:{dp-2.s1}' status)"; fi
echo "   killed $victim at round $(RC GET 'aas:dp:{dp-2}:round') of 400"
expect 0 "SUCCEEDED" -- "$P" wait --timeout 240 dp-2
acc=$(RC HGET 'aas:model:{dp}' meta:2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["val_accuracy"])')
python3 -c "import sys; sys.exit(0 if $acc >= 0.9 else 1)" && ok "after the kill: val_accuracy $acc" \
  || bad "after the kill: val_accuracy $acc"
grep -h 'job=dp-2 data-parallel' "$RUN"/w*.log | grep -q 'redone=[1-9]' \
  && ok "the coordinator redid the lost shard's rounds: $(grep -ho 'job=dp-2 data-parallel.*redone=[0-9]*' "$RUN"/w*.log)" \
  || bad "no redone rounds: $(grep -h 'job=dp-2 data' "$RUN"/w*.log)"
expect 0 "^dp +latest=2" -- "$P" model list

echo "== bad values"
expect 3 "FAILED.*topic slice trains on one worker" -- "$P" train --model dpt \
  --data-topic aas.data.none --param parallelism=2 --id dpt-bad --wait --timeout 60
# A crafted shard task for another tenant's job: refused before it writes.
expect 3 "FAILED.*not a training job of tenant 'evil'" -- "$P" train --model dp \
  --input "$RUN/digits.csv" --param dp.job=dp-1 --param dp.shard=1 --param dp.shards=2 \
  --tenant evil --id dp-evil --wait --timeout 60
expect 3 "FAILED.*parallelism" -- "$P" train --model dp --input "$RUN/digits.csv" \
  --param parallelism=0 --id dp-bad --wait --timeout 60
echo "($((SECONDS - T0)) s)"
[ "$FAILS" = 0 ] && echo "test_dp_training: all passed" || { echo "test_dp_training: $FAILS failed"; exit 1; }
