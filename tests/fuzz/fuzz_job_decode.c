/*
 * fuzz_job_decode.c - libFuzzer target for what a worker does first with
 * bytes from Kafka: decode (framing, fingerprint, bounded pre-walk, Avro)
 * and validate a job, then re-encode what was accepted and decode it again
 * (the round trip must hold).  Also feeds the bytes to the result decoder,
 * which clients run on bytes from Redis.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DAAS_FUZZ=ON
 * Run:   build-fuzz/tests/fuzz/fuzz_job_decode tests/fuzz/corpus -max_total_time=60
 * Crashes found are fixed and their inputs kept in tests/fuzz/corpus.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static aas_codec_t *codec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[256], id[AAS_ID_MAX + 1];
    if (!codec && aas_codec_new(&codec, why, sizeof(why)) != AAS_ERR_OK) abort();
    aas_codec_limits_t limits;
    aas_codec_limits_default(&limits);
    limits.max_message_bytes = 1 << 20;
    limits.max_tensor_elems = 1 << 16;
    aas_job_t job;
    if (aas_codec_job_decode(codec, data, size, &limits, &job, id, why, sizeof(why)) ==
        AAS_ERR_OK) {
        if (!aas_id_valid(job.id) || strcmp(job.id, id) != 0) abort();
        void *buf;
        size_t len;
        if (aas_codec_job_encode(codec, &job, &buf, &len, why, sizeof(why)) != AAS_ERR_OK)
            abort(); /* whatever decodes must encode */
        aas_job_t again;
        if (aas_codec_job_decode(codec, buf, len, &limits, &again, id, why,
                                 sizeof(why)) != AAS_ERR_OK ||
            strcmp(again.id, job.id) != 0 || again.n_inputs != job.n_inputs)
            abort();
        aas_job_clear(&again);
        free(buf);
        aas_job_clear(&job);
    }
    aas_result_t res;
    if (aas_codec_result_decode(codec, data, size, &res, why, sizeof(why)) == AAS_ERR_OK)
        aas_result_clear(&res);
    return 0;
}
