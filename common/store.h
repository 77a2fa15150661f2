/*
 * store.h - everything aas keeps in Redis: job status, results, the wake-up
 * list for waiters, and the model registry.  docs/redis.md is the contract
 * for other languages; this module is its only C implementation.
 *
 * Keys (all parts of one job share the hash tag {id} so a Lua script may
 * touch them together on Redis Cluster):
 *   <prefix>job:{<id>}        hash: status, model, version, attempts, error,
 *                             worker, submit_ms, queued_ms, started_ms,
 *                             finished_ms, result_writes, skips, src
 *   <prefix>result:{<id>}     string: the result, Avro single-object bytes
 *   <prefix>done:{<id>}       list: one element pushed when terminal (BLPOP)
 *   <prefix>model:{<name>}    hash: latest, next; v:<n> -> blob,
 *                             meta:<n> -> JSON, created:<n> -> unix ms
 *   <prefix>models            set of model names
 * Status changes run as Lua scripts, so each is atomic, and a terminal
 * status is never overwritten.  Keys are built only from ids that passed
 * aas_id_valid().
 *
 * Threading: an aas_store_t wraps one hiredis connection; not thread-safe,
 * use one per thread.  Every call reconnects once if the connection broke;
 * a Redis that stays away gives AAS_ERR_REDIS (retriable).
 */
#ifndef AAS_STORE_H
#define AAS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"

typedef struct aas_store_s aas_store_t;

typedef struct {
    const char *host;          /* default "127.0.0.1" */
    int port;                  /* default 6379 */
    const char *user;          /* ACL user or NULL */
    const char *password;      /* NULL = no AUTH; never logged */
    int db;                    /* default 0 */
    int timeout_ms;            /* connect + command timeout, default 5000 */
    int ttl_s;                 /* TTL of job keys, default 86400 */
    const char *prefix;        /* key prefix, default "aas:" */
} aas_store_conf_t;

/** @brief Fill defaults. */
void aas_store_conf_init(aas_store_conf_t *conf);

/**
 * @brief Connect (and AUTH/SELECT, and load scripts).  Strings in conf are
 *        copied.  Wrong credentials give AAS_ERR_INVAL with a clear errstr.
 */
aas_err_t aas_store_new(const aas_store_conf_t *conf, aas_store_t **out,
                        char *errstr, size_t errstr_size);
void aas_store_destroy(aas_store_t *st);

/** What aas_store_job_get() returns; strings owned, free with _info_clear. */
typedef struct {
    aas_status_t status;
    char *model;
    char *version;
    char *error;
    char *worker;
    int64_t attempts;
    int64_t submit_ms, queued_ms, started_ms, finished_ms;
    int64_t result_writes;     /* how many times a terminal write happened */
    int64_t skips;             /* redeliveries skipped as already terminal */
} aas_job_info_t;
void aas_job_info_clear(aas_job_info_t *info);

/**
 * @brief Client side: record QUEUED (if the job is not known yet).
 */
aas_err_t aas_store_job_queued(aas_store_t *st, const char *job_id,
                               const char *model, int64_t submit_ms,
                               char *errstr, size_t errstr_size);

/**
 * @brief Worker side: move the job to RUNNING, count an attempt.
 * @param status_out the status after the call: RUNNING, or the terminal
 *        status already there (then nothing changed, a skip was counted,
 *        and the caller must not compute).
 */
aas_err_t aas_store_job_start(aas_store_t *st, const char *job_id,
                              const char *worker_id, const char *model,
                              const char *src, aas_status_t *status_out,
                              char *errstr, size_t errstr_size);

/**
 * @brief Worker side: the one atomic step that makes a job terminal: status,
 *        error, finished time, the result bytes, result_writes += 1, a token
 *        pushed on done:{id}, TTL on all keys.
 * @param result Avro single-object bytes or NULL.
 * @param written_out 1 if this call wrote; 0 if the job was already
 *        terminal (nothing changed).
 */
aas_err_t aas_store_job_finish(aas_store_t *st, const char *job_id,
                               aas_status_t status, const char *model_version,
                               const void *result, size_t result_len,
                               const char *error, int *written_out,
                               char *errstr, size_t errstr_size);

/** @brief Read the status hash. AAS_ERR_NOT_FOUND if unknown. */
aas_err_t aas_store_job_get(aas_store_t *st, const char *job_id,
                            aas_job_info_t *info, char *errstr,
                            size_t errstr_size);

/** @brief Result bytes (malloc'ed, caller frees). AAS_ERR_NOT_FOUND if none. */
aas_err_t aas_store_result_get(aas_store_t *st, const char *job_id,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size);

/**
 * @brief Block until the job is terminal or timeout_ms passes, without busy
 *        polling (BLPOP on done:{id}; the token is pushed back so other
 *        waiters wake too).  Returns at once if already terminal.
 *        AAS_ERR_TIMEOUT if still not terminal.
 */
aas_err_t aas_store_job_wait(aas_store_t *st, const char *job_id,
                             int timeout_ms, aas_status_t *status_out,
                             char *errstr, size_t errstr_size);

/* ---- model registry ---- */

/**
 * @brief Store a new immutable version of `name` (version = previous + 1),
 *        make it latest.  meta_json may be NULL.
 */
aas_err_t aas_store_model_put(aas_store_t *st, const char *name,
                              const void *blob, size_t len,
                              const char *meta_json, int64_t *version_out,
                              char *errstr, size_t errstr_size);

/**
 * @brief Fetch a model blob. version 0 = latest.  *blob malloc'ed (caller
 *        frees); *version_out the resolved version.  AAS_ERR_UNKNOWN_MODEL
 *        if the name or version does not exist.  max_len bounds the blob.
 */
aas_err_t aas_store_model_get(aas_store_t *st, const char *name,
                              int64_t version, size_t max_len, void **blob,
                              size_t *len, int64_t *version_out, char *errstr,
                              size_t errstr_size);

/** @brief Resolve latest version without fetching the blob. */
aas_err_t aas_store_model_latest(aas_store_t *st, const char *name,
                                 int64_t *version_out, char *errstr,
                                 size_t errstr_size);

#endif
