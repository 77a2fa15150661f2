/*
 * test_skew.c - the skew detector alone, on simulated time: slow workers,
 * hot partitions together or on workers of their own, what must not count
 * (idle workers' low rates, young and training workers, missing data, a
 * fleet that just changed), the window and the cooldown (no restart
 * storms), and reading workers' heartbeats.  No clock, no broker.
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

#include "scheduler.h"
#include "skew.h"

#define TOPIC "aas.jobs.infer"

/* A fleet: partitions with lags, workers holding them. */
typedef struct {
    aas_skew_conf_t c;
    aas_skew_state_t s;
    aas_skew_decision_t d;
    aas_partition_lag_t parts[16];
    double arrival[16];      /* per partition, jobs/s */
    double age[16];          /* per partition, oldest job's age */
    int with_age;            /* pass age (else unknown) */
    int with_arrival;        /* pass arrival (else unknown) */
    size_t n_parts;
    aas_skew_worker_t workers[8];
    size_t n_workers;
    double last_change;
} fleet_t;

/* The detector's defaults: the scheduler's configuration table's. */
static void skew_defaults(aas_skew_conf_t *c) {
    aas_policy_conf_t p;
    assert_int_equal(aas_scheduler_policy_defaults(&p, c), AAS_ERR_OK);
}

static void fleet_init(fleet_t *f, size_t n_parts) {
    memset(f, 0, sizeof(*f));
    skew_defaults(&f->c);
    aas_skew_state_init(&f->s);
    f->n_parts = n_parts;
    for (size_t i = 0; i < n_parts; i++)
        f->parts[i] = (aas_partition_lag_t){.partition = (int32_t)i, .high = 1000,
                                            .committed = 1000, .lag = 0,
                                            .oldest_ts_ms = AAS_OBSERVE_UNKNOWN};
    f->last_change = -1;
}

/* Worker `id` with rate, holding the partitions listed (-1 ends). */
static aas_skew_worker_t *add_worker(fleet_t *f, const char *id, double rate, ...) {
    aas_skew_worker_t *w = &f->workers[f->n_workers++];
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    w->rate = rate;
    w->uptime_s = 600;
    va_list ap;
    va_start(ap, rate);
    for (int p; (p = va_arg(ap, int)) >= 0;) w->partitions[w->n_partitions++] = p;
    va_end(ap);
    return w;
}

static void set_lag(fleet_t *f, int p, int64_t lag) { f->parts[p].lag = lag; }

static aas_skew_action_t tick(fleet_t *f, double t) {
    aas_skew_obs_t o = {.now_s = t, .last_change_s = f->last_change, .parts = f->parts,
                        .arrival = f->with_arrival ? f->arrival : NULL,
                        .age_s = f->with_age ? f->age : NULL,
                        .n_parts = f->n_parts, .workers = f->workers,
                        .n_workers = f->n_workers};
    aas_skew_decide(&f->c, &o, &f->s, &f->d);
    assert_true(f->d.reason[0] != '\0');
    assert_non_null(memchr(f->d.reason, '\0', sizeof(f->d.reason)));
    return f->d.action;
}

/* Tick every 2 s from t0 to t1; count actions, remember the first's time. */
static int run(fleet_t *f, double t0, double t1, aas_skew_action_t want, double *first) {
    int n = 0;
    if (first) *first = -1;
    for (double t = t0; t <= t1; t += 2) {
        aas_skew_action_t a = tick(f, t);
        if (a != AAS_SKEW_HOLD) {
            assert_int_equal(a, want);
            if (first && *first < 0) *first = t;
            n++;
        }
    }
    return n;
}

/* 8 partitions over 4 workers, two each, w2 completing far less while its
 * partitions fall behind. */
static void slow_fleet(fleet_t *f) {
    fleet_init(f, 8);
    add_worker(f, "w0", 120, 0, 1, -1);
    add_worker(f, "w1", 110, 2, 3, -1);
    add_worker(f, "w2", 15, 4, 5, -1);
    add_worker(f, "w3", 100, 6, 7, -1);
    set_lag(f, 4, 800);
    set_lag(f, 5, 700);
}

