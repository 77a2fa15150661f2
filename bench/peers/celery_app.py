"""Celery peer of an aas worker: one task = the MLP forward of one input row.

Not part of aas: comparison only (bench_celery.py starts the worker).

    AAS_PEER_REDIS_URL=redis://127.0.0.1:6379/0 AAS_PEER_MLP=784-512-512-10 \\
        celery -A celery_app worker --pool prefork --concurrency 2

Redis is both the broker and the result backend (env AAS_PEER_REDIS_URL).
The MLP shape and seed (AAS_PEER_MLP, AAS_PEER_SEED) select the weights,
built once at import in every process with mlp.init_weights, so the client
and the workers agree without shipping weights.  The task `infer` takes a
row as a list of floats or as bytes of little-endian float32 (the default
JSON serializer carries bytes as base64) and returns
{"argmax": int, "probs": [float, ...]}.

Celery's defaults are kept (JSON, prefetch multiplier 4, early ack) except
for a queue of its own ("aas_peer", so a shared Redis is not disturbed) and
results that expire after 10 minutes, so a benchmark does not fill Redis.
"""
import os

import numpy as np
from celery import Celery

import mlp

REDIS_URL = os.environ.get("AAS_PEER_REDIS_URL", "redis://127.0.0.1:6379/0")
SIZES = mlp.parse_mlp(os.environ.get("AAS_PEER_MLP", "784-512-512-10"))
SEED = int(os.environ.get("AAS_PEER_SEED", str(mlp.DEFAULT_SEED)))
LAYERS = mlp.init_weights(SIZES, SEED)

app = Celery("aas_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="aas_peer",
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def decode_row(row):
    if isinstance(row, (bytes, bytearray, memoryview)):
        x = np.frombuffer(row, dtype="<f4")
    else:
        x = np.asarray(row, dtype=np.float32)
    if x.shape != (SIZES[0],):
        raise ValueError(f"row has {x.size} values, the MLP wants {SIZES[0]}")
    return x


@app.task(name="aas_peer.infer")
def infer(row):
    probs = mlp.forward(LAYERS, decode_row(row))[0]
    return {"argmax": int(probs.argmax()), "probs": probs.tolist()}
