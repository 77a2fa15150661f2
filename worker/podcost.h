/*
 * podcost.h - busy-aware scale-in on Kubernetes: the worker's own pod's
 * `controller.kubernetes.io/pod-deletion-cost` annotation.
 *
 * When a Deployment shrinks, its ReplicaSet removes the pods with the
 * lowest deletion cost first.  A worker running a training job asks for a
 * high cost (worker.busy.deletion.cost) and for 0 when it has none, so an
 * idle trainer goes before a busy one.  It PATCHes its pod through the
 * in-cluster API (merge patch, libcurl, TLS verified against the service
 * account's CA, the bearer token re-read at each request since the kubelet
 * rotates it).
 *
 * The requests run on a thread of this module: aas_podcost_busy() only
 * records the wanted state and never waits on the network.  A failure is
 * logged (at most once a minute), counted and retried with a backoff until
 * the state is applied or changes; it never fails a job or the worker.
 *
 * What it does not do: decide how many pods go (the HPA/KEDA does), protect
 * a pod from eviction or node loss, or set anything for inference workers.
 */
#ifndef AAS_PODCOST_H
#define AAS_PODCOST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "metrics.h"

/** The in-cluster service account files (Kubernetes mounts them here). */
#define AAS_PODCOST_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/** The annotation the ReplicaSet controller ranks pods by (int32). */
#define AAS_PODCOST_ANNOTATION "controller.kubernetes.io/pod-deletion-cost"

typedef struct aas_podcost_s aas_podcost_t;

/** Settings (the worker's k8s.* keys); strings are borrowed for the call. */
typedef struct {
    const char *enabled;    /* "auto" | "true" | "false" */
    const char *api_url;    /* NULL: https://$KUBERNETES_SERVICE_HOST:$..._PORT */
    const char *token_file; /* bearer token, re-read at each request */
    const char *ca_file;    /* CA bundle the API server's certificate is checked against */
    const char *ns;         /* NULL: $POD_NAMESPACE, else AAS_PODCOST_SA_DIR/namespace */
    const char *pod;        /* NULL: $POD_NAME */
    int64_t busy_cost;      /* the cost while busy; idle is 0 */
    int64_t timeout_ms;     /* of one request, connecting included */
} aas_podcost_conf_t;

/**
 * @brief Resolve the settings (environment for the unset ones), validate
 *        them and start the thread, which first sets the idle cost (0), so
 *        a stale high cost left by a restarted container is cleared.
 *        enabled=auto is on when an API URL (k8s.api.url or
 *        KUBERNETES_SERVICE_HOST), a pod name and a namespace are known;
 *        enabled=true requires them.
 * @param metrics registry for the counters (borrowed; may be NULL); must
 *        outlive the handle.
 * @param out an owned handle, or NULL when off (every function accepts NULL).
 * @return AAS_ERR_INVAL with errstr for a bad setting (enabled=true with
 *         something missing, an invalid pod or namespace name, a URL that
 *         is not https); AAS_ERR_NOMEM or AAS_ERR_IO if libcurl or the
 *         thread cannot start.
 */
aas_err_t aas_podcost_new(const aas_podcost_conf_t *conf, aas_metrics_t *metrics,
                          aas_podcost_t **out, char *errstr, size_t errstr_size);

/**
 * @brief Want the busy cost (busy != 0) or 0.  Returns at once: the
 *        thread applies it.  Thread-safe.  NULL is a no-op.
 */
void aas_podcost_busy(aas_podcost_t *p, int busy);

/** @brief Stop the thread (waits for a request in flight, at most the
 *         timeout) and free.  The last state is not reset: a worker that
 *         stops is leaving its pod anyway.  NULL is a no-op. */
void aas_podcost_destroy(aas_podcost_t *p);

/* ---- pure parts (no I/O; for the unit test) ---- */

/** @brief 1 if s is an RFC 1123 DNS label (a namespace name): 1..63 of
 *         [a-z0-9-], alphanumeric at both ends. */
int aas_podcost_dns_label_valid(const char *s);

/** @brief 1 if s is an RFC 1123 DNS subdomain (a pod name): 1..253 chars,
 *         dot-separated DNS labels. */
int aas_podcost_dns_subdomain_valid(const char *s);

/**
 * @brief The in-cluster API URL from KUBERNETES_SERVICE_HOST and _PORT
 *        values: https://host:port, an IPv6 address in brackets.
 * @return AAS_ERR_INVAL if host is empty or has characters no host has, or
 *         port is not 1..65535; AAS_ERR_TOO_LARGE if out is too small.
 */
aas_err_t aas_podcost_incluster_url(const char *host, const char *port, char *out,
                                    size_t out_size, char *errstr, size_t errstr_size);

/**
 * @brief {api_url}/api/v1/namespaces/{ns}/pods/{pod} (trailing slashes of
 *        api_url dropped).  api_url must be https:// with no whitespace,
 *        query or fragment; ns a DNS label, pod a DNS subdomain.
 * @return AAS_ERR_INVAL with errstr naming what is wrong;
 *         AAS_ERR_TOO_LARGE if out is too small.
 */
aas_err_t aas_podcost_url(const char *api_url, const char *ns, const char *pod, char *out,
                          size_t out_size, char *errstr, size_t errstr_size);

/**
 * @brief The merge-patch body that sets the annotation to cost:
 *        {"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":"N"}}}
 *        (the value is a string, as every annotation).
 * @return AAS_ERR_INVAL if cost is outside int32 (what the controller
 *         parses); AAS_ERR_TOO_LARGE if out is too small.
 */
aas_err_t aas_podcost_body(int64_t cost, char *out, size_t out_size);

#endif
