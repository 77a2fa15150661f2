/*
 * metrics.h - Prometheus metrics: a registry of counters, gauges and
 * histograms, rendered in the text exposition format 0.0.4 and served on
 * GET /metrics by libmicrohttpd.
 *
 * What it does: get-or-create a series by name and label body, update it
 * under one mutex per registry (no allocation on update), render the whole
 * registry, serve it from libmicrohttpd's internal thread.  What it does
 * not: summaries, timestamps, exemplars, the protobuf/OpenMetrics formats,
 * TLS or authentication (bind to loopback or a private interface).
 *
 * Limits (so label explosion cannot eat memory): at most
 * AAS_METRICS_MAX_SERIES series per registry; beyond it get-or-create
 * returns NULL, one WARN line is logged and the refusals are counted in
 * aas_metrics_refused_total (rendered only once non-zero).  A label body is
 * at most AAS_METRICS_MAX_LABELS_LEN bytes with at most
 * AAS_METRICS_MAX_LABELS pairs; a histogram has at most
 * AAS_METRICS_MAX_BOUNDS finite bounds.
 *
 * Threading: every function taking a registry is thread-safe, except that
 * aas_metrics_destroy() must not race with anything else on the registry
 * and aas_metrics_serve*() are meant for the owning thread at start-up.
 * The HTTP thread renders while other threads update.
 */
#ifndef AAS_METRICS_H
#define AAS_METRICS_H

#include <stddef.h>

#include "conf.h"
#include "err.h"

#define AAS_METRICS_MAX_SERIES 10000
#define AAS_METRICS_MAX_LABELS_LEN 1024
#define AAS_METRICS_MAX_LABELS 16
#define AAS_METRICS_MAX_BOUNDS 64

/* Bucket bounds shared by the programs, so dashboards can compare them:
 *   static const double b[] = AAS_METRICS_SECONDS_BOUNDS;
 *   aas_metrics_histogram(m, name, help, labels, b, sizeof b / sizeof b[0]); */
#define AAS_METRICS_SECONDS_BOUNDS                                            \
    {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,      \
     2.5, 5, 10, 30, 60}
#define AAS_METRICS_ROWS_BOUNDS                                               \
    {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536}

typedef struct aas_metrics_s aas_metrics_t; /* a registry + optional HTTP server */
typedef struct aas_metric_s aas_metric_t;   /* one series; owned by the registry, valid until destroy */

/** @brief New empty registry, not serving. Owned by the caller. */
aas_err_t aas_metrics_new(aas_metrics_t **out, char *errstr, size_t errstr_size);
/** @brief Stop the server (joins its thread), then free the registry and
 *        every series in it.  NULL is a no-op. */
void aas_metrics_destroy(aas_metrics_t *m);

/**
 * @brief Get-or-create the series name{labels}.
 * @param name   metric name, [a-zA-Z_:][a-zA-Z0-9_:]*
 * @param help   HELP text of the family (the first non-empty one is kept;
 *               may be NULL)
 * @param labels NULL or "" for none, else a Prometheus label body such as
 *               `model="digits",status="SUCCEEDED"`: label names
 *               [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", no name twice,
 *               values in double quotes with only \\ \" \n escapes, no
 *               spaces.  Order does not matter: pairs are sorted by name, so
 *               `b="1",a="2"` is the same series as `a="2",b="1"`.
 * @return the series (borrowed: owned by the registry, valid until
 *         aas_metrics_destroy), or NULL if name or labels are invalid, the
 *         name is taken by another type (or, for a histogram, other bounds,
 *         or collides with a histogram's _bucket/_sum/_count), or the registry
 *         is full.  Updates on NULL are no-ops, so call sites need no check.
 * Callers on a hot path should keep the pointer rather than look it up per
 * event (a lookup hashes and compares strings under the mutex).
 */
aas_metric_t *aas_metrics_counter(aas_metrics_t *m, const char *name,
                                  const char *help, const char *labels);
aas_metric_t *aas_metrics_gauge(aas_metrics_t *m, const char *name,
                                const char *help, const char *labels);
/** @brief As above; bounds: ascending finite upper bounds (copied), +Inf is
 *        implied; n_bounds 0..AAS_METRICS_MAX_BOUNDS (bounds may be NULL if
 *        0).  A histogram may not have a label named "le". */
aas_metric_t *aas_metrics_histogram(aas_metrics_t *m, const char *name,
                                    const char *help, const char *labels,
                                    const double *bounds, size_t n_bounds);

/** @brief Counter: add v (v >= 0; negative or NaN is ignored).
 *         Gauge: add v (any sign).  Histogram or NULL: no-op. */
void aas_metric_inc(aas_metric_t *s, double v);
/** @brief Gauge: set to v.  Anything else or NULL: no-op. */
void aas_metric_set(aas_metric_t *s, double v);
/** @brief Histogram: count v in the first bucket with v <= bound (else
 *         +Inf) and add it to _sum.  NaN is ignored.  Else or NULL: no-op. */
