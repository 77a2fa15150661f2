#!/usr/bin/env bash
# test_worker_train_only.sh - a training-only worker (worker.infer=false;
# the Kubernetes trainer Deployment, docs/kubernetes.md), on a real
# redis-server and the dev broker: it says so at start, runs a training
# job, and leaves inference jobs alone (still QUEUED while it runs; an
# ordinary worker then runs them).  worker.infer=false with
# worker.train=false is refused at start.
# Usage: tests/test_worker_train_only.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_worker_train_only.sh BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(mktemp -d /tmp/aas-trainonly-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker
T0=$SECONDS
W2=''
trap '[ -n "$W2" ] && kill "$W2" 2>/dev/null && wait "$W2" 2>/dev/null; cleanup' EXIT
start_servers 2

expect 1 "both false" -- "$W" "${SERVERS[@]}" -X worker.infer=false -X worker.train=false
"$W" "${SERVERS[@]}" -X worker.infer=false -X worker.id=trainer >"$RUN/trainer.log" 2>&1 &
WORKER_PID=$!
for _ in $(seq 100); do grep -q "serving training only" "$RUN/trainer.log" && break; sleep 0.1; done
grep -q "serving training only" "$RUN/trainer.log" && ok "the worker says it serves training only" \
  || bad "no 'serving training only' line: $(tail -3 "$RUN/trainer.log")"
expect 0 "SUCCEEDED model=intents" -- "$P" "${SERVERS[@]}" train --model intents \
  --text-input "$ROOT/data/text-intents.tsv" --param hidden=16 --wait --timeout 180
id=$("$P" "${SERVERS[@]}" submit --model intents --text "where is my order" 2>"$RUN/submit.log")
[ -n "$id" ] && ok "an inference job submitted ($id)" || bad "submit: $(cat "$RUN/submit.log")"
sleep 5
st=$("$P" "${SERVERS[@]}" status "$id" 2>&1)
grep -q "QUEUED" <<<"$st" && ok "5 s later the inference job is still QUEUED: the trainer left it" \
  || bad "the training-only worker took an inference job: $st"
"$W" "${SERVERS[@]}" -X worker.train=false -X worker.id=inferer >"$RUN/inferer.log" 2>&1 &
W2=$!
expect 0 "SUCCEEDED" -- "$P" "${SERVERS[@]}" wait --timeout 60 "$id"
echo "test_worker_train_only: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
