/*
 * test_codec_fast.c - the direct job decoder and result encoder
 * (common/codec_direct.c) against the generic Avro C paths they replace
 * for the current schemas (aas_codec_job_decode_generic,
 * aas_codec_result_encode_generic, codec_int.h).
 *
 * Differential: random valid jobs (encoded by aas_codec_job_encode, and
 * written here byte by byte with random array blocking, negative block
 * counts, padded varints and repeated params keys) must decode to the same
 * aas_job_t both ways; random results must encode to the same bytes; and
 * mutated, truncated and extended messages must fail or succeed alike, with
 * the same error class and message, the same job id for the caller, and
 * *job untouched on failure.  Each limit of aas_codec_limits_t, exceeded by
 * one, must give the same error on both paths.
 *
 * Everything is seeded: a failure repeats.  Run under ASan in CI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "codec_int.h"
#include "job.h"
#include "tensor.h"

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

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* 0..n-1 */
static size_t rnd_below(uint64_t *s, size_t n) {
    return (size_t)(rnd(s) % n);
}

static char *xstrdup(const char *s) {
    char *c = strdup(s);
    assert_non_null(c);
    return c;
}

/* ---- random jobs and results --------------------------------------------- */

static char *rand_id(uint64_t *s) {
    static const char first[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    static const char rest[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    size_t n = rnd_below(s, 8) == 0 ? 1 + rnd_below(s, AAS_ID_MAX) : 1 + rnd_below(s, 20);
    char *id = malloc(n + 1);
    assert_non_null(id);
    id[0] = first[rnd_below(s, sizeof(first) - 1)];
    for (size_t i = 1; i < n; i++) id[i] = rest[rnd_below(s, sizeof(rest) - 1)];
    id[n] = '\0';
    return id;
}

/* Valid UTF-8 of 1 to 4-byte characters, up to `pieces` of them. */
static char *rand_text(uint64_t *s, size_t pieces) {
    static const char *const chars[] = {"a", "Z", " ", "7", ":", "{", "\xc3\xb6",
                                        "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "\n"};
    size_t n = rnd_below(s, pieces + 1);
    char *t = malloc(4 * n + 1);
    assert_non_null(t);
    t[0] = '\0';
    for (size_t i = 0; i < n; i++) strcat(t, chars[rnd_below(s, 10)]);
    return t;
}

static void rand_tensor(uint64_t *s, aas_tensor_t *t) {
    memset(t, 0, sizeof(*t));
    t->name = rnd_below(s, 2) ? rand_text(s, 12) : NULL;
    t->dtype = (aas_dtype_t)rnd_below(s, AAS_DTYPE__COUNT);
    t->rank = rnd_below(s, 10) == 0 ? (int)rnd_below(s, AAS_TENSOR_MAX_RANK + 1)
                                     : (int)rnd_below(s, 4);
    size_t elems = 1;
    for (int d = 0; d < t->rank; d++) {
        t->shape[d] = elems > 64 ? 1 : 1 + (int64_t)rnd_below(s, 5);
        elems *= (size_t)t->shape[d];
    }
    t->nbytes = elems * aas_dtype_size(t->dtype);
    t->data = malloc(t->nbytes);
    assert_non_null(t->data);
    for (size_t i = 0; i < t->nbytes; i++) ((unsigned char *)t->data)[i] = (unsigned char)rnd(s);
}

static void rand_job(uint64_t *s, aas_job_t *j) {
    memset(j, 0, sizeof(*j));
    j->id = rand_id(s);
    j->kind = (aas_job_kind_t)rnd_below(s, 2);
    j->model = rand_id(s);
    j->model_version = rnd_below(s, 2) ? rand_id(s) : NULL;
    j->n_inputs = rnd_below(s, 4);
    if (j->n_inputs) {
        j->inputs = calloc(j->n_inputs, sizeof(*j->inputs));
        assert_non_null(j->inputs);
        for (size_t i = 0; i < j->n_inputs; i++) rand_tensor(s, &j->inputs[i]);
    }
    j->text = rnd_below(s, 2) ? rand_text(s, rnd_below(s, 10) ? 30 : 400) : NULL;
    j->n_params = rnd_below(s, 3) ? 0 : 1 + rnd_below(s, 4);
    if (j->n_params) {
        j->params = calloc(j->n_params, sizeof(*j->params));
        assert_non_null(j->params);
        for (size_t i = 0; i < j->n_params; i++) {
            char *t = rand_text(s, 6);
            char *k = malloc(strlen(t) + 16);
            assert_non_null(k);
            sprintf(k, "p%zu%s", i, t); /* distinct: the encoder refuses repeats */
            free(t);
            j->params[i].key = k;
            j->params[i].value = rand_text(s, 20);
        }
    }
    j->priority = (int32_t)(uint32_t)rnd(s);
    if (rnd_below(s, 2)) j->priority %= 100;
    j->deadline_ms = rnd_below(s, 2) ? (int64_t)(rnd(s) >> rnd_below(s, 64)) : 0;
    j->submit_ms = (int64_t)rnd(s) >> rnd_below(s, 64);
    j->tenant = rnd_below(s, 2) ? rand_id(s) : NULL;
}

static void rand_result(uint64_t *s, aas_result_t *r) {
    memset(r, 0, sizeof(*r));
    r->job_id = rand_id(s);
    r->status = (aas_status_t)rnd_below(s, AAS_STATUS__COUNT);
    r->model = rnd_below(s, 2) ? rand_id(s) : NULL;
    r->model_version = rnd_below(s, 2) ? rand_id(s) : NULL;
    r->n_outputs = rnd_below(s, 4);
    if (r->n_outputs) {
        r->outputs = calloc(r->n_outputs, sizeof(*r->outputs));
        assert_non_null(r->outputs);
        for (size_t i = 0; i < r->n_outputs; i++) rand_tensor(s, &r->outputs[i]);
    }
    r->n_predictions = rnd_below(s, 5);
    if (r->n_predictions) {
        r->predictions = calloc(r->n_predictions, sizeof(*r->predictions));
        assert_non_null(r->predictions);
        for (size_t i = 0; i < r->n_predictions; i++) {
            aas_prediction_t *p = &r->predictions[i];
            uint32_t bits = (uint32_t)rnd(s);
            p->label = rnd_below(s, 2) ? (int32_t)rnd_below(s, 10) : (int32_t)(uint32_t)rnd(s);
            p->name = rnd_below(s, 2) ? rand_text(s, 10) : NULL;
            if (rnd_below(s, 2))
                memcpy(&p->probability, &bits, sizeof(bits)); /* any bits */
            else
                p->probability = (float)rnd_below(s, 1001) / 1000.0f;
        }
    }
    r->error = rnd_below(s, 3) == 0 ? rand_text(s, rnd_below(s, 10) ? 40 : 300) : NULL;
    r->timings.queue_ms = (int64_t)rnd(s) >> rnd_below(s, 64);
    r->timings.decode_us = (int64_t)rnd(s) >> rnd_below(s, 64);
    r->timings.compute_us = (int64_t)rnd(s) >> rnd_below(s, 64);
    r->timings.total_us = (int64_t)rnd(s) >> rnd_below(s, 64);
    r->worker_id = rnd_below(s, 2) ? rand_id(s) : NULL;
    r->finished_ms = (int64_t)rnd(s) >> rnd_below(s, 64);
}

/* ---- strict comparison --------------------------------------------------- */

static void assert_opt_str(const char *a, const char *b) {
    if (a && b)
        assert_string_equal(a, b);
    else
        assert_true(a == NULL && b == NULL);
}

static void assert_tensor_same(const aas_tensor_t *a, const aas_tensor_t *b) {
    assert_opt_str(a->name, b->name);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) assert_int_equal(a->shape[i], b->shape[i]);
    assert_int_equal(a->nbytes, b->nbytes);
    assert_non_null(a->data);
    assert_non_null(b->data);
    assert_memory_equal(a->data, b->data, a->nbytes);
}

/* Field by field, params in order. */
static void assert_job_same(const aas_job_t *a, const aas_job_t *b) {
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->model, b->model);
    assert_opt_str(a->model_version, b->model_version);
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_true((a->inputs == NULL) == (a->n_inputs == 0));
    assert_true((b->inputs == NULL) == (b->n_inputs == 0));
    for (size_t i = 0; i < a->n_inputs; i++) assert_tensor_same(&a->inputs[i], &b->inputs[i]);
    assert_opt_str(a->text, b->text);
    assert_int_equal(a->n_params, b->n_params);
    assert_true((a->params == NULL) == (a->n_params == 0));
    assert_true((b->params == NULL) == (b->n_params == 0));
    for (size_t i = 0; i < a->n_params; i++) {
        assert_string_equal(a->params[i].key, b->params[i].key);
        assert_string_equal(a->params[i].value, b->params[i].value);
    }
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->deadline_ms, b->deadline_ms);
    assert_int_equal(a->submit_ms, b->submit_ms);
    assert_opt_str(a->tenant, b->tenant);
}

