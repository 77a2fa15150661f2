#!/usr/bin/env bash
# test_compose.sh - static checks of compose.yaml and tools/docker/Dockerfile.
#
# Needs no Docker engine: `docker-compose config` (Debian's docker-compose
# v1) only parses, validates and interpolates the file.  Also runs
# `docker compose config` (v2) when that plugin is installed.  Then checks
# the structure the docs rely on, and that the Dockerfile is in step with
# the build (tests/check_dockerfile.py: copied directories, build packages,
# the runtime libraries of the programs built in BUILD_DIR).
# Usage: tests/test_compose.sh [BUILD_DIR]   (default build/)
# Exit 0 ok, 1 failure, 77 skipped (no docker-compose; ctest
# SKIP_RETURN_CODE 77).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${1:-build}

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "test_compose: SKIP: docker-compose not installed (apt-get install -y docker-compose)"
  exit 77
fi

# Run with a known environment: no host AAS_* values, no .env surprises.
clean_env=(env -i PATH="$PATH" HOME="${HOME:-/tmp}")

fail=0
step() { printf 'test_compose: %s ... ' "$1"; }
ok() { echo ok; }
bad() { echo "FAILED: $*"; fail=1; }

step "docker-compose -f compose.yaml config -q"
if out=$("${clean_env[@]}" docker-compose -f compose.yaml config -q 2>&1); then ok; else bad "$out"; fi

step "docker-compose --profile tools config -q"
if out=$("${clean_env[@]}" docker-compose -f compose.yaml --profile tools config -q 2>&1); then ok; else bad "$out"; fi

if docker compose version >/dev/null 2>&1; then
  step "docker compose (v2) config -q"
  if out=$("${clean_env[@]}" docker compose -f compose.yaml --profile tools config -q 2>&1); then ok; else bad "$out"; fi
fi

step "a non-integer AAS_WORKERS is rejected"
if "${clean_env[@]}" AAS_WORKERS=two docker-compose -f compose.yaml config -q >/dev/null 2>&1; then
  bad "config accepted AAS_WORKERS=two"
else ok; fi

# Structure, on the interpolated file (python3-yaml is a dependency of
# docker-compose, so it is here whenever docker-compose is).
step "services, dependencies, secret wiring, Dockerfile"
cfg_default=$("${clean_env[@]}" docker-compose -f compose.yaml --profile tools config)
cfg_custom=$("${clean_env[@]}" AAS_REDIS_PASSWORD='s3cret with space' AAS_WORKERS=5 AAS_PARTITIONS=3 \
  AAS_GATEWAY_PORT=127.0.0.1:18000 docker-compose -f compose.yaml --profile tools config)
