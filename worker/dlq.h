/*
 * dlq.h - the dead-letter topic: where a message goes when it cannot be
 * processed (it does not decode) or its outcome cannot be recorded, so that
 * its partition moves on and nothing is lost.
 *
 * A dead-lettered message keeps its key and value and gains headers that
 * say why and where it came from (docs/wire-format.md, "Dead letters").
 * A message too large for the dead-letter topic (the producer's
 * message.max.bytes, or the topic's limit on the broker) is sent again as
 * a truncated copy: its first AAS_DLQ_HEAD_BYTES bytes, with the headers
 * aas.truncated=1 and aas.original.size; a message never stalls its
 * partition because the dead-letter topic cannot take it.
 *
 * It does not decide what to dead-letter; outcome.c does.
 *
 * Threading: one thread at a time.
 */
#ifndef AAS_DLQ_H
#define AAS_DLQ_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "conf.h"
#include "err.h"

/* How much of a message too large for the dead-letter topic is kept. */
#define AAS_DLQ_HEAD_BYTES 4096

typedef struct aas_dlq_s aas_dlq_t;

/**
 * @brief A producer for the dead-letter topic (conf's topic.dlq and
 *        kafka.* settings).
 * @param client_id the worker id (Kafka client.id).
 * @param max_bytes the largest message this producer sends whole.
 */
aas_err_t aas_dlq_new(const aas_conf_t *conf, const char *client_id,
                      size_t max_bytes, aas_dlq_t **out, char *errstr,
                      size_t errstr_size);

/** @brief Wait (bounded) for queued messages, then free.  NULL is a no-op. */
void aas_dlq_destroy(aas_dlq_t *d);

/**
 * @brief Dead-letter msg with the reason, and wait for the broker's
 *        acknowledgement, so the caller may store its offset after.
 * @param worker_id the header aas.worker.
 * @return AAS_ERR_OK once the broker has it (whole or truncated), else
 *         AAS_ERR_KAFKA (retriable: the caller keeps the message).
 */
aas_err_t aas_dlq_send(aas_dlq_t *d, const rd_kafka_message_t *msg,
                       const char *worker_id, aas_err_t why_code,
                       const char *why);

/** @brief Messages this producer dead-lettered. */
unsigned long long aas_dlq_count(const aas_dlq_t *d);

#endif
