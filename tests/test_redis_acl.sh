#!/usr/bin/env bash
# test_redis_acl.sh - Redis ACL users for the roles of an aas deployment
# (deploy/redis/acl-roles.conf, docs/redis.md#acl-users), applied as they
# are to a real redis-server whose default user is off, with the dev
# broker: each program runs as its role's user (redis.user, the password
# from redis.password.file) and the whole path works: an admin registers
# an API key, a worker (worker.auth = keys) trains and serves, a client
# signs, submits, waits and reads; the gateway answers a key's caller.
# What each role must not do is refused with NOPERM and a clear error: a
# client reading the API keys (their hashes sign jobs), listing keys,
# writing the registry or usage; nobody gets in without a password.
# Usage: tests/test_redis_acl.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer W=$BUILD/worker/aas-worker GW=$BUILD/gateway/aas-gateway
ROLES=$ROOT/deploy/redis/acl-roles.conf
RUN=$(mktemp -d /tmp/aas-redisacl.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
GW_PID=''
trap 'stop_proc "$GW_PID"; cleanup' EXIT
T0=$SECONDS
start_servers 1
ADMINPW=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
RA() { REDISCLI_AUTH=$ADMINPW redis-cli --no-auth-warning --user setup -p "$RPORT" "$@"; }
# A setup user of our own, then the roles' users, then the default user off.
redis-cli -p "$RPORT" ACL SETUSER setup on ">$ADMINPW" '~*' '&*' +@all >/dev/null
for role in admin worker scheduler gateway client; do
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  printf '%s\n' "$pw" >"$RUN/$role.pw"; chmod 600 "$RUN/$role.pw"
  # shellcheck disable=SC2046
  out=$(RA ACL SETUSER "aas-$role" reset on ">$pw" $(awk -v r="$role" '$1 == r { $1 = ""; print }' "$ROLES") 2>&1)
  [ "$out" = OK ] && ok "role $role: user aas-$role made from acl-roles.conf" || bad "role $role: $out"
done
RA ACL SETUSER default off >/dev/null
out=$(redis-cli -p "$RPORT" GET x 2>&1)
[[ "$out" == *NOAUTH* ]] && ok "no password, no access ($out)" || bad "default user: $out"
# as ROLE PROGRAM ARGS...: the -X options go last, after the subcommand's.
run_as() { local role=$1 prog=$2; shift 2; "$prog" "${SERVERS[@]}" -X "redis.user=aas-$role" \
  -X "redis.password.file=$RUN/$role.pw" "$@"; }
# spawn_as ROLE PROGRAM ARGS... &: the same in the background; exec, so $!
# is the program's pid and cleanup stops the program, not a subshell.
spawn_as() { local role=$1 prog=$2; shift 2; exec "$prog" "${SERVERS[@]}" -X "redis.user=aas-$role" \
  -X "redis.password.file=$RUN/$role.pw" "$@"; }

ACME=$(run_as admin "$P" apikey add acme --scopes all 2>"$RUN/add.err")
[[ "$ACME" =~ ^aas_ ]] && ok "admin adds an API key" || bad "apikey add as admin: $(cat "$RUN/add.err")"

spawn_as worker "$W" -X worker.id=acl-w -X worker.auth=keys >"$RUN/worker.log" 2>&1 & WORKER_PID=$!
TEXT="hello there, good morning"
AAS_CLIENT_KEY=$ACME expect 0 "SUCCEEDED model=intents" -- run_as client "$P" train --model intents \
  --text-input "$ROOT/data/text-intents.tsv" --tenant acme --wait --timeout 120
AAS_CLIENT_KEY=$ACME expect 0 "SUCCEEDED" -- run_as client "$P" submit --model intents \
  --text "$TEXT" --tenant acme --id acl-1 --wait --timeout 60
expect 0 "SUCCEEDED" -- run_as client "$P" status acl-1
expect 0 "greeting" -- run_as client "$P" wait acl-1

echo "== what a client may not do"
expect 1 "NOPERM|permission" -- run_as client "$P" apikey list
expect 1 "NOPERM|permission" -- run_as client "$P" model delete intents 1
expect 1 "NOPERM|permission" -- run_as client "$P" usage
c() { REDISCLI_AUTH=$(cat "$RUN/client.pw") redis-cli --no-auth-warning --user aas-client -p "$RPORT" "$@" 2>&1; }
set -f   # KEYS * is Redis's pattern, not the shell's
for cmd in "HGETALL aas:apikeys" "SCAN 0" "KEYS *" "HSET aas:usage:tenants x 1" \
           "HSET aas:model:{intents} latest 9" "SET aas:worker:{x} y" "FLUSHALL" "CONFIG GET *"; do
  # shellcheck disable=SC2086
  out=$(c $cmd)
  [[ "$out" == *NOPERM* ]] && ok "client: $cmd refused" || bad "client: $cmd: $out"
done
set +f
out=$(c HGET 'aas:job:{acl-1}' status)
[ "$out" = SUCCEEDED ] && ok "client reads a job it knows" || bad "client HGET job: $out"

echo "== the gateway as its role"
GPORT=$(free_port)
spawn_as gateway "$GW" -X "gateway.listen.port=$GPORT" -X gateway.auth=redis \
  >"$RUN/gateway.log" 2>&1 & GW_PID=$!
URL=http://127.0.0.1:$GPORT
for _ in $(seq 200); do curl -s "$URL/v2/health/ready" 2>/dev/null | grep -q true && break; sleep 0.1; done
check 200 '"label": ?"greeting"' -- -H "Authorization: Bearer $ACME" -X POST -d "{\"text\":\"$TEXT\"}" \
  "$URL/v1/models/intents/predict"
# The training job, acl-1 and the gateway's: 3, metered as each finished.
for _ in $(seq 50); do run_as admin "$P" usage --tenant acme --csv 2>/dev/null | grep -q '^all,acme,intents,3,' && break; sleep 0.1; done
expect 0 "^all,acme,intents,3,0," -- run_as admin "$P" usage --tenant acme --csv

# Nothing of the roles' own work was refused on the way (the ACL log,
# as "user object" pairs; CONFIG GET is refused on purpose: roles file).
RA ACL LOG 200 | awk 'p == "object" { o = $0 } p == "username" { print $0, o } { p = $0 }' \
  | sort | uniq -c >"$RUN/acl.log"
for role in admin worker gateway; do
  if grep " aas-$role " "$RUN/acl.log" | grep -qv ' config|get$'; then
    bad "aas-$role was refused: $(grep " aas-$role " "$RUN/acl.log" | tr '\n' ';')"
  else ok "no refusal of aas-$role's work in ACL LOG"; fi
done
g() { REDISCLI_AUTH=$(cat "$RUN/gateway.pw") redis-cli --no-auth-warning --user aas-gateway -p "$RPORT" "$@" 2>&1; }
out=$(g HSET aas:apikeys x y)
[[ "$out" == *NOPERM* ]] && ok "gateway: the API keys are read-only" || bad "gateway HSET apikeys: $out"
if grep -qF -e "$ACME" "$RUN"/*.log "$RUN"/*.err; then bad "an API key is in a log"; else ok "no API key in a log"; fi
if pgrep -af aas- | grep -qF -f <(cat "$RUN"/*.pw); then bad "a password in argv"; else ok "no password in any argv"; fi
[ "$(cat "/proc/$WORKER_PID/comm" 2>/dev/null)" = aas-worker ] && [ "$(cat "/proc/$GW_PID/comm" 2>/dev/null)" = aas-gateway ] \
  && ok "the pids cleanup stops are the worker's and the gateway's" || bad "spawned pids are not the programs"
echo "($((SECONDS - T0)) s)"
[ "$FAILS" = 0 ] && echo "test_redis_acl: all passed" || { echo "test_redis_acl: $FAILS failed"; exit 1; }
