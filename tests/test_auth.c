/*
 * test_auth.c - a Redis that requires a password: the right password works,
 * a wrong one stops the worker with a clear message that does not print
 * the secret, and no job is lost meanwhile (they wait in Kafka).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_fleet.h"

#define RIGHT "Right-pw-4242"
#define WRONG "Xyzzy-bad-777"
#define N 50

static void wrong_password_fails_clearly_right_one_serves_everything(void **state) {
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start_auth(&f, 0, NULL, RIGHT), 0);
    static float x[N * AAS_FLEET_IN];
    char id[32], why[512];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < AAS_FLEET_IN; k++) x[i * AAS_FLEET_IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "auth-%d", i);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x + i * AAS_FLEET_IN, 1,
                                          AAS_FLEET_IN),
                         0);
    }
    assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);

    /* A worker with the wrong password refuses to start, and says why. */
    f->n_workers = 1;
    snprintf(f->worker_password, sizeof(f->worker_password), "%s", WRONG);
    assert_int_equal(aas_fleet_start_worker(f, 0), 0);
    int st = 0;
    for (int i = 0; i < 300 && f->workers[0].pid > 0; i++) {
        if (waitpid(f->workers[0].pid, &st, WNOHANG) == f->workers[0].pid) {
            f->workers[0].pid = 0;
            break;
        }
        usleep(100000);
    }
    assert_int_equal(f->workers[0].pid, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    assert_true(aas_test_log_contains(f->logs[0], "AUTH failed"));
    assert_false(aas_test_log_contains(f->logs[0], WRONG));

    /* The right password: every job published meanwhile is answered once. */
    snprintf(f->worker_password, sizeof(f->worker_password), "%s", RIGHT);
    assert_int_equal(aas_fleet_start_worker(f, 0), 0);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "auth-%d", i);
        assert_int_equal(aas_fleet_check(f, id, x + i * AAS_FLEET_IN, 1, 120000), 0);
    }
    assert_false(aas_test_log_contains(f->logs[0], RIGHT));
    assert_int_equal(aas_fleet_stop(f), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wrong_password_fails_clearly_right_one_serves_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
