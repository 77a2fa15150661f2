/*
 * test_metrics.c - the Prometheus registry (metrics.h): exact text
 * exposition for each type, get-or-create, validation, the series cap,
 * concurrent updates while rendering, and the HTTP endpoint over a real
 * socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "metrics.h"

static int setup(void **state) {
    aas_metrics_t *m = NULL;
    char err[256];
    if (aas_metrics_new(&m, err, sizeof(err)) != AAS_ERR_OK) return -1;
    *state = m;
    return 0;
}

static int teardown(void **state) {
    aas_metrics_destroy(*state);
    return 0;
}

/* The rendered registry; the caller frees it. */
static char *render(aas_metrics_t *m) {
    char *text = NULL, err[256];
    size_t len = 0;
    assert_int_equal(aas_metrics_render(m, &text, &len, err, sizeof(err)), AAS_ERR_OK);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static void assert_render(aas_metrics_t *m, const char *want) {
    char *got = render(m);
    if (strcmp(got, want) != 0) print_error("got:\n%s\nwant:\n%s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

static void render_empty_registry_is_empty_text(void **state) {
    assert_render(*state, "");
}

static void render_counter_exact(void **state) {
    aas_metrics_t *m = *state;
    aas_metric_t *ok = aas_metrics_counter(m, "aas_worker_jobs_total", "Jobs finished",
                                           "model=\"digits\",status=\"SUCCEEDED\"");
    aas_metric_t *bad = aas_metrics_counter(m, "aas_worker_jobs_total", NULL,
                                            "model=\"digits\",status=\"FAILED\"");
    aas_metric_t *plain = aas_metrics_counter(m, "aas_things_total", "", NULL);
    assert_non_null(ok);
    assert_non_null(bad);
    assert_non_null(plain);
    aas_metric_inc(ok, 1);
    aas_metric_inc(ok, 2);
    aas_metric_inc(bad, 0.5);
    aas_metric_inc(bad, -1);   /* ignored: counters only go up */
    aas_metric_inc(bad, NAN);  /* ignored */
    aas_metric_set(ok, 100);   /* ignored: not a gauge */
    aas_metric_observe(ok, 1); /* ignored: not a histogram */
    assert_render(m,
                  "# HELP aas_worker_jobs_total Jobs finished\n"
                  "# TYPE aas_worker_jobs_total counter\n"
                  "aas_worker_jobs_total{model=\"digits\",status=\"SUCCEEDED\"} 3\n"
                  "aas_worker_jobs_total{model=\"digits\",status=\"FAILED\"} 0.5\n"
                  "# TYPE aas_things_total counter\n"
                  "aas_things_total 0\n");
    assert_true(aas_metric_value(ok) == 3.0);
}

static void render_gauge_exact(void **state) {
    aas_metrics_t *m = *state;
    aas_metric_t *g = aas_metrics_gauge(m, "aas_worker_inflight", "Jobs in flight\nper worker \\ now", "");
    aas_metric_t *lag = aas_metrics_gauge(m, "aas_scheduler_lag", "Lag", "partition=\"0\"");
    aas_metric_t *odd = aas_metrics_gauge(m, "odd", NULL, "v=\"a\\\"b\\\\c\\nd\"");
    assert_non_null(g);
    assert_non_null(lag);
    assert_non_null(odd);
    aas_metric_set(g, 7);
    aas_metric_inc(g, -2.25);
    aas_metric_set(lag, 0.1);
    aas_metric_set(odd, INFINITY);
    assert_render(m,
                  "# HELP aas_worker_inflight Jobs in flight\\nper worker \\\\ now\n"
                  "# TYPE aas_worker_inflight gauge\n"
                  "aas_worker_inflight 4.75\n"
                  "# HELP aas_scheduler_lag Lag\n"
                  "# TYPE aas_scheduler_lag gauge\n"
                  "aas_scheduler_lag{partition=\"0\"} 0.1\n"
                  "# TYPE odd gauge\n"
                  "odd{v=\"a\\\"b\\\\c\\nd\"} +Inf\n");
    aas_metric_set(odd, -INFINITY);
    aas_metric_set(lag, 1e21);
    aas_metric_set(g, NAN);
    char *t = render(m);
    assert_non_null(strstr(t, "odd{v=\"a\\\"b\\\\c\\nd\"} -Inf\n"));
    assert_non_null(strstr(t, "aas_scheduler_lag{partition=\"0\"} 1e+21\n"));
    assert_non_null(strstr(t, "aas_worker_inflight NaN\n"));
    free(t);
}

static void render_histogram_exact(void **state) {
    aas_metrics_t *m = *state;
    const double b[] = {0.005, 0.1, 1, 2.5};
    aas_metric_t *h = aas_metrics_histogram(m, "aas_worker_compute_seconds", "Compute time",
                                            "model=\"digits\"", b, 4);
    assert_non_null(h);
    aas_metric_observe(h, 0.001);  /* <= 0.005 */
    aas_metric_observe(h, 0.005);  /* on the bound: le is inclusive */
    aas_metric_observe(h, 0.5);    /* <= 1 */
    aas_metric_observe(h, 2);      /* <= 2.5 */
    aas_metric_observe(h, 10);     /* +Inf only */
    aas_metric_observe(h, NAN);    /* ignored */
    aas_metric_inc(h, 1);          /* ignored: not a counter */
    aas_metric_t *rows = aas_metrics_histogram(m, "aas_worker_batch_rows", NULL, NULL, NULL, 0);
    assert_non_null(rows);
    aas_metric_observe(rows, 3);
    assert_render(m,
                  "# HELP aas_worker_compute_seconds Compute time\n"
                  "# TYPE aas_worker_compute_seconds histogram\n"
                  "aas_worker_compute_seconds_bucket{model=\"digits\",le=\"0.005\"} 2\n"
                  "aas_worker_compute_seconds_bucket{model=\"digits\",le=\"0.1\"} 2\n"
                  "aas_worker_compute_seconds_bucket{model=\"digits\",le=\"1\"} 3\n"
                  "aas_worker_compute_seconds_bucket{model=\"digits\",le=\"2.5\"} 4\n"
                  "aas_worker_compute_seconds_bucket{model=\"digits\",le=\"+Inf\"} 5\n"
                  "aas_worker_compute_seconds_sum{model=\"digits\"} 12.506\n"
                  "aas_worker_compute_seconds_count{model=\"digits\"} 5\n"
                  "# TYPE aas_worker_batch_rows histogram\n"
                  "aas_worker_batch_rows_bucket{le=\"+Inf\"} 1\n"
                  "aas_worker_batch_rows_sum 3\n"
                  "aas_worker_batch_rows_count 1\n");
    assert_true(aas_metric_value(h) == 5.0);
}

static void get_or_create_returns_same_series(void **state) {
    aas_metrics_t *m = *state;
    aas_metric_t *a = aas_metrics_counter(m, "c_total", "help", "a=\"1\",b=\"2\"");
    aas_metric_t *a2 = aas_metrics_counter(m, "c_total", "other help", "a=\"1\",b=\"2\"");
    aas_metric_t *a3 = aas_metrics_counter(m, "c_total", NULL, "b=\"2\",a=\"1\"");
    aas_metric_t *other = aas_metrics_counter(m, "c_total", NULL, "a=\"1\",b=\"3\"");
    assert_non_null(a);
    assert_ptr_equal(a, a2);
    assert_ptr_equal(a, a3); /* label order does not matter */
    assert_ptr_not_equal(a, other);
    aas_metric_t *n1 = aas_metrics_gauge(m, "g", NULL, NULL);
    assert_null(aas_metrics_counter(m, "g", "clash help", NULL)); /* sets no help */
    assert_ptr_equal(n1, aas_metrics_gauge(m, "g", "late help", NULL)); /* first help wins */
    assert_ptr_equal(n1, aas_metrics_gauge(m, "g", "later help", NULL));
    assert_ptr_equal(n1, aas_metrics_gauge(m, "g", NULL, ""));
    const double b[] = {1, 2};
    aas_metric_t *h = aas_metrics_histogram(m, "h", NULL, NULL, b, 2);
    assert_ptr_equal(h, aas_metrics_histogram(m, "h", NULL, NULL, b, 2));
    aas_metric_inc(a3, 1);
    assert_render(m,
                  "# HELP c_total help\n"
                  "# TYPE c_total counter\n"
                  "c_total{a=\"1\",b=\"2\"} 1\n"
                  "c_total{a=\"1\",b=\"3\"} 0\n"
                  "# HELP g late help\n"
                  "# TYPE g gauge\n"
                  "g 0\n"
                  "# TYPE h histogram\n"
                  "h_bucket{le=\"1\"} 0\n"
                  "h_bucket{le=\"2\"} 0\n"
                  "h_bucket{le=\"+Inf\"} 0\n"
                  "h_sum 0\n"
                  "h_count 0\n");
}

static void type_clash_returns_null(void **state) {
    aas_metrics_t *m = *state;
    const double b[] = {1, 2}, b2[] = {1, 3};
    assert_non_null(aas_metrics_counter(m, "x", NULL, "a=\"1\""));
    assert_null(aas_metrics_gauge(m, "x", NULL, "a=\"1\""));  /* same series */
    assert_null(aas_metrics_gauge(m, "x", NULL, "a=\"2\""));  /* same family */
    assert_null(aas_metrics_histogram(m, "x", NULL, NULL, b, 2));
    assert_non_null(aas_metrics_histogram(m, "h", NULL, NULL, b, 2));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, b2, 2)); /* other bounds */
    assert_null(aas_metrics_histogram(m, "h", NULL, "a=\"1\"", b, 1));
    assert_null(aas_metrics_counter(m, "h", NULL, NULL));
    /* Names a histogram prints itself. */
    assert_null(aas_metrics_counter(m, "h_count", NULL, NULL));
    assert_null(aas_metrics_gauge(m, "h_bucket", NULL, NULL));
    assert_non_null(aas_metrics_counter(m, "y_sum", NULL, NULL));
    assert_null(aas_metrics_histogram(m, "y", NULL, NULL, b, 2));
    /* Updates on NULL are no-ops. */
    aas_metric_inc(NULL, 1);
    aas_metric_set(NULL, 1);
    aas_metric_observe(NULL, 1);
    assert_true(aas_metric_value(NULL) == 0);
    char *t = render(m);
    assert_null(strstr(t, "# TYPE x gauge"));
    free(t);
}

static void bad_names_and_labels_return_null(void **state) {
    aas_metrics_t *m = *state;
    const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b", NULL};
    for (size_t i = 0; bad_names[i]; i++)
        assert_null(aas_metrics_counter(m, bad_names[i], NULL, NULL));
    assert_null(aas_metrics_counter(m, NULL, NULL, NULL));
    assert_null(aas_metrics_counter(NULL, "ok", NULL, NULL));
    assert_non_null(aas_metrics_counter(m, "ns:sub_name1", NULL, NULL));
    const char *bad_labels[] = {
        "a",                 /* no value */
        "a=1",               /* unquoted */
        "a=\"1",             /* unterminated */
        "a=\"1\",",          /* trailing comma */
        "a=\"1\" ,b=\"2\"",  /* space */
        " a=\"1\"",
        "1a=\"1\"",          /* name starts with a digit */
        "a-b=\"1\"",
        "__name__=\"x\"",    /* reserved */
        "a=\"1\",a=\"2\"",   /* twice */
        "a=\"x\\y\"",        /* unknown escape */
        "a=\"x\ny\"",        /* raw newline */
        "a=\"x\"y",
        ",a=\"1\"",
        NULL};
    for (size_t i = 0; bad_labels[i]; i++) {
        if (aas_metrics_counter(m, "c", NULL, bad_labels[i]))
            fail_msg("accepted labels '%s'", bad_labels[i]);
    }
    char many[512] = "";
    for (int i = 0; i <= AAS_METRICS_MAX_LABELS; i++) /* one too many */
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sl%d=\"v\"",
                 i ? "," : "", i);
    assert_null(aas_metrics_counter(m, "c", NULL, many));
    char *huge = malloc(AAS_METRICS_MAX_LABELS_LEN + 16);
    assert_non_null(huge);
    memset(huge, 'v', AAS_METRICS_MAX_LABELS_LEN + 15);
    memcpy(huge, "a=\"", 3);
    huge[AAS_METRICS_MAX_LABELS_LEN + 13] = '"';
    huge[AAS_METRICS_MAX_LABELS_LEN + 14] = '\0';
    assert_null(aas_metrics_counter(m, "c", NULL, huge));
    free(huge);
    /* Histograms: le is theirs; bounds must rise and be finite. */
    const double up[] = {1, 2}, flat[] = {1, 1}, down[] = {2, 1}, inf[] = {1, INFINITY},
                 nan[] = {NAN};
    assert_null(aas_metrics_histogram(m, "h", NULL, "le=\"1\"", up, 2));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, flat, 2));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, down, 2));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, inf, 2));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, nan, 1));
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, NULL, 2));
    double many_b[AAS_METRICS_MAX_BOUNDS + 1];
    for (size_t i = 0; i <= AAS_METRICS_MAX_BOUNDS; i++) many_b[i] = (double)i;
    assert_null(aas_metrics_histogram(m, "h", NULL, NULL, many_b, AAS_METRICS_MAX_BOUNDS + 1));
    assert_non_null(aas_metrics_histogram(m, "h", NULL, NULL, many_b, AAS_METRICS_MAX_BOUNDS));
    /* A counter may have a label le. */
    assert_non_null(aas_metrics_counter(m, "c", NULL, "le=\"1\""));
    /* Only the valid ones exist. */
    char *t = render(m);
    assert_non_null(strstr(t, "# TYPE ns:sub_name1 counter\nns:sub_name1 0\n"));
    assert_non_null(strstr(t, "h_bucket{le=\"0\"} 0\n"));
    assert_non_null(strstr(t, "h_bucket{le=\"63\"} 0\nh_bucket{le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(t, "# TYPE c counter\nc{le=\"1\"} 0\n"));
    assert_null(strstr(t, "# TYPE c counter\nc{le=\"1\"} 0\nc"));
    assert_null(strstr(t, "# TYPE a"));
    free(t);
}

static void series_cap_refuses_beyond_max(void **state) {
    aas_metrics_t *m = *state;
    char labels[64];
    for (int i = 0; i < AAS_METRICS_MAX_SERIES; i++) {
        snprintf(labels, sizeof(labels), "id=\"%d\"", i);
        aas_metric_t *s = aas_metrics_counter(m, "exploded_total", NULL, labels);
        if (!s) fail_msg("series %d refused below the cap", i);
        aas_metric_inc(s, 1);
    }
    assert_null(aas_metrics_counter(m, "exploded_total", NULL, "id=\"new\""));
    assert_null(aas_metrics_gauge(m, "another", NULL, NULL)); /* the cap is per registry */
    /* Existing series are still found and updated. */
    aas_metric_t *s0 = aas_metrics_counter(m, "exploded_total", NULL, "id=\"0\"");
    assert_non_null(s0);
    aas_metric_inc(s0, 1);
    char *t = render(m);
    assert_non_null(strstr(t, "exploded_total{id=\"0\"} 2\n"));
    assert_non_null(strstr(t, "exploded_total{id=\"9999\"} 1\n"));
    assert_null(strstr(t, "id=\"new\""));
    assert_null(strstr(t, "another"));
    assert_non_null(strstr(t, "# TYPE aas_metrics_refused_total counter\n"
                              "aas_metrics_refused_total 2\n"));
    free(t);
}

/* ---------------------------------------------------------- concurrency */

#define THREAD_ITERS 200000

typedef struct {
    aas_metrics_t *m;
    const char *who;
} worker_arg_t;

static const double hammer_bounds[] = {0.5, 1.5};

static void *hammer(void *p) {
    worker_arg_t *a = p;
    const double *b = hammer_bounds;
    char labels[32];
    snprintf(labels, sizeof(labels), "who=\"%s\"", a->who);
    aas_metric_t *mine = aas_metrics_counter(a->m, "hammer_total", NULL, labels);
    aas_metric_t *shared = aas_metrics_counter(a->m, "shared_total", NULL, NULL);
    aas_metric_t *g = aas_metrics_gauge(a->m, "shared_gauge", NULL, NULL);
    aas_metric_t *h = aas_metrics_histogram(a->m, "shared_hist", NULL, NULL, b, 2);
    for (int i = 0; i < THREAD_ITERS; i++) {
        aas_metric_inc(mine, 1);
        aas_metric_inc(shared, 1);
        aas_metric_inc(g, 1);
        aas_metric_inc(g, -1);
        aas_metric_observe(h, (double)(i % 3)); /* 0, 1, 2 */
        /* Lookups race with creations too. */
        if (i % 1000 == 0 && aas_metrics_counter(a->m, "hammer_total", NULL, labels) != mine)
            return (void *)1;
    }
    return NULL;
}

static void concurrent_updates_while_rendering_are_exact(void **state) {
    aas_metrics_t *m = *state;
    pthread_t t[2];
    worker_arg_t args[2] = {{m, "a"}, {m, "b"}};
    /* Families render in creation order: create them before the race (the
     * threads' lookups then find them). */
    aas_metric_t *shared = aas_metrics_counter(m, "shared_total", NULL, NULL);
    assert_non_null(aas_metrics_counter(m, "hammer_total", NULL, "who=\"a\""));
    assert_non_null(aas_metrics_counter(m, "hammer_total", NULL, "who=\"b\""));
    assert_non_null(aas_metrics_gauge(m, "shared_gauge", NULL, NULL));
    assert_non_null(aas_metrics_histogram(m, "shared_hist", NULL, NULL, hammer_bounds, 2));
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
    int renders = 0;
    for (;;) {
        char *text = render(m);
        free(text);
        renders++;
        /* Stop rendering once both threads are far along. */
        if (aas_metric_value(shared) >= 2.0 * THREAD_ITERS || renders > 100000) break;
    }
    for (int i = 0; i < 2; i++) {
        void *rv;
        assert_int_equal(pthread_join(t[i], &rv), 0);
        assert_null(rv);
    }
    assert_true(renders > 1);
    char *text = render(m);
    char want[2048];
    long long c0 = 0, c1 = 0, c2 = 0;
    for (int i = 0; i < THREAD_ITERS; i++) {
        if (i % 3 == 0) c0++;
        else if (i % 3 == 1) c1++;
        else c2++;
    }
    snprintf(want, sizeof(want),
             "# TYPE shared_total counter\n"
             "shared_total %d\n"
             "# TYPE hammer_total counter\n"
             "hammer_total{who=\"a\"} %d\n"
             "hammer_total{who=\"b\"} %d\n"
             "# TYPE shared_gauge gauge\n"
             "shared_gauge 0\n"
             "# TYPE shared_hist histogram\n"
             "shared_hist_bucket{le=\"0.5\"} %lld\n"
             "shared_hist_bucket{le=\"1.5\"} %lld\n"
             "shared_hist_bucket{le=\"+Inf\"} %d\n"
             "shared_hist_sum %lld\n"
             "shared_hist_count %d\n",
             2 * THREAD_ITERS, THREAD_ITERS, THREAD_ITERS, 2 * c0, 2 * (c0 + c1),
             2 * THREAD_ITERS, 2 * (c1 + 2 * c2), 2 * THREAD_ITERS);
    if (strcmp(text, want) != 0) fail_msg("got:\n%s\nwant:\n%s", text, want);
    free(text);
}

/* ----------------------------------------------------------------- HTTP */

/* One HTTP/1.1 request with Connection: close; returns the status code
 * and the whole response (headers + body, malloc'ed) in *resp. */
static int http_request(int port, const char *method, const char *path, char **resp) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n",
                     method, path);
    assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR) continue;
        assert_true(r >= 0); /* a timeout fails the test */
        if (r == 0) break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    int status = 0;
    assert_int_equal(sscanf(buf, "HTTP/1.%*d %d", &status), 1);
    *resp = buf;
    return status;
}

