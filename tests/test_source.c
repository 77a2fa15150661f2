/*
 * test_source.c - training sources (worker/source.h) and the tabular rows
 * read from them (worker/trainer_rows.h), over the memory source: no
 * server needed.  The Redis data set source is tested in test_dataset.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "source.h"
#include "trainer_rows.h"

/* Load text through a memory source; the error text in why. */
static aas_err_t load(const char *text, int64_t max_rows, size_t max_bytes, aas_tensor_t *x,
                      aas_tensor_t *y, char *why, size_t why_size) {
    aas_src_t *src = NULL;
    aas_err_t err = aas_src_open_memory(text, strlen(text), AAS_SRC_CSV, &src, why,
                                        why_size);
    assert_int_equal(err, AAS_ERR_OK);
    err = aas_trainer_rows_load(src, max_rows, max_bytes, x, y, why, why_size);
    aas_src_destroy(src);
    return err;
}

static void memory_source_yields_lines_without_newlines(void **state) {
    (void)state;
    const char *text = "a\r\nbb\n\nccc";
    aas_src_t *src;
    char why[256];
    assert_int_equal(aas_src_open_memory(text, strlen(text), AAS_SRC_TSV, &src, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    const char *want[] = {"a", "bb", "", "ccc"};
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(aas_src_rewind(src, 7, why, sizeof(why)), AAS_ERR_OK);
        for (int i = 0; i < 4; i++) {
            const char *l;
            size_t n;
            int eof;
            assert_int_equal(aas_src_next(src, &l, &n, &eof, why, sizeof(why)), AAS_ERR_OK);
            assert_int_equal(eof, 0);
            assert_int_equal(n, strlen(want[i]));
            assert_memory_equal(l, want[i], n);
        }
        const char *l;
        size_t n;
        int eof;
        assert_int_equal(aas_src_next(src, &l, &n, &eof, why, sizeof(why)), AAS_ERR_OK);
        assert_int_equal(eof, 1);
    }
    aas_src_destroy(src);
}

static void rows_load_reads_features_and_labels(void **state) {
    (void)state;
    aas_tensor_t x, y;
    char why[256];
    const char *text = "# a comment\n1, 2.5, 0\n\n  -3,4e2,7\r\n0.125,0,65535";
    assert_int_equal(load(text, 100, 1 << 20, &x, &y, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(x.dtype, AAS_DTYPE_F32);
    assert_int_equal(x.rank, 2);
    assert_int_equal(x.shape[0], 3);
    assert_int_equal(x.shape[1], 2);
    assert_int_equal(x.nbytes, 3 * 2 * sizeof(float));
    assert_int_equal(y.dtype, AAS_DTYPE_I32);
    assert_int_equal(y.rank, 1);
    assert_int_equal(y.shape[0], 3);
    const float want_x[] = {1, 2.5f, -3, 400, 0.125f, 0};
    const int32_t want_y[] = {0, 7, 65535};
    assert_memory_equal(x.data, want_x, sizeof(want_x));
    assert_memory_equal(y.data, want_y, sizeof(want_y));
    aas_tensor_clear(&x);
    aas_tensor_clear(&y);
}

/* Each bad input is refused with the error and words that say why. */
static void rows_load_refuses_bad_lines_naming_them(void **state) {
    (void)state;
    struct {
        const char *text;
        aas_err_t err;
        const char *words;
    } cases[] = {
        {"1,2,0\n3,4,5,1\n", AAS_ERR_SHAPE, "line 2 has more than 3 values"},
        {"1,2,0\n3,1\n", AAS_ERR_SHAPE, "line 2 has 2 values, the first row has 3"},
        {"1,2,0\n\n3,nan,1\n", AAS_ERR_NONFINITE, "line 3, value 2: not a finite float"},
        {"1,inf,0\n", AAS_ERR_NONFINITE, "line 1, value 2: not a finite float"},
        {"1,1e39,0\n", AAS_ERR_NONFINITE, "line 1, value 2"},
        {"a,b,label\n1,2,0\n", AAS_ERR_INVAL, "line 1, value 1: not a number"},
        {"1,2,0\n1;2,0\n", AAS_ERR_INVAL, "line 2: expected ','"},
        {"1,2,0.5\n", AAS_ERR_INVAL, "line 1: label 0.5 is not a class index"},
        {"1,2,-1\n", AAS_ERR_INVAL, "label -1 is not a class index"},
        {"1,2,65536\n", AAS_ERR_INVAL, "label 65536"},
        {"7\n", AAS_ERR_SHAPE, "line 1: a row needs features and a label"},
        {"# only a comment\n\n", AAS_ERR_INVAL, "no data rows"},
        {"", AAS_ERR_INVAL, "no data rows"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        aas_tensor_t x = {0}, y = {0};
        char why[256] = "";
        aas_err_t err = load(cases[i].text, 100, 1 << 20, &x, &y, why, sizeof(why));
        if (err != cases[i].err || !strstr(why, cases[i].words))
            fail_msg("case %zu: got %s \"%s\", want %s \"%s\"", i, aas_err_name(err), why,
                     aas_err_name(cases[i].err), cases[i].words);
        assert_null(x.data); /* out-params untouched on failure */
        assert_null(y.data);
    }
}

static void rows_load_checks_limits_before_allocating(void **state) {
    (void)state;
    aas_tensor_t x = {0}, y = {0};
    char why[256];
    const char *text = "1,2,0\n3,4,1\n5,6,0\n";
    assert_int_equal(load(text, 2, 1 << 20, &x, &y, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 2 rows"));
    /* 3 rows x 3 values x 4 bytes = 36 bytes */
    assert_int_equal(load(text, 100, 35, &x, &y, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "need 36 bytes, the limit is 35"));
    assert_int_equal(load(text, 3, 36, &x, &y, why, sizeof(why)), AAS_ERR_OK);
    aas_tensor_clear(&x);
    aas_tensor_clear(&y);
}

static void rows_load_refuses_a_tsv_source(void **state) {
    (void)state;
    const char *text = "greeting\thello\n";
    aas_src_t *src;
    char why[256];
    assert_int_equal(aas_src_open_memory(text, strlen(text), AAS_SRC_TSV, &src, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    aas_tensor_t x = {0}, y = {0};
    assert_int_equal(aas_trainer_rows_load(src, 10, 1 << 20, &x, &y, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "not CSV rows"));
    aas_src_destroy(src);
}

/* Many rows, generated and read back exactly (float-exact values). */
static void rows_load_many_rows_round_trip(void **state) {
    (void)state;
    enum { N = 20000, D = 5 };
    size_t cap = (size_t)N * 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int r = 0; r < N; r++) {
        for (int d = 0; d < D; d++)
            len += (size_t)snprintf(text + len, cap - len, "%d.25,", r * D + d);
        len += (size_t)snprintf(text + len, cap - len, "%d\n", r % 10);
    }
    aas_tensor_t x, y;
    char why[256];
    assert_int_equal(load(text, N, (size_t)N * (D + 1) * 4, &x, &y, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(x.shape[0], N);
    assert_int_equal(x.shape[1], D);
    const float *xv = x.data;
    const int32_t *yv = y.data;
    for (int r = 0; r < N; r++) {
        assert_int_equal(yv[r], r % 10);
        for (int d = 0; d < D; d++) assert_true(xv[r * D + d] == (float)(r * D + d) + 0.25f);
    }
    aas_tensor_clear(&x);
    aas_tensor_clear(&y);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_source_yields_lines_without_newlines),
        cmocka_unit_test(rows_load_reads_features_and_labels),
        cmocka_unit_test(rows_load_refuses_bad_lines_naming_them),
        cmocka_unit_test(rows_load_checks_limits_before_allocating),
        cmocka_unit_test(rows_load_refuses_a_tsv_source),
        cmocka_unit_test(rows_load_many_rows_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
