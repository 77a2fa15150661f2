#!/usr/bin/env bash
# run_onnx_bench.sh - ONNX models on aas against the same weights in the
# native format and against ONNX Runtime (issue 13, "Performance"), in one
# command, same machine, same threads, same inputs, same timing method.
#
#   bench/run_onnx_bench.sh [--threads LIST] [--rounds N] [--quick] [--build DIR] [--no-build]
#
# Models: a 784-512-512-10 MLP (relu, relu, softmax; torch's default init,
# seed 7) exported from PyTorch at opset 17 into a temp dir, with the same
# weights as AASMLP1 (tools/onnx-fixtures-torch.py bench-mlp), at batch 1,
# 8, 64, 256; the digits CNN of data/onnx/torch-cnn-op13 and -op17 at the
# same batches; data/onnx/sklearn-*/model.onnx at batch 1 and 256.
# aas: build/bench/bench_onnx (aas_model_infer, OMP_NUM_THREADS=T);
# ONNX Runtime: bench/peers/ort_bench.py (intra-op threads T, inter-op 1,
# sequential).  Both: warm-up, then the median of timed calls (>= 300 ms and
# >= 20 calls a point; --quick: 100 ms).  The whole sequence (aas, then ORT,
# per group of models) runs --rounds times and the table keeps each point's
# fastest median, so a burst of other work on a shared machine hurts aas and
# ORT alike.  Prints the CPU, date and load, then one Markdown table; the
# RESULT lines of every round go to DIR/onnx-bench-results.txt.
#
#   --threads LIST  thread counts, comma list          (default 1)
#   --rounds N      rounds, best median kept           (default 2)
#   --build DIR     build directory                   (default build-bench, Release)
#   --no-build      use DIR's bench_onnx as it is
# Python: $AAS_ONNX_PYTHON, else ~/.cache/aas/venv-onnx/bin/python under the repo; it
# needs torch, onnx and onnxruntime:
#   /usr/bin/python3 -m venv --system-site-packages ~/.cache/aas/venv-onnx
#   ~/.cache/aas/venv-onnx/bin/pip install onnxruntime
# Exit status 1 if a step failed (e.g. a model did not load), after the table.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-bench THREADS=1 QUICK=0 DO_BUILD=1 ROUNDS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=${2:?--threads wants a list like 1,2}; shift 2 ;;
    --build) BUILD=$(cd "${2:?--build wants a directory}" 2>/dev/null && pwd) ||
               { echo "run_onnx_bench: --build $2: no such directory" >&2; exit 2; }; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --rounds) ROUNDS=${2:?--rounds wants a number}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_onnx_bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $THREADS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] ||
  { echo "run_onnx_bench: --threads $THREADS: want a list like 1,2" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "run_onnx_bench: --rounds $ROUNDS: want 1..99" >&2; exit 2; }
TIMING=(--min-ms 300 --warmup-ms 100)
[ "$QUICK" = 1 ] && TIMING=(--min-ms 100 --warmup-ms 30)

. "$ROOT/bench/lib.sh"
PY=${AAS_ONNX_PYTHON:-${AAS_VENV_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aas}/venv-onnx/bin/python}
if ! "$PY" -c 'import torch, onnx, onnxruntime' 2>/dev/null; then
  echo "run_onnx_bench: $PY cannot import torch, onnx and onnxruntime; see --help" >&2
  exit 1
fi

if [ "$DO_BUILD" = 1 ]; then
  say "building bench_onnx (Release) in $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAAS_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target bench_onnx >/dev/null
fi
BENCH=$BUILD/bench/bench_onnx
[ -x "$BENCH" ] || { echo "run_onnx_bench: no $BENCH" >&2; exit 1; }

RUN=$(mktemp -d /tmp/aas-onnx-bench.XXXXXX)
trap 'rm -rf "$RUN"' EXIT
trap 'exit 130' INT TERM
FAILED=()

