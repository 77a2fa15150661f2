/*
 * test_model.c - the model module: oneDNN inference against a plain-C
 * reference (double accumulation), the per-bucket primitive cache,
 * the AASMLP1 format (round trip and hostile blobs), and the shipped
 * digits model against the numpy script that trained it.
 *
 * OMP_NUM_THREADS may be set to keep oneDNN's OpenMP pool small; nothing
 * here depends on it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

/* ---- helpers ---- */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r) { /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static int64_t rng_int(rng_t *r, int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static float rng_unit(rng_t *r) { /* [-1, 1) */
    return (float)((double)(rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A network whose parameters the test owns. */
typedef struct {
    size_t n;
    aas_mlp_layer_t layers[AAS_MLP_MAX_LAYERS];
    float *w[AAS_MLP_MAX_LAYERS], *b[AAS_MLP_MAX_LAYERS];
} net_t;

static void net_init(net_t *net, rng_t *r, size_t n, const int64_t *dims,
                     const aas_act_t *acts) {
    memset(net, 0, sizeof(*net));
    net->n = n;
    for (size_t i = 0; i < n; i++) {
        int64_t in = dims[i], out = dims[i + 1];
        net->w[i] = malloc((size_t)(in * out) * sizeof(float));
        net->b[i] = malloc((size_t)out * sizeof(float));
        assert_non_null(net->w[i]);
        assert_non_null(net->b[i]);
        /* Variance ~1/in keeps activations O(1) through the layers. */
        float scale = (float)sqrt(3.0 / (double)in);
        for (int64_t k = 0; k < in * out; k++) net->w[i][k] = scale * rng_unit(r);
        for (int64_t k = 0; k < out; k++) net->b[i][k] = 0.1f * rng_unit(r);
        net->layers[i] = (aas_mlp_layer_t){in, out, acts[i], net->w[i], net->b[i]};
    }
}

static void net_free(net_t *net) {
    for (size_t i = 0; i < net->n; i++) {
        free(net->w[i]);
        free(net->b[i]);
    }
}

/* Naive forward pass in double: out is rows x last out. */
static void net_reference(const net_t *net, const float *in, int64_t rows,
                          double *out) {
    int64_t widest = net->layers[0].in;
    for (size_t i = 0; i < net->n; i++)
        if (net->layers[i].out > widest) widest = net->layers[i].out;
    double *x = malloc((size_t)widest * sizeof(double));
    double *y = malloc((size_t)widest * sizeof(double));
    assert_non_null(x);
    assert_non_null(y);
    for (int64_t r = 0; r < rows; r++) {
        int64_t in_dim = net->layers[0].in;
        for (int64_t k = 0; k < in_dim; k++) x[k] = in[r * in_dim + k];
        for (size_t i = 0; i < net->n; i++) {
            const aas_mlp_layer_t *l = &net->layers[i];
            for (int64_t o = 0; o < l->out; o++) {
                double acc = l->bias[o];
                for (int64_t k = 0; k < l->in; k++)
                    acc += (double)l->weights[o * l->in + k] * x[k];
                switch (l->act) {
                case AAS_ACT_RELU: acc = acc > 0 ? acc : 0; break;
                case AAS_ACT_TANH: acc = tanh(acc); break;
                case AAS_ACT_SIGMOID: acc = 1.0 / (1.0 + exp(-acc)); break;
                default: break;
                }
                y[o] = acc;
            }
            if (l->act == AAS_ACT_SOFTMAX) {
                double mx = y[0], sum = 0;
                for (int64_t o = 1; o < l->out; o++) mx = y[o] > mx ? y[o] : mx;
                for (int64_t o = 0; o < l->out; o++) sum += (y[o] = exp(y[o] - mx));
                for (int64_t o = 0; o < l->out; o++) y[o] /= sum;
            }
            double *t = x;
            x = y;
            y = t;
        }
        int64_t out_dim = net->layers[net->n - 1].out;
        for (int64_t o = 0; o < out_dim; o++) out[r * out_dim + o] = x[o];
    }
    free(x);
    free(y);
}

static aas_model_t *net_load(const net_t *net, const char *const *labels,
                             size_t n_labels) {
    void *blob = NULL;
    size_t len = 0;
    char why[256] = "";
    assert_int_equal(aas_mlp_serialize(net->layers, net->n, labels, n_labels,
                                       &blob, &len, why, sizeof(why)),
                     AAS_ERR_OK);
    aas_model_t *m = NULL;
    aas_err_t err = aas_model_load(blob, len, &m, why, sizeof(why));
    free(blob);
    if (err) fail_msg("load: %s", why);
    return m;
}

/* Tolerance: 1e-5 relative with a 1e-6 absolute floor. */
#define RTOL 1e-5
#define ATOL 1e-6

/* Runs rows random inputs through m and the reference; fails on the first
 * element outside tolerance. */
static void check_forward(aas_model_t *m, const net_t *net, rng_t *r,
                          int64_t rows) {
    int64_t in_dim = net->layers[0].in, out_dim = net->layers[net->n - 1].out;
    float *x = malloc((size_t)(rows * in_dim) * sizeof(float));
    float *y = malloc((size_t)(rows * out_dim) * sizeof(float));
    double *ref = malloc((size_t)(rows * out_dim) * sizeof(double));
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(ref);
    for (int64_t k = 0; k < rows * in_dim; k++) x[k] = rng_unit(r);
    char why[256] = "";
    aas_err_t err = aas_model_infer(m, x, rows, y, why, sizeof(why));
    if (err) fail_msg("infer rows=%lld: %s", (long long)rows, why);
    net_reference(net, x, rows, ref);
    for (int64_t k = 0; k < rows * out_dim; k++) {
        double d = fabs((double)y[k] - ref[k]);
        if (!(d <= RTOL * fabs(ref[k]) + ATOL))
            fail_msg("rows=%lld out_dim=%lld elem %lld: got %.9g want %.9g "
                     "(|diff| %.3g)",
                     (long long)rows, (long long)out_dim, (long long)k,
                     (double)y[k], ref[k], d);
    }
    free(x);
    free(y);
    free(ref);
}

/* A small valid blob: 3 -> 4 (tanh) -> 2 (softmax), labels "a", "b". */
static void small_blob(void **blob, size_t *len) {
    rng_t r = {42};
    net_t net;
    const int64_t dims[] = {3, 4, 2};
    const aas_act_t acts[] = {AAS_ACT_TANH, AAS_ACT_SOFTMAX};
    const char *labels[] = {"a", "b"};
    net_init(&net, &r, 2, dims, acts);
    char why[128];
    assert_int_equal(aas_mlp_serialize(net.layers, 2, labels, 2, blob, len, why,
                                       sizeof(why)),
                     AAS_ERR_OK);
    net_free(&net);
}

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* Loads a copy of exactly len bytes (so ASan sees any over-read), expects
 * AAS_ERR_MODEL_FORMAT and, if want is set, that text in the reason. */
static void expect_reject(const void *blob, size_t len, const char *want) {
    unsigned char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, blob, len);
    aas_model_t *m = NULL;
    char why[256] = "";
    aas_err_t err = aas_model_load(copy, len, &m, why, sizeof(why));
    free(copy);
    if (err != AAS_ERR_MODEL_FORMAT) {
        aas_model_destroy(m);
        fail_msg("len %zu: got %s (%s), want AAS_ERR_MODEL_FORMAT", len,
                 aas_err_name(err), why);
    }
    assert_null(m);
    assert_true(why[0] != '\0');
    if (want && !strstr(why, want))
        fail_msg("reason \"%s\" does not mention \"%s\"", why, want);
}

/* ---- inference ---- */

static void infer_matches_reference_on_random_shapes(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        rng_t r = {seed * 0x9e3779b97f4a7c15ull};
        size_t n = (size_t)rng_int(&r, 1, 4);
        int64_t dims[5];
        aas_act_t acts[4];
        for (size_t i = 0; i <= n; i++) dims[i] = rng_int(&r, 1, 300);
        for (size_t i = 0; i < n; i++)
            acts[i] = (aas_act_t)((seed + i) % 4); /* none/relu/tanh/sigmoid */
        acts[n - 1] = (aas_act_t)(seed % 5);   /* last may be softmax */
        net_t net;
        net_init(&net, &r, n, dims, acts);
        aas_model_t *m = net_load(&net, NULL, 0);
        assert_int_equal(aas_model_input_dim(m), dims[0]);
        assert_int_equal(aas_model_output_dim(m), dims[n]);
        assert_int_equal(aas_model_is_classifier(m), acts[n - 1] == AAS_ACT_SOFTMAX);
        for (int k = 0; k < 3; k++) check_forward(m, &net, &r, rng_int(&r, 1, 70));
        aas_model_destroy(m);
        net_free(&net);
    }
}

static void infer_matches_reference_at_extreme_dims(void **state) {
    (void)state;
    rng_t r = {7};
    const int64_t dims[] = {300, 1, 300, 300, 1};
    const aas_act_t acts[] = {AAS_ACT_SIGMOID, AAS_ACT_RELU, AAS_ACT_TANH,
                              AAS_ACT_NONE};
    net_t net;
    net_init(&net, &r, 4, dims, acts);
    aas_model_t *m = net_load(&net, NULL, 0);
    check_forward(m, &net, &r, 1);
    check_forward(m, &net, &r, 70);
    aas_model_destroy(m);
    net_free(&net);

    const int64_t d1[] = {1, 1};
    const aas_act_t a1[] = {AAS_ACT_SOFTMAX}; /* one class: always 1.0 */
    net_init(&net, &r, 1, d1, a1);
    m = net_load(&net, NULL, 0);
    check_forward(m, &net, &r, 5);
    aas_model_destroy(m);
    net_free(&net);
}

static void infer_reuses_cache_across_varying_batch_sizes(void **state) {
    (void)state;
    rng_t r = {99};
    const int64_t dims[] = {37, 64, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    net_t net;
    net_init(&net, &r, 2, dims, acts);
    aas_model_t *m = net_load(&net, NULL, 0);
    size_t loaded = aas_model_footprint(m);
    assert_true(loaded >= (37 * 64 + 64 + 64 * 10 + 10) * sizeof(float));

    /* Hits and misses across buckets (partial ones too), all exact. */
    const int64_t sizes[] = {1, 1, 2, 64, 1, 3, 4, 5, 6, 7, 8, 9, 10, 1, 70,
                             2, 64, 33, 1, 70, 11, 12, 13, 14, 15, 16, 17, 18};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
        check_forward(m, &net, &r, sizes[i]);
    size_t after = aas_model_footprint(m);
    assert_true(after > loaded);

    /* Built buckets stay; the footprint is that of a fresh model that saw
     * the same buckets in another order (33 and 70 are partial buckets of
     * 40 and 80; 17 and 18 share 20). */
    aas_model_t *fresh = net_load(&net, NULL, 0);
    const int64_t again[] = {80, 20, 40, 64, 16, 15, 14, 13, 12, 11, 10, 9,
                             8, 7, 6, 5, 4, 3, 2, 1};
    for (size_t i = 0; i < sizeof(again) / sizeof(*again); i++)
        check_forward(fresh, &net, &r, again[i]);
    assert_int_equal(aas_model_footprint(fresh), after);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++)
        check_forward(m, &net, &r, sizes[i]);
    assert_int_equal(aas_model_footprint(m), after);
    aas_model_destroy(fresh);
    aas_model_destroy(m);
    net_free(&net);
}

static void infer_rejects_bad_arguments(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    aas_model_t *m = NULL;
    char why[256];
    assert_int_equal(aas_model_load(blob, len, &m, why, sizeof(why)), AAS_ERR_OK);
    free(blob);
    float x[3] = {0}, y[2];
    assert_int_equal(aas_model_infer(m, x, 0, y, why, sizeof(why)), AAS_ERR_SHAPE);
    assert_int_equal(aas_model_infer(m, x, -1, y, why, sizeof(why)), AAS_ERR_SHAPE);
    assert_int_equal(aas_model_infer(m, NULL, 1, y, why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_model_infer(m, x, 1, NULL, why, sizeof(why)), AAS_ERR_INVAL);
    assert_int_equal(aas_model_infer(m, x, INT64_MAX / 2, y, why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
    assert_int_equal(aas_model_infer(m, x, 1, y, NULL, 0), AAS_ERR_OK);
    aas_model_destroy(m);
    aas_model_destroy(NULL);
}

/* ---- format ---- */

static void serialize_load_round_trip_keeps_shape_and_labels(void **state) {
    (void)state;
    rng_t r = {5};
    const int64_t dims[] = {6, 5, 3};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    const char *labels[] = {"cat", "dög", "ключ"}; /* UTF-8 */
    net_t net;
    net_init(&net, &r, 2, dims, acts);
    aas_model_t *m = net_load(&net, labels, 3);
    assert_int_equal(aas_model_input_dim(m), 6);
    assert_int_equal(aas_model_output_dim(m), 3);
    assert_int_equal(aas_model_is_classifier(m), 1);
    for (int64_t i = 0; i < 3; i++)
        assert_string_equal(aas_model_label_name(m, i), labels[i]);
    assert_null(aas_model_label_name(m, 3));
    assert_null(aas_model_label_name(m, -1));
    check_forward(m, &net, &r, 4);
    aas_model_destroy(m);

    /* Same network, no labels, not a classifier. */
    net.layers[1].act = AAS_ACT_NONE;
    m = net_load(&net, NULL, 0);
    assert_int_equal(aas_model_is_classifier(m), 0);
    assert_null(aas_model_label_name(m, 0));
    check_forward(m, &net, &r, 4);
    aas_model_destroy(m);

    /* Serialised bytes are deterministic and reload to the same bytes. */
    void *b1, *b2;
    size_t l1, l2;
    char why[128];
    assert_int_equal(aas_mlp_serialize(net.layers, 2, labels, 3, &b1, &l1, why,
                                       sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_mlp_serialize(net.layers, 2, labels, 3, &b2, &l2, why,
                                       sizeof(why)), AAS_ERR_OK);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_memory_equal(b1, "AASMLP1\0", 8);
    free(b1);
    free(b2);
    net_free(&net);
}

static void load_rejects_truncation_at_every_length(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    for (size_t n = 0; n < len; n++) expect_reject(blob, n, NULL);
    /* One byte too many is as bad as one too few. */
    unsigned char *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, blob, len);
    longer[len] = 0;
    expect_reject(longer, len + 1, "trailing");
    free(longer);
    free(blob);
}

static void load_rejects_wrong_magic(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    unsigned char *b = blob;
    b[6] = '2'; /* "AASMLP2": a version this build does not know */
    expect_reject(blob, len, "unknown model format");
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    expect_reject(blob, len, "unknown model format");
    expect_reject("AASMLP1", 7, NULL); /* magic without its NUL */
    free(blob);
}

static void load_rejects_huge_declared_dims_before_allocating(void **state) {
    (void)state;
    /* Headers only: a loader that allocated what they declare before
     * checking the bytes left would try to take gigabytes (and ASan would
     * report the over-read while copying). */
    unsigned char h[16 + 8 * 2 + 4] = "AASMLP1";
    put_u32(h + 8, 2);
    put_u32(h + 12, AAS_MLP_MAX_DIM);          /* input dim at the limit */
    put_u32(h + 16, AAS_MLP_MAX_DIM);          /* 2^40 weights */
    put_u32(h + 20, AAS_ACT_RELU);
    put_u32(h + 24, 10);
    put_u32(h + 28, AAS_ACT_SOFTMAX);
    expect_reject(h, sizeof(h), "parameters");

    put_u32(h + 16, AAS_MLP_MAX_DIM + 1);      /* over the per-dim limit */
    expect_reject(h, sizeof(h), "out dim");
    put_u32(h + 16, 0xffffffffu);
    expect_reject(h, sizeof(h), "out dim");

    put_u32(h + 12, 8192);                     /* 8192 x 8192: within limits */
    put_u32(h + 16, 8192);
    expect_reject(h, sizeof(h), "truncated");

    put_u32(h + 12, AAS_MLP_MAX_DIM + 1);
    expect_reject(h, sizeof(h), "input dim");
    put_u32(h + 12, 0);
    expect_reject(h, sizeof(h), "input dim");

    put_u32(h + 12, 4);
    put_u32(h + 8, AAS_MLP_MAX_LAYERS + 1);
    expect_reject(h, sizeof(h), "layers");
    put_u32(h + 8, 0);
    expect_reject(h, sizeof(h), "layers");
    put_u32(h + 8, 0xffffffffu);
    expect_reject(h, sizeof(h), "layers");
}

static void load_rejects_nonfinite_parameters(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    unsigned char *b = blob;
    const size_t w0 = 16 + 8 * 2; /* first weight of layer 0 */
    unsigned char saved[4];
    memcpy(saved, b + w0 + 4 * 5, 4);
    float bad = NAN;
    memcpy(b + w0 + 4 * 5, &bad, 4);
    expect_reject(blob, len, "NaN or Inf");
    memcpy(b + w0 + 4 * 5, saved, 4);
    bad = -INFINITY;                           /* bias 1 of layer 0 */
    memcpy(b + w0 + 4 * 12 + 4, &bad, 4);
    expect_reject(blob, len, "bias 1");
    free(blob);

    /* The writer refuses them too. */
    rng_t r = {3};
    const int64_t dims[] = {2, 2};
    const aas_act_t acts[] = {AAS_ACT_NONE};
    net_t net;
    net_init(&net, &r, 1, dims, acts);
    net.w[0][3] = NAN;
    void *out = NULL;
    size_t out_len = 0;
    char why[128];
    assert_int_equal(aas_mlp_serialize(net.layers, 1, NULL, 0, &out, &out_len,
                                       why, sizeof(why)), AAS_ERR_INVAL);
    assert_null(out);
    net_free(&net);
}

static void load_rejects_softmax_in_hidden_layer(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    put_u32((unsigned char *)blob + 20, AAS_ACT_SOFTMAX); /* layer 0 act */
    expect_reject(blob, len, "softmax");
    put_u32((unsigned char *)blob + 20, 5);               /* no such act */
    expect_reject(blob, len, "activation");
    free(blob);

    rng_t r = {4};
    const int64_t dims[] = {3, 3, 2};
    const aas_act_t acts[] = {AAS_ACT_SOFTMAX, AAS_ACT_NONE};
    net_t net;
    net_init(&net, &r, 2, dims, acts);
    void *out = NULL;
    size_t out_len = 0;
    char why[128];
    assert_int_equal(aas_mlp_serialize(net.layers, 2, NULL, 0, &out, &out_len,
                                       why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "softmax"));
    net_free(&net);
}

static void load_rejects_bad_labels(void **state) {
    (void)state;
    void *blob;
    size_t len;
    small_blob(&blob, &len);
    unsigned char *b = blob;
    /* Labels sit at the end: u32 count, then (u16 len, bytes) for "a", "b". */
    size_t count_at = len - 4 - 6;
    put_u32(b + count_at, 3);
    expect_reject(blob, len, "labels for 2 outputs");
    put_u32(b + count_at, 1);
    expect_reject(blob, len, "labels for 2 outputs");
    put_u32(b + count_at, 2);
    b[len - 1] = 0xff;                         /* "b" -> invalid UTF-8 */
    expect_reject(blob, len, "UTF-8");
    b[len - 1] = 0;                            /* embedded NUL */
    expect_reject(blob, len, "UTF-8");
    b[len - 1] = 'b';
    b[len - 3] = 0;                            /* length 0 */
    expect_reject(blob, len, "length 0");
    free(blob);

    rng_t r = {8};
    const int64_t dims[] = {3, 2};
    const aas_act_t acts[] = {AAS_ACT_SOFTMAX};
    net_t net;
    net_init(&net, &r, 1, dims, acts);
    void *out = NULL;
    size_t out_len = 0;
    char why[128];
    const char *three[] = {"x", "y", "z"};
    assert_int_equal(aas_mlp_serialize(net.layers, 1, three, 3, &out, &out_len,
                                       why, sizeof(why)), AAS_ERR_INVAL);
    char longname[AAS_MLP_MAX_LABEL_LEN + 2];
    memset(longname, 'q', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *two[] = {"x", longname};
    assert_int_equal(aas_mlp_serialize(net.layers, 1, two, 2, &out, &out_len,
                                       why, sizeof(why)), AAS_ERR_INVAL);
    longname[AAS_MLP_MAX_LABEL_LEN] = '\0';    /* exactly at the limit */
    assert_int_equal(aas_mlp_serialize(net.layers, 1, two, 2, &out, &out_len,
                                       why, sizeof(why)), AAS_ERR_OK);
    aas_model_t *m = NULL;
    assert_int_equal(aas_model_load(out, out_len, &m, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(aas_model_label_name(m, 1), longname);
    aas_model_destroy(m);
    free(out);
    net_free(&net);
}

/* ---- the shipped digits model ---- */

static char *data_path(const char *name) {
    const char *dir = getenv("AAS_DATA_DIR");
    char buf[4096];
    if (dir) {
        snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    } else { /* CMake compiles with the absolute source path */
        const char *slash = strrchr(__FILE__, '/');
        int n = slash ? (int)(slash - __FILE__) : 1;
        snprintf(buf, sizeof(buf), "%.*s/../data/%s", n, slash ? __FILE__ : ".",
                 name);
    }
    return strdup(buf);
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) *len = n;
    return buf;
}

#define DIGITS_ROWS 360
#define DIGITS_COLS 66 /* 64 pixels (0..16), label, numpy's prediction */

static void digits_model_agrees_with_numpy_on_held_out_rows(void **state) {
    (void)state;
    char *mpath = data_path("digits-mlp.aasm"), *tpath = data_path("digits-test.csv");
    size_t mlen = 0;
    void *mblob = read_file(mpath, &mlen);
    FILE *f = fopen(tpath, "r");
    free(mpath);
    free(tpath);
    if (!mblob || !f) {
        free(mblob);
        if (f) fclose(f);
        print_message("digits data not found; set AAS_DATA_DIR\n");
        skip();
    }
    static float x[DIGITS_ROWS * 64], y[DIGITS_ROWS * 10], y1[10];
    int label[DIGITS_ROWS], numpy_pred[DIGITS_ROWS];
    for (int r = 0; r < DIGITS_ROWS; r++) {
        for (int c = 0; c < DIGITS_COLS; c++) {
            int v;
            if (fscanf(f, c ? ",%d" : "%d", &v) != 1)
                fail_msg("digits-test.csv: row %d column %d unreadable", r, c);
            if (c < 64) x[r * 64 + c] = (float)v;
            else if (c == 64) label[r] = v;
            else numpy_pred[r] = v;
        }
    }
    fclose(f);

    aas_model_t *m = NULL;
    char why[256];
    aas_err_t err = aas_model_load(mblob, mlen, &m, why, sizeof(why));
    free(mblob);
    if (err) fail_msg("digits-mlp.aasm: %s", why);
    assert_int_equal(aas_model_input_dim(m), 64);
    assert_int_equal(aas_model_output_dim(m), 10);
    assert_int_equal(aas_model_is_classifier(m), 1);
    for (int i = 0; i < 10; i++) {
        char want[2] = {(char)('0' + i), '\0'};
        assert_string_equal(aas_model_label_name(m, i), want);
    }
    /* All rows at once, and one at a time (the demo's batch size). */
    assert_int_equal(aas_model_infer(m, x, DIGITS_ROWS, y, why, sizeof(why)),
                     AAS_ERR_OK);
    int correct = 0, numpy_correct = 0;
    for (int r = 0; r < DIGITS_ROWS; r++) {
        assert_int_equal(aas_model_infer(m, x + r * 64, 1, y1, why, sizeof(why)),
                         AAS_ERR_OK);
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (y[r * 10 + k] > y[r * 10 + best]) best = k;
        for (int k = 0; k < 10; k++) assert_float_equal(y1[k], y[r * 10 + k], 1e-6);
        if (best != numpy_pred[r])
            fail_msg("row %d: oneDNN predicts %d, numpy %d", r, best, numpy_pred[r]);
        correct += best == label[r];
        numpy_correct += numpy_pred[r] == label[r];
    }
    assert_int_equal(correct, numpy_correct);
    print_message("digits held-out accuracy: %d/%d = %.2f%%\n", correct,
                  DIGITS_ROWS, 100.0 * correct / DIGITS_ROWS);
    aas_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(infer_matches_reference_on_random_shapes),
        cmocka_unit_test(infer_matches_reference_at_extreme_dims),
        cmocka_unit_test(infer_reuses_cache_across_varying_batch_sizes),
        cmocka_unit_test(infer_rejects_bad_arguments),
        cmocka_unit_test(serialize_load_round_trip_keeps_shape_and_labels),
        cmocka_unit_test(load_rejects_truncation_at_every_length),
        cmocka_unit_test(load_rejects_wrong_magic),
        cmocka_unit_test(load_rejects_huge_declared_dims_before_allocating),
        cmocka_unit_test(load_rejects_nonfinite_parameters),
        cmocka_unit_test(load_rejects_softmax_in_hidden_layer),
        cmocka_unit_test(load_rejects_bad_labels),
        cmocka_unit_test(digits_model_agrees_with_numpy_on_held_out_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
