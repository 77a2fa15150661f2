#!/usr/bin/env python3
"""sklearn_text.py TRAIN.tsv TEST.tsv [--json] - the scikit-learn reference
of the aas text classifier (issue 14): a TF-IDF + logistic regression
baseline on the same labeled TSV files (lines "label<TAB>text"; a first-
column "#" line is a comment).  Not part of aas.

Model: TfidfVectorizer(analyzer='char_wb', ngram_range=(1, 2),
sublinear_tf=True) + LogisticRegression(max_iter=1000) (solver lbfgs, C 1.0
unless --solver/--C say otherwise); `--analyzer char --ngram 1,3` is the
char 1-3 variant.  It prints:
  - held-out accuracy on TEST;
  - training wall time: vectorizer fit_transform + model fit, files already
    read (perf_counter; the two parts are shown too);
  - the threads: OMP/OpenBLAS/MKL thread counts are set to --threads
    (default 1) before numpy loads and enforced with threadpoolctl; the CPUs
    the process may run on (--cpus pins it, like taskset);
  - inference at batch 1: vectorizer.transform([text]) + predict for single
    reviews of about --chars characters (default 200: the test reviews
    closest to that length), median and p90 of --runs timed calls (default
    3000) after a warm-up;
  - for reference, the batch throughput of transform + predict on all of TEST.

Setup: bench/peers/setup-venv-text (a venv with scikit-learn, default
~/.cache/aas/venv-text), then
  ~/.cache/aas/venv-text/bin/python bench/peers/sklearn_text.py \\
      data/text/zh-reviews-train.tsv data/text/zh-reviews-test.tsv
(the data: tools/fetch-text-data).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(
        description="scikit-learn TF-IDF + logistic regression reference "
                    "for aas text classification (not part of aas)")
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object instead of the text report")
    ap.add_argument("--analyzer", default="char_wb",
                    choices=["char_wb", "char", "word"],
                    help="TfidfVectorizer analyzer (default char_wb)")
    ap.add_argument("--ngram", default="1,2",
                    help="ngram_range as MIN,MAX (default 1,2)")
    ap.add_argument("--C", type=float, default=1.0,
                    help="LogisticRegression C (default 1.0)")
    ap.add_argument("--solver", default="lbfgs",
                    help="LogisticRegression solver (default lbfgs, "
                         "scikit-learn's default)")
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads (default 1)")
    ap.add_argument("--cpus", default=None,
                    help="pin the process to these CPUs, e.g. 0 or 0,1 "
                         "(default: as started)")
    ap.add_argument("--chars", type=int, default=200,
                    help="length in characters of the reviews timed at "
                         "batch 1 (default 200)")
    ap.add_argument("--runs", type=int, default=3000,
                    help="timed batch-1 calls (default 3000)")
    return ap.parse_args()


args = parse_args()
# Thread counts must be in the environment before numpy/scipy load.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
            "NUMEXPR_NUM_THREADS"):
    os.environ[var] = str(args.threads)
if args.cpus:
    os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402


def read_tsv(path):
    labels, texts = [], []
    with open(path, encoding="utf-8", newline="\n") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            label, sep, text = line.partition("\t")
            if not sep:
                sys.exit(f"{path}:{n}: no tab (want label<TAB>text)")
            labels.append(label)
            texts.append(text)
    return labels, texts


def cpu_model():
    """'model name' of /proc/cpuinfo, with the family/model numbers."""
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first CPU is enough
                k, _, v = line.partition(":")
                info[k.strip()] = v.strip()
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or "unknown"
    if "cpu family" in info and "model" in info:
        name += f" (family {info['cpu family']}, model {info['model']})"
    return name


def main():
    lo, hi = (int(x) for x in args.ngram.split(","))
    y_train, x_train = read_tsv(args.train)
    y_test, x_test = read_tsv(args.test)

    with threadpool_limits(limits=args.threads):
        vec = TfidfVectorizer(analyzer=args.analyzer, ngram_range=(lo, hi),
                              sublinear_tf=True)
        clf = LogisticRegression(max_iter=args.max_iter, C=args.C,
                                 solver=args.solver)
        t0 = time.perf_counter()
        xt = vec.fit_transform(x_train)
        t1 = time.perf_counter()
        clf.fit(xt, y_train)
        t2 = time.perf_counter()

        # held-out accuracy, and the batch throughput of the same work
        t3 = time.perf_counter()
        pred = clf.predict(vec.transform(x_test))
        t4 = time.perf_counter()
        acc = float(np.mean(np.asarray(pred) == np.asarray(y_test)))

        # batch 1: the test reviews closest to --chars characters
        by_len = sorted(x_test, key=lambda t: (abs(len(t) - args.chars), t))
        sample = by_len[:min(200, len(by_len))]
        for t in sample[:50]:  # warm-up
            clf.predict(vec.transform([t]))
        times, tfeat = [], []
        for i in range(args.runs):
            t = sample[i % len(sample)]
            s = time.perf_counter()
            x = vec.transform([t])
            s2 = time.perf_counter()
            clf.predict(x)
            e = time.perf_counter()
            times.append(e - s)
            tfeat.append(s2 - s)
        times.sort()
        med = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        med_feat = statistics.median(tfeat)

    pools = [{"api": p.get("user_api"), "lib": p.get("internal_api"),
              "threads": p.get("num_threads")} for p in threadpool_info()]
    res = {
        "peer": "sklearn",
        "train_file": args.train, "test_file": args.test,
        "n_train": len(x_train), "n_test": len(x_test),
        "classes": sorted(set(y_train)),
        "vectorizer": f"TfidfVectorizer(analyzer='{args.analyzer}', "
                      f"ngram_range=({lo}, {hi}), sublinear_tf=True)",
        "model": f"LogisticRegression(solver='{clf.solver}', C={clf.C}, "
                 f"max_iter={clf.max_iter})",
        "n_features": len(vec.vocabulary_),
        "lr_iterations": int(np.max(clf.n_iter_)),
        "accuracy": acc,
        "correct": int(np.sum(np.asarray(pred) == np.asarray(y_test))),
        "train_s": t2 - t0, "vectorize_s": t1 - t0, "fit_s": t2 - t1,
        "batch1_median_us": med * 1e6, "batch1_p90_us": p90 * 1e6,
        "batch1_transform_median_us": med_feat * 1e6,
        "batch1_runs": args.runs, "batch1_texts": len(sample),
        "batch1_mean_chars": statistics.mean(len(t) for t in sample),
        "batch1_mean_bytes": statistics.mean(len(t.encode()) for t in sample),
        "test_batch_s": t4 - t3,
        "test_batch_us_per_review": (t4 - t3) / max(1, len(x_test)) * 1e6,
        "threads": args.threads,
        "cpus": sorted(os.sched_getaffinity(0)),
        "threadpools": pools,
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__, "numpy": np.__version__,
    }
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    print(f"train {res['train_file']}: {res['n_train']} texts, "
          f"test {res['test_file']}: {res['n_test']} texts, "
          f"classes {', '.join(res['classes'])}")
    print(f"model      {res['vectorizer']} + {res['model']}; "
          f"{res['n_features']} features, {res['lr_iterations']} solver "
          f"iterations")
    print(f"accuracy   {acc * 100:.2f} % ({res['correct']}/{res['n_test']}) "
          f"held out")
    print(f"training   {res['train_s']:.3f} s wall (vectorizer "
          f"{res['vectorize_s']:.3f} s + model fit {res['fit_s']:.3f} s; "
          f"files already read)")
    print(f"batch 1    median {res['batch1_median_us']:.1f} us, p90 "
          f"{res['batch1_p90_us']:.1f} us per review (transform + predict; "
          f"{res['batch1_runs']} calls over {res['batch1_texts']} test "
          f"reviews of {res['batch1_mean_chars']:.0f} chars / "
          f"{res['batch1_mean_bytes']:.0f} UTF-8 bytes on average; "
          f"transform alone: median {res['batch1_transform_median_us']:.1f} "
          f"us)")
    print(f"batch all  {res['test_batch_us_per_review']:.1f} us per review "
          f"({res['n_test']} reviews in one transform + predict, "
          f"{res['test_batch_s']:.3f} s)")
    pool_s = ", ".join(f"{p['lib']}={p['threads']}" for p in pools) or "none"
    print(f"threads    {args.threads} (OMP/OpenBLAS/MKL env + threadpoolctl; "
          f"pools: {pool_s}); "
          f"CPUs allowed {res['cpus']} of {os.cpu_count()}")
    print(f"cpu        {res['cpu']}; python {res['python']}, scikit-learn "
          f"{res['sklearn']}, numpy {res['numpy']}")
    print(f"RESULT peer=sklearn analyzer={args.analyzer} ngram={lo},{hi} "
          f"train={res['n_train']} test={res['n_test']} "
          f"accuracy={acc:.4f} train_s={res['train_s']:.3f} "
          f"batch1_us={res['batch1_median_us']:.1f} "
          f"batch1_p90_us={res['batch1_p90_us']:.1f} "
          f"batch_all_us={res['test_batch_us_per_review']:.1f} "
          f"threads={args.threads} solver={clf.solver} C={clf.C}")


if __name__ == "__main__":
    main()
