/*
 * test_policy.c - the scaling policy alone, on simulated time: ramps,
 * spikes, idle, flapping and noisy input, bounds and partitions, unknown
 * data, the KEDA fallback, queue age.  No clock, no broker.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "scheduler.h"

#define UNKNOWN (-1)

/* A topic whose actuator obeys at once: the policy's decisions fed back. */
typedef struct {
    aas_policy_conf_t c;
    aas_policy_state_t s;
    aas_policy_decision_t d;
    int cur;
    int changes;
    double age; /* oldest job's age passed with each step; < 0 unknown */
} sim_t;

/* The policy's defaults: the scheduler's configuration table's. */
static void policy_defaults(aas_policy_conf_t *c) {
    aas_skew_conf_t k;
    assert_int_equal(aas_scheduler_policy_defaults(c, &k), AAS_ERR_OK);
}

static void sim_init(sim_t *m, int cur) {
    policy_defaults(&m->c);
    m->c.min_workers = 1;
    m->c.max_workers = 8;
    m->c.partitions = 8;
    aas_policy_state_init(&m->s);
    m->cur = cur;
    m->changes = 0;
    m->age = UNKNOWN;
}

/* One decision at time t; returns the new worker count. */
static int step(sim_t *m, double t, int64_t lag, double arrival, double service) {
    aas_policy_obs_t o = {.now_s = t, .current_workers = m->cur, .lag = lag,
                          .arrival_rate = arrival, .service_rate_per_worker = service,
                          .oldest_age_s = m->age};
    aas_policy_decide(&m->c, &o, &m->s, &m->d);
    assert_true(m->d.reason[0] != '\0');
    assert_non_null(memchr(m->d.reason, '\0', sizeof(m->d.reason)));
    if (m->d.desired != m->cur) m->changes++;
    m->cur = m->d.desired;
    return m->d.desired;
}

static void defaults_are_the_documented_ones(void **state) {
    (void)state;
    aas_policy_conf_t c;
    policy_defaults(&c);
    assert_int_equal(c.min_workers, 1);
    assert_int_equal(c.max_workers, 8);
    assert_int_equal(c.partitions, 0);
    assert_int_equal(c.can_grow_partitions, 0);
    assert_true(c.lag_threshold == 100 && c.target_drain_s == 10);
    assert_true(c.target_queue_age_s == 5 && c.headroom == 1.2);
    assert_true(c.scale_down_window_s == 60 && c.cooldown_s == 15);
    assert_int_equal(c.max_step_down, 1);
}

static void ramp_scales_up_on_the_tick_the_need_rises(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    /* Arrivals ramp from 50/s to 650/s over 60 s, one worker serves 100/s,
     * a small backlog rides along.  Each tick's count must carry that
     * tick's load: the busiest worker (ceil(8 / n) partitions of 8) has
     * no more than its capacity. */
    int prev = 1;
    for (int t = 0; t <= 60; t += 2) {
        double arrival = 50 + 10.0 * t;
        int64_t lag = (int64_t)(arrival / 2);
        int n = step(&m, t, lag, arrival, 100);
        double need = fmax(arrival * 1.2, arrival + (double)lag / 10); /* jobs/s */
        double busiest = need / 8 * ((8 + n - 1) / n);
        assert_true(busiest <= 100 + 1e-6);
        assert_true(n >= prev); /* a ramp never scales down */
        prev = n;
    }
    assert_int_equal(m.cur, 8);
}

static void spike_scales_up_at_once_and_down_only_after_the_window(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 0, 0, 100), 1);
    assert_int_equal(step(&m, 2, 5000, 400, 100), 8); /* one tick of backlog */
    double w = m.c.scale_down_window_s;
    double t;
    for (t = 4; t < 4 + w; t += 2)
        assert_int_equal(step(&m, t, 0, 0, 100), 8); /* held the whole window */
    assert_int_equal(step(&m, t, 0, 0, 100), 7);    /* then one step */
    assert_int_equal(step(&m, t + 2, 0, 0, 100), 7); /* and the next waits */
    assert_int_equal(m.changes, 2);
}

