/*
 * err.h - the one error type of aas.
 *
 * Every function that can fail returns aas_err_t.  The table below generates
 * the enum, aas_err_name() ("AAS_ERR_DECODE"), aas_err_str() (a sentence) and
 * aas_err_is_retriable(): the worker retries a job later on a retriable error
 * (the fault is in the environment: Redis or the broker is away) and marks the
 * job FAILED on any other (the fault is in the job).
 *
 * Thread-safe: all functions are pure.
 */
#ifndef AAS_ERR_H
#define AAS_ERR_H

#include <stddef.h>

/*  X(name, message, retriable) */
#define AAS_ERR_MAP(X)                                                        \
    X(OK, "success", 0)                                                       \
    X(INVAL, "invalid argument", 0)                                           \
    X(NOMEM, "out of memory", 0)                                              \
    X(DECODE, "malformed message", 0)                                         \
    X(UNKNOWN_SCHEMA, "unknown schema fingerprint", 0)                        \
    X(UNKNOWN_MODEL, "unknown model", 0)                                      \
    X(SHAPE, "wrong tensor shape or dtype", 0)                                \
    X(TOO_LARGE, "size limit exceeded", 0)                                    \
    X(NONFINITE, "NaN or Inf in a tensor", 0)                                 \
    X(MODEL_FORMAT, "malformed model file", 0)                                \
    X(DNN, "oneDNN call failed", 0)                                           \
    X(NOT_FOUND, "not found", 0)                                              \
    X(CONFLICT, "state conflict", 0)                                          \
    X(REDIS, "Redis unavailable or failed", 1)                                \
    X(KAFKA, "Kafka unavailable or failed", 1)                                \
    X(TIMEOUT, "timed out", 1)                                                \
    X(IO, "I/O error", 1)                                                     \
    X(QUOTA, "over the tenant's quota", 1)                                    \
    X(AUTH, "not authenticated", 0)

typedef enum {
#define AAS_ERR_ENUM_(name, msg, retry) AAS_ERR_##name,
    AAS_ERR_MAP(AAS_ERR_ENUM_)
#undef AAS_ERR_ENUM_
    AAS_ERR__COUNT
} aas_err_t;

/** @brief Symbolic name, e.g. "AAS_ERR_DECODE". Never NULL. */
const char *aas_err_name(aas_err_t err);
/** @brief Human-readable sentence. Never NULL. */
const char *aas_err_str(aas_err_t err);
/** @brief 1 if a later retry of the same operation may succeed. */
int aas_err_is_retriable(aas_err_t err);

/**
 * @brief Write printf-style text into errstr (may be NULL / size 0) and
 *        return err, so a failure site is one line:
 *        return aas_err_set(errstr, size, AAS_ERR_SHAPE, "want %d", n);
 */
aas_err_t aas_err_set(char *errstr, size_t errstr_size, aas_err_t err,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
