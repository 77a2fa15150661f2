/* test_featurize.c - the text featurizer (docs/text.md): hash, tokens,
 * bigrams, counts, normalisation, limits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "featurize.h"

#define DIM 4096
#define BIG (1 << 20) /* few collisions among a handful of features */

static float *feat(const char *text, size_t len, int64_t dim) {
    float *v = malloc((size_t)dim * sizeof(float));
    assert_non_null(v);
    assert_int_equal(aas_featurize_text(text, len, v, dim), AAS_ERR_OK);
    return v;
}

static int nonzero(const float *v, int64_t dim) {
    int n = 0;
    for (int64_t i = 0; i < dim; i++) n += v[i] != 0.0f;
    return n;
}

static uint32_t h32(const char *s) {
    return aas_featurize_fnv1a(AAS_FEATURIZE_FNV_OFFSET, s, strlen(s));
}

static void fnv1a_matches_reference_vectors(void **state) {
    (void)state;
    /* FNV-1a 32-bit test vectors (draft-eastlake-fnv). */
    assert_int_equal(h32(""), 0x811c9dc5u);
    assert_int_equal(h32("a"), 0xe40c292cu);
    assert_int_equal(h32("foobar"), 0xbf9cf968u);
    /* The vectors docs/text.md lists. */
    assert_int_equal(h32("hello"), 0x4f9f2cabu);
    assert_int_equal(h32("world"), 0x37a3e893u);
    assert_int_equal(h32("hello world"), 0xd58b3fa7u);
    /* Streaming: hash("w1 w2") continues from hash("w1 "). */
    uint32_t h = aas_featurize_fnv1a(h32("hello"), " ", 1);
    assert_int_equal(aas_featurize_fnv1a(h, "world", 5), 0xd58b3fa7u);
}

static void hello_world_fills_documented_buckets(void **state) {
    (void)state;
    float *v = feat("Hello, World!", 13, DIM);
    float w = 1.0f / sqrtf(3.0f);
    assert_int_equal(nonzero(v, DIM), 3);
    assert_float_equal(v[3243], w, 1e-6); /* "hello" */
    assert_float_equal(v[2195], w, 1e-6); /* "world" */
    assert_float_equal(v[4007], w, 1e-6); /* "hello world" */
    free(v);
}

static void case_and_punctuation_do_not_matter(void **state) {
    (void)state;
    float *a = feat("Hello, World!", 13, DIM), *b = feat("hello world", 11, DIM);
    float *c = feat("HELLO--world...", 15, DIM);
    assert_memory_equal(a, b, DIM * sizeof(float));
    assert_memory_equal(a, c, DIM * sizeof(float));
    free(a);
    free(b);
    free(c);
}

static void apostrophes_and_digits_are_token_bytes(void **state) {
    (void)state;
    float *a = feat("don't", 5, BIG), *b = feat("don t", 5, BIG), *c = feat("room 42", 7, BIG);
    assert_int_equal(nonzero(a, BIG), 1);
    assert_true(a[h32("don't") & (BIG - 1)] > 0.99f);
    assert_int_equal(nonzero(b, BIG), 3); /* don, t, "don t" */
    assert_true(c[h32("42") & (BIG - 1)] > 0);
    assert_true(c[h32("room 42") & (BIG - 1)] > 0);
    free(a);
    free(b);
    free(c);
}

static void non_ascii_bytes_stay_inside_tokens(void **state) {
    (void)state;
    /* "Café" in UTF-8: 'C' is lower-cased, the two bytes of 'é' are kept. */
    float *v = feat("Caf\xc3\xa9", 5, DIM);
    assert_int_equal(nonzero(v, DIM), 1);
    assert_float_equal(v[73], 1.0f, 1e-6); /* fnv1a("caf\xc3\xa9") & 4095 */
    /* Non-ASCII capitals are not folded: "É" and "é" differ. */
    float *a = feat("\xc3\x89t\xc3\xa9", 5, BIG), *b = feat("\xc3\xa9t\xc3\xa9", 5, BIG);
    assert_memory_not_equal(a, b, (size_t)BIG * sizeof(float));
    free(v);
    free(a);
    free(b);
}

