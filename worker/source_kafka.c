/*
 * source_kafka.c - a training source over a slice of a Kafka topic: each
 * record's value is one line (source.h).  The slice is resolved once, when
 * the source is opened: its partitions (from metadata), each partition's
 * start offset (an offset, the first record at or after a timestamp, or the
 * low watermark) and end offset (exclusive: an offset, a timestamp, or the
 * high watermark at open time), so every pass reads the same records even
 * while producers keep appending.
 *
 * It reads with its own consumer built from the configuration's kafka.*
 * keys (bootstrap.servers, security, ...): partitions are assigned with
 * explicit offsets (rd_kafka_assign), never subscribed, and nothing is
 * committed or stored.  librdkafka wants a group.id for assign(); a unique
 * one is set by default (a kafka.group.id of the configuration wins: the
 * consumer never joins that group).
 *
 * Order: each partition in offset order, partitions interleaved as
 * librdkafka delivers them; rewind() seeks back to the start offsets and
 * ignores its seed.  A CSV slice has no header line (every record is a row).
 *
 * Memory: one message held at a time (a line is borrowed until the next
 * call), plus librdkafka's prefetch queue, bounded by
 * queued.max.messages.kbytes (AAS_SRC_KAFKA_QUEUE_KB by default, overridden
 * by kafka.queued.max.messages.kbytes).  A partition is paused as soon as
 * it reaches its end offset, so a slice far below the high watermark does
 * not fetch the rest of the topic.
 *
 * It does not parse lines (the trainer does).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka.h"
#include "log.h"
#include "source_int.h"

/* librdkafka's prefetch queue for this consumer, KiB (librdkafka's own
 * default is 64 MiB). */
#define AAS_SRC_KAFKA_QUEUE_KB "16384"
/* Metadata, watermark and timestamp look-ups at open time. */
#define AAS_SRC_KAFKA_LOOKUP_MS 30000
/* next() gives up (AAS_ERR_KAFKA, retriable: call again) after this long
 * without a record, an end of partition or a decisive error, unless the
 * spec says (stall_ms; the worker's train.source.stall.ms). */
#define AAS_SRC_KAFKA_STALL_MS 60000
/* destroy(): how long the unassigned consumer's queue is drained. */
#define AAS_SRC_KAFKA_DRAIN_MS 100
/* One poll; bounds how late a stall is noticed. */
#define AAS_SRC_KAFKA_POLL_MS 500

typedef struct {
    int32_t id;
    int64_t start, end;      /* [start, end) */
    int64_t pos;             /* next offset expected this pass */
    int done;
    int paused;              /* by aas_src_kafka_finish() */
} aas_src_kpart_t;

typedef struct {
    aas_src_t base;
    rd_kafka_t *rk;
    char topic[256];
    aas_src_kpart_t *parts;  /* every partition of the slice, empty ones too */
    size_t n_parts;
    size_t n_left;           /* partitions not done this pass */
    rd_kafka_topic_partition_list_t *assignment; /* non-empty ones, at start */
    rd_kafka_message_t *cur; /* the line handed out last */
    size_t queue_bytes;      /* queued.max.messages.kbytes * 1024 */
    int64_t stall_ms;        /* next()'s limit without progress */
} aas_src_kafka_impl_t;

