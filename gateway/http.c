/* http.c - libmicrohttpd glue for the gateway; see http.h. */
#include "http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "routes.h"

struct aas_gw_http_s {
    aas_gw_t *gw;
    struct MHD_Daemon *d;
    unsigned port;
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

static enum MHD_Result answer(struct MHD_Connection *conn, aas_gw_conn_t *rs,
                              const char *method, const char *url, aas_gw_resp_t *resp) {
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
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                 "application/json");
    if (ok == MHD_YES && resp->location[0])
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    if (ok == MHD_YES) ok = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    rs->answered = 1;
    AAS_LOG(AAS_LOG_INFO, "http", "method=%.16s path=%.256s status=%u bytes=%zu us=%" PRId64,
            method, url, resp->status, bytes, now_us() - rs->start_us);
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
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end != cl && *end == '\0' && v > max) {
                /* Before reading any of it (also refuses Expect: 100-continue). */
                set_too_large(&resp, (int64_t)max);
                return answer(conn, rs, method, url, &resp);
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
        return answer(conn, rs, method, url, &resp);
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
                        .json_len = json_len};
    aas_gw_route(h->gw, &req, &resp);
    return answer(conn, rs, method, url, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    aas_gw_conn_t *rs = *con_cls;
    if (!rs) return;
    free(rs->buf);
    free(rs);
    *con_cls = NULL;
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
    aas_gw_http_t *h = calloc(1, sizeof(*h));
    if (!h) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    h->gw = gw;
    h->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)gw->c.port, NULL, NULL,
        on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)gw->c.threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)gw->c.connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)gw->c.connection_limit, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_END);
    if (!h->d) {
        free(h);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "cannot listen on %.64s:%" PRId64 " (in use, or not allowed)",
                           gw->c.host, gw->c.port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : (unsigned)gw->c.port;
    *out = h;
    return AAS_ERR_OK;
}

unsigned aas_gw_http_port(const aas_gw_http_t *h) { return h->port; }

void aas_gw_http_stop(aas_gw_http_t *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
