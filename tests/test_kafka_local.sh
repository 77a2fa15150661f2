#!/usr/bin/env bash
# test_kafka_local.sh - tools/kafka-local never leaves a broker behind
# (issue 17, defect 7): with its pid record lost (what two commands
# rewriting DIR/pids at once could do), `status` still finds the running
# node by its command line and `stop` still stops it; kill-node and
# start-node run one at a time (a lock), and a start-node racing another
# for the same node starts one broker, not two.
# Usage: tests/test_kafka_local.sh   (needs Java 17; the jars are fetched
# and cached by kafka-local)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
K=$ROOT/tools/kafka-local
RUN=$(mktemp -d /tmp/aas-kl-XXXXXX)
D=$RUN/cluster
FAILS=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
javas() { pgrep -f -- "$D/node-1/server.properties" | while read -r p; do
  [ "$(cat /proc/$p/comm 2>/dev/null)" = java ] && echo "$p"; done | wc -l; }
cleanup() { "$K" stop --dir "$D" --rm >/dev/null 2>&1; pkill -KILL -f -- "$D/node-" 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
T0=$SECONDS

"$K" start --dir "$D" >"$RUN/start.log" 2>&1 || { cat "$RUN/start.log"; echo "kafka-local start failed"; exit 1; }
[ "$(javas)" = 1 ] && ok "one broker running" || bad "brokers running: $(javas)"

echo - >"$D/pids"   # the record lost
"$K" status --dir "$D" | grep -q "node=1 pid=[0-9]* .*state=up" && ok "status finds the node without its pid record" \
  || bad "status: $("$K" status --dir "$D")"
grep -qE '^[0-9]+$' "$D/pids" && ok "the pid is recorded again" || bad "pids: $(cat "$D/pids")"

echo - >"$D/pids"
"$K" kill-node --dir "$D" 1 >/dev/null 2>&1 && [ "$(javas)" = 0 ] \
  && ok "kill-node kills the node without its pid record" || bad "kill-node: $(javas) running"

# Two start-node at once for the same node: one starts it, the other is
# refused (already running, or the port in use); one broker either way.
"$K" start-node --dir "$D" 1 >"$RUN/s1.log" 2>&1 & s1=$!
"$K" start-node --dir "$D" 1 >"$RUN/s2.log" 2>&1 & s2=$!
wait $s1; r1=$?; wait $s2; r2=$?
[ "$(javas)" = 1 ] && [ $((r1 + r2)) -gt 0 ] && [ "$r1" = 0 -o "$r2" = 0 ] \
  && ok "two concurrent start-node: one broker (exit codes $r1, $r2)" \
  || bad "two concurrent start-node: $(javas) brokers, exits $r1 $r2: $(cat "$RUN/s1.log" "$RUN/s2.log" | tail -4)"

echo - >"$D/pids"
"$K" stop --dir "$D" >/dev/null 2>&1
[ "$(javas)" = 0 ] && ok "stop stops the node without its pid record" || bad "stop left $(javas) broker(s)"

echo "test_kafka_local: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
