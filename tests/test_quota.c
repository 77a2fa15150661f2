/*
 * test_quota.c - per-tenant quotas in the store against a real
 * redis-server (harness_redis): the token bucket (burst, refill, fractional
 * rates), the in-flight limit and its release, a resubmitted id taking no
 * second token, tenants independent, no quota = unlimited and nothing
 * written, "default" for jobs without a tenant, stale in-flight ids pruned,
 * and set/list/delete with their checks.  Timing: only lower bounds with
 * generous margins (two noisy cores).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_redis.h"
#include "store.h"

typedef struct {
    aas_test_redis_t redis;
    aas_store_t *st;
    char errstr[512];
} fixture_t;

static int group_setup(void **state) {
    signal(SIGPIPE, SIG_IGN);
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    if (aas_test_redis_start(&f->redis, NULL) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state) {
    fixture_t *f = *state;
    aas_test_redis_stop(&f->redis);
    free(f);
    return 0;
}

static int open_store(fixture_t *f, int ttl_s) {
    aas_store_conf_t c;
    aas_store_conf_init(&c);
    c.port = f->redis.port;
    c.timeout_ms = 2000;
    if (ttl_s) c.ttl_s = ttl_s;
    return aas_store_new(&c, &f->st, f->errstr, sizeof(f->errstr)) ? -1 : 0;
}

static int setup(void **state) {
    fixture_t *f = *state;
    if (aas_test_redis_cmd(&f->redis, NULL, 0, "FLUSHALL", NULL) != 0) return -1;
    return open_store(f, 0);
}

static int teardown(void **state) {
    fixture_t *f = *state;
    aas_store_destroy(f->st);
    f->st = NULL;
    return 0;
}

static void set_quota(fixture_t *f, const char *tenant, double rate, double burst,
                      int64_t inflight) {
    aas_quota_t q = {.rate = rate, .burst = burst, .inflight = inflight};
    assert_int_equal(aas_store_quota_set(f->st, tenant, &q, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
}

static aas_quota_verdict_t admit(fixture_t *f, const char *tenant, const char *id,
                                 aas_quota_admit_t *out) {
    aas_quota_admit_t a;
    assert_int_equal(aas_store_quota_admit(f->st, tenant, id, &a, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    if (out) *out = a;
    return a.verdict;
}

static void release(fixture_t *f, const char *tenant, const char *id) {
    assert_int_equal(aas_store_quota_release_many(f->st, &tenant, &id, 1, f->errstr,
                                                  sizeof(f->errstr)),
                     AAS_ERR_OK);
}

static void bucket_admits_the_burst_then_refuses_with_the_wait(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 1, 3, 0);
    char id[16];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "j%d", i);
        assert_int_equal(admit(f, "acme", id, NULL), AAS_QUOTA_OK);
    }
    aas_quota_admit_t a;
    assert_int_equal(admit(f, "acme", "j3", &a), AAS_QUOTA_RATE);
    /* One token takes 1000 ms at 1 job/s; some refilled meanwhile. */
    assert_true(a.retry_ms >= 1 && a.retry_ms <= 1000);
    assert_true(a.quota.rate == 1 && a.quota.burst == 3);
    assert_int_equal(a.inflight_now, 3);
    char msg[256];
    aas_quota_refusal_format("acme", &a, msg, sizeof(msg));
    assert_non_null(strstr(msg, "tenant acme is over its rate quota (1 jobs/s, burst 3): retry in "));
}

