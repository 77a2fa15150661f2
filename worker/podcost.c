/* podcost.c - the pod-deletion-cost PATCH on its own thread.  See podcost.h.
 * libcurl stays in this file: nothing else in aas speaks HTTPS as a client. */
#include "podcost.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

/* Backoff of a failed PATCH: 1 s doubling up to a minute; a failure is
 * logged at most once a minute (every attempt is counted). */
#define AAS_PODCOST_BACKOFF_MIN_MS 1000
#define AAS_PODCOST_BACKOFF_MAX_MS 60000
#define AAS_PODCOST_LOG_EVERY_MS 60000
/* A service account token is ~1 KiB; refuse a file far larger. */
#define AAS_PODCOST_TOKEN_MAX 65536
/* Kept of an error response, for the log line (a Kubernetes Status). */
#define AAS_PODCOST_REPLY_MAX 240

struct aas_podcost_s {
    char url[1024];
    char token_file[1024];
    char ca_file[1024];
    int64_t busy_cost;
    long timeout_ms;
    CURL *curl;               /* the thread's only (keeps the connection) */
    aas_metric_t *m_ok, *m_failed, *m_cost;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;       /* guards the fields below */
    pthread_cond_t cv;        /* want changed, or stop */
    int stop;
    int64_t want;             /* the cost asked for */
    int64_t applied;          /* the cost the API last accepted */
    int applied_known;        /* 0 until the first success */
    int64_t retry_at_ms;      /* monotonic; 0 = now */
    int64_t backoff_ms;
    int64_t next_log_ms;      /* the next failure line may be written then */
    uint64_t failures;        /* in a row */
};

static int64_t aas_podcost_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- pure parts ---- */

static int aas_podcost_label_ok(const char *s, size_t n) {
    if (n < 1 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i + 1 < n)) return 0;
    }
    return 1;
}

int aas_podcost_dns_label_valid(const char *s) {
    return s && aas_podcost_label_ok(s, strlen(s));
}

int aas_podcost_dns_subdomain_valid(const char *s) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 253) return 0;
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!aas_podcost_label_ok(p, len)) return 0;
        if (!dot) return 1;
        p = dot + 1;
    }
}

aas_err_t aas_podcost_incluster_url(const char *host, const char *port, char *out,
                                    size_t out_size, char *errstr, size_t errstr_size) {
    if (!host || !*host)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "no API server host");
    for (const char *c = host; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr(".-:", *c))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "API server host '%s' is not a host name or address", host);
    char *end = NULL;
    errno = 0;
    long p = port && *port ? strtol(port, &end, 10) : 443;
    if (errno || (end && *end) || p < 1 || p > 65535)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "API server port '%s' is not 1..65535", port);
    /* An IPv6 address (it has colons) goes in brackets (RFC 3986). */
    int v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, out_size, "https://%s%s%s:%ld", v6 ? "[" : "", host, v6 ? "]" : "",
                     p);
    if (n < 0 || (size_t)n >= out_size)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "API URL too long");
    return AAS_ERR_OK;
}

aas_err_t aas_podcost_url(const char *api_url, const char *ns, const char *pod, char *out,
                          size_t out_size, char *errstr, size_t errstr_size) {
    if (!api_url || strncasecmp(api_url, "https://", 8) != 0 || !api_url[8])
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "k8s.api.url '%s' is not an https:// URL",
                           api_url ? api_url : "");
    for (const char *c = api_url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '?' || *c == '#')
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "k8s.api.url has a space, control byte, query or fragment");
    if (!aas_podcost_dns_label_valid(ns))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "namespace '%s' is not a DNS label ([a-z0-9-], at most 63)",
                           ns ? ns : "");
    if (!aas_podcost_dns_subdomain_valid(pod))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "pod name '%s' is not a DNS subdomain ([a-z0-9.-], at most 253)",
                           pod ? pod : "");
    size_t base = strlen(api_url);
    while (base > 8 && api_url[base - 1] == '/') base--;
    int n = snprintf(out, out_size, "%.*s/api/v1/namespaces/%s/pods/%s", (int)base, api_url,
                     ns, pod);
    if (n < 0 || (size_t)n >= out_size)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "pod URL too long");
    return AAS_ERR_OK;
}

aas_err_t aas_podcost_body(int64_t cost, char *out, size_t out_size) {
    if (cost < INT32_MIN || cost > INT32_MAX) return AAS_ERR_INVAL;
    int n = snprintf(out, out_size,
                     "{\"metadata\":{\"annotations\":{\"" AAS_PODCOST_ANNOTATION
                     "\":\"%" PRId64 "\"}}}", cost);
    if (n < 0 || (size_t)n >= out_size) return AAS_ERR_TOO_LARGE;
    return AAS_ERR_OK;
}

/* ---- one request ---- */