void aas_metric_observe(aas_metric_t *s, double v);
/** @brief Current value: counter/gauge value, a histogram's _count; 0 for
 *         NULL.  (For tests and for programs that log their own figures.) */
double aas_metric_value(aas_metric_t *s);

/**
 * @brief The whole registry in text exposition format 0.0.4: families in
 *        creation order, each with `# HELP` (if any) and `# TYPE` once,
 *        then its series in creation order; a histogram as cumulative
 *        name_bucket{...,le="b"} lines ending with le="+Inf", then name_sum
 *        and name_count.  Values print as the shortest decimal that reads
 *        back exactly (integers without a fraction), +Inf, -Inf, NaN.
 * @param text out: malloc'ed, NUL-terminated, owned by the caller (free()).
 * @param len  out: strlen(*text).  Both written only on success.
 */
aas_err_t aas_metrics_render(aas_metrics_t *m, char **text, size_t *len,
                             char *errstr, size_t errstr_size);

/**
 * @brief Also render the standard process collector after the registry's
 *        families: process_cpu_seconds_total (user + system, all threads),
 *        process_resident_memory_bytes, process_virtual_memory_bytes,
 *        process_open_fds, process_max_fds, process_start_time_seconds
 *        (the registry's creation).  aas_metrics_serve_conf() turns it on:
 *        every program's /metrics has them.
 */
void aas_metrics_add_process(aas_metrics_t *m);

/**
 * @brief Serve GET (and HEAD) /metrics, /healthz, /readyz (and the
 *        document's path) on bind_addr:port from libmicrohttpd's internal
 *        thread; any other path is 404, any other method 405.  At most 16 connections at once, each closed after 10 s
 *        idle.
 * @param bind_addr numeric IPv4/IPv6 address or host name; NULL = 127.0.0.1
 * @param port 1..65535, or 0 for a free port chosen by the kernel (tests);
 *        aas_metrics_port() tells which.
 * @return AAS_ERR_IO with the address and the system's reason if the port
 *         cannot be bound (e.g. "Address already in use"), AAS_ERR_CONFLICT
 *         if this registry already serves, AAS_ERR_INVAL for a bad port or
 *         address.
 */
aas_err_t aas_metrics_serve(aas_metrics_t *m, const char *bind_addr, int port,
                            char *errstr, size_t errstr_size);
/** @brief Bound port, or 0 if not serving.  Read it from the thread that
 *         called aas_metrics_serve() (or after it returned). */
int aas_metrics_port(const aas_metrics_t *m);

/*
 * Health, on the same port: GET /healthz answers 200 "ok" while the
 * program's main loop called aas_metrics_alive() within health.stall.s
 * (and before its first call: starting), else 503 "stalled ..."; GET
 * /readyz answers 200 "ready" after aas_metrics_ready(m, 1, ...), else 503
 * with the reason given (initially "starting").  For Kubernetes liveness
 * and readiness probes (docs/kubernetes.md).  Thread-safe.
 */
void aas_metrics_alive(aas_metrics_t *m);
void aas_metrics_ready(aas_metrics_t *m, int ready, const char *why);
/**
 * @brief Serve json (copied) at path (e.g. "/keda") too, replacing what
 *        was served there; one such path per registry (AAS_ERR_CONFLICT
 *        for a second one).  Thread-safe.
 */
aas_err_t aas_metrics_document(aas_metrics_t *m, const char *path, const char *json,
                               char *errstr, size_t errstr_size);

/* Conf rows every program puts in its table (before AAS_CONF_END):
 * metrics.port (int, default 0 = off, 0..65535) and metrics.bind (string,
 * default 127.0.0.1). */
#define AAS_METRICS_CONF_ROWS                                                 \
    {"metrics.port", AAS_CONF_INT, "0", 0, 65535, 0,                          \
     "Port of the Prometheus endpoint GET /metrics (and /healthz, /readyz); " \
     "0 = off"},                                                              \
    {"metrics.bind", AAS_CONF_STR, "127.0.0.1", 0, 0, 0,                      \
     "Address the metrics endpoint listens on (0.0.0.0 = every interface)"}, \
    {"health.stall.s", AAS_CONF_INT, "60", 1, 86400, 0,                       \
     "GET /healthz answers 503 once the main loop has shown no sign of life " \
     "for this long"}

/** @brief Start serving if metrics.port > 0 in conf (no-op returning
 *         AAS_ERR_OK otherwise); logs the URL it serves.  AAS_ERR_INVAL if
 *         the conf has no metrics.* rows. */
aas_err_t aas_metrics_serve_conf(aas_metrics_t *m, const aas_conf_t *conf,
                                 char *errstr, size_t errstr_size);

#endif
