/* test_job.c - ids, the status state machine, tensors' checks. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "fmt.h"
#include "job.h"
#include "tensor.h"

static void id_accepts_safe_names(void **state) {
    assert_true(aas_id_valid("job-1"));
    assert_true(aas_id_valid("A.b_c-9"));
    char max[AAS_ID_MAX + 1];
    memset(max, 'a', AAS_ID_MAX);
    max[AAS_ID_MAX] = '\0';
    assert_true(aas_id_valid(max));
}

static void id_rejects_key_injection_and_oddities(void **state) {
    const char *bad[] = {"", "a:b", "{x}", "a b", "a\nb", "../x", ".x", "-x",
                         "a*", "a/b", "é", NULL};
    for (int i = 0; bad[i]; i++) assert_false(aas_id_valid(bad[i]));
    assert_false(aas_id_valid(NULL));
    char over[AAS_ID_MAX + 2];
    memset(over, 'a', AAS_ID_MAX + 1);
    over[AAS_ID_MAX + 1] = '\0';
    assert_false(aas_id_valid(over));
}

static void status_terminal_states_never_move(void **state) {
    aas_status_t term[] = {AAS_STATUS_SUCCEEDED, AAS_STATUS_FAILED,
                           AAS_STATUS_EXPIRED, AAS_STATUS_CANCELLED};
    for (int i = 0; i < 4; i++) {
        assert_true(aas_status_is_terminal(term[i]));
        for (int to = 0; to < AAS_STATUS__COUNT; to++)
            assert_false(aas_status_transition_ok(term[i], (aas_status_t)to));
    }
}

static void status_live_states_move_forward_only(void **state) {
    assert_false(aas_status_is_terminal(AAS_STATUS_QUEUED));
    assert_false(aas_status_is_terminal(AAS_STATUS_RUNNING));
    assert_true(aas_status_transition_ok(AAS_STATUS_QUEUED, AAS_STATUS_RUNNING));
    assert_true(aas_status_transition_ok(AAS_STATUS_QUEUED, AAS_STATUS_EXPIRED));
    assert_true(aas_status_transition_ok(AAS_STATUS_RUNNING, AAS_STATUS_RUNNING));
    assert_true(aas_status_transition_ok(AAS_STATUS_RUNNING, AAS_STATUS_SUCCEEDED));
    assert_true(aas_status_transition_ok(AAS_STATUS_RUNNING, AAS_STATUS_FAILED));
    assert_false(aas_status_transition_ok(AAS_STATUS_RUNNING, AAS_STATUS_QUEUED));
    assert_false(aas_status_transition_ok((aas_status_t)99, AAS_STATUS_RUNNING));
}

static void status_names_round_trip(void **state) {
    for (int s = 0; s < AAS_STATUS__COUNT; s++) {
        aas_status_t back;
        assert_int_equal(aas_status_parse(aas_status_name((aas_status_t)s), &back),
                         AAS_ERR_OK);
        assert_int_equal(back, s);
    }
    aas_status_t out = AAS_STATUS_QUEUED;
    assert_int_equal(aas_status_parse("DONE", &out), AAS_ERR_INVAL);
}

static void tensor_check_rejects_overflowing_shapes(void **state) {
    aas_tensor_t t = {.dtype = AAS_DTYPE_F32, .rank = 3,
                      .shape = {INT64_MAX / 2, INT64_MAX / 2, 4}, .nbytes = 16};
    char why[128];
    assert_int_equal(aas_tensor_check(&t, 1 << 24, NULL, why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
    t.shape[0] = 0;
    assert_int_equal(aas_tensor_check(&t, 1 << 24, NULL, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    t.rank = 2;
    t.shape[0] = 2;
    t.shape[1] = 2;
    uint64_t elems;
    assert_int_equal(aas_tensor_check(&t, 1 << 24, &elems, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(elems, 4);
    t.nbytes = 15;
    assert_int_equal(aas_tensor_check(&t, 1 << 24, NULL, why, sizeof(why)),
                     AAS_ERR_SHAPE);
}

static void tensor_finite_check_finds_nan_and_inf(void **state) {
    float v[3] = {1.0f, 2.0f, 3.0f};
    int64_t shape[1] = {3};
    aas_tensor_t t;
    assert_int_equal(aas_tensor_set_f32(&t, "x", v, 1, shape), AAS_ERR_OK);
    char why[128];
    assert_int_equal(aas_tensor_check_finite(&t, why, sizeof(why)), AAS_ERR_OK);
    ((float *)t.data)[1] = NAN;
    assert_int_equal(aas_tensor_check_finite(&t, why, sizeof(why)),
                     AAS_ERR_NONFINITE);
    assert_non_null(strstr(why, "element 1"));
    ((float *)t.data)[1] = INFINITY;
    assert_int_equal(aas_tensor_check_finite(&t, why, sizeof(why)),
                     AAS_ERR_NONFINITE);
    aas_tensor_clear(&t);
}

static void errors_have_names_and_retry_class(void **state) {
    assert_string_equal(aas_err_name(AAS_ERR_DECODE), "AAS_ERR_DECODE");
    assert_true(aas_err_is_retriable(AAS_ERR_REDIS));
    assert_true(aas_err_is_retriable(AAS_ERR_KAFKA));
    assert_false(aas_err_is_retriable(AAS_ERR_SHAPE));
    assert_false(aas_err_is_retriable(AAS_ERR_UNKNOWN_MODEL));
    assert_string_equal(aas_err_name((aas_err_t)1000), "AAS_ERR_?");
}

/* The printf-free formatting matches printf, extremes included. */
static void fmt_matches_printf(void **state) {
    (void)state;
    const long long v[] = {0, 1, -1, 9, 10, 99, 100, 123456789, -987654321, LLONG_MAX,
                           LLONG_MIN, LLONG_MIN + 1};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[AAS_FMT_LL_MAX], want[32];
        snprintf(want, sizeof(want), "%lld", v[i]);
        assert_int_equal(aas_fmt_ll(got, v[i]), strlen(want));
        assert_string_equal(got, want);
    }
    char b[5];
    assert_int_equal(aas_fmt_copy(b, sizeof(b), "abc"), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(aas_fmt_copy(b, sizeof(b), "abcdefgh"), 4); /* cut */
    assert_string_equal(b, "abcd");
    assert_int_equal(aas_fmt_copy(b, 1, "x"), 0);
    assert_string_equal(b, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(id_accepts_safe_names),
        cmocka_unit_test(id_rejects_key_injection_and_oddities),
        cmocka_unit_test(status_terminal_states_never_move),
        cmocka_unit_test(status_live_states_move_forward_only),
        cmocka_unit_test(status_names_round_trip),
        cmocka_unit_test(tensor_check_rejects_overflowing_shapes),
        cmocka_unit_test(tensor_finite_check_finds_nan_and_inf),
        cmocka_unit_test(errors_have_names_and_retry_class),
        cmocka_unit_test(fmt_matches_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
