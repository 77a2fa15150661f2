/*
 * stages.h - where the worker's loop spends its time, by stage, for the
 * Prometheus counter aas_worker_stage_seconds_total{stage} (docs/metrics.md)
 * and the CPU-per-job breakdown (docs/performance.md, "Cost per job").
 *
 * The loop marks the end of each stage (aas_stages_mark: one monotonic clock
 * read, no lock); aas_stages_flush() adds what was marked to the counters
 * once per window, so a window costs a handful of locked additions however
 * many jobs it holds.  Wall time of the loop's thread: `forward` includes
 * the OpenMP pool's work on other threads, `poll` is mostly waiting.
 *
 * It owns its counters' handles (series in the borrowed registry).
 * Every call accepts NULL (no timing).
 * Threading: one thread (the worker's loop).
 */
#ifndef AAS_STAGES_H
#define AAS_STAGES_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"

typedef enum {
    AAS_STAGE_POLL,    /* waiting for a window's first message (idle included) */
    AAS_STAGE_COLLECT, /* filling the window from what was fetched */
    AAS_STAGE_ADMIT,   /* decode and the RUNNING round trip to Redis */
    AAS_STAGE_MODEL,   /* resolving the model (cache, registry look-ups) */
    AAS_STAGE_FORWARD, /* input checks and the batched forward pass */
    AAS_STAGE_RESULT,  /* result checks and encoding */
    AAS_STAGE_RECORD,  /* terminal writes to Redis (one round trip a pass) */
    AAS_STAGE_SETTLE,  /* storing offsets (and WAIT for replicas) */
    AAS_STAGE_N
} aas_stage_t;

typedef struct aas_stages_s aas_stages_t;

/** @brief New stage timer whose counters live in `metrics` (borrowed). */
aas_err_t aas_stages_new(aas_metrics_t *metrics, aas_stages_t **out, char *errstr,
                         size_t errstr_size);
void aas_stages_destroy(aas_stages_t *s);

/** @brief Charge the time since the previous mark to `stage`; the first
 *         mark after a flush starts the clock (charges nothing). */
void aas_stages_mark(aas_stages_t *s, aas_stage_t stage);

/** @brief Restart the clock without charging anything. */
void aas_stages_restart(aas_stages_t *s);

/** @brief Add the marked time to the counters and zero it. */
void aas_stages_flush(aas_stages_t *s);

#endif