static int64_t aas_src_kafka_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kafka's topic name rule: [A-Za-z0-9._-]{1,249}, not "." or "..". */
static int aas_src_kafka_topic_ok(const char *t) {
    size_t n = t ? strlen(t) : 0;
    if (n < 1 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static aas_src_kpart_t *aas_src_kafka_part(aas_src_kafka_impl_t *k, int32_t id) {
    for (size_t i = 0; i < k->n_parts; i++)
        if (k->parts[i].id == id) return &k->parts[i];
    return NULL;
}

/* Stop fetching a finished partition (best effort: a failure only costs
 * prefetching records that are then dropped). */
static void aas_src_kafka_finish(aas_src_kafka_impl_t *k, aas_src_kpart_t *p) {
    if (p->done) return;
    p->done = 1;
    k->n_left--;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) return;
    rd_kafka_topic_partition_list_add(l, k->topic, p->id);
    rd_kafka_resp_err_t e = rd_kafka_pause_partitions(k->rk, l);
    if (!e) p->paused = 1;
    if (e)
        AAS_LOG(AAS_LOG_WARN, "source", "topic=%s partition=%" PRId32 " pause error=%s",
                k->topic, p->id, rd_kafka_err2name(e));
    rd_kafka_topic_partition_list_destroy(l);
}

/* (Re)start the pass: every partition from its start offset. */
static aas_err_t aas_src_kafka_start(aas_src_kafka_impl_t *k, char *errstr,
                                     size_t errstr_size) {
    if (k->cur) {
        rd_kafka_message_destroy(k->cur);
        k->cur = NULL;
    }
    k->n_left = 0;
    /* Resume what the last pass paused while it is still assigned: a
     * re-assignment keeps an application pause.  Only those: resuming a
     * partition that is not paused leaks a partition reference in
     * librdkafka 2.0.2 (rd_kafka_destroy() then never returns). */
    rd_kafka_topic_partition_list_t *paused = rd_kafka_topic_partition_list_new(1);
    if (!paused) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k->n_parts; i++)
        if (k->parts[i].paused) rd_kafka_topic_partition_list_add(paused, k->topic, k->parts[i].id);
    rd_kafka_resp_err_t e = paused->cnt ? rd_kafka_resume_partitions(k->rk, paused)
                                        : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(paused);
    if (e)
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "topic %s: resume: %s",
                           k->topic, rd_kafka_err2str(e));
    for (size_t i = 0; i < k->n_parts; i++) {
        k->parts[i].paused = 0;
        aas_src_kpart_t *p = &k->parts[i];
        p->pos = p->start;
        p->done = p->start >= p->end;
        if (!p->done) k->n_left++;
    }
    /* assign() clears the previous assignment first: messages fetched for
     * it are outdated and never delivered. */
    e = rd_kafka_assign(k->rk, k->assignment);
    if (e)
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "topic %s: assign: %s",
                           k->topic, rd_kafka_err2str(e));
    return AAS_ERR_OK;
}

static aas_err_t aas_src_kafka_rewind(aas_src_t *s, uint64_t seed, char *errstr,
                                      size_t errstr_size) {
    (void)seed; /* offset order per partition; nothing to shuffle */
    return aas_src_kafka_start((aas_src_kafka_impl_t *)s, errstr, errstr_size);
}

/* The partitions still being read, for a stall message. */
static void aas_src_kafka_pending(const aas_src_kafka_impl_t *k, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k->n_parts && n + 1 < size; i++) {
        const aas_src_kpart_t *p = &k->parts[i];
        if (p->done) continue;
        int w = snprintf(buf + n, size - n, "%s%" PRId32 " at offset %" PRId64 " of end %" PRId64,
                         n ? ", " : "", p->id, p->pos, p->end);
        if (w < 0 || (size_t)w >= size - n) break;
        n += (size_t)w;
    }
}

