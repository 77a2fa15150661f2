#!/usr/bin/env bash
# run_train_bench.sh [BUILD_DIR] - training throughput, aas (oneDNN) beside
# PyTorch, same MLPs, batch sizes, optimizers and thread counts, one run;
# prints a Markdown table.  Not a test.  Needs python3-torch for the peer.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build-bench}
if [ ! -x "$B/bench/bench_train" ]; then
  cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$B" -j"$(nproc)" --target bench_train >/dev/null
fi
sps() { sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p'; }
echo "| MLP | batch | optimizer | threads | aas (oneDNN) samples/s | PyTorch samples/s | aas / PyTorch |"
echo "|---|---|---|---|---|---|---|"
for shape in "64 128,128" "784 512,512"; do
  set -- $shape
  rows=20000; [ "$1" = 784 ] && rows=8000
  for batch in 32 128; do
    for opt in adam sgd; do
      for t in 1 2; do
        a=$(OMP_NUM_THREADS=$t "$B/bench/bench_train" --dim "$1" --hidden "$2" \
              --rows $rows --epochs 3 --batch-size $batch --optimizer $opt | sps)
        p=$(OMP_NUM_THREADS=$t "$ROOT/bench/bench_train_torch.py" --dim "$1" --hidden "$2" \
              --rows $rows --epochs 3 --batch-size $batch --optimizer $opt --threads $t \
              2>/dev/null | sps || true)
        ratio=$( [ -n "$p" ] && awk -v a="$a" -v p="$p" 'BEGIN {printf "%.2f", a / p}' || echo "-")
        echo "| $1-${2/,/-}-10 | $batch | $opt | $t | $a | ${p:--} | $ratio |"
      done
    done
  done
done
echo
echo "Digits (64-64-10, Adam lr 0.003, batch 32, 40 epochs, row % 5 == 0 held out):"
OMP_NUM_THREADS=1 "$ROOT/bench/bench_train_torch.py" --digits "$ROOT/data/digits.csv.gz" \
  --hidden 64 --epochs 40 --batch-size 32 --optimizer adam --learning-rate 0.003 --threads 1 \
  2>/dev/null || echo "torch: not installed"
echo "aas: see 'ctest -R test_training' (digits: held-out accuracy ...) and test_train"
