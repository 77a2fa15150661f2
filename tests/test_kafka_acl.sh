#!/usr/bin/env bash
# test_kafka_acl.sh - Kafka users and topic ACLs of the aas layout on real
# Kafka (issue 16, "Access"): tools/kafka-local start --sasl (SASL_PLAINTEXT,
# mechanism PLAIN, StandardAuthorizer, no ACL = denied) with the users
# worker, acme, globex and scheduler, the aas topics created and the ACLs
# granted as admin (docs/kafka-local.md, "SASL and ACLs"), a private
# redis-server; every program authenticates through a config file whose
# password is kafka.sasl.password.file (mode 600):
#   - a job globex submits before any worker runs is seen by aas-scheduler
#     status as user scheduler (lag 1 and the oldest job's age); a worker
#     as user worker then runs it and acme's job: both SUCCEEDED;
#   - an undecodable message acme publishes is dead-lettered by the worker
#     (user worker writes aas.jobs.dlq);
#   - acme cannot read a job topic (kcat -C: Topic authorization failed)
#     nor write the dead-letter topic (kcat -P: refused);
#   - a worker with a wrong password: /readyz 503 naming the refused login;
#   - a wrong password: aas-producer submit fails within 15 s (default
#     client.timeout.ms, 30 s: it waited about 66 s for "Message timed
#     out" before), exit 1, its error naming authentication and
#     librdkafka's reason; the job's id is not held (the same id is then
#     submitted with the right password); no credentials at all
#     (PLAINTEXT to the SASL port): kcat is refused, and aas-producer
#     fails as fast saying the broker may require authentication;
#   - no password is on any process's command line (ps) or in any log.
# Usage: tests/test_kafka_acl.sh BUILD_DIR   (needs Java 17, kcat,
# redis-server; kafka-local fetches and caches the Kafka jars)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker S=$BUILD/scheduler/aas-scheduler
K=$ROOT/tools/kafka-local
umask 077   # every file here holds or names a password: mode 600
RUN=$(mktemp -d /tmp/aas-acl.XXXXXX)
KD=$RUN/kafka
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
# The worker first, then the broker, then Redis (cli_lib's cleanup).
acl_cleanup() {
  stop_proc "$WORKER_PID"; WORKER_PID=''
  [ -f "$KD/cluster.conf" ] && "$K" stop --dir "$KD" >/dev/null 2>&1
  cleanup
}
trap acl_cleanup EXIT
T0=$SECONDS
for x in "$P" "$W" "$S"; do [ -x "$x" ] || { echo "FAIL $x not built"; exit 1; }; done
command -v kcat >/dev/null || { echo "FAIL kcat not installed (apt-get install -y kcat)"; exit 1; }

# Passwords: random, in files only.  Builtins (read, printf) move them
# around, so no process ever has one in its argv.
USERS="worker acme globex scheduler"
for u in $USERS wrong; do head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$RUN/$u.pw"; done
: >"$RUN/users"
for u in $USERS; do read -r pw <"$RUN/$u.pw"; printf '%s %s\n' "$u" "$pw" >>"$RUN/users"; done
pw=''

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$RUN" \
  >"$RUN/redis.log" 2>&1 & REDIS_PID=$!
"$K" start --sasl "$RUN/users" --dir "$KD" --owner $$ >"$RUN/kafka-start.out" 2>&1 \
  || { cat "$RUN/kafka-start.out"; echo "FAIL tools/kafka-local start --sasl"; exit 1; }
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
BS=$(cat "$KD/bootstrap")
grep -q '^security.protocol=SASL_PLAINTEXT sasl.mechanism=PLAIN ' "$RUN/kafka-start.out" \
  && ok "kafka-local start --sasl: the listener is SASL_PLAINTEXT/PLAIN ($BS)" \
  || bad "kafka-local start --sasl printed no SASL line: $(cat "$RUN/kafka-start.out")"
modes=$(stat -c %a "$KD/admin.properties" "$KD/admin-kcat.conf" "$KD/node-1/server.properties" | sort -u)
[ "$modes" = 600 ] && ok "admin.properties, admin-kcat.conf, server.properties are mode 600" \
  || bad "modes of the files with passwords: $modes"

# The topics aas uses (common/conf.c, common/lane.h), as admin.
JOBS="aas.jobs.infer aas.jobs.infer.high aas.jobs.infer.low aas.jobs.train"
pids=()
for t in $JOBS aas.jobs.dlq; do
  "$K" create-topic --dir "$KD" "$t" --partitions 2 >"$RUN/topic-$t.out" 2>&1 & pids+=($!)
