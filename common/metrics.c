/*
 * metrics.c - the registry behind metrics.h and its libmicrohttpd server.
 *
 * Layout: families in a list (creation order, rendered in that order), each
 * with its series in a list; every series also sits in a fixed-size hash
 * table keyed by name + canonical labels for get-or-create.  One mutex
 * guards it all: updates are a few arithmetic operations, and the render
 * (a scrape every few seconds) holds it for the time it takes to print.
 *
 * The server binds its own socket and hands it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): that way a bind failure reports errno
 * ("Address already in use") instead of MHD_start_daemon's bare NULL, and
 * port 0 is read back with getsockname().
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"

#define AAS_METRICS_HASH_SIZE 4096 /* power of two; ~2.5 series per slot at the cap */
#define AAS_METRICS_HTTP_CONNECTIONS 16
#define AAS_METRICS_HTTP_TIMEOUT_S 10
#define AAS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum {
    AAS_METRIC_COUNTER,
    AAS_METRIC_GAUGE,
    AAS_METRIC_HISTOGRAM
} aas_metric_kind_t;

static const char *const aas_metric_kind_names[] = {"counter", "gauge",
                                                   "histogram"};

typedef struct aas_metric_family_s {
    char *name;
    char *help;                 /* NULL until a non-empty help arrives */
    aas_metric_kind_t kind;
    double *bounds;             /* histogram only */
    size_t n_bounds;
    aas_metric_t *first, *last; /* series, creation order */
    struct aas_metric_family_s *next;
} aas_metric_family_t;

struct aas_metric_s {
    aas_metrics_t *reg;
    aas_metric_family_t *fam;
    char *labels;               /* canonical body, "" for none */
    uint64_t hash;
    double value;               /* counter, gauge */
    double sum;                 /* histogram */
    uint64_t count;
    uint64_t *buckets;          /* histogram: n_bounds + 1 counts, not cumulative */
    aas_metric_t *next;         /* in family */
    aas_metric_t *hnext;        /* in hash slot */
};

struct aas_metrics_s {
    pthread_mutex_t mu;
    aas_metric_family_t *fam_first, *fam_last;
    aas_metric_t *table[AAS_METRICS_HASH_SIZE];
    size_t n_series;
    uint64_t refused;
    struct MHD_Daemon *daemon;
    int port;
    /* Health (under mu): the loop's last sign of life, how long it may go
     * quiet, readiness and why not, and one JSON document. */
    int64_t alive_us;       /* monotonic; 0 = no sign yet (starting) */
    int stall_s;            /* health.stall.s */
    int ready;
    char ready_why[256];
    char doc_path[64];      /* "" = none */
    char *doc;
    double start_s;         /* Unix time of aas_metrics_new(): the program's start */
    int process;            /* render the process collector (aas_metrics_add_process) */
};

/* ---------------------------------------------------------------- names */

static int aas_metrics_name_ok(const char *s) {
    if (!s || !*s) return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
    }
    return 1;
}

typedef struct {
    const char *name, *value; /* into the caller's string; value is the escaped text */
    size_t name_len, value_len;
} aas_label_pair_t;

/*
 * Parse a label body into pairs, validate it and write the canonical form
 * (pairs sorted by name) into out (at least strlen(labels) + 1 bytes).
 * Returns 0 if invalid.
 */
