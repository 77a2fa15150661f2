/*
 * store.h - everything aas keeps in Redis: job status, results, the wake-up
 * list for waiters, and the model registry.  docs/redis.md is the contract
 * for other languages; this module is its only C implementation.
 *
 * Keys (all parts of one job share the hash tag {id} so a Lua script may
 * touch them together on Redis Cluster):
 *   <prefix>job:{<id>}        hash: status, model, version, attempts, error,
 *                             worker, submit_ms, queued_ms, started_ms,
 *                             finished_ms, result_writes, skips, src
 *   <prefix>result:{<id>}     string: the result, Avro single-object bytes
 *   <prefix>done:{<id>}       list: one element pushed when terminal (BLPOP)
 *   <prefix>model:{<name>}    hash: latest, next; v:<n> -> blob,
 *                             meta:<n> -> JSON, created:<n> -> unix ms;
 *                             opt:precision, opt:batch_max_rows,
 *                             opt:batch_max_delay_us (serving options)
 *   <prefix>models            set of model names
 * Status changes run as Lua scripts, so each is atomic, and a terminal
 * status is never overwritten.  Keys are built only from ids that passed
 * aas_id_valid().
 *
 * Threading: an aas_store_t wraps one hiredis connection; not thread-safe,
 * use one per thread.  Every call reconnects once if the connection broke;
 * a Redis that stays away gives AAS_ERR_REDIS (retriable).  Idempotent
 * calls are also resent once when the connection breaks mid-call; start,
 * model_put, model_delete and wait are not (see each).
 *
 * SIGPIPE: hiredis writes with write(2); a program using the store must
 * ignore SIGPIPE in main() (signal(SIGPIPE, SIG_IGN)), or a Redis that dies
 * mid-write kills the process.
 */
#ifndef AAS_STORE_H
#define AAS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "apikey.h"
#include "err.h"
#include "job.h"

typedef struct aas_store_s aas_store_t;

typedef struct {
    const char *host;          /* default "127.0.0.1" */
    int port;                  /* default 6379 */
    const char *user;          /* ACL user or NULL */
    const char *password;      /* NULL = no AUTH; never logged */
    int db;                    /* default 0 */
    int timeout_ms;            /* connect + command timeout, default 5000 */
    int ttl_s;                 /* TTL of job keys, default 86400 */
    const char *prefix;        /* key prefix, default "aas:" */
    /* High availability (docs/redis.md, "Sentinel"): with sentinels set,
     * host/port are ignored and the master of sentinel_master is asked of
     * the sentinels at every (re)connect. */
    const char *sentinels;     /* "host:port,host:port", or NULL */
    const char *sentinel_master; /* the master's name, default "mymaster" */
    int wait_replicas;         /* > 0: a terminal write counts once this many
                                * replicas have it (WAIT), default 0 */
    int wait_timeout_ms;       /* WAIT's bound, default 1000 */
} aas_store_conf_t;

/** @brief Fill defaults. */
void aas_store_conf_init(aas_store_conf_t *conf);

/**
 * @brief Connect (and AUTH/SELECT, and load scripts).  Strings in conf are
 *        copied.  Wrong credentials give AAS_ERR_INVAL with a clear errstr
 *        ("Redis AUTH failed: WRONGPASS ...", never the password); a Redis
 *        that needs a password when none is set gives AAS_ERR_INVAL ("...
 *        requires AUTH ...").  A Redis that cannot be reached gives
 *        AAS_ERR_REDIS.  Later, inside calls, any reconnect failure
 *        (credentials included) is AAS_ERR_REDIS, the environment's fault.
 *        A host starting with '/' is a unix socket path.
 * @param out an owned handle; free with aas_store_destroy().
 */
aas_err_t aas_store_new(const aas_store_conf_t *conf, aas_store_t **out,
                        char *errstr, size_t errstr_size);
/** @brief Close and free. NULL is a no-op. */
void aas_store_destroy(aas_store_t *st);

/** @brief Redis-side statistics: how often this handle reconnected. */
int64_t aas_store_reconnects(const aas_store_t *st);

/* Limits, checked before anything is sent or allocated. */
#define AAS_STORE_RESULT_MAX ((size_t)64 << 20) /* result bytes, both ways */
#define AAS_STORE_BLOB_MAX ((size_t)512 << 20)  /* model blob (Redis max) */
#define AAS_STORE_META_MAX ((size_t)1 << 20)    /* model metadata JSON */
#define AAS_STORE_ERROR_MAX 4096 /* job error text; longer is truncated */
#define AAS_STORE_SRC_MAX 1024   /* job src text */

/** What aas_store_job_get() returns; strings owned (NULL when the field is
 *  absent), free with _info_clear.  Absent counters and times read as 0. */
typedef struct {
    aas_status_t status;
    char *model;
    char *version;
    char *error;
    char *worker;
    int64_t attempts;
    int64_t submit_ms, queued_ms, started_ms, finished_ms;
    int64_t result_writes;     /* how many times a terminal write happened */
    int64_t skips;             /* redeliveries skipped as already terminal */
    char *src;                 /* where the last start came from, or NULL */
    char *progress;            /* JSON progress of a running job, or NULL */
    char *tenant;              /* the job's tenant, or NULL */
    char *usage;               /* metering figures of a finished job (aas_usage_t text), or NULL */
    int64_t cancel_requested;  /* 1 once a client asked to cancel it */
} aas_job_info_t;
/** @brief Free the strings and zero the struct. NULL is a no-op. */
void aas_job_info_clear(aas_job_info_t *info);

/*
 * Every job call below validates job_id (and model, worker, version names)
 * with aas_id_valid() and returns AAS_ERR_INVAL before touching Redis.
 * Timestamps (queued_ms, started_ms, finished_ms) come from the Redis
 * server clock.  A connection failure is AAS_ERR_REDIS (retriable).
 */

/**
 * @brief Client side, before publishing: take the job id for this payload
 *        (the field payload_hash of the job hash, set if absent).  An id
 *        that is taken is refused with AAS_ERR_CONFLICT and errstr says
 *        whether by the same payload (resubmit with idempotent = 1) or by
 *        another one; idempotent resubmission of the same payload is
 *        allowed (*resubmit_out = 1).
 * @param payload_hash 16 hex digits (docs/redis.md, "Submitting").
 */
aas_err_t aas_store_job_claim(aas_store_t *st, const char *job_id,
                              const char *payload_hash, int idempotent,
                              int *resubmit_out, char *errstr, size_t errstr_size);