static void bucket_refills_by_elapsed_time(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 2, 2, 0);
    assert_int_equal(admit(f, "acme", "a", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "b", NULL), AAS_QUOTA_OK);
    aas_quota_admit_t a;
    assert_int_equal(admit(f, "acme", "c", &a), AAS_QUOTA_RATE);
    assert_true(a.retry_ms >= 1 && a.retry_ms <= 500);
    usleep((useconds_t)(a.retry_ms + 100) * 1000); /* at least one token back */
    assert_int_equal(admit(f, "acme", "c", NULL), AAS_QUOTA_OK);
    /* Never above the burst, however long it waited. */
    usleep(1500 * 1000);
    aas_quota_row_t *rows;
    size_t n;
    assert_int_equal(aas_store_quota_list(f->st, &rows, &n, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_true(rows[0].tokens_now == 2.0);
    aas_quota_rows_free(rows, n);
}

static void fractional_rate_waits_seconds(void **state) {
    fixture_t *f = *state;
    set_quota(f, "slow", 0.5, 0, 0); /* burst default max(1, 0.5) = 1 */
    aas_quota_admit_t a;
    assert_int_equal(admit(f, "slow", "a", &a), AAS_QUOTA_OK);
    assert_true(a.quota.burst == 1);
    assert_int_equal(admit(f, "slow", "b", &a), AAS_QUOTA_RATE);
    assert_true(a.retry_ms > 1000 && a.retry_ms <= 2000);
}

/* The worker's metering of a finished job releases its slot in the same
 * script (one round trip for both), also when the job was counted before. */
static void metering_a_job_releases_its_slot(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 0, 0, 1);
    set_quota(f, "default", 0, 0, 1);
    assert_int_equal(admit(f, "acme", "m1", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "", "m2", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "m3", NULL), AAS_QUOTA_INFLIGHT);
    assert_int_equal(admit(f, "default", "m4", NULL), AAS_QUOTA_INFLIGHT);
    aas_store_meter_t m[2] = {
        {.job_id = "m1", .tenant = "acme", .model = "mod", .finished_ms = 1700000000000},
        {.job_id = "m2", .tenant = "", .model = "mod", .finished_ms = 1700000000000}};
    assert_int_equal(aas_store_usage_meter_many(f->st, m, 2, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(m[0].err, AAS_ERR_OK);
    assert_int_equal(m[1].err, AAS_ERR_OK);
    assert_true(m[0].counted && m[1].counted);
    assert_int_equal(admit(f, "acme", "m3", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "default", "m4", NULL), AAS_QUOTA_OK);
    /* A repeat counts nothing and releases again (idempotent). */
    assert_int_equal(aas_store_usage_meter_many(f->st, m, 1, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_false(m[0].counted);
    assert_int_equal(admit(f, "acme", "m5", NULL), AAS_QUOTA_INFLIGHT); /* m3 holds it */
}

static void inflight_limit_refuses_until_a_release(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 0, 0, 2);
    assert_int_equal(admit(f, "acme", "a", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "b", NULL), AAS_QUOTA_OK);
    aas_quota_admit_t a;
    assert_int_equal(admit(f, "acme", "c", &a), AAS_QUOTA_INFLIGHT);
    assert_int_equal(a.retry_ms, AAS_QUOTA_INFLIGHT_RETRY_MS);
    assert_int_equal(a.quota.inflight, 2);
    char msg[256];
    aas_quota_refusal_format("acme", &a, msg, sizeof(msg));
    assert_non_null(strstr(msg, "tenant acme is over its in-flight quota (2 jobs"));
    release(f, "acme", "a");
    release(f, "acme", "a"); /* idempotent */
    assert_int_equal(admit(f, "acme", "c", &a), AAS_QUOTA_OK);
    assert_int_equal(a.inflight_now, 2);
    release(f, "acme", "b");
    release(f, "acme", "c");
    aas_quota_row_t *rows;
    size_t n;
    assert_int_equal(aas_store_quota_list(f->st, &rows, &n, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].inflight_now, 0);
    assert_true(rows[0].tokens_now == -1); /* no rate limit */
    aas_quota_rows_free(rows, n);
}

static void resubmitted_id_takes_no_second_token(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 0.01, 2, 0); /* no refill to speak of in a test */
    assert_int_equal(admit(f, "acme", "x", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "x", NULL), AAS_QUOTA_AGAIN);
    assert_int_equal(admit(f, "acme", "x", NULL), AAS_QUOTA_AGAIN);
    assert_int_equal(admit(f, "acme", "y", NULL), AAS_QUOTA_OK); /* the second token */
    assert_int_equal(admit(f, "acme", "z", NULL), AAS_QUOTA_RATE);
}

static void tenants_are_independent(void **state) {
    fixture_t *f = *state;
    set_quota(f, "acme", 0.01, 1, 0);
    set_quota(f, "bolt", 0.01, 1, 0);
    assert_int_equal(admit(f, "acme", "a1", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "a2", NULL), AAS_QUOTA_RATE);
    assert_int_equal(admit(f, "bolt", "b1", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "bolt", "b2", NULL), AAS_QUOTA_RATE);
    assert_int_equal(admit(f, "carl", "c1", NULL), AAS_QUOTA_NONE);
}

static void no_quota_is_unlimited_and_writes_nothing(void **state) {
    fixture_t *f = *state;
    char id[16], out[64];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        assert_int_equal(admit(f, "free", id, NULL), AAS_QUOTA_NONE);
    }
    assert_int_equal(aas_test_redis_cmd(&f->redis, out, sizeof(out), "DBSIZE", NULL), 0);
    assert_string_equal(out, "0");
}

static void jobs_without_tenant_count_as_default(void **state) {
    fixture_t *f = *state;
    set_quota(f, "default", 0, 0, 1);
    assert_int_equal(admit(f, NULL, "d1", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "", "d2", NULL), AAS_QUOTA_INFLIGHT);
    assert_int_equal(admit(f, "default", "d3", NULL), AAS_QUOTA_INFLIGHT);
    release(f, NULL, "d1");
    assert_int_equal(admit(f, "", "d2", NULL), AAS_QUOTA_OK);
}

static void stale_inflight_ids_are_pruned(void **state) {
    fixture_t *f = *state;
    aas_store_destroy(f->st);
    f->st = NULL;
    assert_int_equal(open_store(f, 1), 0); /* ttl_s 1: ids older than 1 s are stale */
    set_quota(f, "acme", 0, 0, 1);
    assert_int_equal(admit(f, "acme", "lost", NULL), AAS_QUOTA_OK);
    assert_int_equal(admit(f, "acme", "next", NULL), AAS_QUOTA_INFLIGHT);
    usleep(1300 * 1000);
    assert_int_equal(admit(f, "acme", "next", NULL), AAS_QUOTA_OK);
}

static void set_checks_and_replaces_delete_removes(void **state) {
    fixture_t *f = *state;
    aas_quota_t bad[] = {{.rate = -1}, {.rate = 1, .burst = 0.5}, {.burst = 2, .inflight = 1},
                         {.inflight = -1}, {0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(aas_store_quota_set(f->st, "acme", &bad[i], f->errstr,
                                             sizeof(f->errstr)),
                         AAS_ERR_INVAL);
    aas_quota_t q = {.rate = 1};
    assert_int_equal(aas_store_quota_set(f->st, "bad name", &q, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_INVAL);
    set_quota(f, "acme", 5, 10, 0);
    set_quota(f, "acme", 0, 0, 7); /* replaces: the rate is gone */
    set_quota(f, "bolt", 2.5, 0, 3);
    aas_quota_row_t *rows;
    size_t n;
    assert_int_equal(aas_store_quota_list(f->st, &rows, &n, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].tenant, "acme");
    assert_true(rows[0].quota.rate == 0);
    assert_int_equal(rows[0].quota.inflight, 7);
    assert_string_equal(rows[1].tenant, "bolt");
    assert_true(rows[1].quota.rate == 2.5 && rows[1].quota.burst == 2.5);
    assert_int_equal(rows[1].quota.inflight, 3);
    assert_true(rows[1].tokens_now == 2.5);
    aas_quota_rows_free(rows, n);
    assert_int_equal(aas_store_quota_delete(f->st, "acme", f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_quota_delete(f->st, "acme", f->errstr, sizeof(f->errstr)),
                     AAS_ERR_NOT_FOUND);
    assert_int_equal(admit(f, "acme", "j", NULL), AAS_QUOTA_NONE);
    assert_int_equal(aas_store_quota_list(f->st, &rows, &n, f->errstr, sizeof(f->errstr)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    aas_quota_rows_free(rows, n);
}

static void invalid_ids_are_refused(void **state) {
    fixture_t *f = *state;
    aas_quota_admit_t a;
    assert_int_equal(aas_store_quota_admit(f->st, "a:b", "j", &a, NULL, 0), AAS_ERR_INVAL);
    assert_int_equal(aas_store_quota_admit(f->st, "acme", "{x}", &a, NULL, 0), AAS_ERR_INVAL);
    assert_true(aas_err_is_retriable(AAS_ERR_QUOTA));
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(bucket_admits_the_burst_then_refuses_with_the_wait),
        T(bucket_refills_by_elapsed_time),
        T(fractional_rate_waits_seconds),
        T(inflight_limit_refuses_until_a_release),
        T(metering_a_job_releases_its_slot),
        T(resubmitted_id_takes_no_second_token),
        T(tenants_are_independent),
        T(no_quota_is_unlimited_and_writes_nothing),
        T(jobs_without_tenant_count_as_default),
        T(stale_inflight_ids_are_pruned),
        T(set_checks_and_replaces_delete_removes),
        T(invalid_ids_are_refused),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
