/*
 * client.h - the aas client library: publish jobs, read their status and
 * results, manage models in the registry.
 *
 * Jobs go to Kafka through an idempotent producer (key = job id, value =
 * Avro single-object encoding, docs/wire-format.md).  When the broker
 * acknowledges a job, the client records it as QUEUED in Redis, so "never
 * published" (no status) and "waiting" (QUEUED) can be told apart.  Job ids
 * are the caller's: an id is claimed once (docs/redis.md, "Submitting").  Results
 * are read from Redis (docs/redis.md); waiting blocks on Redis, it does not
 * poll in a loop.
 *
 * Threading: an aas_client_t is used by one thread at a time.  Delivery
 * callbacks run inside aas_client_submit()/aas_client_flush() on that
 * thread.  Several threads can publish through one producer: each has its
 * own client made by aas_client_new_shared() (its own Redis connection),
 * and one thread serves the producer's client with aas_client_poll().
 */
#ifndef AAS_CLIENT_H
#define AAS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "err.h"
#include "job.h"
#include "jobsig.h"
#include "store.h"

typedef struct aas_client_s aas_client_t;

/** The client's own configuration rows (plus conf.h's common ones). */
extern const aas_conf_def_t aas_client_conf_defs[];

/** Called once per submitted job when its publication is settled:
 *  err == AAS_ERR_OK means acknowledged and recorded QUEUED. */
typedef void(aas_client_delivery_cb)(void *opaque, const char *job_id,
                                     aas_err_t err, const char *errstr);

/**
 * @brief Connect to Redis and create the producer.  conf is borrowed for
 *        the lifetime of the client.
 */
aas_err_t aas_client_new(const aas_conf_t *conf, aas_client_t **out,
                         char *errstr, size_t errstr_size);
/**
 * @brief A client that publishes through `via`'s producer instead of its
 *        own: many threads' jobs then share one connection and go to the
 *        broker together in one request (one producer per thread sends
 *        each job alone, and a broker's cost is per request).  Everything
 *        else (Redis, the id claim, the QUEUED record, waiting) is the new
 *        client's own, on its own thread.  `via` (made by aas_client_new,
 *        not shared itself) is borrowed: it must outlive the client, and
 *        one thread must call aas_client_poll(via) in a loop while the
 *        client has jobs unsettled, including during its destroy.  Its
 *        jobs' publication is settled (acknowledged or failed) within
 *        via's client.timeout.ms; aas_client_abandon() cannot withdraw
 *        them alone (it returns 0).
 */
aas_err_t aas_client_new_shared(const aas_conf_t *conf, aas_client_t *via,
                                aas_client_t **out, char *errstr, size_t errstr_size);
/**
 * @brief Serve the delivery reports of a client whose producer others
 *        share (aas_client_new_shared); waits up to timeout_ms for one.
 *        Call it from one thread only.  Returns how many were served.
 */
int aas_client_poll(aas_client_t *c, int timeout_ms);
/**
 * @brief Have the client's producer write a byte to fd whenever delivery
 *        reports wait to be served (librdkafka's queue event), so a thread
 *        can sleep in poll(2) on its own events and the reports at once,
 *        then call aas_client_poll(c, 0).  fd (non-blocking, e.g. a pipe's
 *        write end) must stay open while c lives.  A client's own producer
 *        only (not aas_client_new_shared's).
 */
aas_err_t aas_client_wake_fd(aas_client_t *c, int fd, char *errstr, size_t errstr_size);
/** @brief Flush what is still queued (bounded wait), then free. */
void aas_client_destroy(aas_client_t *c);

/**
 * @brief Allow resubmitting a job id that exists, when its payload is the
 *        same (a retry after an unknown outcome); otherwise a known id is
 *        refused (AAS_ERR_CONFLICT).  Off by default.  A resubmitted job
 *        that has a status is not published again (the existing job
 *        stands); one that was claimed but never acknowledged is.
 */
void aas_client_set_idempotent(aas_client_t *c, int on);

/** @brief Set the delivery callback (NULL to clear). */
void aas_client_set_delivery_cb(aas_client_t *c, aas_client_delivery_cb *cb,
                                void *opaque);

/** @brief The longest job text aas_client_submit() publishes, in bytes
 *         (client.text.max.bytes); e.g. to bound reading a text. */
size_t aas_client_text_max_bytes(const aas_client_t *c);

/** @brief Write a fresh random job id (32 hex digits) into buf. */
aas_err_t aas_client_job_id(char *buf, size_t size);