static int aas_metrics_labels_canon(const char *labels, int histogram,
                                    char *out) {
    aas_label_pair_t pairs[AAS_METRICS_MAX_LABELS];
    size_t n = 0;
    const char *p = labels;

    out[0] = '\0';
    if (!labels || !*labels) return 1;
    if (strlen(labels) > AAS_METRICS_MAX_LABELS_LEN) return 0;
    for (;;) {
        if (n == AAS_METRICS_MAX_LABELS) return 0;
        aas_label_pair_t *lp = &pairs[n];
        const char *start = p;
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
            return 0;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
               (*p >= '0' && *p <= '9') || *p == '_')
            p++;
        lp->name = start;
        lp->name_len = (size_t)(p - start);
        if (lp->name_len >= 2 && start[0] == '_' && start[1] == '_') return 0;
        if (histogram && lp->name_len == 2 && memcmp(start, "le", 2) == 0)
            return 0;
        if (*p++ != '=' || *p++ != '"') return 0;
        lp->value = p;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n') return 0;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') return 0;
            }
            p++;
        }
        lp->value_len = (size_t)(p - lp->value);
        p++; /* closing quote */
        n++;
        if (*p == '\0') break;
        if (*p++ != ',') return 0;
    }

    /* Insertion sort by name (at most 16 pairs); equal names are a clash. */
    for (size_t i = 1; i < n; i++) {
        aas_label_pair_t x = pairs[i];
        size_t j = i;
        while (j > 0) {
            const aas_label_pair_t *y = &pairs[j - 1];
            size_t k = x.name_len < y->name_len ? x.name_len : y->name_len;
            int c = memcmp(x.name, y->name, k);
            if (c == 0 && x.name_len == y->name_len) return 0;
            if (c > 0 || (c == 0 && x.name_len > y->name_len)) break;
            pairs[j] = pairs[j - 1];
            j--;
        }
        pairs[j] = x;
    }

    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) *o++ = ',';
        memcpy(o, pairs[i].name, pairs[i].name_len);
        o += pairs[i].name_len;
        *o++ = '=';
        *o++ = '"';
        memcpy(o, pairs[i].value, pairs[i].value_len);
        o += pairs[i].value_len;
        *o++ = '"';
    }
    *o = '\0';
    return 1;
}

/* FNV-1a over name, a separator, labels. */
static uint64_t aas_metrics_hash(const char *name, const char *labels) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0xffu) * 1099511628211ULL;
    for (const char *s = labels; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ------------------------------------------------------------- registry */

aas_err_t aas_metrics_new(aas_metrics_t **out, char *errstr, size_t errstr_size) {
    aas_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "metrics: out of memory");
    m->stall_s = 60;
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) == 0)
        m->start_s = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    snprintf(m->ready_why, sizeof(m->ready_why), "starting");
    int rc = pthread_mutex_init(&m->mu, NULL);
    if (rc != 0) {
        free(m);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "metrics: pthread_mutex_init: %s", strerror(rc));
    }
    *out = m;
    return AAS_ERR_OK;
}

static void aas_metrics_stop(aas_metrics_t *m) {
    if (!m->daemon) return;
    /* Joins the internal thread and closes the listen socket (MHD owns it
     * once MHD_start_daemon succeeded). */
    MHD_stop_daemon(m->daemon);
    m->daemon = NULL;
    m->port = 0;
}

void aas_metrics_destroy(aas_metrics_t *m) {
    if (!m) return;
    aas_metrics_stop(m);
    aas_metric_family_t *f = m->fam_first;
    while (f) {
        aas_metric_family_t *fn = f->next;
        aas_metric_t *s = f->first;
        while (s) {
            aas_metric_t *sn = s->next;
            free(s->labels);
            free(s->buckets);
            free(s);
            s = sn;
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
        f = fn;
    }
    pthread_mutex_destroy(&m->mu);
    free(m->doc);
    free(m);
}

/* ---------------------------------------------------------------- health */

static int64_t aas_metrics_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void aas_metrics_alive(aas_metrics_t *m) {
    if (!m) return;
    int64_t now = aas_metrics_mono_us();
    pthread_mutex_lock(&m->mu);
    m->alive_us = now;
    pthread_mutex_unlock(&m->mu);
}

void aas_metrics_ready(aas_metrics_t *m, int ready, const char *why) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->ready = ready != 0;
    snprintf(m->ready_why, sizeof(m->ready_why), "%s", ready ? "" : why ? why : "not ready");
    pthread_mutex_unlock(&m->mu);
}

