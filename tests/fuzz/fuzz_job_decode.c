/*
 * fuzz_job_decode.c - libFuzzer target for what a worker does first with
 * bytes from Kafka: decode (framing, fingerprint, bounded pre-walk, Avro)
 * and validate a job, then re-encode what was accepted and decode it again
 * (the round trip must hold).  Also feeds the bytes to the result decoder,
 * which clients run on bytes from Redis, and holds the direct decoder of
 * the current schema (common/codec_direct.c) to the generic one: the same
 * outcome, error message and job id, the same job (tests/test_codec_fast.c
 * does the same on seeded mutations).
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
#include "codec_int.h"

static aas_codec_t *codec;

static int same_str(const char *a, const char *b) {
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Field by field, params in order; 1 if equal. */
static int same_job(const aas_job_t *a, const aas_job_t *b) {
    if (!same_str(a->id, b->id) || a->kind != b->kind || !same_str(a->model, b->model) ||
        !same_str(a->model_version, b->model_version) || a->n_inputs != b->n_inputs ||
        !same_str(a->text, b->text) || a->n_params != b->n_params ||
        a->priority != b->priority || a->deadline_ms != b->deadline_ms ||
        a->submit_ms != b->submit_ms || !same_str(a->tenant, b->tenant))
        return 0;
    for (size_t i = 0; i < a->n_inputs; i++) {
        const aas_tensor_t *x = &a->inputs[i], *y = &b->inputs[i];
        if (!same_str(x->name, y->name) || x->dtype != y->dtype || x->rank != y->rank ||
            x->nbytes != y->nbytes || memcmp(x->shape, y->shape, sizeof(x->shape)) != 0 ||
            memcmp(x->data, y->data, x->nbytes) != 0)
            return 0;
    }
    for (size_t i = 0; i < a->n_params; i++)
        if (!same_str(a->params[i].key, b->params[i].key) ||
            !same_str(a->params[i].value, b->params[i].value))
            return 0;
    return 1;
}

/* The direct and the generic decoder on the same bytes, under small
 * limits so that each is hit. */
static void differential(const uint8_t *data, size_t size) {
    aas_codec_limits_t limits;
    aas_codec_limits_default(&limits);
    limits.max_message_bytes = 1 << 16;
    limits.max_tensor_elems = 64;
    limits.max_tensors = 3;
    limits.max_text_bytes = 32;
    limits.max_params = 3;
    aas_job_t d, g;
    char idd[AAS_ID_MAX + 1], idg[AAS_ID_MAX + 1], errd[256] = "", errg[256] = "";
    aas_err_t rd = aas_codec_job_decode(codec, data, size, &limits, &d, idd, errd,
                                        sizeof(errd));
    aas_err_t rg = aas_codec_job_decode_generic(codec, data, size, &limits, &g, idg, errg,
                                                sizeof(errg));
    if (rd != rg || strcmp(idd, idg) != 0 || (rd && strcmp(errd, errg) != 0)) abort();
    if (rd == AAS_ERR_OK) {
        if (!same_job(&d, &g)) abort();
        aas_job_clear(&d);
        aas_job_clear(&g);
    }
}

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
    differential(data, size);
    aas_result_t res;
    if (aas_codec_result_decode(codec, data, size, &res, why, sizeof(why)) == AAS_ERR_OK)
        aas_result_clear(&res);
    return 0;
}
