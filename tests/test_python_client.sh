#!/usr/bin/env bash
# test_python_client.sh - the Python client (examples/python/aas_client.py)
# against a real C worker, both directions:
#   (a) Python submits, the C worker answers: SUCCEEDED, QUEUED recorded by
#       the client, the done token pushed back with its TTL, and the same
#       prediction and outputs as aas-producer gets for the same input;
#   (b) the C client submits (--id fixed-id), Python reads the result from
#       Redis: the same bytes as redis holds, the same decoded fields as the
#       C CLI's --json.
#   (c) signed jobs (docs/sharing.md#access), on a second worker run with
#       -X worker.auth=keys: the client's aas.auth header equals the C
#       client's for the test vector of tests/test_apikey.c; a job signed
#       with a registered key (--key-file) and its tenant SUCCEEDS; the same
#       key (AAS_CLIENT_KEY) claiming another tenant, and an unsigned job,
#       are dead-lettered (kcat on aas.jobs.dlq) and stay QUEUED; a signed
#       job without a tenant is refused before it is published; the key is
#       in no log or output.
# Plus: selftest (fingerprints, worked example, signing vector), timeout ->
# exit 4 (BLPOP and --poll), unknown fingerprint and bad magic -> exit 1 with
# a clear message.
#
# Usage: tests/test_python_client.sh BUILD_DIR [dev|real]
#   dev  (default) build/tools/aas-devbroker
#   real tools/kafka-local (Apache Kafka 4.1.1, 1 node; needs Java + jars);
#        "kafka" is accepted too, as AAS_TEST_BROKER says for the C tests
# Or set AAS_TEST_BROKER=dev|real|kafka.  Needs bash 5, redis-server,
# redis-cli, /usr/bin/python3 with python3-avro, python3-confluent-kafka,
# python3-redis, and kcat for (c).  Exit 0 only if every check passed;
# 77 if a needed Python module is missing (ctest SKIP_RETURN_CODE).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
KIND=${2:-${AAS_TEST_BROKER:-dev}}
PY=/usr/bin/python3
CLIENT=$ROOT/examples/python/aas_client.py
PRODUCER=$BUILD/producer/aas-producer
WORKER=$BUILD/worker/aas-worker
TIMEOUT=60

case "$KIND" in dev) ;; real|kafka) KIND=real ;; *) echo "usage: $0 BUILD_DIR [dev|real]" >&2; exit 2 ;; esac
for f in "$PRODUCER" "$WORKER"; do
  [ -x "$f" ] || { echo "FAIL: $f not built" >&2; exit 1; }
done
for m in avro confluent_kafka redis; do
  "$PY" -c "import $m" 2>/dev/null || {
    echo "SKIP: $PY cannot import $m (apt-get install -y python3-avro python3-confluent-kafka python3-redis)" >&2
    exit 77; }
done

now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
since() { local d=$(( $(now_us) - $1 )); printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000)); }
T0=$(now_us)
RUN=$(mktemp -d /tmp/aas-pyclient.XXXXXX)
WORKER_PID='' AUTH_PID='' BROKER_PID='' REDIS_PID='' KAFKA_DIR='' WATCHDOG_PID=''
FAILS=0
CHECKS=0

