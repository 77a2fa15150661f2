#!/usr/bin/env bash
# run_dp_bench.sh - data-parallel training on the fleet (issue 19 part 1;
# docs/training.md#data-parallel-training): one training job on one
# single-threaded worker against the same job with parallelism=2 on two
# single-threaded workers, same epochs; with --text TSV, a text classifier
# from that TSV data set the same two ways; then --fault-trials N runs of the
# parallel job with the shard's worker SIGKILLed mid-job.  Prints figures;
# a benchmark, not a test.  The dev broker (2 partitions) and a throw-away
# redis-server; Release binaries in build-bench/.
#
# Usage: bench/run_dp_bench.sh [--hidden 512,512] [--epochs 10] [--copies 16]
#                              [--fault-trials 10] [--text TSV] [--build DIR]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
HIDDEN=512,512 EPOCHS=10 TRIALS=10 COPIES=16 BUILD=$ROOT/build-bench TEXT=
while [ $# -gt 0 ]; do
  case $1 in
    --hidden) HIDDEN=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --fault-trials) TRIALS=$2; shift 2 ;;
    --copies) COPIES=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --text) TEXT=$2; shift 2 ;;
    *) echo "usage: $0 [--hidden H] [--epochs E] [--fault-trials N] [--text TSV] [--build DIR]" >&2; exit 2 ;;
  esac
done
if [ "$BUILD" = "$ROOT/build-bench" ]; then
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build "$BUILD" -j2 >/dev/null \
    || { echo "build failed" >&2; exit 1; }
fi
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
RUN=$(mktemp -d /tmp/aas-dpbench.XXXXXX)
PIDS=() W1='' W2=''
finish() { kill $W1 $W2 "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$RUN"; }
trap finish EXIT
bench_start_redis "$RUN"
"$BUILD/tools/aas-devbroker" --partitions 2 --bootstrap-file "$RUN/bs" >"$RUN/broker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$RUN/bs" ] && break; sleep 0.1; done
export AAS_REDIS_PORT=$REDIS_PORT AAS_KAFKA_BOOTSTRAP_SERVERS=$(cat "$RUN/bs")
RC() { redis-cli -p "$REDIS_PORT" "$@"; }
# The data: digits x COPIES (pixels jittered), a v1 data set in Redis: a
# round must be long against the state it moves for compute to dominate.
"$BUILD/bench/bench_dp" put-dataset digitsx "$COPIES" "$ROOT/data/digits.csv.gz" >&2 || exit 1
ROWS=$((1797 * COPIES))

