/*
 * job.h - jobs and results as plain C values, and the rules every id obeys.
 *
 * These structs are what the codec decodes into and encodes from; they know
 * nothing about Avro, Kafka or Redis.  Ids (job ids, model names, versions,
 * worker ids) are validated here and nowhere else: Redis keys are built only
 * from strings that passed aas_id_valid().
 *
 * Ownership: a job or result owns every pointer inside it; free with
 * aas_job_clear() / aas_result_clear().  Not thread-safe per object.
 */
#ifndef AAS_JOB_H
#define AAS_JOB_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "tensor.h"

/* Job ids and model names: [A-Za-z0-9_.-]{1,128}, not starting with '.' or
 * '-'.  No ':', '{', '}' or whitespace, so ids cannot forge Redis keys or
 * hash tags. */
#define AAS_ID_MAX 128

/* Order and names are the Avro enum aas.v1.JobKind. */
typedef enum { AAS_JOB_INFER = 0, AAS_JOB_TRAIN = 1 } aas_job_kind_t;

/* Order and names are the Avro enum aas.v1.Status and the Redis status
 * field. QUEUED and RUNNING are the only non-terminal states. */
typedef enum {
    AAS_STATUS_QUEUED = 0,
    AAS_STATUS_RUNNING = 1,
    AAS_STATUS_SUCCEEDED = 2,
    AAS_STATUS_FAILED = 3,
    AAS_STATUS_EXPIRED = 4,
    AAS_STATUS_CANCELLED = 5,
    AAS_STATUS__COUNT
} aas_status_t;

typedef struct {
    char *key;
    char *value;
} aas_kv_t;

typedef struct {
    char *id;                /* validated id */
    aas_job_kind_t kind;
    char *model;             /* validated name */
    char *model_version;     /* NULL = latest */
    aas_tensor_t *inputs;
    size_t n_inputs;
    char *text;              /* NULL if absent */
    aas_kv_t *params;
    size_t n_params;
    int32_t priority;        /* higher first; default 0 */
    int64_t deadline_ms;     /* unix ms; 0 = none */
    int64_t submit_ms;       /* unix ms, set by the client */
    char *tenant;            /* validated id, or NULL (metered as "default") */
} aas_job_t;

/* One row's prediction, for classifier models. */
typedef struct {
    int32_t label;           /* argmax class index */
    char *name;              /* class name if the model has names, or NULL */
    float probability;       /* of that class */
} aas_prediction_t;

typedef struct {
    int64_t queue_ms;        /* submit -> worker took it */
    int64_t decode_us;
    int64_t compute_us;
    int64_t total_us;        /* worker took it -> result ready */
} aas_timings_t;

typedef struct {
    char *job_id;
    aas_status_t status;
    char *model;             /* NULL if unknown */
    char *model_version;     /* resolved version, NULL if unknown */
    aas_tensor_t *outputs;
    size_t n_outputs;
    aas_prediction_t *predictions;
    size_t n_predictions;
    char *error;             /* NULL unless FAILED/EXPIRED/CANCELLED */
    aas_timings_t timings;
    char *worker_id;
    int64_t finished_ms;
} aas_result_t;

/** @brief 1 if s is a valid id/model name (see AAS_ID_MAX comment). */
int aas_id_valid(const char *s);

/** @brief "QUEUED", ...; "?" if out of range. */
const char *aas_status_name(aas_status_t s);
/** @brief Parse a status name; AAS_ERR_INVAL if unknown. */
aas_err_t aas_status_parse(const char *s, aas_status_t *out);
/** @brief 1 for SUCCEEDED, FAILED, EXPIRED, CANCELLED. */
int aas_status_is_terminal(aas_status_t s);
/**
 * @brief The state machine: may a job in `from` move to `to`?
 *        QUEUED->RUNNING|any terminal, RUNNING->RUNNING (retry)|terminal,
 *        terminal->nothing.  A fresh job may start at QUEUED or RUNNING.
 */
int aas_status_transition_ok(aas_status_t from, aas_status_t to);

/** @brief Value of params[key] or NULL. Borrowed, valid while job lives. */
const char *aas_job_param(const aas_job_t *job, const char *key);


/** @brief Free everything the job owns and zero it. NULL is a no-op. */
void aas_job_clear(aas_job_t *job);
/** @brief Free everything the result owns and zero it. NULL is a no-op. */
void aas_result_clear(aas_result_t *res);

/** @brief Wall clock in unix milliseconds. */
int64_t aas_now_ms(void);
/** @brief Monotonic clock in microseconds. */
int64_t aas_mono_us(void);
/** @brief The CLOCK_MONOTONIC time ms from now: the deadline of a
 *         pthread_cond_timedwait() on a condition variable set to that
 *         clock (waits then ignore changes of the wall clock). */
struct timespec aas_mono_deadline(int64_t ms);

#endif
