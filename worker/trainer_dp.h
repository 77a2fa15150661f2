/*
 * trainer_dp.h - a data-parallel training job on the fleet
 * (docs/training.md#data-parallel-training): the two roles a worker's
 * training thread can take, on top of common/train_dp.h's rounds.
 *
 *   coordinator: the worker holding a job with parallelism = N > 1.  It
 *       publishes N - 1 shard tasks (training jobs <id>.s1 .. <id>.s<N-1>,
 *       the job's params and data plus dp.job, dp.shard, dp.shards) to the
 *       training topic, on the partitions after the job's own, and runs
 *       shard 0 itself.  Each round it waits for the shards' states in
 *       Redis, redoes (the same bytes) any shard still missing after
 *       max(2 s, 3 x its own round), averages, writes the next global
 *       state, validates and reports progress; at the end it exports the
 *       model, which the trainer registers as for any job.  A coordinator
 *       that dies is replaced by the worker the job is redelivered to: it
 *       resumes at the last global round in Redis.  It holds the job's
 *       lease meanwhile (dp:{job}:lease): a second coordinator of the job
 *       waits for it instead of computing the same rounds.
 *   shard: a worker holding a shard task.  For each round it waits for the
 *       global state, runs its rows, writes its state; it stops when the
 *       coordinator says so (done, cancelled, failed) or moves past the
 *       last round.
 *
 * Store keys: store.h, "data-parallel training".  Threading: the training
 * thread only; store is that thread's connection.
 */
#ifndef AAS_TRAINER_DP_H
#define AAS_TRAINER_DP_H

#include <stdatomic.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "job.h"
#include "store.h"
#include "train.h"
#include "train_dp.h"

typedef struct {
    const aas_conf_t *conf;        /* the worker's (the shard tasks' publisher) */
    aas_store_t *store;            /* the training thread's connection */
    const aas_job_t *job;          /* the job this worker holds */
    int32_t partition;             /* its partition on the training topic, -1 unknown */
    const char *dp_job;            /* whose rounds: the job itself, or dp.job */
    const char *owner;             /* the coordinator's lease owner: worker id/pid */
    int shard, shards;             /* 0 = the coordinator */
    /* The engine, made on the training thread (a text job reads its data
     * there): every shard's rows when only < 0, else shard only's. */
    aas_err_t (*engine_new)(void *arg, int only, aas_train_dp_engine_t **out, char *errstr,
                            size_t errstr_size);
    void *engine_arg;
    int32_t epochs;                /* rounds */
    int threads;                   /* the job's OpenMP threads, 0 = the default */
    aas_train_progress_cb *cb;     /* progress, and cancel when it returns non-zero */
    void *opaque;
    atomic_int *stop;              /* the worker is stopping */
} aas_trainer_dp_t;

/** @brief The coordinator's rounds; out as aas_train_run's. */
aas_err_t aas_trainer_dp_coordinate(const aas_trainer_dp_t *d, aas_train_result_t *out,
                                    char *errstr, size_t errstr_size);

/**
 * @brief A shard task's rounds.  *rounds counts the rounds it ran;
 *        *cancelled is set when the job was cancelled (or the worker
 *        stops).  AAS_ERR_TIMEOUT when the coordinator went silent.
 */
aas_err_t aas_trainer_dp_shard(const aas_trainer_dp_t *d, int32_t *rounds, int *cancelled,
                               char *errstr, size_t errstr_size);

#endif