static void defaults_are_the_documented_ones(void **state) {
    (void)state;
    aas_skew_conf_t c;
    skew_defaults(&c);
    assert_true(c.window_s == 20 && c.cooldown_s == 120 && c.slow_ratio == 0.5);
    assert_true(c.min_lag == 100 && c.warmup_s == 30 && c.key_factor == 2);
    assert_true(c.min_age_s == 5);
    aas_skew_state_t s;
    aas_skew_state_init(&s);
    assert_int_equal(s.kind, AAS_SKEW_NONE);
    assert_true(s.since_s < 0 && s.last_action_s < 0 && s.suspect[0] == '\0');
    assert_string_equal(aas_skew_kind_name(AAS_SKEW_SLOW_WORKER), "slow-worker");
    assert_string_equal(aas_skew_kind_name(AAS_SKEW_HOT_KEYS), "hot-keys");
    assert_string_equal(aas_skew_kind_name(AAS_SKEW_HOT_TOGETHER), "hot-partitions-together");
    assert_string_equal(aas_skew_kind_name(AAS_SKEW_NONE), "none");
}

static void balanced_fleet_finds_nothing(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    add_worker(&f, "w0", 100, 0, 1, 2, 3, -1);
    add_worker(&f, "w1", 95, 4, 5, 6, 7, -1);
    for (int p = 0; p < 8; p++) set_lag(&f, p, 300 + 10 * p); /* busy, evenly */
    assert_int_equal(run(&f, 0, 600, AAS_SKEW_RESTART, NULL), 0);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
    assert_non_null(strstr(f.d.reason, "no skew"));
    for (int p = 0; p < 8; p++) set_lag(&f, p, 0); /* idle */
    assert_int_equal(run(&f, 602, 1200, AAS_SKEW_RESTART, NULL), 0);
}

static void slow_worker_is_restarted_after_the_window(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    double first;
    /* Found at once, held for the 20 s window, then one restart. */
    assert_int_equal(tick(&f, 0), AAS_SKEW_HOLD);
    assert_int_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
    assert_string_equal(f.d.worker, "w2");
    assert_non_null(strstr(f.d.reason, "w2 completes 15.0/s"));
    assert_int_equal(run(&f, 2, 60, AAS_SKEW_RESTART, &first), 1);
    assert_true(first >= 20 && first <= 22);
    assert_string_equal(f.s.suspect, "w2");
}

static void restarts_are_at_most_one_per_cooldown(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    /* A worker that stays slow whatever is done (the host, not the
     * process): one restart per cooldown, never a storm. */
    double first;
    int n = run(&f, 0, 3600, AAS_SKEW_RESTART, &first);
    assert_true(n >= 25 && n <= 3600 / 120 + 1);
    /* Actions are a whole cooldown apart. */
    slow_fleet(&f);
    double last = -1;
    for (double t = 0; t <= 3600; t += 2)
        if (tick(&f, t) == AAS_SKEW_RESTART) {
            if (last >= 0) assert_true(t - last >= 120);
            last = t;
        }
}

static void a_slow_worker_needs_a_backlog(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    /* The same rates, no backlog: a low rate on an idle worker is only
     * a low arrival rate on its partitions. */
    set_lag(&f, 4, 0);
    set_lag(&f, 5, 99);
    assert_int_equal(run(&f, 0, 600, AAS_SKEW_RESTART, NULL), 0);
}

static void idle_workers_low_rates_do_not_make_a_busy_worker_slow(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    /* w0 is behind and works flat out (300/s); the others idle at what
     * arrives on their partitions (20/s).  Nothing is slow; this is the
     * hot-partition case. */
    add_worker(&f, "w0", 300, 0, 1, -1);
    add_worker(&f, "w1", 20, 2, 3, -1);
    add_worker(&f, "w2", 20, 4, 5, -1);
    add_worker(&f, "w3", 20, 6, 7, -1);
    set_lag(&f, 0, 5000);
    tick(&f, 0);
    assert_int_not_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
}

