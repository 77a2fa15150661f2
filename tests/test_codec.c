/*
 * test_codec.c - codec round trips, fingerprints against an independent
 * implementation (tests/fingerprint_check.py, python3-avro), and rejection of
 * hostile messages.
 *
 * Hostile messages are written byte by byte with the small Avro writer below
 * (raw_*), straight from the Avro spec and schemas/job.avsc, so these tests
 * also check that the codec reads what the spec says a peer sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>

#include <cmocka.h>

#include "codec.h"
#include "codec_int.h"
#include "job.h"
#include "tensor.h"

#ifndef AAS_SOURCE_DIR
#error "AAS_SOURCE_DIR must be defined (tests/CMakeLists.txt)"
#endif
#ifndef AAS_PYTHON3
#define AAS_PYTHON3 "/usr/bin/python3"
#endif

/* ---- fixtures ------------------------------------------------------------ */

static int group_setup(void **state) {
    aas_codec_t *codec = NULL;
    char err[256];
    if (aas_codec_new(&codec, err, sizeof(err)) != AAS_ERR_OK) {
        fprintf(stderr, "aas_codec_new: %s\n", err);
        return -1;
    }
    *state = codec;
    return 0;
}

static int group_teardown(void **state) {
    aas_codec_destroy(*state);
    return 0;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

static void set_tensor(aas_tensor_t *t, const char *name, aas_dtype_t dtype,
                       int rank, const int64_t *shape) {
    memset(t, 0, sizeof(*t));
    t->name = name ? strdup(name) : NULL;
    t->dtype = dtype;
    t->rank = rank;
    size_t elems = 1;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        elems *= (size_t)shape[i];
    }
    t->nbytes = elems * aas_dtype_size(dtype);
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    assert_non_null(t->data);
    for (size_t i = 0; i < t->nbytes; i++)
        ((unsigned char *)t->data)[i] = (unsigned char)(i * 7 + 1);
}

static void full_job(aas_job_t *job) {
    static const int64_t s0[] = {2, 3}, s1[] = {4};
    memset(job, 0, sizeof(*job));
    job->id = strdup("job-1");
    job->kind = AAS_JOB_TRAIN;
    job->model = strdup("mnist_mlp");
    job->model_version = strdup("v3.1");
    job->n_inputs = 2;
    job->inputs = calloc(2, sizeof(aas_tensor_t));
    set_tensor(&job->inputs[0], "x", AAS_DTYPE_F32, 2, s0);
    set_tensor(&job->inputs[1], NULL, AAS_DTYPE_U8, 1, s1);
    job->text = strdup("hello, w\xc3\xb6rld");
    job->n_params = 2;
    job->params = calloc(2, sizeof(aas_kv_t));
    job->params[0].key = strdup("top_k");
    job->params[0].value = strdup("5");
    job->params[1].key = strdup("temperature");
    job->params[1].value = strdup("0.7");
    job->priority = -7;
    job->deadline_ms = 1700000000123;
    job->submit_ms = 1700000000000;
    job->tenant = strdup("acme");
}

static void assert_tensor_equal(const aas_tensor_t *a, const aas_tensor_t *b) {
    if (a->name)
        assert_string_equal(a->name, b->name);
    else
        assert_null(b->name);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) assert_int_equal(a->shape[i], b->shape[i]);
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->data, b->data, a->nbytes);
}

static void assert_opt_str(const char *a, const char *b) {
    if (a)
        assert_string_equal(a, b);
    else
        assert_null(b);
}

static void assert_job_equal(const aas_job_t *a, const aas_job_t *b) {
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->model, b->model);
    assert_opt_str(a->model_version, b->model_version);
    assert_int_equal(a->n_inputs, b->n_inputs);
    for (size_t i = 0; i < a->n_inputs; i++)
        assert_tensor_equal(&a->inputs[i], &b->inputs[i]);
    assert_opt_str(a->text, b->text);
    assert_int_equal(a->n_params, b->n_params);
    for (size_t i = 0; i < a->n_params; i++)
        assert_string_equal(a->params[i].value,
                            aas_job_param(b, a->params[i].key));
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
    assert_int_equal(a->submit_ms, b->submit_ms);
    if (a->tenant || b->tenant) {
        assert_non_null(a->tenant);
        assert_non_null(b->tenant);
        assert_string_equal(a->tenant, b->tenant);
    }
}

/* Encode job, return the message (caller frees). */
static unsigned char *encode_job(aas_codec_t *codec, const aas_job_t *job,
                                 size_t *len) {
    void *buf = NULL;
    char err[256] = "";
    aas_err_t rc = aas_codec_job_encode(codec, job, &buf, len, err, sizeof(err));
    if (rc != AAS_ERR_OK) fail_msg("encode: %s: %s", aas_err_name(rc), err);
    return buf;
}

/* ---- raw Avro writer for hand-made messages ------------------------------ */

typedef struct {
    unsigned char b[1 << 16];
    size_t len;
} raw_t;

static void raw_put(raw_t *w, const void *p, size_t n) {
    assert_true(w->len + n <= sizeof(w->b));
    memcpy(w->b + w->len, p, n);
    w->len += n;
}

static void raw_long(raw_t *w, int64_t v) {
    uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (n & ~(uint64_t)0x7F) {
        unsigned char c = (unsigned char)((n & 0x7F) | 0x80);
        raw_put(w, &c, 1);
        n >>= 7;
    }
    unsigned char c = (unsigned char)n;
    raw_put(w, &c, 1);
}

static void raw_str(raw_t *w, const char *s) {
    raw_long(w, (int64_t)strlen(s));
    raw_put(w, s, strlen(s));
}

static void raw_header(raw_t *w, uint64_t fp) {
    unsigned char h[10] = {0xC3, 0x01};
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)(fp >> (8 * i));
    w->len = 0;
    raw_put(w, h, sizeof(h));
}