static aas_err_t aas_src_kafka_next(aas_src_t *s, const char **line, size_t *len, int *eof,
                                    char *errstr, size_t errstr_size) {
    aas_src_kafka_impl_t *k = (aas_src_kafka_impl_t *)s;
    if (k->cur) {
        rd_kafka_message_destroy(k->cur);
        k->cur = NULL;
    }
    int64_t deadline = aas_src_kafka_now_ms() + k->stall_ms;
    char last[256] = "none";
    while (k->n_left > 0) {
        int64_t left = deadline - aas_src_kafka_now_ms();
        if (left <= 0) {
            char pending[512];
            aas_src_kafka_pending(k, pending, sizeof(pending));
            AAS_LOG(AAS_LOG_WARN, "source", "topic=%s stalled_ms=%lld last_error=\"%s\"",
                    k->topic, (long long)k->stall_ms, last);
            return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA,
                               "topic %s: no record in %.1f s from partition(s) %s "
                               "(last error: %s)",
                               k->topic, (double)k->stall_ms / 1000, pending, last);
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(
            k->rk, left < AAS_SRC_KAFKA_POLL_MS ? (int)left : AAS_SRC_KAFKA_POLL_MS);
        if (!m) continue;
        aas_src_kpart_t *p =
            m->rkt && strcmp(rd_kafka_topic_name(m->rkt), k->topic) == 0
                ? aas_src_kafka_part(k, m->partition)
                : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* m->offset: the end of the partition now.  The end offset is
             * at most the high watermark at open time, so a partition
             * whose last offsets are gaps (compaction, transaction
             * markers) ends here. */
            if (p && !p->done && m->offset >= p->end) aas_src_kafka_finish(k, p);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            rd_kafka_resp_err_t e = m->err;
            int32_t part = m->partition;
            int64_t off = m->offset;
            snprintf(last, sizeof(last), "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            switch (e) {
            case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
            case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                                   "topic %s partition %" PRId32 ": offset %" PRId64
                                   " is no longer on the broker (retention or "
                                   "truncation since the slice was opened): %s",
                                   k->topic, part, off, last);
            case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
            case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
            case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                                   "topic %s partition %" PRId32 ": %s", k->topic, part,
                                   last);
            case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
            case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
            case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
            case RD_KAFKA_RESP_ERR__FATAL:
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "topic %s: %s",
                                   k->topic, last);
            default:
                /* Transport trouble and the like: librdkafka retries;
                 * keep polling until the stall deadline. */
                AAS_LOG(AAS_LOG_DEBUG, "source", "topic=%s partition=%" PRId32 " error=%s",
                        k->topic, part, rd_kafka_err2name(e));
                continue;
            }
        }
        if (!p || p->done || m->offset < p->pos) {
            /* Another partition's, past the end, or already read. */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->offset >= p->end) {
            aas_src_kafka_finish(k, p);
            rd_kafka_message_destroy(m);
            continue;
        }
        p->pos = m->offset + 1;
        if (p->pos >= p->end) aas_src_kafka_finish(k, p);
        const char *v = m->payload;
        size_t n = m->len;
        if (!v) {
            aas_err_t err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                        "topic %s partition %" PRId32 " offset %" PRId64
                                        ": the record has no value (a tombstone)",
                                        k->topic, p->id, m->offset);
            rd_kafka_message_destroy(m);
            return err;
        }
        if (n > 0 && v[n - 1] == '\n') n--;
        if (n > 0 && v[n - 1] == '\r') n--;
        if (memchr(v, '\n', n)) {
            aas_err_t err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                        "topic %s partition %" PRId32 " offset %" PRId64
                                        ": the value holds more than one line (a record "
                                        "is one example)",
                                        k->topic, p->id, m->offset);
            rd_kafka_message_destroy(m);
            return err;
        }
        k->cur = m;
        *line = v;
        *len = n;
        return AAS_ERR_OK;
    }
    *eof = 1;
    return AAS_ERR_OK;
}

static size_t aas_src_kafka_footprint(const aas_src_t *s) {
    const aas_src_kafka_impl_t *k = (const aas_src_kafka_impl_t *)s;
    return sizeof(*k) + k->n_parts * sizeof(*k->parts) + (k->cur ? k->cur->len : 0) +
           k->queue_bytes;
}

static void aas_src_kafka_destroy(aas_src_t *s) {
    aas_src_kafka_impl_t *k = (aas_src_kafka_impl_t *)s;
    if (k->cur) rd_kafka_message_destroy(k->cur);
    if (k->rk) {
        /* Unassign and drain what was fetched: an event left in a
         * partition's queue (an end of partition after the pause) keeps
         * the partition, and so rd_kafka_destroy(), waiting forever
         * (librdkafka 2.0.2). */
        rd_kafka_resp_err_t e = rd_kafka_assign(k->rk, NULL);
        if (e)
            AAS_LOG(AAS_LOG_WARN, "source", "topic=%s unassign error=%s", k->topic,
                    rd_kafka_err2name(e));
        int64_t until = aas_src_kafka_now_ms() + AAS_SRC_KAFKA_DRAIN_MS;
        while (aas_src_kafka_now_ms() < until) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 10);
            if (m) rd_kafka_message_destroy(m);
        }
        e = rd_kafka_consumer_close(k->rk);
        if (e)
            AAS_LOG(AAS_LOG_WARN, "source", "topic=%s close error=%s", k->topic,
                    rd_kafka_err2name(e));
        rd_kafka_destroy(k->rk);
    }
    if (k->assignment) rd_kafka_topic_partition_list_destroy(k->assignment);
    free(k->parts);
    free(k);
}

