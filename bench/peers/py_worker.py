"""A Python aas worker: the peer of aas-worker (issue 18, part 5).

Not part of aas: a comparison only (bench/run_worker_peer_bench.sh runs it).
It is the worker a competent engineer would write in Python against aas's
own wire format, so that aas's load generator (bench_e2e, the C client)
drives it unchanged:

- Kafka: confluent_kafka.Consumer in a group of its own, subscribed to the
  inference topic and its two priority lanes (<topic>.high, <topic>.low;
  --no-lanes: the topic alone; no lane priority is applied),
  enable.auto.offset.store=false, offsets stored after the job's terminal
  write is in Redis (auto commit every second), as aas does; batch
  consume(num_messages=--batch-max, timeout=0) of what is there, else a
  blocking poll for one message (consume(n, timeout) would wait for all n).
- Jobs: Avro single-object encoding (docs/wire-format.md: C3 01, the
  CRC-64-AVRO fingerprint little-endian, the body), decoded with fastavro
  against schemas/job.avsc (v1.0 messages via schemas/history too).
- Model: the AASMLP1 file registered in aas (--model-file; its name
  --model, version --model-version), exported to ONNX by mlp.build_onnx and
  run by ONNX Runtime (CPU, --threads intra-op threads, inter-op 1).
- Batching: the F32 rows of the jobs consumed together are stacked into one
  session.run and split back (--batch-max rows a run, default 64, like the
  bench's aas workers); --no-batch runs each job alone (the jobs consumed
  together are still written in one pipeline, as aas does with batching
  off).
- Redis (docs/redis.md): the same Lua scripts as aas (common/lua/start.lua
  and finish.lua, includes expanded), EVALSHA'd in one pipeline a batch:
  start (RUNNING, skips jobs already terminal), then finish with the Result
  record (schemas/result.avsc, single-object bytes: outputs
  "probabilities", argmax predictions, timings) so aas_client_wait accepts
  it. NOSCRIPT: load and send again.

    python bench/peers/py_worker.py --brokers HOST:PORT --redis-port 6379 \\
        --model bench-mlp-784-512-512-10 --model-file m.aasm --threads 2

On SIGTERM/SIGINT it finishes the batch in hand, commits and exits 0.
It prints "py_worker: assigned ..." on stderr when it owns partitions.
"""
import argparse
import io
import os
import signal
import socket
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import mlp  # noqa: E402  (bench/peers/mlp.py)
from fastapi_ort import read_aasm  # noqa: E402  (AASMLP1 reader)

TERMINAL = (b"SUCCEEDED", b"FAILED", b"EXPIRED", b"CANCELLED")


def crc64_avro(data):
    """CRC-64-AVRO (Rabin) of data, as in docs/wire-format.md."""
    empty = 0xC15D213AA4D7A795
    fp = empty
    for b in data:
        fp ^= b
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
    return fp


def load_schema(path):
    """(parsed fastavro schema, 10-byte single-object header)."""
    import json

    from fastavro import parse_schema
    from fastavro.schema import to_parsing_canonical_form
    with open(path) as f:
        raw = json.load(f)
    parsed = parse_schema(raw)
    fp = crc64_avro(to_parsing_canonical_form(raw).encode())
    return parsed, b"\xc3\x01" + fp.to_bytes(8, "little")


def load_lua(name):
    """common/lua/<name>.lua with its "-- include: X.lua" lines expanded."""
    out = []
    with open(os.path.join(ROOT, "common", "lua", name)) as f:
        for line in f:
            if line.startswith("-- include: "):
                out.append(load_lua(line.split(":", 1)[1].strip()))
            else:
                out.append(line)
    return "".join(out)