static void young_and_training_workers_are_not_judged(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    f.workers[2].uptime_s = 10; /* just started: its first rates are low */
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_RESTART, NULL), 0);
    slow_fleet(&f);
    f.workers[2].training = 1; /* busy training: restarting would undo it */
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_RESTART, NULL), 0);
    slow_fleet(&f);
    f.workers[2].rate = -1; /* rate unknown */
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_RESTART, NULL), 0);
    /* Alone, there is nobody to compare with. */
    fleet_init(&f, 2);
    add_worker(&f, "w0", 1, 0, 1, -1);
    set_lag(&f, 0, 5000);
    set_lag(&f, 1, 5000);
    tick(&f, 0);
    assert_int_not_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
}

static void missing_data_finds_nothing_and_a_long_gap_restarts_the_window(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    assert_int_equal(run(&f, 0, 16, AAS_SKEW_RESTART, NULL), 0);
    set_lag(&f, 0, -1); /* one partition unmeasured: no verdict */
    assert_int_equal(tick(&f, 18), AAS_SKEW_HOLD);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
    assert_non_null(strstr(f.d.reason, "unknown"));
    set_lag(&f, 0, 0);
    /* A short gap neither confirms nor clears: the window ran from 0. */
    assert_int_equal(tick(&f, 20), AAS_SKEW_RESTART);
    /* A gap longer than the window: start over. */
    slow_fleet(&f);
    assert_int_equal(run(&f, 0, 10, AAS_SKEW_RESTART, NULL), 0);
    set_lag(&f, 0, -1);
    assert_int_equal(run(&f, 12, 40, AAS_SKEW_RESTART, NULL), 0);
    set_lag(&f, 0, 0);
    double first;
    assert_int_equal(run(&f, 42, 80, AAS_SKEW_RESTART, &first), 1);
    assert_true(first >= 62);
    /* No partitions at all: nothing. */
    fleet_init(&f, 0);
    add_worker(&f, "w0", 1, -1);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
}

static void a_starved_worker_missing_heartbeats_is_still_restarted(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    /* Starved of CPU, w2 misses every other heartbeat: on those ticks its
     * partitions have no live owner (no verdict), on the others it is
     * slow.  The finding holds across the gaps. */
    aas_skew_worker_t w2 = f.workers[2];
    double first = -1;
    for (double t = 0; t <= 40 && first < 0; t += 2) {
        int lapsed = ((int)t / 2) % 2;
        f.workers[2] = lapsed ? f.workers[3] : w2;
        f.n_workers = lapsed ? 3 : 4;
        /* On lapsed ticks more partitions are behind (a loaded fleet):
         * still no verdict, not "no skew". */
        for (int p = 0; p < 4; p++) set_lag(&f, p, lapsed ? 500 : 0);
        if (tick(&f, t) == AAS_SKEW_RESTART) first = t;
        if (lapsed) assert_non_null(strstr(f.d.reason, "no live worker"));
    }
    assert_true(first >= 20 && first <= 22);
    assert_string_equal(f.d.worker, "w2");
}

static void a_fleet_that_just_changed_is_left_to_settle(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    /* Scaled at t = 100: partitions are moving, rates and lags mean
     * little until a window has passed. */
    f.last_change = 100;
    double first;
    assert_int_equal(run(&f, 100, 118, AAS_SKEW_RESTART, NULL), 0);
    assert_non_null(strstr(f.d.reason, "changed"));
    assert_int_equal(run(&f, 120, 200, AAS_SKEW_RESTART, &first), 1);
    assert_true(first >= 140);
}

