#!/usr/bin/env bash
# bench_scheduler_step.sh - a step load on real Apache Kafka (8 partitions),
# served (a) by one fixed aas-worker and (b) by aas-scheduler with the local
# actuator (min 1, max 4); docs/scheduler.md, "Step load".
#
#   bench/bench_scheduler_step.sh [--build DIR] [--layers 784,4096,4096,10]
#                                 [--profile LOW:S,HIGH:S,LOW:S] [--max N]
#                                 [--capacity-only]
#
# Starts redis-server (own port) and tools/kafka-local (topics: infer with 8
# partitions, train and dlq with 1), registers an MLP with random weights
# (bench_e2e make-model), measures the jobs/s of 1 and 2 workers (closed
# loop; OMP_NUM_THREADS=1 per worker), and unless --profile is given picks
# the step from them: LOW = 1/4 of one worker's capacity, HIGH between one
# and two workers' (one worker cannot keep up, two can).  Then runs the same
# open-loop profile (bench_e2e --profile: latency from the scheduled send
# time) twice, sampling `aas-scheduler status --json` every 0.25 s, and
# prints for each run: the time from the step to the first scale-up decision
# and to 2..N live workers (heartbeats), the peak backlog and when it
# drained, and p50/p99 latency per phase.  The step's time is when the
# topic's high watermarks reach the jobs submitted before it.
#
# --build DIR: a build with worker/, producer/, scheduler/ and bench/
# (default build-h5, then build).  AAS_BENCH_KEEP=DIR keeps the run's files.
# Stops everything it started on exit.  Figures depend on the machine and
# on what else runs on it; say so when you quote them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD= LAYERS=784,4096,4096,10 PROFILE= MAX=4 CAP_ONLY=0
PARTITIONS=8 WARMUP=200
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --layers) LAYERS=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    --max) MAX=$2; shift 2 ;;
    --capacity-only) CAP_ONLY=1; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench_scheduler_step: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$BUILD" ]; then
  for b in "$ROOT/build-h5" "$ROOT/build"; do [ -x "$b/bench/bench_e2e" ] && { BUILD=$b; break; }; done
fi
WORKER=$BUILD/worker/aas-worker PRODUCER=$BUILD/producer/aas-producer
SCHED=$BUILD/scheduler/aas-scheduler E2E=$BUILD/bench/bench_e2e
for x in "$WORKER" "$PRODUCER" "$SCHED" "$E2E"; do
  [ -x "$x" ] || { echo "bench_scheduler_step: $x missing (build first, or --build DIR)" >&2; exit 2; }
done
DIM=${LAYERS%%,*}

. "$ROOT/bench/lib.sh"

