#!/usr/bin/python3
"""PyTorch peer of bench_train: the same MLP, batch size, optimizer and thread
count, trained on synthetic data; prints samples/s of training steps
(forward, cross-entropy, backward, optimizer step), as bench_train does.

    OMP_NUM_THREADS=1 bench/bench_train_torch.py --dim 784 --hidden 512,512
    bench/bench_train_torch.py --digits data/digits.csv.gz   # held-out accuracy

Not part of aas: Debian's python3-torch, for comparison only.
"""
import argparse
import gzip
import sys
import time

try:
    import torch
except ImportError:
    print("bench_train_torch: python3-torch is not installed "
          "(apt-get install python3-torch)", file=sys.stderr)
    sys.exit(77)


def mlp(dim, hidden, classes):
    layers, prev = [], dim
    for h in hidden:
        lin = torch.nn.Linear(prev, h)
        torch.nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")  # He, as aas
        torch.nn.init.zeros_(lin.bias)
        layers += [lin, torch.nn.ReLU()]
        prev = h
    out = torch.nn.Linear(prev, classes)
    torch.nn.init.xavier_normal_(out.weight)
    torch.nn.init.zeros_(out.bias)
    return torch.nn.Sequential(*layers, out)


def optimizer(name, params, lr):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr or 0.001)
    return torch.optim.SGD(params, lr=lr or 0.01, momentum=0.9)


def train(model, opt, x, y, epochs, batch):
    loss_fn = torch.nn.CrossEntropyLoss()
    n, steps, work = len(x), 0, 0.0
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            work += time.perf_counter() - t0
            steps += len(idx)
    return steps / work, float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", default="128,128")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    ap.add_argument("--learning-rate", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--digits", metavar="CSV_GZ",
                    help="train on digits (row %% 5 == 0 held out) and print accuracy")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    hidden = [int(h) for h in a.hidden.split(",") if h]
    if a.digits:
        with gzip.open(a.digits, "rt") as f:
            rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
        data = torch.tensor(rows, dtype=torch.float32)
        x, y = data[:, :64] / 16.0, data[:, 64].long()
        test = torch.arange(len(x)) % 5 == 0
        model = mlp(64, hidden, 10)
        opt = optimizer(a.optimizer, model.parameters(), a.learning_rate)
        sps, _ = train(model, opt, x[~test], y[~test], a.epochs, a.batch_size)
        with torch.no_grad():
            acc = float((model(x[test]).argmax(1) == y[test]).float().mean())
        print(f"torch digits mlp=64-{a.hidden}-10 epochs={a.epochs} batch_size={a.batch_size} "
              f"optimizer={a.optimizer} held_out_accuracy={acc:.4f} samples_per_s={sps:.0f}")
        return
    x = torch.rand(a.rows, a.dim)
    y = torch.argmax(x[:, :a.classes], 1) % a.classes
    model = mlp(a.dim, hidden, a.classes)
    opt = optimizer(a.optimizer, model.parameters(), a.learning_rate)
    train(model, opt, x[:a.batch_size * 4], y[:a.batch_size * 4], 1, a.batch_size)  # warm-up
    sps, loss = train(model, opt, x, y, a.epochs, a.batch_size)
    print(f"torch mlp={a.dim}-{a.hidden}-{a.classes} rows={a.rows} epochs={a.epochs} "
          f"batch_size={a.batch_size} optimizer={a.optimizer} threads={torch.get_num_threads()} "
          f"samples_per_s={sps:.0f} train_loss={loss:.4f}")


if __name__ == "__main__":
    main()
