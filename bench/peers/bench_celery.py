#!/usr/bin/env python3
"""Celery peer of the aas serving benchmark: the same MLP forward, one input
row per task, on Celery prefork workers with Redis as broker and result
backend (celery_app.py).  Not part of aas: comparison only.

For each MLP and worker count: starts `celery worker --pool prefork
--concurrency N` (one main process, N forked children, each numpy/OpenBLAS
on one thread), waits until it answers a ping, warms up, then measures

  burst    N tasks submitted as fast as one client can (apply_async in a
           loop) and all results collected (ResultSet.join_native);
           jobs/s = N / (first submit -> last result); submit_s is the
           time the client took to send the N tasks
  latency  one task at a time, submit -> result (AsyncResult.get); p50/p99

and checks every burst result against numpy in this process (argmax equal,
probabilities within 1e-4).  Starts its own redis-server (no persistence) on
a free loopback port unless --redis-url is given; stops everything it
started on exit.  Prints a table and one line per figure:

  RESULT peer=celery mlp=784-512-512-10 workers=2 mode=burst jobs=5000 jobs_per_s=421.3 seconds=11.87 submit_s=6.10 payload=bytes
  RESULT peer=celery mlp=784-512-512-10 workers=2 mode=latency jobs=500 p50_ms=4.80 p99_ms=9.40 mean_ms=5.10 payload=bytes

    build-bench/peers-venv/bin/python bench/peers/bench_celery.py --workers 2 --mlp 784-512-512-10 --jobs 5000
    build-bench/peers-venv/bin/python bench/peers/bench_celery.py --workers 1,2 --mlp 64-128-128-10,784-512-512-10 --quick
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import mlp  # noqa: E402


def log(msg):
    print(f"bench_celery: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, name, grace):
    """SIGTERM the process group we started (warm shutdown), SIGKILL after grace s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop in {grace} s; killing it")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class Redis:
    """Our own redis-server on a free loopback port, no persistence."""

    def __init__(self, tmp):
        import redis
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logpath = os.path.join(tmp, "redis.log")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", tmp,
             "--daemonize", "no", "--logfile", self.logpath],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{tail(self.logpath)}")
            try:
                if client.ping():
                    break
            except redis.exceptions.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server not answering on {self.port}")
            time.sleep(0.05)
        client.close()

    def close(self):
        stop(self.proc, "redis-server", 10)


