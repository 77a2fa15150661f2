/* test_featurize.c - the text featurizer: hashing, tokens, bigrams, norm. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "featurize.h"

static void fnv1a_matches_reference_vectors(void **state) {
    /* FNV-1a 32-bit test vectors (draft-eastlake-fnv). */
    assert_int_equal(aas_featurize_fnv1a(2166136261u, "", 0), 0x811c9dc5u);
    assert_int_equal(aas_featurize_fnv1a(2166136261u, "a", 1), 0xe40c292cu);
    assert_int_equal(aas_featurize_fnv1a(2166136261u, "foobar", 6), 0xbf9cf968u);
}

static float norm(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    return (float)sqrt(s);
}

static void case_and_punctuation_do_not_matter(void **state) {
    static float a[1024], b[1024];
    assert_int_equal(aas_featurize_text("Hello, World!", 13, a, 1024), AAS_ERR_OK);
    assert_int_equal(aas_featurize_text("hello world", 11, b, 1024), AAS_ERR_OK);
    assert_memory_equal(a, b, sizeof(a));
    assert_true(fabsf(norm(a, 1024) - 1.0f) < 1e-6f);
}

static void unigrams_and_bigrams_are_counted(void **state) {
    static float v[1024];
    assert_int_equal(aas_featurize_text("book a table", 12, v, 1024), AAS_ERR_OK);
    int nonzero = 0;
    for (int i = 0; i < 1024; i++) nonzero += v[i] != 0;
    assert_true(nonzero >= 4 && nonzero <= 5); /* 3 words + 2 bigrams (collisions aside) */
    uint32_t h = aas_featurize_fnv1a(2166136261u, "table", 5);
    assert_true(v[h & 1023] > 0);
    h = aas_featurize_fnv1a(aas_featurize_fnv1a(2166136261u, "a", 1), " ", 1);
    h = aas_featurize_fnv1a(h, "table", 5);
    assert_true(v[h & 1023] > 0);
}

static void empty_text_is_all_zero_and_bad_dims_rejected(void **state) {
    static float v[64];
    assert_int_equal(aas_featurize_text("  ,,  ", 6, v, 64), AAS_ERR_OK);
    for (int i = 0; i < 64; i++) assert_true(v[i] == 0.0f);
    assert_int_equal(aas_featurize_text("x", 1, v, 48), AAS_ERR_INVAL);
    assert_int_equal(aas_featurize_text("x", 1, v, 8), AAS_ERR_INVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fnv1a_matches_reference_vectors),
        cmocka_unit_test(case_and_punctuation_do_not_matter),
        cmocka_unit_test(unigrams_and_bigrams_are_counted),
        cmocka_unit_test(empty_text_is_all_zero_and_bad_dims_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