/**
 * @brief Publish a job (job->id must be set and valid; job->submit_ms 0 is
 *        filled with now) to topic.infer, or topic.train for TRAIN jobs.
 *        Before publishing, the id is claimed in Redis with a hash of the
 *        payload: an id already used is refused (AAS_ERR_CONFLICT, saying
 *        whether by the same payload) unless aas_client_set_idempotent()
 *        and the payload is the same.  With Redis unreachable the job is
 *        still published (Kafka buffers it) and the id is not checked (a
 *        warning is logged).  A job over its message limit is refused
 *        before sending (AAS_ERR_TOO_LARGE), naming the limit that binds
 *        and how to raise it: the smallest of client.message.max.bytes,
 *        the producer's message.max.bytes (kafka.message.max.bytes; it
 *        follows the former + 1 KiB unless set) and the topic's
 *        max.message.bytes read from the broker at the first job for that
 *        topic (DescribeConfigs; left out if it cannot be read), the last
 *        two less 1 KiB for key and framing; on the dev broker at most
 *        1 MiB.  A text over client.text.max.bytes is refused the same
 *        way.  A delivery report of a broker's "message too large" gets
 *        AAS_ERR_TOO_LARGE and the same explanation.  Returns once the job is
 *        queued in the producer; the outcome comes to the delivery callback
 *        and to aas_client_flush().  A full local queue waits (bounded by
 *        client.timeout.ms).  After the claim the job is admitted by its
 *        tenant's quota (store.h): over it, AAS_ERR_QUOTA (retriable;
 *        aas_client_last_retry_ms() says when) and nothing is published;
 *        with Redis unreachable and client.redis.required false it is
 *        published unchecked (a worker admits it before running it).
 *        Kafka refusing the client's credentials (SASL or TLS) while no
 *        broker is up is AAS_ERR_AUTH within about a second, naming the
 *        mechanism and user (never the password); jobs such a producer
 *        still held are purged and reported failed, their ids released.
 */
aas_err_t aas_client_submit(aas_client_t *c, const aas_job_t *job,
                            char *errstr, size_t errstr_size);

/** One job of aas_client_submit_many(). */
typedef struct {
    const aas_job_t *job;   /* in (borrowed for the call) */
    /* in: sign the job with this key instead of the client's client.key
     * (the gateway signs with its caller's key); NULL: client.key, if set */
    const aas_jobsig_key_t *key;
    /* in: the partition to publish to; NULL: by the job id (the key), as
     * every client does (a data-parallel job places its shard tasks) */
    const int32_t *partition;
    aas_err_t err;          /* out: what aas_client_submit() would return */
    char why[2048];         /* out: its errstr, when err */
} aas_client_submission_t;

/**
 * @brief aas_client_submit() for n jobs, each with its own outcome in
 *        subs[i] (one refused job does not stop the others), but their id
 *        claims go to Redis together: one round trip per 64 jobs instead
 *        of one per job.  For a client with many jobs at hand (a file, a
 *        burst), this is what lets one thread publish tens of thousands
 *        of jobs a second.  Jobs are published in order.
 * @return AAS_ERR_OK if every job was accepted, else the first refused
 *         one's error (errstr says which job and why).
 */
aas_err_t aas_client_submit_many(aas_client_t *c, aas_client_submission_t *subs, size_t n,
                                 char *errstr, size_t errstr_size);

/**
 * @brief After aas_client_submit() returned AAS_ERR_QUOTA (the job's tenant
 *        is over its quota, docs/sharing.md#quotas; nothing was published
 *        and the id is free again): when to try again, in ms (for an
 *        in-flight refusal a hint: when a job ends is not known).
 *        Otherwise the value of the last refusal, or 0.
 */
int64_t aas_client_last_retry_ms(const aas_client_t *c);

/**
 * @brief Withdraw every job not acknowledged yet (librdkafka purge of the
 *        queued and in-flight messages) and serve their delivery reports:
 *        their ids are released and the next flush starts clean.  A queued
 *        job is certainly not published; one in flight may have reached
 *        the broker before (then it runs).
 * @return how many were withdrawn.
 */
size_t aas_client_abandon(aas_client_t *c);

/**
 * @brief Wait until every submitted job is settled.
 * @param failed_out jobs whose publication failed since the last flush.
 * @return AAS_ERR_TIMEOUT if some are still unsettled.
 */
aas_err_t aas_client_flush(aas_client_t *c, int timeout_ms, size_t *failed_out,
                           char *errstr, size_t errstr_size);

/** @brief Status record of a job; AAS_ERR_NOT_FOUND if never published. */
aas_err_t aas_client_status(aas_client_t *c, const char *job_id,
                            aas_job_info_t *info, char *errstr,
                            size_t errstr_size);

/**
 * @brief Wait until the job is terminal (at most timeout_ms), then read and
 *        decode its result into *res (caller clears).
 * @return AAS_ERR_TIMEOUT if not terminal in time.
 */
aas_err_t aas_client_wait(aas_client_t *c, const char *job_id, int timeout_ms,
                          aas_result_t *res, char *errstr, size_t errstr_size);

/**
 * @brief aas_client_wait() for a job just published, most likely not done
 *        yet: blocks on its done token before looking, so a job that ends
 *        while waited for costs two Redis round trips instead of three.
 *        Same outcomes.  (A job that has ended has its token, so this
 *        answers at once for one that is done too.)
 */