aas_err_t aas_metrics_document(aas_metrics_t *m, const char *path, const char *json,
                               char *errstr, size_t errstr_size) {
    if (!m || !path || path[0] != '/' || strlen(path) >= sizeof(m->doc_path) || !json ||
        !strcmp(path, "/metrics") || !strcmp(path, "/healthz") || !strcmp(path, "/readyz"))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "metrics: bad document path");
    char *copy = strdup(json);
    if (!copy) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&m->mu);
    if (m->doc_path[0] && strcmp(m->doc_path, path)) {
        pthread_mutex_unlock(&m->mu);
        free(copy);
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "metrics: a document is served at %s already", m->doc_path);
    }
    snprintf(m->doc_path, sizeof(m->doc_path), "%s", path);
    free(m->doc);
    m->doc = copy;
    pthread_mutex_unlock(&m->mu);
    return AAS_ERR_OK;
}

static aas_metric_family_t *aas_metrics_family_find(aas_metrics_t *m,
                                                   const char *name) {
    for (aas_metric_family_t *f = m->fam_first; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

/* 1 if `name` is `base` followed by one of a histogram's suffixes. */
static int aas_metrics_is_hist_part(const char *name, const char *base) {
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0) return 0;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(name + bl, suffixes[i]) == 0) return 1;
    return 0;
}

/* A new family `name` of `kind` would print lines that another family also
 * prints (counter foo_count next to histogram foo). */
static int aas_metrics_family_collides(aas_metrics_t *m, const char *name,
                                       aas_metric_kind_t kind) {
    for (aas_metric_family_t *f = m->fam_first; f; f = f->next) {
        if (f->kind == AAS_METRIC_HISTOGRAM && aas_metrics_is_hist_part(name, f->name))
            return 1;
        if (kind == AAS_METRIC_HISTOGRAM && aas_metrics_is_hist_part(f->name, name))
            return 1;
    }
    return 0;
}

static void aas_metrics_refuse(aas_metrics_t *m, const char *name) {
    if (m->refused++ == 0)
        AAS_LOG(AAS_LOG_WARN, "metrics",
                "event=series_refused name=%s max_series=%d reason=\"registry full\"",
                name, AAS_METRICS_MAX_SERIES);
}

