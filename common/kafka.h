/*
 * kafka.h - librdkafka set-up shared by the programs.
 *
 * Builds an rd_kafka_conf_t from our configuration (every kafka.* key, plus
 * the defaults each role needs), routes librdkafka's logs and errors through
 * aas logging, and maps librdkafka errors to aas_err_t.  It does not decide
 * what to consume or produce; the programs do.
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

#endif
