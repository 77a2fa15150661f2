#!/usr/bin/env bash
# test_dataset_cli.sh - `aas-producer dataset` at the command line, on a
# real redis-server and the dev broker (no worker needed):
#   - usage errors exit 2 before connecting: a CSV needs --header or
#     --no-header (headers are never guessed), a file whose format its name
#     does not tell needs --format, a TSV takes no --header;
#   - put (FILE, --input FILE, or - for stdin) prints one summary line whose
#     crc64 is the file's CRC-64-AVRO (checked by an independent Python
#     implementation); describe shows the meta (header names kept, classes
#     sorted); list shows a table or JSON lines; delete, and deleting a
#     missing set exits 1; a v1 (binary) set shows as "v1 binary";
#   - bad lines exit 1 naming the line (invalid UTF-8: line and byte; a
#     header without --header: the hint); submit --input without --header
#     refuses a header line the same way;
#   - a set of several MiB is stored in chunks of at most 1 MiB; a failed
#     upload over an existing set leaves it intact and no temporary key;
#   - memory: the maximum RSS of putting a 24 MB file stays within 8 MB of
#     that of `dataset list` (the upload streams).
# Usage: tests/test_dataset_cli.sh BUILD_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build}
P=$BUILD/producer/aas-producer
RUN=$(mktemp -d /tmp/aas-dscli.XXXXXX)
# shellcheck source=tests/cli_lib.sh
. "$ROOT/tests/cli_lib.sh"
crc64() {  # CRC-64-AVRO of a file, 16 hex digits (the spec's table form)
  python3 - "$1" <<'PY'
import sys
E = 0xc15d213aa4d7a795
t = []
for i in range(256):
    fp = i
    for _ in range(8):
        fp = (fp >> 1) ^ (E & -(fp & 1))
    t.append(fp)
fp = E
for b in open(sys.argv[1], "rb").read():
    fp = (fp >> 8) ^ t[(fp ^ b) & 0xff]
print("%016x" % fp)
PY
}

printf 'x,y,label\n1,2,0\n3,4,1\n5,6,1\n' > "$RUN/h.csv"
printf '1,2,0\n3,4,1\n' > "$RUN/n.csv"
cp "$ROOT/data/text-intents.tsv" "$RUN/intents.tsv"
cp "$RUN/n.csv" "$RUN/rows.data"

# 1. No servers: usage errors exit 2 without connecting.
NOSERVER=(-X redis.port=1 -X kafka.bootstrap.servers=127.0.0.1:1 -X redis.timeout.ms=60000)
expect 2 "needs --header .* or --no-header .*never guessed" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s "$RUN/h.csv"
expect 2 "needs --header" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s --input "$RUN/h.csv"
expect 2 "say --format tsv or --format csv" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s "$RUN/rows.data"
expect 2 "say --format" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s - --no-header
expect 2 "want tsv or csv" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s "$RUN/h.csv" --format json
expect 2 "TSV data set has no header" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s "$RUN/intents.tsv" --header
expect 2 "usage: dataset" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s
expect 2 "usage: dataset" -- timeout 5 "$P" "${NOSERVER[@]}" dataset describe
expect 2 "usage: dataset" -- timeout 5 "$P" "${NOSERVER[@]}" dataset put s "$RUN/n.csv" --input "$RUN/n.csv"
expect 2 "not valid" -- timeout 5 "$P" "${NOSERVER[@]}" dataset describe 'a{b}'
HELP=$("$P" --help)
grep -q -- "--no-header" <<<"$HELP" && grep -qE "^  dataset list" <<<"$HELP" \
  && ok "--help lists dataset put/list and --header" || bad "--help: $HELP"

# 2. Real Redis and the dev broker.
start_servers 1
R() { redis-cli -p "$RPORT" "$@"; }

CRC=$(crc64 "$RUN/intents.tsv")
expect 0 "^intents rows=200 bytes=7428 chunks=1 format=tsv crc64=$CRC classes=5$" -- "$P" dataset put intents "$RUN/intents.tsv"
OUT=$("$P" dataset describe intents)
python3 - "$OUT" "$CRC" <<'PY' && ok "describe: tsv meta, classes sorted, crc64" || bad "describe intents: $OUT"
import json, sys
m = json.loads(sys.argv[1])
assert m["format"] == "aas.dataset.v2" and m["type"] == "tsv", m
assert m["rows"] == 200 and m["bytes"] == 7428 and m["chunks"] == 1, m
assert m["classes"] == sorted(m["classes"]) and len(m["classes"]) == 5, m
assert m["crc64"] == sys.argv[2] and m["header"] is None and m["file"] == "intents.tsv", m
PY
expect 0 "^hdr rows=3 bytes=28 chunks=1 format=csv crc64=$(crc64 "$RUN/h.csv") cols=3$" -- "$P" dataset put hdr "$RUN/h.csv" --header
expect 0 '"header": \[\s*$' -- "$P" dataset describe hdr
[ "$("$P" dataset describe hdr | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"])')" = "['x', 'y', 'label']" ] \
  && ok "header names kept" || bad "header names"