static aas_metric_t *aas_metrics_get(aas_metrics_t *m, aas_metric_kind_t kind,
                                     const char *name, const char *help,
                                     const char *labels, const double *bounds,
                                     size_t n_bounds) {
    char canon[AAS_METRICS_MAX_LABELS_LEN + 1];

    if (!m || !aas_metrics_name_ok(name)) return NULL;
    if (!aas_metrics_labels_canon(labels, kind == AAS_METRIC_HISTOGRAM, canon))
        return NULL;
    if (kind == AAS_METRIC_HISTOGRAM) {
        if (n_bounds > AAS_METRICS_MAX_BOUNDS || (n_bounds > 0 && !bounds))
            return NULL;
        for (size_t i = 0; i < n_bounds; i++) {
            if (!isfinite(bounds[i])) return NULL;
            if (i > 0 && !(bounds[i] > bounds[i - 1])) return NULL;
        }
    }
    uint64_t h = aas_metrics_hash(name, canon);
    size_t slot = (size_t)(h & (AAS_METRICS_HASH_SIZE - 1));

    pthread_mutex_lock(&m->mu);
    aas_metric_t *s = m->table[slot];
    for (; s; s = s->hnext) {
        if (s->hash == h && strcmp(s->fam->name, name) == 0 &&
            strcmp(s->labels, canon) == 0)
            break;
    }
    if (s) {
        if (s->fam->kind != kind) s = NULL;
        else if (kind == AAS_METRIC_HISTOGRAM &&
                 (s->fam->n_bounds != n_bounds ||
                  (n_bounds && memcmp(s->fam->bounds, bounds, n_bounds * sizeof(double)) != 0)))
            s = NULL;
        else if (help && *help && !s->fam->help)
            s->fam->help = strdup(help); /* NULL is harmless: no HELP line */
        pthread_mutex_unlock(&m->mu);
        return s;
    }

    aas_metric_family_t *f = aas_metrics_family_find(m, name);
    aas_metric_family_t *new_fam = NULL;
    if (f) {
        if (f->kind != kind) goto fail;
        if (kind == AAS_METRIC_HISTOGRAM &&
            (f->n_bounds != n_bounds ||
             (n_bounds && memcmp(f->bounds, bounds, n_bounds * sizeof(double)) != 0)))
            goto fail;
    } else if (aas_metrics_family_collides(m, name, kind)) {
        goto fail;
    }
    if (m->n_series >= AAS_METRICS_MAX_SERIES) {
        aas_metrics_refuse(m, name);
        goto fail;
    }
    if (!f) {
        new_fam = calloc(1, sizeof(*new_fam));
        if (!new_fam) goto fail;
        new_fam->kind = kind;
        new_fam->name = strdup(name);
        if (!new_fam->name) goto fail;
        if (kind == AAS_METRIC_HISTOGRAM && n_bounds > 0) {
            new_fam->bounds = malloc(n_bounds * sizeof(double));
            if (!new_fam->bounds) goto fail;
            memcpy(new_fam->bounds, bounds, n_bounds * sizeof(double));
        }
        new_fam->n_bounds = n_bounds;
        f = new_fam;
    }
    s = calloc(1, sizeof(*s));
    if (!s) goto fail;
    s->labels = strdup(canon);
    if (kind == AAS_METRIC_HISTOGRAM)
        s->buckets = calloc(f->n_bounds + 1, sizeof(uint64_t));
    if (!s->labels || (kind == AAS_METRIC_HISTOGRAM && !s->buckets)) {
        free(s->labels);
        free(s->buckets);
        free(s);
        s = NULL;
        goto fail;
    }
    if (help && *help && !f->help) f->help = strdup(help); /* NULL is harmless: no HELP line */
    s->reg = m;
    s->fam = f;
    s->hash = h;
    s->hnext = m->table[slot];
    m->table[slot] = s;
    if (f->last) f->last->next = s;
    else f->first = s;
    f->last = s;
    if (new_fam) {
        if (m->fam_last) m->fam_last->next = new_fam;
        else m->fam_first = new_fam;
        m->fam_last = new_fam;
    }
    m->n_series++;
    pthread_mutex_unlock(&m->mu);
    return s;

fail:
    pthread_mutex_unlock(&m->mu);
    if (new_fam) {
        free(new_fam->name);
        free(new_fam->bounds);
        free(new_fam);
    }
    return NULL;
}

aas_metric_t *aas_metrics_counter(aas_metrics_t *m, const char *name,
                                  const char *help, const char *labels) {
    return aas_metrics_get(m, AAS_METRIC_COUNTER, name, help, labels, NULL, 0);
}

aas_metric_t *aas_metrics_gauge(aas_metrics_t *m, const char *name,
                                const char *help, const char *labels) {
    return aas_metrics_get(m, AAS_METRIC_GAUGE, name, help, labels, NULL, 0);
}

aas_metric_t *aas_metrics_histogram(aas_metrics_t *m, const char *name,
                                    const char *help, const char *labels,
                                    const double *bounds, size_t n_bounds) {
    return aas_metrics_get(m, AAS_METRIC_HISTOGRAM, name, help, labels, bounds,
                           n_bounds);
}

/* -------------------------------------------------------------- updates */

void aas_metric_inc(aas_metric_t *s, double v) {
    if (!s || s->fam->kind == AAS_METRIC_HISTOGRAM) return;
    /* A counter only goes up (written as !(v >= 0) so NaN is refused too). */
    if (s->fam->kind == AAS_METRIC_COUNTER && !(v >= 0)) return;
    pthread_mutex_lock(&s->reg->mu);
    s->value += v;
    pthread_mutex_unlock(&s->reg->mu);
}

void aas_metric_set(aas_metric_t *s, double v) {
    if (!s || s->fam->kind != AAS_METRIC_GAUGE) return;
    pthread_mutex_lock(&s->reg->mu);
    s->value = v;
    pthread_mutex_unlock(&s->reg->mu);
}