# start_worker N: single-threaded (OMP and the job's threads=1), one
# training partition each (round robin).
start_worker() {
  OMP_NUM_THREADS=1 "$W" -X worker.id="dpb$1" -X worker.heartbeat.ms=500 -X worker.threads=1 \
    -X kafka.partition.assignment.strategy=roundrobin >>"$RUN/w$1.log" 2>&1 &
  eval "W$1=$!"
}
both_hold() {
  for _ in $(seq 300); do
    a=$(RC GET 'aas:worker:{dpb1}'); b=$(RC GET 'aas:worker:{dpb2}')
    [[ $a == *aas.jobs.train/* && $b == *aas.jobs.train/* ]] && return 0
    sleep 0.1
  done
  echo "bench: the workers do not hold a training partition each" >&2; exit 1
}
start_worker 1; start_worker 2; both_hold
TRAIN=(train --dataset digitsx --param hidden="$HIDDEN" --param epochs="$EPOCHS"
       --param learning_rate=0.001 --param scale=0.0625 --param threads=1)
# field NAME: a value from the last `wait` output (key=value pairs).
field() { grep -o "$1=[^ ]*" "$RUN/out" | head -1 | cut -d= -f2; }

say "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs)), $(nproc) vCPU; digits x $COPIES = $ROWS rows, hidden $HIDDEN, adam, $EPOCHS epochs"
printf '%-22s %10s %12s %10s %9s\n' run elapsed_s samples_per_s val_acc speed-up
base=''
for par in 1 2; do
  for rep in 1 2; do
    "$P" "${TRAIN[@]}" --model "dpb$par" --param parallelism="$par" --id "dpb-$par-$rep" \
      --wait --timeout 1800 >"$RUN/out" 2>&1 || { cat "$RUN/out"; exit 1; }
    el=$(field elapsed_ms); acc=$(field val_accuracy)
    sps=$(python3 -c "print(round($ROWS * 0.9 * $EPOCHS / ($el / 1000)))")
    [ -z "$base" ] && base=$el
    printf '%-22s %10.2f %12s %10.4f %8.2fx\n' "parallelism=$par #$rep" "$(python3 -c "print($el/1000)")" \
      "$sps" "$acc" "$(python3 -c "print($base / $el)")"
  done
done
grep -h 'data-parallel' "$RUN"/w*.log | sed 's/^/   /'

if [ -n "$TEXT" ]; then
  # A text classifier (the text defaults: linear head, 10 epochs) from a
  # TSV data set: the workers each read and featurize it, then rounds.
  "$P" dataset put dpbtext "$TEXT" >&2 || exit 1
  say "text: $(basename "$TEXT"), the text defaults, parallelism 1 and 2"
  printf '%-22s %10s %10s\n' run elapsed_s val_acc
  for par in 1 2; do
    "$P" train --model "dpbt$par" --dataset dpbtext --param parallelism="$par" --id "dpbt-$par" \
      --wait --timeout 1800 >"$RUN/out" 2>&1 || { cat "$RUN/out"; exit 1; }
    printf '%-22s %10.2f %10.4f\n' "parallelism=$par" "$(python3 -c "print($(field elapsed_ms)/1000)")" \
      "$(field val_accuracy)"
  done
  grep -h 'job=dpbt-2 data-parallel' "$RUN"/w*.log | sed 's/^/   /'
fi

[ "$TRIALS" -gt 0 ] || exit 0
# Faults on the plain digits (in the job; accuracy means something there:
# the jittered copies above land in both parts of the split), 400 rounds
# (about 8 s: the kill lands mid-job).
zcat "$ROOT/data/digits.csv.gz" >"$RUN/digits.csv"
TRAIN=(train --input "$RUN/digits.csv" --param hidden=64 --param epochs=400
       --param learning_rate=0.003 --param scale=0.0625 --param threads=1)
EPOCHS=400
"$P" "${TRAIN[@]}" --model dpc --param parallelism=2 --id dpc-1 --wait --timeout 600 >"$RUN/out" 2>&1
clean=$(field val_accuracy)
say "fault trials: digits, hidden 64, 400 rounds, the shard's worker SIGKILLed mid-job, $TRIALS times (clean run: val_accuracy $clean)"
ok=0 accs=()
for t in $(seq "$TRIALS"); do
  id="dpf-$t"
  "$P" "${TRAIN[@]}" --model dpf --param parallelism=2 --id "$id" >/dev/null 2>&1
  for _ in $(seq 600); do
    [ "$(RC HGET "aas:job:{$id.s1}" status)" = RUNNING ] && [ "$(RC GET "aas:dp:{$id}:round")" -ge 2 ] 2>/dev/null && break
    sleep 0.05
  done
  victim=$(RC HGET "aas:job:{$id.s1}" worker); at=$(RC GET "aas:dp:{$id}:round")
  case $victim in dpb1) kill -KILL "$W1"; wait "$W1" 2>/dev/null ;; dpb2) kill -KILL "$W2"; wait "$W2" 2>/dev/null ;; esac
  "$P" wait --timeout 1800 "$id" >"$RUN/out" 2>&1
  st=$(grep -o 'SUCCEEDED' "$RUN/out" | head -1); acc=$(field val_accuracy)
  printf '   trial %2d: killed %s at round %s of %s: %s val_accuracy=%s\n' "$t" "${victim:-none}" "$at" "$EPOCHS" "${st:-NOT SUCCEEDED}" "$acc"
  [ "$st" = SUCCEEDED ] && ok=$((ok + 1)) && accs+=("$acc")
  # The killed worker back, and its shard task (redelivered) let go.
  case $victim in dpb1) start_worker 1 ;; dpb2) start_worker 2 ;; esac
  both_hold
done
versions=$(RC HGET 'aas:model:{dpf}' latest)
echo "   $ok of $TRIALS SUCCEEDED; model dpf latest=$versions (one version per job: $TRIALS)"
python3 -c "import sys; a=[float(x) for x in sys.argv[1:]]; print('   val_accuracy min %.4f max %.4f' % (min(a), max(a)) if a else '')" "${accs[@]}"
