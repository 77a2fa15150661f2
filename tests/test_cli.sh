#!/usr/bin/env bash
# test_cli.sh - aas-producer's promises at the command line, on a real
# redis-server and the dev broker (no worker needed):
#   - usage errors exit 2 before anything connects (no server running);
#   - a job id longer than the id rule is refused, never cut (two long ids
#     sharing 128 characters used to collide);
#   - an id in use is refused, unless --idempotent resubmits the same payload;
#   - a message over client.message.max.bytes (or the dev broker's 1 MiB)
#     is refused naming the limit, before it is sent;
#   - `dataset delete` of a missing set fails; kafka-local --version works;
#   - `model register` takes an ONNX file and `model describe` shows its
#     opsets, inputs and outputs; a file that is not a model exits 1 naming
#     the loader's reason, and nothing is stored;
#   - with a worker: train --wait prints a labeled summary (curves only with
#     --curves), --json floats round-trip a float32, --version names oneDNN
#     without "(N/A)".
# Usage: tests/test_cli.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
RUN=$(mktemp -d /tmp/aas-cli.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
LONG=$(printf 'a%.0s' $(seq 1 128))

# 1. No servers: usage errors must not wait on a connection.
NOSERVER=(-X redis.port=1 -X kafka.bootstrap.servers=127.0.0.1:1 -X redis.timeout.ms=60000)
expect 2 "not a valid id" -- timeout 5 "$P" "${NOSERVER[@]}" submit --model m --values 1 --id "${LONG}x"
expect 2 "not a valid id" -- timeout 5 "$P" "${NOSERVER[@]}" status "${LONG}y"
expect 2 "job ids" -- timeout 5 "$P" "${NOSERVER[@]}" wait
expect 2 "not a valid id" -- timeout 5 "$P" "${NOSERVER[@]}" submit --model m --values 1 --model-version "${LONG}z"
expect 2 "needs --model" -- timeout 5 "$P" "${NOSERVER[@]}" submit --values 1
expect 2 "exactly one of" -- timeout 5 "$P" "${NOSERVER[@]}" submit --model m
expect 2 "usage: model" -- timeout 5 "$P" "${NOSERVER[@]}" model bogus
expect 2 "usage: model set" -- timeout 5 "$P" "${NOSERVER[@]}" model set m
# describe --file reads a local file and needs no server (NOSERVER points
# at nothing): what an export is before registering it
expect 0 "^input  input float32 \[batch,1,8,8\]$" -- timeout 5 "$P" "${NOSERVER[@]}" \
  model describe --file "$ROOT/data/onnx/torch-cnn-op17/model.onnx"
expect 0 "classifier=yes labels=10" -- timeout 5 "$P" "${NOSERVER[@]}" \
  model describe --file "$ROOT/data/onnx/sklearn-svc/model.onnx"
expect 1 "not a valid ModelProto" -- timeout 5 "$P" "${NOSERVER[@]}" \
  model describe --file "$ROOT/README.md"
expect 2 "--file goes with" -- timeout 5 "$P" "${NOSERVER[@]}" \
  model describe cli-onnx --file "$ROOT/README.md"
expect 2 "usage: dataset" -- timeout 5 "$P" "${NOSERVER[@]}" dataset delete
expect 2 "unknown command" -- timeout 5 "$P" "${NOSERVER[@]}" frobnicate
expect 2 "refused on the command line" -- timeout 5 "$P" -X kafka.ssl.key.pem=KEY status x
expect 0 "Apache Kafka [0-9]" -- "$ROOT/tools/kafka-local" --version
# --help lists every command from the command table, in two columns.
HELP=$("$P" --help); rc=$?
for c in submit train dataset status wait cancel model; do
  [ "$rc" = 0 ] && grep -qE "^  $c " <<<"$HELP" && ok "--help lists $c" || bad "--help lacks $c"
done

# 2. Real Redis and the dev broker.
start_servers 2

expect 0 "^dup-1$" -- "$P" submit --model m --values 1,2 --id dup-1
expect 5 "exists \(same payload\).*--idempotent" -- "$P" submit --model m --values 1,2 --id dup-1
expect 5 "exists with a different payload" -- "$P" submit --model m --values 3,4 --id dup-1
expect 5 "dup-1 exists with a different payload" -- "$P" submit --model m --text hello --id dup-1
expect 0 "^dup-1$" -- "$P" submit --model m --values 1,2 --id dup-1 --idempotent
expect 5 "different payload" -- "$P" submit --model m --values 3,4 --id dup-1 --idempotent
# The first job's record is untouched: QUEUED, hash of the first payload.
[ "$(redis-cli -p "$RPORT" hget 'aas:job:{dup-1}' status)" = QUEUED ] && ok "dup-1 QUEUED" || bad "dup-1 not QUEUED"
# Two ids that share their first 128 characters are both refused (exit 2).
expect 2 "not a valid id" -- "$P" submit --model m --values 1 --id "${LONG}1"
expect 2 "not a valid id" -- "$P" submit --model m --values 1 --id "${LONG}2"
[ "$(redis-cli -p "$RPORT" exists "aas:job:{$LONG}")" = 0 ] && ok "no truncated id stored" || bad "a truncated id was stored"
# Size limits, before sending.
python3 -c 'print(",".join(["0.5"] * 300000))' > "$RUN/big.csv"   # ~1.2 MB encoded
expect 1 "over client.message.max.bytes=1000000" -- "$P" submit --model m --input "$RUN/big.csv"
expect 1 "over the dev broker's 1048576-byte limit" -- "$P" -X client.message.max.bytes=8000000 submit --model m --input "$RUN/big.csv"
# A dev broker that takes requests of at most 4 KiB refuses a 10 KB job the
# client lets through: the publication fails (exit 1), for a text job too
# (its exit code used to be 0 with the failure only on stderr).
"$BUILD/tools/aas-devbroker" --partitions 1 --max-request-bytes 4096 --bootstrap-file "$RUN/bs2" \
  >"$RUN/broker2.log" 2>&1 & BROKER2_PID=$!
for _ in $(seq 100); do [ -s "$RUN/bs2" ] && break; sleep 0.1; done
TEXT=$(head -c 10000 /dev/zero | tr '\0' x)
expect 1 "Message timed out" -- "$P" -b "$(cat "$RUN/bs2")" -X client.timeout.ms=1500 submit --model m --text "$TEXT"
kill "$BROKER2_PID"; wait "$BROKER2_PID" 2>/dev/null; BROKER2_PID=''
# Data sets.
expect 1 "data set nosuch not found" -- "$P" dataset delete nosuch
# ONNX models: register (kind told from the bytes) and describe; a file
# that is not a model is refused with the loader's reason, exit 1, and
# stores nothing.
ONNX=$ROOT/data/onnx/torch-mlp-op17/model.onnx
expect 0 "^cli-onnx 1$" -- "$P" model register cli-onnx "$ONNX"
expect 0 "^cli-onnx@1 kind=ONNX ir_version=[0-9]+ opsets=ai.onnx:17 producer=\"pytorch [0-9.]+\" nodes=[0-9]+$" -- "$P" model describe cli-onnx
expect 0 "^input  input float32 \[batch,64\]$" -- "$P" model describe cli-onnx@1
expect 0 "^output logits float32 \[batch,10\]$" -- "$P" model describe cli-onnx latest
expect 0 '"kind":"ONNX".*"inputs":\[\{"name":"input","dtype":"float32","shape":\["batch",64\]\}\]' -- "$P" model describe cli-onnx --json
expect 0 "^cli-mlp@1 kind=AASMLP1 input_dim=64 output_dim=10 classifier=yes labels=10$" -- \
  bash -c "'$P' model register cli-mlp '$ROOT/data/digits-mlp.aasm' >/dev/null && '$P' model describe cli-mlp"
yes 'this is not a model' | head -n 100 > "$RUN/garbage.onnx"
expect 1 "model cli-junk: .*garbage.onnx: (not an ONNX model|unknown model format)" -- "$P" model register cli-junk "$RUN/garbage.onnx"
head -c 100 "$ONNX" > "$RUN/truncated.onnx"
expect 1 "model cli-junk: .*truncated.onnx: .*(truncated|ModelProto)" -- "$P" model register cli-junk "$RUN/truncated.onnx"
# A graph aas cannot serve (three inputs) is refused naming why.
expect 1 "3 inputs" -- "$P" model register cli-junk \
  /usr/share/libonnx-testdata/data/node/test_gemm_default_single_elem_vector_bias/model.onnx
[ "$(redis-cli -p "$RPORT" exists 'aas:model:{cli-junk}')" = 0 ] && ok "no refused model stored" || bad "a refused model was stored"
expect 2 "usage: model" -- "$P" model describe cli-onnx@x

# 3. With a worker: how results print.
"$BUILD/worker/aas-worker" -X worker.id=cli-w -X worker.heartbeat.ms=500 >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
zcat "$ROOT/data/digits.csv.gz" | head -400 > "$RUN/train.csv"
OUT=$("$P" train --model cli-digits --input "$RUN/train.csv" --param hidden=16 \
      --param epochs=3 --param scale=0.0625 --wait --timeout 120 2>&1)
grep -qE "version=1 train_loss=.* val_accuracy=.* epochs=3 elapsed_ms=" <<<"$OUT" && ok "train --wait prints labeled metrics" || bad "no labeled metrics: $OUT"
grep -q "_curve" <<<"$OUT" && bad "curves printed without --curves: $OUT" || ok "no curves by default"
[ "$(wc -c <<<"$OUT")" -lt 1000 ] && ok "train --wait summary is short ($(wc -c <<<"$OUT") bytes)" || bad "summary of $(wc -c <<<"$OUT") bytes"
ROW=$(sed -n 1p "$ROOT/data/digits-test.csv" | cut -d, -f1-64)
J=$("$P" submit --model cli-digits --values "$ROW" --wait --json --timeout 60 2>&1)
# float32 values need 9 significant digits to round-trip; 7 used to be printed.
python3 - "$J" <<'PY' && ok "--json floats round-trip a float32" || bad "--json floats: $J"
import json, struct, sys
vals = json.loads(sys.argv[1])["outputs"][0]["values"]
# Each printed value, read back and rounded to float32, prints the same:
# %.9g is the shortest form that guarantees this for every float32.
f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]
assert all(float("%.9g" % f32(v)) == v for v in vals), vals
assert any(len(("%.9g" % v).replace("0.", "").lstrip("0").replace("e", " ").split()[0]) > 7
           for v in vals if v not in (0.0, 1.0)), vals