void aas_metric_observe(aas_metric_t *s, double v) {
    if (!s || s->fam->kind != AAS_METRIC_HISTOGRAM || isnan(v)) return;
    /* Bounds are immutable after creation: search outside the lock. */
    const double *b = s->fam->bounds;
    size_t lo = 0, hi = s->fam->n_bounds; /* first i with v <= b[i], else n */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= b[mid]) hi = mid;
        else lo = mid + 1;
    }
    pthread_mutex_lock(&s->reg->mu);
    s->buckets[lo]++;
    s->count++;
    s->sum += v;
    pthread_mutex_unlock(&s->reg->mu);
}

double aas_metric_value(aas_metric_t *s) {
    if (!s) return 0;
    pthread_mutex_lock(&s->reg->mu);
    double v = s->fam->kind == AAS_METRIC_HISTOGRAM ? (double)s->count : s->value;
    pthread_mutex_unlock(&s->reg->mu);
    return v;
}

/* --------------------------------------------------------------- render */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} aas_metrics_buf_t;

static void aas_metrics_buf_reserve(aas_metrics_buf_t *b, size_t more) {
    if (b->oom || b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void aas_metrics_buf_put(aas_metrics_buf_t *b, const char *s, size_t n) {
    aas_metrics_buf_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void aas_metrics_buf_str(aas_metrics_buf_t *b, const char *s) {
    aas_metrics_buf_put(b, s, strlen(s));
}

/* Shortest "%.Ng" that reads back as the same double; Prometheus spellings
 * for the non-finite values. */
static void aas_metrics_fmt_double(char out[40], double v) {
    if (isnan(v)) {
        strcpy(out, "NaN");
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, 40, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, 40, "%.17g", v);
    }
}

/* name{labels[,extra]} value\n */
static void aas_metrics_buf_sample(aas_metrics_buf_t *b, const char *name,
                                   const char *suffix, const char *labels,
                                   const char *extra, const char *value) {
    aas_metrics_buf_str(b, name);
    aas_metrics_buf_str(b, suffix);
    if (*labels || extra) {
        aas_metrics_buf_put(b, "{", 1);
        aas_metrics_buf_str(b, labels);
        if (extra) {
            if (*labels) aas_metrics_buf_put(b, ",", 1);
            aas_metrics_buf_str(b, extra);
        }
        aas_metrics_buf_put(b, "}", 1);
    }
    aas_metrics_buf_put(b, " ", 1);
    aas_metrics_buf_str(b, value);
    aas_metrics_buf_put(b, "\n", 1);
}

/* HELP text escapes backslash and newline only (format 0.0.4). */
static void aas_metrics_buf_help(aas_metrics_buf_t *b, const char *name,
                                 const char *help) {
    aas_metrics_buf_str(b, "# HELP ");
    aas_metrics_buf_str(b, name);
    aas_metrics_buf_put(b, " ", 1);
    for (const char *s = help; *s; s++) {
        if (*s == '\\') aas_metrics_buf_put(b, "\\\\", 2);
        else if (*s == '\n') aas_metrics_buf_put(b, "\\n", 2);
        else aas_metrics_buf_put(b, s, 1);
    }
    aas_metrics_buf_put(b, "\n", 1);
}

static void aas_metrics_buf_type(aas_metrics_buf_t *b, const char *name,
                                 const char *type) {
    aas_metrics_buf_str(b, "# TYPE ");
    aas_metrics_buf_str(b, name);
    aas_metrics_buf_put(b, " ", 1);
    aas_metrics_buf_str(b, type);
    aas_metrics_buf_put(b, "\n", 1);
}

static void aas_metrics_render_family(aas_metrics_buf_t *b,
                                      const aas_metric_family_t *f) {
    char num[40], le[64];
    if (f->help) aas_metrics_buf_help(b, f->name, f->help);
    aas_metrics_buf_type(b, f->name, aas_metric_kind_names[f->kind]);
    for (const aas_metric_t *s = f->first; s; s = s->next) {
        if (f->kind != AAS_METRIC_HISTOGRAM) {
            aas_metrics_fmt_double(num, s->value);
            aas_metrics_buf_sample(b, f->name, "", s->labels, NULL, num);
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->n_bounds; i++) {
            cum += s->buckets[i];
            if (i < f->n_bounds) {
                aas_metrics_fmt_double(num, f->bounds[i]);
                snprintf(le, sizeof(le), "le=\"%s\"", num);
            } else {
                strcpy(le, "le=\"+Inf\"");
            }
            snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
            aas_metrics_buf_sample(b, f->name, "_bucket", s->labels, le, num);
        }
        aas_metrics_fmt_double(num, s->sum);
        aas_metrics_buf_sample(b, f->name, "_sum", s->labels, NULL, num);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)s->count);
        aas_metrics_buf_sample(b, f->name, "_count", s->labels, NULL, num);
    }
}

