/*
 * batch.h - the result that the requests of one published job share
 * (merge.h says why requests share jobs).
 *
 * The publishing thread makes one handle per synchronous job it publishes
 * (a job of one request, or of several merged), registers the job with
 * the waiter before it is sent, and gives every request of it a
 * reference.  The result is read from Redis once: the first request to
 * ask waits for it (its own deadline), the others wait on the handle and
 * take the stored result, and each answers with its own rows.
 *
 * Threading: every call from any thread.  Ownership: the handle frees
 * itself, its ticket and the result at its last release.
 */
#ifndef AAS_GW_BATCH_H
#define AAS_GW_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "waiter.h"

typedef struct aas_gw_batch_s aas_gw_batch_t;

/**
 * @brief Read a job's result, waiting until deadline_us (aas_mono_us()
 *        clock); the waiter's ticket tk (may be NULL) is the job's.
 *        AAS_ERR_TIMEOUT when it is not done by then; on AAS_ERR_OK res is
 *        filled (owned by the handle from then on).
 */
typedef aas_err_t (*aas_gw_batch_read_fn)(void *ctx, const char *job_id, aas_gw_ticket_t *tk,
                                          int64_t deadline_us, aas_result_t *res, char *why,
                                          size_t why_size);

/**
 * @brief A handle for job_id of total rows with refs references, and its
 *        ticket, registered with w now (w may be NULL: no ticket).
 * @return NULL when out of memory.
 */
aas_gw_batch_t *aas_gw_batch_new(aas_gw_waiter_t *w, const char *job_id, int64_t total,
                                 int refs);

/** @brief Drop one reference; the last frees.  NULL is a no-op. */
void aas_gw_batch_release(aas_gw_batch_t *b);

/** @brief The job's id (valid while a reference is held). */
const char *aas_gw_batch_id(const aas_gw_batch_t *b);

/**
 * @brief The job's result for this request's rows [off, off + rows):
 *        read once through read (by the first caller, under the handle's
 *        lock), then cut (aas_gw_merge_view).  A timeout is not kept: a
 *        later caller with time left reads again.
 * @param view filled on AAS_ERR_OK; borrows the handle's result: clear it
 *        with aas_gw_merge_view_clear() before releasing the handle.
 * @return read's error (AAS_ERR_TIMEOUT, AAS_ERR_NOT_FOUND, ...), or the
 *         cut's (AAS_ERR_SHAPE); why says more.
 */
aas_err_t aas_gw_batch_result(aas_gw_batch_t *b, aas_gw_batch_read_fn read, void *ctx,
                              int64_t deadline_us, int64_t off, int64_t rows,
                              aas_result_t *view, char *why, size_t why_size);

#endif