/** One job of aas_store_job_claim_many(). */
typedef struct {
    const char *job_id;        /* in */
    const char *payload_hash;  /* in: 16 hex digits */
    int resubmit;              /* out: 1 = SAME (idempotent resubmission) */
    aas_err_t err;             /* out: this claim's outcome */
    char why[256];             /* out: why, when err */
} aas_store_claim_t;

/**
 * @brief aas_store_job_claim() for many jobs in one round trip per 64
 *        (pipelined), as a client submitting a batch does.  Each item's
 *        err and why are its own outcome (AAS_ERR_CONFLICT as above).
 * @return AAS_ERR_OK when Redis answered (look at each item), else the
 *         connection failure (every item not refused by its own checks
 *         has it too); errstr says the first failure.  Never resent.
 */
aas_err_t aas_store_job_claim_many(aas_store_t *st, int idempotent, aas_store_claim_t *items,
                                   size_t n, char *errstr, size_t errstr_size);

/** @brief The publish failed: release the claim unless the job has a status. */
aas_err_t aas_store_job_unclaim(aas_store_t *st, const char *job_id,
                                const char *payload_hash, char *errstr,
                                size_t errstr_size);

/**
 * @brief Client side: record QUEUED (if the job has no status yet; a job
 *        a worker took already, in any state, is left alone).  Sets the TTL on the hash so
 *        a job that is never run does not stay forever.
 * @param model required, a valid name.
 * @param tenant the job's tenant (a valid id), or NULL / "" for none.
 * @param submit_ms client clock, stored as given.
 */
aas_err_t aas_store_job_queued(aas_store_t *st, const char *job_id,
                               const char *model, const char *tenant, int64_t submit_ms,
                               char *errstr, size_t errstr_size);

/** One job of aas_store_job_queued_many(). */
typedef struct {
    const char *job_id, *model, *tenant;  /* in, as aas_store_job_queued */
    int64_t submit_ms;                    /* in */
    aas_err_t err;                        /* out */
    char why[256];                        /* out: why, when err */
} aas_store_queued_t;

/**
 * @brief aas_store_job_queued() for many jobs in one round trip per 64, as
 *        a client settles a batch of delivery reports.  Returns as
 *        aas_store_job_claim_many(); resent once after a reconnect (it is
 *        create-if-absent).
 */
aas_err_t aas_store_job_queued_many(aas_store_t *st, aas_store_queued_t *items, size_t n,
                                    char *errstr, size_t errstr_size);

/**
 * @brief Worker side: move the job to RUNNING, count an attempt.
 * @param model NULL keeps the stored model.
 * @param src where the job came from (e.g. "topic/partition@offset"), free
 *        text of at most AAS_STORE_SRC_MAX bytes, NULL keeps the stored one.
 * @param status_out the status after the call: RUNNING, or the terminal
 *        status already there (then nothing changed, a skip was counted,
 *        and the caller must not compute).
 * @param attempts_out (may be NULL) attempts counted so far, this one
 *        included, when RUNNING; the worker fails a job that keeps coming
 *        back (e.g. one that crashed workers) after a limit.
 * Not resent after a reconnect (it would count the attempt twice): a
 * connection lost mid-call gives AAS_ERR_REDIS; the job may or may not be
 * RUNNING, and calling start again is correct either way.
 */
aas_err_t aas_store_job_start(aas_store_t *st, const char *job_id,
                              const char *worker_id, const char *model,
                              const char *src, aas_status_t *status_out,
                              int64_t *attempts_out,
                              char *errstr, size_t errstr_size);

/**
 * @brief Worker side: the one atomic step that makes a job terminal: status,
 *        error, finished time, the result bytes, result_writes += 1, a token
 *        pushed on done:{id}, TTL on all keys.
 * @param status must be terminal (else AAS_ERR_INVAL).
 * @param model_version resolved version or NULL.
 * @param result Avro single-object bytes or NULL (then result:{id} is
 *        removed); at most AAS_STORE_RESULT_MAX bytes (AAS_ERR_TOO_LARGE).
 * @param error reason for FAILED/EXPIRED/CANCELLED or NULL; cut to
 *        AAS_STORE_ERROR_MAX bytes.
 * @param written_out 1 if this call wrote; 0 if the job was already
 *        terminal (nothing changed).  Resent once after a reconnect (safe:
 *        a resend finds the job terminal), so 0 can also mean "our first
 *        send landed"; the job is terminal either way.
 */
aas_err_t aas_store_job_finish(aas_store_t *st, const char *job_id,
                               aas_status_t status, const char *model_version,
                               const void *result, size_t result_len,
                               const char *error, int *written_out,
                               char *errstr, size_t errstr_size);

/*
 * The same two worker steps for many jobs in one round trip (pipelined), as
 * a worker does for a batch.  Each item is one job's call with the same
 * meaning and checks as above; item.err is its own outcome.  The return
 * value is AAS_ERR_OK when Redis answered (look at each item.err), or the
 * connection failure (then every item not refused by its own checks has
 * that err too).  errstr says the first failure.  start_many is never
 * resent; finish_many is resent once after a reconnect, as job_finish.
 */
typedef struct {
    const char *job_id, *model, *src;  /* in, as aas_store_job_start */
    const char *tenant;                /* in: recorded when not NULL/"" */
    aas_status_t status;               /* out: RUNNING or the terminal one */
    int64_t attempts;                  /* out */
    aas_err_t err;                     /* out */
} aas_store_start_t;

aas_err_t aas_store_job_start_many(aas_store_t *st, const char *worker_id,
                                   aas_store_start_t *items, size_t n,
                                   char *errstr, size_t errstr_size);

typedef struct {
    const char *job_id;                /* in, as aas_store_job_finish */
    aas_status_t status;
    const char *model_version;
    const void *result;
    size_t result_len;
    const char *error;
    const char *usage;                 /* in: aas_usage_t text kept in the hash, or NULL */
    int written;                       /* out */
    int64_t finished_ms;               /* out: the finish time recorded, when written */
    aas_err_t err;                     /* out */
} aas_store_finish_t;

aas_err_t aas_store_job_finish_many(aas_store_t *st, aas_store_finish_t *items,
                                    size_t n, char *errstr, size_t errstr_size);

/** @brief Read the status hash. AAS_ERR_NOT_FOUND if unknown. */
aas_err_t aas_store_job_get(aas_store_t *st, const char *job_id,
                            aas_job_info_t *info, char *errstr,
                            size_t errstr_size);

/**
 * @brief A waiter's one round trip: if the job is terminal, its status and
 *        result bytes (*buf malloc'ed, caller frees) and *done = 1; else
 *        *done = 0 and nothing else is written.
 * @return as aas_store_result_get when terminal (AAS_ERR_NOT_FOUND without
 *         a result, AAS_ERR_TOO_LARGE over AAS_STORE_RESULT_MAX, checked
 *         server-side).
 */