/* One process-wide gauge or counter line with its HELP and TYPE. */
static void aas_metrics_render_one(aas_metrics_buf_t *b, const char *name, const char *type,
                                   const char *help, double v) {
    char num[40];
    aas_metrics_fmt_double(num, v);
    aas_metrics_buf_help(b, name, help);
    aas_metrics_buf_type(b, name, type);
    aas_metrics_buf_sample(b, name, "", "", NULL, num);
}

/* The process collector every Prometheus client library exports, under
 * its standard names, so dashboards and the CPU-per-job figures
 * (docs/metrics.md) work unchanged: CPU of all threads, resident memory,
 * open descriptors, start time.  Read at each scrape: a few system calls. */
static void aas_metrics_render_process(aas_metrics_buf_t *b, double start_s) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        aas_metrics_render_one(b, "process_cpu_seconds_total", "counter",
                               "Total user and system CPU time spent in seconds",
                               (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                                   (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long long size_pages = 0, rss_pages = 0;
    if (fp) {
        if (fscanf(fp, "%llu %llu", &size_pages, &rss_pages) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            aas_metrics_render_one(b, "process_virtual_memory_bytes", "gauge",
                                   "Virtual memory size in bytes", (double)size_pages * page);
            aas_metrics_render_one(b, "process_resident_memory_bytes", "gauge",
                                   "Resident memory size in bytes", (double)rss_pages * page);
        }
        fclose(fp);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = -1; /* the directory's own descriptor is not counted */
        const struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') n++;
        closedir(d);
        aas_metrics_render_one(b, "process_open_fds", "gauge", "Number of open file descriptors",
                               (double)(n > 0 ? n : 0));
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        aas_metrics_render_one(b, "process_max_fds", "gauge",
                               "Maximum number of open file descriptors", (double)rl.rlim_cur);
    aas_metrics_render_one(b, "process_start_time_seconds", "gauge",
                           "Start time of the process since unix epoch in seconds", start_s);
}

void aas_metrics_add_process(aas_metrics_t *m) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->process = 1;
    pthread_mutex_unlock(&m->mu);
}

aas_err_t aas_metrics_render(aas_metrics_t *m, char **text, size_t *len,
                             char *errstr, size_t errstr_size) {
    if (!m || !text || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "metrics: render: NULL argument");
    aas_metrics_buf_t b = {0};
    aas_metrics_buf_reserve(&b, 0); /* "" for an empty registry */
    if (!b.oom) b.p[0] = '\0';
    pthread_mutex_lock(&m->mu);
    for (const aas_metric_family_t *f = m->fam_first; f && !b.oom; f = f->next)
        aas_metrics_render_family(&b, f);
    uint64_t refused = m->refused;
    int process = m->process;
    pthread_mutex_unlock(&m->mu);
    if (process) aas_metrics_render_process(&b, m->start_s);
    if (refused > 0) {
        char num[32];
        snprintf(num, sizeof(num), "%llu", (unsigned long long)refused);
        aas_metrics_buf_help(&b, "aas_metrics_refused_total",
                             "Series not created because the registry held its maximum");
        aas_metrics_buf_type(&b, "aas_metrics_refused_total", "counter");
        aas_metrics_buf_sample(&b, "aas_metrics_refused_total", "", "", NULL, num);
    }
    if (b.oom) {
        free(b.p);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "metrics: out of memory rendering %zu bytes", b.len);
    }
    *text = b.p;
    *len = b.len;
    return AAS_ERR_OK;
}

/* --------------------------------------------------------------- server */

static void aas_metrics_mhd_log(void *cls, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    AAS_LOG(AAS_LOG_WARN, "metrics", "event=http_error msg=\"%s\"", line);
}

/* Queue a short static text response; MHD_NO closes the connection. */
static enum MHD_Result aas_metrics_reply_static(struct MHD_Connection *conn,
                                                unsigned int status,
                                                const char *body,
                                                const char *allow) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                 "text/plain; charset=utf-8");
    if (ok == MHD_YES && allow)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (ok == MHD_YES) ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result aas_metrics_handle(void *cls, struct MHD_Connection *conn,
                                          const char *url, const char *method,
                                          const char *version,
                                          const char *upload_data,
                                          size_t *upload_data_size,
                                          void **req_cls) {
    aas_metrics_t *m = cls;
    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && !head)
        return aas_metrics_reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                        "method not allowed\n", "GET, HEAD");
    if (!strcmp(url, "/healthz") || !strcmp(url, "/readyz") ||
        (m->doc_path[0] && !strcmp(url, m->doc_path))) {
        /* Small answers, built under the lock and copied out. */
        char body[512];
        unsigned status = MHD_HTTP_OK;
        const char *type = "text/plain; charset=utf-8";
        char *doc = NULL;
        pthread_mutex_lock(&m->mu);
        if (!strcmp(url, "/healthz")) {
            double quiet = m->alive_us ? (double)(aas_metrics_mono_us() - m->alive_us) / 1e6 : 0;
            if (quiet > m->stall_s) {
                status = MHD_HTTP_SERVICE_UNAVAILABLE;
                snprintf(body, sizeof(body), "stalled: no sign of life from the main loop for "
                         "%.0f s (health.stall.s=%d)\n", quiet, m->stall_s);
            } else {
                snprintf(body, sizeof(body), "ok\n");
            }
        } else if (!strcmp(url, "/readyz")) {
            if (!m->ready) status = MHD_HTTP_SERVICE_UNAVAILABLE;
            snprintf(body, sizeof(body), "%s\n", m->ready ? "ready" : m->ready_why);
        } else {
            doc = strdup(m->doc ? m->doc : "{}");
            type = "application/json";
        }
        pthread_mutex_unlock(&m->mu);
        const char *text = doc ? doc : body;
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                                 MHD_RESPMEM_MUST_COPY);
        free(doc);
        if (!r) return MHD_NO;
        enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        if (ok == MHD_YES) ok = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return ok;
    }
    if (strcmp(url, "/metrics") != 0)
        return aas_metrics_reply_static(conn, MHD_HTTP_NOT_FOUND,
                                        "not found: try /metrics, /healthz or /readyz\n", NULL);

    char *text = NULL, err[256];
    size_t len = 0;
    if (aas_metrics_render(m, &text, &len, err, sizeof(err)) != AAS_ERR_OK) {
        AAS_LOG(AAS_LOG_WARN, "metrics", "event=render_failed msg=\"%s\"", err);
        return aas_metrics_reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                        "cannot render metrics\n", NULL);
    }
    /* MHD frees text with free() when the response is destroyed; if
     * creation fails we still own it. */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text,
                                                             MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                 AAS_METRICS_CONTENT_TYPE);
    if (ok == MHD_YES) ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* A listening, non-blocking socket on addr:port, or -1 with errstr set. */
