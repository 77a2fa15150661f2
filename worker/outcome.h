/*
 * outcome.h - what becomes of a job, from its Kafka message to its terminal
 * status: the one owner of a job's fate in the worker.
 *
 *   admit:  decode; with worker.auth = keys, check the job's signature
 *           (jobauth.h: a job that fails is dead-lettered, counted and
 *           logged, and nothing is written under its id, which its sender
 *           may not own); admit by the tenants' quotas (store.h: a job over its
 *           rate waits, at most 1 s per call, then is rewound to come
 *           again; docs/sharing.md#quotas); mark RUNNING (one pipelined
 *           round trip for many);
 *           settle what needs no compute: a redelivery of a finished job
 *           (skipped), a job taken too often (FAILED), a job on the wrong
 *           topic (FAILED), a deadline passed (EXPIRED).  A message that
 *           does not decode is dead-lettered and, when its id is known (from
 *           the record, else from a Kafka key that is a valid id), FAILED.
 *   run:    the caller (batch.c for inference windows, worker.c's trainer
 *           hand-off for training) computes and reports each job with
 *           aas_outcome_succeed() / aas_outcome_fail() / aas_outcome_retry().
 *   record: every reported outcome in one pipelined round trip, with the
 *           job's usage figures kept in its hash, then metered once in its
 *           tenant's hour, after leaving its tenant's in-flight quota set
 *           (store.h; a redelivery of a finished job meters
 *           from the hash, so a crash between the two loses nothing and
 *           counts nothing twice), with the fallback chain in this one place: a result Redis will not take
 *           makes the job FAILED ("result not stored: ..."); an outcome that
 *           cannot be recorded at all and never will be (e.g. a key of the
 *           wrong type) dead-letters the message; a transient failure
 *           (Redis away) leaves the message to be delivered again.
 *
 * What became of each message (aas_msg_outcome_t) is then the caller's to
 * act on: store the offset (DONE) only after the outcome is in Redis, or
 * rewind (RETRY).  It knows nothing of offsets, windows or models.
 *
 * Threading: one thread at a time (the worker's loop).
 */
#ifndef AAS_OUTCOME_H
#define AAS_OUTCOME_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "dlq.h"
#include "err.h"
#include "job.h"
#include "jobauth.h"
#include "metrics.h"
#include "store.h"

/* What became of one message. */
typedef enum {
    AAS_MSG_DONE,    /* outcome recorded: store the offset */
    AAS_MSG_RETRY    /* not recorded (transient failure): rewind, back off */
} aas_msg_outcome_t;

/* One job on its way.  Zero it and set msg before admit. */
typedef struct {
    const rd_kafka_message_t *msg;  /* borrowed; must outlive the item */
    aas_job_t job;                  /* decoded; aas_outcome_item_clear() */
    char job_id[AAS_ID_MAX + 1];    /* known even when job is not */
    char model[AAS_ID_MAX + 1];
    char tenant[AAS_ID_MAX + 1];    /* "" = none; kept when the job moves on (training) */
    int decoded;
    int64_t t_take, decode_us;      /* monotonic us */
    /* The fate. */
    int settled;                    /* outcome is final */
    aas_msg_outcome_t outcome;
    int pending;                    /* reported, not recorded yet */
    aas_status_t status;
    char reason[640];
    char vstr[24];                  /* resolved model version or "" */
    void *buf;                      /* encoded result (owned) */
    size_t len;
    /* Metering: the runner sets rows, compute_us (its share) and, for
     * training, sample_epochs; the rest is filled here. */
    aas_usage_t usage;
    int meter_from_hash;            /* finished before: meter what the hash says */
} aas_outcome_item_t;

/** @brief Free what the item owns (its job, its encoded result). */
void aas_outcome_item_clear(aas_outcome_item_t *it);

typedef struct {
    const char *worker_id;        /* valid id; copied */
    const char *infer_topic;      /* copied */
    const char *train_topic;      /* copied */
    int64_t max_attempts;         /* job.max.attempts */
    const aas_codec_limits_t *limits; /* copied */
    size_t max_items;             /* most items of one admit/record call */
    aas_jobauth_t *auth;          /* signed jobs only (borrowed); NULL: any job */
} aas_outcome_conf_t;

/* Jobs this worker settled, for logs and heartbeats. */
typedef struct {
    unsigned long long done, failed, skipped, dlq;
} aas_outcome_counts_t;

typedef struct aas_outcome_s aas_outcome_t;

/**
 * @brief store, codec, dlq and metrics are borrowed and must outlive it.
 */
aas_err_t aas_outcome_new(const aas_outcome_conf_t *conf, aas_store_t *store,
                          aas_codec_t *codec, aas_dlq_t *dlq, aas_metrics_t *metrics,
                          aas_outcome_t **out, char *errstr, size_t errstr_size);
void aas_outcome_destroy(aas_outcome_t *o);

/**
 * @brief Decode and admit items[0..n) (n <= max_items), all from one
 *        topic.  Afterwards each item is settled (done with), pending (an
 *        outcome waits for aas_outcome_record), or neither: to be run.
 */
void aas_outcome_admit(aas_outcome_t *o, aas_outcome_item_t *items, size_t n);

/** @brief Report a terminal non-success outcome (FAILED, EXPIRED,
 *         CANCELLED) with its reason. */
void aas_outcome_fail(aas_outcome_item_t *it, aas_status_t status, const char *reason);
/** @brief The job's model resolved to this registered version (before it
 *         runs): its record names the version even if the job fails, and
 *         its metrics carry the model's name (unregistered names do not:
 *         they come from payloads, so their label is "_other"). */
void aas_outcome_resolved(aas_outcome_item_t *it, int64_t version);

/** @brief Report a transient failure: the message must come again. */
void aas_outcome_retry(aas_outcome_item_t *it);

/**
 * @brief Report success: res (status SUCCEEDED, outputs...) is encoded now;
 *        job id, model, worker and finish time are filled here.  A
 *        result that does not encode fails the job instead.
 * @param version the resolved model version.
 */
void aas_outcome_succeed(aas_outcome_t *o, aas_outcome_item_t *it, aas_result_t *res,
                         int64_t version);

/**
 * @brief Record every pending outcome of items[0..n) in one round trip
 *        and settle those items (the fallback chain above).
 */
void aas_outcome_record(aas_outcome_t *o, aas_outcome_item_t *items, size_t n);

/** @brief Counts so far. */
aas_outcome_counts_t aas_outcome_counts(const aas_outcome_t *o);

#endif
