/*
 * routes.h - the gateway's endpoints: one request in (method, path, whole
 * body), one JSON answer out.  No HTTP library here (http.c does that).
 * Thread-safe: each call borrows its own client from the pool.
 */
#ifndef AAS_GW_ROUTES_H
#define AAS_GW_ROUTES_H

#include <stddef.h>

#include "gateway.h"

typedef struct {
    const char *method;
    const char *path;
    const char *body;       /* may be NULL when body_len is 0 */
    size_t body_len;
    int prefer_async;       /* header Prefer: respond-async */
    long long json_len;     /* Inference-Header-Content-Length, or -1 */
    const char *authorization; /* header Authorization, or NULL */
    const char *content_type;  /* header Content-Type, or NULL */
} aas_gw_req_t;

typedef struct {
    unsigned status;
    char *body;             /* malloc'ed JSON text (owned by the caller after) */
    char location[320];     /* Location header, or "" */
    const char *content_type; /* NULL: application/json */
    const char *route;      /* static name of the endpoint, for metrics */
    int auth_challenge;     /* 401: send WWW-Authenticate: Bearer */
    int retry_after_s;      /* 429: Retry-After in seconds (>= 1), else 0 */
} aas_gw_resp_t;

/** @brief Answer one request; resp->body is always set (or NULL on OOM). */
void aas_gw_route(aas_gw_t *gw, const aas_gw_req_t *req, aas_gw_resp_t *resp);

#endif