static const aas_src_ops_t aas_src_kafka_ops = {aas_src_kafka_rewind, aas_src_kafka_next,
                                                aas_src_kafka_footprint,
                                                aas_src_kafka_destroy};

/* A look-up error: a missing topic or partition is NOT_FOUND, anything else
 * (broker away, timed out, leader moving) retriable. */
static aas_err_t aas_src_kafka_lookup_err(rd_kafka_resp_err_t e) {
    switch (e) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return AAS_ERR_NOT_FOUND;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return AAS_ERR_INVAL;
    default:
        return AAS_ERR_KAFKA;
    }
}

/* The slice's partitions from metadata into k->parts. */
static aas_err_t aas_src_kafka_partitions(aas_src_kafka_impl_t *k, const aas_src_kafka_t *spec,
                                          char *errstr, size_t errstr_size) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, k->topic, NULL);
    if (!rkt)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "topic %s: %s", k->topic,
                           rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->rk, 0, rkt, &md, AAS_SRC_KAFKA_LOOKUP_MS);
    rd_kafka_topic_destroy(rkt);
    if (e)
        return aas_err_set(errstr, errstr_size, aas_src_kafka_lookup_err(e),
                           "topic %s: metadata: %s", k->topic, rd_kafka_err2str(e));
    aas_err_t err = AAS_ERR_OK;
    const struct rd_kafka_metadata_topic *t = md->topic_cnt == 1 ? &md->topics[0] : NULL;
    if (!t || strcmp(t->topic, k->topic) != 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA,
                          "topic %s: metadata: no answer for the topic", k->topic);
    } else if (t->err) {
        err = aas_src_kafka_lookup_err(t->err);
        aas_err_set(errstr, errstr_size, err, "topic %s: %s", k->topic,
                    err == AAS_ERR_NOT_FOUND ? "no such topic" : rd_kafka_err2str(t->err));
    } else if (t->partition_cnt <= 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "topic %s: no partitions", k->topic);
    }
    size_t n = err ? 0 : spec->partitions ? spec->n_partitions : (size_t)t->partition_cnt;
    if (!err && n == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "topic %s: an empty list of partitions", k->topic);
    if (!err && !(k->parts = calloc(n, sizeof(*k->parts))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && i < n; i++) {
        int32_t id = spec->partitions ? spec->partitions[i] : t->partitions[i].id;
        int found = 0;
        for (int j = 0; j < t->partition_cnt; j++) found |= t->partitions[j].id == id;
        for (size_t j = 0; j < i; j++)
            if (k->parts[j].id == id)
                err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                  "topic %s: partition %" PRId32 " named twice", k->topic, id);
        if (!err && !found)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                              "topic %s has no partition %" PRId32 " (it has %d)", k->topic,
                              id, t->partition_cnt);
        k->parts[i].id = id;
    }
    if (!err) k->n_parts = n;
    rd_kafka_metadata_destroy(md);
    return err;
}

/* The first offset at or after ms in each partition into off[i]; -1 when
 * no record is that late. */
static aas_err_t aas_src_kafka_times(aas_src_kafka_impl_t *k, int64_t ms, int64_t *off,
                                     const char *what, char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new((int)k->n_parts);
    if (!l) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k->n_parts; i++)
        rd_kafka_topic_partition_list_add(l, k->topic, k->parts[i].id)->offset = ms;
    aas_err_t err = AAS_ERR_OK;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->rk, l, AAS_SRC_KAFKA_LOOKUP_MS);
    if (e)
        err = aas_err_set(errstr, errstr_size, aas_src_kafka_lookup_err(e),
                          "topic %s: %s offsets for time %" PRId64 ": %s", k->topic, what, ms,
                          rd_kafka_err2str(e));
    for (size_t i = 0; !err && i < k->n_parts; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(l, k->topic, k->parts[i].id);
        if (!tp)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA,
                              "topic %s partition %" PRId32 ": %s offset for time %" PRId64
                              ": no answer",
                              k->topic, k->parts[i].id, what, ms);
        else if (tp->err)
            err = aas_err_set(errstr, errstr_size, aas_src_kafka_lookup_err(tp->err),
                              "topic %s partition %" PRId32 ": %s offset for time %" PRId64
                              ": %s",
                              k->topic, k->parts[i].id, what, ms, rd_kafka_err2str(tp->err));
        else
            off[i] = tp->offset < 0 ? -1 : tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return err;
}