say "exporting the 784-512-512-10 MLP into $RUN"
"$PY" "$ROOT/tools/onnx-fixtures-torch.py" bench-mlp "$RUN" >&2

DENSE=("mlp=$RUN/mlp.onnx" "mlp.native=$RUN/mlp.aasm")
for op in 13 17; do
  f=$ROOT/data/onnx/torch-cnn-op$op/model.onnx
  [ -f "$f" ] && DENSE+=("cnn-op$op=$f")
done
SKL=()
for d in "$ROOT"/data/onnx/sklearn-*/; do
  [ -f "$d/model.onnx" ] && SKL+=("$(basename "$d")=$d/model.onnx")
done
# ORT gets the .onnx files only.
ORT_DENSE=() && for m in "${DENSE[@]}"; do [[ $m == *.onnx ]] && ORT_DENSE+=("$m"); done

RESULTS=$RUN/results.txt
: >"$RESULTS"
# run LABEL CMD...: show the output on stderr, keep its RESULT/FLOOR/SAME lines.
run() {
  local label=$1; shift
  say "$label"
  if ! "$@" >"$RUN/out.txt" 2>&1; then FAILED+=("$label"); fi
  cat "$RUN/out.txt" >&2
  grep -E '^(RESULT|FLOOR|SAME) ' "$RUN/out.txt" >>"$RESULTS" || true
}