static int aas_metrics_listen(const char *addr, int port, char *errstr,
                              size_t errstr_size, aas_err_t *err) {
    struct addrinfo hints, *res = NULL;
    char service[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    int rc = getaddrinfo(addr, service, &hints, &res);
    if (rc != 0) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "metrics: cannot resolve bind address '%s': %s", addr,
                           gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    res->ai_protocol);
    if (fd < 0) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "metrics: socket: %s",
                           strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    /* Rebind at once after a restart (TIME_WAIT); on Linux this still
     * refuses a port another socket listens on. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "metrics: setsockopt(SO_REUSEADDR): %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "metrics: cannot bind %s port %d: %s%s", addr, port,
                           strerror(errno),
                           errno == EADDRINUSE ? " (another process serves on it; "
                                                 "choose another metrics.port)" : "");
        goto fail;
    }
    if (listen(fd, 16 /* backlog */) != 0) {
        *err = aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "metrics: listen on %s port %d: %s", addr, port,
                           strerror(errno));
        goto fail;
    }
    freeaddrinfo(res);
    return fd;
fail:
    close(fd);
    freeaddrinfo(res);
    return -1;
}

static int aas_metrics_sock_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

aas_err_t aas_metrics_serve(aas_metrics_t *m, const char *bind_addr, int port,
                            char *errstr, size_t errstr_size) {
    if (!m) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "metrics: NULL registry");
    if (port < 0 || port > 65535)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "metrics: port %d out of range 0..65535", port);
    if (m->daemon)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "metrics: already serving on port %d", m->port);
    const char *addr = bind_addr && *bind_addr ? bind_addr : "127.0.0.1";
    aas_err_t err = AAS_ERR_OK;
    int fd = aas_metrics_listen(addr, port, errstr, errstr_size, &err);
    if (fd < 0) return err;
    int bound = aas_metrics_sock_port(fd);
    if (bound <= 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "metrics: getsockname: %s",
                          strerror(errno));
        close(fd);
        return err;
    }
    /* The logger goes first so start-up messages reach it too. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0 /* port: unused */,
        NULL, NULL, aas_metrics_handle, m,
        MHD_OPTION_EXTERNAL_LOGGER, aas_metrics_mhd_log, (void *)NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)AAS_METRICS_HTTP_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)AAS_METRICS_HTTP_TIMEOUT_S,
        MHD_OPTION_END);
    if (!d) {
        /* MHD 0.9.75 leaves the socket open when it refuses the options
         * (checked), but a later failure (thread, epoll) may have closed
         * it: close only what is still open.  Should MHD have closed it and
         * another thread reused the number in between, we would close that
         * one; serving starts in main() before other threads, so accept it. */
        if (fcntl(fd, F_GETFD) != -1) close(fd);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                           "metrics: MHD_start_daemon failed on %s port %d "
                           "(see the log line before this one)", addr, bound);
    }
    m->daemon = d;
    m->port = bound;
    return AAS_ERR_OK;
}

