/*
 * trainer_text.h - the training data of a text classifier job
 * (param featurizer=text, docs/text.md): texts in, feature rows out.
 *
 * It only turns the job's texts into the [n, dim] features that
 * trainer.c then trains on like any other rows; labels, parameters and the
 * training itself stay in trainer.c.  Thread-safe (no state).
 */
#ifndef AAS_TRAINER_TEXT_H
#define AAS_TRAINER_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"

/**
 * @brief Featurize the job's tensor "text" (U8 [bytes]: the n texts joined
 *        by '\n', so a text holds no '\n') into F32 [n, dim] features,
 *        dim = param text_dim (default AAS_FEATURIZE_DEFAULT_DIM).
 * @param max_rows refuse more texts (AAS_ERR_TOO_LARGE) before allocating.
 * @param features filled on success; owns its data (aas_tensor_clear).
 * @param dim the feature dimension, on success.
 */
aas_err_t aas_trainer_text_data(const aas_job_t *job, int64_t max_rows,
                                aas_tensor_t *features, int64_t *dim, char *errstr,
                                size_t errstr_size);

#endif