/* One tensor as schemas/job.avsc's Tensor. */
typedef struct {
    int64_t dtype;
    int rank;
    int64_t shape[12];
    size_t data_len;
} raw_tensor_t;

/* A Job, field by field, in schema order. */
typedef struct {
    const char *id;
    int64_t kind;
    size_t n_tensors;
    const raw_tensor_t *tensors;
    const char *text; /* NULL = null */
    size_t n_params;
    int64_t text_branch; /* union index written for text when non-NULL */
    const char *tenant;  /* NULL = null */
    int v1_0;            /* written with schema v1.0: no tenant field at all */
} raw_job_t;

static void raw_tensor(raw_t *w, const raw_tensor_t *t) {
    raw_long(w, 0); /* name: null branch */
    raw_long(w, t->dtype);
    if (t->rank) {
        raw_long(w, t->rank);
        for (int i = 0; i < t->rank; i++) raw_long(w, t->shape[i]);
    }
    raw_long(w, 0); /* end of shape */
    raw_long(w, (int64_t)t->data_len);
    for (size_t i = 0; i < t->data_len; i++) {
        unsigned char c = (unsigned char)i;
        raw_put(w, &c, 1);
    }
}

static void raw_job(raw_t *w, uint64_t fp, const raw_job_t *j) {
    raw_header(w, fp);
    raw_str(w, j->id);
    raw_long(w, j->kind);
    raw_str(w, "mnist");
    raw_long(w, 1); /* model_version: string branch */
    raw_str(w, "2");
    if (j->n_tensors) {
        raw_long(w, (int64_t)j->n_tensors);
        for (size_t i = 0; i < j->n_tensors; i++) raw_tensor(w, &j->tensors[i]);
    }
    raw_long(w, 0); /* end of inputs */
    if (j->text) {
        raw_long(w, j->text_branch ? j->text_branch : 1);
        raw_str(w, j->text);
    } else {
        raw_long(w, 0);
    }
    if (j->n_params) {
        raw_long(w, (int64_t)j->n_params);
        for (size_t i = 0; i < j->n_params; i++) {
            char k[32];
            snprintf(k, sizeof(k), "k%zu", i);
            raw_str(w, k);
            raw_str(w, "v");
        }
    }
    raw_long(w, 0);           /* end of params */
    raw_long(w, 3);           /* priority */
    raw_long(w, 0);           /* deadline_ms: null */
    raw_long(w, 1700000000000); /* submit_ms */
    if (j->v1_0) return;
    if (j->tenant) {
        raw_long(w, 1); /* tenant: string branch */
        raw_str(w, j->tenant);
    } else {
        raw_long(w, 0);
    }
}

/* schemas/history/job-v1.0.avsc, as documented in docs/wire-format.md. */
#define JOB_V1_0_FINGERPRINT 0xc33ca8cb67e31599ULL

static const raw_tensor_t good_tensor = {AAS_DTYPE_F32, 2, {2, 3}, 24};

/* Decode raw bytes expecting `want`; checks job_id_out against want_id. */
static void expect_decode(aas_codec_t *codec, const void *buf, size_t len,
                          const aas_codec_limits_t *lim, aas_err_t want,
                          const char *want_id) {
    aas_job_t job;
    char id[AAS_ID_MAX + 1];
    char err[512] = "";
    memset(&job, 0xAB, sizeof(job)); /* must stay untouched on failure */
    memset(id, 'x', sizeof(id));
    aas_err_t rc = aas_codec_job_decode(codec, buf, len, lim, &job, id, err,
                                        sizeof(err));
    if (rc != want)
        fail_msg("want %s, got %s: %s", aas_err_name(want), aas_err_name(rc),
                 err);
    if (want_id) assert_string_equal(id, want_id);
    if (rc == AAS_ERR_OK) {
        aas_job_clear(&job);
    } else {
        assert_true(err[0] != '\0');
        unsigned char canary[sizeof(job)];
        memset(canary, 0xAB, sizeof(canary));
        assert_memory_equal(&job, canary, sizeof(job));
    }
}

/* ---- round trips --------------------------------------------------------- */