static void idle_goes_down_to_min_one_step_per_cooldown(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 6);
    double last_change = -1e9;
    int t;
    for (t = 0; t < 1000 && m.cur > 1; t++) {
        int before = m.cur;
        step(&m, t, 0, 0, 100);
        if (m.cur != before) {
            assert_int_equal(before - m.cur, 1);
            assert_true(t - last_change >= m.c.cooldown_s);
            last_change = t;
        }
    }
    assert_int_equal(m.cur, 1);
    assert_int_equal(m.changes, 5);
    /* 60 s window, then 5 steps 15 s apart. */
    assert_true(t <= 60 + 4 * 15 + 2);
    for (int k = 0; k < 600; k++) assert_int_equal(step(&m, t + k, 0, 0, 100), 1);
}

static void flapping_load_does_not_oscillate(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    /* Heavy and none, alternating every 5 s, for 10 minutes. */
    for (int t = 0; t < 600; t += 1) {
        int heavy = (t / 5) % 2 == 0;
        step(&m, t, heavy ? 3000 : 0, heavy ? 500 : 0, 100);
    }
    assert_int_equal(m.changes, 1); /* up once, never down */
    assert_int_equal(m.cur, 8);
}

static void noise_around_a_boundary_does_not_oscillate(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    /* Need flips between 2 and 4 workers' worth every tick for 10 min. */
    for (int t = 0; t < 600; t += 2) {
        double arrival = (t / 2) % 2 ? 150 : 300;
        step(&m, t, 0, arrival, 100);
    }
    assert_int_equal(m.changes, 1); /* up once, never down */
    assert_int_equal(m.cur, 4);
}

static void slow_waves_change_at_most_a_few_times(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    /* Load high 40 s, low 40 s: shorter than the window, so it holds. */
    for (int t = 0; t < 1200; t += 2) {
        int high = (t / 40) % 2 == 0;
        step(&m, t, high ? 400 : 0, high ? 600 : 10, 100);
    }
    assert_int_equal(m.changes, 1);
}

static void never_above_max_or_below_min(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    m.c.min_workers = 2;
    m.c.max_workers = 5;
    m.c.partitions = 0; /* unknown: no partition cap */
    assert_int_equal(step(&m, 0, 1000000, 10000, 10), 5);
    for (int t = 1; t < 2000; t++) {
        int n = step(&m, t, 0, 0, 10);
        assert_true(n >= 2 && n <= 5);
    }
    assert_int_equal(m.cur, 2);
    /* A count outside the bounds is brought in at once, data or not. */
    m.cur = 9;
    assert_int_equal(step(&m, 3000, UNKNOWN, UNKNOWN, UNKNOWN), 5);
    m.cur = 0;
    assert_int_equal(step(&m, 3001, UNKNOWN, UNKNOWN, UNKNOWN), 2);
}

static void never_more_workers_than_partitions(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    m.c.partitions = 4;
    assert_int_equal(step(&m, 0, 1000000, 10000, 10), 4);
    assert_int_equal(m.d.want_partitions, 0);
    assert_true(m.d.raw > 4); /* the rule wanted more */
    /* ...but an explicit minimum above the partitions wins. */
    m.c.min_workers = 6;
    assert_int_equal(step(&m, 1, 0, 0, 10), 6);
}

static void grows_partitions_when_allowed(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 4);
    m.c.partitions = 4;
    m.c.can_grow_partitions = 1;
    assert_int_equal(step(&m, 0, 1000000, 10000, 10), 8); /* max */
    assert_int_equal(m.d.want_partitions, 8);
    /* Within the partitions, no growth is asked for. */
    sim_init(&m, 1);
    m.c.partitions = 8;
    m.c.can_grow_partitions = 1;
    step(&m, 0, 0, 250, 100);
    assert_int_equal(m.d.want_partitions, 0);
}

static void counts_that_add_no_capacity_are_skipped(void **state) {
    (void)state;
    sim_t m;
    /* 8 partitions, 100/s per worker, no backlog, headroom 1.2. */
    sim_init(&m, 1);
    step(&m, 0, 0, 240, 100); /* 2.88 workers' worth: 3 would leave one 3 */
    assert_int_equal(m.cur, 4);
    sim_init(&m, 1);
    step(&m, 0, 0, 375, 100); /* 4.5: 5..7 would leave someone 2 */
    assert_int_equal(m.cur, 8);
    sim_init(&m, 1);
    step(&m, 0, 0, 100, 100); /* 1.2: 2 workers of 4 partitions each */
    assert_int_equal(m.cur, 2);
}

