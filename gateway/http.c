/* http.c - libmicrohttpd glue for the gateway; see http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "routes.h"

struct aas_gw_http_s {
    aas_gw_t *gw;
    struct MHD_Daemon *d;
    unsigned port;
    char *tls_cert, *tls_key;    /* PEM text, kept while the daemon runs */
    aas_metric_t *in_flight;
    pthread_mutex_t mu;          /* guards open */
    pthread_cond_t drained;
    long open;                   /* requests begun and not completed */
};

/* One request's state across the handler's calls. */
typedef struct {
    int64_t start_us;
    char *buf;
    size_t len, cap;
    int too_large;     /* the body passed the limit: drop the rest, 413 */
    int answered;      /* a response is queued */
} aas_gw_conn_t;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Count one answered request (labels from fixed sets only: the route's
 * name, the method if it is one we serve, the status). */
static void observe(aas_gw_http_t *h, const char *method, const aas_gw_resp_t *resp,
                    double seconds) {
    static const double bounds[] = AAS_METRICS_SECONDS_BOUNDS;
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE"};
    const char *m = "other";
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (!strcmp(method, methods[i])) m = methods[i];
    const char *route = resp->route ? resp->route : "unknown";
    char labels[160];
    snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\",code=\"%u\"", route, m,
             resp->status);
    aas_metric_inc(aas_metrics_counter(h->gw->metrics, "aas_gateway_requests_total",
                                       "HTTP requests answered, by endpoint, method and status",
                                       labels),
                   1);
    snprintf(labels, sizeof(labels), "route=\"%s\"", route);
    aas_metric_observe(aas_metrics_histogram(h->gw->metrics,
                                             "aas_gateway_request_duration_seconds",
                                             "Time from the request's headers to its answer",
                                             labels, bounds, sizeof(bounds) / sizeof(bounds[0])),
                       seconds);
    if (resp->status == 401 || resp->status == 403)
        aas_metric_inc(aas_metrics_counter(h->gw->metrics, "aas_gateway_auth_refused_total",
                                           "Requests refused for their API key (401, 403)",
                                           resp->status == 401 ? "code=\"401\""
                                                               : "code=\"403\""),
                       1);
}

/* A log field's value: printable ASCII, no quote or backslash (a path is
 * the client's text: it must not forge fields or lines). */
static void log_escape(char *out, size_t size, const char *in) {
    size_t o = 0;
    for (; *in && o + 5 < size; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\' || ch == '=')
            o += (size_t)snprintf(out + o, size - o, "%%%02X", ch);
        else out[o++] = (char)ch;
    }
    out[o] = '\0';
}

static enum MHD_Result answer(aas_gw_http_t *h, struct MHD_Connection *conn,
                              aas_gw_conn_t *rs, const char *method, const char *url,
                              aas_gw_resp_t *resp) {
    static const char oom[] = "{\"error\":\"out of memory\"}";
    struct MHD_Response *r;
    size_t bytes;
    if (resp->body) {
        bytes = strlen(resp->body);
        r = MHD_create_response_from_buffer(bytes, resp->body, MHD_RESPMEM_MUST_FREE);
        if (!r) free(resp->body);
    } else {
        resp->status = 500;
        bytes = sizeof(oom) - 1;
        r = MHD_create_response_from_buffer(bytes, (void *)oom, MHD_RESPMEM_PERSISTENT);
    }
    resp->body = NULL;
    if (!r) return MHD_NO;
    enum MHD_Result ok = MHD_add_response_header(
        r, MHD_HTTP_HEADER_CONTENT_TYPE,
        resp->content_type ? resp->content_type : "application/json");
    if (ok == MHD_YES && resp->location[0])
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    if (ok == MHD_YES && resp->retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%d", resp->retry_after_s);
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (ok == MHD_YES && resp->auth_challenge)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"aas\"");
    if (ok == MHD_YES) ok = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    rs->answered = 1;
    int64_t us = now_us() - rs->start_us;
    observe(h, method, resp, (double)us / 1e6);
    char m[64], path[800];
    log_escape(m, sizeof(m), method);
    log_escape(path, sizeof(path), url);
    AAS_LOG(AAS_LOG_INFO, "http", "method=%s path=%s status=%u bytes=%zu us=%" PRId64, m, path,
            resp->status, bytes, us);
    return ok;
}

