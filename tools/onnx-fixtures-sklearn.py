#!/usr/bin/env python3
"""Make the scikit-learn ONNX fixtures in data/onnx/sklearn-*/ (issue 13).

Not part of the product: it trains four classical models on the digits data,
converts each with skl2onnx and records ONNX Runtime's outputs on 20 held-out
rows, so tests/test_onnx_conformance.c (and tests/test_onnx_ml.c) can check
that aas computes the same thing.

    /usr/bin/python3 -m venv --system-site-packages .venv-onnx
    .venv-onnx/bin/pip install skl2onnx==1.14.1 onnxruntime==1.32.0
    .venv-onnx/bin/python tools/onnx-fixtures-sklearn.py

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


def write_fixture(name, est, zipmap, x_train, y_train, x_test):
    est.fit(x_train, y_train)
    clf = est.steps[-1][1] if hasattr(est, "steps") else est
    options = {id(clf): {"zipmap": zipmap}}
    onx = convert_sklearn(est, "digits_" + name,
                          [("input", FloatTensorType([None, 64]))],
                          target_opset=TARGET_OPSET, options=options)
    model_bytes = onx.SerializeToString()
    if len(model_bytes) > MAX_BYTES:
        raise SystemExit("%s: model is %d bytes (> %d)" % (name, len(model_bytes), MAX_BYTES))
    onnx.checker.check_model(onx)
    names, res = ort_outputs(model_bytes, x_test)

    d = os.path.join(ROOT, "data", "onnx", "sklearn-" + name)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds, exist_ok=True)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(ds, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x_test, onx.graph.input[0].name).SerializeToString())
    n_classes = len(est.classes_)
    for k, (oname, value) in enumerate(zip(names, res)):
        t = as_tensor(value, n_classes)
        if k == 0:
            t = t.astype(np.int64)
        with open(os.path.join(ds, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(t, oname).SerializeToString())

    ops = sorted({(n.domain or "ai.onnx", n.op_type) for n in onx.graph.node})
    label = np.asarray(res[0]).astype(np.int64)
    probs = as_tensor(res[1], n_classes)
    agree = int(np.sum(label == np.argmax(probs, axis=1)))
    print("sklearn-%s: %d bytes, opsets %s, ops %s, label==argmax(probs) on %d/%d rows, "
          "sklearn predict agrees on %d/%d" %
          (name, len(model_bytes),
           {o.domain or "ai.onnx": o.version for o in onx.opset_import},
           ", ".join("%s:%s" % o for o in ops), agree, len(label),
           int(np.sum(est.predict(x_test) == label)), len(label)))


def main():
    x, y = load_digits_csv(os.path.join(ROOT, "data", "digits.csv.gz"))
    held = np.arange(len(y)) % 5 == 0
    x_train, y_train = x[~held], y[~held]
    x_test = np.ascontiguousarray(x[held][:N_ROWS])
    for name, est, zipmap in models():
        write_fixture(name, est, zipmap, x_train, y_train, x_test)
    print("python %s, numpy %s, scikit-learn %s, onnx %s, skl2onnx %s, onnxruntime %s" %
          (platform.python_version(), np.__version__, sklearn.__version__, onnx.__version__,
           skl2onnx.__version__, ort.__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
