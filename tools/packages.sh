# packages.sh - the Debian packages aas needs, in one place (sourced by
# tools/aas-demo and .ci/run).
AAS_PACKAGES="build-essential cmake pkg-config librdkafka-dev libhiredis-dev \
libavro-dev libdnnl-dev ocl-icd-opencl-dev libcmocka-dev libjansson-dev \
libmicrohttpd-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev libutf8proc-dev \
libcurl4-openssl-dev redis-server kcat jq curl python3 python3-avro"

# Only for tests and benchmarks (real Kafka runs on Java; compose is
# validated with docker-compose; sanitizers and fuzzing use clang; the
# Python example client uses Debian's Kafka and Redis modules; gdb prints
# the stacks of a program that hangs on SIGTERM in a shell test).
AAS_TEST_PACKAGES="openjdk-17-jre-headless maven docker-compose clang \
libclang-rt-14-dev valgrind python3-confluent-kafka python3-redis libonnx-testdata \
python3-venv openssl wrk procps gdb"

# aas_missing_packages [LIST]: which of LIST (default $AAS_PACKAGES) are
# not installed.
aas_missing_packages() {
  local p
  for p in ${1:-$AAS_PACKAGES}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || printf '%s ' "$p"
  done
}