class Worker:
    """`celery worker` subprocess with --pool prefork --concurrency n."""

    def __init__(self, app, url, sizes, seed, n, tmp, timeout):
        self.name = f"aasbench{os.getpid()}n{n}@{socket.gethostname()}"
        self.logpath = os.path.join(tmp, f"worker-{mlp.mlp_name(sizes)}-{n}.log")
        env = dict(os.environ,
                   PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   AAS_PEER_REDIS_URL=url, AAS_PEER_MLP=mlp.mlp_name(sizes),
                   AAS_PEER_SEED=str(seed),
                   # one BLAS thread per process, as one aas worker per core
                   OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.logfile = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celery_app", "worker",
             "--pool", "prefork", "--concurrency", str(n), "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", self.name],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=self.logfile,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready(app, timeout)
        except BaseException:
            self.close()
            raise

    def wait_ready(self, app, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{tail(self.logpath)}")
            replies = app.control.ping(destination=[self.name], timeout=0.5)
            if any(self.name in r for r in replies):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker not ready in {timeout} s:\n{tail(self.logpath)}")

    def close(self):
        stop(self.proc, "celery worker", 20)
        self.logfile.close()


def payloads(rows, kind):
    if kind == "bytes":
        return [r.astype("<f4").tobytes() for r in rows]
    return [r.tolist() for r in rows]


def burst(infer, items, timeout):
    from celery.result import ResultSet
    t0 = time.perf_counter()
    pending = [infer.apply_async((p,)) for p in items]
    t1 = time.perf_counter()
    results = ResultSet(pending).join_native(timeout=timeout, propagate=True)
    return time.perf_counter() - t0, t1 - t0, results


def latency(infer, items, timeout):
    times = []
    for p in items:
        t0 = time.perf_counter()
        infer.apply_async((p,)).get(timeout=timeout)
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1e3


def check(layers, rows, results):
    """Every result is the real forward: argmax equal, probabilities within 1e-4."""
    want = mlp.forward(layers, rows)
    got = np.array([r["probs"] for r in results], dtype=np.float32)
    arg = np.array([r["argmax"] for r in results])
    err = float(np.abs(got - want).max())
    bad = int((arg != got.argmax(axis=1)).sum())
    if got.shape != want.shape or err > 1e-4 or bad:
        raise RuntimeError(f"results differ from numpy: max |diff| {err:g}, {bad} bad argmax")
    return err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="2",
                    help="worker process counts, comma list (default 2)")
    ap.add_argument("--mlp", default="784-512-512-10",
                    help="MLP shapes, comma list (default 784-512-512-10)")
    ap.add_argument("--jobs", type=int, default=5000, help="burst size (default 5000)")
    ap.add_argument("--latency-jobs", type=int, default=500,
                    help="one-at-a-time tasks for p50/p99 (default 500)")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up tasks (default 200)")
    ap.add_argument("--payload", choices=("bytes", "list"), default="bytes",
                    help="row as f32 bytes (base64 in JSON) or a list of floats (default bytes)")
    ap.add_argument("--redis-url", help="use this Redis instead of starting redis-server "
                    "(redis://host:port/db, or redis+socket:///path for a Unix socket)")
    ap.add_argument("--seed", type=int, default=mlp.DEFAULT_SEED, help="weight seed")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per phase (default 300)")
    ap.add_argument("--quick", action="store_true",
                    help="small run: 1000-task burst, 100 latency tasks, 50 warm-up")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.latency_jobs, args.warmup = 1000, 100, 50
    workers = [int(w) for w in args.workers.split(",")]
    shapes = [mlp.parse_mlp(s) for s in args.mlp.split(",")]

    tmp = tempfile.mkdtemp(prefix="aas-bench-celery-")
    server = worker = None
    rows_out = []
    try:
        if args.redis_url:
            url = args.redis_url
        else:
            if not shutil.which("redis-server"):
                log("redis-server not found (apt-get install redis-server) and no --redis-url")
                return 77
            server = Redis(tmp)
            url = server.url
        # celery_app reads its broker URL at import
        os.environ["AAS_PEER_REDIS_URL"] = url
        import celery_app
        app, infer = celery_app.app, celery_app.infer
        rng = np.random.default_rng(args.seed + 1)
        for sizes in shapes:
            name = mlp.mlp_name(sizes)
            layers = mlp.init_weights(sizes, args.seed)
            rows = rng.standard_normal((args.jobs, sizes[0]), dtype=np.float32)
            items = payloads(rows, args.payload)
            for n in workers:
                log(f"mlp {name}, {n} worker process(es): starting celery worker")
                worker = Worker(app, url, sizes, args.seed, n, tmp, 60)
                warm = items[:max(args.warmup, 1)]
                burst(infer, warm, args.timeout)                  # fork/import/connect paths
                latency(infer, warm[:min(len(warm), 20)], args.timeout)
                secs, submit, results = burst(infer, items, args.timeout)
                err = check(layers, rows, results)
                jps = args.jobs / secs
                print(f"RESULT peer=celery mlp={name} workers={n} mode=burst jobs={args.jobs} "
                      f"jobs_per_s={jps:.1f} seconds={secs:.3f} submit_s={submit:.3f} "
                      f"payload={args.payload}", flush=True)
                lat = latency(infer, items[:args.latency_jobs], args.timeout)
                p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
                print(f"RESULT peer=celery mlp={name} workers={n} mode=latency "
                      f"jobs={len(lat)} p50_ms={p50:.2f} p99_ms={p99:.2f} "
                      f"mean_ms={lat.mean():.2f} payload={args.payload}", flush=True)
                rows_out.append((name, n, args.jobs, jps, len(lat), p50, p99, err))
                worker.close()
                worker = None
        print()
        print(f"Celery {__import__('celery').__version__} prefork, Redis broker + result backend, "
              f"payload {args.payload}, load {os.getloadavg()[0]:.2f}")
        print(f"{'MLP':<16} {'workers':>7} {'burst':>6} {'tasks/s':>9} "
              f"{'one-by-one':>10} {'p50 ms':>7} {'p99 ms':>7} {'max |diff|':>10}")
        for name, n, jobs, jps, nl, p50, p99, err in rows_out:
            print(f"{name:<16} {n:>7} {jobs:>6} {jps:>9.1f} {nl:>10} {p50:>7.2f} {p99:>7.2f} "
                  f"{err:>10.1e}")
        return 0
    finally:
        if worker is not None:
            worker.close()
        if "celery_app" in sys.modules:
            sys.modules["celery_app"].app.close()
        if server is not None:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