static void assert_result_same(const aas_result_t *a, const aas_result_t *b) {
    assert_string_equal(a->job_id, b->job_id);
    assert_int_equal(a->status, b->status);
    assert_opt_str(a->model, b->model);
    assert_opt_str(a->model_version, b->model_version);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (size_t i = 0; i < a->n_outputs; i++)
        assert_tensor_same(&a->outputs[i], &b->outputs[i]);
    assert_int_equal(a->n_predictions, b->n_predictions);
    for (size_t i = 0; i < a->n_predictions; i++) {
        assert_int_equal(a->predictions[i].label, b->predictions[i].label);
        assert_opt_str(a->predictions[i].name, b->predictions[i].name);
        assert_memory_equal(&a->predictions[i].probability, &b->predictions[i].probability,
                            sizeof(float));
    }
    assert_opt_str(a->error, b->error);
    assert_int_equal(a->timings.queue_ms, b->timings.queue_ms);
    assert_int_equal(a->timings.decode_us, b->timings.decode_us);
    assert_int_equal(a->timings.compute_us, b->timings.compute_us);
    assert_int_equal(a->timings.total_us, b->timings.total_us);
    assert_opt_str(a->worker_id, b->worker_id);
    assert_int_equal(a->finished_ms, b->finished_ms);
}