static void job_round_trip_all_fields(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job, out;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    char id[AAS_ID_MAX + 1], err[256];
    assert_int_equal(aas_codec_job_decode(codec, buf, len, NULL, &out, id, err,
                                          sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(id, "job-1");
    assert_job_equal(&job, &out);
    free(buf);
    aas_job_clear(&job);
    aas_job_clear(&out);
}

/* The model name read from the first bytes, as the worker's batching
 * window does; anything it cannot read safely is "unknown" (-1, ""). */
static void peek_model_reads_the_name_or_says_unknown(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    char model[AAS_ID_MAX + 1];
    assert_int_equal(aas_codec_job_peek_model(codec, buf, len, model), 0);
    assert_string_equal(model, "mnist_mlp");
    for (size_t cut = 0; cut < 12 + strlen("job-1") + strlen("mnist_mlp"); cut++) {
        assert_int_equal(aas_codec_job_peek_model(codec, buf, cut, model), -1);
        assert_string_equal(model, "");
    }
    buf[2] ^= 1; /* another fingerprint */
    assert_int_equal(aas_codec_job_peek_model(codec, buf, len, model), -1);
    buf[2] ^= 1;
    buf[10 + 1 + 5 + 1 + 1] = '/'; /* a byte of the name no id may hold */
    assert_int_equal(aas_codec_job_peek_model(codec, buf, len, model), -1);
    free(buf);
    aas_job_clear(&job);
}

/* The tenant read by skipping the fields before it, as the worker's fair
 * share does for every message it reads ahead: every cut of the message
 * and an old writer are "unknown" (-1, ""); no tenant is 0 and "". */
static void peek_tenant_skips_to_the_last_field(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    char tenant[AAS_ID_MAX + 1];
    assert_int_equal(aas_codec_job_peek_tenant(codec, buf, len, tenant), 0);
    assert_string_equal(tenant, "acme");
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(aas_codec_job_peek_tenant(codec, buf, cut, tenant), -1);
        assert_string_equal(tenant, "");
    }
    buf[len - 1] = '/'; /* a byte no tenant may hold */
    assert_int_equal(aas_codec_job_peek_tenant(codec, buf, len, tenant), -1);
    buf[2] ^= 1; /* another writer schema */
    assert_int_equal(aas_codec_job_peek_tenant(codec, buf, len, tenant), -1);
    free(buf);
    free(job.tenant);
    job.tenant = NULL;
    buf = encode_job(codec, &job, &len);
    strcpy(tenant, "x");
    assert_int_equal(aas_codec_job_peek_tenant(codec, buf, len, tenant), 0);
    assert_string_equal(tenant, "");
    free(buf);
    aas_job_clear(&job);
}

static void job_round_trip_absent_optionals(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job, out;
    memset(&job, 0, sizeof(job));
    job.id = strdup("J");
    job.model = strdup("m");
    job.submit_ms = -1;
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    char err[256];
    assert_int_equal(aas_codec_job_decode(codec, buf, len, NULL, &out, NULL,
                                          err, sizeof(err)),
                     AAS_ERR_OK);
    assert_job_equal(&job, &out);
    assert_null(out.model_version);
    assert_null(out.text);
    assert_null(out.inputs);
    assert_null(out.params);
    assert_int_equal(out.deadline_ms, 0);
    free(buf);
    aas_job_clear(&job);
    aas_job_clear(&out);
}

static void full_result(aas_result_t *res) {
    static const int64_t s0[] = {2, 10}, s1[] = {1, 1, 3};
    memset(res, 0, sizeof(*res));
    res->job_id = strdup("job-1");
    res->status = AAS_STATUS_SUCCEEDED;
    res->model = strdup("mnist_mlp");
    res->model_version = strdup("3");
    res->n_outputs = 2;
    res->outputs = calloc(2, sizeof(aas_tensor_t));
    set_tensor(&res->outputs[0], "probs", AAS_DTYPE_F64, 2, s0);
    set_tensor(&res->outputs[1], NULL, AAS_DTYPE_I64, 3, s1);
    res->n_predictions = 2;
    res->predictions = calloc(2, sizeof(aas_prediction_t));
    res->predictions[0].label = 7;
    res->predictions[0].name = strdup("seven");
    res->predictions[0].probability = 0.875f;
    res->predictions[1].label = -1;
    res->predictions[1].probability = 0.25f;
    res->error = strdup("partial: warn");
    res->timings.queue_ms = 12;
    res->timings.decode_us = 34;
    res->timings.compute_us = 5600;
    res->timings.total_us = 7800;
    res->worker_id = strdup("worker-0.host_a");
    res->finished_ms = 1700000001000;
}

static void assert_result_equal(const aas_result_t *a, const aas_result_t *b) {
    assert_string_equal(a->job_id, b->job_id);
    assert_int_equal(a->status, b->status);
    assert_opt_str(a->model, b->model);
    assert_opt_str(a->model_version, b->model_version);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (size_t i = 0; i < a->n_outputs; i++)
        assert_tensor_equal(&a->outputs[i], &b->outputs[i]);
    assert_int_equal(a->n_predictions, b->n_predictions);
    for (size_t i = 0; i < a->n_predictions; i++) {
        assert_int_equal(a->predictions[i].label, b->predictions[i].label);
        assert_opt_str(a->predictions[i].name, b->predictions[i].name);
        assert_true(a->predictions[i].probability ==
                    b->predictions[i].probability);
    }
    assert_opt_str(a->error, b->error);
    assert_int_equal(a->timings.queue_ms, b->timings.queue_ms);
    assert_int_equal(a->timings.decode_us, b->timings.decode_us);
    assert_int_equal(a->timings.compute_us, b->timings.compute_us);
    assert_int_equal(a->timings.total_us, b->timings.total_us);
    assert_opt_str(a->worker_id, b->worker_id);
    assert_int_equal(a->finished_ms, b->finished_ms);
}

static void result_round_trip_all_fields(void **state) {
    aas_codec_t *codec = *state;
    aas_result_t res, out;
    full_result(&res);
    void *buf;
    size_t len;
    char err[256];
    assert_int_equal(aas_codec_result_encode(codec, &res, &buf, &len, err,
                                             sizeof(err)),
                     AAS_ERR_OK);
    assert_int_equal(aas_codec_result_decode(codec, buf, len, &out, err,
                                             sizeof(err)),
                     AAS_ERR_OK);
    assert_result_equal(&res, &out);
    free(buf);
    aas_result_clear(&res);
    aas_result_clear(&out);
}

static void result_round_trip_absent_optionals(void **state) {
    aas_codec_t *codec = *state;
    aas_result_t res, out;
    memset(&res, 0, sizeof(res));
    res.job_id = strdup("j");
    res.status = AAS_STATUS_FAILED;
    res.error = strdup("AAS_ERR_SHAPE: want 784 inputs");
    void *buf;
    size_t len;
    char err[256];
    assert_int_equal(aas_codec_result_encode(codec, &res, &buf, &len, err,
                                             sizeof(err)),
                     AAS_ERR_OK);
    assert_int_equal(aas_codec_result_decode(codec, buf, len, &out, err,
                                             sizeof(err)),
                     AAS_ERR_OK);
    assert_result_equal(&res, &out);
    assert_null(out.model);
    assert_null(out.worker_id);
    assert_null(out.outputs);
    assert_null(out.predictions);
    free(buf);
    aas_result_clear(&res);
    aas_result_clear(&out);
}

/* ---- header and fingerprints --------------------------------------------- */

static void encoded_header_is_magic_and_fingerprint(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    assert_true(len > AAS_CODEC_HEADER_SIZE);
    assert_int_equal(buf[0], 0xC3);
    assert_int_equal(buf[1], 0x01);
    uint64_t fp = 0;
    for (int i = 7; i >= 0; i--) fp = (fp << 8) | buf[2 + i];
    assert_true(fp == aas_codec_job_fingerprint(codec));
    assert_true(aas_codec_job_fingerprint(codec) !=
                aas_codec_result_fingerprint(codec));
    free(buf);
    aas_job_clear(&job);
}

/* Runs tests/fingerprint_check.py on one schema and compares fingerprint and
 * canonical form with ours. */
static void check_schema_against_python(const char *file, uint64_t codec_fp) {
    char path[1024], cmd[2200];
    snprintf(path, sizeof(path), "%s/schemas/%s", AAS_SOURCE_DIR, file);
    snprintf(cmd, sizeof(cmd), "'%s' '%s/tests/fingerprint_check.py' '%s'",
             AAS_PYTHON3, AAS_SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char line[1 << 16];
    char *got = fgets(line, sizeof(line), p);
    int status = pclose(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) skip();
    assert_non_null(got);
    assert_int_equal(status, 0);
    line[strcspn(line, "\n")] = '\0';
    assert_true(strlen(line) > 17 && line[16] == ' ');

    char *json = read_file(path);
    assert_non_null(json);
    char *pcf = NULL, err[256];
    assert_int_equal(aas_codec_canonical_form(json, &pcf, err, sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(pcf, line + 17);
    uint64_t ours = aas_codec_crc64_avro(pcf, strlen(pcf));
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)ours);
    line[16] = '\0';
    assert_string_equal(hex, line);
    assert_true(ours == codec_fp);
    print_message("%s fingerprint %s\n", file, hex);
    free(pcf);
    free(json);
}

static void fingerprints_match_independent_python(void **state) {
    aas_codec_t *codec = *state;
    check_schema_against_python("job.avsc", aas_codec_job_fingerprint(codec));
    check_schema_against_python("result.avsc",
                                aas_codec_result_fingerprint(codec));
}

static void expect_pcf(const char *json, const char *want) {
    char *pcf = NULL, err[256];
    aas_err_t rc = aas_codec_canonical_form(json, &pcf, err, sizeof(err));
    if (rc != AAS_ERR_OK) fail_msg("%s: %s", json, err);
    assert_string_equal(pcf, want);
    free(pcf);
}

static void canonical_form_follows_spec_rules(void **state) {
    (void)state;
    /* PRIMITIVES, WHITESPACE */
    expect_pcf(" { \"type\" : \"int\", \"logicalType\": \"date\" } ", "\"int\"");
    /* FULLNAMES, STRIP, ORDER, INTEGERS */
    expect_pcf("{\"size\": \"016\", \"type\": \"fixed\", \"name\": \"F\","
               " \"namespace\": \"a.b\", \"doc\": \"x\", \"aliases\": [\"G\"]}",
               "{\"name\":\"a.b.F\",\"type\":\"fixed\",\"size\":16}");
    /* inner names inherit the namespace; a dotted name sets its own; the
     * second use of a named type is its full name */
    expect_pcf("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"n\","
               "\"fields\":[{\"name\":\"e\",\"default\":\"A\",\"type\":"
               "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
               "{\"name\":\"f\",\"type\":[\"null\",\"E\"]},"
               "{\"name\":\"g\",\"type\":{\"type\":\"record\",\"name\":\"x.S\","
               "\"fields\":[{\"name\":\"h\",\"type\":{\"type\":\"map\","
               "\"values\":\"n.E\"}}]}}]}",
               "{\"name\":\"n.R\",\"type\":\"record\",\"fields\":["
               "{\"name\":\"e\",\"type\":{\"name\":\"n.E\",\"type\":\"enum\","
               "\"symbols\":[\"A\",\"B\"]}},"
               "{\"name\":\"f\",\"type\":[\"null\",\"n.E\"]},"
               "{\"name\":\"g\",\"type\":{\"name\":\"x.S\",\"type\":\"record\","
               "\"fields\":[{\"name\":\"h\",\"type\":{\"type\":\"map\","
               "\"values\":\"n.E\"}}]}}]}");
    /* STRINGS: escapes become UTF-8 */
    expect_pcf("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"\\u0041\"]}",
               "{\"name\":\"E\",\"type\":\"enum\",\"symbols\":[\"A\"]}");

    char *pcf = NULL, err[256];
    assert_int_equal(aas_codec_canonical_form("{\"type\":\"Nope\"}", &pcf, err,
                                              sizeof(err)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_codec_canonical_form("{not json", &pcf, err,
                                              sizeof(err)),
                     AAS_ERR_INVAL);
    assert_null(pcf);
}

static void crc64_avro_matches_spec_constants(void **state) {
    (void)state;
    /* The spec: fingerprint64 of no bytes is EMPTY. */
    assert_true(aas_codec_crc64_avro("", 0) == 0xc15d213aa4d7a795ULL);
    /* Avro's own test vector (share/test/data/schema-tests.txt): "int". */
    assert_true(aas_codec_crc64_avro("\"int\"", 5) == 0x7275d51a3f395c8fULL);
    /* ... and test case 019, through our canonical form. */
    char *pcf = NULL, err[256];
    assert_int_equal(aas_codec_canonical_form(
                         "{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
                         &pcf, err, sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(pcf, "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}");
    assert_true(aas_codec_crc64_avro(pcf, strlen(pcf)) ==
                (uint64_t)INT64_C(-4824392279771201922));
    free(pcf);
    /* The table against the spec's bit-by-bit definition, on every byte
     * value at every position mod 8 of a pseudo-random text. */
    unsigned char buf[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(i < 256 ? i : x >> 24);
    }
    for (size_t n = 0; n <= sizeof(buf); n += n < 300 ? 1 : 389) {
        uint64_t fp = 0xc15d213aa4d7a795ULL;
        for (size_t i = 0; i < n; i++) {
            fp ^= buf[i];
            for (int k = 0; k < 8; k++) fp = (fp >> 1) ^ (0xc15d213aa4d7a795ULL & (0 - (fp & 1)));
        }
        assert_true(aas_codec_crc64_avro(buf, n) == fp);
    }
}

/* ---- rejection ----------------------------------------------------------- */

static void decode_accepts_raw_message_built_from_spec(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"raw-1", 0, 1, &good_tensor, "hi", 2, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    aas_job_t job;
    char err[256];
    assert_int_equal(aas_codec_job_decode(codec, w.b, w.len, NULL, &job, NULL,
                                          err, sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(job.id, "raw-1");
    assert_string_equal(job.model, "mnist");
    assert_string_equal(job.model_version, "2");
    assert_int_equal(job.n_inputs, 1);
    assert_int_equal(job.inputs[0].rank, 2);
    assert_int_equal(job.inputs[0].shape[1], 3);
    assert_int_equal(job.inputs[0].nbytes, 24);
    assert_string_equal(job.text, "hi");
    assert_string_equal(aas_job_param(&job, "k1"), "v");
    assert_int_equal(job.priority, 3);
    assert_int_equal(job.submit_ms, 1700000000000);
    aas_job_clear(&job);
}

/* Schema evolution: a message a v1.0 client wrote (no tenant field, the
 * v1.0 fingerprint) still decodes, resolved to the current schema with
 * tenant null; the current schema carries a tenant, and refuses a bad one. */
static void decode_resolves_v1_0_writer_without_tenant(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"old-1", 0, 1, &good_tensor, "hi", 2, 0, NULL, 1};
    raw_job(&w, JOB_V1_0_FINGERPRINT, &j);
    aas_job_t job;
    char err[256];
    assert_true(aas_codec_job_fingerprint(codec) != JOB_V1_0_FINGERPRINT);
    assert_int_equal(aas_codec_job_decode(codec, w.b, w.len, NULL, &job, NULL, err, sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(job.id, "old-1");
    assert_string_equal(job.text, "hi");
    assert_string_equal(aas_job_param(&job, "k1"), "v");
    assert_int_equal(job.priority, 3);
    assert_int_equal(job.submit_ms, 1700000000000);
    assert_null(job.tenant);
    aas_job_clear(&job);
    /* The same bytes under the current fingerprint lack the tenant: short. */
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, NULL);
}

static void decode_reads_tenant_and_checks_it(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"ten-1", 0, 1, &good_tensor, NULL, 0, 0, "shop.eu-1", 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    aas_job_t job;
    char err[256];
    assert_int_equal(aas_codec_job_decode(codec, w.b, w.len, NULL, &job, NULL, err, sizeof(err)),
                     AAS_ERR_OK);
    assert_string_equal(job.tenant, "shop.eu-1");
    aas_job_clear(&job);
    j.tenant = "no spaces";
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_INVAL, "ten-1");
    /* The encoder refuses it too, before anything is sent. */
    aas_job_t bad;
    full_job(&bad);
    free(bad.tenant);
    bad.tenant = strdup("a:b");
    void *buf = NULL;
    size_t len = 0;
    assert_int_equal(aas_codec_job_encode(codec, &bad, &buf, &len, err, sizeof(err)), AAS_ERR_INVAL);
    assert_non_null(strstr(err, "tenant"));
    aas_job_clear(&bad);
}

static void decode_rejects_truncation_at_every_length(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    /* The id "job-1" ends at byte 10 + 1 (length) + 5. */
    for (size_t n = 0; n < len; n++) {
        /* A copy of exactly n bytes, so ASan sees any read past the end. */
        unsigned char *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        expect_decode(codec, cut, n, NULL, AAS_ERR_DECODE,
                      n >= 16 ? "job-1" : "");
        free(cut);
    }
    free(buf);
    aas_job_clear(&job);
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Single-byte mutations of a valid message: any outcome but a crash, a leak
 * or a touched *job on failure. */
static void decode_survives_random_mutations(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    size_t len;
    unsigned char *buf = encode_job(codec, &job, &len);
    unsigned char *m = malloc(len);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, buf, len);
        int flips = 1 + (int)(xorshift(&seed) % 3);
        for (int f = 0; f < flips; f++) {
            size_t at = AAS_CODEC_HEADER_SIZE +
                        xorshift(&seed) % (len - AAS_CODEC_HEADER_SIZE);
            m[at] = (unsigned char)xorshift(&seed);
        }
        aas_job_t out;
        char id[AAS_ID_MAX + 1], err[256];
        if (aas_codec_job_decode(codec, m, len, NULL, &out, id, err,
                                 sizeof(err)) == AAS_ERR_OK)
            aas_job_clear(&out);
        aas_result_t res;
        if (aas_codec_result_decode(codec, m, len, &res, err, sizeof(err)) ==
            AAS_ERR_OK)
            aas_result_clear(&res);
    }
    free(m);
    free(buf);
    aas_job_clear(&job);
}

/* Random bodies behind a valid header. */
static void decode_rejects_garbage(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    uint64_t seed = 12345;
    for (int iter = 0; iter < 5000; iter++) {
        raw_header(&w, aas_codec_job_fingerprint(codec));
        size_t n = xorshift(&seed) % 200;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)xorshift(&seed);
            raw_put(&w, &c, 1);
        }
        aas_job_t out;
        char err[256];
        if (aas_codec_job_decode(codec, w.b, w.len, NULL, &out, NULL, err,
                                 sizeof(err)) == AAS_ERR_OK)
            aas_job_clear(&out);
    }
    /* All 0xFF: varints that never end. */
    raw_header(&w, aas_codec_job_fingerprint(codec));
    memset(w.b + w.len, 0xFF, 64);
    w.len += 64;
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "");
}

static void decode_rejects_wrong_magic(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"ok", 0, 0, NULL, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    w.b[0] = 0xC2;
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "");
    w.b[0] = 0xC3;
    w.b[1] = 0x02;
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "");
}