static void http_serves_metrics_404_and_405(void **state) {
    aas_metrics_t *m = *state;
    char err[256];
    aas_metric_t *c = aas_metrics_counter(m, "aas_worker_jobs_total", "Jobs",
                                          "model=\"digits\",status=\"SUCCEEDED\"");
    aas_metric_inc(c, 42);
    assert_int_equal(aas_metrics_port(m), 0);
    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", 0, err, sizeof(err)), AAS_ERR_OK);
    int port = aas_metrics_port(m);
    assert_true(port > 0 && port <= 65535);
    /* Serving twice is refused. */
    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", 0, err, sizeof(err)), AAS_ERR_CONFLICT);
    assert_int_equal(aas_metrics_port(m), port);

    char *resp = NULL;
    assert_int_equal(http_request(port, "GET", "/metrics", &resp), 200);
    assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
    char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4,
                        "# HELP aas_worker_jobs_total Jobs\n"
                        "# TYPE aas_worker_jobs_total counter\n"
                        "aas_worker_jobs_total{model=\"digits\",status=\"SUCCEEDED\"} 42\n");
    free(resp);

    /* A later update shows in the next scrape. */
    aas_metric_inc(c, 1);
    assert_int_equal(http_request(port, "GET", "/metrics", &resp), 200);
    assert_non_null(strstr(resp, "status=\"SUCCEEDED\"} 43\n"));
    free(resp);

    assert_int_equal(http_request(port, "GET", "/other", &resp), 404);
    free(resp);
    assert_int_equal(http_request(port, "GET", "/", &resp), 404);
    free(resp);
    assert_int_equal(http_request(port, "POST", "/metrics", &resp), 405);
    assert_non_null(strstr(resp, "Allow: GET, HEAD"));
    free(resp);
    assert_int_equal(http_request(port, "PUT", "/other", &resp), 405);
    free(resp);
    assert_int_equal(http_request(port, "HEAD", "/metrics", &resp), 200);
    assert_null(strstr(resp, "aas_worker_jobs_total{")); /* no body */
    free(resp);
    /* teardown destroys the registry while it serves */
}