static void set_too_large(aas_gw_resp_t *resp, int64_t max) {
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"error\":\"request body over %" PRId64 " bytes\"}", max);
    resp->status = 413;
    resp->body = strdup(buf);
    resp->location[0] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    aas_gw_http_t *h = cls;
    aas_gw_conn_t *rs = *con_cls;
    size_t max = (size_t)h->gw->c.max_body_bytes;
    aas_gw_resp_t resp = {0};
    if (!rs) {
        if (!(rs = calloc(1, sizeof(*rs)))) return MHD_NO;
        rs->start_us = now_us();
        *con_cls = rs;
        aas_metric_inc(h->in_flight, 1);
        pthread_mutex_lock(&h->mu);
        h->open++;
        pthread_mutex_unlock(&h->mu);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl && *end == '\0' && v > max) {
                /* Before reading any of it (also refuses Expect: 100-continue). */
                set_too_large(&resp, (int64_t)max);
                return answer(h, conn, rs, method, url, &resp);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rs->answered || rs->too_large) return MHD_YES;
        if (n > max - rs->len) {
            rs->too_large = 1;
            free(rs->buf);
            rs->buf = NULL;
            rs->len = rs->cap = 0;
            return MHD_YES;
        }
        if (rs->len + n > rs->cap) {
            size_t cap = rs->cap ? rs->cap : 4096;
            while (cap < rs->len + n) cap = cap > max / 2 ? max : cap * 2;
            char *b = realloc(rs->buf, cap);
            if (!b) return MHD_NO;
            rs->buf = b;
            rs->cap = cap;
        }
        memcpy(rs->buf + rs->len, upload_data, n);
        rs->len += n;
        return MHD_YES;
    }
    if (rs->answered) return MHD_YES;
    if (rs->too_large) {
        set_too_large(&resp, (int64_t)max);
        return answer(h, conn, rs, method, url, &resp);
    }
    const char *prefer = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Prefer");
    const char *ihl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Inference-Header-Content-Length");
    long long json_len = -1;
    if (ihl) {
        char *end;
        unsigned long long v = strtoull(ihl, &end, 10);
        /* Not a number: larger than any body, so the parser refuses it. */
        json_len = end != ihl && *end == '\0' && v <= rs->len ? (long long)v
                                                              : (long long)rs->len + 1;
    }
    aas_gw_req_t req = {.method = method, .path = url, .body = rs->buf,
                        .body_len = rs->len,
                        .prefer_async = prefer && strstr(prefer, "respond-async") != NULL,
                        .json_len = json_len,
                        .authorization = MHD_lookup_connection_value(
                            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                        .content_type = MHD_lookup_connection_value(
                            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)};
    aas_gw_route(h->gw, &req, &resp);
    return answer(h, conn, rs, method, url, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    aas_gw_http_t *h = cls;
    aas_gw_conn_t *rs = *con_cls;
    if (!rs) return;
    aas_metric_inc(h->in_flight, -1);
    pthread_mutex_lock(&h->mu);
    if (--h->open == 0) pthread_cond_broadcast(&h->drained);
    pthread_mutex_unlock(&h->mu);
    free(rs->buf);
    free(rs);
    *con_cls = NULL;
}

/* A PEM file's text (NUL-terminated, at most 1 MiB: certificates are
 * kilobytes). */
static aas_err_t read_pem(const char *file, const char *what, char **out, char *errstr,
                          size_t errstr_size) {
    enum { PEM_MAX = 1 << 20 };
    FILE *fp = fopen(file, "rb");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "%s %.256s: %s", what, file,
                           strerror(errno));
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, fp) : 0;
    int bad = ferror(fp);
    fclose(fp);
    if (!buf) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (bad || n == 0 || n > PEM_MAX || !strstr(buf, "-----BEGIN ")) {
        free(buf);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s %.256s: %s", what, file,
                           bad ? "read error" : n > PEM_MAX ? "larger than 1 MiB" : "not PEM");
    }
    buf[n] = '\0';
    *out = buf;
    return AAS_ERR_OK;
}

