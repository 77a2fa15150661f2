#!/usr/bin/env bash
# test_cli_text.sh - big texts from aas-producer (submit --text-file), on a
# real redis-server, the dev broker and one worker:
#   - --text-file PATH and --text-file - (stdin) send the same job as
#     --text with the file's bytes (one final "\n" or "\r\n" dropped):
#     the job id is claimed with a hash of the payload, so resubmitting
#     under the same id with --idempotent is accepted only for a
#     byte-identical job; and a worker gives the same result for each;
#   - usage errors exit 2 before anything connects: --text with
#     --text-file, --text-file with --values;
#   - a missing file, an empty one, invalid UTF-8 and a NUL byte exit 2
#     naming the file and the byte offset;
#   - a text over client.text.max.bytes, and a job over the producer's
#     kafka.message.max.bytes (set small here), are refused by the client
#     (exit 1) naming the limit and the keys that raise it, not the broker.
# Usage: tests/test_cli_text.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
RUN=$(mktemp -d /tmp/aas-cli-text.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"

TEXT='can I book a table for two'
printf '%s\n' "$TEXT" > "$RUN/text-lf.txt"
printf '%s\r\n' "$TEXT" > "$RUN/text-crlf.txt"
printf '%s' "$TEXT" > "$RUN/text-bare.txt"
printf '%s\n\n' "$TEXT" > "$RUN/text-2lf.txt"       # only one "\n" is dropped
printf 'caf\xc3\xa9 ok \xff bad' > "$RUN/bad-utf8.txt"  # 0xff at offset 9
printf 'abc\xe2\x82' > "$RUN/cut-utf8.txt"             # cut sequence at offset 3
printf 'abc\0def' > "$RUN/nul.txt"                     # NUL at offset 3
: > "$RUN/empty.txt"

# 1. No servers: usage errors exit 2 before anything connects.
NOSERVER=(-X redis.port=1 -X kafka.bootstrap.servers=127.0.0.1:1 -X redis.timeout.ms=60000)
expect 2 "--text and --text-file exclude each other" -- timeout 5 "$P" "${NOSERVER[@]}" \
  submit --model m --text hi --text-file "$RUN/text-lf.txt"
expect 2 "--text-file goes without --values/--input" -- timeout 5 "$P" "${NOSERVER[@]}" \
  submit --model m --values 1 --text-file "$RUN/text-lf.txt"
expect 2 "exactly one of --values, --input, --text or --text-file" -- timeout 5 "$P" \
  "${NOSERVER[@]}" submit --model m
HELP=$("$P" --help)
grep -q -- "--text-file" <<<"$HELP" && ok "--help names --text-file" || echo "note: --help does not list --text-file yet (producer/main.c)"

# 2. Real Redis, the dev broker and a worker.
start_servers 2

# Unreadable or bad files: exit 2, naming the file and the byte.
expect 2 "--text-file $RUN/nosuch.txt: No such file or directory" -- \
  "$P" submit --model m --text-file "$RUN/nosuch.txt"
expect 2 "--text-file $RUN: is a directory" -- "$P" submit --model m --text-file "$RUN"
expect 2 "empty" -- "$P" submit --model m --text-file "$RUN/empty.txt"
expect 2 "bad-utf8.txt: invalid UTF-8 at byte offset 9" -- \
  "$P" submit --model m --text-file "$RUN/bad-utf8.txt"
expect 2 "invalid UTF-8 at byte offset 3" -- "$P" submit --model m --text-file - <"$RUN/cut-utf8.txt"
expect 2 "a NUL byte at byte offset 3" -- "$P" submit --model m --text-file "$RUN/nul.txt"
expect 2 "--text: invalid UTF-8 at byte offset 2" -- "$P" submit --model m --text $'ab\xc3('
[ "$(redis-cli -p "$RPORT" keys 'aas:job:*' | wc -w)" = 0 ] && ok "nothing claimed for refused texts" || bad "refused texts left jobs: $(redis-cli -p "$RPORT" keys 'aas:job:*')"

# The same job three ways: the id is claimed with the payload's hash, so
# an idempotent resubmission under that id succeeds only for the same bytes.
expect 0 "^same-1$" -- "$P" submit --model m --text "$TEXT" --id same-1
for f in text-lf text-crlf text-bare; do
  expect 0 "^same-1$" -- "$P" submit --model m --text-file "$RUN/$f.txt" --id same-1 --idempotent
done
expect 0 "^same-1$" -- "$P" submit --model m --text-file - --id same-1 --idempotent <"$RUN/text-crlf.txt"
expect 0 "^same-1$" -- bash -c "printf '%s\n' '$TEXT' | '$P' submit --model m --text-file - --id same-1 --idempotent"
# ... and a different text (one "\n" kept) is a different payload.
expect 5 "same-1 exists with a different payload" -- \
  "$P" submit --model m --text-file "$RUN/text-2lf.txt" --id same-1 --idempotent

# Size limits, refused by the client before sending (exit 1).
head -c 2000000 /dev/zero | tr '\0' a > "$RUN/big.txt"
expect 1 "--text-file $RUN/big.txt: 2000000 bytes, over client.text.max.bytes=1048576.*job.max.text.bytes" -- \
  "$P" submit --model m --text-file "$RUN/big.txt"
expect 1 "--text-file - \(stdin\): 2000000 bytes, over client.text.max.bytes=1048576" -- \
  "$P" submit --model m --text-file - <"$RUN/big.txt"
expect 1 "--text-file - \(stdin\): more than 1048576 bytes, over client.text.max.bytes=1048576" -- \
  bash -c "cat '$RUN/big.txt' | '$P' submit --model m --text-file -"
head -c 10000 /dev/zero | tr '\0' b > "$RUN/10k.txt"
OUT=$("$P" -X kafka.message.max.bytes=5000 submit --model m --text-file "$RUN/10k.txt" --id big-1 2>&1); rc=$?
if [ "$rc" = 1 ] &&
   grep -qE "job big-1 of 10,0[0-9]{2} bytes \(encoded\) is over the producer's kafka.message.max.bytes=5000 less 1024 bytes" <<<"$OUT" &&
   grep -q "its message limit is 3,976 bytes" <<<"$OUT" &&
   grep -q "client.message.max.bytes=1000000" <<<"$OUT" &&
   grep -q "job.max.bytes" <<<"$OUT" && ! grep -q "Broker" <<<"$OUT"; then
  ok "1: over kafka.message.max.bytes, refused by the client naming the limits"
else bad "kafka.message.max.bytes=5000: exit $rc: $OUT"; fi
expect 1 "is over client.message.max.bytes=4096: its message limit is 4,096 bytes" -- \
  "$P" -X client.message.max.bytes=4096 submit --model m --text-file "$RUN/10k.txt"
# A 1 MB text under the text limit but over the message limit (~1 MB training
# data used to fail as "Broker: Message size too large").
head -c 1040000 /dev/zero | tr '\0' c > "$RUN/1m.txt"
expect 1 "is over client.message.max.bytes=1000000: .*raise client.message.max.bytes" -- \
  "$P" submit --model m --text-file "$RUN/1m.txt"
head -c 1048570 /dev/zero | tr '\0' d > "$RUN/1mib.txt"   # just under the text limit
expect 1 "over the dev broker's 1048576-byte limit" -- \
  "$P" -X client.message.max.bytes=2000000 submit --model m --text-file "$RUN/1mib.txt"
for id in big-1; do
  [ "$(redis-cli -p "$RPORT" exists "aas:job:{$id}")" = 0 ] && ok "refused $id not claimed" || bad "refused $id was claimed"
done

# 3. A worker gives the same answer to --text and --text-file.
"$BUILD/worker/aas-worker" -X worker.id=cli-text-w -X worker.heartbeat.ms=500 >"$RUN/worker.log" 2>&1 &
WORKER_PID=$!
OUT=$("$P" train --model cli-intents --text-input "$ROOT/data/text-intents.tsv" --param hidden=16 \
      --param epochs=20 --param learning_rate=0.01 --param validation_fraction=0 --wait --timeout 120 2>&1)
grep -q "SUCCEEDED" <<<"$OUT" && ok "text model trained" || bad "training: $OUT"
row() { grep -E '^ +row 0:' | sed 's/^ *//'; }
A=$("$P" submit --model cli-intents --text "$TEXT" --wait --timeout 60 2>&1 | row)
B=$("$P" submit --model cli-intents --text-file "$RUN/text-crlf.txt" --wait --timeout 60 2>&1 | row)
C=$("$P" submit --model cli-intents --text-file - --wait --timeout 60 <"$RUN/text-lf.txt" 2>&1 | row)
if [ -n "$A" ] && [ "$A" = "$B" ] && [ "$A" = "$C" ]; then ok "same result three ways: $A"
else bad "results differ: --text '$A' file '$B' stdin '$C'"; fi
kill "$WORKER_PID" 2>/dev/null; wait "$WORKER_PID" 2>/dev/null; WORKER_PID=''

echo "test_cli_text: $FAILS failure(s)"
[ "$FAILS" = 0 ]
