/*
 * auth.h - who may call the gateway (docs/http.md#access): API keys in
 * `Authorization: Bearer KEY`, each mapped to a tenant and its scopes,
 * from a keys file (gateway.auth = file) or from Redis (gateway.auth =
 * redis, keys made by `aas-producer apikey add`).  The table is reloaded
 * every gateway.auth.refresh.s by a thread of its own (a file only when it
 * changed), so a request only hashes its key and searches memory, and a
 * revoked key stops working within that period.
 *
 * What it does not do: decide which endpoints need which scope (routes.c),
 * rate limits or quotas (issue 16).
 */
#ifndef AAS_GW_AUTH_H
#define AAS_GW_AUTH_H

#include <stddef.h>

#include "apikey.h"
#include "conf.h"
#include "job.h"
#include "jobsig.h"

typedef struct aas_gw_auth_s aas_gw_auth_t;

typedef enum {
    AAS_GW_AUTH_OK = 0,
    AAS_GW_AUTH_MISSING,      /* no Authorization header: 401 */
    AAS_GW_AUTH_MALFORMED,    /* not "Bearer <key>": 401 */
    AAS_GW_AUTH_UNKNOWN,      /* no such key: 401 */
    AAS_GW_AUTH_UNAVAILABLE   /* the keys never loaded (Redis away at start): 503 */
} aas_gw_auth_result_t;

/**
 * @brief mode "none" (every request allowed, no tenant), "file" or
 *        "redis".  Loads the keys once before returning: a file that
 *        cannot be read or has a bad line fails here (errstr names the
 *        line, never a key); Redis away at start is not fatal (logged,
 *        retried by the refresh thread; requests get 503 meanwhile).
 *        A keys file readable by others than its owner is refused.
 * @param conf the gateway's conf (redis.* for mode redis); borrowed for
 *        the handle's lifetime.
 * @param out owned; free with aas_gw_auth_destroy (stops the thread).
 */
aas_err_t aas_gw_auth_new(const char *mode, const char *file, int refresh_s,
                          const aas_conf_t *conf, aas_gw_auth_t **out, char *errstr,
                          size_t errstr_size);
void aas_gw_auth_destroy(aas_gw_auth_t *a);

/** @brief 0 when mode is none. */
int aas_gw_auth_enabled(const aas_gw_auth_t *a);

/**
 * @brief Check an Authorization header value (may be NULL).  On
 *        AAS_GW_AUTH_OK tenant (AAS_ID_MAX + 1 bytes; "" in mode none)
 *        and *scopes are set, and with a key, *sig (what signs the
 *        caller's jobs, jobsig.h) with *has_key = 1 (0 in mode none).
 *        Thread-safe.
 */
aas_gw_auth_result_t aas_gw_auth_check(aas_gw_auth_t *a, const char *authorization,
                                       char tenant[AAS_ID_MAX + 1], unsigned *scopes,
                                       aas_jobsig_key_t *sig, int *has_key);

/** @brief Keys loaded now (for the start-up log and the metrics). */
size_t aas_gw_auth_keys(aas_gw_auth_t *a);

#endif
