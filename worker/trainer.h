/*
 * trainer.h - one TRAIN job on its own thread.
 *
 * Training takes minutes; the worker's poll loop must keep running so the
 * consumer stays in its group (max.poll.interval.ms) and inference keeps
 * flowing.  The trainer owns the decoded job, a Redis connection of its own
 * for progress and cancellation checks, and the thread; the worker's loop
 * polls aas_trainer_done(), then takes the job's outcome with
 * aas_trainer_finish() and records it like any job's (outcome.h).
 *
 * Data: the job carries features (F32 [n, dim], tensor "features" or the
 * first) and labels (I32, I64 or integral F32 [n], "labels" or the second);
 * params are docs/training.md's keys plus `classes` (class count, default
 * max label + 1) and `class_names` (comma-separated).
 *
 * Threading: create, poll, record and destroy from one thread (the
 * worker's); the training thread touches only what the trainer owns.
 */
#ifndef AAS_TRAINER_H
#define AAS_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "job.h"
#include "store.h"

typedef struct aas_trainer_s aas_trainer_t;

/** Where the job runs: what a data-parallel job needs of its worker. */
typedef struct {
    int32_t partition;      /* the job's partition on the training topic (a
                             * data-parallel job places its shard tasks
                             * after it); -1 unknown */
    const char *group;      /* the worker's consumer group, and */
    const char *worker_id;  /* id (parallelism=auto counts the group's
                             * other idle workers); copied */
    int64_t floor;          /* the inference floor it keeps (0: none) */
} aas_trainer_where_t;

/**
 * @brief Check the job's data and params, connect to Redis (conf's redis.*
 *        keys), start the thread.  Takes ownership of *job on success (it
 *        is zeroed); on failure the job stays the caller's and errstr is
 *        its FAILED reason (AAS_ERR_REDIS means: retry later).
 * @param where the worker's side (borrowed for the call).
 * @param max_rows refuse more training rows (before allocating).
 * @param dataset_max_bytes refuse a larger data set from Redis.
 */
aas_err_t aas_trainer_start(const aas_conf_t *conf, aas_job_t *job,
                            const aas_trainer_where_t *where, int64_t max_rows,
                            size_t dataset_max_bytes, aas_trainer_t **out, char *errstr,
                            size_t errstr_size);

/** @brief 1 once the training thread has finished (joinable). */
int aas_trainer_done(aas_trainer_t *t);

/**
 * @brief After done: what became of the job, for the caller to record
 *        (outcome.h).  A finished training registers its model (the next
 *        version) here, once: res gets SUCCEEDED, the version in
 *        *version_out and the outputs (curves, metrics); a failed or
 *        cancelled one gets that status and res->error.  res borrows from
 *        the trainer (valid until destroy); do not aas_result_clear() it.
 *        If a redelivered copy of the job finished first, res is SUCCEEDED
 *        with no outputs and version 0, and recording it writes nothing.
 * @return AAS_ERR_OK with res filled; a retriable error (Redis away): call
 *         again later; any other error (e.g. the registry refuses the
 *         model): the job cannot succeed and errstr is why.
 */
aas_err_t aas_trainer_finish(aas_trainer_t *t, aas_store_t *st, aas_result_t *res,
                             int64_t *version_out, char *errstr, size_t errstr_size);

/** @brief After done: the rows trained on (training + validation) and the
 *         sample-epochs (training rows x epochs run), for metering. */
void aas_trainer_usage(const aas_trainer_t *t, int64_t *rows, int64_t *sample_epochs);

/** @brief Join the thread (stopping it first) and free. NULL is a no-op. */
void aas_trainer_destroy(aas_trainer_t *t);

#endif
