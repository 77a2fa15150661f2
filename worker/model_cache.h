/*
 * model_cache.h - the worker's loaded models, by (name, version), LRU.
 *
 * Models come from the registry in Redis (store.h) and are loaded once
 * (model.h).  "latest" is resolved against Redis at most every
 * refresh_ms per name, so a newly registered version is served within that
 * time without a restart, and the hot path does not ask Redis per job.
 * The cache is bounded by a model count and a byte budget; the least
 * recently used model goes first.
 *
 * Serving options (store.h: precision, batch limits) are read with the
 * same refresh, per name, for pinned versions too.  A model is loaded with
 * its precision applied (aas_model_set_precision); when the precision
 * changes in Redis, the cached copy is dropped and loaded again, so
 * `aas-producer model set` takes effect within refresh_ms.  A precision the
 * model or the CPU cannot run, or a corrupt option in Redis, fails the
 * model's jobs with the reason (not retriable); the failure is remembered
 * until the options change, so such jobs do not refetch the blob.
 *
 * Threading: not thread-safe; owned by the worker's job thread.
 */
#ifndef AAS_MODEL_CACHE_H
#define AAS_MODEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "store.h"

typedef struct aas_model_cache_s aas_model_cache_t;

typedef struct {
    size_t max_models;       /* >= 1 */
    size_t max_bytes;        /* footprint budget */
    size_t max_blob_bytes;   /* refuse larger registry blobs */
    int64_t refresh_ms;      /* how stale a "latest" resolution may be */
} aas_model_cache_conf_t;

aas_err_t aas_model_cache_new(const aas_model_cache_conf_t *conf,
                              aas_model_cache_t **out);
void aas_model_cache_destroy(aas_model_cache_t *cache);

/**
 * @brief Get a loaded model.
 * @param version NULL or "latest" for the newest, else a decimal version.
 * @param model_out borrowed; valid until the next call on this cache.
 * @param version_out the resolved version.
 * @return AAS_ERR_UNKNOWN_MODEL / AAS_ERR_MODEL_FORMAT (job's fault),
 *         AAS_ERR_REDIS (retriable), with errstr.
 */
aas_err_t aas_model_cache_get(aas_model_cache_t *cache, aas_store_t *st,
                              const char *name, const char *version,
                              aas_model_t **model_out, int64_t *version_out,
                              char *errstr, size_t errstr_size);

/** How to serve a model: its options from the registry, as applied. */
typedef struct {
    aas_precision_t precision;   /* applied to the model (default f32) */
    int32_t batch_max_rows;      /* 1..4096, -1 = not set: the worker's
                                    batch.max.rows */
    int32_t batch_max_delay_us;  /* 0..1000000, -1 = not set: the worker's
                                    batch.max.delay.us */
} aas_model_serving_t;

/**
 * @brief aas_model_cache_get(), and the model's serving options.
 * @param serving_out (may be NULL) written on success; the options read
 *        at most refresh_ms ago.
 * @return as aas_model_cache_get(), plus: the error of
 *         aas_model_set_precision (e.g. "precision bf16: CPU lacks
 *         avx512_bf16") or AAS_ERR_DECODE for a corrupt option in Redis,
 *         both not retriable, with errstr naming model and reason.
 */
aas_err_t aas_model_cache_get_serving(aas_model_cache_t *cache,
                                      aas_store_t *st, const char *name,
                                      const char *version,
                                      aas_model_t **model_out,
                                      int64_t *version_out,
                                      aas_model_serving_t *serving_out,
                                      char *errstr, size_t errstr_size);

/**
 * @brief The serving options of `name` as this cache last read them, with
 *        no Redis call (for choosing a batching window before decoding).
 * @return 0 and *serving_out, or -1 if the name was not read yet or its
 *         options are unusable.
 */
int aas_model_cache_serving_known(const aas_model_cache_t *cache, const char *name,
                                  aas_model_serving_t *serving_out);

#endif