log() { printf '[%7ss] %s\n' "$(since "$T0")" "$*"; }
pass() { CHECKS=$((CHECKS + 1)); log "ok   $*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); log "FAIL $*"; }

stop_pid() {  # pid, grace in 0.1 s steps; returns its exit status
  local pid=$1 n=${2:-100}
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
    local name pid
    for name in worker:$WORKER_PID auth-worker:$AUTH_PID broker:$BROKER_PID redis-server:$REDIS_PID; do
      pid=${name#*:}
      [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && echo "note: ${name%%:*} (pid $pid) had exited early"
    done
    for f in worker.log worker-auth.log devbroker.log redis.log; do
      [ -s "$RUN/$f" ] && { echo "---- tail of $f"; tail -n 30 "$RUN/$f"; }
    done
    [ -n "$KAFKA_DIR" ] && [ -s "$KAFKA_DIR/node-1/server.log" ] &&
      { echo "---- tail of kafka server.log"; tail -n 20 "$KAFKA_DIR/node-1/server.log"; }
  fi
  [ -n "$WATCHDOG_PID" ] && kill "$WATCHDOG_PID" 2>/dev/null
  # Reverse start order: the worker leaves the group while the broker
  # and Redis are still up.
  if [ -n "$WORKER_PID" ]; then
    stop_pid "$WORKER_PID" 300
    WORKER_PID=''
  fi
  if [ -n "$AUTH_PID" ]; then
    stop_pid "$AUTH_PID" 300
    AUTH_PID=''
  fi
  stop_pid "$BROKER_PID" 100
  if [ -n "$KAFKA_DIR" ]; then
    "$ROOT/tools/kafka-local" stop --dir "$KAFKA_DIR" --rm >/dev/null 2>&1 || true
  fi
  stop_pid "$REDIS_PID" 50
  rm -rf "$RUN"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die() { fail "$*"; exit 1; }

# If this script is SIGKILLed (e.g. a ctest timeout), the trap never runs:
# a watchdog then stops what it started (kafka-local has its own --owner).
: >"$RUN/pids"
( trap '' INT
  while kill -0 $$ 2>/dev/null; do sleep 1; done
  while read -r p; do kill -TERM "$p" 2>/dev/null; done <"$RUN/pids"
  sleep 2
  while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$RUN/pids"
  rm -rf "$RUN" ) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  return 1
}

# ---- servers --------------------------------------------------------------

"$PY" "$CLIENT" selftest >"$RUN/selftest.out" 2>&1 \
  && pass "selftest: CRC-64-AVRO vectors and the worked example of docs/wire-format.md" \
  || { cat "$RUN/selftest.out"; fail "selftest"; }

REDIS_PORT=$(free_port) || die "no free port for redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --dir "$RUN" --daemonize no >"$RUN/redis.log" 2>&1 &
REDIS_PID=$!
echo "$REDIS_PID" >>"$RUN/pids"
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not answer on $REDIS_PORT"
log "redis-server on 127.0.0.1:$REDIS_PORT"
R() { redis-cli -p "$REDIS_PORT" "$@"; }

if [ "$KIND" = dev ]; then
  "$BUILD/tools/aas-devbroker" --partitions 4 --bootstrap-file "$RUN/bootstrap" \
    >"$RUN/devbroker.out" 2>"$RUN/devbroker.log" &
  BROKER_PID=$!
  echo "$BROKER_PID" >>"$RUN/pids"
  for _ in $(seq 200); do [ -s "$RUN/bootstrap" ] && break; sleep 0.1; done
  [ -s "$RUN/bootstrap" ] || die "aas-devbroker wrote no bootstrap file"
  BOOTSTRAP=$(cat "$RUN/bootstrap")
else
  KAFKA_DIR=$RUN/kafka
  "$ROOT/tools/kafka-local" start --dir "$KAFKA_DIR" --owner $$ >"$RUN/kafka-start.out" 2>&1 \
    || { cat "$RUN/kafka-start.out"; die "tools/kafka-local start"; }
  BOOTSTRAP=$(cat "$KAFKA_DIR/bootstrap")
  for t in aas.jobs.infer aas.jobs.infer.high aas.jobs.infer.low aas.jobs.dlq aas.jobs.train; do
    "$ROOT/tools/kafka-local" create-topic --dir "$KAFKA_DIR" "$t" --partitions 4 \
      --replication 1 >"$RUN/topic.out" 2>&1 || { cat "$RUN/topic.out"; die "create-topic $t"; }
  done
fi
log "$KIND broker: bootstrap.servers=$BOOTSTRAP"

export AAS_REDIS_PORT=$REDIS_PORT AAS_KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP AAS_LOG_LEVEL=info
# Jobs are signed only where (c) says so.
unset AAS_CLIENT_KEY AAS_CLIENT_KEY_FILE AAS_CLIENT_TENANT
OMP_NUM_THREADS=1 "$WORKER" -X worker.id=py-test >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
echo "$WORKER_PID" >>"$RUN/pids"

"$PRODUCER" model register digits "$ROOT/data/digits-mlp.aasm" >"$RUN/register.out" 2>&1 \
  || { cat "$RUN/register.out"; die "aas-producer model register"; }
log "model registered: $(cat "$RUN/register.out")"

PYC=("$PY" "$CLIENT" --bootstrap "$BOOTSTRAP" --redis-port "$REDIS_PORT")
ROW1=$(zcat "$ROOT/data/digits.csv.gz" | sed -n 1p | cut -d, -f1-64)
LABEL1=$(zcat "$ROOT/data/digits.csv.gz" | sed -n 1p | cut -d, -f65)
ROW2=$(zcat "$ROOT/data/digits.csv.gz" | sed -n 2p | cut -d, -f1-64)

# jsoncmp A B KEYS...: the two JSON objects agree on KEYS (all of A's if none).
jsoncmp() {
  "$PY" - "$@" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
keys = sys.argv[3:] or sorted(a)
bad = [k for k in keys if a.get(k, "<absent>") != b.get(k, "<absent>")]
for k in bad:
    print("  %s: %s\n  %*s  %s" % (k, json.dumps(a.get(k, "<absent>")), len(k), "",
                                  json.dumps(b.get(k, "<absent>"))), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
jget() { "$PY" -c 'import json,sys; v=json.loads(sys.argv[1]); exec("for k in sys.argv[2:]: v=v[int(k) if isinstance(v, list) else k]"); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$@"; }

# ---- (a) Python submits, the C worker answers ------------------------------

log "(a) Python submit --wait (includes the worker's first group join)"
s=$(now_us)
PYOUT=$("${PYC[@]}" submit --model digits --values "$ROW1" --id py-job-1 --wait \
        --timeout "$TIMEOUT" 2>"$RUN/py-a.err")
rc=$?
log "    took $(since "$s") s, exit $rc"
[ $rc -eq 0 ] && pass "python submit --wait exit 0" \
  || { cat "$RUN/py-a.err"; die "python submit --wait exit $rc: $PYOUT"; }
[ "$(jget "$PYOUT" status)" = SUCCEEDED ] && pass "python job status SUCCEEDED" \
  || fail "python job status: $PYOUT"
[ "$(jget "$PYOUT" worker)" = py-test ] && pass "answered by the C worker py-test" \
  || fail "worker: $(jget "$PYOUT" worker)"
[ "$(jget "$PYOUT" id)" = py-job-1 ] || fail "id: $(jget "$PYOUT" id)"

COUT=$("$PRODUCER" submit --model digits --values "$ROW1" --wait --json \
       --timeout "$TIMEOUT" 2>"$RUN/c-a.err") || { cat "$RUN/c-a.err"; fail "aas-producer submit: $COUT"; }
PL=$(jget "$PYOUT" predictions 0 label) CL=$(jget "$COUT" predictions 0 label)
[ -n "$PL" ] && [ "$PL" = "$CL" ] && pass "predicted label $PL equals aas-producer's ($CL; true label $LABEL1)" \
  || fail "predicted label python=$PL C=$CL"
jsoncmp "$PYOUT" "$COUT" status model version error predictions outputs worker \
  && pass "python job's outputs and probabilities equal aas-producer's for the same input" \
  || fail "python job's result differs from aas-producer's"

H=$(R HGETALL 'aas:job:{py-job-1}')
hget() { R HGET 'aas:job:{py-job-1}' "$1"; }
[ -n "$(hget queued_ms)" ] && [ -n "$(hget submit_ms)" ] \
  && pass "QUEUED recorded by the python client (queued_ms, submit_ms set)" \
  || fail "no QUEUED record: $H"
[ "$(hget result_writes)" = 1 ] && [ "$(hget attempts)" = 1 ] \
  && pass "result_writes=1 attempts=1" || fail "hash: $H"
[ "$(R LLEN 'aas:done:{py-job-1}')" = 1 ] && [ "$(R TTL 'aas:done:{py-job-1}')" -gt 0 ] \
  && pass "done token pushed back with a TTL ($(R TTL 'aas:done:{py-job-1}') s)" \
  || fail "done list after wait: LLEN=$(R LLEN 'aas:done:{py-job-1}') TTL=$(R TTL 'aas:done:{py-job-1}')"
[ "$(R TTL 'aas:job:{py-job-1}')" -gt 0 ] || fail "job hash has no TTL"

# The C client reads the python-submitted job, and python reads it again by
# polling: all three agree.
CW=$("$PRODUCER" wait --json --timeout 10 py-job-1 2>&1) || fail "aas-producer wait py-job-1: $CW"
jsoncmp "$CW" "$PYOUT" && pass "aas-producer wait reads the python job's result identically" \
  || fail "aas-producer wait py-job-1 differs"
PP=$("${PYC[@]}" wait py-job-1 --poll --timeout 10 2>&1) && jsoncmp "$PP" "$PYOUT" \
  && pass "python wait --poll gives the same result" || fail "python wait --poll: $PP"
PS=$("${PYC[@]}" status py-job-1 2>&1) && [ "$(jget "$PS" status)" = SUCCEEDED ] \
  && pass "python status reads the job hash" || fail "python status: $PS"

# ---- (b) the C client submits, python reads ------------------------------

log "(b) aas-producer submit --id fixed-id --wait --json"
COUT2=$("$PRODUCER" submit --model digits --values "$ROW2" --id fixed-id --wait --json \
        --timeout "$TIMEOUT" 2>"$RUN/c-b.err")
rc=$?
[ $rc -eq 0 ] && pass "aas-producer submit --id fixed-id exit 0" \
  || { cat "$RUN/c-b.err"; die "aas-producer submit exit $rc: $COUT2"; }
[ "$(jget "$COUT2" status)" = SUCCEEDED ] || fail "C job status: $COUT2"

KEY='aas:result:{fixed-id}'
# Hex of the value, computed inside Redis and from redis-cli's raw bytes.
HEX_LUA=$(R EVAL "return (redis.call('GET', KEYS[1]):gsub('.', function(c) return string.format('%02x', c:byte()) end))" 1 "$KEY")
HEX_CLI=$(R --raw GET "$KEY" | head -c -1 | od -An -v -tx1 | tr -d ' \n')
LEN=$(R STRLEN "$KEY")
HEX_PY=$("${PYC[@]}" decode-result fixed-id --raw-hex 2>"$RUN/py-b.err") \
  || { cat "$RUN/py-b.err"; fail "python decode-result --raw-hex"; }
[ "$HEX_LUA" = "$HEX_CLI" ] || fail "redis-cli --raw and Lua hex dumps differ"
[ $((${#HEX_PY} / 2)) = "$LEN" ] && [ "$HEX_PY" = "$HEX_LUA" ] \
  && pass "python reads the same $LEN result bytes as redis-cli (byte for byte)" \
  || fail "result bytes differ: redis ${HEX_LUA:0:40}... ($LEN bytes) python ${HEX_PY:0:40}..."
[ "${HEX_PY:0:20}" = c30155a92440ad5dbd58 ] \
  && pass "result header c301 + fingerprint 58bd5dad4024a955 (little-endian)" \
  || fail "result header ${HEX_PY:0:20}"

PYD=$("${PYC[@]}" decode-result fixed-id 2>"$RUN/py-b2.err") \
  || { cat "$RUN/py-b2.err"; fail "python decode-result"; }
jsoncmp "$COUT2" "$PYD" && pass "python's decoded fields equal the C CLI's JSON (all $(
  "$PY" -c 'import json,sys; print(len(json.loads(sys.argv[1])))' "$COUT2") keys)" \
  || fail "decoded result differs from the C CLI's JSON"
PYW=$("${PYC[@]}" wait fixed-id --timeout 10 2>&1) && jsoncmp "$COUT2" "$PYW" \
  && pass "python wait on the C job gives the same result" || fail "python wait fixed-id: $PYW"

# ---- for (c): a key, and a worker with worker.auth = keys -------------------
# Started now, so that its group join overlaps the error checks below.  Its
# own consumer group reads the topics from the start: it dead-letters the
# unsigned jobs of (a) and (b) without touching them (checked in (c)), and
# it is the only worker left once py-test stops.

command -v kcat >/dev/null || die "kcat not installed (apt-get install -y kcat): needed for (c)"
ACME=$("$PRODUCER" apikey add acme 2>"$RUN/apikey.err")
[[ "$ACME" =~ ^aas_ ]] && pass "aas-producer apikey add acme printed a key" \
  || die "apikey add acme: $(cat "$RUN/apikey.err")"
KEYFILE=$RUN/acme.key
(umask 077; printf '%s\n' "$ACME" >"$KEYFILE")
OMP_NUM_THREADS=1 "$WORKER" -X worker.id=py-auth -X worker.group=aas-py-auth \
  -X worker.auth=keys >"$RUN/worker-auth.log" 2>&1 &
AUTH_PID=$!
echo "$AUTH_PID" >>"$RUN/pids"

# ---- errors -----------------------------------------------------------------

s=$(now_us)
"${PYC[@]}" wait no-such-job --timeout 1 >/dev/null 2>"$RUN/t.err"; rc=$?
[ $rc -eq 4 ] && pass "wait on an unknown job: exit 4 after $(since "$s") s ($(cat "$RUN/t.err"))" \
  || fail "wait timeout exit $rc (want 4): $(cat "$RUN/t.err")"
"${PYC[@]}" wait no-such-job --poll --timeout 1 >/dev/null 2>"$RUN/t.err"; rc=$?
[ $rc -eq 4 ] && pass "wait --poll on an unknown job: exit 4" || fail "wait --poll exit $rc (want 4)"

printf '\xc3\x01\x01\x02\x03\x04\x05\x06\x07\x08\x00' | R -x SET 'aas:result:{bogus-fp}' >/dev/null
"${PYC[@]}" decode-result bogus-fp >/dev/null 2>"$RUN/e.err"; rc=$?
[ $rc -eq 1 ] && grep -q 'unknown schema fingerprint 0807060504030201' "$RUN/e.err" \
  && pass "unknown fingerprint: exit 1 ($(cat "$RUN/e.err"))" \
  || fail "unknown fingerprint: exit $rc: $(cat "$RUN/e.err")"
printf '\x00\x00\x5b\x00\x00\x00\x00\x00\x00\x00\x00' | R -x SET 'aas:result:{bogus-magic}' >/dev/null
"${PYC[@]}" decode-result bogus-magic >/dev/null 2>"$RUN/e.err"; rc=$?
[ $rc -eq 1 ] && grep -q 'bad magic' "$RUN/e.err" && pass "bad magic: exit 1" \
  || fail "bad magic: exit $rc: $(cat "$RUN/e.err")"
"${PYC[@]}" submit --model digits --values 1,2 --id 'bad:id' >/dev/null 2>"$RUN/e.err"; rc=$?
[ $rc -eq 2 ] && pass "invalid job id: exit 2" || fail "invalid id: exit $rc"

# ---- the worker stops cleanly ---------------------------------------------
stop_pid "$WORKER_PID" 300; wrc=$?; WORKER_PID=''
[ $wrc -eq 0 ] && pass "worker exits 0 on SIGTERM" || fail "worker exit status $wrc"

# ---- (c) signed jobs: a worker with worker.auth = keys ----------------------

log "(c) signed jobs (docs/sharing.md#access)"
# The C client's header for these bytes (tests/test_apikey.c,
# jobsig_matches_the_python_vector), computed by the Python client.
VEC=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); from aas_client import JobSigner
print(JobSigner("aas_test-key-0123456789").sign(b"an aas job"))' "$ROOT/examples/python" 2>&1)
[ "$VEC" = v1:39831e9662c503a5:1c7bcc5ab6971ce04962216fb9847c25381eb97b21296b2990bb8ba35e262080 ] \
  && pass "python's aas.auth for b'an aas job' equals the C client's (test_apikey vector)" \
  || fail "python's aas.auth for the test vector: $VEC"

# Refused before publishing: signed, no tenant.
AAS_CLIENT_KEY=$ACME "${PYC[@]}" submit --model digits --values "$ROW1" --id py-sig-none \
  >"$RUN/sig-none.out" 2>"$RUN/sig-none.err"; rc=$?
[ $rc -eq 1 ] && [ "$(R EXISTS 'aas:job:{py-sig-none}')" = 0 ] \
  && grep -q "job py-sig-none: a signed job needs a tenant: set the tenant to the key's tenant" "$RUN/sig-none.err" \
  && pass "a signed job without a tenant is refused before publishing: exit 1 ($(cat "$RUN/sig-none.err"))" \
  || fail "signed job without a tenant: exit $rc, $(cat "$RUN/sig-none.err"), hash exists=$(R EXISTS 'aas:job:{py-sig-none}')"
# Published, but a worker with worker.auth = keys may not run them.
AAS_CLIENT_KEY=$ACME "${PYC[@]}" submit --model digits --values "$ROW1" --id py-sig-other \
  --tenant globex >/dev/null 2>"$RUN/sig-other.err" \
  || fail "py-sig-other not published: $(cat "$RUN/sig-other.err")"
"${PYC[@]}" submit --model digits --values "$ROW1" --id py-unsigned --tenant acme \
  >/dev/null 2>"$RUN/unsigned.err" || fail "py-unsigned not published: $(cat "$RUN/unsigned.err")"

s=$(now_us)
PYS=$("${PYC[@]}" --key-file "$KEYFILE" submit --model digits --values "$ROW1" --id py-sig-ok \
      --tenant acme --wait --timeout "$TIMEOUT" 2>"$RUN/sig-ok.err"); rc=$?
log "    signed submit --wait took $(since "$s") s, exit $rc"
[ $rc -eq 0 ] && [ "$(jget "$PYS" status)" = SUCCEEDED ] && [ "$(jget "$PYS" worker)" = py-auth ] \
  && pass "job signed with acme's key (--key-file), tenant acme: SUCCEEDED on py-auth" \
  || fail "signed job: exit $rc $PYS $(cat "$RUN/sig-ok.err")"
jsoncmp "$PYS" "$PYOUT" predictions outputs \
  && pass "the signed job's outputs equal the unsigned job's (same input)" \
  || fail "the signed job's result differs from the unsigned one's"

# On the wire: the header the worker accepted, with acme's key id.
kcat -b "$BOOTSTRAP" -C -t aas.jobs.infer -o beginning -e -q -f '%k %h\n' >"$RUN/jobs.txt" 2>/dev/null
KEYID=$(AAS_CLIENT_KEY=$ACME "$PY" -c 'import os, sys; sys.path.insert(0, sys.argv[1])
from aas_client import JobSigner; print(JobSigner(os.environ["AAS_CLIENT_KEY"]).key_id)' \
  "$ROOT/examples/python")
grep '^py-sig-ok ' "$RUN/jobs.txt" | grep -qE "(^py-sig-ok |,)aas\.auth=v1:$KEYID:[0-9a-f]{64}(,|$)" \
  && pass "py-sig-ok carries aas.auth=v1:$KEYID:<mac> on the topic" \
  || fail "py-sig-ok on the topic: '$(grep '^py-sig-ok ' "$RUN/jobs.txt")'"
grep '^py-unsigned ' "$RUN/jobs.txt" | grep -q 'aas\.auth' && fail "py-unsigned carries aas.auth"
grep -q '^py-sig-none ' "$RUN/jobs.txt" && fail "py-sig-none was published" \
  || pass "py-sig-none is not on the topic"

# The other tenant's name and the unsigned job: dead-lettered with their
# reason; nothing written under their ids (QUEUED, as the client left them).
for _ in $(seq 80); do
  kcat -b "$BOOTSTRAP" -C -t aas.jobs.dlq -o beginning -e -q -f '%k %h\n' >"$RUN/dlq.txt" 2>/dev/null
  [ "$(grep -cE '^py-(sig-other|unsigned|job-1) .*not authenticated' "$RUN/dlq.txt")" -ge 3 ] && break
  sleep 0.25
done
declare -A WANT=([py-sig-other]="belongs to tenant acme, the job claims tenant globex"
                 [py-unsigned]="unsigned job")
for id in py-sig-other py-unsigned; do
  grep "^$id " "$RUN/dlq.txt" | grep -q "not authenticated: .*${WANT[$id]}" \
    && pass "$id dead-lettered: ${WANT[$id]}" \
    || fail "$id: dead letter: '$(grep "^$id " "$RUN/dlq.txt")'"
  st=$(R HGET "aas:job:{$id}" status) wk=$(R HGET "aas:job:{$id}" worker)
  [ "$st" = QUEUED ] && [ -z "$wk" ] && [ "$(R EXISTS "aas:result:{$id}")" = 0 ] \
    && pass "$id did not run: QUEUED, no worker, no result" \
    || fail "$id: status=$st worker=$wk result=$(R EXISTS "aas:result:{$id}")"
done
grep '^py-job-1 ' "$RUN/dlq.txt" | grep -q "not authenticated: .*unsigned job" \
  && [ "$(R HGET 'aas:job:{py-job-1}' status)" = SUCCEEDED ] \
  && [ "$(R HGET 'aas:job:{py-job-1}' result_writes)" = 1 ] \
  && pass "(a)'s unsigned py-job-1 dead-lettered by py-auth; its result (by py-test) untouched" \
  || fail "py-job-1 for py-auth: '$(grep '^py-job-1 ' "$RUN/dlq.txt")' $(R HGETALL 'aas:job:{py-job-1}' | tr '\n' ' ')"

stop_pid "$AUTH_PID" 300; wrc=$?; AUTH_PID=''
[ $wrc -eq 0 ] && pass "the worker.auth=keys worker exits 0 on SIGTERM" \
  || fail "worker.auth=keys worker exit status $wrc"
LEAKS=$(grep -rlF -e "$ACME" --exclude=acme.key "$RUN")
if [ -n "$LEAKS" ]; then
  fail "acme's API key is in: $LEAKS"
else
  pass "acme's API key is in no log or output"
fi

log "$CHECKS checks, $FAILS failed ($KIND broker)"
[ "$FAILS" -eq 0 ]