static void hot_partitions_on_one_worker_restart_it(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    add_worker(&f, "w0", 100, 0, 1, -1);
    add_worker(&f, "w1", 100, 2, 3, -1);
    add_worker(&f, "w2", 5, 4, 5, -1);
    add_worker(&f, "w3", 5, 6, 7, -1);
    /* w0's two partitions carry the keyed load and fall behind (w0 is as
     * fast as w1: not slow); the rest idle. */
    set_lag(&f, 0, 4000);
    set_lag(&f, 1, 3000);
    set_lag(&f, 3, 5);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_HOT_TOGETHER);
    assert_string_equal(f.d.worker, "w0");
    assert_non_null(strstr(f.d.reason, "0: 4000, 1: 3000"));
    double first;
    assert_int_equal(run(&f, 2, 60, AAS_SKEW_RESTART, &first), 1);
    assert_true(first >= 20);
}

static void hot_keys_on_workers_of_their_own_are_reported(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    add_worker(&f, "w0", 100, 0, 1, -1);
    add_worker(&f, "w1", 100, 2, 3, -1);
    add_worker(&f, "w2", 5, 4, 5, -1);
    add_worker(&f, "w3", 5, 6, 7, -1);
    /* One hot key: one partition behind, its worker at full speed.
     * Nothing the scheduler can move helps; it says so, once per
     * cooldown, and restarts nobody. */
    set_lag(&f, 2, 9000);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_HOT_KEYS);
    assert_string_equal(f.d.worker, "");
    assert_non_null(strstr(f.d.reason, "more partitions or keyless producing"));
    double first;
    assert_int_equal(run(&f, 2, 600, AAS_SKEW_REPORT, &first), 5);
    assert_true(first >= 20);
    /* Two hot partitions on two workers: the same. */
    set_lag(&f, 0, 5000);
    fleet_t g = f;
    aas_skew_state_init(&g.s);
    tick(&g, 0);
    assert_int_equal(g.d.kind, AAS_SKEW_HOT_KEYS);
}

static void hot_partitions_everywhere_is_capacity_not_skew(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    add_worker(&f, "w0", 100, 0, 1, 2, 3, -1);
    add_worker(&f, "w1", 100, 4, 5, 6, 7, -1);
    /* Each worker holds two hot partitions: adding workers spreads them
     * (the policy's business), restarting would not. */
    set_lag(&f, 0, 4000);
    set_lag(&f, 1, 4000);
    set_lag(&f, 4, 4000);
    set_lag(&f, 5, 4000);
    assert_int_equal(run(&f, 0, 600, AAS_SKEW_RESTART, NULL), 0);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
    /* Most partitions behind: overload, not skew. */
    for (int p = 0; p < 6; p++) set_lag(&f, p, 4000);
    tick(&f, 700);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
    assert_non_null(strstr(f.d.reason, "no skew"));
}

static void a_hot_partition_nobody_holds_waits(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    add_worker(&f, "w0", 100, 0, 1, 2, -1);
    add_worker(&f, "w1", 100, 4, 5, 6, 7, -1);
    set_lag(&f, 3, 4000); /* mid-rebalance: partition 3 has no owner */
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_REPORT, NULL), 0);
    assert_non_null(strstr(f.d.reason, "no live worker"));
}

static void a_wandering_suspect_never_completes_a_window(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    add_worker(&f, "w4", 100, -1);
    /* The slow one changes every 10 s (noise, not a slow process): no
     * finding holds a whole window, so nothing is restarted. */
    for (double t = 0; t <= 600; t += 2) {
        int phase = ((int)t / 10) % 2;
        f.workers[2].rate = phase ? 110 : 15;
        f.workers[3].rate = phase ? 15 : 100;
        set_lag(&f, 4, phase ? 0 : 800);
        set_lag(&f, 6, phase ? 800 : 0);
        assert_int_equal(tick(&f, t), AAS_SKEW_HOLD);
    }
}

/* 8 partitions over 4 workers, 50 jobs/s arriving on each. */
static void even_arrivals_fleet(fleet_t *f) {
    fleet_init(f, 8);
    f->with_arrival = 1;
    for (int p = 0; p < 8; p++) f->arrival[p] = 50;
    add_worker(f, "w0", 100, 0, 1, -1);
    add_worker(f, "w1", 100, 2, 3, -1);
    add_worker(f, "w2", 100, 4, 5, -1);
    add_worker(f, "w3", 100, 6, 7, -1);
}