if out=$(CFG_DEFAULT=$cfg_default CFG_CUSTOM=$cfg_custom python3 - <<'EOF' 2>&1
import os, re, sys, yaml

errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

d = yaml.safe_load(os.environ["CFG_DEFAULT"])
c = yaml.safe_load(os.environ["CFG_CUSTOM"])
svc = d.get("services", {})
for name in ("kafka", "kafka-init", "redis", "worker", "producer", "gateway"):
    check(name in svc, f"service {name} missing")
if errors:
    print("\n".join(errors)); sys.exit(1)

k, ki, r, w, p = (svc[n] for n in ("kafka", "kafka-init", "redis", "worker", "producer"))
ke = k.get("environment", {})
check(k.get("image", "").startswith("apache/kafka:"), "kafka image is not apache/kafka")
check("broker" in ke.get("KAFKA_PROCESS_ROLES", "") and "controller" in ke.get("KAFKA_PROCESS_ROLES", ""),
      "kafka is not a combined broker+controller")
check(ke.get("KAFKA_ADVERTISED_LISTENERS") == "PLAINTEXT://kafka:9092", "kafka advertised listener")
check(str(ke.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")).lower() == "false", "auto topic creation is on")
check("healthcheck" in k and "healthcheck" in r, "kafka or redis lacks a healthcheck")

script = " ".join(ki.get("command", []))
for t in ("aas.jobs.infer", "aas.jobs.train", "aas.jobs.dlq"):
    check(t in script, f"kafka-init does not create {t}")
check("--if-not-exists" in script, "kafka-init is not idempotent (--if-not-exists)")
check(ki.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy",
      "kafka-init does not wait for a healthy kafka")
check(c["services"]["kafka-init"]["environment"].get("INFER_PARTITIONS") in ("3", 3),
      "AAS_PARTITIONS does not reach kafka-init")

g = svc["gateway"]
for n, s in (("worker", w), ("producer", p), ("gateway", g)):
    dep = s.get("depends_on", {})
    check(dep.get("kafka-init", {}).get("condition") == "service_completed_successfully",
          f"{n} does not wait for kafka-init")
    check(dep.get("redis", {}).get("condition") == "service_healthy", f"{n} does not wait for redis")
    e = s.get("environment", {})
    check(e.get("AAS_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", f"{n} bootstrap servers")
    check(e.get("AAS_REDIS_HOST") == "redis", f"{n} redis host")
    b = s.get("build", {})
    df = os.path.join(b.get("context", "."), b.get("dockerfile", "Dockerfile"))
    check(os.path.isfile(df), f"{n}: Dockerfile {df} not found")
    # The password reaches clients only through the environment, never argv.
    check("redis.password" not in " ".join(map(str, s.get("command", []) or [])),
          f"{n} puts the Redis password on its command line")

check(str(w.get("environment", {}).get("OMP_NUM_THREADS")) == "1", "worker OMP_NUM_THREADS")
check(w.get("deploy", {}).get("replicas") == 2, "default worker replicas is not 2")
check(c["services"]["worker"].get("deploy", {}).get("replicas") == 5, "AAS_WORKERS does not set replicas")
check(p.get("profiles") == ["tools"], "producer is not in the tools profile")
check(p.get("entrypoint") == ["aas-producer"], "producer entrypoint")
check(any(str(v).endswith(":/data:ro") for v in p.get("volumes", [])), "producer lacks ./data at /data:ro")

# One password for server and clients, taken from AAS_REDIS_PASSWORD.
for cfg, want in ((d, None), (c, "s3cret with space")):
    s = cfg["services"]
    pw = s["redis"]["environment"].get("REDIS_PASSWORD")
    check(pw and s["worker"]["environment"].get("AAS_REDIS_PASSWORD") == pw
          and s["producer"]["environment"].get("AAS_REDIS_PASSWORD") == pw
          and s["gateway"]["environment"].get("AAS_REDIS_PASSWORD") == pw,
          "redis and the clients do not share one password")
    if want:
        check(pw == want, "AAS_REDIS_PASSWORD does not reach redis")
rcmd = " ".join(r.get("command", []))
check("--requirepass" in rcmd and "$REDIS_PASSWORD" in rcmd.replace("$$", "$"),
      "redis does not take its password from REDIS_PASSWORD")

# The gateway: every interface of its container, port 8000 published as
# AAS_GATEWAY_PORT (default 8000), and a health check on readiness that
# uses what the runtime image has (curl only if the Dockerfile installs it).
ge = g.get("environment", {})
check(g.get("entrypoint") == ["aas-gateway"], "gateway entrypoint")
check(ge.get("AAS_GATEWAY_LISTEN_HOST") == "0.0.0.0", "gateway does not listen on 0.0.0.0")
check(str(ge.get("AAS_GATEWAY_LISTEN_PORT")) == "8000", "gateway does not listen on 8000")
def ports(s):
    out = []
    for x in s.get("ports", []):
        if isinstance(x, dict):
            out.append((x.get("host_ip", ""), str(x.get("published")), str(x.get("target"))))
        else:
            parts = str(x).split("/")[0].rsplit(":", 2)
            out.append(("" if len(parts) < 3 else parts[0], parts[-2], parts[-1]))
    return out
check(("", "8000", "8000") in ports(g), f"gateway port is not 8000:8000 by default: {ports(g)}")
check(("127.0.0.1", "18000", "8000") in ports(c["services"]["gateway"]),
      "AAS_GATEWAY_PORT does not set the gateway's published port")
hc = " ".join(map(str, g.get("healthcheck", {}).get("test", [])))
check("/v2/health/ready" in hc, "gateway health check does not ask /v2/health/ready")

# The Dockerfile copies directories that exist and runs aas-worker.
w_df = os.path.join(w["build"]["context"], w["build"]["dockerfile"])
text = open(w_df).read()
for m in re.finditer(r"^COPY\s+(?!--from)(.+?)\s+\S+\s*$", text, re.M):
    for src in m.group(1).split():
        check(os.path.exists(os.path.join(w["build"]["context"], src)), f"Dockerfile copies missing {src}")
check(re.search(r'^ENTRYPOINT \["aas-worker"\]', text, re.M), "Dockerfile entrypoint is not aas-worker")
check(re.search(r"^USER\s+(?!0\b|root\b)\S+", text, re.M), "Dockerfile does not switch to a non-root user")
check("-DAAS_BUILD_TESTS=OFF" in text, "Dockerfile builds the tests")
runtime = text.split("FROM")[-1]
check("curl" not in hc or re.search(r"apt-get install[^\n]*\bcurl\b", runtime.replace("\\\n", " ")),
      "gateway health check uses curl, which the runtime stage does not install")

print("\n".join(errors))
sys.exit(1 if errors else 0)
EOF
); then ok; else bad "$out"; fi

step "Dockerfile in step with CMake, tools/packages.sh and ldd of $BUILD/*/aas-*"
if out=$(python3 tests/check_dockerfile.py "$BUILD" 2>&1); then ok; printf '%s\n' "$out" | sed 's/^/  /'
else bad "$out"; fi

if [ "$fail" = 0 ]; then echo "test_compose: all checks passed"; fi
exit "$fail"