aas_err_t aas_store_result_if_done(aas_store_t *st, const char *job_id, int *done,
                                   aas_status_t *status, void **buf, size_t *len,
                                   char *errstr, size_t errstr_size);

/**
 * @brief Result bytes (malloc'ed, caller frees). AAS_ERR_NOT_FOUND if none,
 *        AAS_ERR_TOO_LARGE (nothing transferred) above AAS_STORE_RESULT_MAX.
 */
aas_err_t aas_store_result_get(aas_store_t *st, const char *job_id,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size);

/**
 * @brief Block until the job is terminal or timeout_ms passes, without busy
 *        polling (BLPOP on done:{id}; the token is pushed back so other
 *        waiters wake too).  Returns at once if already terminal.
 *        AAS_ERR_TIMEOUT if still not terminal (also for a job Redis does
 *        not know yet: it may not have been recorded).
 * @param timeout_ms >= 0; 0 checks once without blocking.  The connection
 *        is busy for up to timeout_ms; use a handle per waiting thread.
 * @param status_out the terminal status, on success only.
 */
aas_err_t aas_store_job_wait(aas_store_t *st, const char *job_id,
                             int timeout_ms, aas_status_t *status_out,
                             char *errstr, size_t errstr_size);

/** aas_store_result_wait() flag: the job was just published and is most
 *  likely not done, so block on its done token before looking (a job
 *  that ends while waited for then costs two round trips, not three). */
#define AAS_STORE_WAIT_FRESH 1

/**
 * @brief aas_store_job_wait, and the result with it: when the job is
 *        terminal, its status and result bytes (*buf malloc'ed, caller
 *        frees), as aas_store_result_if_done.  Reads the result in the
 *        round trip that finds the job terminal (one after each wake-up),
 *        so a job that ends while waited for costs three round trips, not
 *        five (two with AAS_STORE_WAIT_FRESH).  AAS_ERR_TIMEOUT if not
 *        terminal within timeout_ms; AAS_ERR_NOT_FOUND / AAS_ERR_TOO_LARGE
 *        (with *status set) if terminal without a readable result.
 * @param flags 0 or AAS_STORE_WAIT_FRESH.
 */
aas_err_t aas_store_result_wait(aas_store_t *st, const char *job_id, int timeout_ms,
                                int flags, aas_status_t *status, void **buf, size_t *len,
                                char *errstr, size_t errstr_size);

/*
 * Waiting for many jobs on one connection (docs/redis.md, "Waiting for
 * many jobs").  Every terminal write (finish, a QUEUED job cancelled)
 * PUBLISHes the job's id on <prefix>done.  Pub/sub is at most once: ids
 * published while a subscriber is away are lost, and workers older than
 * this do not publish, so a waiter must still look at the jobs it waits
 * for now and then (and after aas_store_done_read() fails).
 */

/**
 * @brief Put st in subscribed mode on <prefix>done.  From then on st
 *        serves only aas_store_done_read() (make a store of its own for
 *        it); after a failure call this again.  AAS_ERR_REDIS if Redis
 *        cannot be reached.
 */
aas_err_t aas_store_done_subscribe(aas_store_t *st, char *errstr, size_t errstr_size);

/**
 * @brief Ids published on <prefix>done: what is already received, else
 *        what arrives within timeout_ms (at most max; *n = 0 when none).
 * @param ids max slots, each filled with a valid job id.
 * @return AAS_ERR_REDIS when the subscription is lost (then subscribe
 *         again; ids published meanwhile are lost).
 */
aas_err_t aas_store_done_read(aas_store_t *st, int timeout_ms, char (*ids)[AAS_ID_MAX + 1],
                              size_t max, size_t *n, char *errstr, size_t errstr_size);

/**
 * @brief Client side: cancel a job.  A QUEUED job becomes CANCELLED at once
 *        (result = the given record, waiters woken) and no worker will run
 *        it; a RUNNING job gets cancel_requested = 1 and its worker stops it
 *        at its next check (training: the next batch); a terminal job is
 *        left alone.
 * @param result Avro single-object bytes of the CANCELLED result record.
 * @param status_out CANCELLED, RUNNING (requested) or the terminal status
 *        the job already had.
 * @return AAS_ERR_NOT_FOUND if Redis has no such job.
 */
aas_err_t aas_store_job_cancel(aas_store_t *st, const char *job_id,
                               const void *result, size_t result_len,
                               aas_status_t *status_out, char *errstr,
                               size_t errstr_size);

/**
 * @brief Worker side: publish progress (JSON text, at most 64 KiB) of a
 *        RUNNING job and learn whether a client asked to cancel it.
 *        Does nothing to a job that is not RUNNING.
 * @param cancel_out 1 if cancellation was requested.
 */
aas_err_t aas_store_job_progress(aas_store_t *st, const char *job_id,
                                 const char *progress_json, int *cancel_out,
                                 char *errstr, size_t errstr_size);

/* ---- training data sets ----
 * <prefix>dataset:{<name>} (hash, no TTL) holds an uploaded data set;
 * <prefix>datasets (set) names them (docs/redis.md#data-sets).
 *
 * v1 (aas.dataset.v1, binary): chunks c:0, c:1, ... of one byte stream,
 *   bytes, chunks, and the uploader's meta text, written last.
 * v2 (aas.dataset.v2, text lines): chunks c:<i> of whole lines (at most
 *   AAS_STORE_DATASET_CHUNK_MAX bytes each), k:<i> = CRC-64-AVRO of chunk i
 *   (16 hex digits), and bytes, chunks, crc64 (of all the bytes in order),
 *   format=aas.dataset.v2, upload (the upload's id) and meta (JSON).
 *
 * Writing a v2 set streams: aas_store_dataset_begin() opens an upload that
 * writes to a temporary key with the same hash tag,
 * <prefix>dataset:{<name>}:up:<upload id> (TTL one day, so a crashed
 * uploader leaves nothing for good); each aas_store_dataset_append() is
 * one chunk (HSET c:<i>, k:<i>); aas_store_dataset_commit() writes the
 * counts and meta and, in one MULTI/EXEC, PERSISTs the temporary key and
 * RENAMEs it onto the set's key, then SADDs the name to <prefix>datasets.
 * Readers therefore see the old set or the new one whole, never a part;
 * aas_store_dataset_abort() (or a failed commit) deletes the temporary key
 * and leaves the old set as it was.
 *
 * Reading: aas_store_dataset_meta() once, then aas_store_dataset_chunk()
 * per chunk, which checks the chunk's CRC and that the set is still the
 * same upload (a set replaced mid-read is an error, not a mix of two).
 */

