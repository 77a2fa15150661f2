/*
 * worker_int.h - the worker's internals shared by worker.c (the loop,
 * Kafka plumbing, training hand-off, heartbeats) and batch.c (running a
 * window of inference messages as batches).  Not an API: only the worker sources
 * include it.
 */
#ifndef AAS_WORKER_INT_H
#define AAS_WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "codec.h"
#include "conf.h"
#include "infer.h"
#include "metrics.h"
#include "model_cache.h"
#include "store.h"
#include "trainer.h"
#include "worker.h"

struct aas_worker_s {
    const aas_conf_t *conf;
    char id[AAS_ID_MAX + 1];
    char infer_topic[256];
    char train_topic[256];
    char dlq_topic[256];
    rd_kafka_t *consumer;
    rd_kafka_t *dlq;
    aas_store_t *store;
    aas_codec_t *codec;
    aas_model_cache_t *models;
    aas_codec_limits_t limits;
    int64_t max_rows, max_attempts;
    int64_t backoff_min_ms, backoff_max_ms, backoff_ms;
    uint64_t rng;
    uint64_t n_done, n_failed, n_skipped, n_dlq, n_retries;
    /* The training job in progress (at most one), where its message came
     * from, and the partitions held (paused) until it ends. */
    aas_trainer_t *trainer;
    char trainer_topic[256];
    int32_t trainer_partition;
    int64_t trainer_offset;
    int64_t trainer_retry_at_us;
    rd_kafka_topic_partition_list_t *held;
    /* Heartbeat: when the next is due, and the counts at the last one. */
    int64_t hb_period_us, hb_next_us, hb_last_us, started_ms;
    uint64_t hb_last_done;
    /* Dynamic batching (batch.c): the window's limits, its slots (allocated
     * once, batch.max.rows of them), the forward-pass buffers, and a flag
     * the rebalance callback raises so that a window closes at once. */
    int64_t batch_max_rows, batch_max_delay_us;
    size_t n_slots;
    struct aas_batch_s *batch;
    volatile int revoked;
    /* Prometheus metrics (docs/metrics.md); served when metrics.port > 0. */
    aas_metrics_t *metrics;
    aas_metric_t *m_batch_rows, *m_queue_s, *m_compute_s, *m_inflight;
};

/* What became of one message. */
typedef enum {
    AAS_MSG_DONE,    /* outcome recorded: store the offset */
    AAS_MSG_RETRY,   /* transient failure: rewind, back off */
    AAS_MSG_HOLD,    /* not now (a training job is running): rewind, pause
                      * its partition until the training ends */
    AAS_MSG_TAKEN    /* a training thread owns it now */
} aas_msg_outcome_t;

/* worker.c */

/** @brief Dead-letter the raw message (waits for the broker's ack). */
aas_err_t aas_worker_dlq_send(aas_worker_t *w, const rd_kafka_message_t *msg,
                              aas_err_t why_code, const char *why);
/** @brief Record a terminal non-success status with its reason. */
aas_err_t aas_worker_fail(aas_worker_t *w, const char *job_id, const char *model,
                          aas_status_t status, const char *reason);
/** @brief A message that did not decode: dead-letter it, fail its job if
 *         the id could be read. */
aas_msg_outcome_t aas_worker_undecodable(aas_worker_t *w, const rd_kafka_message_t *msg,
                                         aas_err_t err, const char *why,
                                         const char *job_id);

/** @brief Count a job this worker made terminal (jobs_total{model,status}). */
void aas_worker_count(aas_worker_t *w, const char *model, aas_status_t status);

/* batch.c */

typedef struct aas_batch_s aas_batch_t;

/**
 * @brief Slots for a window of batch.max.rows messages.
 */
aas_err_t aas_worker_batch_init(aas_worker_t *w, char *errstr, size_t errstr_size);
void aas_worker_batch_free(aas_worker_t *w);

/**
 * @brief The window limits for msg's model: its serving options
 *        (batch_max_rows, batch_max_delay_us) as the model cache last read
 *        them, else the worker's batch.max.rows and batch.max.delay.us.
 */
void aas_worker_batch_limits(aas_worker_t *w, const rd_kafka_message_t *msg,
                             int64_t *max_rows, int64_t *max_delay_us);

/**
 * @brief Run msgs[0..n) (inference-topic messages, n <= w->n_slots) as
 *        batched forward passes; out[i] is what became of msgs[i].  Outcomes
 *        are recorded in Redis (pipelined) before this returns.
 */
void aas_worker_batch_run(aas_worker_t *w, rd_kafka_message_t *const *msgs, size_t n,
                          aas_msg_outcome_t *out);

#endif