/* Each partition's [start, end) from the spec and the watermarks. */
static aas_err_t aas_src_kafka_bounds(aas_src_kafka_impl_t *k, const aas_src_kafka_t *spec,
                                      char *errstr, size_t errstr_size) {
    int64_t *t_start = calloc(k->n_parts, sizeof(int64_t));
    int64_t *t_end = calloc(k->n_parts, sizeof(int64_t));
    aas_err_t err = AAS_ERR_OK;
    if (!t_start || !t_end) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!err && spec->start_ms >= 0)
        err = aas_src_kafka_times(k, spec->start_ms, t_start, "start", errstr, errstr_size);
    if (!err && spec->end_ms >= 0)
        err = aas_src_kafka_times(k, spec->end_ms, t_end, "end", errstr, errstr_size);
    for (size_t i = 0; !err && i < k->n_parts; i++) {
        aas_src_kpart_t *p = &k->parts[i];
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            k->rk, k->topic, p->id, &lo, &hi, AAS_SRC_KAFKA_LOOKUP_MS);
        if (e) {
            err = aas_err_set(errstr, errstr_size, aas_src_kafka_lookup_err(e),
                              "topic %s partition %" PRId32 ": watermarks: %s", k->topic,
                              p->id, rd_kafka_err2str(e));
            break;
        }
        /* Start: never below the low watermark (older records are gone). */
        int64_t start = spec->start_ms >= 0 ? (t_start[i] < 0 ? hi : t_start[i])
                                            : spec->start_offset;
        if (start < lo) start = lo;
        /* End: never above the high watermark at open time, so every pass
         * reads the same records. */
        int64_t end = spec->end_ms >= 0       ? (t_end[i] < 0 ? hi : t_end[i])
                      : spec->end_offset >= 0 ? spec->end_offset
                                              : hi;
        if (end > hi) end = hi;
        if (start > end) start = end;
        p->start = start;
        p->end = end;
    }
    free(t_start);
    free(t_end);
    return err;
}

static void aas_src_kafka_bound_str(char *buf, size_t size, int64_t offset, int64_t ms,
                                    const char *dflt) {
    if (ms >= 0)
        snprintf(buf, size, "time:%" PRId64, ms);
    else if (offset >= 0)
        snprintf(buf, size, "%" PRId64, offset);
    else
        snprintf(buf, size, "%s", dflt);
}