/* ---- both decoders on the same bytes ------------------------------------- */

static int job_untouched(const aas_job_t *job) {
    unsigned char canary[sizeof(*job)];
    memset(canary, 0xAB, sizeof(canary));
    return memcmp(job, canary, sizeof(canary)) == 0;
}

/*
 * Decode buf with aas_codec_job_decode (direct for the current
 * fingerprint) and with the generic decoder: the same result code, error
 * message, job id for the caller, and the same job on success (returned in
 * *out if out is not NULL, else freed).
 */
static aas_err_t decode_both(aas_codec_t *codec, const void *buf, size_t len,
                             const aas_codec_limits_t *lim, aas_job_t *out) {
    aas_job_t d, g;
    char idd[AAS_ID_MAX + 1], idg[AAS_ID_MAX + 1], errd[512] = "", errg[512] = "";
    memset(&d, 0xAB, sizeof(d));
    memset(&g, 0xAB, sizeof(g));
    memset(idd, 'x', sizeof(idd));
    memset(idg, 'y', sizeof(idg));
    aas_err_t rd = aas_codec_job_decode(codec, buf, len, lim, &d, idd, errd, sizeof(errd));
    aas_err_t rg = aas_codec_job_decode_generic(codec, buf, len, lim, &g, idg, errg,
                                                sizeof(errg));
    if (rd != rg)
        fail_msg("direct %s (%s), generic %s (%s)", aas_err_name(rd), errd, aas_err_name(rg),
                 errg);
    assert_string_equal(idd, idg);
    if (rd != AAS_ERR_OK) {
        assert_true(errd[0] != '\0');
        assert_string_equal(errd, errg);
        assert_true(job_untouched(&d));
        assert_true(job_untouched(&g));
        return rd;
    }
    assert_string_equal(idd, d.id);
    assert_job_same(&d, &g);
    aas_job_clear(&g);
    if (out)
        *out = d;
    else
        aas_job_clear(&d);
    return rd;
}

/* ---- a writer of job messages, straight from the Avro spec --------------- */

typedef struct {
    unsigned char *b;
    size_t len, cap;
} wbuf_t;

static void wput(wbuf_t *w, const void *p, size_t n) {
    if (!n) return;
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2;
        w->b = realloc(w->b, w->cap);
        assert_non_null(w->b);
    }
    memcpy(w->b + w->len, p, n);
    w->len += n;
}

/* How to write: blocks split arrays and maps into random blocks, some with
 * negative counts and byte sizes; pad writes some varints longer than need
 * be (Avro readers take up to 10 bytes). */
typedef struct {
    uint64_t *seed;
    int blocks;
    int pad;
} style_t;