static void a_settled_backlog_with_ordinary_arrivals_is_a_slow_worker(void **state) {
    (void)state;
    fleet_t f;
    even_arrivals_fleet(&f);
    /* w2 completes what arrives (its rate is like the others') but its
     * partitions keep a standing backlog the others do not have: it has
     * no spare capacity for an ordinary share.  The rate rule cannot see
     * it; the backlog does. */
    set_lag(&f, 4, 1500);
    set_lag(&f, 5, 1400);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
    assert_string_equal(f.d.worker, "w2");
    assert_non_null(strstr(f.d.reason, "ordinary arrivals"));
    assert_non_null(strstr(f.d.reason, "4: 1500 at 50.0/s"));
    double first;
    assert_int_equal(run(&f, 2, 60, AAS_SKEW_RESTART, &first), 1);
    assert_true(first >= 20);
    /* Just one such partition, one worker each: still the worker. */
    even_arrivals_fleet(&f);
    set_lag(&f, 4, 1500);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
}

static void a_backlog_that_arrives_faster_is_hot_keys(void **state) {
    (void)state;
    fleet_t f;
    even_arrivals_fleet(&f);
    /* Partition 4 gets 400/s of one key, more than its worker can do. */
    f.arrival[4] = 400;
    set_lag(&f, 4, 3000);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_HOT_KEYS);
    assert_non_null(strstr(f.d.reason, "4: 3000 at 400.0/s"));
    assert_int_equal(run(&f, 2, 60, AAS_SKEW_REPORT, NULL), 1);
    /* Two hot keys on one worker while another has none: spread them. */
    even_arrivals_fleet(&f);
    f.arrival[4] = f.arrival[5] = 400;
    set_lag(&f, 4, 3000);
    set_lag(&f, 5, 3000);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_HOT_TOGETHER);
    assert_string_equal(f.d.worker, "w2");
    /* No arrivals anywhere (a burst that ended): arrivals tell nothing. */
    even_arrivals_fleet(&f);
    for (int p = 0; p < 8; p++) f.arrival[p] = 0;
    set_lag(&f, 4, 3000);
    tick(&f, 0);
    assert_int_equal(f.d.kind, AAS_SKEW_HOT_KEYS);
}

static void a_new_worker_that_took_over_a_backlog_is_left_alone(void **state) {
    (void)state;
    fleet_t f;
    even_arrivals_fleet(&f);
    f.workers[2].uptime_s = 8; /* the replacement of a restarted one */
    set_lag(&f, 4, 1500);
    set_lag(&f, 5, 1400);
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_REPORT, NULL), 0);
    assert_int_equal(f.d.kind, AAS_SKEW_NONE);
    assert_non_null(strstr(f.d.reason, "judged later"));
}

static void a_finding_that_flips_kind_on_one_worker_keeps_its_window(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    /* Near the ratio the same worker is found slow by its rate on one tick
     * and as the holder of two hot partitions on the next: either way the
     * fix is to restart it, so the window keeps running. */
    double first = -1;
    for (double t = 0; t <= 40; t += 2) {
        f.workers[2].rate = ((int)t / 2) % 2 ? 15 : 90;
        if (tick(&f, t) == AAS_SKEW_RESTART && first < 0) first = t;
        assert_string_equal(f.d.worker, "w2");
    }
    assert_true(first >= 20 && first <= 22);
}