# cpu_busy: percent of all CPUs busy over the next 2 s (/proc/stat), which
# on a machine shared with other containers is the only view of their load.
cpu_busy() {
  local a b
  read -r -a a < <(head -n1 /proc/stat); sleep 2; read -r -a b < <(head -n1 /proc/stat)
  local tot=0 idle=$(( b[4] + b[5] - a[4] - a[5] )) k
  for k in 1 2 3 4 5 6 7 8; do tot=$(( tot + b[k] - a[k] )); done
  echo "$(( tot > 0 ? 100 * (tot - idle) / tot : 0 ))%"
}
BUSY_BEFORE=$(cpu_busy)
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg), CPUs busy $BUSY_BEFORE"
NCPU=$(nproc)   # before OMP_NUM_THREADS is set: nproc obeys it
IFS=, read -r -a TLIST <<<"$THREADS"
cd "$ROOT"
for round in $(seq "$ROUNDS"); do
for t in "${TLIST[@]}"; do
  export OMP_NUM_THREADS=$t
  run "round $round/$ROUNDS, aas: MLP and CNN, $t thread(s)" "$BENCH" "${TIMING[@]}" --batch 1,8,64,256 \
    --same mlp,mlp.native "${DENSE[@]}"
  run "round $round/$ROUNDS, ONNX Runtime: MLP and CNN, $t thread(s)" "$PY" "$ROOT/bench/peers/ort_bench.py" \
    "${TIMING[@]}" --threads "$t" --batch 1,8,64,256 "${ORT_DENSE[@]}"
  if [ ${#SKL[@]} -gt 0 ]; then
    run "round $round/$ROUNDS, aas: scikit-learn models, $t thread(s)" "$BENCH" "${TIMING[@]}" --batch 1,256 "${SKL[@]}"
    run "round $round/$ROUNDS, ONNX Runtime: scikit-learn models, $t thread(s)" "$PY" \
      "$ROOT/bench/peers/ort_bench.py" "${TIMING[@]}" --threads "$t" --batch 1,256 "${SKL[@]}"
  fi
done
done
unset OMP_NUM_THREADS
cp "$RESULTS" "$BUILD/onnx-bench-results.txt"

# ---------------------------------------------------------------- table
BUSY_AFTER=$(cpu_busy)
echo
echo "## ONNX on aas vs native AASMLP1 vs ONNX Runtime"
echo
HV=$(lscpu | sed -n 's/^Hypervisor vendor: *//p')
cpu_field() { lscpu | sed -n "s/^$1: *//p"; }
ISA=avx2; grep -qw avx512f /proc/cpuinfo && ISA=avx512f; grep -qw avx2 /proc/cpuinfo || ISA=sse
echo "- CPU: $(cpu_field 'Model name') (family $(cpu_field 'CPU family') model $(cpu_field 'Model'), ${ISA}${HV:+, $HV}) x$NCPU; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg), CPUs busy $BUSY_AFTER (sampled over 2 s with the benchmark stopped: other work on the machine)"
if [ "${BUSY_BEFORE%\%}" -ge 10 ] || [ "${BUSY_AFTER%\%}" -ge 10 ]; then
  echo "- WARNING: other work kept the CPUs busy ($BUSY_BEFORE before, $BUSY_AFTER after): the figures include that contention, and a row with more threads than free cores is not worth quoting"
fi
echo "- onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)'), aas $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'); fastest of $ROUNDS rounds' median calls (>= ${TIMING[1]} ms a point)"
awk '$1 == "SAME" && !seen_same++ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                    printf "- %s vs %s: max |diff| %s at batch %s\n", v["a"], v["b"], v["max_abs_diff"], v["batch"] }
     $1 == "FLOOR" { split($3, ft, "="); split($4, fu, "=")
                     if (!(ft[2] in fl) || fu[2] + 0 < fl[ft[2]] + 0) fl[ft[2]] = fu[2]; if (!(ft[2] in fo)) fo[ft[2]] = ++nf }
     END { for (t in fo) ord[fo[t]] = t
           for (i = 1; i <= nf; i++) printf "- ORT from Python: an empty session.run (Identity) costs %s us at %s thread(s), included in the ORT column\n", fl[ord[i]], ord[i] }' "$RESULTS"
echo
awk '
  $1 == "FLOOR" { split($3, ft, "="); split($4, fu, "=")
                  if (!(ft[2] in floor) || fu[2] + 0 < floor[ft[2]] + 0) floor[ft[2]] = fu[2]; next }
  $1 != "RESULT" { next }
  { delete v; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  { who = ($2 == "peer=ort") ? "ort" : "aas"; m = v["model"] }
  who == "aas" && m ~ /\.native$/ { sub(/\.native$/, "", m); who = "native" }
  { k = v["threads"] SUBSEP m SUBSEP v["batch"]
    if (!((who, k) in us) || v["us_per_batch"] + 0 < us[who, k] + 0) us[who, k] = v["us_per_batch"]
    if (!(k in seen)) { seen[k] = 1; order[++n] = k } }
  function f(x) { return x == "" ? "-" : sprintf("%.1f", x) }
  function r(a, b) { return (a == "" || b == "") ? "-" : sprintf("%.2f", a / b) }
  function sub_floor(x, t) { return (x == "" || !(t in floor)) ? "-" : sprintf("%.1f", x - floor[t]) }
  function rows(x, b) { return x == "" ? "-" : sprintf("%.0f", b / (x * 1e-6)) }
  END {
    print "| model | threads | batch | aas ONNX us | aas native us | ORT us | ORT us - empty call | ONNX/native speed | aas/ORT speed | aas ONNX rows/s | ORT rows/s |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
      k = order[i]; split(k, p, SUBSEP)
      a = us["aas", k]; nat = us["native", k]; o = us["ort", k]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[2], p[1], p[3], f(a), f(nat), f(o),
             sub_floor(o, p[1]), r(nat, a), r(o, a), rows(a, p[3]), rows(o, p[3])
    }
    print ""
    print "us = microseconds per batch (median call, the fastest round). ONNX/native speed = native us / ONNX us (issue 13 wants >= 0.95);"
    print "aas/ORT speed = ORT us / aas ONNX us (>= 1: aas is at least as fast), ORT timed from Python as users call it;"
    print "\"ORT us - empty call\" takes out the cost of a session.run that does nothing. \"-\": not measured (did not load)."
  }' "$RESULTS"

if [ ${#FAILED[@]} -gt 0 ]; then
  printf '\nrun_onnx_bench: FAILED: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
