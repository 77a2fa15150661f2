/*
 * infer.h - run one decoded inference job on a loaded model.
 *
 * Checks the job's inputs against the model (one F32 tensor of shape
 * [rows, input_dim] or [input_dim], finite values, row limit; or, for a
 * model that takes text, the job's `text` and no tensor: one row) and fills the
 * result's outputs and, for classifiers, one prediction per row.  It knows
 * nothing about Kafka or Redis; the caller owns status and delivery.
 *
 * Threading: as the model (one thread at a time per model).
 */
#ifndef AAS_INFER_H
#define AAS_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"
#include "model.h"

/**
 * @brief Compute job on model into res (outputs, predictions,
 *        timings.compute_us).  On failure res gets nothing and errstr
 *        says why (the job's FAILED reason).
 * @param max_rows refuse jobs with more rows.
 */
aas_err_t aas_infer_run(aas_model_t *model, const aas_job_t *job,
                        int64_t max_rows, aas_result_t *res, char *errstr,
                        size_t errstr_size);

#endif
