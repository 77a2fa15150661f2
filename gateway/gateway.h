/*
 * gateway.h - aas-gateway's configuration and the state every request
 * shares (docs/http.md).  The conf table lives in main.c; the handle is
 * built in main() and read-only afterwards, except through the pool and
 * the model cache, the key table and the metrics, which lock for
 * themselves.
 */
#ifndef AAS_GW_GATEWAY_H
#define AAS_GW_GATEWAY_H

#include <stdint.h>

#include "auth.h"
#include "conf.h"
#include "metrics.h"
#include "models.h"
#include "pool.h"
#include "waiter.h"

/** The gateway's rows (plus the client's and the common ones). */
extern const aas_conf_def_t aas_gateway_conf_defs[];

typedef struct {
    const char *host;
    int64_t port;
    int64_t timeout_ms;          /* a synchronous request's wait */
    int64_t max_body_bytes;
    int64_t threads;
    int64_t batch_max_rows;      /* most rows of a merged job (1: none) */
    int64_t connection_timeout_s;
    int64_t connection_limit;
    const char *default_model;   /* "" = none */
    const char *auth_mode;       /* none, file, redis */
    const char *auth_file;
    int64_t auth_refresh_s;
    const char *tls_cert_file;   /* both set: HTTPS */
    const char *tls_key_file;
} aas_gateway_conf_t;

typedef struct {
    aas_gateway_conf_t c;
    aas_gw_pool_t *pool;
    aas_gw_waiter_t *waiter;     /* hears of finished jobs (waiter.h) */
    aas_gw_models_t *models;
    aas_gw_auth_t *auth;
    aas_metrics_t *metrics;      /* the gateway's registry (GET /metrics) */
} aas_gw_t;

#endif