int aas_metrics_port(const aas_metrics_t *m) {
    return m && m->daemon ? m->port : 0;
}

aas_err_t aas_metrics_serve_conf(aas_metrics_t *m, const aas_conf_t *conf,
                                 char *errstr, size_t errstr_size) {
    if (!m || !conf)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "metrics: NULL argument");
    const char *port_s = aas_conf_get(conf, "metrics.port");
    if (!port_s)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "metrics: the program's conf table lacks AAS_METRICS_CONF_ROWS");
    long long stall = aas_conf_get_int(conf, "health.stall.s");
    if (stall > 0) {
        pthread_mutex_lock(&m->mu);
        m->stall_s = (int)stall;
        pthread_mutex_unlock(&m->mu);
    }
    aas_metrics_add_process(m);
    long long port = aas_conf_get_int(conf, "metrics.port");
    if (port <= 0) return AAS_ERR_OK;
    const char *bind_addr = aas_conf_get(conf, "metrics.bind");
    aas_err_t err = aas_metrics_serve(m, bind_addr, (int)port, errstr, errstr_size);
    if (err != AAS_ERR_OK) return err;
    const char *shown = bind_addr && *bind_addr ? bind_addr : "127.0.0.1";
    int v6 = strchr(shown, ':') != NULL;
    AAS_LOG(AAS_LOG_INFO, "metrics", "event=serving url=http://%s%s%s:%d/metrics",
            v6 ? "[" : "", shown, v6 ? "]" : "", aas_metrics_port(m));
    return AAS_ERR_OK;
}
