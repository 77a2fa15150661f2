#!/usr/bin/env python3
"""ONNX Runtime peer of bench/bench_onnx.c: the same model files, batch
sizes, inputs and timing method on onnxruntime's CPU execution provider
(issue 13, "Performance"; bench/run_onnx_bench.sh runs both).  Not part of
aas: comparison only.

    ort_bench.py [--threads T] [--batch 1,8,64,256] NAME=PATH ...

Per model: one InferenceSession (graph optimizations all on, intra-op
threads --threads, default OMP_NUM_THREADS or 1; inter-op 1; sequential
execution).  Per batch size: a warm-up of at least --warmup-ms and 5 calls,
then session.run timed call by call until at least --min-ms and --min-runs
have passed; the figure is the median call (us per batch, rows/s), as
bench_onnx reports for aas_model_infer.  Every tensor output is fetched; a
ZipMap's list of dicts is not (it would time Python building dicts; aas
returns the probability tensor).

Inputs as bench_onnx: a model 64 values wide per row gets the rows of
--digits (raw pixels 0..16), any other width
x[k] = ((k * 7919) % 2001) / 1000 - 1 over the flat batch, reshaped to the
model's input shape ([batch, 1, 8, 8] for the CNN).

Also times an Identity graph on [1, 64] the same way: the cost of a
session.run call from Python that does no work, which every ORT figure
includes and bench_onnx's C calls do not.  Prints:

    RESULT peer=ort model=NAME batch=B threads=T us_per_batch=... rows_per_s=... runs=N
    FLOOR peer=ort threads=T us_per_call=...
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np


def session(model, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])


def load_digits(path):
    try:
        with gzip.open(path, "rt") as f:
            a = np.loadtxt(f, delimiter=",", dtype=np.float32)
        return a[:, :64]
    except OSError as e:
        print(f"ort_bench: {path}: {e}; 64-wide models get the generated inputs",
              file=sys.stderr)
        return None


def make_input(rows, dim, digits):
    """rows x dim f32, the values bench_onnx.c's fill_input writes."""
    if dim == 64 and digits is not None:
        return digits[np.arange(rows) % len(digits)].copy()
    k = np.arange(rows * dim, dtype=np.int64)
    return (((k * 7919) % 2001).astype(np.float32) / np.float32(1000.0)
            - np.float32(1.0)).reshape(rows, dim)


def time_calls(run, min_s, min_runs, warmup_s):
    clock = time.perf_counter
    start = clock()
    i = 0
    while i < 5 or clock() - start < warmup_s:
        run()
        i += 1
    times = []
    start = clock()
    while True:
        t0 = clock()
        run()
        t1 = clock()
        times.append(t1 - t0)
        if len(times) >= min_runs and t1 - start >= min_s:
            return float(np.median(times)) * 1e6, len(times)


def floor_model():
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "floor",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", metavar="NAME=PATH")
    ap.add_argument("--batch", default="1,8,64,256", help="batch sizes (default 1,8,64,256)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                    help="intra-op threads (default OMP_NUM_THREADS, else 1)")
    ap.add_argument("--min-ms", type=float, default=300, help="timed ms per point (default 300)")
    ap.add_argument("--min-runs", type=int, default=20, help="timed calls per point (default 20)")
    ap.add_argument("--warmup-ms", type=float, default=100, help="warm-up ms per point (default 100)")
    ap.add_argument("--digits", default="data/digits.csv.gz",
                    help="rows for 64-wide models (default data/digits.csv.gz)")
    args = ap.parse_args()
    try:
        batches = [int(b) for b in args.batch.split(",")]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1 or args.threads < 1 or args.min_runs < 1:
        ap.error("--batch wants sizes >= 1 like 1,8,64; --threads and --min-runs >= 1")
    specs = []
    for m in args.models:
        name, sep, path = m.partition("=")
        if not sep or not name or not path:
            ap.error(f"{m}: want NAME=PATH")
        specs.append((name, path))

    import onnxruntime as ort
    digits = load_digits(args.digits)
    timing = (args.min_ms / 1e3, args.min_runs, args.warmup_ms / 1e3)
    failed = 0
    rows = []
    for name, path in specs:
        try:
            sess = session(path, args.threads)
        except Exception as e:  # noqa: BLE001 - ORT raises several types
            print(f"ort_bench: {name} ({path}): {e}", file=sys.stderr)
            print(f"SKIP peer=ort model={name} reason=load_failed", flush=True)
            failed = 1
            continue
        inp = sess.get_inputs()[0]
        rest = [d for d in inp.shape[1:]]
        if not all(isinstance(d, int) for d in rest):
            print(f"ort_bench: {name}: input {inp.name} has symbolic non-batch dims {inp.shape}",
                  file=sys.stderr)
            failed = 1
            continue
        dim = int(np.prod(rest)) if rest else 1
        fetch = [o.name for o in sess.get_outputs() if o.type.startswith("tensor(")]
        for b in batches:
            x = make_input(b, dim, digits).reshape([b] + rest)
            feed = {inp.name: x}
            us, n = time_calls(lambda: sess.run(fetch, feed), *timing)  # noqa: B023
            print(f"RESULT peer=ort model={name} batch={b} threads={args.threads} "
                  f"us_per_batch={us:.2f} rows_per_s={b / (us * 1e-6):.0f} runs={n}", flush=True)
            rows.append((name, dim, b, us, n))
    floor = session(floor_model(), args.threads)
    fx = {"x": make_input(1, 64, None)}
    floor_us, _ = time_calls(lambda: floor.run(["y"], fx), *timing)
    print(f"FLOOR peer=ort threads={args.threads} us_per_call={floor_us:.2f}", flush=True)

    print(f"\nonnxruntime {ort.__version__} CPUExecutionProvider, median call of >= "
          f"{args.min_ms:.0f} ms per point, {args.threads} intra-op thread"
          f"{'' if args.threads == 1 else 's'}, load {os.getloadavg()[0]:.2f}; "
          f"an empty call (Identity) costs {floor_us:.2f} us")
    print(f"{'model':<20} {'in':>6} {'batch':>6} {'us/batch':>12} {'rows/s':>12} {'runs':>7}")
    for name, dim, b, us, n in rows:
        print(f"{name:<20} {dim:>6} {b:>6} {us:>12.2f} {b / (us * 1e-6):>12.0f} {n:>7}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
