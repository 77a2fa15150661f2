/* dlq.c - the dead-letter producer; see dlq.h. */
#include "dlq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

struct aas_dlq_s {
    rd_kafka_t *rk;
    char topic[256];
    size_t max_bytes;
    unsigned long long sent;
};

static void aas_dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->_private) *(rd_kafka_resp_err_t *)m->_private = m->err;
}

aas_err_t aas_dlq_new(const aas_conf_t *conf, const char *client_id, size_t max_bytes,
                      aas_dlq_t **out, char *errstr, size_t errstr_size) {
    aas_dlq_t *d = calloc(1, sizeof(*d));
    if (!d) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    snprintf(d->topic, sizeof(d->topic), "%s", aas_conf_get(conf, "topic.dlq"));
    /* Room for the headers beside the largest whole message. */
    d->max_bytes = max_bytes;
    char limit[24];
    snprintf(limit, sizeof(limit), "%zu", max_bytes + 4096);
    const char *defs[] = {"enable.idempotence", "true", "linger.ms", "0",
                          "message.max.bytes", limit, NULL};
    rd_kafka_conf_t *kc;
    aas_err_t err = aas_kafka_conf_new(conf, client_id, RD_KAFKA_PRODUCER, defs, &kc, errstr,
                                       errstr_size);
    if (err) {
        free(d);
        return err;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, aas_dlq_dr_cb);
    char kerr[512];
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr));
    if (!d->rk) {
        rd_kafka_conf_destroy(kc);
        free(d);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "dead-letter producer: %s",
                           kerr);
    }
    *out = d;
    return AAS_ERR_OK;
}

void aas_dlq_destroy(aas_dlq_t *d) {
    if (!d) return;
    if (rd_kafka_flush(d->rk, 10000))
        AAS_LOG(AAS_LOG_WARN, "dlq", "dead-letter messages still queued at exit");
    rd_kafka_destroy(d->rk);
    free(d);
}

unsigned long long aas_dlq_count(const aas_dlq_t *d) { return d ? d->sent : 0; }

/* One produce of len bytes of msg, waiting for the acknowledgement. */
static rd_kafka_resp_err_t aas_dlq_produce(aas_dlq_t *d, const rd_kafka_message_t *msg,
                                           size_t len, const char *worker_id,
                                           aas_err_t why_code, const char *why) {
    char partition[16], offset[24], size[24];
    snprintf(partition, sizeof(partition), "%d", (int)msg->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)msg->offset);
    snprintf(size, sizeof(size), "%zu", msg->len);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    const char *code = aas_err_name(why_code);
    int truncated = len < msg->len;
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    if (!h) return RD_KAFKA_RESP_ERR__FAIL;
    rd_kafka_header_add(h, "aas.error.code", -1, code, -1);
    rd_kafka_header_add(h, "aas.error", -1, why, -1);
    rd_kafka_header_add(h, "aas.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "aas.source.partition", -1, partition, -1);
    rd_kafka_header_add(h, "aas.source.offset", -1, offset, -1);
    rd_kafka_header_add(h, "aas.worker", -1, worker_id, -1);
    rd_kafka_header_add(h, "aas.original.size", -1, size, -1);
    if (truncated) rd_kafka_header_add(h, "aas.truncated", -1, "1", 1);
    rd_kafka_resp_err_t delivered = RD_KAFKA_RESP_ERR__IN_PROGRESS;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_VALUE(msg->payload, len),
        RD_KAFKA_V_KEY(msg->key, msg->key_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(&delivered), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h); /* not taken on failure */
        return err;
    }
    rd_kafka_resp_err_t ferr = rd_kafka_flush(d->rk, 30000);
    /* A still-queued copy may yet be delivered; a duplicate in the
     * dead-letter topic is harmless, a lost one is not. */
    return ferr ? ferr : delivered;
}

static int aas_dlq_too_large(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           e == RD_KAFKA_RESP_ERR_INVALID_RECORD ||
           e == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

aas_err_t aas_dlq_send(aas_dlq_t *d, const rd_kafka_message_t *msg, const char *worker_id,
                       aas_err_t why_code, const char *why) {
    size_t len = msg->len > d->max_bytes ? AAS_DLQ_HEAD_BYTES : msg->len;
    if (len > msg->len) len = msg->len;
    rd_kafka_resp_err_t e = aas_dlq_produce(d, msg, len, worker_id, why_code, why);
    if (aas_dlq_too_large(e) && len > AAS_DLQ_HEAD_BYTES) {
        /* The topic takes less than this producer does (its
         * max.message.bytes on the broker): keep the head. */
        AAS_LOG(AAS_LOG_WARN, "dlq", "topic=%s partition=%d offset=%lld: %s; "
                "dead-lettering the first %d of %zu bytes", rd_kafka_topic_name(msg->rkt),
                (int)msg->partition, (long long)msg->offset, rd_kafka_err2str(e),
                AAS_DLQ_HEAD_BYTES, msg->len);
        len = AAS_DLQ_HEAD_BYTES;
        e = aas_dlq_produce(d, msg, len, worker_id, why_code, why);
    }
    if (e) {
        AAS_LOG(AAS_LOG_WARN, "dlq", "topic=%s partition=%d offset=%lld not dead-lettered: "
                "%s", rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                (long long)msg->offset, rd_kafka_err2str(e));
        return AAS_ERR_KAFKA;
    }
    if (len < msg->len)
        AAS_LOG(AAS_LOG_WARN, "dlq", "topic=%s partition=%d offset=%lld dead-lettered "
                "truncated to %zu of %zu bytes", rd_kafka_topic_name(msg->rkt),
                (int)msg->partition, (long long)msg->offset, len, msg->len);
    d->sent++;
    return AAS_ERR_OK;
}
