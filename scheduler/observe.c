/* observe.c - partition lag of the worker group; see observe.h. */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

struct aas_observer_s {
    rd_kafka_t *rk;
};

aas_err_t aas_observer_new(const aas_conf_t *conf, const char *group,
                           aas_observer_t **out, char *errstr,
                           size_t errstr_size) {
    aas_observer_t *o = calloc(1, sizeof(*o));
    if (!o) return AAS_ERR_NOMEM;
    /* A consumer handle carrying the group id lets us read the group's
     * committed offsets without subscribing, so observing never triggers a
     * rebalance of the workers. */
    const char *defs[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *kc;
    aas_err_t err = aas_kafka_conf_new(conf, "aas-scheduler", defs, &kc, errstr,
                                       errstr_size);
    if (err) {
        free(o);
        return err;
    }
    char kerr[512];
    if (!(o->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        free(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "kafka: %s", kerr);
    }
    *out = o;
    return AAS_ERR_OK;
}

void aas_observer_destroy(aas_observer_t *o) {
    if (!o) return;
    rd_kafka_destroy(o->rk);
    free(o);
}

static aas_err_t aas_observer_partitions(aas_observer_t *o, const char *topic,
                                         int timeout_ms, int *count,
                                         char *errstr, size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(o->rk, topic, NULL);
    if (!rkt) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "topic handle");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(o->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (kerr)
        return aas_err_set(errstr, errstr_size, aas_kafka_err(kerr) ? aas_kafka_err(kerr)
                                                                    : AAS_ERR_KAFKA,
                           "metadata for %s: %s", topic, rd_kafka_err2str(kerr));
    aas_err_t err = AAS_ERR_OK;
    if (md->topic_cnt != 1 || md->topics[0].err)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "topic %s: %s", topic,
                          md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
                                        : "not in metadata");
    else
        *count = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return err;
}

aas_err_t aas_observer_lag(aas_observer_t *o, const char *topic,
                           int timeout_ms, aas_partition_lag_t **parts,
                           size_t *n, char *errstr, size_t errstr_size) {
    int count = 0;
    aas_err_t err = aas_observer_partitions(o, topic, timeout_ms, &count, errstr,
                                            errstr_size);
    if (err) return err;
    aas_partition_lag_t *p = calloc((size_t)count > 0 ? (size_t)count : 1, sizeof(*p));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(count);
    if (!p || !list) {
        free(p);
        if (list) rd_kafka_topic_partition_list_destroy(list);
        return AAS_ERR_NOMEM;
    }
    for (int i = 0; i < count; i++) rd_kafka_topic_partition_list_add(list, topic, i);
    rd_kafka_resp_err_t cerr = rd_kafka_committed(o->rk, list, timeout_ms);
    for (int i = 0; i < count; i++) {
        int64_t lo = 0, hi = 0;
        p[i].partition = i;
        rd_kafka_resp_err_t werr =
            rd_kafka_query_watermark_offsets(o->rk, topic, i, &lo, &hi, timeout_ms);
        p[i].high = werr ? AAS_OBSERVE_UNKNOWN : hi;
        if (cerr || list->elems[i].err)
            p[i].committed = AAS_OBSERVE_UNKNOWN;
        else if (list->elems[i].offset < 0) /* never committed: from the start */
            p[i].committed = werr ? AAS_OBSERVE_UNKNOWN : lo;
        else
            p[i].committed = list->elems[i].offset;
        p[i].lag = p[i].high == AAS_OBSERVE_UNKNOWN || p[i].committed == AAS_OBSERVE_UNKNOWN
                       ? AAS_OBSERVE_UNKNOWN
                       : (p[i].high > p[i].committed ? p[i].high - p[i].committed : 0);
    }
    rd_kafka_topic_partition_list_destroy(list);
    *parts = p;
    *n = (size_t)count;
    return AAS_ERR_OK;
}

aas_err_t aas_observer_grow(aas_observer_t *o, const char *topic, int partitions,
                            int timeout_ms, char *errstr, size_t errstr_size) {
    char kerr[512];
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)partitions,
                                                              kerr, sizeof(kerr));
    if (!np) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s", kerr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(o->rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(o->rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    aas_err_t err = AAS_ERR_OK;
    if (!q || !opts) {
        err = AAS_ERR_NOMEM;
        goto out;
    }
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, kerr, sizeof(kerr)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "admin timeout: %s", kerr);
    rd_kafka_CreatePartitions(o->rk, &np, 1, opts, q);
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
