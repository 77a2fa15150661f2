/*
 * test_observe.c - the part of observe.c that needs no broker: the age of
 * the oldest queued job from per-partition measurements, where unknown
 * stays unknown (never 0) and nothing queued is 0.  The reading itself is
 * tested on real Kafka by test_scheduler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "observe.h"

#define NOW 1700000000000LL
#define U AAS_OBSERVE_UNKNOWN

static aas_partition_lag_t part(int32_t p, int64_t lag, int64_t ts) {
    return (aas_partition_lag_t){.partition = p, .high = lag < 0 ? U : 100 + lag,
                                 .committed = lag < 0 ? U : 100, .lag = lag,
                                 .oldest_ts_ms = ts};
}

static void oldest_is_the_largest_age_over_lagging_partitions(void **state) {
    (void)state;
    aas_partition_lag_t p[] = {part(0, 10, NOW - 1500), part(1, 0, U),
                               part(2, 3, NOW - 7250), part(3, 1, NOW - 20)};
    int partial = -1;
    assert_float_equal(aas_observe_oldest_age_s(p, 4, NOW, &partial), 7.25, 1e-9);
    assert_int_equal(partial, 0);
}

static void nothing_queued_is_zero_not_unknown(void **state) {
    (void)state;
    aas_partition_lag_t p[] = {part(0, 0, U), part(1, 0, U)};
    int partial = -1;
    assert_float_equal(aas_observe_oldest_age_s(p, 2, NOW, &partial), 0, 0);
    assert_int_equal(partial, 0);
    /* A stale timestamp on a partition without lag is ignored. */
    p[1].oldest_ts_ms = NOW - 60000;
    assert_float_equal(aas_observe_oldest_age_s(p, 2, NOW, NULL), 0, 0);
}

static void unread_age_is_unknown_never_zero(void **state) {
    (void)state;
    /* Lagging partitions whose message could not be read in time. */
    aas_partition_lag_t p[] = {part(0, 10, U), part(1, 0, U)};
    int partial = 0;
    assert_float_equal(aas_observe_oldest_age_s(p, 2, NOW, &partial), U, 0);
    assert_int_equal(partial, 1);
    /* Unknown lag: the same. */
    aas_partition_lag_t q[] = {part(0, -1, U), part(1, 0, U)};
    assert_float_equal(aas_observe_oldest_age_s(q, 2, NOW, &partial), U, 0);
    assert_int_equal(partial, 1);
    /* No partitions measured at all. */
    assert_float_equal(aas_observe_oldest_age_s(NULL, 0, NOW, &partial), U, 0);
    assert_int_equal(partial, 1);
}

static void some_known_is_a_lower_bound(void **state) {
    (void)state;
    aas_partition_lag_t p[] = {part(0, 10, NOW - 4000), part(1, 5, U), part(2, -1, U)};
    int partial = 0;
    assert_float_equal(aas_observe_oldest_age_s(p, 3, NOW, &partial), 4.0, 1e-9);
    assert_int_equal(partial, 1);
}

static void a_producer_clock_ahead_gives_zero_age_not_negative(void **state) {
    (void)state;
    aas_partition_lag_t p[] = {part(0, 10, NOW + 3000)};
    int partial = 1;
    assert_float_equal(aas_observe_oldest_age_s(p, 1, NOW, &partial), 0, 0);
    assert_int_equal(partial, 0);
}

static void lanes_fold_weighs_the_high_lane(void **state) {
    (void)state;
    aas_lane_backlog_t l[3] = {{.lag = 10, .age_s = 2, .weight = 4},   /* high */
                               {.lag = 1000, .age_s = 6, .weight = 1}, /* normal */
                               {.lag = 50, .age_s = 1, .weight = 1}};  /* low */
    int64_t lag;
    double age;
    int partial = 1;
    aas_observe_lanes_fold(l, 3, &lag, &age, &partial);
    assert_int_equal(lag, 40 + 1000 + 50);
    assert_true(age == 8.0); /* the high lane's 2 s count as 8 */
    assert_int_equal(partial, 0);
}

static void lanes_fold_unknown_lag_is_unknown_never_smaller(void **state) {
    (void)state;
    aas_lane_backlog_t l[3] = {{.lag = AAS_OBSERVE_UNKNOWN, .age_s = -1, .weight = 4},
                               {.lag = 1000, .age_s = 6, .weight = 1},
                               {.lag = 0, .age_s = 0, .weight = 1}};
    int64_t lag;
    double age;
    int partial = 0;
    aas_observe_lanes_fold(l, 3, &lag, &age, &partial);
    assert_int_equal(lag, AAS_OBSERVE_UNKNOWN);
    assert_true(age == 6.0); /* a lower bound */
    assert_int_equal(partial, 1);
    l[1].age_s = -1;
    aas_observe_lanes_fold(l, 3, &lag, &age, &partial);
    assert_true(age == AAS_OBSERVE_UNKNOWN);
}

static void lanes_fold_nothing_queued_is_zero(void **state) {
    (void)state;
    aas_lane_backlog_t l[3] = {{.lag = 0, .age_s = 0, .weight = 4},
                               {.lag = 0, .age_s = 0, .weight = 1},
                               {.lag = 0, .age_s = -1, .weight = 1}};
    int64_t lag;
    double age;
    int partial = 1;
    aas_observe_lanes_fold(l, 3, &lag, &age, &partial);
    assert_int_equal(lag, 0);
    assert_true(age == 0.0);
    assert_int_equal(partial, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oldest_is_the_largest_age_over_lagging_partitions),
        cmocka_unit_test(nothing_queued_is_zero_not_unknown),
        cmocka_unit_test(unread_age_is_unknown_never_zero),
        cmocka_unit_test(some_known_is_a_lower_bound),
        cmocka_unit_test(a_producer_clock_ahead_gives_zero_age_not_negative),
        cmocka_unit_test(lanes_fold_weighs_the_high_lane),
        cmocka_unit_test(lanes_fold_unknown_lag_is_unknown_never_smaller),
        cmocka_unit_test(lanes_fold_nothing_queued_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
