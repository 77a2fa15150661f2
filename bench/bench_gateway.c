/*
 * bench_gateway.c - what the HTTP gateway (aas-gateway, docs/http.md) adds
 * to a job's latency, measured against the C client on the same fleet in
 * the same run.  Not a test; it prints figures (bench/run_gateway_bench.sh
 * runs it).
 *
 *   bench_gateway --brokers LIST --redis-port P --model NAME --dim D
 *                 --url http://127.0.0.1:PORT [--jobs N] [--warmup N]
 *   bench_gateway body --dim D [--row K]     an OIP infer body, to stdout
 *
 * One request in flight.  Each of N rounds runs the same one-row inference
 * twice, back to back: once through the C client (producer/client.h) as
 * aas-producer and the gateway itself use it (aas_client_submit, then
 * aas_client_flush until the broker acknowledged the job, then
 * aas_client_wait until its result is read and decoded from Redis), once
 * as POST /v2/models/NAME/infer over one keep-alive HTTP/1.1 connection
 * (plain sockets, Content-Length bodies; the time runs from the first byte
 * written until the whole response is read).  The order alternates from
 * round to round, so neither path always finds the fleet just woken (or
 * just busy).  Interleaving, rather than two runs one after the other, puts
 * both paths under the same background load of a shared machine.
 *
 * Every HTTP answer must be 200 and its output must equal the C client's
 * result for the same row (to 1e-5: the gateway prints 9 significant
 * digits); any failure is counted and makes the exit status 1.
 *
 * It does not measure throughput: that is wrk's job (run_gateway_bench.sh),
 * and bench_e2e's for the C client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

#define GWB_MAX_X 64
#define GWB_MAX_TAGS 16
#define GWB_N_ROWS 64         /* distinct input rows, reused round-robin */
#define GWB_MAX_RESPONSE (1 << 22) /* a 10-class answer is < 1 KiB */
#define GWB_TOLERANCE 1e-5

/* ------------------------------------------------------------- inputs */

static uint64_t gwb_rng_state = 0x9E3779B97F4A7C15ULL;

/* Uniform [0, 1), the generator bench_e2e uses for its rows. */
static float gwb_frand(void) {
    gwb_rng_state ^= gwb_rng_state << 13;
    gwb_rng_state ^= gwb_rng_state >> 7;
    gwb_rng_state ^= gwb_rng_state << 17;
    return (float)((gwb_rng_state >> 11) * (1.0 / 9007199254740992.0));
}

/* The OIP JSON of one row: 9 significant digits give back the same float,
 * so the gateway's job carries exactly the C client's values. */
static char *gwb_body_new(const float *row, int dim, size_t *len_out) {
    size_t cap = (size_t)dim * 18 + 128, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    int n = snprintf(s, cap, "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,%d],"
                             "\"datatype\":\"FP32\",\"data\":[", dim);
    if (n < 0 || (size_t)n >= cap) goto fail;
    len = (size_t)n;
    for (int i = 0; i < dim; i++) {
        n = snprintf(s + len, cap - len, "%s%.9g", i ? "," : "", (double)row[i]);
        if (n < 0 || (size_t)n >= cap - len) goto fail;
        len += (size_t)n;
    }
    n = snprintf(s + len, cap - len, "]}]}");
    if (n < 0 || (size_t)n >= cap - len) goto fail;
    *len_out = len + (size_t)n;
    return s;
fail:
    free(s);
    return NULL;
}

/* ------------------------------------------------------- HTTP client */

/* One keep-alive connection.  Enough HTTP/1.1 for the gateway's answers
 * (status line, headers, a Content-Length body); a chunked answer is an
 * error, as libmicrohttpd sends buffers with their length. */
typedef struct {
    char host[256];
    int port;
    int timeout_s;
    int fd;                  /* -1 when not connected */
    char *buf;               /* received bytes not yet consumed */
    size_t len, cap;
    long reconnects;
} gwb_http_t;

