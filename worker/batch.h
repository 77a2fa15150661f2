/*
 * batch.h - a window of inference messages run as batched forward passes
 * (dynamic batching; docs/performance.md, "Dynamic batching").
 *
 * A window's messages are admitted together (outcome.h: decode, RUNNING in
 * one round trip, what needs no model settled), grouped by (model,
 * requested version) with the highest priority first, checked job by job
 * against the model, run in passes of at most the model's batch_max_rows
 * (else batch.max.rows) rows, and the results are recorded in one round
 * trip after each group and after the pass that ends batch.record.us since
 * the last one (after every pass with 0), so higher-priority passes finish
 * first and a run of fast one-row passes shares its round trips.  A job whose
 * outputs are not finite (the model overflowed) is FAILED, never a silent
 * success.  The caller (worker.c) stores offsets from the outcomes.
 *
 * It owns the window's scratch (sized once, for max_slots messages), the
 * forward-pass buffers and its metrics; outcome, models, store and metrics
 * registry are borrowed.
 *
 * Threading: one thread at a time (the worker's loop).
 */
#ifndef AAS_BATCH_H
#define AAS_BATCH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "err.h"
#include "metrics.h"
#include "model_cache.h"
#include "outcome.h"
#include "stages.h"
#include "store.h"

typedef struct {
    int64_t max_rows;       /* batch.max.rows: a pass's rows by default */
    int64_t max_delay_us;   /* batch.max.delay.us: a window's wait by default */
    int64_t job_max_rows;   /* job.max.rows: one job's rows */
    size_t max_slots;       /* most messages in one window */
    int64_t record_us;      /* batch.record.us: passes' results written together
                             * until this long since the last write; 0 = each pass */
} aas_batch_conf_t;

typedef struct aas_batch_s aas_batch_t;

aas_err_t aas_batch_new(const aas_batch_conf_t *conf, aas_outcome_t *outcome,
                        aas_model_cache_t *models, aas_store_t *store,
                        aas_codec_t *codec, aas_metrics_t *metrics, aas_batch_t **out,
                        char *errstr, size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_batch_destroy(aas_batch_t *b);

/**
 * @brief The window limits for msg's model: its serving options
 *        (batch_max_rows, batch_max_delay_us) as the model cache last read
 *        them (no Redis call), else the configured defaults.
 */
void aas_batch_limits(const aas_batch_t *b, const rd_kafka_message_t *msg,
                      int64_t *max_rows, int64_t *max_delay_us);

/**
 * @brief Run msgs[0..n) (inference-topic messages, n <= max_slots);
 *        out[i] is what became of msgs[i], compute_us[i] (unless NULL) its
 *        share of its forward pass's compute, as metered (0 if it ran
 *        none).  Outcomes are in Redis before this returns.  Time goes to
 *        st's admit, model, forward, result and record stages (st
 *        borrowed; NULL = not timed).
 */
void aas_batch_run(aas_batch_t *b, rd_kafka_message_t *const *msgs, size_t n,
                   aas_msg_outcome_t *out, int64_t *compute_us, aas_stages_t *st);

#endif
