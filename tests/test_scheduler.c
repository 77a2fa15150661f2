/*
 * test_scheduler.c - aas-scheduler scales a real fleet: on Apache Kafka
 * with 8 partitions, a burst of jobs makes the local actuator scale from 1
 * worker to several, the backlog drains, idleness scales back to the
 * minimum, and every job submitted meanwhile SUCCEEDED exactly once; with
 * 2 partitions and scheduler.grow.partitions the topic grows to 4 across
 * the same burst, again losing and duplicating nothing.
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

#define N_JOBS 20000

static int live_workers(aas_fleet_t *f) {
    char **hb = NULL, why[256];
    size_t n = 0;
    if (aas_store_heartbeats(aas_client_store(f->client), &hb, &n, why, sizeof(why)))
        return -1;
    aas_store_list_free(hb, n);
    return (int)n;
}

static int wait_live(aas_fleet_t *f, int cmp_ge, int target, int timeout_s) {
    for (int i = 0; i < timeout_s * 4; i++) {
        int n = live_workers(f);
        if (n >= 0 && (cmp_ge ? n >= target : n <= target)) return n;
        usleep(250000);
    }
    return -1;
}

/* Start the scheduler over a fresh fleet whose topics have `partitions`
 * partitions; `grow` lets it add partitions. */
static void run_burst(int partitions, int grow) {
    char parts[16];
    snprintf(parts, sizeof(parts), "%d", partitions);
    setenv("AAS_TEST_PARTITIONS", parts, 1);
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 0, NULL), 0);
    /* Workers the scheduler starts inherit these. */
    char port[16];
    snprintf(port, sizeof(port), "%d", f->redis.port);
    setenv("AAS_REDIS_PORT", port, 1);
    setenv("AAS_KAFKA_BOOTSTRAP_SERVERS", f->broker.bootstrap, 1);
    setenv("AAS_WORKER_HEARTBEAT_MS", "500", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    char bin[512], wbin[600], logdir[600], log[600];
    snprintf(bin, sizeof(bin), "%s/scheduler/aas-scheduler", AAS_BIN_DIR);
    snprintf(wbin, sizeof(wbin), "scheduler.worker.bin=%s/worker/aas-worker", AAS_BIN_DIR);
    snprintf(logdir, sizeof(logdir), "scheduler.worker.logdir=%s", f->dir);
    snprintf(log, sizeof(log), "%s/scheduler.log", f->dir);
    char *argv[] = {bin, "-X", wbin, "-X", logdir, "-X", "scheduler.min=1",
                    "-X", "scheduler.max=4", "-X", "scheduler.interval.ms=1000",
                    "-X", "scheduler.down.window.s=10", "-X", "scheduler.cooldown.s=5",
                    "-X", "scheduler.drain.s=5",
                    "-X", "scheduler.lag.threshold=500", "-X",
                    grow ? "scheduler.grow.partitions=true" : "scheduler.grow.partitions=false",
                    "run", NULL};
    aas_test_proc_t sched;
    assert_int_equal(aas_test_proc_start(&sched, bin, argv, log), 0);
    assert_true(wait_live(f, 1, 1, 60) >= 1);

    static float x[64];
    for (int k = 0; k < 64; k++) x[k] = aas_fleet_frand();
    char id[32], why[512];
    int64_t t0 = aas_mono_us();
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "sched-%d", j);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x, 1, 64), 0);
    }
    assert_int_equal(aas_client_flush(f->client, 120000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);
    int peak = wait_live(f, 1, 2, 60);
    double up_s = (double)(aas_mono_us() - t0) / 1e6;
    fprintf(stderr, "scheduler: %d workers live %.1f s after the burst began\n", peak, up_s);
    assert_true(peak >= 2);
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "sched-%d", j);
        assert_int_equal(aas_fleet_check(f, id, x, 1, 300000), 0);
    }
    double drain_s = (double)(aas_mono_us() - t0) / 1e6;
    fprintf(stderr, "scheduler: %d jobs drained %.1f s after the burst began\n", N_JOBS,
            drain_s);
    int low = wait_live(f, 0, 1, 120);
    fprintf(stderr, "scheduler: back to %d worker(s) %.1f s after the burst began\n", low,
            (double)(aas_mono_us() - t0) / 1e6);
    assert_int_equal(low, 1);
    assert_true(aas_test_log_contains(log, "decision from=1"));
    if (grow) {
        char want[64];
        snprintf(want, sizeof(want), "partitions=%d->4 done", partitions);
        assert_true(aas_test_log_contains(log, want));
    }
    /* The scheduler stops the workers it started, and exits 0. */
    assert_int_equal(aas_test_proc_stop(&sched, 60000), 0);
    assert_int_equal(aas_fleet_stop(f), 0);
}

static void burst_scales_up_drains_and_scales_down_exactly_once(void **state) {
    run_burst(8, 0);
}

/* More workers needed than partitions: the scheduler grows the topic with
 * CreatePartitions, the group rebalances onto the new partitions, and no
 * job is lost or answered twice across it. */
static void partitions_grow_when_workers_would_exceed_them(void **state) {
    run_burst(2, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_scales_up_drains_and_scales_down_exactly_once),
        cmocka_unit_test(partitions_grow_when_workers_would_exceed_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