static void a_busy_partition_with_young_jobs_is_not_behind(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    f.with_age = 1;
    for (int p = 0; p < 8; p++) f.age[p] = -1;
    /* w2's partitions trail by hundreds of jobs, but none has waited
     * 5 s: a busy partition whose committed offset trails by a commit
     * interval's worth, not a backlog. */
    f.age[4] = 1.2;
    f.age[5] = 0.9;
    assert_int_equal(run(&f, 0, 300, AAS_SKEW_RESTART, NULL), 0);
    assert_non_null(strstr(f.d.reason, "0 of 8 partitions behind"));
    /* Once they wait, they are. */
    f.age[4] = 12;
    tick(&f, 302);
    assert_int_equal(f.d.kind, AAS_SKEW_SLOW_WORKER);
    /* Many busy healthy partitions (lag over min_lag, young) beside one
     * real backlog still make skew. */
    fleet_t g;
    even_arrivals_fleet(&g);
    g.with_age = 1;
    for (int p = 0; p < 8; p++) {
        set_lag(&g, p, 300);
        g.age[p] = 0.8;
    }
    g.age[6] = 30;
    set_lag(&g, 6, 4000);
    tick(&g, 0);
    assert_int_equal(g.d.kind, AAS_SKEW_SLOW_WORKER);
    assert_string_equal(g.d.worker, "w3");
    assert_non_null(strstr(g.d.reason, "6: 4000 30s old"));
}

static void busy_rate_reads_only_workers_with_jobs_waiting(void **state) {
    (void)state;
    fleet_t f;
    fleet_init(&f, 8);
    f.with_age = 1;
    for (int p = 0; p < 8; p++) f.age[p] = -1;
    add_worker(&f, "w0", 900, 0, 1, -1);
    add_worker(&f, "w1", 1100, 2, 3, -1);
    add_worker(&f, "w2", 300, 4, 5, -1);
    add_worker(&f, "w3", 300, 6, 7, -1);
    aas_skew_obs_t o = {.parts = f.parts, .age_s = f.age, .n_parts = 8,
                        .workers = f.workers, .n_workers = 4};
    /* Everyone keeps up: the committed offsets trail (lag > 0) but no job
     * has waited: their rates are the arrivals, not what they can do. */
    for (int p = 0; p < 8; p++) {
        set_lag(&f, p, 300);
        f.age[p] = 0.6;
    }
    assert_true(aas_skew_busy_rate(&o, 2.0, 5.0) < 0);
    /* w0 and w1 have jobs waiting: their mean. */
    f.age[1] = 4;
    f.age[2] = 2.5;
    assert_float_equal(aas_skew_busy_rate(&o, 2.0, 5.0), 1000, 1e-9);
    /* A young worker (its first rates include loading the model), a
     * training one, or one without a rate is left out. */
    f.workers[1].uptime_s = 3;
    assert_float_equal(aas_skew_busy_rate(&o, 2.0, 5.0), 900, 1e-9);
    f.workers[0].training = 1;
    assert_true(aas_skew_busy_rate(&o, 2.0, 5.0) < 0);
    f.workers[0].training = 0;
    f.workers[0].rate = -1;
    assert_true(aas_skew_busy_rate(&o, 2.0, 5.0) < 0);
    /* No ages at all: unknown. */
    o.age_s = NULL;
    assert_true(aas_skew_busy_rate(&o, 2.0, 5.0) < 0);
}

static void bad_configuration_is_read_sanely(void **state) {
    (void)state;
    fleet_t f;
    slow_fleet(&f);
    f.c.window_s = NAN;
    f.c.cooldown_s = -5;
    f.c.slow_ratio = 7;
    f.c.min_lag = 0;
    f.c.warmup_s = INFINITY;
    /* Out of range (the configuration table never lets it through): no
     * action at all, and the reason says why; no second copy of the
     * defaults to fall back on. */
    assert_int_equal(run(&f, 0, 600, AAS_SKEW_RESTART, NULL), 0);
    assert_non_null(strstr(f.d.reason, "configuration out of range (window_s)"));
    /* min_lag 0 alone is read as 1: the slow worker is found. */
    slow_fleet(&f);
    f.c.min_lag = 0;
    double first;
    assert_true(run(&f, 0, 600, AAS_SKEW_RESTART, &first) >= 1);
    assert_true(first >= f.c.window_s);
    /* Window 0, cooldown 0: acts on every tick, still one worker each. */
    slow_fleet(&f);
    f.c.window_s = 0;
    f.c.cooldown_s = 0;
    assert_int_equal(run(&f, 0, 10, AAS_SKEW_RESTART, NULL), 6);
}

