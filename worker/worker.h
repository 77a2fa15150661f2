/*
 * worker.h - one aas worker: consume jobs, compute, write to Redis.
 *
 * The loop: poll Kafka (consumer group, cooperative-sticky), decode, mark
 * RUNNING, compute, write the terminal status and result in one atomic
 * Redis step, and only then store the message's offset (at-least-once with
 * effectively-once results).  Undecodable messages go to the dead-letter
 * topic.  A transient failure (Redis or broker away) rewinds the partition
 * to the failed message and backs off; nothing is skipped.
 *
 * Threading: aas_worker_run() runs on the calling thread until *stop
 * becomes non-zero (set from a signal handler).
 */
#ifndef AAS_WORKER_H
#define AAS_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"

typedef struct aas_worker_s aas_worker_t;

/** The worker's own configuration rows (plus conf.h's common ones); each
 *  names its member of aas_worker_conf_t. */
extern const aas_conf_def_t aas_worker_conf_defs[];

/** The worker's settings, parsed once (aas_conf_fill) at aas_worker_new();
 *  docs/configuration.md has each key's default, range and meaning. */
typedef struct {
    const char *id;               /* worker.id (NULL: <host>-<pid>) */
    const char *group;            /* worker.group */
    int train;                    /* worker.train */
    int infer;                    /* worker.infer */
    int64_t train_floor;          /* worker.train.floor */
    int64_t dataset_max_mb;       /* train.dataset.max.mb */
    int64_t source_stall_ms;      /* train.source.stall.ms */
    int64_t heartbeat_ms;         /* worker.heartbeat.ms */
    int64_t cache_size, cache_mb; /* model.cache.size, model.cache.mb */
    int64_t model_max_mb;         /* model.max.mb */
    int64_t refresh_ms;           /* model.refresh.ms */
    int64_t job_max_bytes, job_max_elems, job_max_rows, job_max_text_bytes;
    int64_t job_max_attempts;     /* job.max.attempts */
    int64_t threads;              /* worker.threads */
    int64_t batch_max_rows, batch_max_delay_us;
    int64_t window_jobs;          /* worker.window.jobs */
    int64_t batch_record_us;      /* batch.record.us */
    int64_t lane_share;           /* worker.lane.share */
    int64_t fair_jobs, fair_mb;   /* worker.fair.jobs, worker.fair.mb */
    int64_t fair_quantum_us;      /* worker.fair.quantum.us */
    int64_t fair_window_jobs;     /* worker.fair.window.jobs */
    const char *fair_weights;     /* worker.fair.weights */
    const char *auth;             /* worker.auth: none or keys */
    int64_t auth_refresh_s;       /* worker.auth.refresh.s */
    int64_t backoff_ms, backoff_max_ms; /* retry.backoff.ms, .max.ms */
    /* k8s.*: the pod deletion cost while training (podcost.h) */
    const char *k8s_enabled, *k8s_api_url, *k8s_token_file, *k8s_ca_file;
    const char *k8s_namespace, *k8s_pod;
    int64_t k8s_timeout_ms;
    int64_t busy_cost;            /* worker.busy.deletion.cost */
} aas_worker_conf_t;

/**
 * @brief Connect to Redis and Kafka and subscribe.  conf is borrowed and
 *        must outlive the worker.
 */
aas_err_t aas_worker_new(const aas_conf_t *conf, aas_worker_t **out,
                         char *errstr, size_t errstr_size);

/** @brief Serve until *stop; then leave the group cleanly. */
aas_err_t aas_worker_run(aas_worker_t *w, volatile sig_atomic_t *stop);

/** @brief Close the consumer (commits stored offsets) and free. */
void aas_worker_destroy(aas_worker_t *w);

#endif
