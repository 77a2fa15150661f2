#!/usr/bin/python3
"""aas_client.py - an aas client in Python: library and command line.

Submits inference jobs to Kafka and reads their results from Redis, using
only the documented contracts (docs/wire-format.md, docs/redis.md) and three
Debian packages: python3-confluent-kafka, python3-avro, python3-redis.
Nothing here comes from the C code: the schemas are read from schemas/*.avsc,
the fingerprint (CRC-64-AVRO of the Parsing Canonical Form) and the
single-object framing are computed here.

Library use:

    from aas_client import Client
    c = Client(bootstrap="127.0.0.1:9092", redis_port=6379)
    job_id = c.submit("digits", [[0.0, 1.0, ...]])      # returns once acked
    result = c.wait(job_id, timeout_s=60)               # dict (aas.v1.Result)
    c.close()

Signed jobs (docs/sharing.md#access): with an API key (Client(key=...), or
env AAS_CLIENT_KEY) every job carries the Kafka header aas.auth, an
HMAC-SHA256 of the message (docs/wire-format.md, section 6), and must name
the key's tenant.

Command line: see `aas_client.py --help`.
Exit codes (as aas-producer): 0 ok, 1 runtime failure, 2 usage,
3 a job did not succeed, 4 timed out.
"""
import argparse
import glob
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import struct
import sys
import time

__all__ = ["crc64_avro", "Schemas", "Client", "JobSigner", "read_key_file",
           "AasError", "AasTimeout",
           "result_to_json", "TERMINAL", "EXIT_OK", "EXIT_FAILURE",
           "EXIT_USAGE", "EXIT_NOT_SUCCEEDED", "EXIT_TIMEOUT"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_SUCCEEDED, EXIT_TIMEOUT = 0, 1, 2, 3, 4

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "schemas"))

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
TERMINAL = ("SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED")
# docs/wire-format.md, "Field semantics": ids, model names and versions.
ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
# docs/redis.md, "Keys": what a prefix may not contain.
PREFIX_BAD_RE = re.compile(r"[{}\s\x00-\x1f\x7f]")
DTYPES = {"F32": ("<f", 4), "F64": ("<d", 8), "I32": ("<i", 4),
          "I64": ("<q", 8), "U8": ("<B", 1)}


class AasError(Exception):
    """A failure with the exit code the CLI should use."""

    def __init__(self, message, code=EXIT_FAILURE):
        super().__init__(message)
        self.code = code


class AasTimeout(AasError):
    def __init__(self, message):
        super().__init__(message, EXIT_TIMEOUT)


def _require(module):
    """Import a Debian-packaged module or explain which package is missing."""
    packages = {"avro": "python3-avro", "confluent_kafka": "python3-confluent-kafka",
                "redis": "python3-redis"}
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise AasError("Python module '%s' is missing: apt-get install -y %s"
                       % (module, packages.get(module.split(".")[0], module)))


# ---- CRC-64-AVRO (Avro spec, "Schema Fingerprints") ----------------------

EMPTY = 0xC15D213AA4D7A795  # also the polynomial