static void wlong(wbuf_t *w, const style_t *st, int64_t v) {
    uint64_t n = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
    unsigned char b[10];
    size_t k = 0;
    while (n >= 0x80) {
        b[k++] = (unsigned char)(n | 0x80);
        n >>= 7;
    }
    b[k++] = (unsigned char)n;
    if (st->pad && k < 10 && rnd_below(st->seed, 6) == 0) {
        size_t extra = 1 + rnd_below(st->seed, 10 - k);
        b[k - 1] |= 0x80;
        for (size_t e = 1; e < extra; e++) b[k++] = 0x80;
        b[k++] = 0x00;
    }
    wput(w, b, k);
}

static void wbytes(wbuf_t *w, const style_t *st, const void *p, size_t n) {
    wlong(w, st, (int64_t)n);
    wput(w, p, n);
}

static void wopt(wbuf_t *w, const style_t *st, const char *s) {
    if (!s) {
        wlong(w, st, 0);
        return;
    }
    wlong(w, st, 1);
    wbytes(w, st, s, strlen(s));
}

typedef void (*witem_fn)(wbuf_t *w, const style_t *st, const void *items, size_t i);

static void wblocks(wbuf_t *w, const style_t *st, size_t n, witem_fn item, const void *items) {
    for (size_t i = 0; i < n;) {
        size_t k = st->blocks ? 1 + rnd_below(st->seed, n - i) : n - i;
        wbuf_t tmp = {0};
        for (size_t j = 0; j < k; j++) item(&tmp, st, items, i + j);
        if (st->blocks && rnd_below(st->seed, 2)) {
            wlong(w, st, -(int64_t)k);
            wlong(w, st, (int64_t)tmp.len);
        } else {
            wlong(w, st, (int64_t)k);
        }
        wput(w, tmp.b, tmp.len);
        free(tmp.b);
        i += k;
    }
    wlong(w, st, 0);
}

static void wdim(wbuf_t *w, const style_t *st, const void *items, size_t i) {
    wlong(w, st, ((const int64_t *)items)[i]);
}

static void wtensor(wbuf_t *w, const style_t *st, const void *items, size_t i) {
    const aas_tensor_t *t = &((const aas_tensor_t *)items)[i];
    wopt(w, st, t->name);
    wlong(w, st, t->dtype);
    wblocks(w, st, (size_t)t->rank, wdim, t->shape);
    wbytes(w, st, t->data, t->nbytes);
}

static void wparam(wbuf_t *w, const style_t *st, const void *items, size_t i) {
    const aas_kv_t *kv = &((const aas_kv_t *)items)[i];
    wbytes(w, st, kv->key, strlen(kv->key));
    wbytes(w, st, kv->value, strlen(kv->value));
}

/* A current-schema Job message for j, its params replaced by params[n]. */
static void wjob(wbuf_t *w, const style_t *st, uint64_t fp, const aas_job_t *j,
                 const aas_kv_t *params, size_t n_params) {
    unsigned char h[AAS_CODEC_HEADER_SIZE] = {AAS_CODEC_MAGIC0, AAS_CODEC_MAGIC1};
    aas_codec_put_le64(h + 2, fp);
    w->len = 0;
    wput(w, h, sizeof(h));
    wbytes(w, st, j->id, strlen(j->id));
    wlong(w, st, j->kind);
    wbytes(w, st, j->model, strlen(j->model));
    wopt(w, st, j->model_version);
    wblocks(w, st, j->n_inputs, wtensor, j->inputs);
    wopt(w, st, j->text);
    wblocks(w, st, n_params, wparam, params);
    wlong(w, st, j->priority);
    if (j->deadline_ms) {
        wlong(w, st, 1);
        wlong(w, st, j->deadline_ms);
    } else {
        wlong(w, st, 0);
    }
    wlong(w, st, j->submit_ms);
    wopt(w, st, j->tenant);
}

/* A random valid job as one message: half of them by aas_codec_job_encode,
 * half by wjob in a random style, some with a params key repeated (Avro C
 * keeps the first position and the last value; the direct path must too). */