typedef struct {
    char text[AAS_PODCOST_REPLY_MAX + 1];
    size_t len;
} aas_podcost_reply_t;

/* Keep the start of the reply for the log; take (and drop) the rest. */
static size_t aas_podcost_on_data(char *ptr, size_t size, size_t nmemb, void *opaque) {
    aas_podcost_reply_t *r = opaque;
    size_t n = size * nmemb, room = AAS_PODCOST_REPLY_MAX - r->len;
    size_t take = n < room ? n : room;
    memcpy(r->text + r->len, ptr, take);
    r->len += take;
    r->text[r->len] = '\0';
    return n;
}

/* The bearer token header, read now (the kubelet rotates the file). */
static aas_err_t aas_podcost_auth_header(const char *path, char **out, char *errstr,
                                         size_t errstr_size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "token file %s: %s", path,
                           strerror(errno));
    static const char prefix[] = "Authorization: Bearer ";
    size_t cap = sizeof(prefix) + AAS_PODCOST_TOKEN_MAX + 1;
    char *h = malloc(cap);
    if (!h) {
        fclose(f);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    memcpy(h, prefix, sizeof(prefix) - 1);
    char *tok = h + sizeof(prefix) - 1;
    size_t n = fread(tok, 1, AAS_PODCOST_TOKEN_MAX + 1, f);
    int rerr = ferror(f);
    fclose(f);
    while (n > 0 && isspace((unsigned char)tok[n - 1])) n--;
    tok[n] = '\0';
    aas_err_t err = AAS_ERR_OK;
    if (rerr) err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "token file %s: read error", path);
    else if (n == 0) err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "token file %s is empty", path);
    else if (n > AAS_PODCOST_TOKEN_MAX)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "token file %s is too large",
                          path);
    else
        for (size_t i = 0; i < n && !err; i++)
            if ((unsigned char)tok[i] < 0x21 || tok[i] == 0x7f)
                err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                  "token file %s has a byte no token has", path);
    if (err) {
        explicit_bzero(h, cap);
        free(h);
        return err;
    }
    *out = h;
    return AAS_ERR_OK;
}

/* Every option of one PATCH; each return checked. */
#define AAS_PODCOST_SETOPT(h, opt, val)                                       \
    do {                                                                      \
        if ((rc = curl_easy_setopt((h), (opt), (val))) != CURLE_OK) {         \
            err = aas_err_set(errstr, errstr_size, AAS_ERR_IO,                \
                              "curl_easy_setopt(" #opt "): %s",               \
                              curl_easy_strerror(rc));                        \
            goto done;                                                        \
        }                                                                     \
    } while (0)

/* PATCH the annotation to cost; AAS_ERR_OK on HTTP 200. */
static aas_err_t aas_podcost_patch(aas_podcost_t *p, int64_t cost, char *errstr,
                                   size_t errstr_size) {
    char body[160];
    aas_err_t err = aas_podcost_body(cost, body, sizeof(body));
    if (err) return aas_err_set(errstr, errstr_size, err, "cost %" PRId64 " out of range", cost);
    char *auth = NULL;
    if ((err = aas_podcost_auth_header(p->token_file, &auth, errstr, errstr_size))) return err;
    struct curl_slist *hdrs = NULL, *h2;
    const char *fixed[] = {"Content-Type: application/merge-patch+json",
                           "Accept: application/json", auth};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (!(h2 = curl_slist_append(hdrs, fixed[i]))) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            goto done;
        }
        hdrs = h2;
    }
    CURL *c = p->curl;
    CURLcode rc;
    char cerr[CURL_ERROR_SIZE] = "";
    aas_podcost_reply_t reply = {.len = 0};
    reply.text[0] = '\0';
    /* Reset between requests (keeps the open connection and TLS session). */
    curl_easy_reset(c);
    AAS_PODCOST_SETOPT(c, CURLOPT_ERRORBUFFER, cerr);
    AAS_PODCOST_SETOPT(c, CURLOPT_URL, p->url);
    AAS_PODCOST_SETOPT(c, CURLOPT_PROTOCOLS_STR, "https");
    AAS_PODCOST_SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    AAS_PODCOST_SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);
    AAS_PODCOST_SETOPT(c, CURLOPT_CUSTOMREQUEST, "PATCH");
    AAS_PODCOST_SETOPT(c, CURLOPT_POSTFIELDS, body);
    AAS_PODCOST_SETOPT(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    AAS_PODCOST_SETOPT(c, CURLOPT_HTTPHEADER, hdrs);
    AAS_PODCOST_SETOPT(c, CURLOPT_CAINFO, p->ca_file);
    AAS_PODCOST_SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
    AAS_PODCOST_SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
    AAS_PODCOST_SETOPT(c, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    AAS_PODCOST_SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    /* Other threads: no SIGALRM for name resolution timeouts. */
    AAS_PODCOST_SETOPT(c, CURLOPT_NOSIGNAL, 1L);
    AAS_PODCOST_SETOPT(c, CURLOPT_WRITEFUNCTION, aas_podcost_on_data);
    AAS_PODCOST_SETOPT(c, CURLOPT_WRITEDATA, &reply);
    if ((rc = curl_easy_perform(c)) != CURLE_OK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "PATCH %s: %s", p->url,
                          cerr[0] ? cerr : curl_easy_strerror(rc));
        goto done;
    }
    long status = 0;
    if ((rc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status)) != CURLE_OK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "PATCH %s: no status: %s", p->url,
                          curl_easy_strerror(rc));
        goto done;
    }
    if (status != 200)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "PATCH %s: HTTP %ld: %s%s", p->url,
                          status, reply.text, reply.len == AAS_PODCOST_REPLY_MAX ? "..." : "");