aas_err_t aas_src_open_kafka(const aas_conf_t *conf, const aas_src_kafka_t *spec,
                             aas_src_t **out, char *errstr, size_t errstr_size) {
    if (!conf || !spec || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_src_open_kafka: NULL");
    if (!aas_src_kafka_topic_ok(spec->topic))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "'%s' is not a Kafka topic name ([A-Za-z0-9._-], 1 to 249 "
                           "characters)",
                           spec->topic ? spec->topic : "(null)");
    if (spec->format != AAS_SRC_TSV && spec->format != AAS_SRC_CSV)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "topic %s: unknown format %d",
                           spec->topic, (int)spec->format);
    if ((spec->start_ms < 0 && spec->start_offset < 0) || spec->end_offset < -1 ||
        spec->end_ms < -1 || (spec->partitions && spec->n_partitions == 0))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "topic %s: bad slice (start offset %" PRId64 ", end offset %" PRId64
                           ", %zu partitions)",
                           spec->topic, spec->start_offset, spec->end_offset,
                           spec->n_partitions);

    aas_src_kafka_impl_t *k = calloc(1, sizeof(*k));
    if (!k) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    k->base.ops = &aas_src_kafka_ops;
    k->stall_ms = spec->stall_ms > 0 ? spec->stall_ms : AAS_SRC_KAFKA_STALL_MS;
    snprintf(k->topic, sizeof(k->topic), "%s", spec->topic);
    snprintf(k->base.name, sizeof(k->base.name), "topic %s", spec->topic);
    k->base.info = (aas_src_info_t){.format = spec->format, .rows = -1, .bytes = 0,
                                    .name = k->base.name};

    /* A group.id only because assign() needs one: never joined, nothing
     * committed.  Unique per source, so no two sources share it. */
    static const char hex[] = "0123456789abcdef";
    char group[64];
    uintptr_t addr = (uintptr_t)k;
    snprintf(group, sizeof(group), "aas.source.%ld.%lld.", (long)getpid(),
             (long long)aas_src_kafka_now_ms());
    size_t gl = strlen(group);
    for (int i = 0; i < 8 && gl + 1 < sizeof(group); i++, addr >>= 4) group[gl++] = hex[addr & 15];
    group[gl] = '\0';
    const char *defaults[] = {"group.id", group,
                              "queued.max.messages.kbytes", AAS_SRC_KAFKA_QUEUE_KB,
                              NULL};
    rd_kafka_conf_t *kc = NULL;
    aas_err_t err = aas_kafka_conf_new(conf, "aas-source", RD_KAFKA_CONSUMER, defaults, &kc,
                                       errstr, errstr_size);
    /* What makes this a reader that leaves no trace: configuration cannot
     * turn these off. */
    static const char *const forced[] = {"enable.auto.commit", "false",
                                         "enable.auto.offset.store", "false",
                                         "enable.partition.eof", "true",
                                         "auto.offset.reset", "error",
                                         NULL};
    for (size_t i = 0; !err && forced[i]; i += 2)
        err = aas_kafka_conf_set(kc, forced[i], forced[i + 1], errstr, errstr_size);
    if (!err) {
        char v[32];
        size_t vn = sizeof(v);
        if (rd_kafka_conf_get(kc, "queued.max.messages.kbytes", v, &vn) == RD_KAFKA_CONF_OK)
            k->queue_bytes = (size_t)strtoull(v, NULL, 10) * 1024;
    }
    if (!err) {
        char why[512];
        k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
        if (!k->rk)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "topic %s: consumer: %s",
                              k->topic, why);
        else
            kc = NULL; /* rd_kafka_new took it */
    }
    if (kc) rd_kafka_conf_destroy(kc);
    if (!err) {
        rd_kafka_resp_err_t e = rd_kafka_poll_set_consumer(k->rk);
        if (e)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "topic %s: %s", k->topic,
                              rd_kafka_err2str(e));
    }
    if (!err) err = aas_src_kafka_partitions(k, spec, errstr, errstr_size);
    if (!err) err = aas_src_kafka_bounds(k, spec, errstr, errstr_size);

    /* The slice: partitions with records, at their start offsets. */
    size_t nonempty = 0;
    for (size_t i = 0; !err && i < k->n_parts; i++)
        nonempty += k->parts[i].start < k->parts[i].end;
    if (!err && nonempty == 0) {
        char from[48], to[48], ranges[512];
        size_t rn = 0;
        aas_src_kafka_bound_str(from, sizeof(from), spec->start_offset, spec->start_ms,
                                "beginning");
        aas_src_kafka_bound_str(to, sizeof(to), spec->end_offset, spec->end_ms, "end");
        ranges[0] = '\0';
        for (size_t i = 0; i < k->n_parts && rn + 1 < sizeof(ranges); i++) {
            int w = snprintf(ranges + rn, sizeof(ranges) - rn,
                             "%s%" PRId32 ": [%" PRId64 ", %" PRId64 ")", i ? ", " : "",
                             k->parts[i].id, k->parts[i].start, k->parts[i].end);
            if (w < 0 || (size_t)w >= sizeof(ranges) - rn) break;
            rn += (size_t)w;
        }
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "topic %s: the slice from %s to %s holds no records (partition "
                          "offsets %s)",
                          k->topic, from, to, ranges);
    }
    if (!err && !(k->assignment = rd_kafka_topic_partition_list_new((int)nonempty)))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    int64_t span = 0;
    for (size_t i = 0; !err && i < k->n_parts; i++) {
        if (k->parts[i].start >= k->parts[i].end) continue;
        rd_kafka_topic_partition_list_add(k->assignment, k->topic, k->parts[i].id)->offset =
            k->parts[i].start;
        span += k->parts[i].end - k->parts[i].start;
    }
    if (!err) err = aas_src_kafka_start(k, errstr, errstr_size);
    if (err) {
        aas_src_kafka_destroy(&k->base);
        return err;
    }
    AAS_LOG(AAS_LOG_INFO, "source",
            "topic=%s partitions=%zu nonempty=%zu offsets=%" PRId64 " queue_kb=%zu",
            k->topic, k->n_parts, nonempty, span, k->queue_bytes / 1024);
    *out = &k->base;
    return AAS_ERR_OK;
}

