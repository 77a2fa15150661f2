#!/usr/bin/env python3
"""ONNX Runtime peer of the aas forward benchmark: the same MLP (mlp.py,
Gemm + Relu, Softmax) on onnxruntime's CPU execution provider, at several
batch sizes and intra-op thread counts.  Not part of aas: comparison only.

Per point: one InferenceSession (graph optimizations on, intra-op threads t,
inter-op 1, sequential), a warm-up, then session.run timed call by call
until at least --min-time seconds (default 0.3) and 20 calls have passed;
ms is the median call, GFLOP/s = batch * 2 * sum(in * out) / median.  The
output of each session is checked once against numpy (max |diff| <= 1e-4).
Prints a table and one line per point:

  RESULT peer=onnxruntime mlp=784-512-512-10 batch=64 threads=1 ms=0.3462 gflops=247.23 rows_per_s=184866 calls=855 op=gemm

    build-bench/peers-venv/bin/python bench/peers/bench_onnxruntime.py
    build-bench/peers-venv/bin/python bench/peers/bench_onnxruntime.py --mlp 784-512-512-10 --batch 1,64 --threads 1 --quick
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import mlp  # noqa: E402


def session(model_bytes, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=so,
                                providers=["CPUExecutionProvider"])


def time_calls(run, min_time, min_calls):
    """Per-call seconds of run() until min_time and min_calls are both reached."""
    times = []
    clock = time.perf_counter
    start = clock()
    while True:
        t0 = clock()
        run()
        t1 = clock()
        times.append(t1 - t0)
        if len(times) >= min_calls and t1 - start >= min_time:
            return np.array(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mlp", default="64-128-128-10,784-512-512-10",
                    help="MLP shapes, comma list (default 64-128-128-10,784-512-512-10)")
    ap.add_argument("--batch", default="1,8,64,256", help="batch sizes (default 1,8,64,256)")
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts (default 1,2)")
    ap.add_argument("--op", choices=("gemm", "matmul"), default="gemm",
                    help="dense layer as Gemm or MatMul + Add (default gemm)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="timed seconds per point (default 0.3)")
    ap.add_argument("--warmup", type=float, default=0.1,
                    help="warm-up seconds per point (default 0.1)")
    ap.add_argument("--seed", type=int, default=mlp.DEFAULT_SEED, help="weight seed")
    ap.add_argument("--quick", action="store_true", help="0.1 s per point, 0.03 s warm-up")
    args = ap.parse_args()
    if args.quick:
        args.min_time, args.warmup = 0.1, 0.03
    shapes = [mlp.parse_mlp(s) for s in args.mlp.split(",")]
    batches = [int(b) for b in args.batch.split(",")]
    threads = [int(t) for t in args.threads.split(",")]

    import onnxruntime as ort
    rng = np.random.default_rng(args.seed + 1)
    out = []
    for sizes in shapes:
        name = mlp.mlp_name(sizes)
        layers = mlp.init_weights(sizes, args.seed)
        model = mlp.build_onnx(layers, op=args.op).SerializeToString()
        flops = mlp.flops_per_row(sizes)
        xs = {b: rng.standard_normal((b, sizes[0]), dtype=np.float32) for b in batches}
        for t in threads:
            sess = session(model, t)
            probe = xs[max(batches)]
            err = float(np.abs(sess.run(["probs"], {"x": probe})[0]
                               - mlp.forward(layers, probe)).max())
            if not err <= 1e-4:
                print(f"bench_onnxruntime: {name} threads={t}: ONNX output differs from "
                      f"numpy by {err:g}", file=sys.stderr)
                return 1
            for b in batches:
                feed = {"x": xs[b]}
                run = lambda: sess.run(["probs"], feed)  # noqa: E731
                time_calls(run, args.warmup, 5)
                calls = time_calls(run, args.min_time, 20)
                ms = float(np.median(calls)) * 1e3
                gflops = b * flops / (ms * 1e-3) / 1e9
                print(f"RESULT peer=onnxruntime mlp={name} batch={b} threads={t} "
                      f"ms={ms:.4f} gflops={gflops:.2f} rows_per_s={b / (ms * 1e-3):.0f} "
                      f"calls={len(calls)} op={args.op}",
                      flush=True)
                out.append((name, b, t, ms, gflops, len(calls), err))
    print()
    print(f"onnxruntime {ort.__version__} CPUExecutionProvider, op {args.op}, "
          f"median call of >= {args.min_time} s per point, load {os.getloadavg()[0]:.2f}")
    print(f"{'MLP':<16} {'batch':>5} {'threads':>7} {'ms/forward':>10} {'GFLOP/s':>8} "
          f"{'rows/s':>10} {'calls':>6} {'max |diff|':>10}")
    for name, b, t, ms, gflops, n, err in out:
        print(f"{name:<16} {b:>5} {t:>7} {ms:>10.4f} {gflops:>8.2f} {b / (ms * 1e-3):>10.0f} "
              f"{n:>6} {err:>10.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