done:
    /* The header list holds a copy of the token and is freed below: the
     * handle must not keep pointing at it (setting NULL cannot fail). */
    (void)curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(hdrs);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    return err;
}

/* ---- the thread ---- */

static void aas_podcost_deadline(int64_t at_ms, struct timespec *ts) {
    ts->tv_sec = at_ms / 1000;
    ts->tv_nsec = (at_ms % 1000) * 1000000;
}

static void *aas_podcost_main(void *arg) {
    aas_podcost_t *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->applied_known && p->applied == p->want) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        int64_t now = aas_podcost_now_ms();
        if (now < p->retry_at_ms) {
            struct timespec ts;
            aas_podcost_deadline(p->retry_at_ms, &ts);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
            continue;
        }
        int64_t cost = p->want;
        pthread_mutex_unlock(&p->mu);
        char why[512];
        aas_err_t err = aas_podcost_patch(p, cost, why, sizeof(why));
        pthread_mutex_lock(&p->mu);
        now = aas_podcost_now_ms();
        if (!err) {
            aas_metric_inc(p->m_ok, 1);
            aas_metric_set(p->m_cost, (double)cost);
            AAS_LOG(AAS_LOG_INFO, "podcost", "pod deletion cost set cost=%" PRId64
                    " after_failures=%llu", cost, (unsigned long long)p->failures);
            p->applied = cost;
            p->applied_known = 1;
            p->failures = 0;
            p->backoff_ms = AAS_PODCOST_BACKOFF_MIN_MS;
            p->next_log_ms = 0;
            continue;
        }
        aas_metric_inc(p->m_failed, 1);
        p->failures++;
        if (now >= p->next_log_ms) {
            AAS_LOG(AAS_LOG_WARN, "podcost", "pod deletion cost not set cost=%" PRId64
                    " failures=%llu retry_in_ms=%lld: %s", cost,
                    (unsigned long long)p->failures, (long long)p->backoff_ms, why);
            p->next_log_ms = now + AAS_PODCOST_LOG_EVERY_MS;
        }
        p->retry_at_ms = now + p->backoff_ms;
        p->backoff_ms *= 2;
        if (p->backoff_ms > AAS_PODCOST_BACKOFF_MAX_MS) p->backoff_ms = AAS_PODCOST_BACKOFF_MAX_MS;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void aas_podcost_busy(aas_podcost_t *p, int busy) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    int64_t want = busy ? p->busy_cost : 0;
    if (want != p->want) {
        p->want = want;
        /* A change is tried at once, whatever the backoff of the last. */
        p->retry_at_ms = 0;
        p->backoff_ms = AAS_PODCOST_BACKOFF_MIN_MS;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
}

/* ---- set-up ---- */

/* The namespace file's first line, if it is there. */
static int aas_podcost_read_ns(char *out, size_t out_size) {
    FILE *f = fopen(AAS_PODCOST_SA_DIR "/namespace", "r");
    if (!f) return 0;
    int ok = fgets(out, (int)out_size, f) != NULL;
    fclose(f);
    if (ok) out[strcspn(out, " \t\r\n")] = '\0';
    return ok && out[0];
}