aas_err_t aas_client_wait_fresh(aas_client_t *c, const char *job_id, int timeout_ms,
                                aas_result_t *res, char *errstr, size_t errstr_size);

/**
 * @brief Cancel a job: QUEUED jobs end CANCELLED at once; RUNNING jobs are
 *        asked to stop (training stops at its next batch); finished jobs
 *        are left alone.
 * @param status_out CANCELLED, RUNNING (stop requested) or the terminal
 *        status the job already had.
 * @return AAS_ERR_NOT_FOUND if the job is unknown.
 */
aas_err_t aas_client_cancel(aas_client_t *c, const char *job_id,
                            aas_status_t *status_out, char *errstr,
                            size_t errstr_size);

/**
 * @brief Upload a training data set to Redis under `name` (replacing one of
 *        that name): rows x dim f32 features and rows i32 labels, in 1 MiB
 *        chunks, with a CRC-64-AVRO checksum the trainer verifies.  A TRAIN
 *        job then names it with the param dataset=<name>.
 */
aas_err_t aas_client_dataset_put(aas_client_t *c, const char *name,
                                 const float *x, const int32_t *y,
                                 int64_t rows, int64_t dim, char *errstr,
                                 size_t errstr_size);

/** What a streamed data set holds (format aas.dataset.v2, docs/training.md). */
typedef enum {
    AAS_CLIENT_DATASET_TSV = 1,  /* "label<TAB>text" lines (docs/text.md) */
    AAS_CLIENT_DATASET_CSV = 2   /* numbers, the class label (0..65535) last */
} aas_client_dataset_type_t;

/** Called after each chunk is stored: bytes stored so far, and the total
 *  (0 when not known, e.g. stdin). */
typedef void aas_client_dataset_progress_cb(void *opaque, uint64_t done, uint64_t total);

typedef struct {
    aas_client_dataset_type_t type;
    int header;              /* CSV: 1 the first line (not blank, not '#') is a
                                header, 0 there is none; TSV: must be 0 */
    const char *file;        /* kept in meta as "file" (its basename); may be NULL */
    uint64_t total_bytes;    /* for progress; 0 if not known */
    aas_client_dataset_progress_cb *progress;  /* may be NULL */
    void *opaque;
} aas_client_dataset_opts_t;

typedef struct {
    int64_t rows;            /* examples (TSV lines, CSV data rows) */
    uint64_t bytes;          /* bytes stored (the file's bytes) */
    int64_t chunks;
    uint64_t crc64;          /* CRC-64-AVRO of the bytes */
    int64_t cols;            /* CSV: values per row, label included; TSV 0 */
    int64_t classes;         /* TSV: distinct labels; CSV 0 */
} aas_client_dataset_stats_t;

/**
 * @brief Stream a text file into data set `name` (format aas.dataset.v2):
 *        read fp in pieces, check every line (TSV: label rules and UTF-8;
 *        CSV: finite numbers, the same count per row, an integer label
 *        0..65535 last), store it in chunks of whole lines of at most 1 MiB
 *        as they fill, then publish the set atomically (store.h:
 *        aas_store_dataset_begin/append/commit).  Memory stays about
 *        2 MiB whatever the file size (plus the distinct TSV labels, at
 *        most 65536).  On any failure nothing of the upload remains and a
 *        set of that name stays as it was; errstr names the line (and for
 *        UTF-8 the byte).
 * @param st the connection to write with (aas_client_store(c), or a bare
 *        store: no Kafka is needed); borrowed.
 * @param fp read to its end, not closed.
 * @param out filled on success (may be NULL).
 */
aas_err_t aas_client_dataset_put_stream(aas_store_t *st, const char *name, FILE *fp,
                                        const aas_client_dataset_opts_t *o,
                                        aas_client_dataset_stats_t *out, char *errstr,
                                        size_t errstr_size);

/** @brief Register a model file's bytes as a new version of name. */
aas_err_t aas_client_model_register(aas_client_t *c, const char *name,
                                    const void *blob, size_t len,
                                    const char *meta_json,
                                    int64_t *version_out, char *errstr,
                                    size_t errstr_size);

/** @brief The client's Redis handle (borrowed, valid while c lives), for
 *         registry queries (store.h). */
aas_store_t *aas_client_store(aas_client_t *c);

/**
 * @brief Are Redis and Kafka reachable?  One Redis read, then the Kafka
 *        cluster's metadata (rd_kafka_metadata, no topics) within
 *        timeout_ms.  AAS_ERR_REDIS or AAS_ERR_KAFKA with errstr if not.
 */
aas_err_t aas_client_ping(aas_client_t *c, int timeout_ms, char *errstr, size_t errstr_size);

/**
 * @brief The partition count of the inference (train 0: the normal lane)
 *        or training (train 1) topic, from the broker (bounded by
 *        client.timeout.ms).
 */
aas_err_t aas_client_partitions(aas_client_t *c, int train, int32_t *n, char *errstr,
                                size_t errstr_size);

#endif
