#!/usr/bin/env bash
# setup_venv.sh [VENV_DIR] - the Python venv of the benchmark peers
# (bench/peers/requirements.txt: Celery + Redis client, numpy, onnx,
# onnxruntime).  Default VENV_DIR: build-bench/peers-venv under the repo.
# Creates it with /usr/bin/python3 (3.11) or reuses it; pip runs only when
# requirements.txt changed since the last successful install.  Quiet unless
# something fails.  Not part of aas.
#
#   bench/peers/setup_venv.sh build-bench/peers-venv
#   build-bench/peers-venv/bin/python bench/peers/bench_onnxruntime.py
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${1:-$ROOT/build-bench/peers-venv}
PY=${PYTHON:-/usr/bin/python3}
REQ=$HERE/requirements.txt
STAMP=$VENV/.aas-peers-requirements

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP"; then
  exit 0
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
cp "$REQ" "$STAMP"
