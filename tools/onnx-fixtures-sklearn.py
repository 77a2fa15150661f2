#!/usr/bin/env python3
"""Make the scikit-learn ONNX fixtures in data/onnx/sklearn-*/ (issue 13).

Not part of the product: it trains four classical models on the digits data,
converts each with skl2onnx and records ONNX Runtime's outputs on 20 held-out
rows, so tests/test_onnx_conformance.c (and tests/test_onnx_ml.c) can check
that aas computes the same thing.

    /usr/bin/python3 -m venv --system-site-packages ~/.cache/aas/venv-onnx
    ~/.cache/aas/venv-onnx/bin/pip install skl2onnx==1.14.1 onnxruntime==1.32.0
    ~/.cache/aas/venv-onnx/bin/python tools/onnx-fixtures-sklearn.py

Versions used for the committed fixtures (the script prints its own at the
end; other versions may give different trees or bytes):
    python 3.11.2, numpy 1.24.2, scikit-learn 1.2.1, onnx 1.12.0 (all
    Debian 12's), protobuf 7.36.2, skl2onnx 1.14.1, onnxruntime 1.32.0.
skl2onnx is pinned to 1.14.1 because later releases need onnx >= 1.13
(onnx.helper.np_dtype_to_tensor_dtype) and Debian 12 ships onnx 1.12.

Data: data/digits.csv.gz (data/README.md); rows whose 0-based index is a
multiple of 5 are held out (as tools/train_digits_reference.py), the others
train; the fixture inputs are the first 20 held-out rows, raw pixels 0..16
as float32 [20, 64].  Fixed random_state everywhere.

Each fixture directory follows the ONNX backend test layout:
    model.onnx
    test_data_set_0/input_0.pb      TensorProto float32 [20, 64]
    test_data_set_0/output_K.pb     one per graph output, ONNX Runtime's:
                                    the label int64 [20], the probabilities
                                    float32 [20, 10] (a ZipMap's list of
                                    dicts is written as that tensor: aas's
                                    ZipMap passes the tensor through)

Targets ai.onnx opset 17 and ai.onnx.ml opset 3 at most.
"""
import gzip
import os
import platform
import sys

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import skl2onnx
from onnx import numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_ROWS = 20
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
MAX_BYTES = 1 << 20


def load_digits_csv(path):
    with gzip.open(path, "rt") as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    a = np.array(rows, dtype=np.float64)
    return a[:, :64].astype(np.float32), a[:, 64].astype(np.int64)


def models():
    """(name, estimator, zipmap): ZipMap kept on LogisticRegression only, so
    one fixture exercises it; LogisticRegression behind a StandardScaler
    (which also exercises Scaler, and lets lbfgs converge)."""
    return [
        ("logreg", make_pipeline(StandardScaler(),
                                 LogisticRegression(max_iter=1000, random_state=0)), True),
        ("rf", RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0), False),
        ("gb", GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0), False),
        ("svc", SVC(probability=True, random_state=0), False),
    ]


def ort_outputs(model_bytes, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(None, {sess.get_inputs()[0].name: x})
    return names, res


def as_tensor(value, n_classes):
    """A ZipMap output (list of {class: prob}) becomes float32 [N, C] in
    class order; tensors pass unchanged."""
    if isinstance(value, list):
        out = np.zeros((len(value), n_classes), dtype=np.float32)
        for i, d in enumerate(value):
            keys = sorted(d.keys())
            if len(keys) != n_classes:
                raise SystemExit("ZipMap row %d has %d classes" % (i, len(keys)))
            out[i, :] = [d[k] for k in keys]
        return out
    return np.asarray(value)


def canonical_order(graph):
    """skl2onnx emits nodes (and initializers) in an order that depends on
    Python's string hashing; rewrite them in one deterministic topological
    order (ready nodes by op type then output name) so reruns give the same
    bytes."""
    nodes = list(graph.node)
    avail = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    out = []
    while nodes:
        ready = [n for n in nodes if all(i in avail for i in n.input)]
        if not ready:
            raise SystemExit("graph is not a DAG")
        n = min(ready, key=lambda n: (n.op_type, list(n.output)))
        nodes.remove(n)
        out.append(n)
        avail.update(n.output)
    copies = [type(n)() for n in out]
    for c, n in zip(copies, out):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)
    inits = sorted(graph.initializer, key=lambda t: t.name)
    icopies = [type(t)() for t in inits]
    for c, t in zip(icopies, inits):
        c.CopyFrom(t)
    del graph.initializer[:]
    graph.initializer.extend(icopies)


