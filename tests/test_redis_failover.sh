#!/usr/bin/env bash
# test_redis_failover.sh - Redis high availability (issue 17, part 3), all
# real: a redis-server master and a replica, three Redis Sentinels, the
# dev broker, one worker and aas-producer, every aas program finding the
# master through the sentinels (redis.sentinels) and the worker waiting
# for one replica (redis.wait.replicas=1) before a terminal write counts.
#   - jobs submitted in rounds; the master is SIGKILLed after the third;
#     the sentinels promote the replica; the rest are submitted after;
#   - every job ends SUCCEEDED with its output (none lost), each job's
#     record keeps its finish time when read twice, 3 s apart (nothing
#     rewritten), and every client's wait returns;
#   - the worker's WAIT is met again once the other replica follows the
#     new master (with none left it would hold its offsets back).
# Usage: tests/test_redis_failover.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_redis_failover.sh BUILD_DIR}" && pwd)
RUN=$(mktemp -d /tmp/aas-failover-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
P=$BUILD/producer/aas-producer
T0=$SECONDS
declare -a PIDS=()
stop_all() { local p; for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; }
trap "stop_all; [ -n \"${KEEP:-}\" ] || cleanup" EXIT

MP=$(free_port) RP=$(free_port) R2P=$(free_port)
redis-server --port "$MP" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
  --dbfilename m.rdb >"$RUN/master.log" 2>&1 & MASTER=$!; PIDS+=($!)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
  --dbfilename r.rdb --replicaof 127.0.0.1 "$MP" >"$RUN/replica.log" 2>&1 & PIDS+=($!)
# A second replica: after the failover the new master still has one, so
# WAIT 1 can be met again (with none, workers would hold their offsets).
redis-server --port "$R2P" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
  --dbfilename r2.rdb --replicaof 127.0.0.1 "$MP" >"$RUN/replica2.log" 2>&1 & PIDS+=($!)
SENT=""
for i in 1 2 3; do
  sp=$(free_port)
  cat >"$RUN/sentinel-$i.conf" <<CONF
port $sp
bind 127.0.0.1
dir $RUN
sentinel monitor aasm 127.0.0.1 $MP 2
sentinel down-after-milliseconds aasm 1000
sentinel failover-timeout aasm 5000
sentinel parallel-syncs aasm 1
CONF
  redis-server "$RUN/sentinel-$i.conf" --sentinel >"$RUN/sentinel-$i.log" 2>&1 & PIDS+=($!)
  SENT="$SENT${SENT:+,}127.0.0.1:$sp"
done
"$BUILD/tools/aas-devbroker" --partitions 2 --bootstrap-file "$RUN/bs" >"$RUN/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do
  [ -s "$RUN/bs" ] && [ "$(redis-cli -p "$RP" info replication | grep -c 'master_link_status:up')" = 1 ] &&
    [ "$(redis-cli -p "$R2P" info replication | grep -c 'master_link_status:up')" = 1 ] && break
  sleep 0.1
done
BS=$(cat "$RUN/bs")
HA=(-X "redis.sentinels=$SENT" -X redis.sentinel.master=aasm -X "kafka.bootstrap.servers=$BS")
# The sentinels know the master (and the replica) before anything starts.
for _ in $(seq 100); do
  redis-cli -p "${SENT##*:}" sentinel replicas aasm 2>/dev/null | grep -q "$RP" && break; sleep 0.1
done

expect 0 "" -- "$BUILD/bench/bench_e2e" make-model --layers 8,16,4 --out "$RUN/m.aasm" --seed 3
expect 0 "^hm 1|hm 1$" -- "$P" "${HA[@]}" model register hm "$RUN/m.aasm"
"$BUILD/worker/aas-worker" "${HA[@]}" -X redis.wait.replicas=1 -X redis.wait.timeout.ms=2000 -X batch.max.rows=1 \
  -X redis.timeout.ms=2000 >"$RUN/worker.log" 2>&1 & WORKER_PID=$!; PIDS+=($!)

ROUNDS=6 PER=40
python3 -c "
import random
random.seed(5)
for i in range($PER): print(','.join('%.4f' % random.uniform(-1, 1) for _ in range(8)))" >"$RUN/rows.csv"
: >"$RUN/ids"
for r in $(seq "$ROUNDS"); do
  t=$SECONDS
  if ! "$P" "${HA[@]}" -X redis.timeout.ms=2000 submit --model hm --input "$RUN/rows.csv" \
      --rows-per-job 1 >>"$RUN/ids" 2>"$RUN/submit-$r.log"; then
    bad "round $r: submit failed: $(tail -2 "$RUN/submit-$r.log")"
  fi
  if [ "$r" = 3 ]; then
    echo "== SIGKILL the master ($MP)"
    kill -9 "$MASTER"
    promoted=0 NEWP=''
    for _ in $(seq 300); do
      for p in "$RP" "$R2P"; do
        redis-cli -p "$p" role 2>/dev/null | head -1 | grep -q master && { promoted=1; NEWP=$p; }
      done
      [ "$promoted" = 1 ] && break
      sleep 0.1
    done
    [ "$promoted" = 1 ] && ok "the sentinels promoted a replica (:$NEWP)" || bad "no failover in 30 s"
    # Submitting goes on at once: a client asks the sentinels in turn (some
    # still name the old master for a moment) until one names a master.
  fi
done
n=$(wc -l <"$RUN/ids")
[ "$n" = $((ROUNDS * PER)) ] && ok "$n jobs submitted" || bad "$n of $((ROUNDS * PER)) jobs submitted"
t=$SECONDS
out=$("$P" "${HA[@]}" wait --timeout 120 $(cat "$RUN/ids") 2>&1); rc=$?
succ=$(grep -c "SUCCEEDED" <<<"$out")
[ "$rc" = 0 ] && [ "$succ" = "$n" ] && ok "every wait returned: $succ SUCCEEDED, none lost ($((SECONDS - t)) s)" \
  || bad "wait exit $rc, $succ of $n SUCCEEDED: $(grep -v SUCCEEDED <<<"$out" | head -5)"
fin() { for id in $(cat "$RUN/ids"); do redis-cli -p "$NEWP" hget "aas:job:{$id}" finished_ms; done; }
a=$(fin | md5sum); sleep 3; b=$(fin | md5sum)
[ "$a" = "$b" ] && [ "$(fin | grep -c '^[0-9]')" = "$n" ] && ok "every job has one finish time, unchanged 3 s later" \
  || bad "finish times changed or missing"
grep -c "event=master" "$RUN/worker.log" | grep -qv '^0$' && ok "the worker followed the master through the sentinels" \
  || bad "the worker never logged the new master: $(grep -i store "$RUN/worker.log" | tail -3)"

# The worker's offsets move again: once the other replica follows the new
# master, WAIT 1 is met and no terminal write is held back any more.
w1=0 w2=1
for _ in $(seq 30); do
  w1=$(grep -c "not counted as durable" "$RUN/worker.log"); sleep 3
  w2=$(grep -c "not counted as durable" "$RUN/worker.log")
  [ "$w1" = "$w2" ] && break
done
[ "$w1" = "$w2" ] && ok "WAIT is met again after the failover ($w2 writes were held back during it)" \
  || bad "the worker still holds terminal writes back 90 s after the failover"
kill "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''
echo "test_redis_failover: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
