/*
 * kafka.h - librdkafka set-up shared by the programs.
 *
 * Builds an rd_kafka_conf_t from our configuration (every kafka.* key, plus
 * the defaults each role needs), routes librdkafka's logs and errors through
 * aas logging, maps librdkafka errors to aas_err_t, and tells when a client
 * cannot authenticate (aas_kafka_auth_t).  It does not decide what to
 * consume or produce, nor how long to wait; the programs do.
 *
 * Threading: functions are thread-safe; the handles they create follow
 * librdkafka's rules.
 */
#ifndef AAS_KAFKA_H
#define AAS_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "err.h"

/**
 * @brief New rd_kafka_conf_t: `defaults` (NULL-terminated key, value pairs
 *        applied first, so configuration overrides them), then every kafka.*
 *        key of conf that librdkafka documents for this type of client
 *        (a consumer-only key such as fetch.wait.max.ms is not given to a
 *        producer).  Logging and error callbacks go to aas logging under
 *        `component`.  *out owned by caller on success (rd_kafka_new takes
 *        it).
 * @param type RD_KAFKA_CONSUMER or RD_KAFKA_PRODUCER (also for admin use).
 */
aas_err_t aas_kafka_conf_new(const aas_conf_t *conf, const char *component,
                             rd_kafka_type_t type, const char *const *defaults,
                             rd_kafka_conf_t **out, char *errstr,
                             size_t errstr_size);

/** @brief Set one property, errors into errstr naming the key. */
aas_err_t aas_kafka_conf_set(rd_kafka_conf_t *kc, const char *key,
                             const char *value, char *errstr,
                             size_t errstr_size);

/**
 * @brief The group.id kc will use (our default or the configuration's
 *        kafka.group.id, whichever aas_kafka_conf_new() left), into buf.
 *        Call it before rd_kafka_new() takes kc.
 * @return AAS_ERR_INVAL if kc has no group.id or it does not fit size, with
 *         errstr; buf is written only on success.  Thread-safe for
 *         distinct kc.
 */
aas_err_t aas_kafka_conf_group(const rd_kafka_conf_t *kc, char *buf, size_t size,
                               char *errstr, size_t errstr_size);

/** @brief librdkafka error -> aas error (transient ones are retriable). */
aas_err_t aas_kafka_err(rd_kafka_resp_err_t err);

/*
 * Authentication failures.  librdkafka does not treat a refused login as
 * fatal: it reports it as an error event (RD_KAFKA_RESP_ERR__AUTHENTICATION,
 * __SSL for a TLS handshake; served only by rd_kafka_poll() and friends)
 * and keeps reconnecting, so a program waiting for metadata or delivery
 * reports waited its whole timeout and then said "Message timed out".  An
 * aas_kafka_auth_t keeps what a client needs to stop at once and say why:
 * the last such failure librdkafka reported, and which brokers are up now
 * (an on_broker_state_change interceptor; "UP" means authenticated).
 */
typedef struct aas_kafka_auth_s aas_kafka_auth_t;

/** @brief New, empty (no failure seen).  *out owned by the caller. */
aas_err_t aas_kafka_auth_new(aas_kafka_auth_t **out, char *errstr, size_t errstr_size);

/** @brief Free; NULL is a no-op.  Only after rd_kafka_destroy() of every
 *         client that a watches (its interceptor holds a). */
void aas_kafka_auth_destroy(aas_kafka_auth_t *a);

/**
 * @brief Have `a` follow the broker states of the client rd_kafka_new()
 *        makes from kc (an interceptor on kc, with a as its opaque; a
 *        must outlive that client).  Call before rd_kafka_new().  The
 *        failures themselves come from aas_kafka_error_note(), which the
 *        caller's error callback calls (librdkafka gives an error callback
 *        only the client's own opaque).  Thread-safe for distinct kc.
 */
aas_err_t aas_kafka_auth_watch(aas_kafka_auth_t *a, rd_kafka_conf_t *kc, char *errstr,
                               size_t errstr_size);

/**
 * @brief What the error callback of aas_kafka_conf_new() does (log the
 *        error; an authentication failure at level error, with what to
 *        check), and record an authentication failure in `a` (NULL: only
 *        log).  For a client that sets an error callback of its own.
 *        Thread-safe (a is locked).
 */
void aas_kafka_error_note(aas_kafka_auth_t *a, rd_kafka_t *rk, int err, const char *reason);

/**
 * @brief AAS_ERR_AUTH if rk cannot authenticate now: no broker of it is up,
 *        and librdkafka reported a SASL authentication failure or a TLS
 *        handshake failure since one last was (or, before any broker ever
 *        stayed up, that the broker closed a plaintext connection at once:
 *        librdkafka's "broker might require SASL authentication").  errstr
 *        then says so with librdkafka's reason, the mechanism and user,
 *        and which kafka.* keys to check; never a password.  AAS_ERR_OK
 *        otherwise, errstr untouched.  a NULL: AAS_ERR_OK.  It reads only
 *        what the error callback has recorded: a client serves its error
 *        events (rd_kafka_poll()) before asking.  Thread-safe.
 */
aas_err_t aas_kafka_auth_check(aas_kafka_auth_t *a, rd_kafka_t *rk, char *errstr,
                               size_t errstr_size);

/**
 * @brief 1 once a broker of the client has been up (connected and
 *        authenticated), 0 while none ever was.  A producer that never had
 *        a broker up has no topic metadata: every message it holds waits
 *        unpartitioned, without an idempotence sequence number, so
 *        rd_kafka_purge() leaves no gap in a partition's sequence.  a
 *        NULL: 1.  Thread-safe.
 */
int aas_kafka_auth_ever_up(aas_kafka_auth_t *a);

#endif
