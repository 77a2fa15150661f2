/* test_model_text.c - the AASTXT1 text classifier kind (docs/text.md):
 * round trip, malformed blobs refused, text in = featurize + MLP. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "featurize.h"
#include "model.h"

#define DIM 64
#define CLASSES 3

typedef struct {
    void *mlp, *txt;
    size_t mlp_len, txt_len;
} fixture_t;

/* A 64 -> 3 softmax layer with fixed pseudo-random weights and names. */
static int setup(void **state) {
    static float w[CLASSES * DIM], b[CLASSES];
    for (int i = 0; i < CLASSES * DIM; i++) w[i] = (float)sin(i * 0.7) * 2.0f;
    for (int i = 0; i < CLASSES; i++) b[i] = 0.1f * (float)i;
    aas_mlp_layer_t layer = {.in = DIM, .out = CLASSES, .act = AAS_ACT_SOFTMAX,
                             .weights = w, .bias = b};
    const char *names[CLASSES] = {"booking", "greeting", "weather"};
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    char why[256];
    if (aas_mlp_serialize(&layer, 1, names, CLASSES, &f->mlp, &f->mlp_len, why, sizeof(why)) ||
        aas_text_model_serialize(DIM, AAS_FEATURIZE_VERSION, f->mlp, f->mlp_len, &f->txt,
                                 &f->txt_len, why, sizeof(why))) {
        free(f->mlp);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    free(f->mlp);
    free(f->txt);
    free(f);
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static void round_trip_keeps_dims_names_and_kind(void **state) {
    fixture_t *f = *state;
    char why[256];
    assert_int_equal(f->txt_len, 28 + f->mlp_len);
    assert_memory_equal(f->txt, "AASTXT1\0", 8);
    assert_memory_equal((char *)f->txt + 28, f->mlp, f->mlp_len);
    aas_model_t *m = NULL;
    assert_int_equal(aas_model_load(f->txt, f->txt_len, &m, why, sizeof(why)), AAS_ERR_OK);
    assert_true(aas_model_takes_text(m));
    assert_int_equal(aas_model_input_dim(m), DIM);
    assert_int_equal(aas_model_output_dim(m), CLASSES);
    assert_true(aas_model_is_classifier(m));
    assert_string_equal(aas_model_label_name(m, 1), "greeting");
    assert_null(aas_model_label_name(m, CLASSES));
    assert_true(aas_model_footprint(m) > 0);
    aas_model_destroy(m);
}

static void infer_text_equals_featurize_then_mlp(void **state) {
    fixture_t *f = *state;
    char why[256];
    aas_model_t *txt = NULL, *mlp = NULL;
    assert_int_equal(aas_model_load(f->txt, f->txt_len, &txt, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_model_load(f->mlp, f->mlp_len, &mlp, why, sizeof(why)), AAS_ERR_OK);
    const char *texts[3] = {"Book a table for two", "hello there!", ""};
    size_t lens[3];
    float x[3 * DIM], want[3 * CLASSES], got[3 * CLASSES], again[3 * CLASSES];
    for (int r = 0; r < 3; r++) {
        lens[r] = strlen(texts[r]);
        assert_int_equal(aas_featurize_text(texts[r], lens[r], x + r * DIM, DIM), AAS_ERR_OK);
    }
    assert_int_equal(aas_model_infer(mlp, x, 3, want, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_model_infer_text(txt, texts, lens, 3, got, why, sizeof(why)),
                     AAS_ERR_OK);
    for (int i = 0; i < 3 * CLASSES; i++) assert_float_equal(got[i], want[i], 1e-6);
    /* The tensor entry point takes already featurized rows. */
    assert_int_equal(aas_model_infer(txt, x, 3, again, why, sizeof(why)), AAS_ERR_OK);
    for (int i = 0; i < 3 * CLASSES; i++) assert_float_equal(again[i], want[i], 1e-6);
    /* One text at a time after a batch of three (scratch reuse). */
    assert_int_equal(aas_model_infer_text(txt, texts + 1, lens + 1, 1, got, why, sizeof(why)),
                     AAS_ERR_OK);
    for (int i = 0; i < CLASSES; i++) assert_float_equal(got[i], want[CLASSES + i], 1e-6);
    aas_model_destroy(txt);
    aas_model_destroy(mlp);
}

static void tensor_model_refuses_text(void **state) {
    fixture_t *f = *state;
    char why[256] = "";
    aas_model_t *mlp = NULL;
    assert_int_equal(aas_model_load(f->mlp, f->mlp_len, &mlp, why, sizeof(why)), AAS_ERR_OK);
    assert_false(aas_model_takes_text(mlp));
    const char *texts[1] = {"hello"};
    size_t lens[1] = {5};
    float out[CLASSES];
    assert_int_equal(aas_model_infer_text(mlp, texts, lens, 1, out, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    assert_non_null(strstr(why, "takes a tensor, not text"));
    aas_model_destroy(mlp);
}

/* Load a patched copy of the fixture's blob; expect AAS_ERR_MODEL_FORMAT
 * with `want` in the reason. */
static void expect_refused(const void *blob, size_t len, const char *want) {
    char why[256] = "";
    aas_model_t *m = NULL;
    assert_int_equal(aas_model_load(blob, len, &m, why, sizeof(why)), AAS_ERR_MODEL_FORMAT);
    assert_null(m);
    if (!strstr(why, want)) fprintf(stderr, "reason '%s' lacks '%s'\n", why, want);
    assert_non_null(strstr(why, want));
}

static void malformed_blobs_are_refused_with_a_reason(void **state) {
    fixture_t *f = *state;
    unsigned char *b = malloc(f->txt_len + 8);
    assert_non_null(b);
#define RESET() memcpy(b, f->txt, f->txt_len)
    RESET();
    expect_refused(b, 20, "truncated header");
    put_u32(b + 8, 2);
    expect_refused(b, f->txt_len, "featurizer version 2");
    RESET();
    put_u32(b + 12, 48);
    expect_refused(b, f->txt_len, "not a power of two");
    RESET();
    put_u32(b + 16, 1);
    expect_refused(b, f->txt_len, "unknown flags");
    RESET();
    expect_refused(b, f->txt_len - 1, "follow the header");   /* truncated model */
    memset(b + f->txt_len, 0, 8);
    expect_refused(b, f->txt_len + 8, "follow the header");   /* trailing bytes */
    put_u32(b + 12, 128);
    expect_refused(b, f->txt_len, "takes 64 inputs, featurizer gives 128");
    RESET();
    b[28] = 'X'; /* the embedded blob's magic */
    expect_refused(b, f->txt_len, "unknown model format");
    free(b);
    /* A text model cannot embed another text model. */
    size_t n = 28 + f->txt_len;
    unsigned char *nest = malloc(n);
    assert_non_null(nest);
    memcpy(nest, f->txt, 28);
    for (int k = 0; k < 8; k++) nest[20 + k] = (unsigned char)((uint64_t)f->txt_len >> (8 * k));
    memcpy(nest + 28, f->txt, f->txt_len);
    expect_refused(nest, n, "takes text itself");
    free(nest);
#undef RESET
}

static void serialize_refuses_what_load_would_refuse(void **state) {
    fixture_t *f = *state;
    char why[256];
    void *blob = NULL;
    size_t len = 0;
    assert_int_equal(aas_text_model_serialize(DIM, 99, f->mlp, f->mlp_len, &blob, &len, why,
                                              sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_text_model_serialize(100, AAS_FEATURIZE_VERSION, f->mlp, f->mlp_len,
                                              &blob, &len, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_text_model_serialize(128, AAS_FEATURIZE_VERSION, f->mlp, f->mlp_len,
                                              &blob, &len, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "taking 128 inputs"));
    assert_int_equal(aas_text_model_serialize(DIM, AAS_FEATURIZE_VERSION, f->txt, f->txt_len,
                                              &blob, &len, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_null(blob);
    assert_int_equal(len, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_dims_names_and_kind),
        cmocka_unit_test(infer_text_equals_featurize_then_mlp),
        cmocka_unit_test(tensor_model_refuses_text),
        cmocka_unit_test(malformed_blobs_are_refused_with_a_reason),
        cmocka_unit_test(serialize_refuses_what_load_would_refuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
