/* test_policy.c - the scaling rule alone: ramps, spikes, idle, flapping,
 * bounds, unknown data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"

typedef struct {
    aas_policy_conf_t c;
    aas_policy_state_t s;
    int cur;
    int changes;
} sim_t;

static void sim_init(sim_t *m) {
    aas_policy_conf_default(&m->c);
    m->c.min_workers = 1;
    m->c.max_workers = 8;
    m->c.partitions = 8;
    aas_policy_state_init(&m->s);
    m->cur = 1;
    m->changes = 0;
}

/* One decision at time t; the actuator obeys at once. */
static int step(sim_t *m, double t, int64_t lag, double arrival, double service) {
    aas_policy_obs_t o = {.now_s = t, .current_workers = m->cur, .lag = lag,
                          .arrival_rate = arrival, .service_rate_per_worker = service,
                          .oldest_age_s = -1};
    aas_policy_decision_t d;
    aas_policy_decide(&m->c, &o, &m->s, &d);
    assert_true(d.reason[0] != '\0');
    if (d.desired != m->cur) m->changes++;
    m->cur = d.desired;
    return d.desired;
}

static void ramp_scales_up_promptly(void **state) {
    sim_t m;
    sim_init(&m);
    /* Arrivals ramp from 100/s to 700/s; a worker serves 100/s. */
    for (int t = 0; t < 30; t++) {
        double arrival = 100 + 20.0 * t;
        step(&m, t, (int64_t)(arrival / 2), arrival, 100);
        int needed = (int)((arrival * 1.2 + arrival / 2 / 10) / 100 + 0.999);
        if (needed > 8) needed = 8;
        assert_true(m.cur >= needed); /* never lags behind the need */
    }
    assert_int_equal(m.cur, 8);
}

static void spike_goes_up_at_once_and_down_only_after_the_window(void **state) {
    sim_t m;
    sim_init(&m);
    assert_int_equal(step(&m, 0, 0, 0, 100), 1);
    assert_int_equal(step(&m, 1, 5000, 400, 100), 8); /* backlog: up at once */
    for (double t = 2; t < 2 + m.c.scale_down_window_s; t += 1)
        assert_int_equal(step(&m, t, 0, 0, 100), 8); /* holds for the window */
    int after = step(&m, 2 + m.c.scale_down_window_s + 1, 0, 0, 100);
    assert_int_equal(after, 7); /* then one step at a time */
}

static void idle_goes_down_to_min_step_by_step(void **state) {
    sim_t m;
    sim_init(&m);
    m.cur = 6;
    int prev = 6, t;
    for (t = 0; t < 600 && m.cur > 1; t++) {
        step(&m, t, 0, 0, 100);
        assert_true(prev - m.cur <= m.c.max_step_down);
        prev = m.cur;
    }
    assert_int_equal(m.cur, 1);
    step(&m, t + 100, 0, 0, 100);
    assert_int_equal(m.cur, 1); /* never below min */
}

static void flapping_input_does_not_oscillate(void **state) {
    sim_t m;
    sim_init(&m);
    /* Load alternating every 5 s between heavy and none for 10 minutes. */
    for (int t = 0; t < 600; t++) {
        int heavy = (t / 5) % 2 == 0;
        step(&m, t, heavy ? 3000 : 0, heavy ? 500 : 0, 100);
    }
    assert_true(m.changes <= 2); /* up once, at most one step down */
    assert_true(m.cur >= 7);
}

static void bounds_and_partitions_hold(void **state) {
    sim_t m;
    sim_init(&m);
    m.c.partitions = 4;
    assert_int_equal(step(&m, 0, 1000000, 10000, 10), 4); /* no more than partitions */
    m.c.can_grow_partitions = 1;
    aas_policy_obs_t o = {.now_s = 1, .current_workers = 4, .lag = 1000000,
                          .arrival_rate = 10000, .service_rate_per_worker = 10,
                          .oldest_age_s = -1};
    aas_policy_decision_t d;
    aas_policy_decide(&m.c, &o, &m.s, &d);
    assert_int_equal(d.desired, 8); /* max */
    assert_int_equal(d.want_partitions, 8);
    m.c.min_workers = 2;
    sim_t z = m;
    z.cur = 2;
    for (int t = 0; t < 200; t++) step(&z, 100 + t, 0, 0, 10);
    assert_int_equal(z.cur, 2);
}

static void unknown_lag_never_scales_down(void **state) {
    sim_t m;
    sim_init(&m);
    m.cur = 5;
    for (int t = 0; t < 1000; t++) assert_int_equal(step(&m, t, -1, -1, -1), 5);
}

static void keda_rule_when_service_rate_unknown(void **state) {
    sim_t m;
    sim_init(&m);
    m.c.lag_threshold = 100;
    assert_int_equal(step(&m, 0, 350, -1, -1), 4); /* ceil(350 / 100) */
}

static void old_queue_adds_a_worker(void **state) {
    sim_t m;
    sim_init(&m);
    m.cur = 2;
    aas_policy_obs_t o = {.now_s = 0, .current_workers = 2, .lag = 10,
                          .arrival_rate = 1, .service_rate_per_worker = 100,
                          .oldest_age_s = 60};
    aas_policy_decision_t d;
    aas_policy_decide(&m.c, &o, &m.s, &d);
    assert_int_equal(d.desired, 3);
    assert_non_null(strstr(d.reason, "oldest"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ramp_scales_up_promptly),
        cmocka_unit_test(spike_goes_up_at_once_and_down_only_after_the_window),
        cmocka_unit_test(idle_goes_down_to_min_step_by_step),
        cmocka_unit_test(flapping_input_does_not_oscillate),
        cmocka_unit_test(bounds_and_partitions_hold),
        cmocka_unit_test(unknown_lag_never_scales_down),
        cmocka_unit_test(keda_rule_when_service_rate_unknown),
        cmocka_unit_test(old_queue_adds_a_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
