/*
 * infer.h - check inference jobs against a model and run them as one
 * batched forward pass.
 *
 * aas_infer_check() decides whether a job can run on a model: one F32
 * tensor of shape [rows, input_dim] or [input_dim], finite values, at most
 * max_rows rows; or, for a model that takes text, the job's `text` and no
 * tensor (one row).  aas_infer_batch_run() then runs several checked jobs
 * of the same model as one forward pass (their rows stacked) and splits the
 * outputs back into one result per job: outputs and, for classifiers, one
 * prediction per row.  It knows nothing about Kafka or Redis; the caller
 * owns status and delivery.
 *
 * Memory: a batch owns its buffers (stacked inputs, outputs, the result
 * tensors and predictions) and grows them to the largest batch seen, so a
 * steady stream of batches allocates nothing.  The results it fills borrow
 * from it: they are valid until the next run or destroy, and must not be
 * passed to aas_result_clear().
 *
 * Threading: one thread at a time per batch and per model.
 */
#ifndef AAS_INFER_H
#define AAS_INFER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "job.h"
#include "model.h"

/**
 * @brief Can job run on model?  *rows gets its row count.
 * @return AAS_ERR_SHAPE / AAS_ERR_TOO_LARGE / AAS_ERR_INVAL (NaN, Inf) with
 *         the reason (the job's FAILED reason) when it cannot.
 */
aas_err_t aas_infer_check(aas_model_t *model, const aas_job_t *job,
                          int64_t max_rows, int64_t *rows, char *errstr,
                          size_t errstr_size);

typedef struct aas_infer_batch_s aas_infer_batch_t;

aas_err_t aas_infer_batch_new(aas_infer_batch_t **out, char *errstr,
                              size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_infer_batch_destroy(aas_infer_batch_t *b);

/**
 * @brief One forward pass for n jobs that passed aas_infer_check() on model
 *        (rows[i] as it said).  res[i] gets outputs, predictions and
 *        timings.compute_us (the pass's time); other fields are untouched.
 * @return on failure (out of memory, a oneDNN error) no res is filled and
 *         errstr says why; it applies to every job of the pass.
 */
aas_err_t aas_infer_batch_run(aas_infer_batch_t *b, aas_model_t *model,
                              const aas_job_t *const *jobs, const int64_t *rows,
                              size_t n, aas_result_t *res, char *errstr,
                              size_t errstr_size);

/**
 * @brief Are all of a result's F32 outputs finite?  Finite inputs can
 *        still overflow a model (every input 3e38): that is the job's
 *        failure, never a silent success with NaN outputs.
 * @return AAS_ERR_NONFINITE naming the first bad output element, or OK.
 */
aas_err_t aas_infer_result_check(const aas_result_t *res, char *errstr,
                                 size_t errstr_size);

#endif
