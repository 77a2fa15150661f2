#!/usr/bin/env bash
# run_sweep_bench.sh - hyper-parameter sweeps (issue 19, docs/training.md#sweeps):
# the full grid against successive halving, same grid, same data, same fleet.
#
#   bench/run_sweep_bench.sh [--epochs N] [--eta N] [--workers N] [--grid SPEC]
#
# Builds Release into build-bench/ (incremental), starts redis-server and
# the dev broker, N workers (default 2, OMP_NUM_THREADS=1 each), uploads
# the digits data set (data/digits.csv.gz, 1,797 rows, 64 features), then
# runs `aas-producer sweep run` twice over the default 16-configuration
# grid (learning_rate 0.03|0.01|0.003|0.001 x hidden 128|64|32|16, Adam,
# batch 32, scale 0.0625, 10 % validation): once every configuration at
# --epochs (default 16), once with --halving --eta (default 2).  Prints
# the best configuration and its validation accuracy for each, and the
# compute each used (trial-epochs, and the seconds of training the
# workers report), with the CPU model.  RESULT lines in
# build-bench/sweep-results.txt.  Stops everything it started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench
. "$ROOT/bench/lib.sh"
EPOCHS=16 ETA=2 WORKERS=2
GRID='learning_rate=0.03|0.01|0.003|0.001;hidden=128|64|32|16'
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) EPOCHS=$2; shift 2 ;;
    --eta) ETA=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --grid) GRID=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_sweep_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target aas-worker aas-producer aas-devbroker >/dev/null
RUN=$(mktemp -d /tmp/aas-sweep-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do stop_pid "$p"; done; rm -rf "$RUN"' EXIT
bench_start_redis "$RUN"
"$BUILD/tools/aas-devbroker" --partitions 4 --bootstrap-file "$RUN/bs" >"$RUN/broker.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$RUN/bs" ] && break; sleep 0.1; done
X=(-X "redis.port=$REDIS_PORT" -X "kafka.bootstrap.servers=$(cat "$RUN/bs")")
P=$BUILD/producer/aas-producer
zcat "$ROOT/data/digits.csv.gz" >"$RUN/digits.csv"
"$P" "${X[@]}" dataset put digits "$RUN/digits.csv" --no-header >/dev/null
for w in $(seq "$WORKERS"); do
  OMP_NUM_THREADS=1 "$BUILD/worker/aas-worker" "${X[@]}" -X "worker.id=w$w" >"$RUN/w$w.log" 2>&1 &
  PIDS+=($!)
done
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
RESULTS=$BUILD/sweep-results.txt
run() {  # run NAME EXTRA_ARGS...: one sweep; its best and compute lines
  local name=$1; shift
  say "sweep $name"
  "$P" "${X[@]}" sweep run "sweep-$name" --dataset digits --grid "$GRID" --epochs "$EPOCHS" \
    --param scale=0.0625 --param batch_size=32 --timeout 900 --id "bench-$name" "$@" \
    | tee "$RUN/$name.out" >&2
  local best acc te ts
  best=$(sed -n 's/^best: \(.*\) (epochs.*/\1/p' "$RUN/$name.out")
  acc=$(sed -n 's/.*val_accuracy \([0-9.]*\)).*/\1/p' "$RUN/$name.out")
  te=$(sed -n 's/^compute: \([0-9]*\) trial-epochs.*/\1/p' "$RUN/$name.out")
  ts=$(sed -n 's/^compute: .*, \([0-9.]*\) s of training/\1/p' "$RUN/$name.out")
  echo "RESULT bench=sweep mode=$name epochs=$EPOCHS eta=$ETA workers=$WORKERS best=\"$best\" val_accuracy=$acc trial_epochs=$te train_s=$ts" | tee -a "$RESULTS"
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$best" "$acc" "$te" "$ts" >>"$RUN/table"
}
T0=$SECONDS; run grid; TG=$((SECONDS - T0))
T0=$SECONDS; run halving --halving --eta "$ETA"; TH=$((SECONDS - T0))
echo
echo "CPU: $CPU ($(nproc) vCPUs); $WORKERS workers x 1 thread; dev broker; grid $GRID; --epochs $EPOCHS"
echo
echo "| sweep | best configuration | validation accuracy | trial-epochs | training s (workers) |"
echo "|---|---|---|---|---|"
cat "$RUN/table"
echo
echo "wall: grid ${TG} s, halving ${TH} s"