static void rand_message(aas_codec_t *codec, uint64_t *s, aas_job_t *job, wbuf_t *w) {
    rand_job(s, job);
    if (rnd_below(s, 2)) {
        void *buf = NULL;
        size_t len = 0;
        char err[256];
        aas_err_t rc = aas_codec_job_encode(codec, job, &buf, &len, err, sizeof(err));
        if (rc) fail_msg("encode: %s", err);
        w->len = 0;
        wput(w, buf, len);
        free(buf);
        return;
    }
    style_t st = {s, (int)rnd_below(s, 2), (int)rnd_below(s, 2)};
    aas_kv_t params[8];
    size_t n = job->n_params;
    if (n) memcpy(params, job->params, n * sizeof(*params));
    if (n && rnd_below(s, 3) == 0) {
        params[n].key = job->params[rnd_below(s, n)].key;
        params[n].value = "repeated";
        n++;
    }
    wjob(w, &st, aas_codec_job_fingerprint(codec), job, params, n);
}

/* ---- tests --------------------------------------------------------------- */

static void direct_paths_are_on_for_current_schemas(void **state) {
    aas_codec_t *codec = *state;
    /* Off means schemas/job.avsc or result.avsc changed: update codec_direct.c and the
     * AAS_CODEC_DIRECT_*_FP fingerprints in codec_int.h. */
    assert_true(codec->direct_job);
    assert_true(codec->direct_result);
    assert_true(aas_codec_job_fingerprint(codec) == AAS_CODEC_DIRECT_JOB_FP);
    assert_true(aas_codec_result_fingerprint(codec) == AAS_CODEC_DIRECT_RESULT_FP);
}

static void random_jobs_decode_the_same_both_ways(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 0x1234567887654321ULL;
    wbuf_t w = {0};
    for (int iter = 0; iter < 3000; iter++) {
        aas_job_t job, out;
        rand_message(codec, &seed, &job, &w);
        assert_int_equal(decode_both(codec, w.b, w.len, NULL, &out), AAS_ERR_OK);
        /* And both equal what was written, but for a repeated key's value. */
        assert_string_equal(out.id, job.id);
        assert_int_equal(out.n_inputs, job.n_inputs);
        for (size_t i = 0; i < job.n_inputs; i++)
            assert_tensor_same(&out.inputs[i], &job.inputs[i]);
        assert_opt_str(out.text, job.text);
        assert_opt_str(out.tenant, job.tenant);
        assert_int_equal(out.n_params, job.n_params);
        for (size_t i = 0; i < job.n_params; i++)
            assert_string_equal(out.params[i].key, job.params[i].key);
        assert_int_equal(out.deadline_ms, job.deadline_ms);
        aas_job_clear(&out);
        aas_job_clear(&job);
    }
    free(w.b);
}

/* Flip, truncate, extend, insert and delete bytes of valid messages. */
static void mutated_jobs_fail_or_pass_the_same_both_ways(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 0xDEADBEEFCAFEF00DULL;
    wbuf_t w = {0};
    size_t ok = 0, failed = 0;
    for (int iter = 0; iter < 400; iter++) {
        aas_job_t job;
        rand_message(codec, &seed, &job, &w);
        aas_job_clear(&job);
        size_t body = w.len - AAS_CODEC_HEADER_SIZE;
        for (int m = 0; m < 30; m++) {
            size_t cap = w.len + 16, len = w.len;
            unsigned char *b = malloc(cap);
            assert_non_null(b);
            memcpy(b, w.b, w.len);
            size_t at = AAS_CODEC_HEADER_SIZE + rnd_below(&seed, body);
            switch (rnd_below(&seed, 6)) {
            case 0: /* a few random bytes */
            case 1:
                for (size_t f = 1 + rnd_below(&seed, 3); f > 0; f--)
                    b[AAS_CODEC_HEADER_SIZE + rnd_below(&seed, body)] = (unsigned char)rnd(&seed);
                break;
            case 2: /* one bit */
                b[at] ^= (unsigned char)(1u << rnd_below(&seed, 8));
                break;
            case 3: /* truncate (a copy of exactly len bytes, for ASan) */
                len = rnd_below(&seed, w.len);
                break;
            case 4: /* extend */
                for (size_t e = 1 + rnd_below(&seed, 16); e > 0; e--)
                    b[len++] = (unsigned char)rnd(&seed);
                break;
            default: /* insert or delete a byte */
                if (rnd_below(&seed, 2)) {
                    memmove(b + at + 1, b + at, len - at);
                    b[at] = (unsigned char)rnd(&seed);
                    len++;
                } else {
                    memmove(b + at, b + at + 1, len - at - 1);
                    len--;
                }
                break;
            }
            unsigned char *exact = malloc(len ? len : 1);
            assert_non_null(exact);
            memcpy(exact, b, len);
            free(b);
            if (decode_both(codec, exact, len, NULL, NULL) == AAS_ERR_OK)
                ok++;
            else
                failed++;
            free(exact);
        }
    }
    /* Both outcomes were exercised. */
    assert_true(ok > 100);
    assert_true(failed > 1000);
    free(w.b);
}