done
n=0; for p in "${pids[@]}"; do wait "$p" && n=$((n + 1)); done
[ "$n" = 5 ] && ok "5 topics created as admin" || bad "topics: $(cat "$RUN"/topic-*.out)"

# The aas layout of ACLs (docs/kafka-local.md, "SASL and ACLs").
JT=(); for t in $JOBS; do JT+=(--topic "$t"); done
acl() { "$K" acl --dir "$KD" --add "$@" >>"$RUN/acl.out" 2>&1; }
pids=()
# Tenants publish jobs (WRITE; the idempotent producer needs no more since
# Kafka 3.0), see the topics (DESCRIBE) and read their max.message.bytes
# (DESCRIBE_CONFIGS; without it the client falls back to its own limits).
acl --allow-principal User:acme --allow-principal User:globex --operation Write \
  --operation Describe --operation DescribeConfigs "${JT[@]}" & pids+=($!)
# Workers consume the job topics in their group and dead-letter.
acl --allow-principal User:worker --operation Read --operation Describe "${JT[@]}" & pids+=($!)
acl --allow-principal User:worker --operation Read --group aas-workers & pids+=($!)
acl --allow-principal User:worker --operation Write --operation Describe --topic aas.jobs.dlq & pids+=($!)
# The scheduler reads the group's committed offsets and the watermarks
# (DESCRIBE) and the oldest queued job's timestamp (READ; without it the
# age is unknown and the lag rule alone decides).
acl --allow-principal User:scheduler --operation Describe --operation Read "${JT[@]}" & pids+=($!)
acl --allow-principal User:scheduler --operation Describe --group aas-workers & pids+=($!)
n=0; for p in "${pids[@]}"; do wait "$p" && n=$((n + 1)); done
nacl=$("$K" acl --dir "$KD" --list 2>&1 | grep -c 'principal=User:')
[ "$n" = 6 ] && [ "$nacl" = 44 ] && ok "the aas ACLs granted as admin ($nacl entries)" \
  || bad "acl: $n of 6 calls, $nacl entries: $(tail -5 "$RUN/acl.out")"

# Each program's credentials: a config file naming a password file.
for u in $USERS wrong; do
  name=$u; [ "$u" = wrong ] && name=acme
  printf '%s\n' "kafka.bootstrap.servers = $BS" "kafka.security.protocol = SASL_PLAINTEXT" \
    "kafka.sasl.mechanisms = PLAIN" "kafka.sasl.username = $name" \
    "kafka.sasl.password.file = $RUN/$u.pw" "redis.port = $RPORT" >"$RUN/$u.conf"
done
# kcat takes no password file: its config holds the password itself.
read -r pw <"$RUN/acme.pw"
printf '%s\n' security.protocol=SASL_PLAINTEXT sasl.mechanisms=PLAIN sasl.username=acme \
  "sasl.password=$pw" >"$RUN/acme.kcat"
pw=''

expect 0 "^digits 1$" -- "$P" -c "$RUN/acme.conf" model register digits "$ROOT/data/digits-mlp.aasm"
ROW=$(sed -n 2p "$ROOT/data/digits-test.csv" | cut -d, -f1-64)

# Before any worker: globex's job waits, and the scheduler sees it.
expect 0 "^acl-globex-1$" -- "$P" -c "$RUN/globex.conf" submit --model digits --values "$ROW" \
  --tenant globex --id acl-globex-1
# (The age needs a fetch within scheduler.age.timeout.ms: allowed 5 s, and
# 3 tries, for a loaded machine.)
for _ in 1 2 3; do
  "$S" -c "$RUN/scheduler.conf" -X scheduler.age.timeout.ms=5000 status --sample-ms 0 \
    >"$RUN/sched.out" 2>"$RUN/sched.err"; rc=$?
  [ "$rc" = 0 ] && grep -qE '^aas\.jobs\.infer +total +1 +[0-9.]+s ' "$RUN/sched.out" && break
  sleep 1
done
[ "$rc" = 0 ] && grep -qE '^aas\.jobs\.infer +total +1 +[0-9.]+s ' "$RUN/sched.out" \
  && ok "scheduler (user scheduler) reads the lag and the oldest job's age: $(grep -E '^aas\.jobs\.infer +total' "$RUN/sched.out" | tr -s ' ')" \
  || bad "scheduler status exit $rc: $(head -4 "$RUN/sched.out") $(tail -3 "$RUN/sched.err")"