static void decode_rejects_unknown_fingerprint(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"ok", 0, 0, NULL, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec) ^ 1, &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_UNKNOWN_SCHEMA, "");
    /* A known fingerprint of the other record type is just as unknown. */
    raw_job(&w, aas_codec_result_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_UNKNOWN_SCHEMA, "");
    aas_result_t res;
    char err[256];
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    assert_int_equal(aas_codec_result_decode(codec, w.b, w.len, &res, err,
                                             sizeof(err)),
                     AAS_ERR_UNKNOWN_SCHEMA);
}

static void decode_rejects_oversize_message(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"ok", 0, 1, &good_tensor, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    aas_codec_limits_t lim;
    aas_codec_limits_default(&lim);
    lim.max_message_bytes = w.len - 1;
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_TOO_LARGE, "");
    lim.max_message_bytes = w.len;
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_OK, "ok");
}

static void expect_tensor_rejected(aas_codec_t *codec, const raw_tensor_t *t,
                                   aas_err_t want) {
    static raw_t w;
    raw_job_t j = {"job-7", 0, 1, t, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, want, "job-7");
}

static void decode_rejects_huge_dims_before_allocation(void **state) {
    /* 2^40 x 2^40 F32 with 4 data bytes: must fail on the shape, long
     * before anyone would allocate 2^82 bytes. */
    raw_tensor_t t = {AAS_DTYPE_F32, 2, {INT64_C(1) << 40, INT64_C(1) << 40}, 4};
    expect_tensor_rejected(*state, &t, AAS_ERR_TOO_LARGE);
    /* Just above the default 16 Mi elements. */
    raw_tensor_t u = {AAS_DTYPE_U8, 2, {4097, 4097}, 16};
    expect_tensor_rejected(*state, &u, AAS_ERR_TOO_LARGE);
}

