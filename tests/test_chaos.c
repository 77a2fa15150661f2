/*
 * test_chaos.c - 5,000 jobs through the fleet on three Kafka brokers
 * (replication 3, min.insync.replicas 2) while, at points drawn from a
 * fixed seed, workers are SIGKILLed and restarted, Redis is SIGKILLed and
 * restarted once, and one broker is SIGKILLed and restarted once.
 * At the end every job is SUCCEEDED exactly once (result_writes == 1) with
 * correct outputs; none is left QUEUED or RUNNING.
 *
 * Runs on real Kafka only (ctest sets AAS_TEST_BROKER=kafka and
 * AAS_TEST_KAFKA_BROKERS=3): the dev broker keeps no data across faults.
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

#define N_JOBS 5000
#define CHUNK 250
#define N_CHUNKS (N_JOBS / CHUNK)
#define WORKERS 3

static uint64_t chaos_rng = 20261128;

static int chaos_pick(int lo, int hi) {
    chaos_rng = chaos_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int)((chaos_rng >> 33) % (uint64_t)(hi - lo + 1));
}

static void five_thousand_jobs_survive_chaos_exactly_once(void **state) {
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, WORKERS, NULL), 0);
    assert_true(f->broker.real);
    static float x[N_JOBS * AAS_FLEET_IN];
    /* Fault schedule: chunk indices from the seed. */
    int kill_a = chaos_pick(1, 5), kill_b = chaos_pick(8, 12), kill_c = chaos_pick(15, 18);
    int redis_at = chaos_pick(3, 7), broker_down = chaos_pick(9, 11);
    int broker_up = broker_down + 3;
    fprintf(stderr, "chaos: worker kills at chunks %d %d %d, redis at %d, broker "
            "down %d up %d (of %d chunks of %d jobs)\n", kill_a, kill_b, kill_c,
            redis_at, broker_down, broker_up, N_CHUNKS, CHUNK);
    char id[32], why[512];
    int64_t t0 = aas_mono_us();
    for (int c = 0; c < N_CHUNKS; c++) {
        for (int j = c * CHUNK; j < (c + 1) * CHUNK; j++) {
            for (int k = 0; k < AAS_FLEET_IN; k++)
                x[j * AAS_FLEET_IN + k] = aas_fleet_frand();
            snprintf(id, sizeof(id), "chaos-%d", j);
            assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL,
                                              x + j * AAS_FLEET_IN, 1, AAS_FLEET_IN),
                             0);
        }
        assert_int_equal(aas_client_flush(f->client, 180000, NULL, why, sizeof(why)),
                         AAS_ERR_OK);
        if (c == kill_a || c == kill_b || c == kill_c) {
            int w = chaos_pick(0, WORKERS - 1);
            fprintf(stderr, "chaos: SIGKILL worker %d after chunk %d\n", w, c);
            aas_test_proc_kill(&f->workers[w]);
            usleep((useconds_t)chaos_pick(0, 1000) * 1000);
            assert_int_equal(aas_fleet_start_worker(f, w), 0);
        }
        if (c == redis_at) {
            fprintf(stderr, "chaos: SIGKILL redis after chunk %d\n", c);
            assert_int_equal(aas_test_redis_kill(&f->redis), 0);
            sleep(2);
            assert_int_equal(aas_test_redis_restart(&f->redis), 0);
        }
        if (c == broker_down) {
            fprintf(stderr, "chaos: SIGKILL broker 1 after chunk %d\n", c);
            assert_int_equal(aas_test_broker_outage(&f->broker, 1), 0);
        }
        if (c == broker_up) {
            fprintf(stderr, "chaos: restart broker 1 after chunk %d\n", c);
            assert_int_equal(aas_test_broker_outage(&f->broker, 0), 0);
        }
    }
    for (int j = 0; j < N_JOBS; j++) {
        snprintf(id, sizeof(id), "chaos-%d", j);
        assert_int_equal(aas_fleet_check(f, id, x + j * AAS_FLEET_IN, 1, 300000), 0);
    }
    fprintf(stderr, "chaos: %d jobs SUCCEEDED exactly once in %.1f s\n", N_JOBS,
            (double)(aas_mono_us() - t0) / 1e6);
    assert_int_equal(aas_fleet_stop(f), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(five_thousand_jobs_survive_chaos_exactly_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