static uint64_t rnd(uint64_t *rng) {
    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return *rng >> 33;
}

static void random_input_keeps_invariants(void **state) {
    (void)state;
    uint64_t rng = 0x5eed;
#define RND() rnd(&rng)
    for (int run_i = 0; run_i < 200; run_i++) {
        fleet_t f;
        fleet_init(&f, 1 + RND() % 16);
        size_t nw = RND() % 8;
        for (size_t i = 0; i < nw; i++) {
            char id[16];
            snprintf(id, sizeof(id), "w%zu", i);
            aas_skew_worker_t *w = add_worker(&f, id, (double)(RND() % 300) - 10, -1);
            w->uptime_s = (double)(RND() % 100);
            w->training = RND() % 10 == 0;
        }
        f.with_arrival = RND() % 2;
        for (size_t p = 0; p < f.n_parts; p++)
            f.arrival[p] = RND() % 30 == 0 ? -1 : (double)(RND() % 500);
        for (size_t p = 0; p < f.n_parts; p++) {
            if (nw && RND() % 8) {
                aas_skew_worker_t *w = &f.workers[RND() % nw];
                w->partitions[w->n_partitions++] = (int32_t)p;
            }
        }
        double last_action = -1;
        for (double t = 0; t < 1000; t += 1 + RND() % 4) {
            for (size_t p = 0; p < f.n_parts; p++)
                if (RND() % 5 == 0)
                    f.parts[p].lag = RND() % 20 == 0 ? -1 : (int64_t)(RND() % 3000);
            if (nw && RND() % 7 == 0) {
                size_t i = RND() % nw;
                f.workers[i].rate = (double)(RND() % 300);
            }
            int any_unknown = 0;
            for (size_t p = 0; p < f.n_parts; p++) any_unknown |= f.parts[p].lag < 0;
            aas_skew_action_t a = tick(&f, t);
            if (any_unknown) assert_int_equal(f.d.kind, AAS_SKEW_NONE);
            if (a == AAS_SKEW_HOLD) continue;
            if (last_action >= 0) assert_true(t - last_action >= f.c.cooldown_s);
            last_action = t;
            if (a == AAS_SKEW_RESTART) {
                int found = 0;
                for (size_t i = 0; i < nw; i++)
                    if (!strcmp(f.workers[i].id, f.d.worker)) {
                        found = 1;
                        assert_false(f.workers[i].training);
                        assert_true(f.workers[i].uptime_s >= f.c.warmup_s);
                    }
                assert_true(found);
            } else {
                assert_int_equal(f.d.kind, AAS_SKEW_HOT_KEYS);
            }
        }
    }
#undef RND
}

