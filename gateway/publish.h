/*
 * publish.h - the gateway's one publishing thread: every request's job goes
 * to Kafka through it, and the request waits for the broker's answer.
 *
 * Why one thread: a job costs two Redis round trips besides Kafka (its id
 * claim before producing, its QUEUED record on the acknowledgement), and
 * Redis' cost, like the broker's, is per round trip.  The thread takes
 * every job waiting when it wakes and hands them to the client together
 * (aas_client_submit_many: the claims in one round trip; the QUEUED
 * records of the reports served together in one more), and keeps one
 * produce request in flight (main.c), so the jobs of concurrent requests
 * share every round trip.  An idle request is sent at once: the thread
 * sleeps in poll(2) on a pipe that both a new job and a delivery report
 * (librdkafka's queue event) write to.
 *
 * It also merges the synchronous inference jobs it takes together that
 * can share a job (merge.h), and makes the handle through which their
 * requests read the result (batch.h).
 *
 * Threading: aas_gw_pub_publish() from any thread; the client given to
 * aas_gw_pub_new() is then used by the publishing thread only (and read
 * by aas_client_new_shared()).
 */
#ifndef AAS_GW_PUBLISH_H
#define AAS_GW_PUBLISH_H

#include <stdint.h>

#include "batch.h"
#include "client.h"
#include "metrics.h"
#include "waiter.h"

typedef struct aas_gw_pub_s aas_gw_pub_t;

/** Where a publication that did not succeed stopped. */
typedef enum {
    AAS_GW_PUB_REFUSED = 1,   /* before sending (checks, id claim, quota, Redis) */
    AAS_GW_PUB_FAILED = 2,    /* the broker refused it or timed out: not published */
    AAS_GW_PUB_UNSETTLED = 3  /* no answer within the wait: it may still run */
} aas_gw_pub_stage_t;

typedef struct {
    aas_gw_pub_stage_t stage;  /* when the call did not return AAS_ERR_OK */
    int64_t retry_ms;          /* AAS_ERR_QUOTA: when to try again */
    char why[1024];
    /* A synchronous publication that succeeded: the job carrying this
     * request's rows [row_off, row_off + rows) (the caller releases it). */
    aas_gw_batch_t *batch;
    int64_t row_off, rows;
} aas_gw_pub_outcome_t;

typedef struct {
    aas_gw_waiter_t *waiter;   /* tickets of synchronous jobs; NULL: none */
    aas_metrics_t *metrics;    /* published jobs and requests; NULL: none */
    int64_t merge_max_rows;    /* most rows of a merged job; 1: never merge */
} aas_gw_pub_opts_t;

/**
 * @brief Start the thread.  c (made by aas_client_new: its own producer)
 *        is borrowed and must outlive the publisher; from now on only the
 *        thread calls it.  opts is copied; what it points to is borrowed.
 */
aas_err_t aas_gw_pub_new(aas_client_t *c, const aas_gw_pub_opts_t *opts, aas_gw_pub_t **out,
                         char *errstr, size_t errstr_size);

/** @brief Stop the thread once every job handed over has its answer (each
 *         is settled within the client's client.timeout.ms).  NULL is a
 *         no-op.  No aas_gw_pub_publish() call may be running. */
void aas_gw_pub_destroy(aas_gw_pub_t *p);

/**
 * @brief Publish job (borrowed until the call returns), signed with key
 *        (borrowed likewise; NULL: the client's client.key, if any), and wait up to
 *        wait_ms for the broker's acknowledgement.  A synchronous job
 *        (sync: its caller will wait for the result) may be merged with
 *        others and gets a batch handle; an asynchronous one is published
 *        as it is, under its own id.
 * @return AAS_ERR_OK: acknowledged and recorded QUEUED (out->batch set when
 *         sync).  Otherwise the error as aas_client_submit() or its
 *         delivery report gives it (AAS_ERR_TIMEOUT when unsettled), with
 *         out filled.
 */
aas_err_t aas_gw_pub_publish(aas_gw_pub_t *p, const aas_job_t *job,
                             const aas_jobsig_key_t *key, int sync, int wait_ms,
                             aas_gw_pub_outcome_t *out);

#endif
