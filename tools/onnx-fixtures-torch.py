#!/usr/bin/env python3
"""ONNX fixtures exported from PyTorch (issue 13, "Real exports"), and the
784-512-512-10 MLP of the ONNX benchmark (bench/run_onnx_bench.sh).

Not part of the product: it made the committed directories under data/onnx/
(data/onnx/README-torch.md says what is in them) and is kept so they can be
made again.  Needs Debian's python3-torch (1.13) and python3-onnx (1.12),
and onnxruntime from PyPI for the reference outputs:

    /usr/bin/python3 -m venv --system-site-packages ~/.cache/aas/venv-onnx
    ~/.cache/aas/venv-onnx/bin/pip install onnxruntime
    ~/.cache/aas/venv-onnx/bin/python tools/onnx-fixtures-torch.py fixtures          # -> data/onnx/
    ~/.cache/aas/venv-onnx/bin/python tools/onnx-fixtures-torch.py bench-mlp DIR     # -> DIR/mlp.onnx, mlp.aasm

fixtures: trains on data/digits.csv.gz (rows whose 0-based index % 5 != 0;
the other 360 are held out, as for data/digits-mlp.aasm) with a fixed seed,
then exports each model with torch.onnx.export at opset 13 and 17, batch
axis dynamic, into the ONNX backend test layout:

    data/onnx/torch-<model>-op<N>/model.onnx
    data/onnx/torch-<model>-op<N>/test_data_set_0/input_0.pb    first 20 held-out rows, f32
    data/onnx/torch-<model>-op<N>/test_data_set_0/output_0.pb   ONNX Runtime's output on them

The models take raw pixels 0..16, like the demo model: they are trained on
pixels / 16 and the 1/16 is folded into the first layer's weights before
export.  The script checks that ONNX Runtime and torch agree on all 360
held-out rows and prints the largest difference and the accuracy.

bench-mlp DIR: a 784-512-512-10 MLP (relu, relu, softmax) with random
weights (torch.manual_seed(7), torch's default init), exported at opset 17
with a dynamic batch to DIR/mlp.onnx, and the same weights in the native
AASMLP1 format (docs/model-format.md) to DIR/mlp.aasm.  Not committed.
"""
import argparse
import gzip
import os
import struct
import sys
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 0
N_FIXTURE_ROWS = 20
OPSETS = (13, 17)


def load_digits(path):
    """data/digits.csv.gz -> (x [1797, 64] f32 raw pixels 0..16, y [1797] int64)."""
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return a[:, :64], a[:, 64].astype(np.int64)


class Mlp(nn.Module):
    """64-64-10, relu; logits out, or probabilities with softmax=True."""

    def __init__(self, softmax=False):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)
        self.softmax = softmax

    def forward(self, x):
        x = self.fc2(torch.relu(self.fc1(x)))
        return torch.softmax(x, dim=1) if self.softmax else x

    def first_weight(self):
        return self.fc1.weight


