/*
 * test_usage.c - usage metering (docs/sharing.md#metering) against ground
 * truth, on a real fleet (dev broker and real Kafka):
 *   - jobs of three tenants (one of them none: "default"), a worker
 *     SIGKILLed mid-stream and restarted: every tenant's metered jobs and
 *     rows equal what it submitted, exactly (a redelivered job counts once;
 *     one that died between its terminal write and its metering is metered
 *     by its redelivery), and the tenant shows in the job's status;
 *   - the compute time metered equals the worker's own counter
 *     (aas_worker_compute_seconds_sum on its /metrics) within 1 %, and the
 *     jobs metered equal its aas_worker_jobs_total.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_fleet.h"
#include "store.h"

#define IN AAS_FLEET_IN

static const char *tenant_of(int i) { return i % 10 == 9 ? NULL : i % 2 ? "bolt" : "acme"; }
static int64_t rows_of(int i) { return i % 2 ? 1 : 2; }

/* Sum of the metered jobs, rows and compute of tenant (all models, all
 * hours), or of every tenant when tenant is NULL. */
static void metered(aas_fleet_t *f, const char *tenant, int64_t *jobs, int64_t *rows,
                    int64_t *compute_us) {
    aas_usage_row_t *r = NULL;
    size_t n = 0;
    char why[512];
    *jobs = *rows = *compute_us = 0;
    aas_err_t err = aas_store_usage_read(aas_client_store(f->client), tenant, 0, INT64_MAX / 2,
                                         &r, &n, why, sizeof(why));
    if (err) fail_msg("usage read: %s", why);
    for (size_t i = 0; i < n; i++) {
        *jobs += r[i].jobs;
        *rows += r[i].u.rows;
        *compute_us += r[i].u.compute_us;
    }
    aas_usage_rows_free(r, n);
}

static void metering_is_exact_across_a_sigkill(void **state) {
    (void)state;
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 2, NULL), 0);
    enum { N = 1200 };
    static float x[N * 2 * IN];
    char id[64], why[512];
    int64_t want_jobs[3] = {0}, want_rows[3] = {0}; /* acme, bolt, default */
    for (int i = 0; i < N; i++) {
        int64_t rows = rows_of(i);
        for (int k = 0; k < rows * IN; k++) x[(size_t)i * 2 * IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "use-%d", i);
        const char *t = tenant_of(i);
        int w = !t ? 2 : !strcmp(t, "bolt");
        want_jobs[w]++;
        want_rows[w] += rows;
        assert_int_equal(aas_fleet_submit_as(f, id, AAS_FLEET_MODEL, t, x + (size_t)i * 2 * IN,
                                             rows, IN),
                         0);
        if (i == 400) {
            /* No goodbye: its jobs in flight are redelivered. */
            aas_test_proc_kill(&f->workers[0]);
            assert_int_equal(aas_fleet_start_worker(f, 0), 0);
        }
    }
    assert_int_equal(aas_client_flush(f->client, 120000, NULL, why, sizeof(why)), AAS_ERR_OK);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "use-%d", i);
        assert_int_equal(aas_fleet_check(f, id, x + (size_t)i * 2 * IN, rows_of(i), 180000), 0);
    }
    /* A job's tenant is in its status. */
    aas_job_info_t info;
    assert_int_equal(aas_client_status(f->client, "use-1", &info, why, sizeof(why)), AAS_ERR_OK);
    assert_non_null(info.tenant);
    assert_string_equal(info.tenant, "bolt");
    aas_job_info_clear(&info);
    assert_int_equal(aas_client_status(f->client, "use-9", &info, why, sizeof(why)), AAS_ERR_OK);
    assert_null(info.tenant);
    aas_job_info_clear(&info);

    /* The last metering follows its terminal write by a round trip. */
    const char *names[3] = {"acme", "bolt", "default"};
    for (int w = 0; w < 3; w++) {
        int64_t jobs = 0, rows = 0, us = 0;
        for (int tries = 0; tries < 100; tries++) {
            metered(f, names[w], &jobs, &rows, &us);
            if (jobs >= want_jobs[w]) break;
            usleep(100000);
        }
        print_message("tenant %s: metered %lld jobs %lld rows (submitted %lld, %lld)\n",
                      names[w], (long long)jobs, (long long)rows, (long long)want_jobs[w],
                      (long long)want_rows[w]);
        assert_int_equal(jobs, want_jobs[w]);
        assert_int_equal(rows, want_rows[w]);
    }
    assert_int_equal(aas_fleet_stop(f), 0);
}

/* A free loopback port. */
static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || getsockname(s, (struct sockaddr *)&a, &len)) {
        if (s >= 0) close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* The value of the first line of GET /metrics starting with `series `. */
static double scrape(int port, const char *series) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static char buf[1 << 20];
    size_t n = 0;
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) fail_msg("connect metrics");
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    if (write(s, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) fail_msg("write metrics");
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(s, buf + n, sizeof(buf) - 1 - n)) > 0) n += (size_t)r;
    close(s);
    buf[n] = '\0';
    double sum = 0;
    size_t len = strlen(series);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (!strncmp(line, series, len) && (line[len] == ' ' || line[len] == '{'))
            sum += strtod(strrchr(line, ' ') + 1, NULL);
    return sum;
}

static void metered_compute_equals_the_workers_counter(void **state) {
    (void)state;
    int port = free_port();
    assert_true(port > 0);
    static char port_arg[32];
    snprintf(port_arg, sizeof(port_arg), "metrics.port=%d", port);
    static const char *args[3];
    args[0] = "-X";
    args[1] = port_arg;
    args[2] = NULL;
    aas_fleet_t *f = NULL;
    assert_int_equal(aas_fleet_start(&f, 1, args), 0);
    enum { N = 600 };
    static float x[N * 4 * IN];
    char id[64], why[512];
    for (int i = 0; i < N; i++) {
        int64_t rows = 1 + i % 4;
        for (int k = 0; k < rows * IN; k++) x[(size_t)i * 4 * IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "cmp-%d", i);
        assert_int_equal(aas_fleet_submit_as(f, id, AAS_FLEET_MODEL, "carol",
                                             x + (size_t)i * 4 * IN, rows, IN),
                         0);
    }
    assert_int_equal(aas_client_flush(f->client, 120000, NULL, why, sizeof(why)), AAS_ERR_OK);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "cmp-%d", i);
        assert_int_equal(aas_fleet_check(f, id, x + (size_t)i * 4 * IN, 1 + i % 4, 180000), 0);
    }
    int64_t jobs = 0, rows = 0, us = 0;
    for (int tries = 0; tries < 100 && jobs < N; tries++) {
        metered(f, "carol", &jobs, &rows, &us);
        if (jobs < N) usleep(100000);
    }
    double counter_s = scrape(port, "aas_worker_compute_seconds_sum");
    double jobs_counter = scrape(port, "aas_worker_jobs_total");
    print_message("metered %lld jobs, %.6f s compute; the worker's counters: %.0f jobs, "
                  "%.6f s\n", (long long)jobs, (double)us / 1e6, jobs_counter, counter_s);
    assert_int_equal(jobs, N);
    assert_int_equal(rows, N / 4 * (1 + 2 + 3 + 4));
    assert_true(jobs_counter == (double)N);
    assert_true(counter_s > 0);
    double diff = (double)us / 1e6 - counter_s;
    assert_true(diff < 0.01 * counter_s && diff > -0.01 * counter_s);
    assert_int_equal(aas_fleet_stop(f), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metering_is_exact_across_a_sigkill),
        cmocka_unit_test(metered_compute_equals_the_workers_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