static void serve_on_busy_port_fails_clearly(void **state) {
    aas_metrics_t *m = *state;
    char err[256] = "";
    /* Hold a port with a plain listening socket. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    int port = ntohs(a.sin_port);

    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", port, err, sizeof(err)), AAS_ERR_IO);
    assert_non_null(strstr(err, "Address already in use"));
    char want[64];
    snprintf(want, sizeof(want), "port %d", port);
    assert_non_null(strstr(err, want));
    assert_int_equal(aas_metrics_port(m), 0);

    /* A second registry on the port of a serving first one fails too. */
    aas_metrics_t *m2 = NULL;
    assert_int_equal(aas_metrics_new(&m2, err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_serve(m2, "127.0.0.1", 0, err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", aas_metrics_port(m2), err, sizeof(err)),
                     AAS_ERR_IO);
    assert_non_null(strstr(err, "Address already in use"));
    aas_metrics_destroy(m2);
    close(fd);

    /* Bad arguments. */
    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", 70000, err, sizeof(err)), AAS_ERR_INVAL);
    assert_int_equal(aas_metrics_serve(m, "127.0.0.1", -1, err, sizeof(err)), AAS_ERR_INVAL);
    assert_int_equal(aas_metrics_serve(m, "not an address!", 0, err, sizeof(err)), AAS_ERR_INVAL);
    assert_non_null(strstr(err, "not an address!"));
    /* After all those failures it can still serve. */
    assert_int_equal(aas_metrics_serve(m, NULL, 0, err, sizeof(err)), AAS_ERR_OK);
    assert_true(aas_metrics_port(m) > 0);
}

static const aas_conf_def_t test_conf_defs[] = {AAS_METRICS_CONF_ROWS, AAS_CONF_END};
static const aas_conf_def_t test_conf_defs_without[] = {AAS_CONF_END};

static void serve_conf_off_by_default_and_on_with_port(void **state) {
    aas_metrics_t *m = *state;
    char err[256];
    aas_conf_t *conf = NULL;
    assert_int_equal(aas_conf_new(test_conf_defs, &conf), AAS_ERR_OK);
    assert_string_equal(aas_conf_get(conf, "metrics.port"), "0");
    assert_string_equal(aas_conf_get(conf, "metrics.bind"), "127.0.0.1");
    assert_int_equal(aas_metrics_serve_conf(m, conf, err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_port(m), 0); /* off */
    assert_int_not_equal(aas_conf_set_arg(conf, "metrics.port=70000", err, sizeof(err)), AAS_ERR_OK);
    assert_int_not_equal(aas_conf_set_arg(conf, "metrics.port=-1", err, sizeof(err)), AAS_ERR_OK);

    /* Find a free port, release it, serve on it through the conf. */
    aas_metrics_t *probe = NULL;
    assert_int_equal(aas_metrics_new(&probe, err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_serve(probe, NULL, 0, err, sizeof(err)), AAS_ERR_OK);
    int port = aas_metrics_port(probe);
    aas_metrics_destroy(probe);
    char kv[64];
    snprintf(kv, sizeof(kv), "metrics.port=%d", port);
    assert_int_equal(aas_conf_set_arg(conf, kv, err, sizeof(err)), AAS_ERR_OK);
    aas_err_t e = aas_metrics_serve_conf(m, conf, err, sizeof(err));
    if (e != AAS_ERR_OK) fail_msg("serve_conf on port %d: %s", port, err);
    assert_int_equal(aas_metrics_port(m), port);
    char *resp = NULL;
    assert_int_equal(http_request(port, "GET", "/metrics", &resp), 200);
    free(resp);
    aas_conf_destroy(conf);

    /* A program that forgot the rows is told so. */
    assert_int_equal(aas_conf_new(test_conf_defs_without, &conf), AAS_ERR_OK);
    assert_int_equal(aas_metrics_serve_conf(m, conf, err, sizeof(err)), AAS_ERR_INVAL);
    assert_non_null(strstr(err, "AAS_METRICS_CONF_ROWS"));
    aas_conf_destroy(conf);
}

/* GET /healthz, /readyz and a document on the metrics port (Kubernetes
 * probes, KEDA's metrics-api scaler). */
static void http_serves_health_readiness_and_a_document(void **state) {
    aas_metrics_t *m = *state;
    char err[256];
    aas_conf_t *conf = NULL;
    assert_int_equal(aas_conf_new(test_conf_defs, &conf), AAS_ERR_OK);
    assert_int_equal(aas_conf_set_arg(conf, "health.stall.s=1", err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_serve_conf(m, conf, err, sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_port(m), 0); /* off: metrics.port 0 */
    assert_int_equal(aas_metrics_serve(m, NULL, 0, err, sizeof(err)), AAS_ERR_OK);
    int port = aas_metrics_port(m);
    char *resp = NULL;
    /* Starting: alive (no sign expected yet), not ready. */
    assert_int_equal(http_request(port, "GET", "/healthz", &resp), 200);
    free(resp);
    assert_int_equal(http_request(port, "GET", "/readyz", &resp), 503);
    assert_non_null(strstr(resp, "starting"));
    free(resp);
    aas_metrics_ready(m, 0, "not in the consumer group yet");
    assert_int_equal(http_request(port, "GET", "/readyz", &resp), 503);
    assert_non_null(strstr(resp, "consumer group"));
    free(resp);
    aas_metrics_ready(m, 1, NULL);
    assert_int_equal(http_request(port, "GET", "/readyz", &resp), 200);
    assert_non_null(strstr(resp, "ready"));
    free(resp);
    /* A loop that stops showing life is stalled after health.stall.s. */
    aas_metrics_alive(m);
    assert_int_equal(http_request(port, "GET", "/healthz", &resp), 200);
    free(resp);
    struct timespec ts = {2, 200000000};
    nanosleep(&ts, NULL);
    assert_int_equal(http_request(port, "GET", "/healthz", &resp), 503);
    assert_non_null(strstr(resp, "stalled"));
    free(resp);
    aas_metrics_alive(m);
    assert_int_equal(http_request(port, "GET", "/healthz", &resp), 200);
    free(resp);
    /* One document path, replaced whole; /keda is not there before. */
    assert_int_equal(http_request(port, "GET", "/keda", &resp), 404);
    free(resp);
    assert_int_equal(aas_metrics_document(m, "/keda", "{\"desired_workers\":3}", err,
                                          sizeof(err)), AAS_ERR_OK);
    assert_int_equal(aas_metrics_document(m, "/keda", "{\"desired_workers\":4}", err,
                                          sizeof(err)), AAS_ERR_OK);
    assert_int_equal(http_request(port, "GET", "/keda", &resp), 200);
    assert_non_null(strstr(resp, "application/json"));
    assert_non_null(strstr(resp, "{\"desired_workers\":4}"));
    free(resp);
    assert_int_equal(aas_metrics_document(m, "/other", "{}", err, sizeof(err)), AAS_ERR_CONFLICT);
    assert_int_equal(aas_metrics_document(m, "/metrics", "{}", err, sizeof(err)), AAS_ERR_INVAL);
    aas_conf_destroy(conf);
}

/* The process collector: standard names, a CPU counter that grows with
 * the CPU this process burns, memory and descriptors that are plausible. */
/* noinline: gcc 12 sees a dangling pointer in the inlined strstr. */
__attribute__((noinline)) static double process_value(const char *text, const char *name) {
    char key[96];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

static void process_collector_reports_cpu_memory_and_fds(void **state) {
    aas_metrics_t *m = *state;
    char *text = render(m);
    assert_null(strstr(text, "process_cpu_seconds_total")); /* off until asked */
    free(text);
    aas_metrics_add_process(m);
    text = render(m);
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    double cpu0 = process_value(text, "process_cpu_seconds_total");
    double rss = process_value(text, "process_resident_memory_bytes");
    double fds = process_value(text, "process_open_fds");
    double start = process_value(text, "process_start_time_seconds");
    free(text);
    assert_true(rss > 1e5 && rss < 1e11);
    assert_true(fds >= 3 && fds < 1e6); /* stdin, stdout, stderr at least */
    assert_true(start > 1.6e9 && start <= (double)time(NULL) + 1);
    /* Burn 0.3 s of CPU: the counter moves by about that (clock ticks). */
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    volatile double x = 0;
    do {
        for (int i = 0; i < 100000; i++) x += i * 1e-9;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    } while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < 0.3);
    text = render(m);
    double cpu1 = process_value(text, "process_cpu_seconds_total");
    free(text);
    assert_true(cpu1 - cpu0 >= 0.25 && cpu1 - cpu0 < 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(render_empty_registry_is_empty_text, setup, teardown),
        cmocka_unit_test_setup_teardown(render_counter_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(render_gauge_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(render_histogram_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(get_or_create_returns_same_series, setup, teardown),
        cmocka_unit_test_setup_teardown(type_clash_returns_null, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_names_and_labels_return_null, setup, teardown),
        cmocka_unit_test_setup_teardown(series_cap_refuses_beyond_max, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_updates_while_rendering_are_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(http_serves_metrics_404_and_405, setup, teardown),
        cmocka_unit_test_setup_teardown(process_collector_reports_cpu_memory_and_fds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(serve_on_busy_port_fails_clearly, setup, teardown),
        cmocka_unit_test_setup_teardown(serve_conf_off_by_default_and_on_with_port, setup, teardown),
        cmocka_unit_test_setup_teardown(http_serves_health_readiness_and_a_document, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
