#!/usr/bin/env bash
# run_text_bench.sh - text classifiers against the scikit-learn reference
# (issue 14, docs/text.md#measured), on the same splits and the same core.
#
#   bench/run_text_bench.sh [--sets zh,en] [--heads linear,mlp]
#
# For each set (zh: Chinese product reviews, en: English review sentences;
# tools/fetch-text-data makes them) it runs bench/bench_text (aas: train an
# AASTXT2 model, held-out accuracy, training time, featurize + forward at
# batch 1 for a ~200-character text) and bench/peers/sklearn_text.py
# (TfidfVectorizer char_wb 1-2 sublinear + LogisticRegression), both pinned
# to CPU 1 with one thread, and prints one table.  Needs the venv of
# bench/peers/setup-venv-text (made if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SETS=zh,en HEADS=linear,mlp
while [ $# -gt 0 ]; do
  case $1 in
    --sets) SETS=${2:?}; shift 2 ;;
    --heads) HEADS=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_text_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
BUILD=${BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target bench_text >/dev/null
"$ROOT/tools/fetch-text-data" >/dev/null
"$ROOT/bench/peers/setup-venv-text"
CPU="$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed "s/^ *//"), family $(grep -m1 "cpu family" /proc/cpuinfo | cut -d: -f2 | tr -d " ") model $(grep -m1 "^model\s*:" /proc/cpuinfo | cut -d: -f2 | tr -d " ")"
echo "CPU: $CPU ($(nproc) CPUs); every run pinned to CPU 1, one thread"
printf '%-4s %-28s %9s %9s %12s %12s\n' set model accuracy train_s infer_p50_us model_MiB
declare -A FILE=([zh]=zh-reviews [en]=en-sentences)
for s in ${SETS//,/ }; do
  tr=$ROOT/data/text/${FILE[$s]}-train.tsv te=$ROOT/data/text/${FILE[$s]}-test.tsv
  for h in ${HEADS//,/ }; do
    args=(--param head=$h)
    # the MLP head takes dense rows: a smaller hash space
    [ "$h" = mlp ] && args+=(--param text_dim=16384 --param hidden=64 --param epochs=5)
    OMP_NUM_THREADS=1 taskset -c 1 "$BUILD/bench/bench_text" "$tr" "$te" "${args[@]}" --json |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print("%-4s %-28s %9.4f %9.2f %12.1f %12.1f" % (sys.argv[1], "aas " + sys.argv[2], d["accuracy"], d["train_s"], d["infer_us_p50"], d["model_bytes"]/1048576))' "$s" "$h"
  done
  "${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-text/bin/python" "$ROOT/bench/peers/sklearn_text.py" "$tr" "$te" --cpus 1 --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print("%-4s %-28s %9.4f %9.2f %12.1f %12s" % (sys.argv[1], "sklearn char_wb 1-2 + LR", d["accuracy"], d["train_s"], d["batch1_median_us"], "-"))' "$s"
done