static void rate_rule_beats_lag_threshold_on_a_fast_model(void **state) {
    (void)state;
    sim_t m;
    /* 800 queued, 50/s arriving, a worker serves 2000/s: one worker drains
     * it in under half a second; lag/threshold would ask for 8. */
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 800, 50, 2000), 1);
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 800, UNKNOWN, UNKNOWN), 8);
    /* A slow model: 150 queued, 20/s arriving, 5/s per worker.  The rule
     * asks for 8; lag/threshold for 2, which would never catch up. */
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 150, 20, 5), 8);
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 150, UNKNOWN, UNKNOWN), 2);
}

static void keda_rule_when_service_rate_unknown(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    m.c.partitions = 0;
    assert_int_equal(step(&m, 0, 350, 10, UNKNOWN), 4); /* ceil(350 / 100) */
    assert_non_null(strstr(m.d.reason, "lag"));
    /* The lag is measured, so it may come down (after the window). */
    for (int t = 1; t <= 61; t++) step(&m, t, 0, 10, UNKNOWN);
    assert_int_equal(m.cur, 3);
}

static void unknown_lag_never_scales_down_even_idle_for_long(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 5);
    for (int t = 0; t < 3600; t += 2) {
        assert_int_equal(step(&m, t, UNKNOWN, 0, 100), 5);
        assert_int_equal(step(&m, t + 1, UNKNOWN, UNKNOWN, UNKNOWN), 5);
    }
    assert_int_equal(m.changes, 0);
    assert_non_null(strstr(m.d.reason, "unknown"));
    /* A lag that returns after a gap does not inherit the gap as waiting
     * time: the whole window starts when it is known again. */
    assert_int_equal(step(&m, 4000, 0, 0, 100), 5);
    assert_int_equal(step(&m, 4000 + 59, 0, 0, 100), 5);
    assert_int_equal(step(&m, 4000 + 60, 0, 0, 100), 4);
}

static void partial_data_scales_up_but_never_down(void **state) {
    (void)state;
    sim_t m;
    /* Lag unknown, but the arrivals alone need 6 workers' worth. */
    sim_init(&m, 2);
    assert_int_equal(step(&m, 0, UNKNOWN, 500, 100), 8);
    /* Arrival unknown, the backlog alone needs more than now. */
    sim_init(&m, 1);
    assert_int_equal(step(&m, 0, 2000, UNKNOWN, 100), 2);
    /* Arrival unknown and a small lag: holds, even for an hour. */
    sim_init(&m, 6);
    for (int t = 0; t < 3600; t++) assert_int_equal(step(&m, t, 0, UNKNOWN, 100), 6);
}

static void nan_and_inf_are_unknown(void **state) {
    (void)state;
    sim_t m;
    /* A NaN arrival rate makes the rate rule incomplete: it holds. */
    sim_init(&m, 4);
    for (int t = 0; t < 600; t++) assert_int_equal(step(&m, t, 0, NAN, 100), 4);
    /* An infinite service rate is unknown: the lag rule decides. */
    sim_init(&m, 1);
    m.c.partitions = 0;
    assert_int_equal(step(&m, 0, 500, 0, INFINITY), 5);
    /* Nothing usable at all: holds. */
    sim_init(&m, 4);
    m.age = NAN;
    for (int t = 0; t < 600; t++) assert_int_equal(step(&m, t, UNKNOWN, NAN, NAN), 4);
}

static void old_queue_adds_capacity_paced_by_cooldown(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 2);
    m.age = 60; /* the rates say 1 worker is plenty; the queue says no */
    assert_int_equal(step(&m, 0, 10, 1, 100), 3); /* next count that helps */
    assert_non_null(strstr(m.d.reason, "oldest"));
    assert_int_equal(step(&m, 2, 10, 1, 100), 3); /* paced: holds, not down */
    assert_int_equal(step(&m, 15, 10, 1, 100), 4);
    assert_int_equal(step(&m, 30, 10, 1, 100), 8); /* 5..7 would not help */
    /* No lag at all: a stale age is ignored. */
    sim_init(&m, 2);
    m.age = 60;
    assert_int_equal(step(&m, 0, 0, 1, 100), 2);
}

