#!/usr/bin/env python3
"""Train the demo digits model offline with numpy and write it in the native
AASMLP1 format (docs/model-format.md).

Not part of the product: aas trains models itself with oneDNN training jobs.
This script made data/digits-mlp.aasm, the model the demo serves, so the
demo has a meaningful model from its first run.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy
    /tmp/venv/bin/python tools/train_digits_reference.py data/digits.csv.gz data/digits-mlp.aasm

Split: every fifth row (row index % 5 == 0: 360 rows) is held out, the
other 1,437 train; the demo submits exactly those 360.  Fixed seed: the
same numpy gives the same bytes.

Besides the model it writes, next to it:
  digits-test.csv     the 360 held-out rows: 64 raw pixels (0..16), the true
                      label, and this script's own prediction (float64 on the
                      exported f32 parameters); tests/test_model.c checks that
                      oneDNN predicts the same class for every row
  digits-mlp.README   one line: how the model was made and its accuracy
"""
import gzip
import os
import platform
import struct
import sys

import numpy as np


def load(path):
    with gzip.open(path, "rt") as f:
        rows = [list(map(float, line.split(","))) for line in f if line.strip()]
    a = np.array(rows, dtype=np.float32)
    return a[:, :64], a[:, 64].astype(np.int64)


def write_aasm(path, layers, labels):
    """layers: list of (W[out,in], b[out], act) with act 0..4."""
    with open(path, "wb") as f:
        f.write(b"AASMLP1\0")
        f.write(struct.pack("<II", len(layers), layers[0][0].shape[1]))
        for w, _, act in layers:
            f.write(struct.pack("<II", w.shape[0], act))
        for w, b, _ in layers:
            f.write(np.ascontiguousarray(w, dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(b, dtype="<f4").tobytes())
        f.write(struct.pack("<I", len(labels)))
        for name in labels:
            raw = name.encode()
            f.write(struct.pack("<H", len(raw)) + raw)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    x, y = load(src)
    # The model sees raw pixels 0..16: fold the /16 scaling into layer 1.
    xs = x / 16.0
    test = np.arange(len(xs)) % 5 == 0
    xtr, ytr, xte, yte = xs[~test], y[~test], xs[test], y[test]
    rng = np.random.default_rng(7)
    h = 64
    w1 = rng.normal(0, np.sqrt(2 / 64), (h, 64)).astype(np.float32)
    b1 = np.zeros(h, np.float32)
    w2 = rng.normal(0, np.sqrt(1 / h), (10, h)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    params = [w1, b1, w2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, t = 0.003, 0
    for epoch in range(150):
        order = rng.permutation(len(xtr))
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            xb, yb = xtr[idx], ytr[idx]
            z1 = xb @ w1.T + b1
            a1 = np.maximum(z1, 0)
            z2 = a1 @ w2.T + b2
            p = np.exp(z2 - z2.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g2 = p.copy()
            g2[np.arange(len(yb)), yb] -= 1
            g2 /= len(yb)
            gw2, gb2 = g2.T @ a1, g2.sum(0)
            g1 = (g2 @ w2) * (z1 > 0)
            gw1, gb1 = g1.T @ xb, g1.sum(0)
            t += 1
            for k, g in enumerate([gw1, gb1, gw2, gb2]):  # Adam
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                mh, vh = m[k] / (1 - 0.9 ** t), v[k] / (1 - 0.999 ** t)
                params[k] -= lr * mh / (np.sqrt(vh) + 1e-8)
    a1 = np.maximum(xte @ w1.T + b1, 0)
    acc = float(((a1 @ w2.T + b2).argmax(1) == yte).mean())
    print(f"held-out accuracy: {acc * 100:.1f}% on {len(yte)} digits")
    layers = [((w1 / 16.0).astype(np.float32), b1, 1), (w2, b2, 4)]
    write_aasm(dst, layers, [str(i) for i in range(10)])

    # What the served model computes: raw pixels through the exported f32
    # parameters, accumulated in float64.
    raw = x[test].astype(np.float64)
    h1 = np.maximum(raw @ layers[0][0].astype(np.float64).T + layers[0][1], 0)
    pred = (h1 @ w2.astype(np.float64).T + b2).argmax(1)
    correct = int((pred == yte).sum())
    out_dir = os.path.dirname(os.path.abspath(dst))
    lines = [",".join(map(str, list(row.astype(int)) + [int(t), int(p)]))
             for row, t, p in zip(x[test], yte, pred)]
    text = "\n".join(lines) + "\n"
    if len(text) < 100 * 1024:  # keep the repository small
        with open(os.path.join(out_dir, "digits-test.csv"), "w") as f:
            f.write(text)
    with open(os.path.join(out_dir, "digits-mlp.README"), "w") as f:
        f.write(f"digits-mlp.aasm: 64-{h}-10 MLP (relu, softmax; takes raw pixels 0..16, "
                f"the /16 scaling folded into layer 1) trained by "
                f"tools/train_digits_reference.py (numpy {np.__version__}, "
                f"Python {platform.python_version()}, seed 7, 150 epochs Adam) on the "
                f"1,437 rows of data/digits.csv.gz whose index % 5 != 0; held-out "
                f"accuracy {correct}/{len(yte)} = {100 * correct / len(yte):.2f}% on the "
                f"other 360 rows (data/digits-test.csv).\n")
    print(f"exported model: {correct}/{len(yte)} correct on the held-out rows")


if __name__ == "__main__":
    main()
