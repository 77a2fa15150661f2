/* observe.c - partition lag of the worker group and the age of its
 * oldest queued job; see observe.h. */
#include "observe.h"

#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "kafka.h"
#include "log.h"

struct aas_observer_s {
    rd_kafka_t *rk;    /* committed offsets and watermarks */
    rd_kafka_t *peek;  /* reads the message at a committed offset */
    char group[AAS_OBSERVE_GROUP_MAX]; /* the group.id whose offsets it reads */
};

aas_err_t aas_observer_new(const aas_conf_t *conf, const char *group,
                           aas_observer_t **out, char *errstr,
                           size_t errstr_size) {
    aas_observer_t *o = calloc(1, sizeof(*o));
    if (!o) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    /* A consumer handle carrying the group id lets us read the group's
     * committed offsets without subscribing, so observing never triggers a
     * rebalance of the workers. */
    const char *defs[] = {"group.id", group, "enable.auto.commit", "false", NULL};
    rd_kafka_conf_t *kc = NULL;
    aas_err_t err = aas_kafka_conf_new(conf, "aas-scheduler", RD_KAFKA_CONSUMER, defs, &kc, errstr,
                                       errstr_size);
    /* kafka.group.id, when set, wins over `group`, as in the workers. */
    if (!err) err = aas_kafka_conf_group(kc, o->group, sizeof(o->group), errstr, errstr_size);
    if (err) {
        if (kc) rd_kafka_conf_destroy(kc);
        free(o);
        return err;
    }
    char kerr[512];
    if (!(o->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        aas_observer_destroy(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "kafka: %s", kerr);
    }
    /* The peek handle only ever assign()s explicit offsets and reads one
     * message per partition.  librdkafka wants a group.id for assign(); it
     * is the workers' own (the one whose ACLs the scheduler already has),
     * which is safe because this handle never subscribes (no join, so no
     * rebalance of the workers) and never commits.  Fetches stay small
     * (the broker still returns a first batch larger than the limit), but
     * queued.min.messages stays at its default: librdkafka counts queued
     * messages on the shared consumer queue, so a low value would stop
     * every other partition's fetch (for a second's backoff) as soon as
     * the first one answered. */
    const char *pdefs[] = {"group.id", group,
                           "enable.auto.commit", "false",
                           "enable.auto.offset.store", "false",
                           /* committed offset deleted by retention: the
                            * earliest left is the oldest queued */
                           "auto.offset.reset", "earliest",
                           "fetch.wait.max.ms", "10",
                           "fetch.message.max.bytes", "4096",
                           "queued.max.messages.kbytes", "65536",
                           NULL};
    if ((err = aas_kafka_conf_new(conf, "aas-scheduler", RD_KAFKA_CONSUMER, pdefs, &kc, errstr,
                                  errstr_size))) {
        aas_observer_destroy(o);
        return err;
    }
    if (!(o->peek = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        aas_observer_destroy(o);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "kafka: %s", kerr);
    }
    /* Its errors and logs come back through rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(o->peek);
    *out = o;
    return AAS_ERR_OK;
}

void aas_observer_destroy(aas_observer_t *o) {
    if (!o) return;
    if (o->peek) rd_kafka_destroy(o->peek);
    if (o->rk) rd_kafka_destroy(o->rk);
    free(o);
}

const char *aas_observer_group(const aas_observer_t *o) { return o->group; }

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
        /* NOT_FOUND only when the broker says the topic does not exist (a
         * priority lane never created is empty); anything else, a leader
         * election say, is a failure to measure. */
        err = aas_err_set(errstr, errstr_size,
                          md->topic_cnt == 1 &&
                                  md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                              ? AAS_ERR_NOT_FOUND
                              : AAS_ERR_KAFKA,
                          "topic %s: %s", topic,
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
    rd_kafka_poll(o->rk, 0); /* serve queued error events */
    aas_err_t err = aas_observer_partitions(o, topic, timeout_ms, &count, errstr,
                                            errstr_size);
    if (err) return err;
    aas_partition_lag_t *p = calloc((size_t)count > 0 ? (size_t)count : 1, sizeof(*p));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(count);
    if (!p || !list) {
        free(p);
        if (list) rd_kafka_topic_partition_list_destroy(list);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < count; i++) rd_kafka_topic_partition_list_add(list, topic, i);
    rd_kafka_resp_err_t cerr = rd_kafka_committed(o->rk, list, timeout_ms);
    for (int i = 0; i < count; i++) {
        int64_t lo = 0, hi = 0;
        p[i].partition = i;
        p[i].oldest_ts_ms = AAS_OBSERVE_UNKNOWN;
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

aas_err_t aas_observer_oldest(aas_observer_t *o, const char *topic,
                              aas_partition_lag_t *parts, size_t n,
                              int timeout_ms, char *errstr,
                              size_t errstr_size) {
    for (size_t i = 0; i < n; i++) parts[i].oldest_ts_ms = AAS_OBSERVE_UNKNOWN;
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(n > 0 ? (int)n : 1);
    char *read = calloc(n > 0 ? n : 1, 1); /* 1: partition i answered */
    if (!list || !read) {
        if (list) rd_kafka_topic_partition_list_destroy(list);
        free(read);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "oldest: no memory");
    }
    for (size_t i = 0; i < n; i++)
        if (parts[i].lag > 0 && parts[i].committed >= 0)
            rd_kafka_topic_partition_list_add(list, topic, parts[i].partition)->offset =
                parts[i].committed;
    aas_err_t err = AAS_ERR_OK;
    int want = list->cnt, got = 0;
    if (want == 0) goto out;
    /* Metadata first: a handle that has never seen the topic (or its new
     * partitions) would otherwise learn the leaders only on its next
     * periodic scan, about a second later, and miss the bound. */
    int64_t deadline_us = aas_mono_us() + (int64_t)timeout_ms * 1000;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(o->peek, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr =
        rkt ? rd_kafka_metadata(o->peek, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__NOENT;
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (kerr) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "metadata %s: %s", topic,
                          rd_kafka_err2str(kerr));
        goto out;
    }
    kerr = rd_kafka_assign(o->peek, list);
    if (kerr) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "assign %s: %s", topic,
                          rd_kafka_err2str(kerr));
        goto out;
    }
    while (got < want) {
        int64_t left_ms = (deadline_us - aas_mono_us()) / 1000;
        if (left_ms <= 0) break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(o->peek, (int)left_ms);
        if (!m) continue;
        if (m->err) {
            /* Transport errors are retried by librdkafka within the bound;
             * the partition stays unknown if they last. */
            AAS_LOG(AAS_LOG_DEBUG, "scheduler", "oldest: %s", rd_kafka_message_errstr(m));
        } else if (m->rkt && !strcmp(rd_kafka_topic_name(m->rkt), topic)) {
            for (size_t i = 0; i < n; i++) {
                if (parts[i].partition != m->partition || read[i] || parts[i].lag <= 0 ||
                    m->offset < parts[i].committed)
                    continue;
                rd_kafka_timestamp_type_t tt;
                int64_t ts = rd_kafka_message_timestamp(m, &tt);
                if (tt != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0)
                    parts[i].oldest_ts_ms = ts;
                read[i] = 1;
                got++;
                break;
            }
        }
        rd_kafka_message_destroy(m);
    }
    /* Stop fetching until the next measurement; the next assign() starts
     * from the offsets it names, whatever was prefetched here. */
    if ((kerr = rd_kafka_assign(o->peek, NULL)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "oldest: unassign: %s", rd_kafka_err2str(kerr));
    if (got < want)
        AAS_LOG(AAS_LOG_DEBUG, "scheduler", "oldest: %d of %d partitions read within %d ms",
                got, want, timeout_ms);
out:
    rd_kafka_topic_partition_list_destroy(list);
    free(read);
    return err;
}

void aas_observe_lanes_fold(const aas_lane_backlog_t *lanes, size_t n, int64_t *lag,
                            double *age_s, int *partial) {
    int64_t sum = 0;
    int lag_unknown = 0, age_unknown = 0, age_known = 0;
    double age = 0;
    for (size_t i = 0; i < n; i++) {
        double w = lanes[i].weight >= 1 ? lanes[i].weight : 1;
        if (lanes[i].lag < 0) lag_unknown = 1;
        else sum += (int64_t)((double)lanes[i].lag * w + 0.5);
        if (lanes[i].lag == 0) continue; /* nothing queued: no age to weigh */
        if (lanes[i].age_s >= 0) {
            if (!age_known || lanes[i].age_s * w > age) age = lanes[i].age_s * w;
            age_known = 1;
        } else {
            age_unknown = 1; /* jobs queued (or maybe) whose age is not known */
        }
    }
    *lag = lag_unknown ? AAS_OBSERVE_UNKNOWN : sum;
    *age_s = age_known ? age : age_unknown ? (double)AAS_OBSERVE_UNKNOWN : 0;
    if (partial) *partial = age_unknown;
}

double aas_observe_oldest_age_s(const aas_partition_lag_t *parts, size_t n,
                                int64_t now_ms, int *partial) {
    int unknown = n == 0, known = 0;
    double oldest = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].lag < 0) {
            unknown = 1;
        } else if (parts[i].lag > 0) {
            if (parts[i].oldest_ts_ms < 0) {
                unknown = 1;
                continue;
            }
            double age = (double)(now_ms - parts[i].oldest_ts_ms) / 1000.0;
            if (age < 0) age = 0; /* the producer's clock is ahead of ours */
            if (!known || age > oldest) oldest = age;
            known = 1;
        }
    }
    if (partial) *partial = unknown;
    if (known) return oldest;
    return unknown ? (double)AAS_OBSERVE_UNKNOWN : 0;
}
