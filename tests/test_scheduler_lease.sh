#!/usr/bin/env bash
# test_scheduler_lease.sh - one scheduler acts per consumer group (issue
# 17, defect 5), on a real redis-server and the dev broker, with the
# command actuator (each scheduler's hook appends the count to its own
# file; no worker runs, so each leader asks for scheduler.min = 1):
#   - of two schedulers on one group, one leads (its hook runs) and the
#     other logs that it stands by and runs nothing; `status` names the
#     leader;
#   - the leader stopped with SIGTERM releases the lease: the other leads
#     within seconds;
#   - the old leader restarted stands by; the new leader SIGKILLed (no
#     release) is followed once its lease runs out (10 s);
#   - a scheduler on another group leads at the same time;
#   - decisions are kept per group: `status` of each group lists only its
#     own.
# Usage: tests/test_scheduler_lease.sh BUILD_DIR
set -uo pipefail
BUILD=$(cd "${1:?usage: test_scheduler_lease.sh BUILD_DIR}" && pwd)
RUN=$(mktemp -d /tmp/aas-lease-XXXXXX)
. "$(dirname "$0")/cli_lib.sh"
SCHED=$BUILD/scheduler/aas-scheduler
T0=$SECONDS
declare -A SPID=()
stop_scheds() { local p; for p in "${SPID[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap 'stop_scheds; cleanup' EXIT

start_servers 2
# start NAME GROUP: a scheduler whose hook writes to $RUN/hook-NAME
start() {
  "$SCHED" "${SERVERS[@]}" -X "worker.group=$2" -X scheduler.actuator=command \
    -X "scheduler.command=echo \$AAS_DESIRED_WORKERS >> $RUN/hook-$1" \
    -X scheduler.interval.ms=300 -X scheduler.min=1 -X scheduler.max=4 run \
    >>"$RUN/sched-$1.log" 2>&1 &
  SPID[$1]=$!
}
# wait_for SECONDS CMD...: until CMD succeeds
wait_for() { local n=$(($1 * 10)); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done; return 1; }
lines() { [ -f "$RUN/hook-$1" ] && wc -l <"$RUN/hook-$1" || echo 0; }
ran() { [ "$(lines "$1")" -ge "${2:-1}" ]; }
standing() { grep -q "standing by" "$RUN/sched-$1.log"; }

start A g1
wait_for 30 ran A && ok "the first scheduler leads: its hook ran ($(head -1 "$RUN/hook-A"))" \
  || bad "the first scheduler's hook never ran: $(tail -3 "$RUN/sched-A.log")"
start B g1
wait_for 30 standing B && ok "the second scheduler on the group stands by" \
  || bad "the second scheduler did not say it stands by: $(tail -3 "$RUN/sched-B.log")"
sleep 2
[ "$(lines B)" = 0 ] && ok "the standby's hook never ran" || bad "the standby acted: $(cat "$RUN/hook-B")"
out=$("$SCHED" "${SERVERS[@]}" -X worker.group=g1 status 2>&1)
grep -qE "scheduler of group g1: .*:${SPID[A]}:" <<<"$out" && ok "status names the leader (pid ${SPID[A]})" \
  || bad "status does not name the leader: $(grep -i 'scheduler of' <<<"$out")"
out=$("$SCHED" "${SERVERS[@]}" -X worker.group=g1 status --json 2>&1)
grep -qE "\"leader\": ?\"[^\"]*:${SPID[A]}:" <<<"$out" && ok "status --json names the leader" \
  || bad "status --json: $(grep scheduler <<<"$out")"

start C g2
wait_for 30 ran C && ok "a scheduler of another group leads beside them" \
  || bad "the other group's scheduler did not act: $(tail -3 "$RUN/sched-C.log")"

kill -TERM "${SPID[A]}"; wait "${SPID[A]}" 2>/dev/null; unset 'SPID[A]'
t=$SECONDS
wait_for 10 ran B && ok "SIGTERM releases the lease: the standby leads after $((SECONDS - t)) s" \
  || bad "the standby did not take over within 10 s of the leader's SIGTERM"

start A g1
wait_for 30 standing A && ok "the old leader, restarted, stands by" \
  || bad "the restarted scheduler did not stand by: $(tail -3 "$RUN/sched-A.log")"
before=$(lines A)
kill -KILL "${SPID[B]}"; wait "${SPID[B]}" 2>/dev/null; unset 'SPID[B]'
t=$SECONDS
wait_for 30 ran A $((before + 1)) && ok "after the leader's SIGKILL the lease runs out and the standby leads ($((SECONDS - t)) s)" \
  || bad "no takeover within 30 s of the leader's SIGKILL: $(tail -3 "$RUN/sched-A.log")"

g1=$("$SCHED" "${SERVERS[@]}" -X worker.group=g1 status --json 2>/dev/null | grep -c '"decision"')
g2=$("$SCHED" "${SERVERS[@]}" -X worker.group=g2 status --json 2>/dev/null | grep -c '"decision"')
n1=$(( $(lines A) + $(lines B) ))
[ "$g1" -ge 2 ] && [ "$g2" -ge 1 ] && [ "$g2" -le "$(lines C)" ] \
  && ok "decisions are kept per group (g1 $g1, g2 $g2)" \
  || bad "decisions per group: g1 $g1 (hooks ran $n1), g2 $g2 (hook ran $(lines C))"

stop_scheds
echo "test_scheduler_lease: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