def _fp_table():
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _fp_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of data, as an unsigned 64-bit int."""
    fp = EMPTY
    for b in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ b) & 0xFF]
    return fp


# ---- schemas and single-object encoding ----------------------------------

class Schemas:
    """The Job and Result schemas from a schemas/ directory.

    job / result: the current schemas (avro.schema.Schema); job_header: the
    10-byte single-object header for jobs; results: fingerprint -> writer
    schema for every Result schema known (current + history/*.avsc).
    """

    def __init__(self, schema_dir=DEFAULT_SCHEMA_DIR):
        self.avro_schema = _require("avro.schema")
        self.avro_io = _require("avro.io")
        self.dir = schema_dir
        self.job, self.job_fp = self._load(os.path.join(schema_dir, "job.avsc"))
        self.result, self.result_fp = self._load(os.path.join(schema_dir, "result.avsc"))
        if self.job.fullname != "aas.v1.Job" or self.result.fullname != "aas.v1.Result":
            raise AasError("%s: expected aas.v1.Job and aas.v1.Result schemas" % schema_dir)
        self.job_header = MAGIC + struct.pack("<Q", self.job_fp)
        self.results = {self.result_fp: self.result}
        self.jobs = {self.job_fp: self.job}
        # docs/wire-format.md, "Schema evolution": readers accept every
        # writer schema they know, by fingerprint.
        for path in sorted(glob.glob(os.path.join(schema_dir, "history", "*.avsc"))):
            schema, fp = self._load(path)
            if schema.fullname == "aas.v1.Result":
                self.results.setdefault(fp, schema)
            elif schema.fullname == "aas.v1.Job":
                self.jobs.setdefault(fp, schema)

    def _load(self, path):
        try:
            with open(path, encoding="utf-8") as f:
                schema = self.avro_schema.parse(f.read())
        except OSError as e:
            raise AasError("cannot read schema %s: %s" % (path, e.strerror))
        except Exception as e:  # avro raises SchemaParseException and others
            raise AasError("cannot parse schema %s: %s" % (path, e))
        return schema, crc64_avro(schema.canonical_form.encode("utf-8"))

    def encode_job(self, job: dict) -> bytes:
        """Avro single-object bytes of one aas.v1.Job record (a dict)."""
        out = io.BytesIO()
        out.write(self.job_header)
        try:
            self.avro_io.DatumWriter(self.job).write(job, self.avro_io.BinaryEncoder(out))
        except Exception as e:  # AvroTypeException: the dict does not fit
            raise AasError("job does not match schemas/job.avsc: %s" % e, EXIT_USAGE)
        return out.getvalue()

    def decode(self, raw: bytes, known: dict, reader, what: str) -> dict:
        """Check the framing and fingerprint of raw, decode it with the writer
        schema the fingerprint names, resolved to reader."""
        if len(raw) < HEADER_LEN:
            raise AasError("%s: %d bytes, shorter than the 10-byte header" % (what, len(raw)))
        if raw[:2] != MAGIC:
            raise AasError("%s: bad magic %s (expected c301: Avro single-object "
                           "encoding)" % (what, raw[:2].hex()))
        fp = struct.unpack("<Q", raw[2:HEADER_LEN])[0]
        writer = known.get(fp)
        if writer is None:
            raise AasError("%s: unknown schema fingerprint %016x (known: %s); the "
                           "writer uses a schema that is not in %s"
                           % (what, fp, ", ".join("%016x" % k for k in known), self.dir))
        body = io.BytesIO(raw[HEADER_LEN:])
        try:
            record = self.avro_io.DatumReader(writer, reader).read(
                self.avro_io.BinaryDecoder(body))
        except Exception as e:
            raise AasError("%s: malformed Avro body: %s" % (what, e))
        if body.tell() != len(raw) - HEADER_LEN:
            raise AasError("%s: %d trailing bytes after the record"
                           % (what, len(raw) - HEADER_LEN - body.tell()))
        return record

    def decode_result(self, raw: bytes, what="result") -> dict:
        return self.decode(raw, self.results, self.result, what)

    def decode_job(self, raw: bytes, what="job") -> dict:
        return self.decode(raw, self.jobs, self.job, what)


# ---- signed jobs (docs/wire-format.md section 6, docs/sharing.md#access) --

AUTH_HEADER = "aas.auth"
APIKEY_MIN_LEN, APIKEY_MAX_LEN = 16, 256   # as the C client (common/apikey.h)
NEEDS_TENANT = ("a signed job needs a tenant: set the tenant to the key's "
                "tenant (--tenant, AAS_CLIENT_TENANT or make_job(tenant=...))")


class JobSigner:
    """Signs job messages with an API key (what `aas-producer apikey add`
    printed), as common/jobsig.c does:

      secret = SHA-256(key bytes)
      key id = hex of the first 8 bytes of SHA-256(b"aas.key-id" + secret)
      header aas.auth = "v1:" + key id + ":" + hex(HMAC-SHA256(secret, value))

    where value is the whole Kafka message value (the single-object encoded
    job).  Only the secret is kept, never the key, and neither is ever put
    in a message, a repr or an error."""

    def __init__(self, api_key, source="the API key"):
        raw = api_key.encode("utf-8") if isinstance(api_key, str) else bytes(api_key)
        if not APIKEY_MIN_LEN <= len(raw) <= APIKEY_MAX_LEN:
            raise AasError("%s: an API key has %d to %d characters (this one has %d)"
                           % (source, APIKEY_MIN_LEN, APIKEY_MAX_LEN, len(raw)), EXIT_USAGE)
        self._secret = hashlib.sha256(raw).digest()
        self.key_id = hashlib.sha256(b"aas.key-id" + self._secret).digest()[:8].hex()

    def sign(self, value: bytes) -> str:
        """The aas.auth header value for the message value (bytes)."""
        mac = hmac.new(self._secret, bytes(value), hashlib.sha256).hexdigest()
        return "v1:%s:%s" % (self.key_id, mac)

    def __repr__(self):
        return "JobSigner(key_id=%s)" % self.key_id


def read_key_file(path) -> str:
    """An API key from a file: its whole content without the final line
    break (as the C programs read client.key.file)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(APIKEY_MAX_LEN + 3)
    except (OSError, UnicodeDecodeError) as e:
        raise AasError("key file %s: %s" % (path, getattr(e, "strerror", None) or e),
                       EXIT_USAGE)
    return text.rstrip("\r\n")


def _env_key():
    """(key, where from) as the environment gives them: AAS_CLIENT_KEY,
    else the file named by AAS_CLIENT_KEY_FILE; (None, None) if neither
    is set.  Set but empty is an error later, not unsigned jobs."""
    key = os.environ.get("AAS_CLIENT_KEY")
    if key is not None:
        return key, "AAS_CLIENT_KEY"
    path = os.environ.get("AAS_CLIENT_KEY_FILE")
    if path is not None:
        return read_key_file(path), "AAS_CLIENT_KEY_FILE %s" % path
    return None, None


def check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise AasError("invalid %s %r: use [A-Za-z0-9_.-], 1 to 128 characters, "
                       "not starting with '.' or '-'" % (what, value), EXIT_USAGE)
    return value


def now_ms() -> int:
    return int(time.time() * 1000)


def f32_tensor(rows, name="input") -> dict:
    """An aas.v1.Tensor record (F32, shape [rows, cols]) from a list of rows."""
    if not rows or not rows[0]:
        raise AasError("no values", EXIT_USAGE)
    cols = len(rows[0])
    if any(len(r) != cols for r in rows):
        raise AasError("rows differ in length", EXIT_USAGE)
    flat = [float(v) for r in rows for v in r]
    return {"name": name, "dtype": "F32", "shape": [len(rows), cols],
            "data": struct.pack("<%df" % len(flat), *flat)}


def tensor_values(t: dict) -> list:
    """The elements of an aas.v1.Tensor record as Python numbers."""
    fmt, size = DTYPES[t["dtype"]]
    data = t["data"]
    if len(data) % size:
        raise AasError("tensor %r: %d bytes is not a whole number of %s"
                       % (t.get("name"), len(data), t["dtype"]))
    return [v[0] for v in struct.iter_unpack(fmt, data)]


def _f32_json(v: float):
    # The C CLI prints floats with 9 significant digits (jansson
    # JSON_REAL_PRECISION(9), enough for a float32 to round-trip); do the
    # same so outputs compare equal.
    if not math.isfinite(v):
        return None
    return float("%.9g" % v)


def result_to_json(r: dict) -> dict:
    """The result as the object `aas-producer wait --json` prints, plus
    finished_ms.  Tensor values are given for every dtype (the C CLI lists
    them only for F32)."""
    outputs = []
    for t in r["outputs"]:
        vals = tensor_values(t)
        if t["dtype"] == "F32":
            vals = [_f32_json(v) for v in vals]
        elif t["dtype"] == "F64":
            vals = [v if math.isfinite(v) else None for v in vals]
        outputs.append({"name": t["name"], "dtype": t["dtype"],
                        "shape": list(t["shape"]), "values": vals})
    return {
        "id": r["job_id"], "status": r["status"], "model": r["model"],
        "version": r["model_version"], "error": r["error"],
        "predictions": [{"label": p["label"], "name": p["name"],
                         "probability": _f32_json(p["probability"])}
                        for p in r["predictions"]],
        "outputs": outputs, "worker": r["worker_id"],
        "timings": dict(r["timings"]), "finished_ms": r["finished_ms"],
    }


def avro_to_json(v):
    """A decoded Avro datum with bytes as hex, for --avro output."""
    if isinstance(v, dict):
        return {k: avro_to_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [avro_to_json(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# ---- Redis scripts (docs/redis.md, "The scripts" and "Wait") --------------

_LUA_TERMINAL = (
    "local function terminal(s)\n"
    "  return s == 'SUCCEEDED' or s == 'FAILED' or s == 'EXPIRED' or\n"
    "         s == 'CANCELLED'\n"
    "end\n")
_LUA_NOW = (
    "local t = redis.call('TIME')\n"
    "local now = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))\n")
# queued: KEYS = [job], ARGV = [model, submit_ms, ttl_s].  Create-if-absent,
# so a late QUEUED never moves a job back.
LUA_QUEUED = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n" + _LUA_NOW +
    "redis.call('HSET', KEYS[1], 'status', 'QUEUED', 'model', ARGV[1],\n"
    "  'submit_ms', ARGV[2], 'queued_ms', now, 'attempts', '0',\n"
    "  'result_writes', '0', 'skips', '0')\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
    "return 1\n")
# wake: KEYS = [job, done], ARGV = [token].  The waiter's push-back after
# BLPOP, only when terminal, restoring the done list's TTL.
LUA_WAKE = (
    _LUA_TERMINAL +
    "local s = redis.call('HGET', KEYS[1], 'status')\n"
    "if terminal(s) then\n"
    "  redis.call('RPUSH', KEYS[2], ARGV[1])\n"
    "  local ttl = redis.call('PTTL', KEYS[1])\n"
    "  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end\n"
    "end\n"
    "return s\n")


def _text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class Client:
    """Submit jobs to Kafka, read status and results from Redis.

    bootstrap: Kafka bootstrap.servers.  kafka_conf: extra librdkafka
    properties.  Redis: host/port/db/username/password.  prefix and ttl_s
    are redis.prefix and redis.ttl.s of the deployment (defaults aas: and
    86400).  The Kafka producer is created on the first submit.

    key: an API key that signs every job published (header aas.auth, for
    workers with worker.auth = keys); each job must then name the key's
    tenant.  None (the default) takes env AAS_CLIENT_KEY, else the file
    named by AAS_CLIENT_KEY_FILE, else jobs go unsigned; "" publishes
    unsigned whatever the environment says.  key_file: read the key from
    this file instead.
    """

    def __init__(self, bootstrap="127.0.0.1:9092", redis_host="127.0.0.1",
                 redis_port=6379, redis_db=0, redis_username=None,
                 redis_password=None, prefix="aas:", ttl_s=86400,
                 topic="aas.jobs.infer", schema_dir=DEFAULT_SCHEMA_DIR,
                 kafka_conf=None, redis_timeout_s=5.0, publish_timeout_s=30.0,
                 max_result_bytes=64 << 20, key=None, key_file=None):
        if len(prefix) > 64 or PREFIX_BAD_RE.search(prefix):
            raise AasError("invalid Redis prefix %r" % prefix, EXIT_USAGE)
        if key is not None and key_file is not None:
            raise AasError("give key or key_file, not both", EXIT_USAGE)
        source = "key"
        if key_file is not None:
            key, source = read_key_file(key_file), "key file %s" % key_file
        elif key is None:
            key, source = _env_key()
        # None when jobs go unsigned; the key itself is not kept.
        self.signer = None
        if key is not None and (key != "" or source != "key"):
            self.signer = JobSigner(key, source)
        self.schemas = Schemas(schema_dir)
        self.redis_mod = _require("redis")
        self.bootstrap = bootstrap
        self.kafka_conf = dict(kafka_conf or {})
        self.topic = topic
        self.prefix = prefix
        self.ttl_s = int(ttl_s)
        self.publish_timeout_s = publish_timeout_s
        self.max_result_bytes = max_result_bytes
        self._redis_args = dict(host=redis_host, port=int(redis_port), db=int(redis_db),
                                username=redis_username, password=redis_password,
                                socket_connect_timeout=redis_timeout_s)
        self.redis_timeout_s = redis_timeout_s
        self.r = self.redis_mod.Redis(socket_timeout=redis_timeout_s, **self._redis_args)
        self._waiter = None   # own connection: BLPOP blocks it
        # Script objects: EVALSHA, falling back to loading on NOSCRIPT.
        self._queued = self.r.register_script(LUA_QUEUED)
        self._wake = self.r.register_script(LUA_WAKE)
        self._producer = None

    # keys (docs/redis.md, "Keys")
    def job_key(self, job_id):
        return "%sjob:{%s}" % (self.prefix, check_id(job_id, "job id"))

    def result_key(self, job_id):
        return "%sresult:{%s}" % (self.prefix, check_id(job_id, "job id"))

    def done_key(self, job_id):
        return "%sdone:{%s}" % (self.prefix, check_id(job_id, "job id"))

    def _redis(self, what, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except self.redis_mod.exceptions.RedisError as e:
            raise AasError("Redis %s:%s, %s: %s" % (self._redis_args["host"],
                           self._redis_args["port"], what, e))

    # ---- submit ----------------------------------------------------------

    def _get_producer(self):
        if self._producer is None:
            ck = _require("confluent_kafka")
            conf = {"bootstrap.servers": self.bootstrap,
                    "enable.idempotence": True, "acks": "all", "linger.ms": 1,
                    "message.timeout.ms": int(self.publish_timeout_s * 1000),
                    "client.id": "aas-python-client"}
            conf.update(self.kafka_conf)
            try:
                self._producer = ck.Producer(conf)
            except ck.KafkaException as e:
                raise AasError("Kafka producer: %s" % e, EXIT_USAGE)
        return self._producer

    def make_job(self, model, rows, job_id=None, model_version=None, params=None,
                 priority=0, deadline_ms=None, input_name="input", tenant=None):
        """An aas.v1.Job record (dict) for rows of F32 values."""
        job_id = check_id(job_id or secrets.token_hex(16), "job id")
        check_id(model, "model name")
        if model_version is not None:
            check_id(model_version, "model version")
        if tenant is not None:
            check_id(tenant, "tenant")
        return {"id": job_id, "kind": "INFER", "model": model,
                "model_version": model_version,
                "inputs": [f32_tensor(rows, input_name)], "text": None,
                "params": dict(params or {}), "priority": int(priority),
                "deadline_ms": deadline_ms, "submit_ms": now_ms(), "tenant": tenant}

    def publish(self, jobs):
        """Produce job records to the topic (key = id), wait for every
        delivery report, and record QUEUED in Redis for each acknowledged
        job, as the C client does (docs/redis.md: the queued script only
        creates the hash when it does not exist).  Returns the ids."""
        if self.signer is not None:
            # Before anything is sent, as the C client: a worker checking
            # signatures runs a job only for its key's tenant.
            for job in jobs:
                if not job.get("tenant"):
                    raise AasError("job %s: %s" % (job.get("id"), NEEDS_TENANT))
        producer = self._get_producer()
        results = {}

        def on_delivery(err, msg):
            results[msg.key().decode("utf-8")] = err

        encoded = []
        for job in jobs:
            value = self.schemas.encode_job(job)
            extra = {}
            if self.signer is not None:   # over the exact bytes sent
                extra["headers"] = [(AUTH_HEADER, self.signer.sign(value).encode("ascii"))]
            encoded.append((job, value, extra))
        for job, value, extra in encoded:
            while True:
                try:
                    producer.produce(self.topic, key=job["id"].encode("utf-8"),
                                     value=value, on_delivery=on_delivery, **extra)
                    break
                except BufferError:      # local queue full: serve reports
                    producer.poll(0.1)
        left = producer.flush(self.publish_timeout_s + 5)
        failed = []
        for job in jobs:
            err = results.get(job["id"])
            if job["id"] not in results:
                failed.append("%s: no delivery report (%d message(s) still queued)"
                              % (job["id"], left))
            elif err is not None:
                failed.append("%s: %s" % (job["id"], err.str()))
        if failed:
            raise AasError("publish to %s failed: %s" % (self.topic, "; ".join(failed)))
        for job in jobs:
            try:
                self._queued(keys=[self.job_key(job["id"])],
                             args=[job["model"], str(job["submit_ms"]), str(self.ttl_s),
                                   job.get("tenant") or ""])
            except self.redis_mod.exceptions.RedisError as e:
                # The job is on the topic and will run; only the QUEUED
                # bookkeeping is missing (a worker creates the hash).
                sys.stderr.write("aas_client: job=%s published but QUEUED not "
                                 "recorded: %s\n" % (job["id"], e))
        return [job["id"] for job in jobs]

    def submit(self, model, rows, **kw):
        """Publish one job of rows (list of lists of numbers); return its id
        once the broker acknowledged it."""
        return self.publish([self.make_job(model, rows, **kw)])[0]

    # ---- status, wait, result -------------------------------------------

    def status(self, job_id):
        """The job's status string, or None if unknown/expired."""
        return _text(self._redis("HGET", self.r.hget, self.job_key(job_id), "status"))

    def job_info(self, job_id):
        """The job hash (HGETALL) as a dict of strings; {} if unknown."""
        h = self._redis("HGETALL", self.r.hgetall, self.job_key(job_id))
        return {_text(k): _text(v) for k, v in h.items()}

    def wait_status(self, job_id, timeout_s=60.0, poll=False):
        """Wait until the job is terminal; return its status, or raise
        AasTimeout.  Uses BLPOP on the done list and pushes the token back
        with the wake script (docs/redis.md, "Wait"), or with poll=True
        polls HGET status."""
        deadline = time.monotonic() + timeout_s
        job_key, done_key = self.job_key(job_id), self.done_key(job_id)
        s = self.status(job_id)                                   # step 1
        if poll:
            delay = 0.02
            while s not in TERMINAL:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(delay, left))
                delay = min(delay * 2, 0.5)
                s = self.status(job_id)
        else:
            while s not in TERMINAL:
                left = deadline - time.monotonic()
                if left < 0.001:
                    break
                block = min(left, 30.0)
                if self._waiter is None:
                    self._waiter = self.redis_mod.Redis(socket_timeout=None,
                                                        **self._redis_args)
                # step 2; the socket waits longer than BLPOP (timeout=None).
                got = self._redis("BLPOP", self._waiter.blpop, [done_key],
                                  timeout="%.3f" % block)
                if got is None:                                   # step 5
                    s = self.status(job_id)
                    continue
                # steps 3-4: push back (only if terminal) and restore TTL.
                s = _text(self._redis("wake", self._wake, keys=[job_key, done_key],
                                      args=[got[1]]))
                # A stray token (job not terminal) is not pushed back.
        if s not in TERMINAL:
            raise AasTimeout("job %s: not finished after %.1f s (status: %s)"
                             % (job_id, timeout_s, s or "unknown"))
        return s

    def result_bytes(self, job_id):
        """The raw result value (bytes) or None if absent.  Checks STRLEN
        against max_result_bytes first, as docs/redis.md asks."""
        key = self.result_key(job_id)
        n = self._redis("STRLEN", self.r.strlen, key)
        if n == 0:
            return None
        if n > self.max_result_bytes:
            raise AasError("result of %s is %d bytes, more than the limit %d"
                           % (job_id, n, self.max_result_bytes))
        return self._redis("GET", self.r.get, key)

    def result(self, job_id):
        """The decoded aas.v1.Result (dict), or None if the job has no
        result (most FAILED/EXPIRED/CANCELLED jobs, or unknown)."""
        raw = self.result_bytes(job_id)
        if raw is None:
            return None
        return self.schemas.decode_result(raw, "result of %s" % job_id)

    def wait(self, job_id, timeout_s=60.0, poll=False):
        """Wait for the job and return its decoded result.  A terminal job
        without a result gives a dict with status and error from the hash."""
        s = self.wait_status(job_id, timeout_s, poll)
        r = self.result(job_id)
        if r is None:
            info = self.job_info(job_id)
            r = {"job_id": job_id, "status": s, "model": info.get("model"),
                 "model_version": info.get("version"), "outputs": [],
                 "predictions": [], "error": info.get("error"),
                 "timings": {"queue_ms": 0, "decode_us": 0, "compute_us": 0,
                             "total_us": 0},
                 "worker_id": info.get("worker"),
                 "finished_ms": int(info.get("finished_ms") or 0)}
        return r

    def close(self):
        if self._producer is not None:
            self._producer.flush(self.publish_timeout_s)
            self._producer = None
        for conn in (self.r, self._waiter):
            if conn is not None:
                conn.close()


# ---- self test (no servers) -----------------------------------------------

def selftest(schema_dir):
    """Check CRC-64-AVRO against the Avro test vectors and the encoder
    against the worked example of docs/wire-format.md."""
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F
    v = crc64_avro(b'{"name":"foo","type":"record","fields":[]}')
    assert v - (1 << 64) == -4824392279771201922, hex(v)
    s = Schemas(schema_dir)
    example = {"id": "job-1", "kind": "INFER", "model": "mnist", "model_version": None,
               "inputs": [{"name": "x", "dtype": "F32", "shape": [1, 2],
                           "data": struct.pack("<2f", 1.0, 2.0)}],
               "text": None, "params": {}, "priority": 0, "deadline_ms": None,
               "submit_ms": 1700000000000, "tenant": None}
    got = s.encode_job(example)
    body = bytes.fromhex(
        "0a6a6f622d3100" "0a6d6e69737400" "02" "02027800" "04020400"
        "100000803f00000040" "00" "00" "00" "00" "00" "80a0abfef962" "00")
    assert got == s.job_header + body, got.hex()
    assert s.decode_job(got) == example
    for bad, why in ((got[:9], "shorter"), (b"\x00" + got[1:], "bad magic"),
                     (got[:2] + b"\x00" * 8 + got[10:], "unknown schema fingerprint"),
                     (got + b"\x00", "trailing")):
        try:
            s.decode_job(bad)
        except AasError as e:
            assert why in str(e), str(e)
        else:
            raise AssertionError("accepted: " + why)
    # Signed jobs: the vector of tests/test_apikey.c (docs/wire-format.md, 6).
    signer = JobSigner("aas_test-key-0123456789")
    assert signer.key_id == "39831e9662c503a5", signer.key_id
    hdr = signer.sign(b"an aas job")
    assert hdr == ("v1:39831e9662c503a5:1c7bcc5ab6971ce04962216fb9847c25"
                   "381eb97b21296b2990bb8ba35e262080"), hdr
    print("job    %016x\nresult %016x\naas.auth %s\nselftest ok"
          % (s.job_fp, s.result_fp, hdr))


# ---- command line -----------------------------------------------------------

def _parse_values(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise AasError("--values: not a comma-separated list of numbers: %r" % text,
                       EXIT_USAGE)


def _kv(text, opt):
    if "=" not in text:
        raise AasError("%s wants KEY=VALUE, got %r" % (opt, text), EXIT_USAGE)
    return text.split("=", 1)


def _print_result(r, avro_json):
    obj = avro_to_json(r) if avro_json else result_to_json(r)
    print(json.dumps(obj, separators=(",", ":")))


def build_parser():
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="aas_client.py",
        description="Submit aas inference jobs to Kafka and read their results "
                    "from Redis (Python client; contracts in docs/wire-format.md "
                    "and docs/redis.md).",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 a job did not "
               "succeed, 4 timed out.  Defaults come from the same environment "
               "variables as the C programs (AAS_KAFKA_BOOTSTRAP_SERVERS, "
               "AAS_REDIS_HOST, AAS_REDIS_PORT, AAS_REDIS_DB, AAS_REDIS_USER, "
               "AAS_REDIS_PASSWORD, AAS_REDIS_PREFIX, AAS_REDIS_TTL_S, "
               "AAS_TOPIC_INFER, AAS_CLIENT_TENANT).  The Redis password is read "
               "only from AAS_REDIS_PASSWORD, never from the command line.  "
               "Signed jobs: the API key comes from AAS_CLIENT_KEY, "
               "--key-file or AAS_CLIENT_KEY_FILE, never from the command line.")
    p.add_argument("--bootstrap", metavar="HOST:PORT[,...]",
                   default=env("AAS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                   help="Kafka bootstrap.servers (default: %(default)s)")
    p.add_argument("--redis-host", default=env("AAS_REDIS_HOST", "127.0.0.1"),
                   help="Redis host (default: %(default)s)")
    p.add_argument("--redis-port", type=int, default=int(env("AAS_REDIS_PORT", "6379")),
                   help="Redis port (default: %(default)s)")
    p.add_argument("--redis-db", type=int, default=int(env("AAS_REDIS_DB", "0")),
                   help="Redis database (default: %(default)s)")
    p.add_argument("--redis-user", default=env("AAS_REDIS_USER"),
                   help="Redis ACL user (password: env AAS_REDIS_PASSWORD)")
    p.add_argument("--prefix", default=env("AAS_REDIS_PREFIX", "aas:"),
                   help="Redis key prefix, redis.prefix (default: %(default)s)")
    p.add_argument("--ttl-s", type=int, default=int(env("AAS_REDIS_TTL_S", "86400")),
                   help="TTL for the QUEUED record, redis.ttl.s (default: %(default)s)")
    p.add_argument("--topic", default=env("AAS_TOPIC_INFER", "aas.jobs.infer"),
                   help="Kafka topic of inference jobs (default: %(default)s)")
    p.add_argument("--schemas", metavar="DIR", default=DEFAULT_SCHEMA_DIR,
                   help="directory with job.avsc, result.avsc and history/ "
                        "(default: %(default)s)")
    p.add_argument("-X", dest="kafka", metavar="PROP=VALUE", action="append", default=[],
                   help="librdkafka producer property, repeatable "
                        "(e.g. -X security.protocol=SSL)")
    p.add_argument("--max-result-mb", type=int, default=64,
                   help="largest result accepted from Redis, MiB (default: %(default)s)")
    p.add_argument("--key-file", metavar="PATH",
                   help="sign every job with the API key in PATH (header aas.auth, "
                        "docs/sharing.md#access); default: env AAS_CLIENT_KEY, else "
                        "the file named by AAS_CLIENT_KEY_FILE, else unsigned")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True

    def wait_opts(sp):
        sp.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="give up after S seconds (default: %(default)s), exit 4")
        sp.add_argument("--poll", action="store_true",
                        help="poll HGET status instead of BLPOP on the done list")
        sp.add_argument("--avro", action="store_true",
                        help="print the whole aas.v1.Result record (bytes as hex) "
                             "instead of the aas-producer --json shape")

    s = sub.add_parser("submit", help="publish one job; print its id (or its result with --wait)",
                       description="Publish one INFER job with an F32 tensor 'input' of "
                                   "shape [rows, cols]; each --values is one row.")
    s.add_argument("--model", required=True, help="registered model name")
    s.add_argument("--values", required=True, action="append", metavar="LIST",
                   help="one row of numbers, e.g. 0.1,0.2,0.3 (repeat for more rows)")
    s.add_argument("--model-version", metavar="V", help="model version (default: latest)")
    s.add_argument("--id", help="job id (default: 32 random hex digits)")
    s.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    s.add_argument("--tenant", default=env("AAS_CLIENT_TENANT") or None,
                   help="the job's tenant, for metering; a signed job needs the "
                        "key's tenant (default: env AAS_CLIENT_TENANT, else none)")
    s.add_argument("--deadline-ms", type=int, metavar="MS",
                   help="expire unless started within MS milliseconds")
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="job parameter (repeatable)")
    s.add_argument("--wait", action="store_true", help="wait and print the result as JSON")
    wait_opts(s)

    w = sub.add_parser("wait", help="wait for a job; print its result as JSON")
    w.add_argument("id")
    wait_opts(w)

    d = sub.add_parser("decode-result", help="read and decode a stored result now (no waiting)")
    d.add_argument("id")
    d.add_argument("--raw-hex", action="store_true",
                   help="print the raw result bytes as hex (after checking framing "
                        "and fingerprint and decoding them)")
    d.add_argument("--avro", action="store_true", help="print the whole aas.v1.Result record")

    st = sub.add_parser("status", help="print the job hash (HGETALL) as JSON")
    st.add_argument("id")

    sub.add_parser("selftest", help="check the fingerprint and encoder against "
                                    "docs/wire-format.md (no servers)")
    return p


def run(args):
    if args.cmd == "selftest":
        selftest(args.schemas)
        return EXIT_OK
    kafka_conf = dict(_kv(x, "-X") for x in args.kafka)
    c = Client(bootstrap=args.bootstrap, redis_host=args.redis_host,
               redis_port=args.redis_port, redis_db=args.redis_db,
               redis_username=args.redis_user,
               redis_password=os.environ.get("AAS_REDIS_PASSWORD"),
               prefix=args.prefix, ttl_s=args.ttl_s, topic=args.topic,
               schema_dir=args.schemas, kafka_conf=kafka_conf,
               max_result_bytes=args.max_result_mb << 20, key_file=args.key_file)
    try:
        if args.cmd == "submit":
            rows = [_parse_values(v) for v in args.values]
            params = dict(_kv(x, "--param") for x in args.param)
            deadline = now_ms() + args.deadline_ms if args.deadline_ms else None
            job_id = c.submit(args.model, rows, job_id=args.id,
                              model_version=args.model_version, params=params,
                              priority=args.priority, deadline_ms=deadline,
                              tenant=args.tenant)
            if not args.wait:
                print(job_id)
                return EXIT_OK
            r = c.wait(job_id, args.timeout, args.poll)
            _print_result(r, args.avro)
            return EXIT_OK if r["status"] == "SUCCEEDED" else EXIT_NOT_SUCCEEDED
        if args.cmd == "wait":
            r = c.wait(args.id, args.timeout, args.poll)
            _print_result(r, args.avro)
            return EXIT_OK if r["status"] == "SUCCEEDED" else EXIT_NOT_SUCCEEDED
        if args.cmd == "decode-result":
            raw = c.result_bytes(args.id)
            if raw is None:
                raise AasError("job %s has no result in Redis (status: %s)"
                               % (args.id, c.status(args.id) or "unknown"))
            r = c.schemas.decode_result(raw, "result of %s" % args.id)
            if args.raw_hex:
                print(raw.hex())
            else:
                _print_result(r, args.avro)
            return EXIT_OK
        if args.cmd == "status":
            info = c.job_info(args.id)
            if not info:
                raise AasError("job %s is unknown (or expired)" % args.id)
            print(json.dumps(dict(sorted(info.items())), separators=(",", ":")))
            return EXIT_OK
    finally:
        c.close()
    return EXIT_USAGE


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except AasError as e:
        sys.stderr.write("aas_client: %s\n" % e)
        return e.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