/* Every limit at its value passes and, one below, fails alike. */
static void each_limit_exceeded_by_one_fails_the_same_both_ways(void **state) {
    aas_codec_t *codec = *state;
    static const int64_t shape[] = {3, 4};
    aas_job_t job;
    memset(&job, 0, sizeof(job));
    job.id = xstrdup("lim-1");
    job.model = xstrdup("m");
    job.n_inputs = 3;
    job.inputs = calloc(3, sizeof(*job.inputs));
    assert_non_null(job.inputs);
    for (size_t i = 0; i < 3; i++) {
        float data[12] = {0};
        assert_int_equal(aas_tensor_set_f32(&job.inputs[i], NULL, data, 2, shape), AAS_ERR_OK);
    }
    job.text = xstrdup("0123456789");
    job.n_params = 4;
    job.params = calloc(4, sizeof(*job.params));
    assert_non_null(job.params);
    for (size_t i = 0; i < 4; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%zu", i);
        job.params[i].key = xstrdup(k);
        job.params[i].value = xstrdup(i == 2 ? "0123456789ab" : "v");
    }
    void *buf = NULL;
    size_t len = 0;
    char err[256];
    assert_int_equal(aas_codec_job_encode(codec, &job, &buf, &len, err, sizeof(err)),
                     AAS_ERR_OK);
    aas_codec_limits_t at, over;
    aas_codec_limits_default(&at);
    at.max_message_bytes = len;
    at.max_tensor_elems = 12;
    at.max_tensors = 3;
    at.max_text_bytes = 12; /* the longest of text (10) and params values (12) */
    at.max_params = 4;
    assert_int_equal(decode_both(codec, buf, len, &at, NULL), AAS_ERR_OK);

    over = at;
    over.max_message_bytes--;
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    over = at;
    over.max_tensor_elems--;
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    over = at;
    over.max_tensors--;
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    over = at;
    over.max_params--;
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    over = at;
    over.max_text_bytes = 11; /* a params value over, found after the scan */
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    over.max_text_bytes = 9; /* the text over, found by the scan */
    assert_int_equal(decode_both(codec, buf, len, &over, NULL), AAS_ERR_TOO_LARGE);
    free(buf);
    aas_job_clear(&job);
}

/* A minimal job written by wjob; the caller sets what the case needs. */
static void plain_job(aas_job_t *j) {
    memset(j, 0, sizeof(*j));
    j->id = (char *)"job-9";
    j->model = (char *)"m";
}

/* A content fault (an id, UTF-8) is reported only if the rest of the
 * message is sound: the generic scan finds structural faults first. */
static void structural_faults_win_over_earlier_content_faults(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 7;
    style_t st = {&seed, 0, 0};
    wbuf_t w = {0};
    aas_job_t j;
    plain_job(&j);
    j.model = (char *)"bad model";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_INVAL);
    assert_int_equal(decode_both(codec, w.b, w.len - 1, NULL, NULL), AAS_ERR_DECODE);
    wput(&w, "", 1); /* a trailing byte */
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_DECODE);

    /* A bad tensor name, then a bad shape: the shape is the scan's. */
    aas_tensor_t t;
    memset(&t, 0, sizeof(t));
    t.name = (char *)"\xff";
    t.dtype = AAS_DTYPE_U8;
    t.rank = 1;
    t.shape[0] = 2;
    t.nbytes = 2;
    t.data = (void *)"ab";
    plain_job(&j);
    j.inputs = &t;
    j.n_inputs = 1;
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_DECODE);
    t.nbytes = 1;
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_SHAPE);

    /* A bad id, then too many tensors: the limit, and no job id. */
    aas_codec_limits_t lim;
    aas_codec_limits_default(&lim);
    lim.max_tensors = 0;
    t.name = NULL;
    t.nbytes = 2;
    j.id = (char *)"a:b";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, &lim, NULL), AAS_ERR_TOO_LARGE);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_INVAL);

    /* Two content faults: the first in field order is reported. */
    plain_job(&j);
    j.text = (char *)"\xc0\x80";
    j.tenant = (char *)"-t";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_DECODE);
    j.text = NULL;
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, NULL, 0);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_INVAL);
    free(w.b);
}

