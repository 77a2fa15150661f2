/*
 * trainer_text.h - a text classifier's TRAIN job (param featurizer=text,
 * docs/text.md#training): where its labeled texts come from, and the
 * AASTXT2 training over them (train_text.h).
 *
 * The same streaming trainer takes numeric rows from a CSV data set or a
 * CSV topic slice (values, label last): an MLP, registered as AASMLP1.
 *
 * Data, one of:
 *  - the job's tensors: "text" (U8, the texts joined by '\n') and
 *    "labels" (class indices; names from param class_names);
 *  - param dataset=NAME: a TSV data set in Redis (`dataset put`), read
 *    chunk by chunk on the training thread;
 *  - params data_topic, ...: a Kafka topic slice whose records are TSV
 *    lines (source.h).
 * Params: train_text.h's keys, class_names, and the data params above.
 *
 * Threading: new and destroy on the worker's thread; run on the training
 * thread, which then owns the source and uses st (the trainer's own
 * connection) for nothing else at the same time.
 */
#ifndef AAS_TRAINER_TEXT_H
#define AAS_TRAINER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "job.h"
#include "store.h"
#include "train.h"
#include "train_dp.h"

typedef struct aas_trainer_text_s aas_trainer_text_t;

/**
 * @brief Check the params and open the data source (cheap: nothing is
 *        read yet).  job and st are borrowed and must outlive the handle.
 * @return AAS_ERR_INVAL naming the param or tensor at fault,
 *         AAS_ERR_NOT_FOUND (data set or topic), AAS_ERR_REDIS/KAFKA.
 */
aas_err_t aas_trainer_text_new(const aas_conf_t *conf, aas_store_t *st,
                               const aas_job_t *job, int64_t max_rows,
                               aas_trainer_text_t **out, char *errstr, size_t errstr_size);

/** @brief Train (aas_text_train); res->blob is the AASTXT2 model. */
aas_err_t aas_trainer_text_run(aas_trainer_text_t *tt, aas_train_progress_cb *cb,
                               void *opaque, aas_train_result_t *res, char *errstr,
                               size_t errstr_size);

/** @brief 1 if the data are numeric rows (a CSV data set or topic slice:
 *         an MLP, the model an AASMLP1), 0 for texts. */
int aas_trainer_text_is_rows(const aas_trainer_text_t *tt);

/** @brief A text model's featurizer and head as JSON text for the model's
 *         metadata (malloc'ed); NULL for numeric rows or out of memory. */
char *aas_trainer_text_describe(const aas_trainer_text_t *tt);

/** @brief The MLP's parameters (hidden layers...), for the metadata. */
const aas_train_params_t *aas_trainer_text_mlp_params(const aas_trainer_text_t *tt);

/** @brief The job's epochs (its rounds, when data-parallel). */
int32_t aas_trainer_text_epochs(const aas_trainer_text_t *tt);

/** @brief The job's data-parallel engine (train_text.h's aas_text_dp_new):
 *         reads every row of the source, on the calling (training) thread. */
aas_err_t aas_trainer_text_dp(aas_trainer_text_t *tt, int n_shards, int only,
                              aas_train_dp_engine_t **out, char *errstr, size_t errstr_size);

/** @brief NULL is a no-op. */
void aas_trainer_text_destroy(aas_trainer_text_t *tt);

#endif