/** Largest chunk of a v2 set, bytes. */
#define AAS_STORE_DATASET_CHUNK_MAX ((size_t)1 << 20)

/** @brief Store (replace) v1 data set `name`: len bytes in chunk_bytes
 *         chunks (aas_client_dataset_put()); SADDs the name. */
aas_err_t aas_store_dataset_put(aas_store_t *st, const char *name,
                                const char *meta_json, const void *data,
                                size_t len, size_t chunk_bytes, char *errstr,
                                size_t errstr_size);

/**
 * @brief Read a v1 data set whole.  *meta_json and *data malloc'ed (caller
 *        frees).  AAS_ERR_NOT_FOUND (with a clear errstr) if it is gone or
 *        incomplete, AAS_ERR_TOO_LARGE over max_bytes (checked before
 *        allocating), AAS_ERR_INVAL for a v2 set (read those with
 *        aas_store_dataset_chunk(), or worker/source.h).
 */
aas_err_t aas_store_dataset_get(aas_store_t *st, const char *name,
                                size_t max_bytes, char **meta_json,
                                void **data, size_t *len, char *errstr,
                                size_t errstr_size);

/** @brief Delete a data set (v1 or v2) and SREM its name; AAS_ERR_NOT_FOUND
 *         if there is none. */
aas_err_t aas_store_dataset_delete(aas_store_t *st, const char *name,
                                   char *errstr, size_t errstr_size);

/** An upload in progress (v2); owned by the caller until commit/abort. */
typedef struct aas_store_dataset_up_s aas_store_dataset_up_t;

/**
 * @brief Start uploading v2 set `name` (nothing is written yet).  st is
 *        borrowed and must outlive the upload; same thread.
 * @param out an owned upload: end it with aas_store_dataset_commit() or
 *        aas_store_dataset_abort().
 */