def write_fixture(name, est, zipmap, x_train, y_train, x_test, outdir=None):
    est.fit(x_train, y_train)
    clf = est.steps[-1][1] if hasattr(est, "steps") else est
    options = {id(clf): {"zipmap": zipmap}} if hasattr(clf, "classes_") else {}
    onx = convert_sklearn(est, "digits_" + name,
                          [("input", FloatTensorType([None, 64]))],
                          target_opset=TARGET_OPSET, options=options)
    canonical_order(onx.graph)
    # skl2onnx lists the opset imports in set order, which changes with
    # Python's string hashing; sort them so reruns give the same bytes.
    imports = sorted(onx.opset_import, key=lambda o: o.domain)
    imports = [(o.domain, o.version) for o in imports]
    del onx.opset_import[:]
    for dom, ver in imports:
        onx.opset_import.add(domain=dom, version=ver)
    model_bytes = onx.SerializeToString()
    if len(model_bytes) > MAX_BYTES:
        raise SystemExit("%s: model is %d bytes (> %d)" % (name, len(model_bytes), MAX_BYTES))
    onnx.checker.check_model(onx)
    names, res = ort_outputs(model_bytes, x_test)

    d = outdir or os.path.join(ROOT, "data", "onnx", "sklearn-" + name)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(ds, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x_test, onx.graph.input[0].name).SerializeToString())
    n_classes = len(getattr(clf, "classes_", []))
    for k, (oname, value) in enumerate(zip(names, res)):
        t = as_tensor(value, n_classes)
        if k == 0 and n_classes:
            t = t.astype(np.int64)
        with open(os.path.join(ds, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t, oname).SerializeToString())

    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in onx.graph.node})
    line = "%s: %d bytes, opsets %s, ops %s" % (
        os.path.relpath(d, ROOT), len(model_bytes),
        {o.domain or "ai.onnx": o.version for o in onx.opset_import},
        ", ".join("%s:%s" % o for o in ops))
    if n_classes:
        label = np.asarray(res[0]).astype(np.int64)
        probs = as_tensor(res[1], n_classes)
        agree = int(np.sum(label == clf.classes_[np.argmax(probs, axis=1)]))
        line += ", label==argmax(probs) on %d/%d rows, sklearn predict agrees on %d/%d" % (
            agree, len(label), int(np.sum(est.predict(x_test) == label)), len(label))
    print(line)


def edge_cases():
    """Small models for tests/data/onnx-ml/: the two-class paths of each
    classifier, the other SVM kernels, regressors, L2/MAX normalisation.
    (name, estimator, binary): binary trains on digit < 5 vs >= 5; ZipMap
    off everywhere."""
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.preprocessing import Normalizer
    from sklearn.tree import DecisionTreeClassifier

    def logreg():
        return LogisticRegression(max_iter=5000, random_state=0)

    def svc(**kw):
        return SVC(random_state=0, **kw)

    return [
        ("logreg-binary", logreg(), True),
        ("rf-binary", RandomForestClassifier(n_estimators=3, max_depth=4, random_state=0), True),
        ("gb-binary", GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0),
         True),
        ("svc-binary-proba", svc(probability=True), True),
        ("svc-binary", svc(), True),
        ("svc-linear", svc(kernel="linear", probability=True), False),
        ("svc-poly", svc(kernel="poly", degree=3, probability=True), False),
        ("svc-sigmoid", svc(kernel="sigmoid", gamma=0.0005, probability=True), False),
        ("svc-noproba", svc(), False),
        ("tree-multiclass", DecisionTreeClassifier(max_depth=5, random_state=0), False),
        ("l2-logreg", make_pipeline(Normalizer(norm="l2"), logreg()), False),
        ("max-logreg", make_pipeline(Normalizer(norm="max"), logreg()), False),
        ("rf-regressor", RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0),
         False),
        ("gb-regressor", GradientBoostingRegressor(n_estimators=5, max_depth=2, random_state=0),
         False),
        ("linear-regressor", LinearRegression(), False),
    ]


def main():
    x, y = load_digits_csv(os.path.join(ROOT, "data", "digits.csv.gz"))
    held = np.arange(len(y)) % 5 == 0
    x_train, y_train = x[~held], y[~held]
    x_test = np.ascontiguousarray(x[held][:N_ROWS])
    for name, est, zipmap in models():
        write_fixture(name, est, zipmap, x_train, y_train, x_test)
    # Edge cases, smaller training sets (every third training row, every
    # ninth for SVMs) so the models stay small; regressors predict the digit
    # as a number.
    for name, est, binary in edge_cases():
        y = (y_train >= 5).astype(np.int64) if binary else y_train
        if not hasattr(est, "predict_proba") and not hasattr(est, "decision_function"):
            y = y_train.astype(np.float32)
        step = 9 if name.startswith("svc") else 3   # fewer support vectors
        write_fixture(name, est, False, x_train[::step], y[::step], x_test,
                      os.path.join(ROOT, "tests", "data", "onnx-ml", name))
    print("python %s, numpy %s, scikit-learn %s, onnx %s, skl2onnx %s, onnxruntime %s" %
          (platform.python_version(), np.__version__, sklearn.__version__, onnx.__version__,
           skl2onnx.__version__, ort.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