static void scale_down_waits_for_cooldown_after_a_scale_up(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 1);
    m.c.cooldown_s = 100; /* longer than the 60 s window */
    assert_int_equal(step(&m, 0, 2000, 300, 100), 8);
    for (int t = 1; t < 100; t++) assert_int_equal(step(&m, t, 0, 0, 100), 8);
    assert_int_equal(step(&m, 100, 0, 0, 100), 7); /* window and cooldown over */
    assert_int_equal(step(&m, 199, 0, 0, 100), 7); /* steps 100 s apart */
    assert_int_equal(step(&m, 200, 0, 0, 100), 6);
}

static void bad_configuration_is_read_sanely(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 3);
    m.c.lag_threshold = 0;
    m.c.target_drain_s = -1;
    m.c.headroom = NAN;
    m.c.max_step_down = 0;
    m.c.min_workers = 4;
    m.c.max_workers = 2; /* below min: min wins */
    m.c.partitions = 0;
    assert_int_equal(step(&m, 0, 1000, UNKNOWN, UNKNOWN), 4);
    m.c.min_workers = 1;
    m.c.max_workers = 8;
    for (int t = 1; t < 200; t++) step(&m, t, 0, 0, 100);
    assert_int_equal(m.cur, 1); /* max_step_down 0 read as 1, not "never" */
}

/* Many random observations: invariants hold whatever comes in. */
/* Issue 17, defect 1: after load stops the measured arrival rate decays
 * towards 0 (tiny, never exactly 0), and p / x overflowed an int: about
 * 54 s after the last job the desired count jumped to the maximum. */
static void decaying_rate_after_load_never_scales_up(void **state) {
    (void)state;
    sim_t m;
    sim_init(&m, 2);
    double arrival = 100; /* 0.6 workers' worth at the first step */
    for (int t = 0; t < 2000; t++) {
        int before = m.cur;
        arrival *= 0.5; /* an EWMA after the last job: 1e-300 and below */
        int n = step(&m, t, 0, arrival, 100);
        assert_true(n <= before);
    }
    assert_int_equal(m.cur, 1);
}

/* An idle group (no lag, arrivals gone or stale) never scales up, at any
 * current count, partition count and rate residue. */
static void idle_group_never_scales_up(void **state) {
    (void)state;
    static const double residue[] = {0, 1e-300, 4.9e-324, 1e-12, 1e-9, 2e-9, 1e-6, 1e-4};
    for (int cur = 0; cur <= 9; cur++)
        for (int parts = 0; parts <= 12; parts += 3)
            for (size_t i = 0; i < sizeof(residue) / sizeof(residue[0]); i++) {
                sim_t m;
                sim_init(&m, cur);
                m.c.min_workers = 0;
                m.c.partitions = parts;
                for (int t = 0; t < 200; t++) {
                    int before = m.cur;
                    assert_true(step(&m, t, 0, residue[i], 100) <= before);
                }
            }
}

/* Every observation field at zero, tiny, huge, infinite and NaN, in every
 * combination: the decision stays within the bounds (partitions cap it
 * unless they may grow) and its reason is a string. */
static void extreme_inputs_stay_within_bounds(void **state) {
    (void)state;
    static const double v[] = {0, 4.9e-324, 1e-9, 1, 1e9, 1e300, INFINITY, -INFINITY, NAN, -1};
    const size_t nv = sizeof(v) / sizeof(v[0]);
    static const int64_t lags[] = {-1, 0, 1, 1000, INT64_MAX};
    for (size_t li = 0; li < 5; li++)
        for (size_t a = 0; a < nv; a++)
            for (size_t sv = 0; sv < nv; sv++)
                for (size_t g = 0; g < nv; g += 3)
                    for (int parts = 0; parts <= 8; parts += 4)
                        for (int cur = 0; cur <= 10; cur += 5) {
                            sim_t m;
                            sim_init(&m, cur);
                            m.c.min_workers = 1;
                            m.c.max_workers = 6;
                            m.c.partitions = parts;
                            m.age = v[g];
                            int cap = parts > 0 && parts < 6 ? parts : 6;
                            int n = step(&m, 1000, lags[li], v[a], v[sv]);
                            if (n < 1 || n > cap)
                                fail_msg("lag %lld arr %g svc %g age %g parts %d cur %d: %d (%s)",
                                         (long long)lags[li], v[a], v[sv], v[g], parts, cur, n,
                                         m.d.reason);
                            if (lags[li] == 0 && !(v[a] > 1e-3) && cur >= 1 && cur <= cap &&
                                n > cur)
                                fail_msg("idle: arr %g svc %g age %g parts %d cur %d: %d (%s)",
                                         v[a], v[sv], v[g], parts, cur, n, m.d.reason);
                        }
}