RUN=$(mktemp -d /tmp/aas-step.XXXXXX)
PIDS=() KDIR=
cleanup() {
  local p
  rm -f "$RUN/sampling"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  if [ -n "$KDIR" ]; then "$ROOT/tools/kafka-local" stop --dir "$KDIR" --rm >/dev/null 2>&1 || true; fi
  if [ -n "${AAS_BENCH_KEEP:-}" ]; then cp -r "$RUN" "$AAS_BENCH_KEEP"; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------- services
bench_start_redis "$RUN"

say "Apache Kafka (tools/kafka-local, 1 broker, topic.infer with $PARTITIONS partitions)"
KDIR=$RUN/kafka
k=$ROOT/tools/kafka-local
{ "$k" start --dir "$KDIR" --owner $$ &&
  "$k" create-topic --dir "$KDIR" aas.jobs.infer --partitions "$PARTITIONS" --replication 1 &&
  "$k" create-topic --dir "$KDIR" aas.jobs.infer.high --partitions "$PARTITIONS" --replication 1 &&
  "$k" create-topic --dir "$KDIR" aas.jobs.infer.low --partitions "$PARTITIONS" --replication 1 &&
  "$k" create-topic --dir "$KDIR" aas.jobs.train --partitions 1 --replication 1 &&
  "$k" create-topic --dir "$KDIR" aas.jobs.dlq --partitions 1 --replication 1; } >"$RUN/kafka-start.log" 2>&1 ||
  { tail -n 20 "$RUN/kafka-start.log" >&2; echo "bench_scheduler_step: Kafka did not start" >&2; exit 1; }
BOOT=$(cat "$KDIR/bootstrap")

# Every program (and the workers the scheduler starts) reads these.
export AAS_KAFKA_BOOTSTRAP_SERVERS=$BOOT AAS_REDIS_PORT=$REDIS_PORT OMP_NUM_THREADS=1
export AAS_WORKER_HEARTBEAT_MS=1000 AAS_LOG_LEVEL=warn

say "model: MLP $LAYERS with random weights"
"$E2E" make-model --layers "$LAYERS" --out "$RUN/step.aasm" --seed 7 >/dev/null
"$PRODUCER" model register step-mlp "$RUN/step.aasm" >/dev/null
E2E_ARGS=(--brokers "$BOOT" --redis-port "$REDIS_PORT" --model step-mlp --dim "$DIM"
          --warmup "$WARMUP" --timeout 300)

# Status lines of topic.infer and the live workers.
status() { "$SCHED" -X log.level=error --sample-ms 0 status --json 2>/dev/null || true; }
live_workers() { status | grep -c '^{"worker"' || true; }
total_lag() { status | sed -n 's/.*"topic_total":"aas.jobs.infer".*"lag":\([0-9]*\).*/\1/p'; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local s=$1; shift
  for _ in $(seq $((s * 4))); do "$@" && return 0; sleep 0.25; done
  return 1
}
lag_zero() { [ "$(total_lag)" = 0 ]; }

WPIDS=()
start_workers() { # start_workers N PREFIX
  for i in $(seq "$1"); do
    "$WORKER" -X "worker.id=$2-$i" >>"$RUN/$2-$i.log" 2>&1 &
    WPIDS+=($!)
    PIDS+=($!)
  done
}
stop_workers() {
  local p
  for p in "${WPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WPIDS=()
}

# ---------------------------------------------------------------- capacity
capacity() { # capacity N: jobs/s of N fixed workers, closed loop, into CAP
  start_workers "$1" "cap$1"
  wait_for 60 eval '[ "$(live_workers)" -ge '"$1"' ]' || { echo "bench_scheduler_step: workers did not start" >&2; exit 1; }
  "$E2E" "${E2E_ARGS[@]}" --jobs 20000 --inflight 2000 >"$RUN/cap$1.out" 2>"$RUN/cap$1.err" ||
    { cat "$RUN/cap$1.err" >&2; exit 1; }
  stop_workers
  CAP=$(sed -n 's/^RESULT .* jobs_per_s=\([0-9]*\).*/\1/p' "$RUN/cap$1.out" | head -1)
}
say "capacity: 1 worker, then 2 (20,000 jobs each, 2,000 in flight)"
capacity 1; C1=$CAP
capacity 2; C2=$CAP
echo "capacity: 1 worker $C1 jobs/s, 2 workers $C2 jobs/s ($(nproc --all) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$CAP_ONLY" = 1 ] && exit 0
if [ -z "$PROFILE" ]; then
  LOW=$((C1 / 4))
  if [ "$C2" -gt $((C1 * 6 / 5)) ]; then HIGH=$(((C1 + C2) / 2)); else
    HIGH=$((C1 * 13 / 10))
    echo "note: 2 workers add little here ($C2 vs $C1 jobs/s); the step ($HIGH/s) may be beyond the fleet too" >&2
  fi
  PROFILE="$LOW:20,$HIGH:30,$LOW:40"
fi
echo "profile: $PROFILE (jobs/s:seconds)"

# ---------------------------------------------------------------- runs
sampler() { # sampler FILE: status every 0.25 s while $RUN/sampling exists
  while [ -e "$RUN/sampling" ]; do
    local t
    t=$(date +%s.%N)
    status | sed "s/^/$t /" >>"$1"
    sleep 0.25
  done
}

