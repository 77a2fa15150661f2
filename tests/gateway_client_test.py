#!/usr/bin/env python3
"""gateway_client_test.py - aas-gateway from the outside, as users reach it:
the official Open Inference Protocol client (tritonclient.http, PyPI) and
plain `requests`, against a running gateway, worker, broker and Redis that
tests/test_gateway.sh started.  Results are compared with the C client's
(aas-producer submit --wait --json) for the same inputs, to 1e-5.

Each case prints "ok   <what>" or "FAIL <what>: <why>"; the last line is
"N passed, N failed"; exit 0 only if every case passed.

Usage: gateway_client_test.py --url 127.0.0.1:PORT --producer PATH
         --mlp NAME --text-model NAME [--dim 64] [--max-body BYTES]
(the producer reads AAS_REDIS_PORT and AAS_KAFKA_BOOTSTRAP_SERVERS from
the environment, as the test exports them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import requests
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

TOL = 1e-5
PASSED = []
FAILED = []


def case(fn):
    """Run one case; an assertion or any exception fails it, the rest go on."""
    what = fn.__doc__.strip().splitlines()[0]
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a case fails on anything
        FAILED.append(what)
        print(f"FAIL {what}: {type(e).__name__}: {e}", flush=True)
        return
    PASSED.append(what)
    print(f"ok   {what}", flush=True)


def cli_submit(args, model, rows=None, text=None):
    """The C client's result for the same input: the parsed --json line."""
    cmd = [args.producer, "submit", "--model", model, "--wait", "--json", "--timeout", "60"]
    tmp = None
    if text is not None:
        cmd += ["--text", text]
    else:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False)
        for r in rows:
            tmp.write(",".join(repr(float(v)) for v in r) + "\n")
        tmp.close()
        cmd += ["--input", tmp.name, "--format", "csv"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        if tmp:
            os.unlink(tmp.name)
    assert out.returncode in (0, 3), f"{cmd}: exit {out.returncode}: {out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[0])


def close(a, b, what):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    d = float(np.max(np.abs(a - b))) if a.size else 0.0
    assert d <= TOL, f"{what}: max |diff| {d} > {TOL}"


def is_error(r, status):
    assert r.status_code == status, f"want {status}, got {r.status_code}: {r.text[:300]}"
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], f"no error text: {body}"
    return body["error"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--producer", required=True)
    ap.add_argument("--mlp", required=True)
    ap.add_argument("--text-model", required=True)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--onnx", help="an ONNX CNN of [batch,1,8,8] (data/onnx/torch-cnn-op17)")
    ap.add_argument("--max-body", type=int, default=65536)
    args = ap.parse_args()
    URL = "http://" + args.url
    tc = httpclient.InferenceServerClient(url=args.url, network_timeout=120.0)
    rng = np.random.default_rng(7)
    rows = rng.random((3, args.dim), dtype=np.float32) * 16
    cli = cli_submit(args, args.mlp, rows=rows)
    assert cli["status"] == "SUCCEEDED", cli
    cli_out = np.asarray(cli["outputs"][0]["values"]).reshape(cli["outputs"][0]["shape"])
    out_name = cli["outputs"][0]["name"]
    text = "hello there, good morning"
    cli_text = cli_submit(args, args.text_model, text=text)
    assert cli_text["status"] == "SUCCEEDED", cli_text
    intents = {"greeting", "goodbye", "weather", "booking", "complaint"}

    # --- the official Open Inference Protocol client -------------------
    def t_live():
        """tritonclient: is_server_live, is_server_ready"""
        assert tc.is_server_live() is True
        assert tc.is_server_ready() is True
    case(t_live)

    def t_server_meta():
        """tritonclient: get_server_metadata names the server"""
        m = tc.get_server_metadata()
        print(f"     server metadata {m}")
        assert m["name"] == "aas" and "version" in m, m
    case(t_server_meta)

    def t_model_meta():
        """tritonclient: get_model_metadata of the MLP: FP32 [-1,dim] in, [-1,10] out"""
        m = tc.get_model_metadata(args.mlp)
        print(f"     model metadata {m}")
        assert m["name"] == args.mlp, m
        (i,) = m["inputs"]
        assert i["datatype"] == "FP32" and list(i["shape"]) == [-1, args.dim], i
        (o,) = m["outputs"]
        assert o["name"] == out_name and o["datatype"] == "FP32", o
        assert list(o["shape"]) == [-1, cli_out.shape[1]], o
        m1 = tc.get_model_metadata(args.mlp, model_version="1")
        assert m1["inputs"] == m["inputs"], m1
    case(t_model_meta)

    def t_text_meta():
        """tritonclient: get_model_metadata of the text model: BYTES [-1] in"""
        m = tc.get_model_metadata(args.text_model)
        (i,) = m["inputs"]
        assert i["datatype"] == "BYTES" and list(i["shape"]) == [-1], i
        assert set(m.get("labels", [])) == intents, m
    case(t_text_meta)

    def t_ready():
        """tritonclient: is_model_ready true for a model, false for none"""
        assert tc.is_model_ready(args.mlp) is True
        assert tc.is_model_ready(args.mlp, model_version="1") is True
        assert tc.is_model_ready("no-such-model") is False
        assert tc.is_model_ready(args.mlp, model_version="99") is False
    case(t_ready)

    def t_meta_404():
        """tritonclient: metadata of an unknown model raises with status 404"""
        try:
            tc.get_model_metadata("no-such-model")
        except InferenceServerException as e:
            assert "404" in str(e.status()), e.status()
            return
        raise AssertionError("no exception")
    case(t_meta_404)

    def t_infer():
        """tritonclient: infer FP32 [3,dim] numpy equals the C client's outputs to 1e-5"""
        inp = httpclient.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows, binary_data=False)
        want = httpclient.InferRequestedOutput(out_name, binary_data=False)
        r = tc.infer(args.mlp, [inp], outputs=[want], request_id="req-1")
        got = r.as_numpy(out_name)
        assert got is not None, r.get_response()
        assert got.shape == cli_out.shape, (got.shape, cli_out.shape)
        close(got, cli_out, "tritonclient vs C client")
        resp = r.get_response()
        assert resp["id"] == "req-1" and resp["model_name"] == args.mlp, resp
    case(t_infer)

    def t_infer_default_outputs():
        """tritonclient: infer without requested outputs (all outputs), version 1"""
        inp = httpclient.InferInput("input", [1, args.dim], "FP32")
        inp.set_data_from_numpy(rows[:1], binary_data=False)
        r = tc.infer(args.mlp, [inp], model_version="1")
        close(r.as_numpy(out_name), cli_out[:1], "one row")
    case(t_infer_default_outputs)

    def t_infer_binary_in():
        """tritonclient: binary-data extension input (set_data_from_numpy default), JSON output"""
        inp = httpclient.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows)
        r = tc.infer(args.mlp, [inp],
                     outputs=[httpclient.InferRequestedOutput(out_name, binary_data=False)])
        close(r.as_numpy(out_name), cli_out, "binary input")
    case(t_infer_binary_in)

    def t_infer_binary_out():
        """tritonclient: binary-data extension output (InferRequestedOutput default)"""
        inp = httpclient.InferInput("input", list(rows.shape), "FP32")
        inp.set_data_from_numpy(rows)
        r = tc.infer(args.mlp, [inp], outputs=[httpclient.InferRequestedOutput(out_name)])
        close(r.as_numpy(out_name), cli_out, "binary output")
    case(t_infer_binary_out)

    def t_infer_text_binary():
        """tritonclient: a BYTES text input in the binary-data extension"""
        inp = httpclient.InferInput("text", [1], "BYTES")
        inp.set_data_from_numpy(np.array([text.encode()], dtype=np.object_))
        on = cli_text["outputs"][0]["name"]
        r = tc.infer(args.text_model, [inp],
                     outputs=[httpclient.InferRequestedOutput(on, binary_data=False)])
        close(r.as_numpy(on), cli_text["outputs"][0]["values"], "binary text")
    case(t_infer_text_binary)

    def t_infer_onnx():
        """tritonclient: an ONNX CNN, FP32 [2,1,8,8] from its metadata, equals the C client's"""
        if not args.onnx:
            return
        m = tc.get_model_metadata(args.onnx)
        (i,) = m["inputs"]
        assert list(i["shape"]) == [-1, 1, 8, 8], m
        x = rows[:2].reshape(2, 1, 8, 8)
        want = cli_submit(args, args.onnx, rows=rows[:2])
        assert want["status"] == "SUCCEEDED", want
        inp = httpclient.InferInput(i["name"], [2, 1, 8, 8], "FP32")
        inp.set_data_from_numpy(x, binary_data=False)
        on = want["outputs"][0]["name"]
        r = tc.infer(args.onnx, [inp], outputs=[httpclient.InferRequestedOutput(on, binary_data=False)])
        close(r.as_numpy(on), want["outputs"][0]["values"], "onnx cnn")
    case(t_infer_onnx)

    def t_infer_text():
        """tritonclient: a text model through a BYTES input gives the C client's scores"""
        inp = httpclient.InferInput("text", [1], "BYTES")
        inp.set_data_from_numpy(np.array([text.encode()], dtype=np.object_), binary_data=False)
        r = tc.infer(args.text_model, [inp],
                     outputs=[httpclient.InferRequestedOutput(cli_text["outputs"][0]["name"],
                                                              binary_data=False)])
        close(r.as_numpy(cli_text["outputs"][0]["name"]), cli_text["outputs"][0]["values"],
              "text scores")
    case(t_infer_text)

    def t_infer_bad_shape():
        """tritonclient: a wrong shape raises with status 400"""
        inp = httpclient.InferInput("input", [1, args.dim - 1], "FP32")
        inp.set_data_from_numpy(rows[:1, : args.dim - 1], binary_data=False)
        try:
            tc.infer(args.mlp, [inp])
        except InferenceServerException as e:
            assert "400" in str(e.status()), (e.status(), e)
            return
        raise AssertionError("no exception")
    case(t_infer_bad_shape)

    # --- plain JSON with requests ---------------------------------------
    def t_snippet():
        """requests: the design's /predict snippet returns an intent label"""
        label = requests.post(URL + '/predict', json={'text': text},
                              headers={'Content-Type': 'application/json'}).json()['label']
        print(f"     label {label!r}")
        assert label in intents, label
        assert label == cli_text["predictions"][0]["name"], (label, cli_text["predictions"])
        label = requests.post(URL + '/predict', json={'text': '这是一个正面的评论'},
                              headers={'Content-Type': 'application/json'}).json()['label']
        assert label in intents, label
    case(t_snippet)

    def t_predict_named():
        """requests: /predict with {"model": ...} and /v1/models/{name}/predict one instance"""
        r = requests.post(URL + "/predict", json={"model": args.mlp, "instances": rows[:1].tolist()})
        assert r.status_code == 200, r.text
        b = r.json()
        assert b["label"] == str(cli["predictions"][0]["label"]), (b, cli["predictions"][0])
        close([b["scores"][str(k)] for k in range(cli_out.shape[1])], cli_out[0], "scores")
    case(t_predict_named)

    def t_predict_instances():
        """requests: /v1/models/{name}/predict with 3 instances equals the C client's"""
        r = requests.post(f"{URL}/v1/models/{args.mlp}/predict", json={"instances": rows.tolist()})
        assert r.status_code == 200, r.text
        b = r.json()
        preds = b["predictions"]
        assert len(preds) == 3, b
        for k, p in enumerate(preds):
            assert p["label"] == str(cli["predictions"][k]["label"]), (p, cli["predictions"][k])
            close([p["scores"][str(j)] for j in range(cli_out.shape[1])], cli_out[k], f"row {k}")
        assert b["model"] == args.mlp and str(b["version"]) == "1", b
    case(t_predict_instances)

    def t_concurrent():
        """requests: 48 predictions from 12 threads on keep-alive sessions, each equal to the C client's"""
        from concurrent.futures import ThreadPoolExecutor
        import threading
        local = threading.local()

        def one(k):
            if not hasattr(local, "s"):
                local.s = requests.Session()
            r = local.s.post(f"{URL}/v1/models/{args.mlp}/predict",
                             json={"instances": [rows[k % 3].tolist()]})
            assert r.status_code == 200, r.text
            return k, r.json()
        with ThreadPoolExecutor(12) as ex:
            for k, b in ex.map(one, range(48)):
                close([b["scores"][str(j)] for j in range(cli_out.shape[1])], cli_out[k % 3],
                      f"request {k}")
    case(t_concurrent)

    def poll(loc, want=("SUCCEEDED",), limit=60):
        end = time.time() + limit
        while True:
            g = requests.get(URL + loc)
            assert g.status_code == 200, g.text
            b = g.json()
            if b["status"] in want or time.time() > end:
                return b
            assert b["status"] in ("QUEUED", "RUNNING"), b
            time.sleep(0.05)

    def t_async():
        """requests: Prefer: respond-async -> 202 + Location, poll to SUCCEEDED, equal to sync"""
        body = {"instances": rows[:1].tolist()}
        sync = requests.post(f"{URL}/v1/models/{args.mlp}/predict", json=body).json()
        r = requests.post(f"{URL}/v1/models/{args.mlp}/predict", json=body,
                          headers={"Prefer": "respond-async"})
        assert r.status_code == 202, (r.status_code, r.text)
        loc = r.headers["Location"]
        jid = r.json()["id"]
        assert loc == f"/v1/jobs/{jid}", (loc, jid)
        b = poll(loc)
        assert b["status"] == "SUCCEEDED", b
        assert b["label"] == sync["label"], (b, sync)
        close([b["scores"][k] for k in sorted(sync["scores"])],
              [sync["scores"][k] for k in sorted(sync["scores"])], "async vs sync")
    case(t_async)

    def t_async_infer():
        """requests: OIP infer with Prefer: respond-async -> 202, the job's result equals the C client's"""
        inp = {"name": "input", "shape": [1, args.dim], "datatype": "FP32",
               "data": rows[0].tolist()}
        r = requests.post(f"{URL}/v2/models/{args.mlp}/versions/1/infer", json={"inputs": [inp]},
                          headers={"Prefer": "respond-async"})
        assert r.status_code == 202, (r.status_code, r.text)
        b = poll(r.headers["Location"])
        assert b["status"] == "SUCCEEDED" and b["label"] == str(cli["predictions"][0]["label"]), b
        close([b["scores"][str(j)] for j in range(cli_out.shape[1])], cli_out[0], "async infer")
    case(t_async_infer)

    def t_async_text_failed():
        """requests: async text job of punctuation only ends FAILED with the reason"""
        r = requests.post(f"{URL}/v1/models/{args.text_model}/predict", json={"text": "?!... ,;"},
                          headers={"Prefer": "respond-async"})
        assert r.status_code == 202, (r.status_code, r.text)
        b = poll(r.headers["Location"], want=("SUCCEEDED", "FAILED"))
        assert b["status"] == "FAILED" and "nothing to classify" in b["error"], b
    case(t_async_text_failed)

    def t_delete():
        """requests: DELETE /v1/jobs/{id} answers the job's status; unknown 404; bad id 400"""
        r = requests.post(f"{URL}/v1/models/{args.mlp}/predict", json={"instances": rows.tolist()},
                          headers={"Prefer": "respond-async"})
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        d = requests.delete(f"{URL}/v1/jobs/{jid}")
        assert d.status_code == 200, (d.status_code, d.text)
        b = d.json()
        print(f"     delete -> {b}")
        assert b["id"] == jid and b["status"] in ("CANCELLED", "RUNNING", "SUCCEEDED"), b
        b = poll(f"/v1/jobs/{jid}", want=("SUCCEEDED", "CANCELLED"))
        assert b["status"] in ("SUCCEEDED", "CANCELLED"), b
        is_error(requests.delete(f"{URL}/v1/jobs/no-such-job-id"), 404)
        is_error(requests.get(f"{URL}/v1/jobs/no-such-job-id"), 404)
        is_error(requests.get(f"{URL}/v1/jobs/-bad"), 400)
    case(t_delete)

    # --- bad input: a clear 4xx, and the gateway keeps serving -----------
    def t_malformed():
        """bad input: malformed JSON -> 400 {"error"}"""
        for path in ("/predict", f"/v1/models/{args.mlp}/predict", f"/v2/models/{args.mlp}/infer"):
            is_error(requests.post(URL + path, data=b'{"instances": [[1,2,', 
                                   headers={"Content-Type": "application/json"}), 400)
    case(t_malformed)

    def t_wrong_shape():
        """bad input: element count != shape, wrong row length, wrong datatype -> 400"""
        inp = {"name": "input", "shape": [2, args.dim], "datatype": "FP32", "data": [0.5] * args.dim}
        is_error(requests.post(f"{URL}/v2/models/{args.mlp}/infer", json={"inputs": [inp]}), 400)
        inp = {"name": "input", "shape": [1, args.dim], "datatype": "INT8", "data": [1] * args.dim}
        is_error(requests.post(f"{URL}/v2/models/{args.mlp}/infer", json={"inputs": [inp]}), 400)
        e = is_error(requests.post(f"{URL}/v1/models/{args.mlp}/predict",
                                   json={"instances": [[0.5] * (args.dim - 1)]}), 400)
        print(f"     short row: {e}")
    case(t_wrong_shape)

    def t_field_types():
        """bad input: "parameters" not an object, "inputs" not an array, two inputs -> 400"""
        inp = {"name": "input", "shape": [1, args.dim], "datatype": "FP32", "data": [0.5] * args.dim}
        u = f"{URL}/v2/models/{args.mlp}/infer"
        r = requests.post(u, json={"inputs": [inp], "parameters": {}, "extra": 1})
        assert r.status_code == 200, ("unknown top-level field refused", r.text)
        is_error(requests.post(u, json={"inputs": [inp], "parameters": 5}), 400)
        is_error(requests.post(u, json={"inputs": inp}), 400)
        is_error(requests.post(u, json={"inputs": [inp, inp]}), 400)
        is_error(requests.post(f"{URL}/v1/models/{args.text_model}/predict", json={"text": 5}), 400)
    case(t_field_types)

    def t_unknown_model():
        """bad input: unknown model -> 404 (infer, predict, metadata, version)"""
        inp = {"name": "input", "shape": [1, args.dim], "datatype": "FP32", "data": [0.5] * args.dim}
        is_error(requests.post(f"{URL}/v2/models/no-such-model/infer", json={"inputs": [inp]}), 404)
        is_error(requests.post(f"{URL}/v1/models/no-such-model/predict", json={"text": "hi"}), 404)
        is_error(requests.post(f"{URL}/predict", json={"model": "no-such-model", "text": "hi"}), 404)
        is_error(requests.get(f"{URL}/v2/models/no-such-model"), 404)
        is_error(requests.get(f"{URL}/v2/models/{args.mlp}/versions/99"), 404)
        is_error(requests.post(f"{URL}/v2/models/{args.mlp}/versions/99/infer",
                               json={"inputs": [inp]}), 404)
        is_error(requests.post(f"{URL}/v1/models/{args.mlp}/predict",
                               json={"version": 99, "instances": [[0.5] * args.dim]}), 404)
    case(t_unknown_model)

    def t_unknown_route():
        """bad input: unknown route -> 404, wrong method -> 405"""
        is_error(requests.get(f"{URL}/v3/nothing"), 404)
        is_error(requests.post(f"{URL}/nothing", json={}), 404)
        is_error(requests.get(f"{URL}/v2/models/{args.mlp}/infer"), 405)
    case(t_unknown_route)

    def t_too_big():
        """bad input: a body over gateway.max.body.bytes -> 413"""
        big = json.dumps({"instances": [[0.5] * args.dim] * (args.max_body // 100)}).encode()
        assert len(big) > args.max_body
        is_error(requests.post(f"{URL}/v1/models/{args.mlp}/predict", data=big,
                               headers={"Content-Type": "application/json"}), 413)
    case(t_too_big)

    def t_too_big_chunked():
        """bad input: a chunked body (no Content-Length) over the limit -> 413"""
        def chunks():
            yield b'{"instances": ['
            for _ in range(args.max_body // 1000 + 2):
                yield b"[" + b",".join([b"0.5"] * 250) + b"],"
            yield b"[0.5]]}"
        try:
            r = requests.post(f"{URL}/v1/models/{args.mlp}/predict", data=chunks(),
                              headers={"Content-Type": "application/json"})
        except requests.ConnectionError as e:
            raise AssertionError(f"connection dropped, no 413: {e}")
        is_error(r, 413)
    case(t_too_big_chunked)

    def t_nested_and_nonfinite():
        """infer: nested data equals flat; a non-finite number or a non-string id -> 400"""
        inp = {"name": "input", "shape": [3, args.dim], "datatype": "FP32",
               "data": rows.tolist()}
        r = requests.post(f"{URL}/v2/models/{args.mlp}/infer", json={"inputs": [inp]})
        assert r.status_code == 200, r.text
        (o,) = r.json()["outputs"]
        assert o["shape"] == list(cli_out.shape), o["shape"]
        close(o["data"], cli_out, "nested data")
        bad = dict(inp, shape=[1, args.dim], data=[0.5] * args.dim)
        body = json.dumps({"inputs": [bad]}).replace("0.5", "1e999", 1).encode()
        is_error(requests.post(f"{URL}/v2/models/{args.mlp}/infer", data=body,
                               headers={"Content-Type": "application/json"}), 400)
        is_error(requests.post(f"{URL}/v2/models/{args.mlp}/infer",
                               json={"id": 5, "inputs": [dict(inp, shape=[1, args.dim],
                                                              data=[0.5] * args.dim)]}), 400)
    case(t_nested_and_nonfinite)

    def t_punctuation():
        """bad input: a text of punctuation only -> 400 with the worker's reason"""
        e = is_error(requests.post(f"{URL}/v1/models/{args.text_model}/predict",
                                   json={"text": "!!! ... ???"}), 400)
        print(f"     reason: {e}")
        assert "nothing to classify" in e, e
    case(t_punctuation)

    def t_non_utf8():
        """bad input: non-UTF-8 bytes in the JSON text -> 400"""
        for path in ("/predict", f"/v1/models/{args.text_model}/predict"):
            is_error(requests.post(URL + path, data=b'{"text": "caf\xe9 \xff\xfe"}',
                                   headers={"Content-Type": "application/json"}), 400)
    case(t_non_utf8)

    def t_still_live():
        """after all that the gateway still answers /v2/health/live and infers"""
        r = requests.get(f"{URL}/v2/health/live")
        assert r.status_code == 200 and r.json().get("live") is True, r.text
        assert tc.is_server_live() is True
        r = requests.post(f"{URL}/predict", json={"text": text})
        assert r.status_code == 200 and r.json()["label"] in intents, r.text
    case(t_still_live)

    tc.close()
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 0 if not FAILED else 1


if __name__ == "__main__":
    sys.exit(main())