aas_err_t aas_store_dataset_begin(aas_store_t *st, const char *name,
                                  aas_store_dataset_up_t **out, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Write the next chunk: 1..AAS_STORE_DATASET_CHUNK_MAX bytes (the
 *        caller cuts them at line ends).  Its CRC-64-AVRO is computed and
 *        stored beside it.  On failure the upload stays open: abort it.
 */
aas_err_t aas_store_dataset_append(aas_store_dataset_up_t *up, const void *data,
                                   size_t len, char *errstr, size_t errstr_size);

/** @brief What was appended so far: bytes, chunks, the CRC-64-AVRO of all
 *         the bytes in order, and the upload's id (16 hex digits). */
void aas_store_dataset_up_stats(const aas_store_dataset_up_t *up, uint64_t *bytes,
                                int64_t *chunks, uint64_t *crc64,
                                const char **upload_id);

/**
 * @brief Publish the upload as the set: meta_json (the caller's JSON text,
 *        docs/redis.md) with the counts, then PERSIST + RENAME in one
 *        transaction, then SADD the name.  Always consumes up: on failure
 *        the temporary key is deleted and any old set is untouched.  At
 *        least one chunk is required.
 */
aas_err_t aas_store_dataset_commit(aas_store_dataset_up_t *up, const char *meta_json,
                                   char *errstr, size_t errstr_size);

/** @brief Delete the temporary key (best effort) and free up; NULL is a
 *         no-op. */
void aas_store_dataset_abort(aas_store_dataset_up_t *up);

/** What the hash of a set says beside its meta. */
typedef struct {
    int version;          /* 1 (aas.dataset.v1) or 2 (aas.dataset.v2) */
    uint64_t bytes;
    int64_t chunks;
    uint64_t crc64;       /* v2: of all the bytes; v1: 0 (it is in meta) */
    char upload[17];      /* v2: the upload's id; v1: "" */
} aas_store_dataset_info_t;

/**
 * @brief The meta of set `name`: *meta_json malloc'ed (caller frees), and
 *        if info is not NULL the hash's counts.  AAS_ERR_NOT_FOUND if the
 *        set does not exist (or holds no meta), AAS_ERR_DECODE if its
 *        counts are malformed.
 */
aas_err_t aas_store_dataset_meta(aas_store_t *st, const char *name, char **meta_json,
                                 aas_store_dataset_info_t *info, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Chunk i (0-based) of v2 set `name`, as info (from
 *        aas_store_dataset_meta()) describes it: the bytes are checked
 *        against k:<i> (AAS_ERR_DECODE "checksum mismatch") and the set's
 *        upload id against info->upload (AAS_ERR_CONFLICT: the set was
 *        replaced or deleted while being read).  The reply is bounded:
 *        a chunk over AAS_STORE_DATASET_CHUNK_MAX is refused before it is
 *        read.
 * @param data malloc'ed (caller frees), *len bytes.
 */
aas_err_t aas_store_dataset_chunk(aas_store_t *st, const char *name,
                                  const aas_store_dataset_info_t *info, int64_t i,
                                  char **data, size_t *len, char *errstr,
                                  size_t errstr_size);

/**
 * @brief The names in <prefix>datasets whose key still exists, sorted by
 *        strcmp; names whose key is gone are SREM'ed (stale).  *names is
 *        malloc'ed, each name too: free with aas_store_dataset_names_free().
 */
aas_err_t aas_store_dataset_list(aas_store_t *st, char ***names, size_t *n,
                                 char *errstr, size_t errstr_size);

/** @brief Free what aas_store_dataset_list() returned; NULL is a no-op. */
void aas_store_dataset_names_free(char **names, size_t n);

/* ---- the fleet: heartbeats and scheduler decisions ----
 * <prefix>worker:{<id>} (JSON, TTL = liveness), <prefix>workers (set of
 * ids), <prefix>scheduler:decisions:{<group>} (list, newest first, 200
 * kept), <prefix>scheduler:lease:{<group>} (the scheduler that acts for
 * the consumer group: its owner string, TTL = the lease). */

/*
 * How Redis keeps its data, as far as it says.  Each field is 1 (yes),
 * 0 (no) or -1 (Redis would not say: CONFIG renamed away or refused by an
 * ACL, as managed services often do).
 */
typedef struct {
    int aof;           /* appendonly yes (INFO persistence aof_enabled;
                        * CONFIG GET appendonly when INFO is refused) */
    int fsync_always;  /* appendfsync always (CONFIG GET appendfsync): with
                        * aof, no acknowledged write is lost in a crash */
    int rdb;           /* a snapshot policy is set (CONFIG GET save) */
} aas_store_persistence_t;

/**
 * @brief Ask Redis how it persists: INFO persistence, then CONFIG GET
 *        appendonly, appendfsync and save.  A refused command (renamed,
 *        NOPERM) is not an error: its fields stay -1.  Terminal writes
 *        survive a Redis crash only when aof == 1 && fsync_always == 1
 *        (docs/guarantees.md); a worker calls this at start to warn and
 *        set a gauge.
 * @param out written only on success.
 * @return AAS_ERR_OK, or AAS_ERR_REDIS (retriable) when Redis cannot be
 *         reached; errstr says why.
 * Thread-safety: as every call on one aas_store_t (one thread at a time).
 */
aas_err_t aas_store_persistence(aas_store_t *st, aas_store_persistence_t *out,
                                char *errstr, size_t errstr_size);

/** @brief Worker side: publish this worker's heartbeat for ttl_s seconds. */
aas_err_t aas_store_heartbeat(aas_store_t *st, const char *worker_id,
                              const char *json, int ttl_s, char *errstr,
                              size_t errstr_size);

/**
 * @brief Heartbeats of live workers (expired ids are dropped from the set).
 * @param jsons malloc'ed array of n malloc'ed strings; free with
 *        aas_store_list_free().
 */
aas_err_t aas_store_heartbeats(aas_store_t *st, char ***jsons, size_t *n,
                               char *errstr, size_t errstr_size);

/** @brief Append a scheduler decision (JSON) to group's capped log
 *         (group: a consumer group name, aas_id_valid). */
aas_err_t aas_store_decision_log(aas_store_t *st, const char *group, const char *json,
                                 char *errstr, size_t errstr_size);

/** @brief group's newest max decisions (free with aas_store_list_free()). */
aas_err_t aas_store_decisions(aas_store_t *st, const char *group, size_t max, char ***jsons,
                              size_t *n, char *errstr, size_t errstr_size);

/**
 * @brief The scheduler lease of consumer group `group`, in one script:
 *        taken when free, renewed when `owner` holds it (ttl_ms > 0), or
 *        released when owner holds it (ttl_ms == 0).
 * @param held 1 when owner holds it now; else 0 and holder (if not NULL)
 *        gets the holder's owner string ("" when free), left_ms (if not
 *        NULL) its ms left.
 */
aas_err_t aas_store_lease(aas_store_t *st, const char *group, const char *owner,
                          int64_t ttl_ms, int *held, char *holder, size_t holder_size,
                          int64_t *left_ms, char *errstr, size_t errstr_size);

/**
 * @brief A training slot of consumer group `group` for worker_id, in one
 *        script (<prefix>trainslots:{<group>}, a sorted set of worker ids by
 *        the end of their lease): taken when at least `floor` other live
 *        workers of the group (heartbeats naming it) would still hold none,
 *        renewed when worker_id holds one, released when lease_ms == 0.
 *        Leases are timed by Redis' clock.
 * @param held 1 when worker_id holds a slot after the call.
 * @param live, training (may be NULL) the group's live workers and the
 *        slots held (after the call), for the log.
 */
aas_err_t aas_store_train_slot(aas_store_t *st, const char *group, const char *worker_id,
                               int64_t lease_ms, int64_t floor, int *held, int64_t *live,
                               int64_t *training, char *errstr, size_t errstr_size);

/** @brief Who holds group's scheduler lease, without taking it: holder ""
 *         and *left_ms 0 when nobody does. */
aas_err_t aas_store_lease_holder(aas_store_t *st, const char *group, char *holder,
                                 size_t holder_size, int64_t *left_ms, char *errstr,
                                 size_t errstr_size);

/** @brief Free a string list returned above.  NULL is a no-op. */
void aas_store_list_free(char **items, size_t n);

/* ---- model registry ----
 * model:{name} holds immutable numbered versions 1, 2, ...; numbers are
 * never reused, even after a delete, so (name, version) always means the
 * same bytes.  Blobs and metadata are opaque here.  Version 0 in a lookup
 * means "latest". */

/**
 * @brief Store a new immutable version of `name` (version = previous + 1),
 *        make it latest.  meta_json may be NULL.
 * @param blob 1..AAS_STORE_BLOB_MAX bytes, copied.
 * @param meta_json at most AAS_STORE_META_MAX bytes, stored as given.
 * Not resent after a reconnect (it would store a second version).
 */
aas_err_t aas_store_model_put(aas_store_t *st, const char *name,
                              const void *blob, size_t len,
                              const char *meta_json, int64_t *version_out,
                              char *errstr, size_t errstr_size);

/**
 * @brief Fetch a model blob. version 0 = latest.  *blob malloc'ed (caller
 *        frees); *version_out the resolved version.  AAS_ERR_UNKNOWN_MODEL
 *        if the name or version does not exist.  max_len bounds the blob.
 */
aas_err_t aas_store_model_get(aas_store_t *st, const char *name,
                              int64_t version, size_t max_len, void **blob,
                              size_t *len, int64_t *version_out, char *errstr,
                              size_t errstr_size);

/** @brief Resolve latest version without fetching the blob.
 *         AAS_ERR_UNKNOWN_MODEL if the model has no version. */
aas_err_t aas_store_model_latest(aas_store_t *st, const char *name,
                                 int64_t *version_out, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Names of all models with at least one version, sorted.
 * @param names out: malloc'ed array of malloc'ed strings, free with
 *        aas_store_model_list_free(); *n its length (may be 0).
 */
aas_err_t aas_store_model_list(aas_store_t *st, char ***names, size_t *n,
                               char *errstr, size_t errstr_size);
/** @brief Free what aas_store_model_list() returned. NULL is a no-op. */
void aas_store_model_list_free(char **names, size_t n);

/**
 * @brief The versions of `name` present, ascending.
 * @param versions out: malloc'ed array (caller frees), *n >= 1 entries.
 * @return AAS_ERR_UNKNOWN_MODEL if the model has no version.
 */
aas_err_t aas_store_model_versions(aas_store_t *st, const char *name,
                                   int64_t **versions, size_t *n,
                                   char *errstr, size_t errstr_size);

/**
 * @brief Metadata and creation time (Redis server clock, unix ms) of one
 *        version (0 = latest).
 * @param meta_json out, may be NULL: malloc'ed copy (caller frees), or NULL
 *        if the version was stored without metadata.
 * @param created_ms out, may be NULL.
 * @return AAS_ERR_UNKNOWN_MODEL if the name or version does not exist.
 */
aas_err_t aas_store_model_meta(aas_store_t *st, const char *name,
                               int64_t version, char **meta_json,
                               int64_t *created_ms, char *errstr,
                               size_t errstr_size);

/**
 * @brief Delete one version (>= 1; 0 is refused, a delete is never
 *        implicit).  If it was latest, latest moves to the highest remaining
 *        version; when none remains the name leaves the models set (the
 *        counter stays, so numbers are not reused).  Workers that cached the
 *        version keep their copy.
 * @return AAS_ERR_UNKNOWN_MODEL if that version does not exist.
 */
aas_err_t aas_store_model_delete(aas_store_t *st, const char *name,
                                 int64_t version, char *errstr,
                                 size_t errstr_size);

/* ---- sweeps (docs/training.md#sweeps) ----
 * <prefix>sweep:{<id>} (hash, TTL ttl_s after its last write): the record
 * a sweep's coordinator (aas-producer sweep) keeps, field -> JSON value:
 * "meta" (the sweep's settings), "trial:<rung>:<config>" (one trial each),
 * "result" (the best trial and the version registered). */

/* Largest value and most fields of a sweep's record. */
#define AAS_STORE_SWEEP_VALUE_MAX (64 * 1024)
#define AAS_STORE_SWEEP_FIELDS_MAX 4096

/** @brief Set one field of sweep id's record (id by the id rule). */
aas_err_t aas_store_sweep_put(aas_store_t *st, const char *id, const char *field,
                              const char *value, char *errstr, size_t errstr_size);

/**
 * @brief The whole record of sweep id, unsorted.
 * @param out malloc'ed fields (key = field, value = its value), free with
 *        aas_store_sweep_free(*out, *n).
 * @return AAS_ERR_NOT_FOUND if there is no such sweep.
 */
aas_err_t aas_store_sweep_read(aas_store_t *st, const char *id, aas_kv_t **out, size_t *n,
                               char *errstr, size_t errstr_size);
void aas_store_sweep_free(aas_kv_t *v, size_t n);

/* ---- serving options ----
 * How workers serve a model, stored per name beside its versions (fields
 * opt:precision, opt:batch_max_rows, opt:batch_max_delay_us of
 * model:{name}).  They belong to the name, not to a version: they apply to
 * every version, survive new versions and version deletes, and change
 * without re-uploading a blob.  Workers re-read them with `latest`, every
 * model.refresh.ms.  A field that is absent means "not set": precision f32,
 * batching limits from the worker's own batch.max.rows / batch.max.delay.us.
 * The store checks values on write and on read; what a reader does with a
 * corrupt value is its choice (the worker fails the model's jobs, naming
 * the field). */

#define AAS_STORE_OPT_PRECISION_MAX 8          /* "bf16" + NUL, with room */
#define AAS_STORE_BATCH_ROWS_MAX 4096          /* opt:batch_max_rows 1.. */
#define AAS_STORE_BATCH_DELAY_US_MAX 1000000   /* opt:batch_max_delay_us 0.. */

typedef struct {
    /* "f32", "bf16" or "int8" (the names model.h's aas_precision_parse
     * knows), or "" = not set (f32). */
    char precision[AAS_STORE_OPT_PRECISION_MAX];
    int32_t batch_max_rows;     /* 1..AAS_STORE_BATCH_ROWS_MAX, -1 = not set */
    int32_t batch_max_delay_us; /* 0..AAS_STORE_BATCH_DELAY_US_MAX, -1 = not set */
} aas_store_model_opts_t;

/* Which fields aas_store_model_opts_set() writes (bit mask). */
#define AAS_STORE_OPT_PRECISION 1u
#define AAS_STORE_OPT_BATCH_ROWS 2u
#define AAS_STORE_OPT_BATCH_DELAY 4u
#define AAS_STORE_OPT_ALL 7u

/** @brief Every field "not set". */
void aas_store_model_opts_init(aas_store_model_opts_t *opts);

/**
 * @brief Check the fields named in `fields` (a not-set value is valid).
 *        AAS_ERR_INVAL with errstr naming the field, its value and the
 *        allowed range.  Pure; thread-safe.
 */
aas_err_t aas_store_model_opts_check(const aas_store_model_opts_t *opts,
                                     unsigned fields, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Write the serving options of `name` named in `fields`: a set value
 *        is stored, a not-set one removes its field; the others are left as
 *        they are.  The model need not have a version yet (register sets
 *        them first, so no worker loads the new version without them).
 *        Validated first (AAS_ERR_INVAL, nothing written).  One HSET, then
 *        one HDEL if some field is cleared: each field changes atomically,
 *        a reader between the two sees a mix of old and new fields.
 *        Idempotent, resent once after a reconnect.
 */
aas_err_t aas_store_model_opts_set(aas_store_t *st, const char *name,
                                   const aas_store_model_opts_t *opts,
                                   unsigned fields, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Read the serving options of `name` (all "not set" for a model
 *        with none, or with no version at all).
 * @param opts written on success only.
 * @return AAS_ERR_DECODE when a stored value is not valid (someone wrote
 *         the hash by hand): errstr names the field and the value.
 */
aas_err_t aas_store_model_opts_get(aas_store_t *st, const char *name,
                                   aas_store_model_opts_t *opts, char *errstr,
                                   size_t errstr_size);

/* ---- API keys (the HTTP gateway, signed jobs) ----
 * <prefix>apikeys (hash, no TTL): field = SHA-256 of a key (64 hex, see
 * apikey.h), value = "TENANT SCOPES" (e.g. "acme infer,train").  The key
 * itself is never stored (docs/http.md#access).
 */
typedef struct {
    char hash[65];
    char *tenant;
    char scopes[32];
} aas_store_apikey_t;

/** @brief Add a key hash for tenant; AAS_ERR_CONFLICT if that hash is
 *         there already (HSETNX: an existing entry is never changed). */
aas_err_t aas_store_apikey_put(aas_store_t *st, const char *hash_hex, const char *tenant,
                               const char *scopes, char *errstr, size_t errstr_size);
/** @brief Remove a key hash; AAS_ERR_NOT_FOUND if it was not there. */
aas_err_t aas_store_apikey_delete(aas_store_t *st, const char *hash_hex, char *errstr,
                                  size_t errstr_size);
/**
 * @brief Every key entry, sorted by tenant then hash.  Entries that are not
 *        ours (bad hash, tenant or value) are skipped with a WARN line.
 *        At most AAS_STORE_APIKEYS_MAX (AAS_ERR_TOO_LARGE above).
 * @param out owned array: free with aas_store_apikeys_free(out, n).
 */
#define AAS_STORE_APIKEYS_MAX 100000
aas_err_t aas_store_apikey_all(aas_store_t *st, aas_store_apikey_t **out, size_t *n,
                               char *errstr, size_t errstr_size);
void aas_store_apikeys_free(aas_store_apikey_t *a, size_t n);
/**
 * @brief Every key entry as a lookup table (apikey.h), as the gateway
 *        (gateway.auth = redis) and a worker checking signed jobs
 *        (worker.auth = keys) load it.
 * @param out owned: free with aas_apikey_table_destroy.
 */
aas_err_t aas_store_apikey_table(aas_store_t *st, aas_apikey_table_t **out, char *errstr,
                                 size_t errstr_size);

/* ---- usage metering (docs/sharing.md#metering) ----
 * <prefix>usage:{<tenant>}:<hour> (hash, no TTL): "<model>|<counter>" summed
 *   over the jobs that finished in that hour (hour = unix ms / 3600000),
 *   counters jobs, failed, rows, compute_us, queue_ms, bytes_in, bytes_out,
 *   sample_epochs;
 * <prefix>usage:{<tenant>}:<hour>:jobs (set, TTL redis.ttl.s + 1 h): ids
 *   counted, so a job counts once however often it is metered;
 * <prefix>usage:tenants (set): every tenant metered.
 * A job without a tenant is metered as tenant "default".
 */
typedef struct {
    int64_t rows;            /* input rows (a text job: 1) */
    int64_t compute_us;      /* its share of the compute it ran in */
    int64_t queue_ms;        /* submit -> a worker took it */
    int64_t bytes_in;        /* the job's message */
    int64_t bytes_out;       /* its result record */
    int64_t sample_epochs;   /* training: examples x epochs */
} aas_usage_t;

#define AAS_USAGE_TEXT_MAX 160
/** @brief The hash field form: six decimal numbers, space separated. */
void aas_usage_format(const aas_usage_t *u, char *buf, size_t size);
/** @brief Parse aas_usage_format's text; 0, or -1 if it is not one. */
int aas_usage_parse(const char *s, aas_usage_t *u);

typedef struct {
    const char *job_id;      /* in */
    const char *tenant;      /* in: a valid id, or NULL / "" = "default" */
    const char *model;       /* in: a valid name */
    int failed;              /* in: 1 unless SUCCEEDED */
    int64_t finished_ms;     /* in: the finish time recorded (its hour is the bucket) */
    aas_usage_t usage;       /* in */
    int counted;             /* out: 1 counted now, 0 counted before */
    aas_err_t err;           /* out */
} aas_store_meter_t;

/**
 * @brief Count each finished job once in its tenant's hour (one pipelined
 *        round trip, then one SADD of the new tenants), and release its
 *        quota slot in the same script (as aas_store_quota_release_many
 *        does; the quota and usage keys share the tenant's hash tag).
 *        Safe to repeat: a job counted before is not counted again, and
 *        a release is idempotent.  An item with err set (invalid fields)
 *        was neither counted nor released.
 * @return a connection failure for every item (retriable), else
 *         AAS_ERR_OK with per-item err.
 */
aas_err_t aas_store_usage_meter_many(aas_store_t *st, aas_store_meter_t *items, size_t n,
                                     char *errstr, size_t errstr_size);

/** One tenant's usage of one model in one hour. */
typedef struct {
    char *tenant, *model;
    int64_t hour;            /* unix ms / 3600000 */
    int64_t jobs, failed;
    aas_usage_t u;
} aas_usage_row_t;

/**
 * @brief The hourly rows of tenant (NULL: every metered tenant) with
 *        since_hour <= hour < until_hour, sorted by tenant, hour, model.
 * @param out owned: free with aas_usage_rows_free(out, n).
 */
aas_err_t aas_store_usage_read(aas_store_t *st, const char *tenant, int64_t since_hour,
                               int64_t until_hour, aas_usage_row_t **out, size_t *n,
                               char *errstr, size_t errstr_size);
void aas_usage_rows_free(aas_usage_row_t *rows, size_t n);

/* ---- per-tenant quotas (docs/sharing.md#quotas) ----
 * <prefix>quota:{<tenant>} (hash, no TTL): rate (jobs/s, decimal, may be
 *   fractional; absent or 0 = no rate limit), burst (bucket size; absent =
 *   max(1, rate)), inflight (most jobs admitted and not terminal; absent or
 *   0 = unlimited), and the bucket's state: tokens, ts (Redis ms);
 * <prefix>quota:{<tenant>}:inflight (sorted set, TTL ttl_s after the last
 *   admission): job ids admitted and not yet terminal, scored by admission
 *   time (Redis ms); entries older than ttl_s are pruned (a job lost before
 *   it ended frees its slot then);
 * <prefix>quota:tenants (set): the tenants with a quota, for listing.
 * A tenant without a quota is unlimited; a job without a tenant is
 * counted as tenant "default" (a quota set for "default" applies to it).
 */
typedef enum {
    AAS_QUOTA_NONE = 0,   /* the tenant has no quota: unlimited */
    AAS_QUOTA_OK,         /* admitted now: one token taken, the id in flight */
    AAS_QUOTA_AGAIN,      /* admitted before (same id): nothing taken */
    AAS_QUOTA_RATE,       /* refused: no token in the bucket */
    AAS_QUOTA_INFLIGHT    /* refused: the in-flight limit is reached */
} aas_quota_verdict_t;

typedef struct {
    double rate;          /* jobs/s; 0 = no rate limit */
    double burst;         /* bucket size; 0 in a set call = default max(1, rate) */
    int64_t inflight;     /* 0 = no in-flight limit */
} aas_quota_t;

typedef struct {
    aas_quota_verdict_t verdict;
    int64_t retry_ms;     /* RATE / INFLIGHT: when to try again (INFLIGHT: a hint) */
    aas_quota_t quota;    /* the tenant's limits (not NONE) */
    int64_t inflight_now; /* jobs in flight after the call */
} aas_quota_admit_t;

/* The retry hint of an in-flight refusal: when a slot frees is not known. */
#define AAS_QUOTA_INFLIGHT_RETRY_MS 1000
/* Largest rate and burst accepted (a sanity bound on typing errors). */
#define AAS_QUOTA_RATE_MAX 1e6

/** @brief The tenant a job is counted under: tenant, or "default". */
const char *aas_quota_tenant(const char *tenant);

/**
 * @brief Admit job_id against tenant's quota, atomically (one script, Redis
 *        clock): prune stale in-flight ids, check the in-flight limit, refill
 *        and take a token, add the id.  An id admitted before is admitted
 *        again without a token (a retried submission).  Safe to resend.
 * @param tenant a valid id, or NULL / "" for "default".
 * @param out written on success (AAS_ERR_OK whatever the verdict).
 * @return AAS_ERR_INVAL for an invalid id or tenant; AAS_ERR_REDIS.
 */
aas_err_t aas_store_quota_admit(aas_store_t *st, const char *tenant, const char *job_id,
                                aas_quota_admit_t *out, char *errstr, size_t errstr_size);

/** One job of aas_store_quota_admit_many(). */
typedef struct {
    const char *tenant;      /* in: a valid id, or NULL / "" = "default" */
    const char *job_id;      /* in */
    aas_quota_admit_t res;   /* out, when err is AAS_ERR_OK */
    aas_err_t err;           /* out */
} aas_store_quota_item_t;

/**
 * @brief Worker side: admit many jobs in one pipelined round trip, as
 *        aas_store_quota_admit() each, except that the in-flight limit
 *        only counts (a job is added, never refused for it): a worker
 *        waiting for a slot could wait on jobs queued behind it in its
 *        own partition (docs/sharing.md#quotas).  Safe to resend.
 * @return a connection failure for every item (retriable), else
 *         AAS_ERR_OK with per-item err.
 */
aas_err_t aas_store_quota_admit_many(aas_store_t *st, aas_store_quota_item_t *items, size_t n,
                                     char *errstr, size_t errstr_size);

/** @brief 1 if some tenant had a quota when last asked (at most once a
 *         second per handle; unknown counts as 1): a worker admits nothing
 *         while none has (no round trip per window), so a quota set holds
 *         jobs no client admitted from up to a second later. */
int aas_store_quotas_active(aas_store_t *st);

/** @brief How many tenants have a quota (SCARD <p>quota:tenants): a worker
 *         skips admitting while there are none. */
aas_err_t aas_store_quota_count(aas_store_t *st, int64_t *n, char *errstr, size_t errstr_size);

/**
 * @brief The jobs ids[i] (tenants[i], NULL/"" = "default") leave their
 *        tenants' in-flight sets, in one pipelined round trip.  Idempotent.
 *        Entries with an invalid id or tenant are skipped.
 */
aas_err_t aas_store_quota_release_many(aas_store_t *st, const char *const *tenants,
                                       const char *const *ids, size_t n, char *errstr,
                                       size_t errstr_size);

/** @brief The refusal as a sentence ("tenant acme is over its rate quota
 *         (5 jobs/s, burst 10): retry in 180 ms"). */
void aas_quota_refusal_format(const char *tenant, const aas_quota_admit_t *a, char *buf,
                              size_t size);

/**
 * @brief Set (replace) tenant's quota: rate >= 0, burst 0 (default) or
 *        >= 1, inflight >= 0; at least one limit.  The bucket's tokens are
 *        kept.  AAS_ERR_INVAL naming the bad value.
 */
aas_err_t aas_store_quota_set(aas_store_t *st, const char *tenant, const aas_quota_t *q,
                              char *errstr, size_t errstr_size);

/** @brief Remove tenant's quota and its in-flight set (the tenant is then
 *         unlimited); AAS_ERR_NOT_FOUND if it had none. */
aas_err_t aas_store_quota_delete(aas_store_t *st, const char *tenant, char *errstr,
                                 size_t errstr_size);

typedef struct {
    char *tenant;
    aas_quota_t quota;      /* burst resolved (never 0) */
    int64_t inflight_now;   /* ids in flight (not stale) */
    double tokens_now;      /* the bucket now; -1 without a rate limit */
} aas_quota_row_t;

/**
 * @brief Every tenant with a quota, sorted by name, with its state now.
 * @param out owned: free with aas_quota_rows_free(out, n).
 */
aas_err_t aas_store_quota_list(aas_store_t *st, aas_quota_row_t **out, size_t *n,
                               char *errstr, size_t errstr_size);
void aas_quota_rows_free(aas_quota_row_t *rows, size_t n);

/* ---- data-parallel training (docs/training.md#data-parallel-training) ----
 * <prefix>dp:{<job>}:g:<r> (string, TTL ttl_s): the global state at the
 *   start of round r (train_dp.h's bytes), written by the coordinator;
 * <prefix>dp:{<job>}:s:<r>:<i>: shard i's state after round r, written by
 *   the worker that ran the shard (or the coordinator, which redoes a
 *   shard that is late: the same bytes either way);
 * <prefix>dp:{<job>}:round: the latest global round written (decimal);
 * <prefix>dp:{<job>}:stop: "done", "cancelled" or "failed: ...", once the
 *   coordinator stops, so the shards stop too;
 * <prefix>dp:{<job>}:shards: the shard count parallelism=auto chose
 *   (decimal), so a replacement coordinator keeps it;
 * <prefix>dp:{<job>}:lease: the coordinator's lease (its owner string,
 *   PX = the lease).
 * A round's keys are deleted once the next global state is written.
 */
/** @brief Write a global (global = 1, shard ignored) or shard state. */
aas_err_t aas_store_dp_put(aas_store_t *st, const char *job, int global, int64_t round,
                           int shard, const void *state, size_t len, char *errstr,
                           size_t errstr_size);
/** @brief Read one: AAS_ERR_NOT_FOUND if absent, AAS_ERR_TOO_LARGE over
 *         max_len. *state is owned (free()). */
aas_err_t aas_store_dp_get(aas_store_t *st, const char *job, int global, int64_t round,
                           int shard, size_t max_len, void **state, size_t *len,
                           char *errstr, size_t errstr_size);
/** @brief The latest global round: set it, read it (-1 when none). */
aas_err_t aas_store_dp_set_round(aas_store_t *st, const char *job, int64_t round, char *errstr,
                                 size_t errstr_size);
aas_err_t aas_store_dp_round(aas_store_t *st, const char *job, int64_t *round, char *errstr,
                             size_t errstr_size);
/** @brief The stop flag: set it; read it ("" while running). */
aas_err_t aas_store_dp_stop(aas_store_t *st, const char *job, const char *why, char *errstr,
                            size_t errstr_size);
aas_err_t aas_store_dp_stopped(aas_store_t *st, const char *job, char *why, size_t size,
                               char *errstr, size_t errstr_size);
/** @brief The coordinator's lease of job, as aas_store_lease does for a
 *         group's scheduler: taken when free, renewed when owner holds
 *         it (ttl_ms > 0), released (ttl_ms == 0). */
aas_err_t aas_store_dp_lease(aas_store_t *st, const char *job, const char *owner, int64_t ttl_ms,
                             int *held, char *holder, size_t holder_size, int64_t *left_ms,
                             char *errstr, size_t errstr_size);
/** @brief The job's shard count: *shards is recorded unless one already
 *         is (SET NX), and *shards is set to the recorded one. */
aas_err_t aas_store_dp_shards(aas_store_t *st, const char *job, int *shards, char *errstr,
                              size_t errstr_size);
/** @brief Delete round r's global and shard states (shards of them). */
aas_err_t aas_store_dp_forget_round(aas_store_t *st, const char *job, int64_t round, int shards,
                                    char *errstr, size_t errstr_size);

#endif