run_profile() { # run_profile LABEL
  local label=$1
  wait_for 120 lag_zero || echo "note: lag not 0 before $label" >&2
  touch "$RUN/sampling"
  sampler "$RUN/$label.samples" &
  local sp=$!
  "$E2E" "${E2E_ARGS[@]}" --profile "$PROFILE" --tag "run=$label" >"$RUN/$label.e2e" 2>"$RUN/$label.e2e.err" ||
    echo "note: bench_e2e reported failures in $label (see below)" >&2
  wait_for 120 lag_zero || true
  sleep 2
  rm -f "$RUN/sampling"
  wait "$sp" 2>/dev/null || true
  status | grep '^{"decision"' >"$RUN/$label.decisions" || true
}

say "(a) one fixed worker"
wait_for 30 eval '[ "$(live_workers)" -eq 0 ]' || true # the capacity runs' heartbeats expire
start_workers 1 fixed
wait_for 60 eval '[ "$(live_workers)" -eq 1 ]'
sleep 3 # its first assignment
run_profile fixed
stop_workers

say "(b) aas-scheduler run, local actuator, min 1 max $MAX"
redis-cli -p "$REDIS_PORT" del aas:scheduler:decisions >/dev/null
wait_for 30 eval '[ "$(live_workers)" -eq 0 ]' || true
"$SCHED" -X scheduler.min=1 -X "scheduler.max=$MAX" -X "scheduler.worker.bin=$WORKER" \
  -X "scheduler.worker.logdir=$RUN" -X log.level=info run >"$RUN/scheduler.log" 2>&1 &
SPID=$!
PIDS+=($SPID)
wait_for 30 eval '[ "$(live_workers)" -eq 1 ]'
sleep 3
run_profile scheduler
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true

# ---------------------------------------------------------------- figures
python3 - "$RUN" "$PROFILE" "$WARMUP" "$MAX" "$PARTITIONS" <<'EOF'
import json, re, sys
run, profile, warmup, maxw = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
partitions = int(sys.argv[5])
phases = [tuple(float(x) for x in p.split(':')) for p in profile.split(',')]
low, s1 = phases[0]
high, s2 = phases[1]

def samples(label):
    """[(t, sum of highs, total lag, live workers)] from the sampler file."""
    by_t = {}
    for line in open(f"{run}/{label}.samples"):
        t, _, js = line.partition(' ')
        try:
            o = json.loads(js)
        except ValueError:
            continue
        s = by_t.setdefault(float(t), {'high': 0, 'ok': True, 'lag': None, 'live': 0})
        if o.get('topic') == 'aas.jobs.infer':
            if o.get('high') is None: s['ok'] = False
            else: s['high'] += o['high']
        elif o.get('topic_total') == 'aas.jobs.infer':
            s['lag'] = o.get('lag')
        elif 'worker' in o and isinstance(o['worker'], dict):
            s['live'] += 1
    return [(t, s['high'], s['lag'], s['live']) for t, s in sorted(by_t.items())
            if s['ok'] and s['lag'] is not None]

def step_time(ss):
    """When the high watermarks reach the jobs sent before the step."""
    h0 = ss[0][1]
    target = h0 + warmup + low * s1
    for (ta, ha, _, _), (tb, hb, _, _) in zip(ss, ss[1:]):
        if ha < target <= hb:
            return ta + (tb - ta) * (target - ha) / (hb - ha)
    return None

def phase_lat(label):
    out = {}
    for line in open(f"{run}/{label}.e2e"):
        m = re.match(r'RESULT bench=e2e mode=profile phase=(\S+) .*done_per_s=(\S+) p50_ms=(\S+) p99_ms=(\S+) max_ms=(\S+)', line)
        if m:
            out[m.group(1)] = tuple(float(x) for x in m.groups()[1:])
    return out

def fmt(x, unit='s'):
    return '-' if x is None else f"{x:.1f} {unit}"