static void decode_rejects_overflowing_shape_product(void **state) {
    /* 2^62 * 4 wraps to 0 in 64 bits; 2^32 * 2^32 wraps to 0 too. */
    raw_tensor_t t = {AAS_DTYPE_U8, 2, {INT64_C(1) << 62, 4}, 0};
    expect_tensor_rejected(*state, &t, AAS_ERR_TOO_LARGE);
    raw_tensor_t u = {AAS_DTYPE_F64, 3, {INT64_C(1) << 32, INT64_C(1) << 32, 1}, 0};
    expect_tensor_rejected(*state, &u, AAS_ERR_TOO_LARGE);
    raw_tensor_t v = {AAS_DTYPE_F64, 1, {INT64_MAX}, 8};
    expect_tensor_rejected(*state, &v, AAS_ERR_TOO_LARGE);
}

static void decode_rejects_bad_dims_and_rank(void **state) {
    raw_tensor_t zero = {AAS_DTYPE_F32, 2, {0, 3}, 0};
    expect_tensor_rejected(*state, &zero, AAS_ERR_SHAPE);
    raw_tensor_t neg = {AAS_DTYPE_F32, 2, {-2, -3}, 24};
    expect_tensor_rejected(*state, &neg, AAS_ERR_SHAPE);
    raw_tensor_t deep = {AAS_DTYPE_U8, 9, {1, 1, 1, 1, 1, 1, 1, 1, 1}, 1};
    expect_tensor_rejected(*state, &deep, AAS_ERR_SHAPE);
    raw_tensor_t dtype = {7, 1, {1}, 1};
    expect_tensor_rejected(*state, &dtype, AAS_ERR_DECODE);
}