/* ---- job params ---- */

/* A decimal int64 in [0, INT64_MAX]: digits only. */
static int aas_src_kafka_parse_nonneg(const char *s, int64_t *out) {
    if (!s || !*s) return -1;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return -1;
        if (v > (INT64_MAX - (*c - '0')) / 10) return -1;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 0;
}

/* "beginning"/"end" (word), N, or time:MS into offset/ms. */
static int aas_src_kafka_parse_bound(const char *s, const char *word, int64_t word_offset,
                                     int64_t *offset, int64_t *ms) {
    int64_t v;
    if (strcmp(s, word) == 0) {
        *offset = word_offset;
        *ms = -1;
        return 0;
    }
    if (strncmp(s, "time:", 5) == 0) {
        if (aas_src_kafka_parse_nonneg(s + 5, &v)) return -1;
        *offset = word_offset;
        *ms = v;
        return 0;
    }
    if (aas_src_kafka_parse_nonneg(s, &v)) return -1;
    *offset = v;
    *ms = -1;
    return 0;
}

aas_err_t aas_src_kafka_from_params(const aas_job_t *job, aas_src_kafka_t *spec,
                                    int32_t *parts, size_t parts_cap, int *present,
                                    char *errstr, size_t errstr_size) {
    const char *topic = aas_job_param(job, "data_topic");
    if (!topic) {
        *present = 0;
        return AAS_ERR_OK;
    }
    aas_src_kafka_t s = {.topic = topic, .partitions = NULL, .n_partitions = 0,
                         .start_offset = 0, .start_ms = -1, .end_offset = -1,
                         .end_ms = -1, .format = AAS_SRC_TSV};
    if (!aas_src_kafka_topic_ok(topic))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "param data_topic: '%.64s' is not a Kafka topic name "
                           "([A-Za-z0-9._-], 1 to 249 characters, not . or ..)",
                           topic);
    const char *v = aas_job_param(job, "data_partitions");
    if (v) {
        size_t n = 0;
        const char *c = v;
        for (;;) {
            const char *comma = strchr(c, ',');
            size_t len = comma ? (size_t)(comma - c) : strlen(c);
            char num[16];
            int64_t id;
            int ok = len > 0 && len < sizeof(num);
            if (ok) {
                memcpy(num, c, len);
                num[len] = '\0';
                ok = aas_src_kafka_parse_nonneg(num, &id) == 0 && id <= INT32_MAX;
            }
            for (size_t j = 0; ok && j < n; j++) ok = parts[j] != (int32_t)id;
            if (!ok)
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                   "param data_partitions: '%.64s' is not a comma-separated "
                                   "list of distinct partition numbers (e.g. 0,2)",
                                   v);
            if (n >= parts_cap)
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                   "param data_partitions: more than %zu partitions", parts_cap);
            parts[n++] = (int32_t)id;
            if (!comma) break;
            c = comma + 1;
        }
        s.partitions = parts;
        s.n_partitions = n;
    }
    v = aas_job_param(job, "data_start");
    if (v && aas_src_kafka_parse_bound(v, "beginning", 0, &s.start_offset, &s.start_ms))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "param data_start: '%.64s' is not 'beginning', an offset N or "
                           "'time:<unix ms>'",
                           v);
    v = aas_job_param(job, "data_end");
    if (v && aas_src_kafka_parse_bound(v, "end", -1, &s.end_offset, &s.end_ms))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "param data_end: '%.64s' is not 'end' (the high watermark when the "
                           "job starts), an offset N (exclusive) or 'time:<unix ms>'",
                           v);
    v = aas_job_param(job, "data_format");
    if (v) {
        if (strcmp(v, "tsv") == 0)
            s.format = AAS_SRC_TSV;
        else if (strcmp(v, "csv") == 0)
            s.format = AAS_SRC_CSV;
        else
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "param data_format: '%.64s' is not tsv (label<TAB>text) or csv "
                               "(numbers, the label last)",
                               v);
    }
    *spec = s;
    *present = 1;
    return AAS_ERR_OK;
}
