#!/usr/bin/env bash
# run_train_bench.sh [BUILD_DIR] - training throughput and digits accuracy,
# aas (oneDNN) beside PyTorch (Debian's python3-torch) in the same run: the
# same MLPs, batch sizes, optimizers, hyper-parameters and thread counts.
# Prints Markdown tables (docs/performance.md).  Not a test.
#
#   bench/run_train_bench.sh                 # build dir build-bench/ (built if needed)
#   RUNS=3 bench/run_train_bench.sh build-x  # fewer runs per figure
#
# Throughput: bench_train and bench_train_torch.py on the same synthetic data
# rule, one process per run, the two alternating so that both see the same
# machine; each figure is the median of RUNS (default 5) runs.  Raw lines go
# to $LOG (default BUILD_DIR/train-bench.log).  Without python3-torch the
# PyTorch columns are "-".  PyTorch at t threads: torch.set_num_threads(t),
# OMP_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t; at 2 threads also "BLAS only"
# (ATen on 1 thread, OpenBLAS on 2), because Debian's torch runs its OpenMP
# pool and OpenBLAS's pthread pool side by side and 2 x 2 busy threads on 2
# CPUs is slower than either alone; the ratio uses the faster of the two.
# Digits: bench_train_digits and bench_train_torch.py --digits, seeds 1..SEEDS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build-bench}
RUNS=${RUNS:-5}
SEEDS=${SEEDS:-5}
PY=${PYTHON:-/usr/bin/python3}
TORCH="$PY $ROOT/bench/bench_train_torch.py"
if [ ! -x "$B/bench/bench_train" ] || [ ! -x "$B/bench/bench_train_digits" ]; then
  echo "building bench_train, bench_train_digits in $B (Release)..." >&2
  cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$B" -j"$(nproc)" --target bench_train bench_train_digits >/dev/null
fi
LOG=${LOG:-$B/train-bench.log}
: >"$LOG"
have_torch=1
if ! "$PY" -c "import torch" 2>/dev/null; then
  have_torch=0
  echo "run_train_bench: python3-torch is not installed (apt-get install -y python3-torch):" \
       "PyTorch columns skipped" >&2
fi

sps() { sed -n 's/.*samples_per_s=\([0-9]*\).*/\1/p'; }
median() { sort -n | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v p="$2" 'BEGIN {if (a == "-" || p == "-" || p == 0) print "-"; else printf "%.2f×", a / p}'; }
fmt() { awk -v v="$1" 'BEGIN {if (v == "-") {print "-"; exit} s = sprintf("%d", v); o = ""; while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)} print s o}'; }

echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
[ $have_torch = 1 ] && echo "## torch $("$PY" -c 'import torch; print(torch.__version__)'), runs per figure: $RUNS"
echo
echo "Training throughput, samples/s (median of $RUNS runs; ratio: aas ÷ the faster PyTorch column)"
echo
echo "| MLP | rows × epochs | batch | optimizer | aas 1 thread | PyTorch 1 thread | ratio | aas 2 threads | PyTorch 2 threads | PyTorch 2 threads, BLAS only | ratio |"
echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
for shape in "64 128,128 20000 5" "784 512,512 8192 2"; do
  read -r dim hidden rows epochs <<<"$shape"
  for batch in 32 128; do
    for opt in adam sgd; do
      line="| $dim-${hidden/,/-}-10 | $rows × $epochs | $batch | $opt"
      for t in 1 2; do
        args=(--dim "$dim" --hidden "$hidden" --classes 10 --rows "$rows" --epochs "$epochs"
              --batch-size "$batch" --optimizer "$opt")
        as=() ps=() qs=()
        for ((r = 1; r <= RUNS; r++)); do
          out=$(OMP_NUM_THREADS=$t "$B/bench/bench_train" "${args[@]}")
          echo "aas run=$r $out" >>"$LOG"
          as+=("$(sps <<<"$out")")
          if [ $have_torch = 1 ]; then
            # torch.set_num_threads(t) for ATen (OpenMP), t OpenBLAS threads
            out=$(OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t $TORCH "${args[@]}" --threads "$t")
            echo "run=$r $out" >>"$LOG"
            ps+=("$(sps <<<"$out")")
            if [ "$t" -gt 1 ]; then
              # ATen on 1 thread, only the OpenBLAS gemms on t: no 2 x t
              # busy threads on t CPUs
              out=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=$t $TORCH "${args[@]}" --threads 1)
              echo "run=$r blas-only openblas_threads=$t $out" >>"$LOG"
              qs+=("$(sps <<<"$out")")
            fi
          fi
        done
        a=$(printf '%s\n' "${as[@]}" | median)
        p=$( [ $have_torch = 1 ] && printf '%s\n' "${ps[@]}" | median || echo -)
        best=$p
        if [ "$t" -gt 1 ]; then
          q=$( [ $have_torch = 1 ] && printf '%s\n' "${qs[@]}" | median || echo -)
          line+=" | $(fmt "$a") | $(fmt "$p") | $(fmt "$q")"
          [ "$q" != - ] && [ "$q" -gt "$p" ] && best=$q
        else
          line+=" | $(fmt "$a") | $(fmt "$p")"
        fi
        line+=" | $(ratio "$a" "$best")"
      done
      echo "$line |"
    done
  done
done

echo
echo "Digits held-out accuracy (row % 5 == 0 held out: 360 rows; 1437 train rows; inputs / 16;"
echo "Adam lr 0.003, batch 32, 40 epochs, 1 thread; seeds 1..$SEEDS: mean (min–max))"
echo
echo "| MLP | aas | PyTorch |"
echo "|---|---|---|"
acc() { sed -n 's/.*mean_accuracy=\([0-9.]*\) min_accuracy=\([0-9.]*\) max_accuracy=\([0-9.]*\).*/\1 \2 \3/p' |
        awk '{if (NF == 3) printf "%.2f %% (%.2f–%.2f)", 100 * $1, 100 * $2, 100 * $3; else printf "-"}'; }
for hidden in 64 128,128; do
  dargs=(--hidden "$hidden" --epochs 40 --batch-size 32 --optimizer adam --learning-rate 0.003
         --seeds "$SEEDS" --threads 1)
  out=$(OMP_NUM_THREADS=1 "$B/bench/bench_train_digits" --data "$ROOT/data/digits.csv.gz" "${dargs[@]}")
  echo "$out" >>"$LOG"
  a=$(acc <<<"$out")
  p=-
  if [ $have_torch = 1 ]; then
    out=$(OMP_NUM_THREADS=1 $TORCH --digits "$ROOT/data/digits.csv.gz" "${dargs[@]}")
    echo "$out" >>"$LOG"
    p=$(acc <<<"$out")
  fi
  echo "| 64-${hidden/,/-}-10 | $a | ${p:--} |"
done
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw lines: $LOG"
