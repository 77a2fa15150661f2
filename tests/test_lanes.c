/*
 * test_lanes.c - priority lanes through the real fleet (redis-server, a
 * broker, aas-worker processes; docs/sharing.md, "Priority lanes"):
 *
 * - a priority job published behind a backlog of normal jobs, while a
 *   worker drains it, finishes while most of the backlog is still queued
 *   (before lanes it finished after ~95 % of it);
 * - the starvation guard: with the high lane never empty, low-lane jobs
 *   still finish, most of them before the high lane's last job;
 * - compatibility: a client with lanes off publishes every job, priority
 *   or not, to topic.infer, and a worker with lanes off serves it.
 *
 * Outcomes are compared on the jobs' finished_ms (Redis clock), read after
 * everything is done, so the verdicts do not depend on polling speed.  One
 * fleet (broker, Redis) serves the three, each with its own worker: a real
 * Kafka with its five topics takes most of a minute to set up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_fleet.h"
#include "store.h"

#define N_BACKLOG 8000
#define N_HIGH 3000
#define N_LOW 200

static float x_of[AAS_FLEET_IN];

static int fleet_up(void **state) {
    aas_fleet_t *f = NULL;
    if (aas_fleet_start(&f, 0, NULL)) {
        aas_fleet_stop(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int fleet_down(void **state) { return aas_fleet_stop(*state) ? -1 : 0; }

/* This test's worker, with its own arguments (static storage). */
static void worker_up(aas_fleet_t *f, const char *const *args) {
    f->worker_args = args;
    f->n_workers = 1;
    assert_int_equal(aas_fleet_start_worker(f, 0), 0);
}

/* It must exit cleanly; the next test starts its own. */
static void worker_down(aas_fleet_t *f) {
    assert_int_equal(aas_test_proc_stop(&f->workers[0], 30000), 0);
    f->n_workers = 0;
}

static int submit_prio(aas_client_t *c, const char *id, int32_t priority) {
    aas_tensor_t t;
    int64_t shape[2] = {1, AAS_FLEET_IN};
    if (aas_tensor_set_f32(&t, "x", x_of, 2, shape)) return -1;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                     .inputs = &t, .n_inputs = 1, .priority = priority};
    char why[512];
    aas_err_t err = aas_client_submit(c, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    if (err) fprintf(stderr, "lanes: submit %s: %s\n", id, why);
    return err ? -1 : 0;
}

static int flush(aas_client_t *c) {
    size_t failed = 0;
    char why[512];
    if (aas_client_flush(c, 120000, &failed, why, sizeof(why)) || failed) {
        fprintf(stderr, "lanes: flush: %s (%zu failed)\n", why, failed);
        return -1;
    }
    return 0;
}

/* finished_ms of a SUCCEEDED job, or -1. */
static int64_t finished_ms(aas_fleet_t *f, const char *id) {
    aas_job_info_t info;
    char why[256];
    if (aas_client_status(f->client, id, &info, why, sizeof(why))) return -1;
    int64_t t = info.status == AAS_STATUS_SUCCEEDED ? info.finished_ms : -1;
    aas_job_info_clear(&info);
    return t;
}

/* Wait until job id is terminal (SUCCEEDED checked by the caller). */
static int wait_done(aas_fleet_t *f, const char *id, int timeout_ms) {
    aas_result_t res = {0};
    char why[512];
    aas_err_t err = aas_client_wait(f->client, id, timeout_ms, &res, why, sizeof(why));
    if (err) fprintf(stderr, "lanes: wait %s: %s\n", id, why);
    int ok = !err && res.status == AAS_STATUS_SUCCEEDED;
    aas_result_clear(&res);
    return ok ? 0 : -1;
}

/* Jobs completed by the worker so far, from its metrics; -1 unknown. */
static double jobs_done(int port) {
    static char text[1 << 16];
    if (aas_test_scrape(port, text, sizeof(text))) return -1;
    double v = aas_test_metric(text,
                               "aas_worker_jobs_total{model=\"fleet-mlp\",status=\"SUCCEEDED\"}");
    return v == v ? v : 0; /* NaN: no job yet */
}