PY
expect 0 "oneDNN +[0-9.]+$" -- "$P" --version
# The ONNX model registered above is served like a native one.
expect 0 "SUCCEEDED model=cli-onnx@1" -- "$P" submit --model cli-onnx --values "$ROW" --wait --timeout 60
# The worker re-executed itself (same pid) with OpenMP's passive wait, so
# its idle compute threads sleep rather than spin (worker.omp.wait.policy).
tr '\0' '\n' <"/proc/$WORKER_PID/environ" | grep -qx 'OMP_WAIT_POLICY=passive' &&
  ok "the worker runs with OMP_WAIT_POLICY=passive" || bad "no OMP_WAIT_POLICY=passive in the worker's environment"
grep -q 'OMP_WAIT_POLICY=passive' "$RUN/worker.log" && ok "the worker logs its wait policy" ||
  bad "no wait policy in the worker log: $(grep 'compute threads' "$RUN/worker.log")"
kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''
# A user's own OMP_WAIT_POLICY wins, and active asks for no change.
for how in "env OMP_WAIT_POLICY=ACTIVE" "env -u OMP_WAIT_POLICY -- -X worker.omp.wait.policy=active"; do
  if [ "${how#*-- }" != "$how" ]; then envp=(env -u OMP_WAIT_POLICY); xarg=(${how#*-- })
  else envp=($how); xarg=(); fi
  "${envp[@]}" "$BUILD/worker/aas-worker" -X worker.id=cli-w2 "${xarg[@]}" >"$RUN/worker2.log" 2>&1 &
  WORKER_PID=$!
  for _ in $(seq 100); do grep -q 'compute threads' "$RUN/worker2.log" && break; sleep 0.1; done
  want='OMP_WAIT_POLICY=ACTIVE'; [ -n "${xarg[*]}" ] && want='OMP_WAIT_POLICY=(unset: spin)'
  grep -qF "$want" "$RUN/worker2.log" && ok "$how: $want" || bad "$how: $(grep 'compute threads' "$RUN/worker2.log")"
  kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''
done
expect 2 "worker.omp.wait.policy must be passive or active" -- "$BUILD/worker/aas-worker" -X worker.omp.wait.policy=spin

echo "test_cli: $FAILS failure(s)"
[ "$FAILS" = 0 ]
