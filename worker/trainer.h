/*
 * trainer.h - one TRAIN job on its own thread.
 *
 * Training takes minutes; the worker's poll loop must keep running so the
 * consumer stays in its group (max.poll.interval.ms) and inference keeps
 * flowing.  The trainer owns the decoded job, a Redis connection of its own
 * for progress and cancellation checks, and the thread; the worker's loop
 * polls aas_trainer_done() and then records the outcome with
 * aas_trainer_record() on its own thread and connections.
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

#include "codec.h"
#include "conf.h"
#include "err.h"
#include "job.h"
#include "store.h"

typedef struct aas_trainer_s aas_trainer_t;

/**
 * @brief Check the job's data and params, connect to Redis, start the
 *        thread.  Takes ownership of *job on success (it is zeroed); on
 *        failure the job stays the caller's and errstr is its FAILED reason
 *        (AAS_ERR_REDIS means: retry later).
 */
aas_err_t aas_trainer_start(const aas_conf_t *conf, aas_job_t *job,
                            int64_t max_rows, aas_trainer_t **out,
                            char *errstr, size_t errstr_size);

/** @brief 1 once the training thread has finished (joinable). */
int aas_trainer_done(aas_trainer_t *t);

/** @brief Ask the thread to stop at the next batch (shutdown). */
void aas_trainer_stop(aas_trainer_t *t);

/** @brief The job id (borrowed). */
const char *aas_trainer_job_id(const aas_trainer_t *t);

/**
 * @brief After done: register the model (a new version) and write the
 *        terminal status and result record.  Idempotent until it returns
 *        AAS_ERR_OK: call again on a retriable error.
 */
aas_err_t aas_trainer_record(aas_trainer_t *t, aas_store_t *st,
                             aas_codec_t *codec, const char *worker_id,
                             char *errstr, size_t errstr_size);

/** @brief Join the thread (stopping it first) and free. NULL is a no-op. */
void aas_trainer_destroy(aas_trainer_t *t);

#endif
