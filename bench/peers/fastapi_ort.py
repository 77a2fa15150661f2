"""FastAPI + ONNX Runtime: the HTTP peer of aas-gateway (issue 15).

Not part of aas: a comparison only (bench/run_gateway_bench.sh runs it).
It serves one MLP in-process over the same route and JSON as the gateway,
POST /v2/models/{name}/infer (Open Inference Protocol, FP32 "data"), so the
same wrk script drives both.  The model is the very file registered in aas
(AASMLP1, docs/model-format.md): its weights are read here and exported to
ONNX with bench/peers/mlp.py's build_onnx (Gemm, Relu, Softmax), so both
servers compute the same function on the same weights.

    python bench/peers/fastapi_ort.py --model m.aasm --name bench-mlp \\
        --port 8100 --workers 2 --threads 1

--workers uvicorn processes (each its own ONNX Runtime session with
--threads intra-op threads); the handler is `async def` and calls
onnxruntime inline: a forward of this MLP takes well under a millisecond,
less than a thread-pool hop would cost.  The body is parsed with json (no
pydantic model) for the same reason.  No access log (the gateway's
per-request log is off in the benchmark too).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import mlp  # noqa: E402  (bench/peers/mlp.py)

ACT_RELU, ACT_SOFTMAX = 1, 4


def read_aasm(path):
    """AASMLP1 file -> [(W (in, out), b (out,))], checking it is relu...softmax."""
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:8] != b"AASMLP1\0":
        raise ValueError(f"{path}: not an AASMLP1 model")
    n_layers, in_dim = struct.unpack_from("<II", blob, 8)
    table = [struct.unpack_from("<II", blob, 16 + 8 * i) for i in range(n_layers)]
    off = 16 + 8 * n_layers
    layers = []
    for i, (out_dim, act) in enumerate(table):
        want = ACT_SOFTMAX if i == n_layers - 1 else ACT_RELU
        if act != want:
            raise ValueError(f"{path}: layer {i} activation {act}: build_onnx makes relu "
                             "hidden layers and a softmax output only")
        w = np.frombuffer(blob, "<f4", out_dim * in_dim, off).reshape(out_dim, in_dim)
        off += 4 * out_dim * in_dim
        b = np.frombuffer(blob, "<f4", out_dim, off)
        off += 4 * out_dim
        layers.append((np.ascontiguousarray(w.T, dtype=np.float32), b.astype(np.float32)))
        in_dim = out_dim
    return layers


def create_app():
    """The ASGI app; configuration from the environment (uvicorn's worker
    processes import this module anew)."""
    import onnxruntime as ort
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response

    name = os.environ["AAS_PEER_NAME"]
    layers = read_aasm(os.environ["AAS_PEER_MODEL"])
    in_dim = layers[0][0].shape[0]
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(os.environ.get("AAS_PEER_THREADS", "1"))
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(mlp.build_onnx(layers).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    inp, outp = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    app = FastAPI()

    def error(status, msg):
        return JSONResponse({"error": msg}, status_code=status)

    @app.get("/v2/health/ready")
    async def ready():
        return {"ready": True}

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: Request):
        if model != name:
            return error(404, f"unknown model {model}")
        try:
            req = json.loads(await request.body())
            t = req["inputs"][0]
            x = np.asarray(t["data"], dtype=np.float32).reshape(t["shape"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return error(400, f"bad request: {e}")
        if x.ndim != 2 or x.shape[1] != in_dim:
            return error(400, f"want shape [rows,{in_dim}], got {list(x.shape)}")
        y = sess.run([outp], {inp: x})[0]
        body = {"model_name": name, "model_version": "1",
                "outputs": [{"name": "probabilities", "datatype": "FP32",
                             "shape": list(y.shape), "data": y.ravel().tolist()}]}
        if isinstance(req.get("id"), str):
            body["id"] = req["id"]
        return Response(json.dumps(body, separators=(",", ":")),
                        media_type="application/json")

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="AASMLP1 file (relu..., softmax)")
    ap.add_argument("--name", required=True, help="model name in the route")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8100)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn processes")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    args = ap.parse_args()
    read_aasm(args.model)  # fail here, not in every worker
    os.environ.update(AAS_PEER_MODEL=os.path.abspath(args.model), AAS_PEER_NAME=args.name,
                      AAS_PEER_THREADS=str(args.threads))
    import uvicorn
    uvicorn.run("fastapi_ort:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, app_dir=HERE, access_log=False, log_level="warning",
                backlog=4096)


if __name__ == "__main__":
    main()
