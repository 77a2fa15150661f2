/*
 * test_faults.c - delivery under faults, on real components: Redis killed
 * and restarted, the broker taken down and back, a worker SIGKILLed mid
 * stream.  In every case each job must end SUCCEEDED exactly once
 * (result_writes == 1) with correct outputs, and the workers must say in
 * their logs that they backed off rather than dropped work.
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

#define IN AAS_FLEET_IN

static int setup(void **state) {
    aas_fleet_t *f = NULL;
    int rc = aas_fleet_start(&f, 2, NULL);
    *state = f;
    return rc;
}

static int teardown(void **state) {
    assert_int_equal(aas_fleet_stop(*state), 0);
    return 0;
}

/* Publish n one-row jobs "<prefix>-<i>" with inputs kept in x. */
static void publish(aas_fleet_t *f, const char *prefix, float *x, int n) {
    char id[64], why[512];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < IN; k++) x[i * IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x + i * IN, 1, IN), 0);
    }
    size_t failed = 0;
    assert_int_equal(aas_client_flush(f->client, 120000, &failed, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(failed, 0);
}

static void check_all(aas_fleet_t *f, const char *prefix, const float *x, int n) {
    char id[64];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        assert_int_equal(aas_fleet_check(f, id, x + i * IN, 1, 180000), 0);
    }
}

static void redis_outage_pauses_workers_and_loses_nothing(void **state) {
    aas_fleet_t *f = *state;
    static float a[200 * IN], b[400 * IN];
    publish(f, "before-redis-outage", a, 200);
    check_all(f, "before-redis-outage", a, 200);
    /* Redis dies; jobs keep arriving in Kafka. */
    assert_int_equal(aas_test_redis_kill(&f->redis), 0);
    publish(f, "during-redis-outage", b, 400);
    int backed_off = 0;
    for (int i = 0; i < 300 && !backed_off; i++) {
        backed_off = aas_fleet_log_contains(f, "transient failure, pausing");
        if (!backed_off) usleep(100000);
    }
    assert_true(backed_off);
    sleep(2);
    /* Back with its append-only file: the workers resume on their own,
     * every job published meanwhile is answered once, and the earlier
     * results are still there, written once. */
    assert_int_equal(aas_test_redis_restart(&f->redis), 0);
    check_all(f, "during-redis-outage", b, 400);
    check_all(f, "before-redis-outage", a, 200);
}

static void broker_outage_loses_nothing(void **state) {
    aas_fleet_t *f = *state;
    static float x[300 * IN];
    publish(f, "before-broker-outage", x, 100);
    assert_int_equal(aas_test_broker_outage(&f->broker, 1), 0);
    sleep(3);
    assert_int_equal(aas_test_broker_outage(&f->broker, 0), 0);
    publish(f, "after-broker-outage", x + 100 * IN, 200);
    check_all(f, "before-broker-outage", x, 100);
    check_all(f, "after-broker-outage", x + 100 * IN, 200);
}

static void sigkilled_worker_loses_nothing(void **state) {
    aas_fleet_t *f = *state;
    static float x[1500 * IN];
    char id[64];
    for (int i = 0; i < 1500; i++) {
        for (int k = 0; k < IN; k++) x[i * IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "kill-%d", i);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x + i * IN, 1, IN), 0);
        if (i == 300) {
            /* Mid stream, no goodbye: its uncommitted jobs are redelivered
             * to the others (or to its replacement) and finished once. */
            aas_test_proc_kill(&f->workers[0]);
            assert_int_equal(aas_fleet_start_worker(f, 0), 0);
        }
    }
    char why[512];
    assert_int_equal(aas_client_flush(f->client, 120000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);
    check_all(f, "kill", x, 1500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(redis_outage_pauses_workers_and_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(broker_outage_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(sigkilled_worker_loses_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
