/*
 * store_int.h - internals shared by store.c (connection, jobs) and
 * store_model.c (model registry).  Not a public API: only common/store*.c
 * include it, and it is the one place outside them where hiredis names
 * appear.
 *
 * What lives here: the handle struct, the Lua script table, key building,
 * argument vectors and the one command wrapper (aas_store_cmd) that owns the
 * reconnect-once policy and the hiredis error mapping.
 */
#ifndef AAS_STORE_INT_H
#define AAS_STORE_INT_H

#include <hiredis/hiredis.h>

#include "store.h"

/* The Lua scripts; order matches aas_store_scripts[] in store.c. */
typedef enum {
    AAS_STORE_LUA_QUEUED = 0,
    AAS_STORE_LUA_START,
    AAS_STORE_LUA_FINISH,
    AAS_STORE_LUA_WAKE,
    AAS_STORE_LUA_GETB,
    AAS_STORE_LUA_MODEL_PUT,
    AAS_STORE_LUA_MODEL_GET,
    AAS_STORE_LUA_MODEL_META,
    AAS_STORE_LUA_MODEL_VERSIONS,
    AAS_STORE_LUA_MODEL_DELETE,
    AAS_STORE_LUA_CANCEL,
    AAS_STORE_LUA_PROGRESS,
    AAS_STORE_LUA_RESULT,
    AAS_STORE_LUA_CLAIM,
    AAS_STORE_LUA_UNCLAIM,
    AAS_STORE_LUA_METER,
    AAS_STORE_LUA_LEASE,
    AAS_STORE_LUA_QUOTA_ADMIT,
    AAS_STORE_LUA_QUOTA_RELEASE,
    AAS_STORE_LUA_QUOTA_SET,
    AAS_STORE_LUA_QUOTA_GET,
    AAS_STORE_LUA_TRAIN_SLOT,
    AAS_STORE_LUA__COUNT
} aas_store_lua_t;

/* Largest key we build: prefix (64) + "result:{" + id (128) + "}". */
#define AAS_STORE_KEY_MAX 256

struct aas_store_s {
    redisContext *ctx;            /* NULL while disconnected */
    int no_ro;                    /* the server has no EVALSHA_RO (Redis < 7) */
    char *host;
    int port;
    char *user;
    char *password;
    int db;
    int timeout_ms;
    int ttl_s;
    char *prefix;
    char done_channel[AAS_STORE_KEY_MAX]; /* <prefix>done: terminal jobs' ids */
    char *sentinels;              /* NULL: host/port are the server */
    char *master;                 /* the sentinels' name for it */
    int wait_replicas, wait_timeout_ms;
    char sha[AAS_STORE_LUA__COUNT][41]; /* from SCRIPT LOAD */
    int64_t reconnects;
    /* Tenants put in <prefix>usage:tenants lately (store_usage.c), so the
     * metering does not re-add them on every call: forgotten every
     * AAS_STORE_USAGE_TENANTS_TTL_MS, so a set deleted by hand refills. */
    char usage_tenants[16][AAS_ID_MAX + 1];
    int n_usage_tenants;
    int64_t usage_tenants_since_ms;
    /* Whether any tenant has a quota, asked at most once a second
     * (aas_store_quotas_active): with none, admitting costs no round trip. */
    int quotas_any;
    int64_t quotas_asked_us;      /* monotonic; 0 = never */
    /* A pipeline's commands in Redis' protocol (aas_store_eval_many),
     * kept between calls so a window's writes allocate nothing. */
    char *resp;
    size_t resp_cap;
};

/* With redis.wait.replicas: WAIT until that many replicas have this
 * connection's writes so far; AAS_ERR_REDIS (retriable) if fewer did in
 * time.  AAS_ERR_OK at once without it. */
aas_err_t aas_store_wait_replicas(aas_store_t *st, const char *what, char *errstr,
                                  size_t errstr_size);

/* A live connection in st->ctx: reconnect (once) if there is none.
 * AAS_ERR_REDIS (retriable) if Redis cannot be reached. */
aas_err_t aas_store_connected(aas_store_t *st, char *errstr, size_t errstr_size);

/* Close the connection; the next call reconnects. */
void aas_store_drop(aas_store_t *st);

/* Flags for aas_store_cmd(). */
#define AAS_STORE_F_RETRY 1 /* idempotent: resend once after a reconnect */
#define AAS_STORE_F_KEEP_ERR 2 /* hand REDIS_REPLY_ERROR back to the caller */

/* Up to this many arguments per command, and this many numbers formatted
 * into the vector's own storage. */