aas_err_t aas_podcost_new(const aas_podcost_conf_t *conf, aas_metrics_t *metrics,
                          aas_podcost_t **out, char *errstr, size_t errstr_size) {
    const char *en = conf->enabled ? conf->enabled : "auto";
    int force;
    if (!strcmp(en, "false")) {
        *out = NULL;
        return AAS_ERR_OK;
    } else if (!strcmp(en, "true")) {
        force = 1;
    } else if (!strcmp(en, "auto")) {
        force = 0;
    } else {
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "k8s.pod.deletion.cost.enabled '%s' is not auto, true or false", en);
    }
    char api[512];
    aas_err_t err;
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (conf->api_url) {
        snprintf(api, sizeof(api), "%s", conf->api_url);
    } else if (host && *host) {
        if ((err = aas_podcost_incluster_url(host, getenv("KUBERNETES_SERVICE_PORT"), api,
                                             sizeof(api), errstr, errstr_size)))
            return err;
    } else if (force) {
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "k8s.pod.deletion.cost.enabled=true but no k8s.api.url and no "
                           "KUBERNETES_SERVICE_HOST");
    } else {
        *out = NULL; /* not in a cluster: nothing to say */
        return AAS_ERR_OK;
    }
    const char *pod = conf->pod ? conf->pod : getenv("POD_NAME");
    char nsbuf[256] = "";
    const char *ns = conf->ns ? conf->ns : getenv("POD_NAMESPACE");
    if (!ns && aas_podcost_read_ns(nsbuf, sizeof(nsbuf))) ns = nsbuf;
    if (!pod || !*pod || !ns || !*ns) {
        const char *miss = !pod || !*pod ? "pod name (k8s.pod.name or POD_NAME)"
                                         : "namespace (k8s.namespace, POD_NAMESPACE or "
                                           AAS_PODCOST_SA_DIR "/namespace)";
        if (force)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "k8s.pod.deletion.cost.enabled=true but no %s", miss);
        AAS_LOG(AAS_LOG_INFO, "podcost", "pod deletion cost off: no %s", miss);
        *out = NULL;
        return AAS_ERR_OK;
    }
    if (conf->busy_cost < 0 || conf->busy_cost > INT32_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "worker.busy.deletion.cost %lld is not 0..2147483647",
                           (long long)conf->busy_cost);
    aas_podcost_t *p = calloc(1, sizeof(*p));
    if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if ((err = aas_podcost_url(api, ns, pod, p->url, sizeof(p->url), errstr, errstr_size))) {
        free(p);
        return err;
    }
    int n1 = snprintf(p->token_file, sizeof(p->token_file), "%s",
                      conf->token_file ? conf->token_file : AAS_PODCOST_SA_DIR "/token");
    int n2 = snprintf(p->ca_file, sizeof(p->ca_file), "%s",
                      conf->ca_file ? conf->ca_file : AAS_PODCOST_SA_DIR "/ca.crt");
    if (n1 < 0 || (size_t)n1 >= sizeof(p->token_file) || n2 < 0 ||
        (size_t)n2 >= sizeof(p->ca_file)) {
        free(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "k8s.token.file or k8s.ca.file is too long");
    }
    p->busy_cost = conf->busy_cost;
    p->timeout_ms = (long)conf->timeout_ms;
    p->backoff_ms = AAS_PODCOST_BACKOFF_MIN_MS;
    p->want = 0; /* idle until a training job starts */
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "pthread_mutex_init failed");
    }
    /* The thread waits with deadlines on the monotonic clock. */
    pthread_condattr_t ca;
    int cv_ok = !pthread_condattr_init(&ca);
    if (cv_ok) {
        cv_ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) &&
                !pthread_cond_init(&p->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!cv_ok) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "pthread_cond_init failed");
    }
    /* Thread-safe in libcurl >= 7.84 built with a thread-safe TLS library
     * (Debian 12: 7.88 on OpenSSL 3); the other threads are running by now. */
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "curl_global_init: %s",
                          curl_easy_strerror(rc));
        p->curl = NULL;
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return err;
    }
    /* From here on, aas_podcost_destroy() cleans up. */
    if (!(p->curl = curl_easy_init())) {
        aas_podcost_destroy(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "curl_easy_init failed");
    }
    p->m_ok = aas_metrics_counter(metrics, "aas_worker_pod_deletion_cost_patches_total",
                                  "PATCHes of the pod's deletion cost, by outcome",
                                  "result=\"ok\"");
    p->m_failed = aas_metrics_counter(metrics, "aas_worker_pod_deletion_cost_patches_total",
                                      "PATCHes of the pod's deletion cost, by outcome",
                                      "result=\"failed\"");
    p->m_cost = aas_metrics_gauge(metrics, "aas_worker_pod_deletion_cost",
                                  "The pod deletion cost the API server last accepted", NULL);
    if (pthread_create(&p->thread, NULL, aas_podcost_main, p)) {
        aas_podcost_destroy(p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "cannot start the podcost thread");
    }
    p->thread_started = 1;
    AAS_LOG(AAS_LOG_INFO, "podcost", "pod deletion cost on url=%s busy_cost=%" PRId64
            " timeout_ms=%ld", p->url, p->busy_cost, p->timeout_ms);
    *out = p;
    return AAS_ERR_OK;
}

void aas_podcost_destroy(aas_podcost_t *p) {
    if (!p) return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    if (p->curl) curl_easy_cleanup(p->curl);
    curl_global_cleanup();
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