static void decode_rejects_data_length_mismatch(void **state) {
    raw_tensor_t shortd = {AAS_DTYPE_F32, 2, {2, 3}, 20};
    expect_tensor_rejected(*state, &shortd, AAS_ERR_SHAPE);
    raw_tensor_t longd = {AAS_DTYPE_I64, 1, {2}, 17};
    expect_tensor_rejected(*state, &longd, AAS_ERR_SHAPE);
    raw_tensor_t scalar = {AAS_DTYPE_F64, 0, {0}, 8}; /* rank 0: one element */
    expect_tensor_rejected(*state, &scalar, AAS_ERR_OK);
}

/* Lengths and counts that claim more than the message holds. */
static void decode_rejects_lying_lengths(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    uint64_t fp = aas_codec_job_fingerprint(codec);
    const int64_t lies[] = {-1, -100, INT64_C(1) << 40, INT64_MAX, INT64_MIN, 5};
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        /* id length */
        raw_header(&w, fp);
        raw_long(&w, lies[i]);
        raw_put(&w, "abc", 3);
        expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "");
        /* tensor data length, after a valid id */
        raw_header(&w, fp);
        raw_str(&w, "liar");
        raw_long(&w, 0);
        raw_str(&w, "m");
        raw_long(&w, 0);
        raw_long(&w, 1); /* one tensor */
        raw_long(&w, 0);
        raw_long(&w, AAS_DTYPE_U8);
        raw_long(&w, 1);
        raw_long(&w, 3);
        raw_long(&w, 0);
        raw_long(&w, lies[i]);
        raw_put(&w, "xyz", 3);
        expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "liar");
        /* tensor count, as a negative block with a lying byte size */
        raw_header(&w, fp);
        raw_str(&w, "liar");
        raw_long(&w, 0);
        raw_str(&w, "m");
        raw_long(&w, 0);
        raw_long(&w, -1);
        raw_long(&w, lies[i]);
        expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "liar");
    }
}

