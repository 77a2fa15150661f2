/*
 * test_precision.c - batch-size buckets and reduced precision of the MLP
 * kind (docs/precision.md): any batch size gives each row the result it
 * gets in a full bucket, bf16 and int8 stay close to f32 (on the shipped digits model
 * and on a random 784-512-512-10), going back to f32 is exact, non-finite
 * rows stay contained, text models pass the precision to their MLP.
 *
 * Registered twice: as is, and with ONEDNN_MAX_CPU_ISA=AVX2, where
 * set_precision must refuse bf16 and int8 naming the missing ISA (and the
 * reduced-precision cases skip).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "featurize.h"
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

static float rng_unit(rng_t *r) { /* [-1, 1) */
    return (float)((double)(rng_next(r) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* A random MLP (variance ~1/in weights) loaded as a model. */
static aas_model_t *random_model(uint64_t seed, size_t n, const int64_t *dims,
                                 const aas_act_t *acts) {
    rng_t r = {seed};
    aas_mlp_layer_t layers[8];
    float *w[8], *b[8];
    for (size_t i = 0; i < n; i++) {
        int64_t in = dims[i], out = dims[i + 1];
        w[i] = malloc((size_t)(in * out) * sizeof(float));
        b[i] = malloc((size_t)out * sizeof(float));
        assert_non_null(w[i]);
        assert_non_null(b[i]);
        float scale = (float)sqrt(3.0 / (double)in);
        for (int64_t k = 0; k < in * out; k++) w[i][k] = scale * rng_unit(&r);
        for (int64_t k = 0; k < out; k++) b[i][k] = 0.1f * rng_unit(&r);
        layers[i] = (aas_mlp_layer_t){in, out, acts[i], w[i], b[i]};
    }
    void *blob = NULL;
    size_t len = 0;
    char why[256] = "";
    assert_int_equal(aas_mlp_serialize(layers, n, NULL, 0, &blob, &len, why, sizeof(why)),
                     AAS_ERR_OK);
    for (size_t i = 0; i < n; i++) {
        free(w[i]);
        free(b[i]);
    }
    aas_model_t *m = NULL;
    aas_err_t err = aas_model_load(blob, len, &m, why, sizeof(why));
    free(blob);
    if (err) fail_msg("load: %s", why);
    return m;
}

static float *random_rows(uint64_t seed, int64_t rows, int64_t dim) {
    rng_t r = {seed};
    float *x = malloc((size_t)(rows * dim) * sizeof(float));
    assert_non_null(x);
    for (int64_t k = 0; k < rows * dim; k++) x[k] = rng_unit(&r);
    return x;
}

/* Does the hardware itself (cpuid, not oneDNN) have what p needs? */
static int cpu_has(aas_precision_t p) {
    __builtin_cpu_init();
    if (p == AAS_PRECISION_BF16) return __builtin_cpu_supports("avx512bf16");
    if (p == AAS_PRECISION_INT8)
        return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni");
    return 1;
}

/* Switch m to p; 0 (the caller skips) when the CPU lacks it (an AVX2-only
 * CPU, or one lowered with ONEDNN_MAX_CPU_ISA), a failure when the CPU has
 * it and the model still refuses. */
static int use_precision(aas_model_t *m, aas_precision_t p) {
    char why[512] = "";
    aas_err_t err = aas_model_set_precision(m, p, why, sizeof(why));
    if (err == AAS_ERR_OK) {
        assert_int_equal(aas_model_precision(m), p);
        return 1;
    }
    if (err == AAS_ERR_INVAL && (getenv("ONEDNN_MAX_CPU_ISA") || !cpu_has(p))) {
        print_message("%s not run here: %s\n", aas_precision_name(p), why);
        return 0;
    }
    fail_msg("set_precision %s: %s: %s", aas_precision_name(p), aas_err_name(err), why);
    return 0;
}

static void infer_ok(aas_model_t *m, const float *x, int64_t rows, float *y) {
    char why[256] = "";
    aas_err_t err = aas_model_infer(m, x, rows, y, why, sizeof(why));
    if (err) fail_msg("infer %lld rows: %s", (long long)rows, why);
}

static int argmax(const float *p, int64_t n) {
    int best = 0;
    for (int64_t k = 1; k < n; k++)
        if (p[k] > p[best]) best = (int)k;
    return best;
}

/* ---- names and arguments ---- */

static void precision_names_round_trip(void **state) {
    (void)state;
    for (int p = AAS_PRECISION_F32; p <= AAS_PRECISION_INT8; p++) {
        aas_precision_t back = AAS_PRECISION_F32;
        assert_int_equal(aas_precision_parse(aas_precision_name((aas_precision_t)p), &back), 0);
        assert_int_equal(back, p);
    }
    assert_string_equal(aas_precision_name(AAS_PRECISION_BF16), "bf16");
    aas_precision_t out = AAS_PRECISION_INT8;
    assert_int_equal(aas_precision_parse("fp16", &out), -1);
    assert_int_equal(aas_precision_parse("F32", &out), -1);
    assert_int_equal(aas_precision_parse(NULL, &out), -1);
    assert_int_equal(out, AAS_PRECISION_INT8); /* untouched on failure */
    assert_string_equal(aas_precision_name((aas_precision_t)7), "?");

    const int64_t dims[] = {5, 3};
    const aas_act_t acts[] = {AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(1, 1, dims, acts);
    assert_int_equal(aas_model_precision(m), AAS_PRECISION_F32);
    char why[256] = "";
    assert_int_equal(aas_model_set_precision(m, (aas_precision_t)3, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "unknown precision"));
    assert_int_equal(aas_model_set_precision(NULL, AAS_PRECISION_F32, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_model_set_precision(m, AAS_PRECISION_F32, NULL, 0), AAS_ERR_OK);
    aas_model_destroy(m);
}

/* ---- buckets ---- */

/* The documented bucket of n rows (model.h). */
static int64_t bucket_of(int64_t n) {
    if (n <= 8) return n;
    if (n >= 256) return 256;
    int bits = 0;
    for (uint64_t v = (uint64_t)(n - 1); v; v >>= 1) bits++;
    int64_t step = (int64_t)1 << (bits - 3);
    return (n + step - 1) / step * step;
}

/* Every batch size (partial buckets, exact ones, chunks above 256):
 *  - bit-identical to the same rows inside a full batch of its bucket (the
 *    same primitive; rows never interact; padding is discarded);
 *  - within 1e-5 of the whole 600-row run, whatever the bucket (another
 *    bucket may pick another kernel: on AVX2 one row runs a gemv).  On
 *    this project's AVX-512 machine these are bit-identical too. */
static void check_sizes(aas_model_t *m, const char *what) {
    const int64_t total = 600, in = aas_model_input_dim(m), out = aas_model_output_dim(m);
    float *x = random_rows(7, total, in);
    float *ref = malloc((size_t)(total * out) * sizeof(float));
    float *y = malloc((size_t)(total * out) * sizeof(float));
    float *full = malloc((size_t)(256 * out) * sizeof(float));
    assert_non_null(ref);
    assert_non_null(y);
    assert_non_null(full);
    infer_ok(m, x, total, ref);
    int64_t sizes[80];
    size_t n_sizes = 0;
    for (int64_t n = 1; n <= 70; n++) sizes[n_sizes++] = n;
    const int64_t big[] = {100, 129, 255, 256, 257, 300, 513, 600};
    for (size_t i = 0; i < sizeof(big) / sizeof(*big); i++) sizes[n_sizes++] = big[i];
    for (size_t i = 0; i < n_sizes; i++) {
        int64_t n = sizes[i], b = bucket_of(n);
        for (int64_t start = 0; start + n <= total; start += n) {
            infer_ok(m, x + start * in, n, y + start * out);
            if (n < 256 && start + b <= total) {
                infer_ok(m, x + start * in, b, full);
                if (memcmp(y + start * out, full, (size_t)(n * out) * sizeof(float)))
                    fail_msg("%s: %lld rows at row %lld differ from a full bucket of %lld",
                             what, (long long)n, (long long)start, (long long)b);
            }
            for (int64_t k = start * out; k < (start + n) * out; k++)
                if (!(fabsf(y[k] - ref[k]) <= 1e-5f * fabsf(ref[k]) + 1e-6f))
                    fail_msg("%s: %lld rows at row %lld: output %lld is %.9g, %.9g in the "
                             "600-row run",
                             what, (long long)n, (long long)start, (long long)k, (double)y[k],
                             (double)ref[k]);
            if (n > 8 && start > 3 * n) break; /* enough offsets for big sizes */
        }
    }
    free(x);
    free(ref);
    free(y);
    free(full);
}

static void every_batch_size_gives_each_row_its_result(void **state) {
    (void)state;
    const int64_t dims[] = {37, 50, 21, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_TANH, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(2, 3, dims, acts);
    check_sizes(m, "f32");
    if (use_precision(m, AAS_PRECISION_BF16)) check_sizes(m, "bf16");
    if (use_precision(m, AAS_PRECISION_INT8)) check_sizes(m, "int8");
    aas_model_destroy(m);
}

/* A partial bucket after a bigger batch of NaN: the stale padding rows do
 * not leak into the real ones. */
static void partial_bucket_ignores_stale_padding(void **state) {
    (void)state;
    const int64_t dims[] = {37, 64, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(3, 2, dims, acts);
    float *x = random_rows(8, 40, 37), *nan_rows = malloc(40 * 37 * sizeof(float));
    float want[33 * 10], got[33 * 10], junk[40 * 10];
    assert_non_null(nan_rows);
    for (int k = 0; k < 40 * 37; k++) nan_rows[k] = NAN;
    for (int p = AAS_PRECISION_F32; p <= AAS_PRECISION_INT8; p++) {
        if (!use_precision(m, (aas_precision_t)p)) continue;
        infer_ok(m, x, 33, want);
        infer_ok(m, nan_rows, 40, junk);
        infer_ok(m, x, 33, got);
        assert_memory_equal(got, want, sizeof(want));
    }
    free(x);
    free(nan_rows);
    aas_model_destroy(m);
}

/* Once its buckets are built a model stops growing: inference allocates
 * nothing of its own. */
static void footprint_stops_growing_once_buckets_are_built(void **state) {
    (void)state;
    const int64_t dims[] = {37, 64, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(4, 2, dims, acts);
    float *x = random_rows(9, 300, 37), *y = malloc(300 * 10 * sizeof(float));
    assert_non_null(y);
    size_t loaded = aas_model_footprint(m);
    for (int64_t n = 1; n <= 256; n++) infer_ok(m, x, n, y);
    size_t warm = aas_model_footprint(m);
    assert_true(warm > loaded);
    rng_t r = {5};
    for (int i = 0; i < 200; i++) infer_ok(m, x, 1 + (int64_t)(rng_next(&r) % 300), y);
    assert_int_equal(aas_model_footprint(m), warm);

    /* The same buckets in another order: the same footprint. */
    aas_model_t *fresh = random_model(4, 2, dims, acts);
    for (int64_t n = 256; n >= 1; n--) infer_ok(fresh, x, n, y);
    assert_int_equal(aas_model_footprint(fresh), warm);
    aas_model_destroy(fresh);

    /* A precision change drops the built buckets and converted weights. */
    if (use_precision(m, AAS_PRECISION_INT8)) {
        size_t one = aas_model_footprint(m); /* set_precision built bucket 1 */
        assert_true(one < warm);
        for (int64_t n = 1; n <= 256; n++) infer_ok(m, x, n, y);
        size_t warm8 = aas_model_footprint(m);
        for (int i = 0; i < 50; i++) infer_ok(m, x, 1 + (int64_t)(rng_next(&r) % 300), y);
        assert_int_equal(aas_model_footprint(m), warm8);
    }
    free(x);
    free(y);
    aas_model_destroy(m);
}

/* oneDNN plans a primitive for the OpenMP threads of the moment: after a
 * change of thread count the buckets are rebuilt, results unchanged. */
static void thread_count_change_keeps_results(void **state) {
    (void)state;
    const int64_t dims[] = {64, 128, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(9, 2, dims, acts);
    float *x = random_rows(13, 64, 64), one[64 * 10], two[64 * 10];
    int old = omp_get_max_threads();
    for (int p = AAS_PRECISION_F32; p <= AAS_PRECISION_INT8; p++) {
        if (!use_precision(m, (aas_precision_t)p)) continue;
        size_t fp = 0;
        for (int round = 0; round < 2; round++) { /* the second round grows nothing */
            omp_set_num_threads(1);
            infer_ok(m, x, 64, one);
            omp_set_num_threads(2);
            infer_ok(m, x, 64, two);
            for (int k = 0; k < 64 * 10; k++) assert_float_equal(one[k], two[k], 1e-6);
            if (round) assert_int_equal(aas_model_footprint(m), fp);
            fp = aas_model_footprint(m);
        }
    }
    omp_set_num_threads(old);
    free(x);
    aas_model_destroy(m);
}

/* ---- reduced precision against f32 ---- */

static char *data_path(const char *name) {
    const char *dir = getenv("AAS_DATA_DIR");
    char buf[4096];
    if (dir) {
        snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    } else { /* CMake compiles with the absolute source path */
        const char *slash = strrchr(__FILE__, '/');
        int n = slash ? (int)(slash - __FILE__) : 1;
        snprintf(buf, sizeof(buf), "%.*s/../data/%s", n, slash ? __FILE__ : ".", name);
    }
    return strdup(buf);
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
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

/* Agreement of p's outputs with f32's on rows x classes probabilities. */
typedef struct {
    int agree;          /* rows with the same argmax */
    int correct;        /* rows whose argmax is the label (labels given) */
    double max_diff;    /* largest |p - p_f32| over all outputs */
} agreement_t;

static agreement_t compare(const float *y, const float *f32, const int *labels, int rows,
                           int classes) {
    agreement_t a = {0, 0, 0.0};
    for (int r = 0; r < rows; r++) {
        int best = argmax(y + r * classes, classes);
        a.agree += best == argmax(f32 + r * classes, classes);
        if (labels) a.correct += best == labels[r];
        for (int k = 0; k < classes; k++) {
            double d = fabs((double)y[r * classes + k] - f32[r * classes + k]);
            a.max_diff = d > a.max_diff ? d : a.max_diff;
        }
    }
    return a;
}

#define DIGITS_ROWS 360

/* Tolerances, on the 360 held-out digits (probabilities):
 *   bf16: argmax as f32 on >= 99 % of rows, |p - p_f32| <= 0.05
 *   int8: argmax as f32 on >= 98 % of rows, |p - p_f32| <= 0.10
 *   both: accuracy at most 1 point (4 rows) below f32's. */
static void bf16_and_int8_stay_close_to_f32_on_digits(void **state) {
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
    static float x[DIGITS_ROWS * 64], f32[DIGITS_ROWS * 10], y[DIGITS_ROWS * 10];
    int label[DIGITS_ROWS];
    for (int r = 0; r < DIGITS_ROWS; r++)
        for (int c = 0; c < 66; c++) { /* 64 pixels, label, numpy's prediction */
            int v;
            if (fscanf(f, c ? ",%d" : "%d", &v) != 1)
                fail_msg("digits-test.csv: row %d column %d unreadable", r, c);
            if (c < 64) x[r * 64 + c] = (float)v;
            else if (c == 64) label[r] = v;
        }
    fclose(f);
    aas_model_t *m = NULL;
    char why[256];
    if (aas_model_load(mblob, mlen, &m, why, sizeof(why))) fail_msg("digits: %s", why);
    free(mblob);
    infer_ok(m, x, DIGITS_ROWS, f32);
    agreement_t base = compare(f32, f32, label, DIGITS_ROWS, 10);
    const struct {
        aas_precision_t p;
        int min_agree;
        double max_diff;
    } cases[] = {{AAS_PRECISION_BF16, 357, 0.05}, {AAS_PRECISION_INT8, 353, 0.10}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (!use_precision(m, cases[i].p)) continue;
        infer_ok(m, x, DIGITS_ROWS, y);
        agreement_t a = compare(y, f32, label, DIGITS_ROWS, 10);
        print_message("digits %s: argmax as f32 on %d/%d rows, max |dp| %.4f, accuracy "
                      "%d/%d (f32 %d)\n",
                      aas_precision_name(cases[i].p), a.agree, DIGITS_ROWS, a.max_diff,
                      a.correct, DIGITS_ROWS, base.correct);
        assert_true(a.agree >= cases[i].min_agree);
        assert_true(a.max_diff <= cases[i].max_diff);
        assert_true(a.correct >= base.correct - 4);
        /* One row at a time, as the demo sends them: the same result. */
        for (int r = 0; r < DIGITS_ROWS; r += 37) {
            float one[10];
            infer_ok(m, x + r * 64, 1, one);
            for (int k = 0; k < 10; k++) assert_float_equal(one[k], y[r * 10 + k], 1e-6);
        }
    }
    /* Back to f32: bit-identical to a model that never left it. */
    assert_true(use_precision(m, AAS_PRECISION_F32));
    infer_ok(m, x, DIGITS_ROWS, y);
    assert_memory_equal(y, f32, sizeof(f32));
    aas_model_destroy(m);
}

/* The benchmark's shape with random weights: the logits are close to each
 * other (random weights, random inputs), the hardest case for argmax. */
static void bf16_and_int8_stay_close_to_f32_at_784_512_512_10(void **state) {
    (void)state;
    const int64_t dims[] = {784, 512, 512, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(6, 3, dims, acts);
    const int rows = 256;
    float *x = random_rows(10, rows, 784);
    float *f32 = malloc(rows * 10 * sizeof(float)), *y = malloc(rows * 10 * sizeof(float));
    assert_non_null(f32);
    assert_non_null(y);
    infer_ok(m, x, rows, f32);
    const struct {
        aas_precision_t p;
        int min_agree;
        double max_diff;
    } cases[] = {{AAS_PRECISION_BF16, 250, 0.01}, {AAS_PRECISION_INT8, 245, 0.01}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (!use_precision(m, cases[i].p)) continue;
        infer_ok(m, x, rows, y);
        agreement_t a = compare(y, f32, NULL, rows, 10);
        print_message("784-512-512-10 %s: argmax as f32 on %d/%d rows, max |dp| %.4f\n",
                      aas_precision_name(cases[i].p), a.agree, rows, a.max_diff);
        assert_true(a.agree >= cases[i].min_agree);
        assert_true(a.max_diff <= cases[i].max_diff);
    }
    assert_true(use_precision(m, AAS_PRECISION_F32));
    infer_ok(m, x, rows, y);
    assert_memory_equal(y, f32, rows * 10 * sizeof(float));
    free(x);
    free(f32);
    free(y);
    aas_model_destroy(m);
}

/* NaN/Inf rows: the other rows get their usual bits; under int8 the bad
 * rows come out all NaN (f32 and bf16 give whatever oneDNN propagates). */
static void nonfinite_rows_stay_contained(void **state) {
    (void)state;
    const int64_t dims[] = {37, 50, 10};
    const aas_act_t acts[] = {AAS_ACT_RELU, AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(7, 2, dims, acts);
    float *x = random_rows(11, 20, 37), *bad = malloc(20 * 37 * sizeof(float));
    float want[20 * 10], got[20 * 10];
    assert_non_null(bad);
    memcpy(bad, x, 20 * 37 * sizeof(float));
    bad[3 * 37 + 5] = NAN;
    bad[7 * 37 + 0] = INFINITY;
    bad[11 * 37 + 36] = -INFINITY;
    for (int p = AAS_PRECISION_F32; p <= AAS_PRECISION_INT8; p++) {
        if (!use_precision(m, (aas_precision_t)p)) continue;
        infer_ok(m, x, 20, want);
        infer_ok(m, bad, 20, got);
        for (int r = 0; r < 20; r++) {
            int is_bad = r == 3 || r == 7 || r == 11;
            if (!is_bad) assert_memory_equal(got + r * 10, want + r * 10, 10 * sizeof(float));
            else if (p == AAS_PRECISION_INT8)
                for (int k = 0; k < 10; k++) assert_true(isnan(got[r * 10 + k]));
        }
    }
    free(x);
    free(bad);
    aas_model_destroy(m);
}

/* ---- text models ---- */

static void text_model_sets_its_mlps_precision(void **state) {
    (void)state;
    enum { DIM = 64, CLASSES = 3 };
    static float w[CLASSES * DIM], b[CLASSES];
    for (int i = 0; i < CLASSES * DIM; i++) w[i] = (float)sin(i * 0.7) * 2.0f;
    for (int i = 0; i < CLASSES; i++) b[i] = 0.1f * (float)i;
    aas_mlp_layer_t layer = {DIM, CLASSES, AAS_ACT_SOFTMAX, w, b};
    void *mlp = NULL, *txt = NULL;
    size_t mlp_len = 0, txt_len = 0;
    char why[256] = "";
    assert_int_equal(aas_mlp_serialize(&layer, 1, NULL, 0, &mlp, &mlp_len, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_text_model_serialize(DIM, AAS_FEATURIZE_VERSION, mlp, mlp_len, &txt,
                                              &txt_len, why, sizeof(why)),
                     AAS_ERR_OK);
    free(mlp);
    aas_model_t *m = NULL;
    assert_int_equal(aas_model_load(txt, txt_len, &m, why, sizeof(why)), AAS_ERR_OK);
    free(txt);
    const char *texts[] = {"book a table for two", "hello there", "will it rain tomorrow"};
    size_t lens[3];
    for (int i = 0; i < 3; i++) lens[i] = strlen(texts[i]);
    float f32[3 * CLASSES], y[3 * CLASSES];
    assert_int_equal(aas_model_infer_text(m, texts, lens, 3, f32, why, sizeof(why)),
                     AAS_ERR_OK);
    for (int p = AAS_PRECISION_BF16; p <= AAS_PRECISION_INT8; p++) {
        if (!use_precision(m, (aas_precision_t)p)) continue;
        assert_int_equal(aas_model_infer_text(m, texts, lens, 3, y, why, sizeof(why)),
                         AAS_ERR_OK);
        for (int r = 0; r < 3; r++) {
            assert_int_equal(argmax(y + r * CLASSES, CLASSES), argmax(f32 + r * CLASSES, CLASSES));
            for (int k = 0; k < CLASSES; k++)
                assert_float_equal(y[r * CLASSES + k], f32[r * CLASSES + k], 0.05);
        }
    }
    assert_true(use_precision(m, AAS_PRECISION_F32));
    assert_int_equal(aas_model_infer_text(m, texts, lens, 3, y, why, sizeof(why)), AAS_ERR_OK);
    assert_memory_equal(y, f32, sizeof(f32));
    aas_model_destroy(m);
}

/* ---- a CPU without the instructions ---- */

static void missing_isa_is_refused_with_its_name(void **state) {
    (void)state;
    const char *isa = getenv("ONEDNN_MAX_CPU_ISA");
    if (!isa || strcmp(isa, "AVX2")) {
        print_message("runs under ONEDNN_MAX_CPU_ISA=AVX2 (ctest test_precision_avx2)\n");
        skip();
    }
    const int64_t dims[] = {37, 10};
    const aas_act_t acts[] = {AAS_ACT_SOFTMAX};
    aas_model_t *m = random_model(8, 1, dims, acts);
    float *x = random_rows(12, 4, 37), want[40], got[40];
    infer_ok(m, x, 4, want);
    char why[512] = "";
    assert_int_equal(aas_model_set_precision(m, AAS_PRECISION_BF16, why, sizeof(why)),
                     AAS_ERR_INVAL);
    print_message("bf16: %s\n", why);
    assert_non_null(strstr(why, "AVX-512 BF16"));
    assert_non_null(strstr(why, "AVX2"));
    assert_int_equal(aas_model_set_precision(m, AAS_PRECISION_INT8, why, sizeof(why)),
                     AAS_ERR_INVAL);
    print_message("int8: %s\n", why);
    assert_non_null(strstr(why, "VNNI"));
    assert_int_equal(aas_model_precision(m), AAS_PRECISION_F32);
    infer_ok(m, x, 4, got); /* still serving, at f32 */
    assert_memory_equal(got, want, sizeof(want));
    free(x);
    aas_model_destroy(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(precision_names_round_trip),
        cmocka_unit_test(every_batch_size_gives_each_row_its_result),
        cmocka_unit_test(partial_bucket_ignores_stale_padding),
        cmocka_unit_test(footprint_stops_growing_once_buckets_are_built),
        cmocka_unit_test(thread_count_change_keeps_results),
        cmocka_unit_test(bf16_and_int8_stay_close_to_f32_on_digits),
        cmocka_unit_test(bf16_and_int8_stay_close_to_f32_at_784_512_512_10),
        cmocka_unit_test(nonfinite_rows_stay_contained),
        cmocka_unit_test(text_model_sets_its_mlps_precision),
        cmocka_unit_test(missing_isa_is_refused_with_its_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