class Cnn(nn.Module):
    """[N,1,8,8] -> Conv 3x3 (8) + BatchNorm + ReLU + MaxPool 2 -> Conv 3x3 (16)
    + ReLU + MaxPool 2 -> view(N, -1) (64) -> Linear 10 (logits)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)

    def first_weight(self):
        return self.conv1.weight


def train(model, x, y, epochs, shape):
    """Adam on pixels / 16, minibatches of 32, fixed order from the seed."""
    gen = torch.Generator().manual_seed(SEED)
    xt = torch.from_numpy(x / 16.0).reshape(shape)
    yt = torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():  # raw pixels from now on
        model.first_weight().mul_(1.0 / 16.0)


def ort_run(path, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def export(model, shape, opset, out_name, path, training=torch.onnx.TrainingMode.EVAL):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dummy = torch.zeros((2,) + shape[1:])
    torch.onnx.export(model, dummy, path, opset_version=opset, input_names=["input"],
                      output_names=[out_name], training=training,
                      dynamic_axes={"input": {0: "batch"}, out_name: {0: "batch"}})
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return m


def write_fixture(name, model, shape, opset, out_name, xte, yte, training=None):
    d = os.path.join(ROOT, "data", "onnx", name)
    path = os.path.join(d, "model.onnx")
    kw = {} if training is None else {"training": training}
    # PRESERVE on a model in eval mode folds only constants, not parameters.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    m = export(model, shape, opset, out_name, path, **kw)
    xs = xte.reshape((len(xte),) + shape[1:])
    with torch.no_grad():
        ref = model(torch.from_numpy(xs)).numpy()
    got = ort_run(path, xs)
    diff = float(np.abs(got - ref).max())
    acc = float((got.argmax(1) == yte).mean())
    if not diff <= 1e-4 or not (got.argmax(1) == ref.argmax(1)).all():
        print(f"{name}: ONNX Runtime and torch disagree (max |diff| {diff:g})", file=sys.stderr)
        sys.exit(1)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    fx = xs[:N_FIXTURE_ROWS]
    with open(os.path.join(ds, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(fx, "input").SerializeToString())
    with open(os.path.join(ds, "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(got[:N_FIXTURE_ROWS], out_name).SerializeToString())
    ops = sorted({n.op_type for n in m.graph.node})
    print(f"{name}: opset {opset}, {len(m.graph.node)} nodes ({' '.join(ops)}), "
          f"{os.path.getsize(path)} bytes; ORT vs torch max |diff| {diff:.2e} on "
          f"{len(xs)} held-out rows, accuracy {acc:.4f}")


def fixtures(args):
    x, y = load_digits(os.path.join(ROOT, "data", "digits.csv.gz"))
    test = np.arange(len(x)) % 5 == 0
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    torch.manual_seed(SEED)
    mlp = Mlp()
    train(mlp, xtr, ytr, args.epochs, (-1, 64))
    for op in OPSETS:
        write_fixture(f"torch-mlp-op{op}", mlp, (-1, 64), op, "logits", xte, yte)
    mlp.softmax = True
    write_fixture("torch-mlp-softmax-op17", mlp, (-1, 64), 17, "probabilities", xte, yte)
    torch.manual_seed(SEED)
    cnn = Cnn()
    train(cnn, xtr, ytr, args.epochs, (-1, 1, 8, 8))
    for op in OPSETS:
        write_fixture(f"torch-cnn-op{op}", cnn, (-1, 1, 8, 8), op, "logits", xte, yte)
    # torch folds an eval-mode BatchNormalization into the Conv before it;
    # TrainingMode.PRESERVE on a model in eval mode keeps the node (with
    # training_mode 0) for the loader's own folding to meet.
    write_fixture("torch-cnn-bn-op17", cnn, (-1, 1, 8, 8), 17, "logits", xte, yte,
                  training=torch.onnx.TrainingMode.PRESERVE)
    return 0


def write_aasm(path, layers):
    """layers: list of (W [out, in], b [out], act) -- docs/model-format.md."""
    with open(path, "wb") as f:
        f.write(b"AASMLP1\0")
        f.write(struct.pack("<II", len(layers), layers[0][0].shape[1]))
        for w, _, act in layers:
            f.write(struct.pack("<II", w.shape[0], act))
        for w, b, _ in layers:
            f.write(np.ascontiguousarray(w, dtype="<f4").tobytes())
            f.write(np.ascontiguousarray(b, dtype="<f4").tobytes())
        f.write(struct.pack("<I", 0))  # no labels


def bench_mlp(args):
    torch.manual_seed(7)
    sizes = [784, 512, 512, 10]
    linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    model = nn.Sequential(linears[0], nn.ReLU(), linears[1], nn.ReLU(), linears[2],
                          nn.Softmax(dim=1)).eval()
    os.makedirs(args.dir, exist_ok=True)
    onnx_path = os.path.join(args.dir, "mlp.onnx")
    export(model, (-1, 784), 17, "probabilities", onnx_path)
    acts = [1, 1, 4]  # relu, relu, softmax
    write_aasm(os.path.join(args.dir, "mlp.aasm"),
               [(l.weight.detach().numpy(), l.bias.detach().numpy(), a)
                for l, a in zip(linears, acts)])
    x = np.random.default_rng(7).uniform(-1, 1, (64, 784)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    diff = float(np.abs(ort_run(onnx_path, x) - ref).max())
    print(f"bench-mlp: {onnx_path}, mlp.aasm: 784-512-512-10; ORT vs torch max |diff| "
          f"{diff:.2e}", file=sys.stderr)
    return 0 if diff <= 1e-4 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures", help="train and export the digits fixtures into data/onnx/")
    f.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    b = sub.add_parser("bench-mlp", help="write DIR/mlp.onnx and DIR/mlp.aasm")
    b.add_argument("dir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    return fixtures(args) if args.cmd == "fixtures" else bench_mlp(args)


if __name__ == "__main__":
    sys.exit(main())