class Worker:
    def __init__(self, a):
        import onnxruntime as ort
        import redis
        from fastavro import schemaless_reader, schemaless_writer

        self.a = a
        self.reader, self.writer = schemaless_reader, schemaless_writer
        self.job_schema, job_hdr = load_schema(os.path.join(ROOT, "schemas", "job.avsc"))
        v10, v10_hdr = load_schema(os.path.join(ROOT, "schemas", "history", "job-v1.0.avsc"))
        # header -> writer schema (the reader schema is always job.avsc)
        self.job_writers = {job_hdr: self.job_schema, v10_hdr: v10}
        self.result_schema, self.result_hdr = load_schema(
            os.path.join(ROOT, "schemas", "result.avsc"))

        layers = read_aasm(a.model_file)
        self.in_dim, self.out_dim = layers[0][0].shape[0], layers[-1][0].shape[1]
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if not a.ort_spin:  # aas's OpenMP threads wait passively by default too
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(mlp.build_onnx(layers).SerializeToString(), so,
                                         providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0].name
        self.outp = self.sess.get_outputs()[0].name

        self.r = redis.Redis(host=a.redis_host, port=a.redis_port, socket_timeout=5)
        self.lua = {n: load_lua(n + ".lua") for n in ("start", "finish")}
        self.sha = {n: self.r.script_load(body) for n, body in self.lua.items()}
        self.p = a.prefix
        self.ttl = str(a.ttl)
        self.worker_id = a.worker_id or f"py-{socket.gethostname()}-{os.getpid()}"
        self.stop = False

    # ------------------------------------------------------------ decode
    def decode(self, m):
        """Kafka message -> (job dict, None) or (None, error text)."""
        v = m.value()
        w = self.job_writers.get(v[:10]) if v else None
        if w is None:
            return None, "not an aas Job (unknown single-object header)"
        try:
            job = self.reader(io.BytesIO(v[10:]), w, self.job_schema)
        except Exception as e:  # noqa: BLE001 (a corrupt body)
            return None, f"bad Job record: {e}"
        return job, None

    def check(self, job):
        """The job's input rows (rows, in_dim) f32, or an error text."""
        if job["kind"] != "INFER":
            return None, "only INFER jobs are served here"
        if job["model"] != self.a.model:
            return None, f"unknown model {job['model']}"
        mv = job.get("model_version")
        if mv is not None and mv != self.a.model_version:
            return None, f"unknown version {mv} of model {job['model']}"
        ins = job["inputs"]
        if len(ins) != 1 or ins[0]["dtype"] != "F32":
            return None, "want one F32 input tensor"
        t = ins[0]
        shape = t["shape"]
        if not shape or shape[-1] != self.in_dim or len(shape) > 2:
            return None, f"want shape [rows,{self.in_dim}], got {shape}"
        rows = shape[0] if len(shape) == 2 else 1
        if len(t["data"]) != rows * self.in_dim * 4:
            return None, "input data size does not match its shape"
        return np.frombuffer(t["data"], "<f4").reshape(rows, self.in_dim), None

    # ------------------------------------------------------------ result
    def result_bytes(self, job_id, status, model, error, probs, t_take, t_dec, compute_us,
                     submit_ms, now_ms):
        outputs, preds = [], []
        if probs is not None:
            outputs = [{"name": "probabilities", "dtype": "F32", "shape": list(probs.shape),
                        "data": probs.astype("<f4", copy=False).tobytes()}]
            best = probs.argmax(axis=1)
            preds = [{"label": int(k), "name": None, "probability": float(probs[i, k])}
                     for i, k in enumerate(best)]
        rec = {"job_id": job_id, "status": status, "model": model,
               "model_version": self.a.model_version if probs is not None else None,
               "outputs": outputs, "predictions": preds, "error": error,
               "timings": {"queue_ms": max(0, t_take // 1000 - submit_ms) if submit_ms else 0,
                           "decode_us": t_dec, "compute_us": compute_us,
                           "total_us": int(time.time() * 1e6) - t_take},
               "worker_id": self.worker_id, "finished_ms": now_ms}
        buf = io.BytesIO()
        buf.write(self.result_hdr)
        self.writer(buf, self.result_schema, rec)
        return buf.getvalue()

    # ------------------------------------------------------------ Redis
    def keys(self, job_id):
        t = "{" + job_id + "}"
        return (f"{self.p}job:{t}", f"{self.p}result:{t}", f"{self.p}done:{t}")

    def evalsha_many(self, calls):
        """[(script, keys, args)] in one pipeline; NOSCRIPT: load, send again.
        A Redis that is away: retry with backoff until it answers (the
        offsets are not stored meanwhile, as aas does)."""
        import redis
        delay = 0.05
        while True:
            try:
                pipe = self.r.pipeline(transaction=False)
                for name, keys, args in calls:
                    pipe.evalsha(self.sha[name], len(keys), *keys, *args)
                replies = pipe.execute(raise_on_error=False)
                if any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
                    self.sha = {n: self.r.script_load(b) for n, b in self.lua.items()}
                    continue  # start and finish are safe to send again
                for x in replies:
                    if isinstance(x, Exception):
                        raise x
                return replies
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
                print(f"py_worker: redis: {e}; retrying in {delay:.2f} s", file=sys.stderr)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ------------------------------------------------------------ a batch
    def handle(self, msgs):
        t_take = int(time.time() * 1e6)
        jobs = []  # [job_id, model, rows | None, error | None, submit_ms, src]
        for m in msgs:
            if m.error():
                continue
            t0 = time.perf_counter()
            job, err = self.decode(m)
            x = None
            if job is not None:
                dl = job.get("deadline_ms")
                if dl is not None and dl < time.time() * 1000:
                    err = "EXPIRED"
                else:
                    x, err = self.check(job)
            dec_us = int((time.perf_counter() - t0) * 1e6)
            if job is None:
                # No id to write under: a real worker would dead-letter it.
                print(f"py_worker: {m.topic()}/{m.partition()}@{m.offset()}: {err}",
                      file=sys.stderr)
                continue
            src = f"{m.topic()}/{m.partition()}/{m.offset()}"
            jobs.append([job["id"], job["model"], x, err, job["submit_ms"], src, dec_us])

        # start: RUNNING, and learn which jobs are already terminal (skipped)
        starts = self.evalsha_many(
            [("start", self.keys(j[0])[:1], (self.worker_id, j[5], j[1], self.ttl,
                                             ""))
             for j in jobs])
        run = [j for j, s in zip(jobs, starts) if s not in TERMINAL]

        # compute
        todo = [j for j in run if j[3] is None]
        probs = {}
        compute_us = {}
        if todo:
            if self.a.no_batch:
                for j in todo:
                    t0 = time.perf_counter()
                    probs[id(j)] = self.sess.run([self.outp], {self.inp: j[2]})[0]
                    compute_us[id(j)] = int((time.perf_counter() - t0) * 1e6)
            else:
                i = 0
                while i < len(todo):
                    # up to --batch-max rows a run (a job is never split)
                    chunk, rows = [], 0
                    while i < len(todo) and (not chunk or
                                             rows + len(todo[i][2]) <= self.a.batch_max):
                        chunk.append(todo[i])
                        rows += len(todo[i][2])
                        i += 1
                    x = chunk[0][2] if len(chunk) == 1 else np.concatenate([j[2] for j in chunk])
                    t0 = time.perf_counter()
                    y = self.sess.run([self.outp], {self.inp: x})[0]
                    us = int((time.perf_counter() - t0) * 1e6)
                    r = 0
                    for j in chunk:
                        n = len(j[2])
                        probs[id(j)] = y[r:r + n]
                        compute_us[id(j)] = us
                        r += n

        # finish: result + status + done token, one pipeline
        now_ms = int(time.time() * 1000)
        calls = []
        for j in run:
            jid, model, _, err, submit_ms, _, dec_us = j
            if err is None:
                status, p = "SUCCEEDED", probs[id(j)]
            else:
                status, p = ("EXPIRED" if err == "EXPIRED" else "FAILED"), None
                err = "deadline passed before the job started" if err == "EXPIRED" else err
            body = self.result_bytes(jid, status, model, err, p, t_take, dec_us,
                                     compute_us.get(id(j), 0), submit_ms, now_ms)
            calls.append(("finish", self.keys(jid),
                          (status, self.a.model_version if p is not None else "", err or "",
                           body, "1", self.ttl, "")))
        if calls:
            self.evalsha_many(calls)

    def serve(self):
        from confluent_kafka import Consumer, TopicPartition

        conf = {"bootstrap.servers": self.a.brokers, "group.id": self.a.group,
                "enable.auto.offset.store": False, "enable.auto.commit": True,
                "auto.commit.interval.ms": 1000, "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "fetch.wait.max.ms": 10, "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000, "client.id": self.worker_id}
        for kv in self.a.X:
            k, _, v = kv.partition("=")
            conf[k] = v
        c = Consumer(conf)
        topics = [self.a.topic] if self.a.no_lanes else [
            self.a.topic + ".high", self.a.topic, self.a.topic + ".low"]

        def on_assign(consumer, parts):
            print("py_worker: assigned " + ",".join(f"{p.topic}/{p.partition}" for p in parts),
                  file=sys.stderr, flush=True)

        c.subscribe(topics, on_assign=on_assign)
        n = 0
        try:
            while not self.stop:
                # consume(n, timeout) waits for all n or the timeout: take
                # what is there at once, else block for one message and add
                # what came with it (a lone job is not held back).
                msgs = c.consume(num_messages=self.a.batch_max, timeout=0)
                if not msgs:
                    m = c.poll(0.1)
                    if m is None:
                        continue
                    msgs = [m] + c.consume(num_messages=self.a.batch_max - 1, timeout=0)
                self.handle(msgs)
                last = {}
                for m in msgs:
                    if not m.error():
                        last[(m.topic(), m.partition())] = m.offset()
                c.store_offsets(offsets=[TopicPartition(t, p, o + 1)
                                         for (t, p), o in last.items()])
                n += len(msgs)
        finally:
            c.close()  # commits the stored offsets
            print(f"py_worker: {n} messages handled", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", required=True, help="Kafka bootstrap.servers")
    ap.add_argument("--redis-host", default="127.0.0.1")
    ap.add_argument("--redis-port", type=int, default=6379)
    ap.add_argument("--prefix", default="aas:", help="Redis key prefix (redis.prefix)")
    ap.add_argument("--ttl", type=int, default=86400, help="TTL of a job's keys, s")
    ap.add_argument("--model", required=True, help="model name the jobs ask for")
    ap.add_argument("--model-file", required=True, help="its AASMLP1 file (relu..., softmax)")
    ap.add_argument("--model-version", default="1", help="the version written in results")
    ap.add_argument("--topic", default="aas.jobs.infer")
    ap.add_argument("--no-lanes", action="store_true", help="not the .high/.low lane topics")
    ap.add_argument("--group", default="aas-py-peer", help="Kafka consumer group")
    ap.add_argument("--worker-id", default="")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")),
                    help="ONNX Runtime intra-op threads (default OMP_NUM_THREADS, else 1)")
    ap.add_argument("--ort-spin", action="store_true",
                    help="let ORT's threads spin while idle (its default; off here, as aas's "
                    "passive OpenMP wait)")
    ap.add_argument("--batch-max", type=int, default=64,
                    help="messages consumed together and rows a run (default 64)")
    ap.add_argument("--no-batch", action="store_true", help="one job a session.run")
    ap.add_argument("-X", action="append", default=[], metavar="KEY=VALUE",
                    help="extra librdkafka consumer setting (repeatable)")
    a = ap.parse_args()
    w = Worker(a)

    def stop(*_):
        w.stop = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    w.serve()


if __name__ == "__main__":
    main()