static void unigrams_and_bigrams_are_counted(void **state) {
    (void)state;
    float *v = feat("book a table", 12, BIG);
    assert_int_equal(nonzero(v, BIG), 5); /* 3 words + 2 bigrams */
    const char *f[] = {"book", "a", "table", "book a", "a table"};
    for (int i = 0; i < 5; i++)
        assert_float_equal(v[h32(f[i]) & (BIG - 1)], 1.0f / sqrtf(5.0f), 1e-6);
    free(v);
    /* Repeats count: bye x2, "bye bye" x1 -> (2, 1) / sqrt(5). */
    v = feat("bye bye", 7, BIG);
    assert_float_equal(v[h32("bye") & (BIG - 1)], 2.0f / sqrtf(5.0f), 1e-6);
    assert_float_equal(v[h32("bye bye") & (BIG - 1)], 1.0f / sqrtf(5.0f), 1e-6);
    free(v);
}

static void any_run_of_separators_makes_neighbours(void **state) {
    (void)state;
    /* Any run of separators between two tokens makes them neighbours. */
    float *a = feat("hi!!! \t there", 13, BIG);
    assert_true(a[h32("hi there") & (BIG - 1)] > 0);
    /* NUL is a separator like any other byte outside the token set. */
    float *b = feat("hi\0there", 8, BIG);
    assert_memory_equal(a, b, (size_t)BIG * sizeof(float));
    free(a);
    free(b);
}

static void output_is_unit_norm_and_deterministic(void **state) {
    (void)state;
    const char *s = "The quick brown fox jumps over the lazy dog, twice: the quick fox!";
    float *a = feat(s, strlen(s), 64), *b = feat(s, strlen(s), 64);
    assert_memory_equal(a, b, 64 * sizeof(float));
    double n = 0;
    for (int i = 0; i < 64; i++) n += (double)a[i] * a[i];
    assert_float_equal(n, 1.0, 1e-5);
    free(a);
    free(b);
}

static void long_tokens_are_hashed_whole(void **state) {
    (void)state;
    size_t n = 100000;
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'a', n);
    float *a = feat(s, n, BIG), *b = feat(s, n - 1, BIG);
    assert_int_equal(nonzero(a, BIG), 1);
    assert_memory_not_equal(a, b, (size_t)BIG * sizeof(float));
    free(s);
    free(a);
    free(b);
}

static void empty_text_is_all_zero_and_bad_dims_rejected(void **state) {
    (void)state;
    float v[64];
    for (int i = 0; i < 64; i++) v[i] = 7.0f;
    assert_int_equal(aas_featurize_text("  ,,  ", 6, v, 64), AAS_ERR_OK);
    for (int i = 0; i < 64; i++) assert_true(v[i] == 0.0f);
    assert_int_equal(aas_featurize_text(NULL, 0, v, 64), AAS_ERR_OK);
    assert_int_equal(nonzero(v, 64), 0);
    assert_int_equal(aas_featurize_text("x", 1, v, 48), AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text("x", 1, v, 8), AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text("x", 1, v, 0), AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text("x", 1, v, (int64_t)AAS_FEATURIZE_MAX_DIM * 2),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text("x", 1, NULL, 64), AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text(NULL, 1, v, 64), AAS_ERR_INVAL);
    assert_true(aas_featurize_dim_valid(16));
    assert_true(aas_featurize_dim_valid(1 << 20));
    assert_false(aas_featurize_dim_valid(15));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fnv1a_matches_reference_vectors),
        cmocka_unit_test(hello_world_fills_documented_buckets),
        cmocka_unit_test(case_and_punctuation_do_not_matter),
        cmocka_unit_test(apostrophes_and_digits_are_token_bytes),
        cmocka_unit_test(non_ascii_bytes_stay_inside_tokens),
        cmocka_unit_test(unigrams_and_bigrams_are_counted),
        cmocka_unit_test(any_run_of_separators_makes_neighbours),
        cmocka_unit_test(output_is_unit_norm_and_deterministic),
        cmocka_unit_test(long_tokens_are_hashed_whole),
        cmocka_unit_test(empty_text_is_all_zero_and_bad_dims_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