static void decode_rejects_invalid_ids(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    char long_id[AAS_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    const char *bad[] = {"a:b", "{x}", "", " x", "-x", ".x", "a\nb", long_id};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_job_t j = {bad[i], 0, 0, NULL, NULL, 0, 0};
        raw_job(&w, aas_codec_job_fingerprint(codec), &j);
        expect_decode(codec, w.b, w.len, NULL, AAS_ERR_INVAL, "");
    }
    /* A NUL inside the id must not cut it into a valid one. */
    raw_header(&w, aas_codec_job_fingerprint(codec));
    raw_long(&w, 3);
    raw_put(&w, "a\0b", 3);
    raw_long(&w, 0);
    raw_str(&w, "m");
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0); /* tenant: null */
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_INVAL, "");
}

static void decode_rejects_too_many_tensors(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_tensor_t ts[17];
    for (int i = 0; i < 17; i++) ts[i] = good_tensor;
    raw_job_t j = {"many", 0, 17, ts, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_TOO_LARGE, "many");
    j.n_tensors = 16;
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_OK, "many");
}

static void decode_rejects_oversize_text(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    aas_codec_limits_t lim;
    aas_codec_limits_default(&lim);
    lim.max_text_bytes = 10;
    raw_job_t j = {"txt", 0, 0, NULL, "0123456789A", 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_TOO_LARGE, "txt");
    j.text = "0123456789";
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_OK, "txt");
}

static void decode_rejects_too_many_params(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    aas_codec_limits_t lim;
    aas_codec_limits_default(&lim);
    lim.max_params = 2;
    raw_job_t j = {"par", 0, 0, NULL, NULL, 3, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_TOO_LARGE, "par");
    j.n_params = 2;
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, &lim, AAS_ERR_OK, "par");
}

static void decode_rejects_invalid_utf8(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    const char *bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "ab\xe2\x82"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_job_t j = {"utf", 0, 0, NULL, bad[i], 0, 0};
        raw_job(&w, aas_codec_job_fingerprint(codec), &j);
        expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "utf");
    }
}

static void decode_rejects_bad_enum_and_union_index(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"enu", 2, 0, NULL, NULL, 0, 0}; /* kind 2: no such symbol */
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "enu");
    j.kind = -1;
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "enu");
    raw_job_t u = {"uni", 0, 0, NULL, "t", 0, 2}; /* text branch 2 */
    raw_job(&w, aas_codec_job_fingerprint(codec), &u);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "uni");
    u.text_branch = -1;
    raw_job(&w, aas_codec_job_fingerprint(codec), &u);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "uni");
}

static void decode_rejects_trailing_bytes(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    raw_job_t j = {"tail", 0, 0, NULL, NULL, 0, 0};
    raw_job(&w, aas_codec_job_fingerprint(codec), &j);
    raw_put(&w, "\0", 1);
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_DECODE, "tail");
}

/* The worker marks a job FAILED by id: any failure after a valid id still
 * reports it, before and after Avro C has read the message. */
static void decode_recovers_job_id_when_later_field_is_bad(void **state) {
    aas_codec_t *codec = *state;
    static raw_t w;
    /* bad model name: found after the scan, during conversion */
    raw_header(&w, aas_codec_job_fingerprint(codec));
    raw_str(&w, "job-42");
    raw_long(&w, 0);
    raw_str(&w, "bad model");
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0);
    raw_long(&w, 0); /* tenant: null */
    expect_decode(codec, w.b, w.len, NULL, AAS_ERR_INVAL, "job-42");
    /* cut where submit_ms is: found by the scan */
    expect_decode(codec, w.b, w.len - 2, NULL, AAS_ERR_DECODE, "job-42");
}

/* ---- encode rejects ------------------------------------------------------ */

static void expect_encode_fails(aas_codec_t *codec, const aas_job_t *job,
                                aas_err_t want) {
    void *buf = (void *)0x1;
    size_t len = 12345;
    char err[256] = "";
    assert_int_equal(aas_codec_job_encode(codec, job, &buf, &len, err,
                                          sizeof(err)),
                     want);
    assert_true(buf == (void *)0x1 && len == 12345);
    assert_true(err[0] != '\0');
}

static void encode_rejects_invalid_jobs(void **state) {
    aas_codec_t *codec = *state;
    aas_job_t job;
    full_job(&job);
    char *saved = job.id;
    const char *bad_ids[] = {"a:b", "{x}", ""};
    for (size_t i = 0; i < 3; i++) {
        job.id = (char *)bad_ids[i];
        expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    }
    job.id = NULL;
    expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    job.id = saved;

    saved = job.model_version;
    job.model_version = (char *)"v:1";
    expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    job.model_version = saved;

    job.inputs[0].nbytes -= 4;
    expect_encode_fails(codec, &job, AAS_ERR_SHAPE);
    job.inputs[0].nbytes += 4;

    saved = job.params[1].key;
    job.params[1].key = job.params[0].key;
    expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    job.params[1].key = saved;

    saved = job.text;
    job.text = (char *)"bad \xff utf-8";
    expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    job.text = saved;

    job.kind = (aas_job_kind_t)9;
    expect_encode_fails(codec, &job, AAS_ERR_INVAL);
    aas_job_clear(&job);
}