static int gwb_http_connect(gwb_http_t *h, char *why, size_t size) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", h->port);
    int rc = getaddrinfo(h->host, port, &hints, &ai);
    if (rc) {
        snprintf(why, size, "%s: %s", h->host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        snprintf(why, size, "connect %s:%d: %s", h->host, h->port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    /* Request and answer are one write each: Nagle would only add delay. */
    int one = 1;
    struct timeval tv = {.tv_sec = h->timeout_s};
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
        snprintf(why, size, "setsockopt: %s", strerror(errno));
        close(fd);
        return -1;
    }
    h->fd = fd;
    h->len = 0;
    return 0;
}

static void gwb_http_close(gwb_http_t *h) {
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    h->len = 0;
}

/* Read more bytes into h->buf; -1 on error, end of stream or timeout. */
static int gwb_http_fill(gwb_http_t *h, char *why, size_t size) {
    if (h->len + 4096 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 65536;
        if (cap > GWB_MAX_RESPONSE) {
            snprintf(why, size, "answer over %d bytes", GWB_MAX_RESPONSE);
            return -1;
        }
        char *b = realloc(h->buf, cap + 1);
        if (!b) {
            snprintf(why, size, "out of memory");
            return -1;
        }
        h->buf = b;
        h->cap = cap;
    }
    ssize_t n;
    do n = recv(h->fd, h->buf + h->len, h->cap - h->len, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        snprintf(why, size, "read: %s", n == 0 ? "connection closed by the server"
                 : errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
        return -1;
    }
    h->len += (size_t)n;
    h->buf[h->len] = '\0';
    return 0;
}

/* Value of header `name` in the header block [hdr, end), or NULL. */
static const char *gwb_header(const char *hdr, const char *end, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = hdr; p && p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol || eol > end) break;
        if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/**
 * POST body to path and read the whole answer.  *status and the body
 * (h->buf + *body_off, *body_len bytes, NUL-terminated, valid until the
 * next call) on success.  Reconnects once if the server had closed an idle
 * connection before the request was written.
 */
static int gwb_http_post(gwb_http_t *h, const char *path, const char *body, size_t body_len,
                         int *status, size_t *body_off, size_t *body_len_out, char *why,
                         size_t size) {
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", path, h->host, h->port, body_len);
    if (hn < 0 || (size_t)hn >= sizeof(head)) {
        snprintf(why, size, "path too long");
        return -1;
    }
    /* The previous answer was read whole (a connection with bytes beyond
     * it was closed): start the buffer afresh. */
    h->len = 0;
    for (int attempt = 0;; attempt++) {
        if (h->fd < 0) {
            if (gwb_http_connect(h, why, size)) return -1;
            if (attempt) h->reconnects++;
        }
        struct iovec iov[2] = {{head, (size_t)hn}, {(void *)body, body_len}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
        size_t total = (size_t)hn + body_len, sent = 0;
        int failed = 0;
        while (sent < total) {
            ssize_t n = sendmsg(h->fd, &msg, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                failed = 1;
                break;
            }
            sent += (size_t)n;
            /* Advance the iovecs past what went out. */
            while (n > 0 && msg.msg_iovlen) {
                size_t k = (size_t)n < msg.msg_iov->iov_len ? (size_t)n : msg.msg_iov->iov_len;
                msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + k;
                msg.msg_iov->iov_len -= k;
                n -= (ssize_t)k;
                if (!msg.msg_iov->iov_len) {
                    msg.msg_iov++;
                    msg.msg_iovlen--;
                }
            }
        }
        if (!failed) break;
        int e = errno;
        gwb_http_close(h);
        if (attempt || (e != EPIPE && e != ECONNRESET)) {
            snprintf(why, size, "write: %s", strerror(e));
            return -1;
        }
    }
    char *hend;
    while (!(hend = h->len ? strstr(h->buf, "\r\n\r\n") : NULL)) {
        if (gwb_http_fill(h, why, size)) {
            gwb_http_close(h);
            return -1;
        }
    }
    int code = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &code) != 1) {
        snprintf(why, size, "not an HTTP answer");
        gwb_http_close(h);
        return -1;
    }
    const char *cl = gwb_header(h->buf, hend + 2, "Content-Length");
    if (!cl) {
        snprintf(why, size, "answer without Content-Length (status %d)", code);
        gwb_http_close(h);
        return -1;
    }
    char *end;
    unsigned long long blen = strtoull(cl, &end, 10);
    if (end == cl || blen > GWB_MAX_RESPONSE) {
        snprintf(why, size, "bad Content-Length");
        gwb_http_close(h);
        return -1;
    }
    size_t off = (size_t)(hend + 4 - h->buf);
    while (h->len < off + blen) {
        if (gwb_http_fill(h, why, size)) {
            gwb_http_close(h);
            return -1;
        }
    }
    const char *conn = gwb_header(h->buf, hend + 2, "Connection");
    *status = code;
    *body_off = off;
    *body_len_out = (size_t)blen;
    /* The answer stays readable in h->buf until the next call; a server
     * that closes after it gets a fresh connection then. */
    if (h->len != off + blen || (conn && !strncasecmp(conn, "close", 5))) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

/* ------------------------------------------------------------ the run */

typedef struct {
    /* options */
    const char *brokers, *redis_host, *model, *label, *url;
    int redis_port, dim, warmup, timeout_s;
    long jobs;
    const char *x[GWB_MAX_X];
    int nx;
    const char *tags[GWB_MAX_TAGS];
    int n_tags;
    /* run state */
    aas_conf_t *conf;
    aas_client_t *client;
    gwb_http_t http;
    char path[512];
    float *rows;                    /* GWB_N_ROWS x dim */
    char *bodies[GWB_N_ROWS];
    size_t body_lens[GWB_N_ROWS];
    int64_t *lat_client, *lat_http; /* us, one per round */
    int64_t *lat_pair;              /* us, HTTP - C client of one round */
    long n_client, n_http, n_pair, n_failed, n_mismatch;
    char first_error[1024];
} gwb_t;

static void gwb_error(gwb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gwb_error(gwb_t *b, const char *fmt, ...) {
    b->n_failed++;
    if (b->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
    va_end(ap);
}

/* One job through the C client: submit, confirm, wait (aas-producer's and
 * the gateway's sequence).  Latency in *us_out; the probabilities in *res. */
static int gwb_client_once(gwb_t *b, int row, int64_t *us_out, aas_result_t *res) {
    char id[64], why[512];
    if (aas_client_job_id(id, sizeof(id))) {
        gwb_error(b, "no job id");
        return -1;
    }
    aas_tensor_t t = {0};
    int64_t shape[2] = {1, b->dim};
    if (aas_tensor_set_f32(&t, "input", b->rows + (size_t)row * (size_t)b->dim, 2, shape)) {
        gwb_error(b, "out of memory");
        return -1;
    }
    aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)b->model,
                     .inputs = &t, .n_inputs = 1};
    int64_t t0 = aas_mono_us();
    aas_err_t err = aas_client_submit(b->client, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    size_t failed = 0;
    if (!err) err = aas_client_flush(b->client, b->timeout_s * 1000, &failed, why, sizeof(why));
    if (!err && failed) {
        gwb_error(b, "job %s: not published", id);
        return -1;
    }
    if (!err) err = aas_client_wait(b->client, id, b->timeout_s * 1000, res, why, sizeof(why));
    int64_t t1 = aas_mono_us();
    if (err) {
        gwb_error(b, "job %s: %s", id, why);
        return -1;
    }
    if (res->status != AAS_STATUS_SUCCEEDED || res->n_outputs < 1 ||
        res->outputs[0].dtype != AAS_DTYPE_F32) {
        gwb_error(b, "job %s: %s: %s", id, aas_status_name(res->status),
                  res->error ? res->error : "no F32 output");
        return -1;
    }
    *us_out = t1 - t0;
    return 0;
}

/* The "data" of the first output in an OIP answer against want[n]. */
static int gwb_same_output(const char *json, const float *want, size_t n) {
    const char *p = strstr(json, "\"outputs\"");
    if (p) p = strstr(p, "\"data\":[");
    if (!p) return 0;
    p += strlen("\"data\":[");
    for (size_t i = 0; i < n; i++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || fabs(v - (double)want[i]) > GWB_TOLERANCE) return 0;
        p = end;
        if (*p == ',') p++;
    }
    return *p == ']';
}

/* One request through the gateway; checked against ref, or (ref NULL) its
 * body copied into *copy_out for a check later. */
static int gwb_http_once(gwb_t *b, int row, int64_t *us_out, const aas_result_t *ref,
                         char **copy_out) {
    char why[512];
    int status = 0;
    size_t off = 0, len = 0;
    int64_t t0 = aas_mono_us();
    int rc = gwb_http_post(&b->http, b->path, b->bodies[row], b->body_lens[row], &status, &off,
                           &len, why, sizeof(why));
    int64_t t1 = aas_mono_us();
    if (rc) {
        gwb_error(b, "POST %s: %s", b->path, why);
        return -1;
    }
    const char *body = b->http.buf + off;
    if (status != 200) {
        gwb_error(b, "POST %s: status %d: %.300s", b->path, status, body);
        return -1;
    }
    if (ref && !gwb_same_output(body, ref->outputs[0].data,
                                ref->outputs[0].nbytes / sizeof(float))) {
        b->n_mismatch++;
        gwb_error(b, "POST %s: output differs from the C client's: %.300s", b->path, body);
        return -1;
    }
    if (!ref && copy_out && !(*copy_out = strdup(body))) {
        gwb_error(b, "out of memory");
        return -1;
    }
    *us_out = t1 - t0;
    return 0;
}

/* One round: the same row both ways, in the order the round's parity says. */
static void gwb_round(gwb_t *b, long i, int record) {
    int row = (int)(i % GWB_N_ROWS);
    aas_result_t res = {0};
    int64_t us_c = 0, us_h = 0;
    int ok_c, ok_h;
    if (i % 2 == 0) {
        ok_c = gwb_client_once(b, row, &us_c, &res) == 0;
        ok_h = ok_c && gwb_http_once(b, row, &us_h, &res, NULL) == 0;
    } else {
        /* The HTTP answer is checked against the C client's afterwards. */
        char *copy = NULL;
        ok_h = gwb_http_once(b, row, &us_h, NULL, &copy) == 0;
        ok_c = gwb_client_once(b, row, &us_c, &res) == 0;
        if (ok_h && ok_c &&
            !gwb_same_output(copy, res.outputs[0].data, res.outputs[0].nbytes / sizeof(float))) {
            b->n_mismatch++;
            gwb_error(b, "POST %s: output differs from the C client's: %.300s", b->path, copy);
            ok_h = 0;
        }
        free(copy);
    }
    aas_result_clear(&res);
    if (!record) return;
    if (ok_c) b->lat_client[b->n_client++] = us_c;
    if (ok_h) b->lat_http[b->n_http++] = us_h;
    if (ok_c && ok_h) b->lat_pair[b->n_pair++] = us_h - us_c;
}

/* ------------------------------------------------------------ figures */

static int gwb_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    long n;
    double p50, p90, p99, max, mean; /* ms */
} gwb_stats_t;

/* Nearest-rank percentiles (as bench_e2e) of v[n], sorted in place. */
static gwb_stats_t gwb_stats(int64_t *v, long n) {
    gwb_stats_t s = {.n = n, .p50 = NAN, .p90 = NAN, .p99 = NAN, .max = NAN, .mean = NAN};
    if (n <= 0) return s;
    qsort(v, (size_t)n, sizeof(int64_t), gwb_cmp_i64);
    double q[3] = {0.50, 0.90, 0.99}, *out[3] = {&s.p50, &s.p90, &s.p99};
    for (int k = 0; k < 3; k++) {
        long r = (long)ceil(q[k] * (double)n) - 1;
        if (r < 0) r = 0;
        *out[k] = (double)v[r] / 1000;
    }
    double sum = 0;
    for (long i = 0; i < n; i++) sum += (double)v[i];
    s.mean = sum / (double)n / 1000;
    s.max = (double)v[n - 1] / 1000;
    return s;
}

static void gwb_print_result(const gwb_t *b, const char *path, const gwb_stats_t *s) {
    printf("RESULT bench=gateway mode=latency path=%s label=%s model=%s dim=%d", path, b->label,
           b->model, b->dim);
    for (int i = 0; i < b->n_tags; i++) printf(" %s", b->tags[i]);
    printf(" n=%ld p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f\n", s->n,
           s->p50, s->p90, s->p99, s->max, s->mean);
}

static void gwb_report(gwb_t *b) {
    gwb_stats_t c = gwb_stats(b->lat_client, b->n_client);
    gwb_stats_t h = gwb_stats(b->lat_http, b->n_http);
    /* The target's figure: percentile of one path minus the same
     * percentile of the other (a difference of maxima means nothing). */
    gwb_stats_t d = {.n = c.n < h.n ? c.n : h.n, .p50 = h.p50 - c.p50, .p90 = h.p90 - c.p90,
                     .p99 = h.p99 - c.p99, .max = NAN, .mean = h.mean - c.mean};
    /* And the percentiles of the per-round differences: the two jobs of a
     * round ran within milliseconds of each other, so a burst of other
     * work on the machine mostly hits both, and cancels out. */
    gwb_stats_t pr = gwb_stats(b->lat_pair, b->n_pair);
    printf("\ngateway latency (%s): %ld rounds of one one-row job of %d floats each way, "
           "model %s, one in flight, order alternating\n", b->label, b->jobs, b->dim, b->model);
    printf("| %-44s | %6s | %8s | %8s | %8s | %8s | %8s |\n", "path", "n", "p50 ms", "p90 ms",
           "p99 ms", "max ms", "mean ms");
    const struct { const char *name; const gwb_stats_t *s; } rows[] = {
        {"C client (submit, flush, wait)", &c},
        {"HTTP POST .../infer, keep-alive", &h},
        {"gateway adds (HTTP - C client)", &d},
        {"per-round difference (HTTP - C client)", &pr}};
    for (size_t i = 0; i < 4; i++)
        printf("| %-44s | %6ld | %8.3f | %8.3f | %8.3f | %8.3f | %8.3f |\n", rows[i].name,
               rows[i].s->n, rows[i].s->p50, rows[i].s->p90, rows[i].s->p99, rows[i].s->max,
               rows[i].s->mean);
    printf("HTTP reconnects: %ld; failed: %ld (outputs differing from the C client's: %ld)\n",
           b->http.reconnects, b->n_failed, b->n_mismatch);
    gwb_print_result(b, "client", &c);
    gwb_print_result(b, "http", &h);
    gwb_print_result(b, "diff", &d);
    gwb_print_result(b, "pair", &pr);
}

/* --------------------------------------------------------------- main */

static void gwb_usage(FILE *f) {
    fprintf(f,
"usage: bench_gateway --brokers LIST --redis-port P --model NAME --dim D --url URL [options]\n"
"       bench_gateway body --dim D [--row K]\n"
"Latency of one job at a time through the C client and through aas-gateway\n"
"(POST /v2/models/NAME/infer, keep-alive), interleaved; see the file's header.\n"
"\n"
"  --brokers LIST     Kafka bootstrap servers of the fleet\n"
"  --redis-host H     Redis host                          (default 127.0.0.1)\n"
"  --redis-port P     Redis port\n"
"  --model NAME       registered model (a native MLP with D inputs)\n"
"  --dim D            input width\n"
"  --url URL          the gateway, http://HOST:PORT\n"
"  --jobs N           timed rounds (one job each way)     (default 2000)\n"
"  --warmup N         untimed rounds first                (default 100)\n"
"  --timeout S        per job and per request, seconds    (default 30)\n"
"  --label L          label of the RESULT lines           (default kafka)\n"
"  --tag KEY=VALUE    extra field of the RESULT lines (repeatable)\n"
"  -X KEY=VALUE       client configuration (repeatable)\n"
"  body               print the infer body of row K (0..%d) of width D: what\n"
"                     the timed rounds send, for wrk's script\n"
"  -h, --help         this text\n", GWB_N_ROWS - 1);
}

static long gwb_parse_long(const char *s, const char *what, long min, long max) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "bench_gateway: %s wants a number in %ld..%ld, got '%s'\n", what, min,
                max, s);
        exit(2);
    }
    return v;
}

