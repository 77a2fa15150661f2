/*
 * merge.h - concurrent inference requests as one job, and each request's
 * rows of that job's result (docs/http.md, "Batching").
 *
 * Why: what a job costs outside the model (its Kafka message, the claim
 * and QUEUED record, the worker's decode and Redis writes, the result
 * read) is per job, not per row.  The publishing thread (publish.c)
 * merges the jobs waiting when it wakes that ask the same model version
 * with rows of the same width, the same tenant and priority; each request
 * then answers with its own rows.  Nothing waits to be merged.
 *
 * Pure: no I/O, no state; thread-safe.
 */
#ifndef AAS_GW_MERGE_H
#define AAS_GW_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* Most input bytes of a merged job: far below Kafka's default message
 * limit (1 MB), and large enough for 64 rows of 784 floats.  A request
 * larger than this goes alone, as it is. */
#define AAS_GW_MERGE_MAX_BYTES (256 * 1024)

/** @brief 1 if job may share a job with others: an inference of one FP32
 *         input of shape [rows, width], rows <= max_rows, at most
 *         max_bytes of input, and no text, params or deadline. */
int aas_gw_merge_eligible(const aas_job_t *job, int64_t max_rows, size_t max_bytes);

/** @brief 1 if eligible jobs a and b may share a job: same model, version,
 *         tenant, priority, input name and row width. */
int aas_gw_merge_compatible(const aas_job_t *a, const aas_job_t *b);

/**
 * @brief The job of n compatible eligible jobs: jobs[0]'s fields and id,
 *        and their rows one after the other, in order.
 * @param input filled (its data malloc'd: the caller frees input->data);
 *        out->inputs points at it.  out's strings are jobs[0]'s (borrowed).
 * @return AAS_ERR_NOMEM, AAS_ERR_INVAL (n == 0).
 */
aas_err_t aas_gw_merge_jobs(const aas_job_t *const *jobs, size_t n, aas_job_t *out,
                            aas_tensor_t *input);

/**
 * @brief rows [off, off + rows) of a result of total rows: every output
 *        whose first dimension is total is cut to those rows, the
 *        predictions too.  view borrows all's data (valid while all is);
 *        free it with aas_gw_merge_view_clear().  When off == 0 and rows ==
 *        total (a job of its own), view is all as it is.
 * @return AAS_ERR_SHAPE (with errstr) when an output cannot be cut (its
 *         first dimension is not total), AAS_ERR_NOMEM.
 */
aas_err_t aas_gw_merge_view(const aas_result_t *all, int64_t total, int64_t off, int64_t rows,
                            aas_result_t *view, char *errstr, size_t errstr_size);

/** @brief Free what aas_gw_merge_view() allocated (not the borrowed data). */
void aas_gw_merge_view_clear(aas_result_t *view);

#endif
