#!/usr/bin/python3
"""PyTorch peer of bench_train and bench_train_digits (docs/performance.md).

Same MLP (dense layers, relu, softmax cross-entropy), same init (He normal
for hidden weights, Xavier normal for the output, zero biases), same
optimizer and hyper-parameters (Adam lr 0.001 b1 0.9 b2 0.999 eps 1e-8, or
SGD lr 0.01 momentum 0.9 unless --learning-rate), same batch size, same
rows x epochs with a reshuffle per epoch and a partial last batch, float32,
same thread count.  Throughput is what aas measures: training rows per
second of batch work (gather, forward, loss, backward, optimizer step),
summed over every step; here after a warm-up of 4 steps.

    OMP_NUM_THREADS=1 bench/bench_train_torch.py --dim 784 --hidden 512,512 --threads 1
    bench/bench_train_torch.py --digits data/digits.csv.gz --seeds 5   # held-out accuracy

Exit status 77 when python3-torch is missing (apt-get install python3-torch).
Not part of aas: for comparison only.
"""
import argparse
import gzip
import sys
import time

try:
    import torch
except ImportError:
    print("bench_train_torch: python3-torch is not installed "
          "(apt-get install python3-torch); skipping PyTorch", file=sys.stderr)
    sys.exit(77)


def mlp(dim, hidden, classes):
    layers, prev = [], dim
    for h in hidden:
        lin = torch.nn.Linear(prev, h)
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")  # N(0, 2/fan_in)
        torch.nn.init.zeros_(lin.bias)
        layers += [lin, torch.nn.ReLU()]
        prev = h
    out = torch.nn.Linear(prev, classes)
    torch.nn.init.xavier_normal_(out.weight)  # N(0, 2/(fan_in+fan_out))
    torch.nn.init.zeros_(out.bias)
    return torch.nn.Sequential(*layers, out)


def optimizer(a, params):
    # foreach: the multi-tensor implementation (same arithmetic, fewer
    # kernel launches); torch 1.13 defaults to it on CUDA only.
    fe = bool(a.foreach)
    if a.optimizer == "adam":
        return torch.optim.Adam(params, lr=a.learning_rate or 0.001,
                                betas=(0.9, 0.999), eps=1e-8, foreach=fe)
    return torch.optim.SGD(params, lr=a.learning_rate or 0.01, momentum=0.9,
                           foreach=fe)


def train(model, opt, x, y, epochs, batch, seed, max_steps=None):
    """Rows per second of batch work, and the mean loss of the last epoch."""
    loss_fn = torch.nn.CrossEntropyLoss()
    n, rows, work, steps = len(x), 0, 0.0, 0
    batch = min(batch, n)
    g = torch.Generator().manual_seed(seed)
    last = float("nan")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        total, seen = 0.0, 0
        for i in range(0, n, batch):
            if max_steps is not None and steps >= max_steps:
                return rows / work, last
            idx = perm[i:i + batch]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            work += time.perf_counter() - t0
            rows += len(idx)
            steps += 1
            total += float(loss) * len(idx)
            seen += len(idx)
        last = total / seen
    return rows / work, last


def digits(a, hidden):
    with gzip.open(a.digits, "rt") as f:
        table = [[float(v) for v in line.split(",")] for line in f if line.strip()]
    data = torch.tensor(table, dtype=torch.float32)
    x, y = data[:, :64] / 16.0, data[:, 64].long()
    test = torch.arange(len(x)) % 5 == 0          # data/README.md: 360 held out
    xtr, ytr, xte, yte = x[~test], y[~test], x[test], y[test]
    accs = []
    for seed in range(1, a.seeds + 1):
        torch.manual_seed(seed)
        model = mlp(64, hidden, 10)
        opt = optimizer(a, model.parameters())
        sps, _ = train(model, opt, xtr, ytr, a.epochs, a.batch_size, seed)
        with torch.no_grad():
            logits = model(xte)
            acc = float((logits.argmax(1) == yte).float().mean())
            tl = float(torch.nn.functional.cross_entropy(logits, yte))
        accs.append(acc)
        print(f"torch digits mlp=64-{a.hidden}-10 seed={seed} epochs={a.epochs} "
              f"batch_size={a.batch_size} optimizer={a.optimizer} n_train={len(xtr)} "
              f"n_test={len(xte)} held_out_accuracy={acc:.4f} test_loss={tl:.4f} "
              f"samples_per_s={sps:.0f}")
    print(f"torch digits summary mlp=64-{a.hidden}-10 seeds={a.seeds} "
          f"mean_accuracy={sum(accs) / len(accs):.4f} min_accuracy={min(accs):.4f} "
          f"max_accuracy={max(accs):.4f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", default="128,128")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--learning-rate", type=float, default=0.0,
                    help="0: 0.001 (adam), 0.01 (sgd), as aas")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads; 0: leave torch's default")
    ap.add_argument("--foreach", type=int, choices=[0, 1], default=1,
                    help="multi-tensor optimizer (default 1)")
    ap.add_argument("--digits", metavar="CSV_GZ",
                    help="train on digits (row %% 5 == 0 held out) and print accuracy")
    ap.add_argument("--seeds", type=int, default=1, help="digits: seeds 1..N")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    hidden = [int(h) for h in a.hidden.split(",") if h]
    if a.digits:
        if a.learning_rate == 0.0 and a.optimizer == "adam":
            a.learning_rate = 0.003
        digits(a, hidden)
        return
    torch.manual_seed(1)
    x = torch.rand(a.rows, a.dim)
    y = torch.argmax(x[:, :a.classes], 1) % a.classes  # as bench_train.c
    model = mlp(a.dim, hidden, a.classes)
    opt = optimizer(a, model.parameters())
    train(model, opt, x, y, 1, a.batch_size, 2, max_steps=4)  # warm-up
    sps, loss = train(model, opt, x, y, a.epochs, a.batch_size, 1)
    print(f"torch {torch.__version__} mlp={a.dim}-{a.hidden}-{a.classes} rows={a.rows} "
          f"epochs={a.epochs} batch_size={a.batch_size} optimizer={a.optimizer} "
          f"threads={torch.get_num_threads()} foreach={a.foreach} "
          f"samples_per_s={sps:.0f} train_loss={loss:.4f}")


if __name__ == "__main__":
    main()