# (1) A worker as user worker; acme's job through the ACL'd broker.
"$W" -c "$RUN/worker.conf" -X worker.id=acl-w >"$RUN/worker.log" 2>&1 & WORKER_PID=$!
expect 0 "^acl-acme-1 SUCCEEDED" -- "$P" -c "$RUN/acme.conf" submit --model digits --values "$ROW" \
  --tenant acme --id acl-acme-1 --wait --timeout 60
expect 0 "^acl-globex-1 SUCCEEDED" -- "$P" -c "$RUN/acme.conf" wait --timeout 60 acl-globex-1
expect 0 "^acl-acme-1 SUCCEEDED .*tenant=acme" -- "$P" -c "$RUN/acme.conf" status acl-acme-1

# The worker dead-letters (user worker writes aas.jobs.dlq): an
# undecodable message acme may publish to a job topic.
out=$(echo not-an-avro-job | timeout 30 kcat -F "$RUN/acme.kcat" -b "$BS" -P -t aas.jobs.infer \
  -k acl-junk-1 2>&1) || bad "acme could not publish to aas.jobs.infer: $out"
dlq=''
for _ in $(seq 30); do
  dlq=$(timeout 20 kcat -F "$KD/admin-kcat.conf" -b "$BS" -C -t aas.jobs.dlq -o beginning -e -q \
    -f '%k %h\n' 2>/dev/null)
  grep -q '^acl-junk-1 .*aas.worker=acl-w' <<<"$dlq" && break
  sleep 0.5
done
grep -q '^acl-junk-1 .*aas.error.code=AAS_ERR_DECODE.*aas.worker=acl-w' <<<"$dlq" \
  && ok "the worker dead-lettered acme's undecodable message to aas.jobs.dlq" \
  || bad "no dead letter: '$dlq' $(grep -E 'dlq|undecodable' "$RUN/worker.log" | tail -3)"

# (2) acme cannot read a job topic.
out=$(timeout 30 kcat -F "$RUN/acme.kcat" -b "$BS" -C -t aas.jobs.infer -o beginning -e 2>&1); rc=$?
[ "$rc" != 0 ] && grep -q 'Topic authorization failed' <<<"$out" \
  && ok "acme cannot consume aas.jobs.infer: $(grep -m1 'authorization' <<<"$out")" \
  || bad "acme consumed aas.jobs.infer (exit $rc): $out"
# (3) acme cannot write the dead-letter topic.
out=$(echo forged | timeout 30 kcat -F "$RUN/acme.kcat" -b "$BS" -P -t aas.jobs.dlq 2>&1); rc=$?
[ "$rc" != 0 ] && grep -q 'Topic authorization failed' <<<"$out" \
  && ok "acme cannot produce to aas.jobs.dlq: $(grep -m1 'authorization' <<<"$out")" \
  || bad "acme produced to aas.jobs.dlq (exit $rc): $out"

# (4) A wrong password and (5) no credentials, side by side, with the
# default client.timeout.ms (30 s): librdkafka reports the refused login
# within about 300 ms but keeps retrying it, and the client used to wait
# out metadata, DescribeConfigs and the message timeout (about 66 s) to
# say "Local: Message timed out".  Now each submit stops at the report.
submit_timed() {  # NAME ARGS...: runs aas-producer, writes NAME.err, NAME.rc, NAME.ms
  local name=$1 t rc; shift
  t=$(date +%s%N)
  timeout 120 "$P" "$@" submit --model digits --values "$ROW" --id "acl-$name-1" \
    >"$RUN/$name.out" 2>"$RUN/$name.err"; rc=$?
  echo "$rc" >"$RUN/$name.rc"; echo $((($(date +%s%N) - t) / 1000000)) >"$RUN/$name.ms"
}
submit_timed wrong -c "$RUN/wrong.conf" & p1=$!
submit_timed none -X "kafka.bootstrap.servers=$BS" -X "redis.port=$RPORT" & p2=$!
out=$(timeout 30 kcat -b "$BS" -L -m 5 2>&1); krc=$?
sleep 1
ps -eo args >"$RUN/ps.during-auth-failures"
wait "$p1" "$p2"
rc=$(cat "$RUN/wrong.rc") ms=$(cat "$RUN/wrong.ms")
last=$(grep '^aas-producer: job' "$RUN/wrong.err")
[ "$rc" = 1 ] && [ "$ms" -le 15000 ] \
  && grep -q 'level=error comp=kafka .*SASL authentication error: Authentication failed' "$RUN/wrong.err" \
  && grep -q '^aas-producer: job acl-wrong-1: Kafka authentication failed (SASL PLAIN as user acme): Authentication failed: Invalid username or password .*check kafka.sasl.username / kafka.sasl.password(.file)' <<<"$last" \
  && ok "wrong password: aas-producer submit exit 1 after ${ms} ms: ${last#aas-producer: }" \
  || bad "wrong password: exit $rc after ${ms} ms (want 1 within 15000 ms, an error naming authentication): $(tail -3 "$RUN/wrong.err")"