static void heartbeat_is_read_for_one_topic(void **state) {
    (void)state;
    /* As worker.c writes it. */
    const char *hb =
        "{\"id\":\"sched-12-3\",\"host\":\"node-a\",\"pid\":4242,\"started_ms\":1000000,"
        "\"done\":5000,\"failed\":7,\"skipped\":0,\"dlq\":0,\"retries\":1,\"rate\":123.456,"
        "\"training\":null,\"partitions\":\"aas.jobs.infer/3,aas.jobs.train/0,"
        "aas.jobs.infer/11,aas.jobs.infer2/4\",\"ts_ms\":1060000}";
    aas_skew_worker_t w;
    assert_int_equal(aas_skew_worker_parse(hb, TOPIC, 1061000, &w), 0);
    assert_string_equal(w.id, "sched-12-3");
    assert_string_equal(w.host, "node-a");
    assert_int_equal(w.pid, 4242);
    assert_true(fabs(w.rate - 123.456) < 1e-9);
    assert_true(fabs(w.uptime_s - 61.0) < 1e-9);
    assert_int_equal(w.training, 0);
    assert_int_equal(w.done, 5000);
    assert_int_equal(w.failed, 7);
    assert_int_equal(w.n_partitions, 2); /* not the train topic, not infer2 */
    assert_int_equal(w.partitions[0], 3);
    assert_int_equal(w.partitions[1], 11);
    assert_int_equal(aas_skew_worker_parse(hb, "aas.jobs.train", 1061000, &w), 0);
    assert_int_equal(w.n_partitions, 1);
    assert_int_equal(w.partitions[0], 0);

    const char *training = "{\"id\":\"w\",\"rate\":0,\"training\":\"job-1\",\"partitions\":\"\"}";
    assert_int_equal(aas_skew_worker_parse(training, TOPIC, 0, &w), 0);
    assert_int_equal(w.training, 1);
    assert_int_equal(w.n_partitions, 0);
    assert_true(w.uptime_s < 0); /* no started_ms: unknown */
    const char *norate = "{\"id\":\"w\",\"partitions\":\"aas.jobs.infer/x,aas.jobs.infer/\"}";
    assert_int_equal(aas_skew_worker_parse(norate, TOPIC, 0, &w), 0);
    assert_true(w.rate < 0);
    assert_int_equal(w.n_partitions, 0); /* malformed fields are skipped */

    /* A record with its group (workers since the field) reads the same. */
    const char *grouped = "{\"id\":\"w\",\"rate\":2,\"partitions\":\"aas.jobs.infer/5\","
                          "\"group\":\"aas-workers\"}";
    assert_int_equal(aas_skew_worker_parse(grouped, TOPIC, 0, &w), 0);
    assert_string_equal(w.id, "w");
    assert_int_equal(w.n_partitions, 1);
    assert_int_equal(w.partitions[0], 5);

    assert_int_equal(aas_skew_worker_parse("{\"rate\":1}", TOPIC, 0, &w), -1);
    assert_int_equal(aas_skew_worker_parse("not json", TOPIC, 0, &w), -1);
    assert_int_equal(aas_skew_worker_parse(NULL, TOPIC, 0, &w), -1);
    assert_string_equal(w.id, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_ones),
        cmocka_unit_test(balanced_fleet_finds_nothing),
        cmocka_unit_test(slow_worker_is_restarted_after_the_window),
        cmocka_unit_test(restarts_are_at_most_one_per_cooldown),
        cmocka_unit_test(a_slow_worker_needs_a_backlog),
        cmocka_unit_test(idle_workers_low_rates_do_not_make_a_busy_worker_slow),
        cmocka_unit_test(young_and_training_workers_are_not_judged),
        cmocka_unit_test(missing_data_finds_nothing_and_a_long_gap_restarts_the_window),
        cmocka_unit_test(a_starved_worker_missing_heartbeats_is_still_restarted),
        cmocka_unit_test(a_fleet_that_just_changed_is_left_to_settle),
        cmocka_unit_test(hot_partitions_on_one_worker_restart_it),
        cmocka_unit_test(hot_keys_on_workers_of_their_own_are_reported),
        cmocka_unit_test(hot_partitions_everywhere_is_capacity_not_skew),
        cmocka_unit_test(a_hot_partition_nobody_holds_waits),
        cmocka_unit_test(a_wandering_suspect_never_completes_a_window),
        cmocka_unit_test(a_settled_backlog_with_ordinary_arrivals_is_a_slow_worker),
        cmocka_unit_test(a_backlog_that_arrives_faster_is_hot_keys),
        cmocka_unit_test(a_new_worker_that_took_over_a_backlog_is_left_alone),
        cmocka_unit_test(a_finding_that_flips_kind_on_one_worker_keeps_its_window),
        cmocka_unit_test(a_busy_partition_with_young_jobs_is_not_behind),
        cmocka_unit_test(busy_rate_reads_only_workers_with_jobs_waiting),
        cmocka_unit_test(bad_configuration_is_read_sanely),
        cmocka_unit_test(random_input_keeps_invariants),
        cmocka_unit_test(heartbeat_is_read_for_one_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