/* The rows, the same for every run of the same width. */
static float *gwb_rows_new(int dim) {
    float *rows = malloc(sizeof(float) * GWB_N_ROWS * (size_t)dim);
    if (!rows) return NULL;
    for (size_t i = 0; i < (size_t)GWB_N_ROWS * (size_t)dim; i++) rows[i] = gwb_frand();
    return rows;
}

static int gwb_main_body(int argc, char **argv) {
    static const struct option opts[] = {{"dim", required_argument, NULL, 'd'},
                                         {"row", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int dim = 0, row = 0, ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': dim = (int)gwb_parse_long(optarg, "--dim", 1, 1 << 20); break;
        case 'r': row = (int)gwb_parse_long(optarg, "--row", 0, GWB_N_ROWS - 1); break;
        default: gwb_usage(stderr); return 2;
        }
    }
    if (!dim || optind != argc) {
        fprintf(stderr, "bench_gateway: body needs --dim\n");
        return 2;
    }
    float *rows = gwb_rows_new(dim);
    size_t len = 0;
    char *body = rows ? gwb_body_new(rows + (size_t)row * (size_t)dim, dim, &len) : NULL;
    int rc = body && fwrite(body, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
    if (rc) fprintf(stderr, "bench_gateway: body: out of memory or write error\n");
    free(body);
    free(rows);
    return rc;
}

static int gwb_parse_url(gwb_t *b) {
    const char *u = b->url;
    if (strncmp(u, "http://", 7)) return -1;
    u += 7;
    const char *colon = strchr(u, ':');
    if (!colon || (size_t)(colon - u) >= sizeof(b->http.host) || colon == u) return -1;
    memcpy(b->http.host, u, (size_t)(colon - u));
    b->http.host[colon - u] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || (*end && strcmp(end, "/")) || port < 1 || port > 65535) return -1;
    b->http.port = (int)port;
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN); /* hiredis and our sockets: EPIPE, not death */
    if (argc > 1 && !strcmp(argv[1], "body")) return gwb_main_body(argc, argv);
    static gwb_t b = {.redis_host = "127.0.0.1", .label = "kafka", .jobs = 2000,
                      .warmup = 100, .timeout_s = 30, .http = {.fd = -1}};
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"redis-host", required_argument, NULL, 'H'},
        {"redis-port", required_argument, NULL, 'P'},
        {"model", required_argument, NULL, 'm'},
        {"dim", required_argument, NULL, 'd'},
        {"url", required_argument, NULL, 'u'},
        {"jobs", required_argument, NULL, 'n'},
        {"warmup", required_argument, NULL, 'W'},
        {"timeout", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},
        {"tag", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "X:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': b.brokers = optarg; break;
        case 'H': b.redis_host = optarg; break;
        case 'P': b.redis_port = (int)gwb_parse_long(optarg, "--redis-port", 1, 65535); break;
        case 'm': b.model = optarg; break;
        case 'd': b.dim = (int)gwb_parse_long(optarg, "--dim", 1, 1 << 20); break;
        case 'u': b.url = optarg; break;
        case 'n': b.jobs = gwb_parse_long(optarg, "--jobs", 1, 10000000); break;
        case 'W': b.warmup = (int)gwb_parse_long(optarg, "--warmup", 0, 1000000); break;
        case 't': b.timeout_s = (int)gwb_parse_long(optarg, "--timeout", 1, 3600); break;
        case 'l': b.label = optarg; break;
        case 'T':
            if (b.n_tags == GWB_MAX_TAGS || !strchr(optarg, '=')) {
                fprintf(stderr, "bench_gateway: --tag wants KEY=VALUE (at most %d)\n",
                        GWB_MAX_TAGS);
                return 2;
            }
            b.tags[b.n_tags++] = optarg;
            break;
        case 'X':
            if (b.nx == GWB_MAX_X) {
                fprintf(stderr, "bench_gateway: too many -X\n");
                return 2;
            }
            b.x[b.nx++] = optarg;
            break;
        case 'h': gwb_usage(stdout); return 0;
        default: gwb_usage(stderr); return 2;
        }
    }
    if (optind != argc || !b.brokers || !b.redis_port || !b.model || !b.dim || !b.url) {
        fprintf(stderr, "bench_gateway: needs --brokers, --redis-port, --model, --dim and "
                "--url (see --help)\n");
        return 2;
    }
    if (!aas_id_valid(b.model)) {
        fprintf(stderr, "bench_gateway: invalid model name '%s'\n", b.model);
        return 2;
    }
    if (gwb_parse_url(&b)) {
        fprintf(stderr, "bench_gateway: --url wants http://HOST:PORT, got '%s'\n", b.url);
        return 2;
    }
    b.http.timeout_s = b.timeout_s;
    snprintf(b.path, sizeof(b.path), "/v2/models/%s/infer", b.model);
    /* Configuration: env AAS_*, then ours, then -X (highest). */
    char brokers_kv[1024], port_kv[64], host_kv[300], why[512];
    snprintf(brokers_kv, sizeof(brokers_kv), "kafka.bootstrap.servers=%s", b.brokers);
    snprintf(port_kv, sizeof(port_kv), "redis.port=%d", b.redis_port);
    snprintf(host_kv, sizeof(host_kv), "redis.host=%s", b.redis_host);
    char *xargs[GWB_MAX_X + 3] = {brokers_kv, port_kv, host_kv};
    for (int i = 0; i < b.nx; i++) xargs[3 + i] = (char *)b.x[i];
    if (aas_conf_new(aas_client_conf_defs, &b.conf) ||
        aas_cli_conf_load(b.conf, NULL, xargs, (size_t)(3 + b.nx), why, sizeof(why))) {
        fprintf(stderr, "bench_gateway: configuration: %s\n", why);
        aas_conf_destroy(b.conf);
        return 2;
    }
    int rc = 1;
    b.rows = gwb_rows_new(b.dim);
    b.lat_client = malloc(sizeof(int64_t) * (size_t)b.jobs);
    b.lat_http = malloc(sizeof(int64_t) * (size_t)b.jobs);
    b.lat_pair = malloc(sizeof(int64_t) * (size_t)b.jobs);
    if (!b.rows || !b.lat_client || !b.lat_http || !b.lat_pair) {
        fprintf(stderr, "bench_gateway: out of memory\n");
        goto out;
    }
    for (int r = 0; r < GWB_N_ROWS; r++) {
        b.bodies[r] = gwb_body_new(b.rows + (size_t)r * (size_t)b.dim, b.dim, &b.body_lens[r]);
        if (!b.bodies[r]) {
            fprintf(stderr, "bench_gateway: out of memory\n");
            goto out;
        }
    }
    if (aas_client_new(b.conf, &b.client, why, sizeof(why))) {
        fprintf(stderr, "bench_gateway: client: %s\n", why);
        goto out;
    }
    if (gwb_http_connect(&b.http, why, sizeof(why))) {
        fprintf(stderr, "bench_gateway: %s\n", why);
        goto out;
    }
    /* Untimed: the model in every worker and the gateway's model cache,
     * the connections of both clients. */
    for (long i = 0; i < b.warmup; i++) gwb_round(&b, i, 0);
    if (b.n_failed) {
        fprintf(stderr, "bench_gateway: warm-up: %ld failure(s); first: %s\n", b.n_failed,
                b.first_error);
        goto out;
    }
    for (long i = 0; i < b.jobs; i++) gwb_round(&b, i, 1);
    gwb_report(&b);
    rc = 0;
    if (b.n_failed) {
        fprintf(stderr, "bench_gateway: %ld failure(s); first: %s\n", b.n_failed,
                b.first_error);
        rc = 1;
    }
out:
    gwb_http_close(&b.http);
    free(b.http.buf);
    aas_client_destroy(b.client);
    for (int r = 0; r < GWB_N_ROWS; r++) free(b.bodies[r]);
    free(b.lat_client);
    free(b.lat_http);
    free(b.lat_pair);
    free(b.rows);
    aas_conf_destroy(b.conf);
    return rc;
}