static void priority_job_jumps_a_backlog(void **state) {
    aas_fleet_t *f = *state;
    int port = aas_test_free_port();
    assert_true(port > 0);
    static char port_arg[64];
    snprintf(port_arg, sizeof(port_arg), "metrics.port=%d", port);
    static const char *args[] = {"-X", NULL, NULL};
    args[1] = port_arg;
    for (int k = 0; k < AAS_FLEET_IN; k++) x_of[k] = aas_fleet_frand();

    char id[64];
    for (int j = 0; j < N_BACKLOG; j++) {
        snprintf(id, sizeof(id), "bl-%d", j);
        assert_int_equal(submit_prio(f->client, id, 0), 0);
    }
    assert_int_equal(flush(f->client), 0);
    worker_up(f, args);
    /* Behind the backlog while it drains: once the worker has finished
     * some of it, its queues hold thousands of prefetched normal jobs. */
    double done = 0;
    for (int waited = 0; waited < 120000 && (done = jobs_done(port)) < 200; waited += 5)
        usleep(5000);
    assert_true(done >= 200);
    assert_true(done < N_BACKLOG / 2); /* else the backlog was no backlog */
    assert_int_equal(submit_prio(f->client, "prio-1", 10), 0);
    assert_int_equal(flush(f->client), 0);
    assert_int_equal(wait_done(f, "prio-1", 120000), 0);
    int64_t t_prio = finished_ms(f, "prio-1");
    assert_true(t_prio > 0);

    int after = 0;
    for (int j = 0; j < N_BACKLOG; j++) {
        snprintf(id, sizeof(id), "bl-%d", j);
        assert_int_equal(wait_done(f, id, 120000), 0);
        int64_t t = finished_ms(f, id);
        assert_true(t > 0);
        after += t > t_prio;
    }
    fprintf(stderr, "lanes: %d of %d backlog jobs finished after the priority job "
            "(%.0f were done when it was published)\n", after, N_BACKLOG, done);
    assert_true(after > N_BACKLOG / 2);
    assert_true(aas_fleet_log_contains(f, "lanes=high,normal,low"));
    worker_down(f);
}

static void low_lane_progresses_under_a_high_flood(void **state) {
    aas_fleet_t *f = *state;
    /* Small windows, so the high lane's flood is many windows long. */
    static const char *args[] = {"-X", "batch.max.rows=8", "-X", "worker.lane.share=4",
                                 NULL};
    for (int k = 0; k < AAS_FLEET_IN; k++) x_of[k] = aas_fleet_frand();
    char id[64];
    /* The low jobs first: older than every high job, and still served
     * only when the guard says. */
    for (int j = 0; j < N_LOW; j++) {
        snprintf(id, sizeof(id), "low-%d", j);
        assert_int_equal(submit_prio(f->client, id, -5), 0);
    }
    for (int j = 0; j < N_HIGH; j++) {
        snprintf(id, sizeof(id), "high-%d", j);
        assert_int_equal(submit_prio(f->client, id, 5), 0);
    }
    assert_int_equal(flush(f->client), 0);
    worker_up(f, args);

    int64_t last_high = 0;
    for (int j = 0; j < N_HIGH; j++) {
        snprintf(id, sizeof(id), "high-%d", j);
        assert_int_equal(wait_done(f, id, 120000), 0);
        int64_t t = finished_ms(f, id);
        assert_true(t > 0);
        if (t > last_high) last_high = t;
    }
    int before = 0;
    for (int j = 0; j < N_LOW; j++) {
        snprintf(id, sizeof(id), "low-%d", j);
        assert_int_equal(wait_done(f, id, 120000), 0);
        int64_t t = finished_ms(f, id);
        assert_true(t > 0);
        before += t < last_high;
    }
    fprintf(stderr, "lanes: %d of %d low jobs finished before the last high job\n", before,
            N_LOW);
    /* 1 window in 4 at least: 375 high windows of 8 leave room for ~90
     * low windows, 25 are needed. */
    assert_true(before > N_LOW / 2);
    worker_down(f);
}

static void lanes_off_client_and_worker_still_serve(void **state) {
    aas_fleet_t *f = *state;
    static const char *args[] = {"-X", "topic.infer.lanes=false", NULL};
    worker_up(f, args);
    for (int k = 0; k < AAS_FLEET_IN; k++) x_of[k] = aas_fleet_frand();
    /* An old client: every job on topic.infer, whatever its priority. */
    aas_conf_t *conf = NULL;
    aas_client_t *old = NULL;
    char why[512];
    assert_int_equal(aas_conf_new(aas_client_conf_defs, &conf), 0);
    assert_int_equal(aas_conf_set_arg(conf, f->redis_arg, why, sizeof(why)), 0);
    assert_int_equal(aas_conf_set_arg(conf, f->brokers_arg, why, sizeof(why)), 0);
    assert_int_equal(aas_conf_set_arg(conf, "topic.infer.lanes=false", why, sizeof(why)), 0);
    assert_int_equal(aas_client_new(conf, &old, why, sizeof(why)), 0);
    assert_int_equal(submit_prio(old, "old-prio", 9), 0);
    assert_int_equal(submit_prio(old, "old-low", -9), 0);
    assert_int_equal(flush(old), 0);
    /* A lanes client's normal-priority job lands on topic.infer too. */
    assert_int_equal(submit_prio(f->client, "new-normal", 0), 0);
    assert_int_equal(flush(f->client), 0);
    assert_int_equal(wait_done(f, "old-prio", 60000), 0);
    assert_int_equal(wait_done(f, "old-low", 60000), 0);
    assert_int_equal(wait_done(f, "new-normal", 60000), 0);
    assert_true(aas_fleet_log_contains(f, "lanes=off"));
    aas_client_destroy(old);
    aas_conf_destroy(conf);
    worker_down(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(priority_job_jumps_a_backlog),
        cmocka_unit_test(low_lane_progresses_under_a_high_flood),
        cmocka_unit_test(lanes_off_client_and_worker_still_serve),
    };
    return cmocka_run_group_tests(tests, fleet_up, fleet_down);
}