rows = {}
for label in ('fixed', 'scheduler'):
    ss = samples(label)
    ts = step_time(ss)
    r = {'step': ts}
    if ts is not None:
        ups = []
        for line in open(f"{run}/{label}.decisions"):
            d = json.loads(line)['decision']
            if d.get('action') == 'up' or (d.get('to', 0) > d.get('from', 0) and 'action' not in d):
                ups.append(d['ts_ms'] / 1000.0)
        after = [u - ts for u in ups if u >= ts - 2.0]
        r['first_up'] = min(after) if after else None
        r['to_live'] = {}
        for k in range(2, maxw + 1):
            hit = [t - ts for (t, _, _, live) in ss if t >= ts and live >= k]
            r['to_live'][k] = hit[0] if hit else None
        post = [(t, lag) for (t, _, lag, _) in ss if t >= ts]
        peak_t, peak = max(post, key=lambda x: x[1]) if post else (None, None)
        r['peak'] = (peak, peak_t - ts if peak_t else None)
        # Drained: back under one second of the low phase's arrivals (the
        # committed offsets trail by about that when all is well).
        thresh = max(50.0, low)
        dr = [t - ts for (t, lag) in post if peak_t is not None and t >= peak_t and lag <= thresh]
        r['drain'] = dr[0] if dr else None
        r['thresh'] = thresh
        r['max_live'] = max(live for (_, _, _, live) in ss)
    r['lat'] = phase_lat(label)
    rows[label] = r

print(f"\nstep load on Apache Kafka, {partitions} partitions; "
      f"profile {profile} (jobs/s:seconds); step at t = {s1:.0f} s, high phase {s2:.0f} s")
print("| run | first scale-up after step | " +
      " | ".join(f"{k} live after step" for k in range(2, maxw + 1)) +
      " | peak backlog (at) | drained after step | most live |")
print("|---|---|" + "---|" * (maxw - 1) + "---|---|---|")
for label, r in rows.items():
    if r['step'] is None:
        print(f"| {label} | step not found in the samples |"); continue
    tl = " | ".join(fmt(r['to_live'][k]) for k in range(2, maxw + 1))
    pk, pt = r['peak']
    drain = fmt(r['drain'])
    if r['drain'] is not None and r['drain'] > s2:
        drain += f" ({r['drain'] - s2:.1f} s after the step ended)"
    print(f"| {label} | {fmt(r['first_up'])} | {tl} | {pk} jobs ({fmt(pt)}) | {drain} | {r['max_live']} |")
print("\nlatency from the scheduled send time, per phase (ms)")
print("| run | phase | rate/s | done/s | p50 | p99 | max |")
print("|---|---|---|---|---|---|---|")
for label, r in rows.items():
    for ph, (done, p50, p99, mx) in r['lat'].items():
        rate = phases[int(ph) - 1][0] if ph.isdigit() else '-'
        print(f"| {label} | {ph} | {rate:.0f} | {done:.0f} | {p50:.1f} | {p99:.1f} | {mx:.1f} |"
              if ph.isdigit() else
              f"| {label} | {ph} | - | {done:.0f} | {p50:.1f} | {p99:.1f} | {mx:.1f} |")
ts = rows['scheduler']['step']
if ts is not None:
    print("\nscheduler decisions, seconds after the step")
    for line in reversed(open(f"{run}/scheduler.decisions").read().splitlines()):
        d = json.loads(line)['decision']
        what = (f"{d.get('action', '?')} {d.get('from')}->{d.get('to')}" if 'from' in d
                else f"{d.get('action', '?')} {d.get('worker', '')}")
        print(f"  {d['ts_ms'] / 1000.0 - ts:+7.1f} s  {what}: {d.get('reason', '')}")
for label in rows:
    print(f"RESULT bench=scheduler_step run={label} profile={profile} "
          f"first_up_s={rows[label].get('first_up')} "
          f"to_live_s={json.dumps(rows[label].get('to_live'))} "
          f"peak_lag={rows[label].get('peak', (None,))[0]} drain_s={rows[label].get('drain')} "
          + " ".join(f"p{q}_ms_phase{ph}={v:.1f}" for ph, t in rows[label]['lat'].items()
                     for q, v in (('50', t[1]), ('99', t[2]))))
EOF
grep -h "FAILED\|timed out\|failed=[1-9]" "$RUN"/*.e2e 2>/dev/null | head -5 || true
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc --all) CPUs, shared: figures are provisional)"
