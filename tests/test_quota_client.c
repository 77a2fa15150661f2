/*
 * test_quota_client.c - per-tenant quotas through the client library, on a
 * real redis-server and a broker (docs/sharing.md#quotas):
 *   - over the in-flight limit aas_client_submit() returns AAS_ERR_QUOTA
 *     (retriable) naming the limit, aas_client_last_retry_ms() the hint,
 *     nothing is published and the id is free again; once a worker has
 *     finished the admitted jobs, the tenant's in-flight count is back to
 *     0 and the refused id goes through;
 *   - over the rate, the wait is the bucket's (seconds for a slow rate);
 *     another tenant is not held.
 * Runs on the dev broker and on real Kafka (AAS_TEST_BROKER).
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

static int setup(void **state) {
    aas_fleet_t *f = NULL;
    if (aas_fleet_start(&f, 0, NULL)) { /* no worker yet: jobs stay in flight */
        aas_fleet_stop(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    aas_fleet_stop(*state);
    return 0;
}

static float x[AAS_FLEET_IN];

/* Submit one job of tenant; the client's error, its text in why. */
static aas_err_t submit(aas_fleet_t *f, const char *id, const char *tenant, char *why,
                        size_t why_size) {
    aas_tensor_t t;
    int64_t shape[2] = {1, AAS_FLEET_IN};
    aas_err_t err = aas_tensor_set_f32(&t, "x", x, 2, shape);
    if (err) return err;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = AAS_FLEET_MODEL,
                     .inputs = &t, .n_inputs = 1, .tenant = (char *)tenant};
    err = aas_client_submit(f->client, &job, why, why_size);
    aas_tensor_clear(&t);
    return err;
}

static void flush_ok(aas_fleet_t *f) {
    char why[512];
    size_t failed = 1;
    assert_int_equal(aas_client_flush(f->client, 60000, &failed, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(failed, 0);
}

static int64_t inflight_of(aas_fleet_t *f, const char *tenant) {
    aas_quota_row_t *rows;
    size_t n;
    char why[512];
    int64_t v = -1;
    assert_int_equal(aas_store_quota_list(aas_client_store(f->client), &rows, &n, why, sizeof(why)),
                     AAS_ERR_OK);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].tenant, tenant)) v = rows[i].inflight_now;
    aas_quota_rows_free(rows, n);
    return v;
}

static void inflight_limit_refuses_then_frees_when_jobs_finish(void **state) {
    aas_fleet_t *f = *state;
    char why[1024];
    for (int i = 0; i < AAS_FLEET_IN; i++) x[i] = aas_fleet_frand();
    aas_quota_t q = {.inflight = 2};
    assert_int_equal(aas_store_quota_set(aas_client_store(f->client), "acme", &q, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(submit(f, "qa-1", "acme", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(submit(f, "qa-2", "acme", why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f);
    aas_err_t err = submit(f, "qa-3", "acme", why, sizeof(why));
    assert_int_equal(err, AAS_ERR_QUOTA);
    assert_true(aas_err_is_retriable(err));
    assert_non_null(strstr(why, "tenant acme is over its in-flight quota (2 jobs"));
    assert_int_equal(aas_client_last_retry_ms(f->client), AAS_QUOTA_INFLIGHT_RETRY_MS);
    aas_job_info_t info;
    assert_int_equal(aas_client_status(f->client, "qa-3", &info, why, sizeof(why)),
                     AAS_ERR_NOT_FOUND); /* nothing published, no claim left */
    assert_int_equal(inflight_of(f, "acme"), 2);
    /* A worker runs the two; the worker releases them. */
    f->n_workers = 1;
    assert_int_equal(aas_fleet_start_worker(f, 0), 0);
    assert_int_equal(aas_fleet_check(f, "qa-1", x, 1, 60000), 0);
    assert_int_equal(aas_fleet_check(f, "qa-2", x, 1, 60000), 0);
    int64_t n = -1;
    for (int i = 0; i < 100 && (n = inflight_of(f, "acme")) != 0; i++) usleep(100000);
    assert_int_equal(n, 0);
    assert_int_equal(submit(f, "qa-3", "acme", why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f);
    assert_int_equal(aas_fleet_check(f, "qa-3", x, 1, 60000), 0);
}

static void rate_refusal_waits_the_bucket_other_tenants_go(void **state) {
    aas_fleet_t *f = *state;
    char why[1024];
    aas_quota_t q = {.rate = 0.2, .burst = 1};
    assert_int_equal(aas_store_quota_set(aas_client_store(f->client), "bolt", &q, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(submit(f, "qb-1", "bolt", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(submit(f, "qb-2", "bolt", why, sizeof(why)), AAS_ERR_QUOTA);
    assert_non_null(strstr(why, "tenant bolt is over its rate quota (0.2 jobs/s, burst 1): retry in"));
    int64_t ms = aas_client_last_retry_ms(f->client);
    assert_true(ms > 1000 && ms <= 5000); /* a token every 5 s */
    assert_int_equal(submit(f, "qc-1", "carl", why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(submit(f, "qc-2", NULL, why, sizeof(why)), AAS_ERR_OK);
    flush_ok(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inflight_limit_refuses_then_frees_when_jobs_finish),
        cmocka_unit_test(rate_refusal_waits_the_bucket_other_tenants_go),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