static void encode_rejects_invalid_results(void **state) {
    aas_codec_t *codec = *state;
    aas_result_t res;
    full_result(&res);
    void *buf;
    size_t len;
    char err[256];
    res.status = AAS_STATUS__COUNT;
    assert_int_equal(aas_codec_result_encode(codec, &res, &buf, &len, err,
                                             sizeof(err)),
                     AAS_ERR_INVAL);
    res.status = AAS_STATUS_FAILED;
    char *saved = res.worker_id;
    res.worker_id = (char *)"w{1}";
    assert_int_equal(aas_codec_result_encode(codec, &res, &buf, &len, err,
                                             sizeof(err)),
                     AAS_ERR_INVAL);
    res.worker_id = saved;
    res.outputs[1].dtype = (aas_dtype_t)42;
    assert_int_equal(aas_codec_result_encode(codec, &res, &buf, &len, err,
                                             sizeof(err)),
                     AAS_ERR_SHAPE);
    res.outputs[1].dtype = AAS_DTYPE_I64;
    aas_result_clear(&res);
}

/* ---- schema history ------------------------------------------------------ */

/* The projection that lets an older writer without `priority` resolve to
 * the current Job: drop what the writer lacks if it has a default. */
static void projection_drops_writer_missing_fields_with_defaults(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/job.avsc", AAS_SOURCE_DIR);
    char *reader = read_file(path);
    assert_non_null(reader);
    const char *writer =
        "{\"type\":\"record\",\"name\":\"Job\",\"namespace\":\"aas.v1\","
        "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"
        "{\"name\":\"submit_ms\",\"type\":\"long\"},"
        "{\"name\":\"extra\",\"type\":\"int\"},"
        "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"JobKind\","
        "\"symbols\":[\"INFER\",\"TRAIN\"]}},"
        "{\"name\":\"model\",\"type\":\"string\"},"
        "{\"name\":\"inputs\",\"type\":{\"type\":\"array\",\"items\":"
        "{\"type\":\"record\",\"name\":\"Tensor\",\"fields\":["
        "{\"name\":\"dtype\",\"type\":{\"type\":\"enum\",\"name\":\"DType\","
        "\"symbols\":[\"F32\",\"F64\",\"I32\",\"I64\",\"U8\"]}},"
        "{\"name\":\"shape\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
        "{\"name\":\"data\",\"type\":\"bytes\"}]}}}]}";
    char *proj = NULL, err[256];
    int dropped = -1;
    assert_int_equal(aas_codec_schema_project(reader, writer, &proj, &dropped,
                                              err, sizeof(err)),
                     AAS_ERR_OK);
    /* model_version, text, params, priority, deadline_ms, tenant; Tensor.name */
    assert_int_equal(dropped, 7);
    char *pcf = NULL;
    assert_int_equal(aas_codec_canonical_form(proj, &pcf, err, sizeof(err)),
                     AAS_ERR_OK);
    assert_null(strstr(pcf, "\"priority\""));
    assert_null(strstr(pcf, "\"name\":\"name\""));
    assert_non_null(strstr(pcf, "\"submit_ms\""));
    free(pcf);
    free(proj);
    free(reader);
}

static void projection_refuses_missing_field_without_default(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/schemas/job.avsc", AAS_SOURCE_DIR);
    char *reader = read_file(path);
    assert_non_null(reader);
    const char *writer = "{\"type\":\"record\",\"name\":\"Job\","
                         "\"namespace\":\"aas.v1\",\"fields\":["
                         "{\"name\":\"id\",\"type\":\"string\"}]}";
    char *proj = NULL, err[256];
    assert_int_equal(aas_codec_schema_project(reader, writer, &proj, NULL, err,
                                              sizeof(err)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(err, "kind"));
    assert_null(proj);
    free(reader);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(job_round_trip_all_fields),
        cmocka_unit_test(job_round_trip_absent_optionals),
        cmocka_unit_test(peek_model_reads_the_name_or_says_unknown),
        cmocka_unit_test(peek_tenant_skips_to_the_last_field),
        cmocka_unit_test(result_round_trip_all_fields),
        cmocka_unit_test(result_round_trip_absent_optionals),
        cmocka_unit_test(encoded_header_is_magic_and_fingerprint),
        cmocka_unit_test(fingerprints_match_independent_python),
        cmocka_unit_test(canonical_form_follows_spec_rules),
        cmocka_unit_test(crc64_avro_matches_spec_constants),
        cmocka_unit_test(decode_accepts_raw_message_built_from_spec),
        cmocka_unit_test(decode_resolves_v1_0_writer_without_tenant),
        cmocka_unit_test(decode_reads_tenant_and_checks_it),
        cmocka_unit_test(decode_rejects_truncation_at_every_length),
        cmocka_unit_test(decode_survives_random_mutations),
        cmocka_unit_test(decode_rejects_garbage),
        cmocka_unit_test(decode_rejects_wrong_magic),
        cmocka_unit_test(decode_rejects_unknown_fingerprint),
        cmocka_unit_test(decode_rejects_oversize_message),
        cmocka_unit_test(decode_rejects_huge_dims_before_allocation),
        cmocka_unit_test(decode_rejects_overflowing_shape_product),
        cmocka_unit_test(decode_rejects_bad_dims_and_rank),
        cmocka_unit_test(decode_rejects_data_length_mismatch),
        cmocka_unit_test(decode_rejects_lying_lengths),
        cmocka_unit_test(decode_rejects_invalid_ids),
        cmocka_unit_test(decode_rejects_too_many_tensors),
        cmocka_unit_test(decode_rejects_oversize_text),
        cmocka_unit_test(decode_rejects_too_many_params),
        cmocka_unit_test(decode_rejects_invalid_utf8),
        cmocka_unit_test(decode_rejects_bad_enum_and_union_index),
        cmocka_unit_test(decode_rejects_trailing_bytes),
        cmocka_unit_test(decode_recovers_job_id_when_later_field_is_bad),
        cmocka_unit_test(encode_rejects_invalid_jobs),
        cmocka_unit_test(encode_rejects_invalid_results),
        cmocka_unit_test(projection_drops_writer_missing_fields_with_defaults),
        cmocka_unit_test(projection_refuses_missing_field_without_default),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