static void http_free(aas_gw_http_t *h) {
    if (!h) return;
    if (h->tls_key) {
        /* The private key leaves no copy in freed memory. */
        volatile char *p = h->tls_key;
        while (*p) *p++ = 0;
    }
    free(h->tls_key);
    free(h->tls_cert);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->drained);
    free(h);
}

aas_err_t aas_gw_http_start(aas_gw_t *gw, aas_gw_http_t **out, char *errstr,
                            size_t errstr_size) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)gw->c.port);
    if (inet_pton(AF_INET, gw->c.host, &sa.sin_addr) != 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "gateway.listen.host '%.64s' is not an IPv4 address", gw->c.host);
    const char *cert = gw->c.tls_cert_file, *key = gw->c.tls_key_file;
    int tls = cert && cert[0];
    if (tls != (key && key[0]))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "HTTPS needs both gateway.tls.cert.file and gateway.tls.key.file");
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "this libmicrohttpd was built without TLS");
    aas_gw_http_t *h = calloc(1, sizeof(*h));
    if (!h) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    h->gw = gw;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->drained, NULL);
    aas_err_t err;
    if (tls && ((err = read_pem(cert, "gateway.tls.cert.file", &h->tls_cert, errstr,
                                errstr_size)) ||
                (err = read_pem(key, "gateway.tls.key.file", &h->tls_key, errstr,
                                errstr_size)))) {
        http_free(h);
        return err;
    }
    h->in_flight = aas_metrics_gauge(gw->metrics, "aas_gateway_requests_in_flight",
                                     "Requests received and not yet answered", NULL);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &sa},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)gw->c.threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)gw->c.connection_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)gw->c.connection_limit, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key},
        {MHD_OPTION_END, 0, NULL}};
    /* ITC: MHD_quiesce_daemon() at shutdown needs it with a thread pool. */
    h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                                (tls ? MHD_USE_TLS : 0),
                            (uint16_t)gw->c.port, NULL, NULL, on_request, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->d) {
        http_free(h);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "cannot listen on %.64s:%" PRId64 " (in use or not allowed%s)",
                           gw->c.host, gw->c.port,
                           tls ? ", or the certificate and key do not load or match" : "");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : (unsigned)gw->c.port;
    *out = h;
    return AAS_ERR_OK;
}

unsigned aas_gw_http_port(const aas_gw_http_t *h) { return h->port; }

void aas_gw_http_stop(aas_gw_http_t *h) {
    if (!h) return;
    /* Stop accepting, then let the requests in flight get their answers
     * (a synchronous one waits at most gateway.timeout.ms for its job)
     * before the connections close.  An idle keep-alive connection has
     * no request, so nothing waits for it. */
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET) close(ls);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ms = h->gw->c.timeout_ms + 2000;
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    long busy = 0;
    while (h->open > 0) {
        busy = h->open;
        if (pthread_cond_timedwait(&h->drained, &h->mu, &until) == ETIMEDOUT) break;
    }
    long left = h->open;
    pthread_mutex_unlock(&h->mu);
    if (busy)
        AAS_LOG(AAS_LOG_INFO, "http", "drained requests=%ld left=%ld", busy, left);
    MHD_stop_daemon(h->d);
    http_free(h);
}