#define AAS_STORE_ARGS_MAX 24
#define AAS_STORE_ARGS_NUMS 8

typedef struct {
    int argc;
    const char *argv[AAS_STORE_ARGS_MAX];
    size_t len[AAS_STORE_ARGS_MAX];
    char nums[AAS_STORE_ARGS_NUMS][24];
    int n_nums;
    int overflow;                 /* set if an add did not fit */
} aas_store_args_t;

void aas_store_args_init(aas_store_args_t *a);
void aas_store_args_add(aas_store_args_t *a, const char *s);
void aas_store_args_addb(aas_store_args_t *a, const void *p, size_t n);
void aas_store_args_addll(aas_store_args_t *a, long long v);


/**
 * @brief Build <prefix><kind>:{<id>} (or <prefix><kind> when id is NULL).
 *        The caller has validated id.  Returns 0, or -1 if it does not fit.
 */
int aas_store_key(const aas_store_t *st, char *buf, size_t size,
                  const char *kind, const char *id);

/**
 * @brief Run one command: connect if needed, reconnect at most once per call
 *        (before sending if the socket is dead, or after a failed send when
 *        AAS_STORE_F_RETRY says a resend is safe), map hiredis failures.
 * @param block_ms extra socket timeout for a blocking command (BLPOP), 0
 *        otherwise; the normal timeout is restored afterwards.
 * @param out the reply on AAS_ERR_OK (caller frees with freeReplyObject);
 *        with AAS_STORE_F_KEEP_ERR also an error reply.
 */
aas_err_t aas_store_cmd(aas_store_t *st, int flags, int block_ms,
                        const char *what, const aas_store_args_t *a,
                        redisReply **out, char *errstr, size_t errstr_size);

/**
 * @brief EVALSHA a script; on NOSCRIPT fall back to EVAL with the body.
 *        a holds KEYS then ARGV (no command/sha/numkeys); nkeys of them are
 *        keys.  Error replies are mapped, never returned.
 */
aas_err_t aas_store_eval(aas_store_t *st, aas_store_lua_t script, int flags,
                         const char *what, int nkeys,
                         const aas_store_args_t *a, redisReply **out,
                         char *errstr, size_t errstr_size);

/**
 * @brief The same script n times in one round trip (pipelined): a[i] holds
 *        the keys then arguments of call i.
 * @param out n replies, each non-NULL exactly when errs[i] is AAS_ERR_OK
 *        (caller frees with freeReplyObject).
 * @param errs per call: its error reply mapped (errstr says the first).
 * @return AAS_ERR_OK when the round trip worked (look at errs), else the
 *         connection failure, for every call (out all NULL).  With
 *         AAS_STORE_F_RETRY the whole pipeline is resent once after a
 *         reconnect.
 */
aas_err_t aas_store_eval_many(aas_store_t *st, aas_store_lua_t script, int flags,
                              const char *what, int nkeys,
                              const aas_store_args_t *a, size_t n,
                              redisReply **out, aas_err_t *errs,
                              char *errstr, size_t errstr_size);

/** @brief Map an error reply to aas_err_t + errstr. */
aas_err_t aas_store_reply_err(aas_store_t *st, const redisReply *r,
                              const char *what, char *errstr,
                              size_t errstr_size);

/** @brief errstr for a reply of an unexpected type; AAS_ERR_REDIS. */
/* lease.lua on key (store.h's aas_store_lease, for any lease key). */
aas_err_t aas_store_lease_at(aas_store_t *st, const char *key, const char *owner,
                             int64_t ttl_ms, int *held, char *holder, size_t holder_size,
                             int64_t *left_ms, char *errstr, size_t errstr_size);
aas_err_t aas_store_reply_bad(const redisReply *r, const char *what,
                              char *errstr, size_t errstr_size);

/** @brief Parse a decimal int64 from a bulk/status/integer reply. */
int aas_store_reply_ll(const redisReply *r, int64_t *out);

/** @brief malloc'ed NUL-terminated copy of n bytes; NULL on OOM. */
char *aas_store_memdup0(const char *p, size_t n);

/** @brief <prefix>quota:{tenant} and its in-flight set <prefix>quota:{tenant}:inflight
 *         (store_quota.c; tenant already normalised by aas_quota_tenant);
 *         -1 if they do not fit. */
int aas_quota_keys(const aas_store_t *st, const char *tenant, char cfg[AAS_STORE_KEY_MAX],
                   char inflight[AAS_STORE_KEY_MAX]);

#endif