expect 1 "line 1, value 1: not a number \(if this line is a header, say --header\)" -- "$P" dataset put hdr2 "$RUN/h.csv" --no-header
expect 0 "^stdin rows=2 bytes=12 chunks=1 format=csv" -- bash -c "cat '$RUN/n.csv' | '$P' dataset put stdin - --format csv --no-header"
expect 0 "^old-form rows=2 " -- "$P" dataset put old-form --input "$RUN/n.csv" --no-header
[ "$(R hget 'aas:dataset:{stdin}' c:0)" = "$(cat "$RUN/n.csv")" ] && ok "stored bytes are the file's" || bad "stored bytes differ"
# Refused lines name the line (and for UTF-8 the byte); nothing is stored.
printf 'a\thello\n# comment\nb\tbad \xff byte\n' > "$RUN/bad.tsv"
expect 1 "line 3, byte 7 \(offset 24 in the file\): invalid UTF-8" -- "$P" dataset put badu "$RUN/bad.tsv"
printf '1,2,0\n3,4,0.5\n' > "$RUN/badlabel.csv"
expect 1 "line 2: label 0.5 is not a class index" -- "$P" dataset put badl "$RUN/badlabel.csv" --no-header
[ "$(R exists 'aas:dataset:{badu}' 'aas:dataset:{badl}')" = 0 ] && ok "refused sets not stored" || bad "a refused set was stored"
# submit/train --input: a header line is an error suggesting --header.
expect 2 "if this line is a header, say --header" -- "$P" submit --model m --input "$RUN/h.csv"

# list: a table, and JSON lines with --json; delete; a missing set is exit 1.
# A v1 (binary) set, as aas_client_dataset_put() writes it, is listed,
# described and deleted with type "v1 binary".
R hset 'aas:dataset:{v1set}' c:0 12345678 bytes 8 chunks 1 \
  meta '{"format":"aas.dataset.v1","rows":1,"dim":1,"features":"f32le","labels":"i32le"}' >/dev/null
R sadd aas:datasets v1set >/dev/null
expect 0 "^v1set +v1 binary +1 +8 +-$" -- "$P" dataset list
expect 0 '"type": "v1 binary"' -- "$P" dataset describe v1set
expect 0 "^v1set deleted$" -- "$P" dataset delete v1set
expect 0 "^intents +tsv +200 +7428 +20[0-9-]+T" -- "$P" dataset list
OUT=$("$P" dataset list --json)
python3 - "$OUT" <<'PY' && ok "list --json: JSON lines" || bad "list --json: $OUT"
import json, sys
rows = [json.loads(l) for l in sys.argv[1].splitlines()]
names = [r["name"] for r in rows]
assert names == sorted(names) and {"intents", "hdr", "stdin", "old-form"} <= set(names), names
assert all(set(r) == {"name", "type", "rows", "bytes", "created_ms"} for r in rows), rows
PY
expect 0 "^old-form deleted$" -- "$P" dataset delete old-form
expect 1 "data set old-form not found" -- "$P" dataset delete old-form
expect 1 "data set old-form not found" -- "$P" dataset describe old-form
[ "$(R sismember aas:datasets old-form)" = 0 ] && ok "deleted name left the list" || bad "deleted name still listed"

# 3. Several MiB: chunks of whole lines, at most 1 MiB each.
python3 - "$RUN/big.csv" 400000 <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("a,b,c,d,label\n")
    for r in range(int(sys.argv[2])):
        f.write("%d,%d.5,%d,%d,%d\n" % (r, r % 97, r % 13, r % 7, r % 10))
PY
OUT=$("$P" dataset put big "$RUN/big.csv" --header --no-progress); rc=$?
CH=$(sed -E 's/.* chunks=([0-9]+) .*/\1/' <<<"$OUT")
[ "$rc" = 0 ] && [ "$CH" -ge 6 ] && grep -q "crc64=$(crc64 "$RUN/big.csv")" <<<"$OUT" \
  && ok "big: $OUT" || bad "big: rc=$rc $OUT"
MAXLEN=0
for i in $(seq 0 $((CH - 1))); do
  l=$(R hstrlen 'aas:dataset:{big}' "c:$i"); [ "$l" -gt "$MAXLEN" ] && MAXLEN=$l
done
[ "$MAXLEN" -le 1048576 ] && [ "$MAXLEN" -gt 1000000 ] && ok "chunks at most 1 MiB ($MAXLEN)" || bad "chunk of $MAXLEN bytes"
# A failed upload over it (a bad last line): the old set stays, no temp key.
cp "$RUN/big.csv" "$RUN/big-bad.csv"; echo '1,2,3,4,x' >> "$RUN/big-bad.csv"
expect 1 "line 400002, value 5: not a number" -- "$P" dataset put big "$RUN/big-bad.csv" --header
[ "$(R hget 'aas:dataset:{big}' crc64)" = "$(crc64 "$RUN/big.csv")" ] && ok "old set intact after a failed upload" || bad "old set changed"
[ -z "$(R keys '*:up:*')" ] && ok "no temporary key left" || bad "temporary keys: $(R keys '*:up:*')"

# 4. Memory: a 24 MB put's max RSS stays near that of a command that reads nothing.
# (Not under AddressSanitizer: its quarantine keeps freed chunks.)
if [ -x /usr/bin/time ] && ! ldd "$P" | grep -q libasan; then
  python3 - "$RUN/mem.tsv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    n = 0
    while f.tell() < 24_000_000:
        f.write("class%d\tsome text number %d with a few more words in it\n" % (n % 50, n))
        n += 1
PY
  BASE=$(/usr/bin/time -f %M "$P" dataset list 2>&1 >/dev/null | tail -1)
  PUT=$(/usr/bin/time -f %M "$P" dataset put mem "$RUN/mem.tsv" 2>&1 >/dev/null | tail -1)
  [ $((PUT - BASE)) -lt 8192 ] && ok "put 24 MB: max RSS ${PUT} KB (list: ${BASE} KB)" \
    || bad "put 24 MB: max RSS ${PUT} KB vs list ${BASE} KB"
fi

echo "test_dataset_cli: $FAILS failure(s)"
[ "$FAILS" = 0 ]