/* Repeated params keys as Avro C's map reads them: the first position,
 * the last value, and only the last value is checked. */
static void repeated_params_keys_read_as_avro_c_reads_them(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 11;
    style_t st = {&seed, 0, 0};
    wbuf_t w = {0};
    aas_job_t j, out;
    plain_job(&j);
    aas_kv_t kv[] = {{"k", "\xff"}, {"x", "1"}, {"k", "ok"}};
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, kv, 3);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, &out), AAS_ERR_OK);
    assert_int_equal(out.n_params, 2);
    assert_string_equal(out.params[0].key, "k");
    assert_string_equal(out.params[0].value, "ok");
    assert_string_equal(out.params[1].key, "x");
    aas_job_clear(&out);
    kv[0].value = "ok";
    kv[2].value = "bad\xff";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, kv, 3);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_DECODE);
    /* A value over the limit, replaced by one within it. */
    aas_codec_limits_t lim;
    aas_codec_limits_default(&lim);
    lim.max_text_bytes = 2;
    kv[0].value = "long";
    kv[2].value = "ok";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, kv, 3);
    assert_int_equal(decode_both(codec, w.b, w.len, &lim, NULL), AAS_ERR_OK);
    kv[0].value = "ok";
    kv[2].value = "long";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, kv, 3);
    assert_int_equal(decode_both(codec, w.b, w.len, &lim, NULL), AAS_ERR_TOO_LARGE);
    /* A key that is not UTF-8 (but has no NUL: that is the scan's). */
    kv[1].key = "\xe2\x82";
    wjob(&w, &st, aas_codec_job_fingerprint(codec), &j, kv, 2);
    assert_int_equal(decode_both(codec, w.b, w.len, NULL, NULL), AAS_ERR_DECODE);
    free(w.b);
}

/* Blocks with negative counts and byte sizes, and padded varints. */
static void negative_block_counts_and_long_varints_decode(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 99;
    wbuf_t w = {0};
    int with_inputs = 0;
    for (int iter = 0; iter < 500; iter++) {
        aas_job_t job, out;
        rand_job(&seed, &job);
        style_t st = {&seed, 1, 1};
        wjob(&w, &st, aas_codec_job_fingerprint(codec), &job, job.params, job.n_params);
        assert_int_equal(decode_both(codec, w.b, w.len, NULL, &out), AAS_ERR_OK);
        with_inputs += job.n_inputs > 0;
        aas_job_clear(&out);
        aas_job_clear(&job);
    }
    assert_true(with_inputs > 100);
    free(w.b);
}

/* Encode a result both ways: the same outcome, bytes and error. */
static aas_err_t encode_both(aas_codec_t *codec, const aas_result_t *res, void **out,
                             size_t *out_len) {
    void *bd = (void *)0x1, *bg = (void *)0x1;
    size_t ld = 12345, lg = 12345;
    char errd[512] = "", errg[512] = "";
    aas_err_t rd = aas_codec_result_encode(codec, res, &bd, &ld, errd, sizeof(errd));
    aas_err_t rg = aas_codec_result_encode_generic(codec, res, &bg, &lg, errg, sizeof(errg));
    if (rd != rg)
        fail_msg("direct %s (%s), generic %s (%s)", aas_err_name(rd), errd, aas_err_name(rg),
                 errg);
    if (rd != AAS_ERR_OK) {
        assert_string_equal(errd, errg);
        assert_true(bd == (void *)0x1 && ld == 12345);
        assert_true(bg == (void *)0x1 && lg == 12345);
        return rd;
    }
    assert_int_equal(ld, lg);
    assert_memory_equal(bd, bg, ld);
    free(bg);
    if (out) {
        *out = bd;
        *out_len = ld;
    } else {
        free(bd);
    }
    return rd;
}