static void random_input_keeps_invariants(void **state) {
    (void)state;
    uint64_t r = 42;
#define RND() (r = r * 6364136223846793005ULL + 1442695040888963407ULL, (r >> 33))
    for (int run = 0; run < 200; run++) {
        sim_t m;
        sim_init(&m, (int)(RND() % 10));
        m.c.min_workers = (int)(RND() % 3);
        m.c.max_workers = m.c.min_workers + (int)(RND() % 10);
        m.c.partitions = (int)(RND() % 12);
        m.c.can_grow_partitions = (int)(RND() % 2);
        for (int t = 0; t < 500; t++) {
            int before = m.cur;
            int64_t lag = RND() % 4 ? (int64_t)(RND() % 10000) : UNKNOWN;
            double arr = RND() % 4 ? (double)(RND() % 1000) : UNKNOWN;
            double svc = RND() % 3 ? (double)(RND() % 300) : UNKNOWN;
            m.age = RND() % 3 ? (double)(RND() % 20) : UNKNOWN;
            int n = step(&m, t, lag, arr, svc);
            int cap = m.c.max_workers;
            if (!m.c.can_grow_partitions && m.c.partitions > 0 && m.c.partitions < cap)
                cap = m.c.partitions > m.c.min_workers ? m.c.partitions : m.c.min_workers;
            assert_true(n >= m.c.min_workers && n <= cap);
            if (lag < 0 && before >= m.c.min_workers && before <= cap)
                assert_true(n >= before); /* never in on unknown lag */
            if (n < before && before <= cap)
                assert_true(before - n <= m.c.max_step_down);
            if (m.d.want_partitions)
                assert_true(m.c.can_grow_partitions && m.d.want_partitions > m.c.partitions);
        }
    }
#undef RND
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(ramp_scales_up_on_the_tick_the_need_rises),
        cmocka_unit_test(spike_scales_up_at_once_and_down_only_after_the_window),
        cmocka_unit_test(idle_goes_down_to_min_one_step_per_cooldown),
        cmocka_unit_test(flapping_load_does_not_oscillate),
        cmocka_unit_test(noise_around_a_boundary_does_not_oscillate),
        cmocka_unit_test(slow_waves_change_at_most_a_few_times),
        cmocka_unit_test(never_above_max_or_below_min),
        cmocka_unit_test(never_more_workers_than_partitions),
        cmocka_unit_test(grows_partitions_when_allowed),
        cmocka_unit_test(counts_that_add_no_capacity_are_skipped),
        cmocka_unit_test(rate_rule_beats_lag_threshold_on_a_fast_model),
        cmocka_unit_test(keda_rule_when_service_rate_unknown),
        cmocka_unit_test(unknown_lag_never_scales_down_even_idle_for_long),
        cmocka_unit_test(partial_data_scales_up_but_never_down),
        cmocka_unit_test(nan_and_inf_are_unknown),
        cmocka_unit_test(old_queue_adds_capacity_paced_by_cooldown),
        cmocka_unit_test(scale_down_waits_for_cooldown_after_a_scale_up),
        cmocka_unit_test(bad_configuration_is_read_sanely),
        cmocka_unit_test(random_input_keeps_invariants),
        cmocka_unit_test(decaying_rate_after_load_never_scales_up),
        cmocka_unit_test(idle_group_never_scales_up),
        cmocka_unit_test(extreme_inputs_stay_within_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
