/* grow.c - partition growth, an action of the scheduler; see grow.h. */
#include "grow.h"

#include <stdlib.h>

#include "kafka.h"
#include "log.h"

struct aas_grow_s {
    rd_kafka_t *rk;  /* an admin client (a producer handle, as librdkafka's) */
};

aas_err_t aas_grow_new(const aas_conf_t *conf, aas_grow_t **out, char *errstr,
                       size_t errstr_size) {
    aas_grow_t *g = calloc(1, sizeof(*g));
    if (!g) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    rd_kafka_conf_t *kc;
    aas_err_t err = aas_kafka_conf_new(conf, "aas-scheduler", RD_KAFKA_PRODUCER, NULL, &kc,
                                       errstr, errstr_size);
    if (err) {
        free(g);
        return err;
    }
    char kerr[512];
    if (!(g->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        free(g);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "kafka admin: %s", kerr);
    }
    *out = g;
    return AAS_ERR_OK;
}

void aas_grow_destroy(aas_grow_t *g) {
    if (!g) return;
    rd_kafka_destroy(g->rk);
    free(g);
}

aas_err_t aas_grow_partitions(aas_grow_t *g, const char *topic, int partitions, int timeout_ms,
                              char *errstr, size_t errstr_size) {
    char kerr[512];
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)partitions,
                                                              kerr, sizeof(kerr));
    if (!np) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s", kerr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(g->rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(g->rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    aas_err_t err = AAS_ERR_OK;
    if (!q || !opts) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, kerr, sizeof(kerr)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "admin timeout: %s", kerr);
    rd_kafka_CreatePartitions(g->rk, &np, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 5000);
    if (!ev) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                          "CreatePartitions %s: no answer", topic);
        goto out;
    }
    const rd_kafka_CreatePartitions_result_t *res =
        rd_kafka_event_CreatePartitions_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr =
        res ? rd_kafka_CreatePartitions_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    if (!e && n == 1) e = rd_kafka_topic_result_error(tr[0]);
    if (e)
        err = aas_err_set(errstr, errstr_size,
                          e == RD_KAFKA_RESP_ERR_INVALID_REQUEST ||
                                  e == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
                                  e == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION
                              ? AAS_ERR_INVAL
                              : AAS_ERR_KAFKA,
                          "CreatePartitions %s to %d: %s", topic, partitions,
                          n == 1 && rd_kafka_topic_result_error_string(tr[0])
                              ? rd_kafka_topic_result_error_string(tr[0])
                              : rd_kafka_err2str(e));
    rd_kafka_event_destroy(ev);
out:
    if (opts) rd_kafka_AdminOptions_destroy(opts);
    if (q) rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    return err;
}