static void random_results_encode_to_the_generic_bytes(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 0x0123456789ABCDEFULL;
    for (int iter = 0; iter < 3000; iter++) {
        aas_result_t res, back;
        void *buf = NULL;
        size_t len = 0;
        char err[256];
        rand_result(&seed, &res);
        assert_int_equal(encode_both(codec, &res, &buf, &len), AAS_ERR_OK);
        assert_int_equal(aas_codec_result_decode(codec, buf, len, &back, err, sizeof(err)),
                         AAS_ERR_OK);
        assert_result_same(&res, &back);
        free(buf);
        aas_result_clear(&back);
        aas_result_clear(&res);
    }
}

/* Each fault the generic encoder refuses, refused alike. */
static void invalid_results_fail_the_same_both_ways(void **state) {
    aas_codec_t *codec = *state;
    uint64_t seed = 42;
    char long_name[AAS_CODEC_MAX_NAME + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    for (int iter = 0; iter < 600; iter++) {
        aas_result_t res;
        rand_result(&seed, &res);
        /* Make sure there is a tensor and a prediction to break. */
        if (!res.n_outputs) {
            res.outputs = calloc(1, sizeof(*res.outputs));
            assert_non_null(res.outputs);
            rand_tensor(&seed, &res.outputs[0]);
            res.n_outputs = 1;
        }
        if (!res.n_predictions) {
            res.predictions = calloc(1, sizeof(*res.predictions));
            assert_non_null(res.predictions);
            res.n_predictions = 1;
        }
        aas_tensor_t *t = &res.outputs[rnd_below(&seed, res.n_outputs)];
        aas_prediction_t *p = &res.predictions[rnd_below(&seed, res.n_predictions)];
        char *saved = NULL, **slot = NULL;
        void *saved_data = NULL;
        aas_tensor_t saved_t = *t;
        aas_result_t saved_res = res;
        int fault = (int)rnd_below(&seed, 15);
        switch (fault) {
        case 0: slot = &res.job_id; saved = *slot; *slot = rnd_below(&seed, 2) ? NULL : "a:b"; break;
        case 1: res.status = rnd_below(&seed, 2) ? AAS_STATUS__COUNT : (aas_status_t)-1; break;
        case 2: slot = &res.model; saved = *slot; *slot = "x y"; break;
        case 3: slot = &res.model_version; saved = *slot; *slot = ""; break;
        case 4: slot = &res.worker_id; saved = *slot; *slot = "w{1}"; break;
        case 5: res.outputs = NULL; break;
        case 6: t->nbytes += 1; break;
        case 7: t->dtype = (aas_dtype_t)42; break;
        case 8: t->rank = AAS_TENSOR_MAX_RANK + 1; break;
        case 9: saved_data = t->data; t->data = NULL; break;
        case 10: slot = &t->name; saved = *slot; *slot = long_name; break;
        case 11: slot = &t->name; saved = *slot; *slot = "\xc3"; break;
        case 12: slot = &res.error; saved = *slot; *slot = "\xed\xa0\x80"; break;
        case 13: res.predictions = NULL; break;
        default: slot = &p->name; saved = *slot; *slot = "\xf8\x88\x80\x80\x80"; break;
        }
        aas_err_t want = fault >= 6 && fault <= 8 ? AAS_ERR_SHAPE : AAS_ERR_INVAL;
        assert_int_equal(encode_both(codec, &res, NULL, NULL), want);
        if (slot) *slot = saved;
        if (saved_data) t->data = saved_data;
        t->nbytes = saved_t.nbytes;
        t->dtype = saved_t.dtype;
        t->rank = saved_t.rank;
        res.status = saved_res.status;
        res.outputs = saved_res.outputs;
        res.predictions = saved_res.predictions;
        assert_int_equal(encode_both(codec, &res, NULL, NULL), AAS_ERR_OK);
        aas_result_clear(&res);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(direct_paths_are_on_for_current_schemas),
        cmocka_unit_test(random_jobs_decode_the_same_both_ways),
        cmocka_unit_test(mutated_jobs_fail_or_pass_the_same_both_ways),
        cmocka_unit_test(each_limit_exceeded_by_one_fails_the_same_both_ways),
        cmocka_unit_test(structural_faults_win_over_earlier_content_faults),
        cmocka_unit_test(repeated_params_keys_read_as_avro_c_reads_them),
        cmocka_unit_test(negative_block_counts_and_long_varints_decode),
        cmocka_unit_test(random_results_encode_to_the_generic_bytes),
        cmocka_unit_test(invalid_results_fail_the_same_both_ways),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