# Refused before its id was claimed: the id is free for the right password.
expect 0 "^acl-wrong-1$" -- "$P" -c "$RUN/acme.conf" submit --model digits --values "$ROW" \
  --tenant acme --id acl-wrong-1
[ "$krc" != 0 ] && grep -q 'might require SASL authentication' <<<"$out" \
  && ok "no credentials: kcat -L (PLAINTEXT) refused: $(grep -m1 -o 'Failed to acquire metadata.*' <<<"$out")" \
  || bad "no credentials: kcat -L exit $krc: $out"
# librdkafka reports this one as a transport error ("Disconnected: ...
# broker might require SASL authentication"): the client takes it as a
# refusal only while no broker has ever kept its connection.
rc=$(cat "$RUN/none.rc") ms=$(cat "$RUN/none.ms")
last=$(grep '^aas-producer: job' "$RUN/none.err")
[ "$rc" = 1 ] && [ "$ms" -le 15000 ] \
  && grep -q '^aas-producer: job acl-none-1: Kafka closed every connection at once, it may require authentication (security.protocol plaintext): .*might require SASL authentication.*kafka.sasl.username' <<<"$last" \
  && ok "no credentials: aas-producer submit exit 1 after ${ms} ms: ${last:0:120}..." \
  || bad "no credentials: exit $rc after ${ms} ms (want 1 within 15000 ms, an error naming authentication): $(tail -3 "$RUN/none.err")"

# (4b) A worker with the wrong password: never in the group, and its
# /readyz says why (not "not in the consumer group yet").
MP=$(free_port)
"$W" -c "$RUN/wrong.conf" -X worker.id=acl-wrong-w -X metrics.port="$MP" >"$RUN/wrong-worker.log" 2>&1 &
WW=$!
ready=''
for _ in $(seq 150); do
  ready=$(curl -s "http://127.0.0.1:$MP/readyz" 2>/dev/null)
  grep -q 'Kafka authentication failed' <<<"$ready" && break
  sleep 0.1
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MP/readyz")
kill "$WW" 2>/dev/null; wait "$WW" 2>/dev/null
[ "$code" = 503 ] && grep -q 'Kafka authentication failed (SASL PLAIN as user acme)' <<<"$ready" \
  && ok "worker with a wrong password: /readyz $code: ${ready:0:110}..." \
  || bad "worker with a wrong password: /readyz $code: $ready"

grep -qiE 'authoriz|authenticat' "$RUN/worker.log" \
  && bad "the worker met access errors: $(grep -iE 'authoriz|authenticat' "$RUN/worker.log" | head -3)" \
  || ok "the worker met no authorization or authentication error"

# (6) No password in any process's argv, nor in any log.
ps -eo args >"$RUN/ps.end"
sed -n 's/^sasl.password=//p' "$KD/admin-kcat.conf" >"$RUN/secrets"
cat "$RUN"/*.pw >>"$RUN/secrets"
[ "$(grep -c . "$RUN/secrets")" = 6 ] || bad "secrets: $(grep -c . "$RUN/secrets") of 6 passwords"
hits=$(grep -lF -f "$RUN/secrets" "$RUN"/ps.* 2>/dev/null)
[ -z "$hits" ] && ok "no password on any command line (ps -eo args, twice)" \
  || bad "a password on a command line: $hits"
logs=("$RUN"/*.log "$RUN"/*.out "$RUN"/*.err "$KD"/node-*/*.log)
hits=$(grep -lF -f "$RUN/secrets" "${logs[@]}" 2>/dev/null)
[ -z "$hits" ] && ok "no password in the ${#logs[@]} logs (worker, producers, scheduler, kafka-local, broker)" \
  || bad "a password in: $hits"

echo "test_kafka_acl: $FAILS failures, $((SECONDS - T0)) s"
[ "$FAILS" = 0 ]
