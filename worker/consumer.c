/* consumer.c - the worker's Kafka consumer; see consumer.h. */
#define _GNU_SOURCE /* pipe2 */
#include "consumer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fair.h"
#include "job.h"
#include "kafka.h"
#include "ledger.h"
#include "log.h"

/* One message of the window being collected: its lane and fair-share
 * ticket (lane -1: not from a fair share). */
typedef struct {
    int lane;
    aas_fair_ticket_t ticket;
} aas_consumer_slot_t;

struct aas_consumer_s {
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *held;  /* paused until released */
    volatile int revoked;                   /* raised by the rebalance callback */
    int assigned_once;                      /* an assignment has come */
    int64_t backoff_min_ms, backoff_max_ms, backoff_ms;
    uint64_t rng;
    unsigned long long retries;
    /* Lanes in use, highest first (consumer.h): each one's topic and the
     * queue its partitions are forwarded to. */
    int n_lanes;
    char lane_topic[AAS_LANE_MAX][AAS_LANE_TOPIC_MAX];
    rd_kafka_queue_t *lane_q[AAS_LANE_MAX];
    rd_kafka_queue_t *main_q;               /* the consumer queue */
    int64_t passed[AAS_LANE_MAX];           /* windows opened elsewhere while it waited */
    int64_t share;                          /* lane_share */
    /* Another lane's message met while a window was collected (from the
     * consumer queue): it opens the next window. */
    rd_kafka_message_t *pending;
    /* librdkafka writes a byte here when a queue gets something, so one
     * poll(2) waits on every queue at once. */
    int wake[2];
    char group[AAS_CONSUMER_GROUP_MAX];     /* the group.id in use */
    /* Fair share (consumer.h): per lane, the messages read ahead; the
     * offsets read and not finished; the window's tickets. */
    aas_fair_t *fair[AAS_LANE_MAX];
    aas_ledger_t *ledger;
    void (*tenant_of)(const rd_kafka_message_t *m, char *out, void *opaque);
    void *tenant_opaque;
    aas_consumer_slot_t *win;
    size_t win_cap, win_n;
    size_t fair_window;                  /* window cap while tenants mix */
    char last_tenant[AAS_ID_MAX + 1];    /* of the last message read ahead */
    int64_t mixed_us;                    /* when the tenant read last changed */
    aas_kafka_auth_t *auth;              /* refused logins (aas_consumer_auth_check) */
};

static void aas_consumer_free_msg(void *m) { rd_kafka_message_destroy(m); }

/* Messages of one partition from an offset on. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t from;
} aas_consumer_match_t;

static int aas_consumer_match(const void *item, void *ctx) {
    const rd_kafka_message_t *m = item;
    const aas_consumer_match_t *w = ctx;
    return m->partition == w->partition && m->offset >= w->from &&
           strcmp(rd_kafka_topic_name(m->rkt), w->topic) == 0;
}

/* The lane of a topic, or -1 (training, or not ours). */
static int aas_consumer_lane_of(const aas_consumer_t *c, const char *topic) {
    for (int i = 0; i < c->n_lanes; i++)
        if (strcmp(c->lane_topic[i], topic) == 0) return i;
    return -1;
}

/* Route newly assigned lane partitions to their lane's queue.  A message
 * fetched before this lands on the consumer queue and is served from
 * there; librdkafka keeps a forward the application set across its own
 * fetch start, and its fetch stop (revoke) clears it, hence every assign. */
static void aas_consumer_route(aas_consumer_t *c, rd_kafka_t *rk,
                               const rd_kafka_topic_partition_list_t *parts) {
    for (int i = 0; i < parts->cnt; i++) {
        int lane = aas_consumer_lane_of(c, parts->elems[i].topic);
        if (lane < 0) continue;
        rd_kafka_queue_t *pq =
            rd_kafka_queue_get_partition(rk, parts->elems[i].topic, parts->elems[i].partition);
        if (!pq) {
            /* Its messages keep coming through the consumer queue: served,
             * only without priority. */
            AAS_LOG(AAS_LOG_WARN, "worker", "lane=%s partition %s/%d not routed: no queue",
                    aas_lane_name((aas_lane_t)lane), parts->elems[i].topic,
                    (int)parts->elems[i].partition);
            continue;
        }
        rd_kafka_queue_forward(pq, c->lane_q[lane]);
        rd_kafka_queue_destroy(pq);
    }
}

/* "topic/p,topic/p" of a partition list, cut to fit. */
static void aas_consumer_parts_str(const rd_kafka_topic_partition_list_t *p, char *buf,
                                   size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < p->cnt && n + 40 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s/%d", i ? "," : "",
                              p->elems[i].topic, (int)p->elems[i].partition);
}

static void aas_consumer_error_cb(rd_kafka_t *rk, int err, const char *reason,
                                  void *opaque) {
    aas_kafka_error_note(((aas_consumer_t *)opaque)->auth, rk, err, reason);
}

static void aas_consumer_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t *parts,
                                      void *opaque) {
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    char buf[512];
    aas_consumer_parts_str(parts, buf, sizeof(buf));
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        AAS_LOG(AAS_LOG_INFO, "worker", "rebalance=assign partitions=%s", buf);
        ((aas_consumer_t *)opaque)->assigned_once = 1;
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, parts);
        if (!error && !rerr) aas_consumer_route(opaque, rk, parts);
    } else {
        AAS_LOG(AAS_LOG_INFO, "worker", "rebalance=revoke partitions=%s", buf);
        aas_consumer_t *c = opaque;
        c->revoked = 1; /* close the open window */
        /* What was read ahead of them goes: their next owner reads it
         * from the committed offset, which never passed it. */
        for (int i = 0; i < parts->cnt; i++) {
            int lane = aas_consumer_lane_of(c, parts->elems[i].topic);
            if (lane < 0 || !c->fair[lane]) continue;
            aas_consumer_match_t w = {parts->elems[i].topic, parts->elems[i].partition, 0};
            aas_fair_drop(c->fair[lane], aas_consumer_match, &w);
            aas_ledger_forget(c->ledger, w.topic, w.partition);
        }
        /* Jobs are finished before the next poll, so every stored offset
         * is final; with enable.auto.commit librdkafka commits the stored
         * offsets of revoked partitions itself (a synchronous commit here
         * would block without bound when the broker is gone). */
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        AAS_LOG(AAS_LOG_ERROR, "worker", "rebalance: %s", rd_kafka_err2str(rerr));
    }
}

aas_err_t aas_consumer_new(const aas_conf_t *conf, const aas_consumer_conf_t *cc,
                           aas_consumer_t **out, char *errstr, size_t errstr_size) {
    aas_consumer_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->held = rd_kafka_topic_partition_list_new(4))) {
        free(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    c->wake[0] = c->wake[1] = -1;
    c->share = cc->lane_share > 0 ? cc->lane_share : 1;
    for (int i = 0; i < AAS_LANE_MAX; i++) {
        if (!cc->lanes[i]) continue;
        snprintf(c->lane_topic[c->n_lanes], sizeof(c->lane_topic[0]), "%s", cc->lanes[i]);
        c->n_lanes++;
    }
    if (c->n_lanes == 0 && !cc->train_topic) {
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "consumer: no topic to consume (worker.infer and worker.train are "
                           "both false)");
    }
    /* Non-blocking both ways: librdkafka's threads must never block on a
     * full pipe (a missed byte costs at most one bounded poll). */
    if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        int e = errno;
        c->wake[0] = c->wake[1] = -1;
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "consumer: pipe: %s", strerror(e));
    }
    if (cc->fair_jobs > 0 && c->n_lanes > 0) {
        if (!cc->tenant_of) {
            aas_consumer_destroy(c);
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "consumer: fair share without tenant_of");
        }
        c->tenant_of = cc->tenant_of;
        c->fair_window = cc->fair_window;
        c->mixed_us = INT64_MIN / 2;
        c->tenant_opaque = cc->tenant_opaque;
        c->win_cap = cc->max_window > 0 ? cc->max_window : 1;
        aas_fair_conf_t fc = {.max_items = cc->fair_jobs, .max_bytes = cc->fair_bytes,
                              .quantum_us = cc->fair_quantum_us,
                              .weights = cc->fair_weights,
                              .free_item = aas_consumer_free_msg};
        aas_err_t ferr = aas_ledger_new(&c->ledger);
        if (!ferr && !(c->win = calloc(c->win_cap, sizeof(*c->win)))) ferr = AAS_ERR_NOMEM;
        if (ferr) {
            aas_consumer_destroy(c);
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        }
        for (int i = 0; i < c->n_lanes; i++)
            if ((ferr = aas_fair_new(&fc, &c->fair[i], errstr, errstr_size))) {
                aas_consumer_destroy(c);
                return ferr;
            }
    }
    c->backoff_min_ms = c->backoff_ms = cc->backoff_min_ms;
    c->backoff_max_ms = cc->backoff_max_ms;
    c->rng = (uint64_t)aas_mono_us() ^ ((uint64_t)getpid() << 32);
    /* Offsets are stored by us after Redis has the outcome, and committed
     * in the background from what we stored. */
    char fetch_max[24];
    snprintf(fetch_max, sizeof(fetch_max), "%zu", cc->max_message_bytes + 1024);
    const char *defs[] = {"group.id", cc->group,
                          "partition.assignment.strategy", "cooperative-sticky",
                          "enable.auto.offset.store", "false",
                          "enable.auto.commit", "true",
                          "auto.commit.interval.ms", "1000",
                          "auto.offset.reset", "earliest",
                          "session.timeout.ms", "10000",
                          "heartbeat.interval.ms", "1000",
                          "fetch.wait.max.ms", "10",
                          /* See partitions the scheduler adds within 10 s. */
                          "topic.metadata.refresh.interval.ms", "10000",
                          "queued.max.messages.kbytes", "65536",
                          "message.max.bytes", fetch_max,
                          "fetch.message.max.bytes", fetch_max,
                          NULL};
    rd_kafka_conf_t *kc = NULL;
    aas_err_t err = aas_kafka_conf_new(conf, cc->client_id, RD_KAFKA_CONSUMER, defs, &kc,
                                       errstr, errstr_size);
    if (!err) err = aas_kafka_conf_group(kc, c->group, sizeof(c->group), errstr, errstr_size);
    if (err) {
        if (kc) rd_kafka_conf_destroy(kc);
        aas_consumer_destroy(c);
        return err;
    }
    rd_kafka_conf_set_rebalance_cb(kc, aas_consumer_rebalance_cb);
    /* aas_kafka's error callback, plus the refused logins /readyz names. */
    rd_kafka_conf_set_error_cb(kc, aas_consumer_error_cb);
    rd_kafka_conf_set_opaque(kc, c);
    if ((err = aas_kafka_auth_new(&c->auth, errstr, errstr_size)) ||
        (err = aas_kafka_auth_watch(c->auth, kc, errstr, errstr_size))) {
        rd_kafka_conf_destroy(kc);
        aas_consumer_destroy(c);
        return err;
    }
    char kerr[512];
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, kerr, sizeof(kerr)))) {
        rd_kafka_conf_destroy(kc);
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "consumer: %s", kerr);
    }
    rd_kafka_resp_err_t kr = rd_kafka_poll_set_consumer(c->rk);
    if (kr) {
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "poll_set_consumer: %s",
                           rd_kafka_err2str(kr));
    }
    if (!(c->main_q = rd_kafka_queue_get_consumer(c->rk))) {
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "consumer: no consumer queue");
    }
    rd_kafka_queue_io_event_enable(c->main_q, c->wake[1], "1", 1);
    for (int i = 0; i < c->n_lanes; i++) {
        if (!(c->lane_q[i] = rd_kafka_queue_new(c->rk))) {
            aas_consumer_destroy(c);
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        }
        rd_kafka_queue_io_event_enable(c->lane_q[i], c->wake[1], "1", 1);
    }
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new(AAS_LANE_MAX + 1);
    if (!topics) {
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < c->n_lanes; i++)
        rd_kafka_topic_partition_list_add(topics, c->lane_topic[i], RD_KAFKA_PARTITION_UA);
    if (cc->train_topic)
        rd_kafka_topic_partition_list_add(topics, cc->train_topic, RD_KAFKA_PARTITION_UA);
    kr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kr) {
        aas_consumer_destroy(c);
        return aas_err_set(errstr, errstr_size, AAS_ERR_KAFKA, "subscribe %s: %s",
                           c->n_lanes ? c->lane_topic[0] : cc->train_topic,
                           rd_kafka_err2str(kr));
    }
    *out = c;
    return AAS_ERR_OK;
}

/* librdkafka before 2.3.0 (Debian 12 has 2.0.2) aborts in
 * rd_kafka_sticky_assignor_state_destroy() when a cooperative-sticky
 * consumer is destroyed after its group chose the assignor but before its
 * first assignment (librdkafka issue #4312): a worker stopped within a
 * second or two of its start died with SIGABRT.  So a consumer whose group
 * chose its assignor but gave no assignment yet waits for it (bounded),
 * dropping
 * what it is given meanwhile unprocessed and its offsets unstored, so
 * those messages go to the next member. */
#define AAS_CONSUMER_FIRST_ASSIGN_WAIT_MS 15000

static void aas_consumer_await_first_assignment(aas_consumer_t *c) {
    int64_t until = aas_mono_us() + (int64_t)AAS_CONSUMER_FIRST_ASSIGN_WAIT_MS * 1000;
    /* "NONE": no assignor chosen yet (no join answered, e.g. the broker is
     * away), so there is no state to destroy and nothing to wait for. */
    while (!c->assigned_once && strcmp(rd_kafka_rebalance_protocol(c->rk), "NONE") &&
           aas_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (m) rd_kafka_message_destroy(m);
    }
}

void aas_consumer_destroy(aas_consumer_t *c) {
    if (!c) return;
    if (c->pending) rd_kafka_message_destroy(c->pending); /* before its handle */
    if (c->rk) {
        aas_consumer_await_first_assignment(c);
        /* Commit what we stored while we still own the partitions (a
         * commit during close races the leave-group rebalance), waiting a
         * bounded time: a broker that is gone must not hang shutdown. */
        rd_kafka_queue_t *q = rd_kafka_queue_new(c->rk);
        if (q) {
            rd_kafka_resp_err_t cerr = rd_kafka_commit_queue(c->rk, NULL, q, NULL, NULL);
            rd_kafka_event_t *ev = cerr ? NULL : rd_kafka_queue_poll(q, 5000);
            if (ev) {
                cerr = rd_kafka_event_error(ev);
                rd_kafka_event_destroy(ev);
            }
            if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                AAS_LOG(AAS_LOG_WARN, "worker", "final commit: %s", rd_kafka_err2str(cerr));
            rd_kafka_queue_destroy(q);
        }
        /* Leaves the group. */
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
        if (err) AAS_LOG(AAS_LOG_WARN, "worker", "consumer close: %s", rd_kafka_err2str(err));
        /* Our messages and queue references go before their handle. */
        for (int i = 0; i < AAS_LANE_MAX; i++) {
            aas_fair_destroy(c->fair[i]);
            c->fair[i] = NULL;
        }
        for (int i = 0; i < AAS_LANE_MAX; i++)
            if (c->lane_q[i]) rd_kafka_queue_destroy(c->lane_q[i]);
        if (c->main_q) rd_kafka_queue_destroy(c->main_q);
        rd_kafka_destroy(c->rk);
    }
    aas_kafka_auth_destroy(c->auth); /* after the handle its interceptor served */
    for (int i = 0; i < 2; i++)
        if (c->wake[i] >= 0) close(c->wake[i]);
    if (c->held) rd_kafka_topic_partition_list_destroy(c->held);
    for (int i = 0; i < AAS_LANE_MAX; i++) aas_fair_destroy(c->fair[i]); /* no handle made */
    aas_ledger_destroy(c->ledger);
    free(c->win);
    free(c);
}

/* A message or NULL; an error message is logged and dropped. */
static rd_kafka_message_t *aas_consumer_checked(rd_kafka_message_t *m) {
    if (m && m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            AAS_LOG(AAS_LOG_WARN, "worker", "consume: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        m = NULL;
    }
    return m;
}

/* The next message of the consumer queue (training, early lane messages),
 * errors logged; serves rebalances, which raise revoked. */
static rd_kafka_message_t *aas_consumer_next(aas_consumer_t *c, int timeout_ms) {
    return aas_consumer_checked(rd_kafka_consumer_poll(c->rk, timeout_ms));
}

/* The next message of a lane's queue (outdated ones, of a revoked or
 * rewound partition, are dropped by librdkafka). */
static rd_kafka_message_t *aas_consumer_lane_next(aas_consumer_t *c, int lane,
                                                  int timeout_ms) {
    return aas_consumer_checked(rd_kafka_consume_queue(c->lane_q[lane], timeout_ms));
}

/* Read a lane message ahead into its fair share.  Without memory to track
 * it, the partition is rewound to it so that it comes again. */
static void aas_consumer_buffer(aas_consumer_t *c, int lane, rd_kafka_message_t *m) {
    char tenant[AAS_ID_MAX + 1];
    tenant[0] = '\0';
    c->tenant_of(m, tenant, c->tenant_opaque);
    if (strcmp(tenant, c->last_tenant) != 0) {
        c->mixed_us = aas_mono_us();
        memcpy(c->last_tenant, tenant, sizeof(tenant));
    }
    if (aas_ledger_open(c->ledger, rd_kafka_topic_name(m->rkt), m->partition, m->offset) ||
        aas_fair_push(c->fair[lane], tenant, m, m->len)) {
        AAS_LOG(AAS_LOG_WARN, "worker", "out of memory reading ahead %s/%d@%lld: rewound",
                rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
        aas_consumer_rewind(c, m);
        rd_kafka_message_destroy(m);
    }
}

/* Read ahead what a lane's queue has, up to the fair share's bounds. */
static void aas_consumer_fill(aas_consumer_t *c, int lane) {
    while (!aas_fair_full(c->fair[lane])) {
        rd_kafka_message_t *m = aas_consumer_lane_next(c, lane, 0);
        if (!m) return;
        aas_consumer_buffer(c, lane, m);
    }
}

/* The fair share's next message of a lane, as window message `slot`. */
static rd_kafka_message_t *aas_consumer_fair_next(aas_consumer_t *c, int lane, size_t slot) {
    aas_fair_ticket_t t;
    rd_kafka_message_t *m = aas_fair_pop(c->fair[lane], &t);
    if (m && slot < c->win_cap) {
        c->win[slot] = (aas_consumer_slot_t){.lane = lane, .ticket = t};
        c->win_n = slot + 1;
    }
    return m;
}

/* 1 if a lane has a message waiting: in its queue or read ahead. */
static int aas_consumer_waiting(const aas_consumer_t *c, int lane) {
    return rd_kafka_queue_length(c->lane_q[lane]) > 0 ||
           (c->fair[lane] && aas_fair_count(c->fair[lane]) > 0);
}

/* Wait until some queue may have something, at most timeout_ms. */
static void aas_consumer_wait(aas_consumer_t *c, int timeout_ms) {
    struct pollfd pfd = {.fd = c->wake[0], .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) > 0) {
        char buf[64];
        while (read(c->wake[0], buf, sizeof(buf)) > 0) {}
    }
}

/* The lane to open the next window from: the highest with a message
 * waiting, unless a lower waiting lane has been passed over share - 1
 * times (then the highest such).  -1 if every lane is empty. */
static int aas_consumer_pick(const aas_consumer_t *c) {
    int top = -1, due = -1;
    for (int i = 0; i < c->n_lanes; i++) {
        if (!aas_consumer_waiting(c, i)) continue;
        if (top < 0) top = i;
        else if (due < 0 && c->passed[i] >= c->share - 1) due = i;
    }
    return due >= 0 ? due : top;
}

/* A window opens from `lane`: every lower lane still waiting is passed over. */
static void aas_consumer_opened(aas_consumer_t *c, int lane) {
    if (lane < 0) return;
    c->passed[lane] = 0;
    for (int i = lane + 1; i < c->n_lanes; i++)
        if (aas_consumer_waiting(c, i)) c->passed[i]++;
}

rd_kafka_message_t *aas_consumer_poll(aas_consumer_t *c, int timeout_ms) {
    c->revoked = 0; /* a window opened by this message closes on a rebalance */
    c->win_n = 0;
    int64_t deadline = aas_mono_us() + (int64_t)timeout_ms * 1000;
    if (c->pending) {
        rd_kafka_message_t *m = c->pending;
        c->pending = NULL;
        aas_consumer_opened(c, aas_consumer_lane_of(c, rd_kafka_topic_name(m->rkt)));
        return m;
    }
    for (;;) {
        /* Events first (a rebalance changes which lanes are ours), and the
         * consumer queue's messages: training jobs and the few lane
         * messages fetched before their partition was routed. */
        rd_kafka_message_t *m = aas_consumer_next(c, 0);
        if (m) {
            int ml = aas_consumer_lane_of(c, rd_kafka_topic_name(m->rkt));
            if (ml >= 0 && c->fair[ml]) {
                aas_consumer_buffer(c, ml, m);
                continue;
            }
            aas_consumer_opened(c, ml);
            return m;
        }
        int lane = aas_consumer_pick(c);
        if (lane >= 0 && c->fair[lane]) {
            aas_consumer_fill(c, lane);
            m = aas_consumer_fair_next(c, lane, 0);
        } else if (lane >= 0) {
            m = aas_consumer_lane_next(c, lane, 0);
        }
        if (m) {
            aas_consumer_opened(c, lane);
            return m;
        }
        int64_t left = deadline - aas_mono_us();
        if (left <= 0) return NULL;
        /* A queue holding only what librdkafka drops (outdated messages)
         * still reads as non-empty: wait a little rather than spin. */
        int wait_ms = lane >= 0 ? 1 : (int)((left + 999) / 1000);
        aas_consumer_wait(c, wait_ms < 100 ? wait_ms : 100 /* keep serving events */);
    }
}

size_t aas_consumer_collect(aas_consumer_t *c, rd_kafka_message_t **msgs, size_t cap,
                            int64_t delay_us, rd_kafka_message_t **tail) {
    size_t n = 1;
    const rd_kafka_topic_t *rkt = msgs[0]->rkt;
    int64_t deadline = aas_mono_us() + delay_us;
    int lane = aas_consumer_lane_of(c, rd_kafka_topic_name(rkt));
    *tail = NULL;
    /* Several tenants lately: short windows (consumer.h). */
    if (lane >= 0 && c->fair[lane] && c->fair_window > 0 && c->fair_window < cap &&
        aas_mono_us() - c->mixed_us < 1000000)
        cap = c->fair_window;
    while (n < cap && !c->revoked) {
        int64_t left = deadline - aas_mono_us();
        int wait_ms = left > 0 ? (int)((left + 999) / 1000) : 0;
        /* The consumer queue first, without waiting: it serves rebalances
         * (which close the window) and holds the odd early lane message. */
        rd_kafka_message_t *m = aas_consumer_next(c, 0);
        int ml = m ? aas_consumer_lane_of(c, rd_kafka_topic_name(m->rkt)) : -1;
        if (m && ml >= 0 && c->fair[ml]) {
            aas_consumer_buffer(c, ml, m);
            continue;
        }
        if (!m && lane >= 0 && c->fair[lane]) {
            /* What is read ahead first; the lane's queue only once that is
             * empty (aas_consumer_poll read it just before the window). */
            if ((m = aas_consumer_fair_next(c, lane, n)) ||
                (aas_consumer_fill(c, lane), m = aas_consumer_fair_next(c, lane, n))) {
                msgs[n++] = m;
                continue;
            }
            /* Nothing read ahead: wait for the lane's queue. */
            if ((m = aas_consumer_lane_next(c, lane, wait_ms))) {
                aas_consumer_buffer(c, lane, m);
                continue;
            }
        } else if (!m && lane >= 0) {
            m = aas_consumer_lane_next(c, lane, wait_ms);
        } else if (!m && wait_ms > 0) {
            m = aas_consumer_next(c, wait_ms);
        }
        if (!m) {
            if (left <= 0) break;
            continue;
        }
        if (strcmp(rd_kafka_topic_name(m->rkt), rd_kafka_topic_name(rkt)) != 0) {
            /* Training goes back to the caller; another lane's message
             * waits for the next aas_consumer_poll(). */
            if (aas_consumer_lane_of(c, rd_kafka_topic_name(m->rkt)) >= 0) c->pending = m;
            else *tail = m;
            break;
        }
        msgs[n++] = m;
    }
    return n;
}

static void aas_consumer_store_at(aas_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t offset) {
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(1);
    if (!p) return;
    rd_kafka_topic_partition_list_add(p, topic, partition)->offset = offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, p);
    if (!err && p->elems[0].err) err = p->elems[0].err;
    rd_kafka_topic_partition_list_destroy(p);
    if (err)
        /* The partition was revoked meanwhile: its next owner re-runs the
         * job and finds it terminal; nothing is lost. */
        AAS_LOG(AAS_LOG_WARN, "worker", "offset store %s/%d@%lld: %s", topic,
                (int)partition, (long long)offset, rd_kafka_err2str(err));
}

/* 1 if msg came through a fair share (its offsets are in the ledger). */
static int aas_consumer_is_fair(const aas_consumer_t *c, const rd_kafka_message_t *msg) {
    int lane = aas_consumer_lane_of(c, rd_kafka_topic_name(msg->rkt));
    return lane >= 0 && c->fair[lane];
}

void aas_consumer_store(aas_consumer_t *c, const rd_kafka_message_t *msg) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    int64_t next = 0;
    if (!aas_consumer_is_fair(c, msg))
        aas_consumer_store_at(c, topic, msg->partition, msg->offset);
    else if (aas_ledger_close(c->ledger, topic, msg->partition, msg->offset, &next))
        aas_consumer_store_at(c, topic, msg->partition, next - 1);
}

void aas_consumer_rewind(aas_consumer_t *c, const rd_kafka_message_t *msg) {
    rd_kafka_topic_partition_list_t *p = rd_kafka_topic_partition_list_new(1);
    if (!p) return;
    const char *topic = rd_kafka_topic_name(msg->rkt);
    rd_kafka_topic_partition_list_add(p, topic, msg->partition)->offset = msg->offset;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, p, 10000);
    const char *why = error ? rd_kafka_error_string(error)
                      : p->elems[0].err ? rd_kafka_err2str(p->elems[0].err) : NULL;
    if (why)
        AAS_LOG(AAS_LOG_ERROR, "worker", "seek %s/%d@%lld: %s", topic, (int)msg->partition,
                (long long)msg->offset, why);
    if (error) rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(p);
    if (aas_consumer_is_fair(c, msg)) {
        /* What was read ahead from there on comes again. */
        aas_consumer_match_t w = {topic, msg->partition, msg->offset};
        aas_fair_drop(c->fair[aas_consumer_lane_of(c, topic)], aas_consumer_match, &w);
        aas_ledger_cut(c->ledger, topic, msg->partition, msg->offset);
    }
}

/* A fair-share window is not in offset order: each partition with messages
 * to retry is rewound once, to the lowest of them (rewinding to a later one
 * would skip the earlier).  Quadratic in the retried messages only, which
 * are few (a transient failure retries a window's jobs, at most its size). */
static void aas_consumer_settle_rewinds(aas_consumer_t *c, rd_kafka_message_t *const *msgs,
                                        const aas_msg_outcome_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (out[i] == AAS_MSG_DONE || !aas_consumer_is_fair(c, msgs[i])) continue;
        int lowest = 1;
        for (size_t j = 0; j < n && lowest; j++)
            if (j != i && out[j] != AAS_MSG_DONE && msgs[j]->partition == msgs[i]->partition &&
                strcmp(rd_kafka_topic_name(msgs[j]->rkt), rd_kafka_topic_name(msgs[i]->rkt)) == 0 &&
                (msgs[j]->offset < msgs[i]->offset ||
                 (msgs[j]->offset == msgs[i]->offset && j < i)))
                lowest = 0;
        if (lowest) aas_consumer_rewind(c, msgs[i]);
    }
}

void aas_consumer_settle(aas_consumer_t *c, rd_kafka_message_t *const *msgs,
                         const aas_msg_outcome_t *out, size_t n,
                         volatile sig_atomic_t *stop) {
    rd_kafka_topic_partition_list_t *done = rd_kafka_topic_partition_list_new(8);
    rd_kafka_topic_partition_list_t *blocked = rd_kafka_topic_partition_list_new(4);
    if (!done || !blocked) {
        /* Without memory for the lists: store nothing, the window comes again. */
        for (size_t i = 0; i < n; i++)
            if (out[i] == AAS_MSG_RETRY && !aas_consumer_is_fair(c, msgs[i]))
                aas_consumer_rewind(c, msgs[i]);
        aas_consumer_settle_rewinds(c, msgs, out, n);
    } else {
        aas_consumer_settle_rewinds(c, msgs, out, n);
        for (size_t i = 0; i < n; i++) {
            const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
            int32_t part = msgs[i]->partition;
            if (aas_consumer_is_fair(c, msgs[i])) {
                /* Out of offset order: the ledger says how far the
                 * partition is finished (rewinds were done first).  A
                 * message before a rewound one still closes: it does not
                 * come again. */
                int64_t next = 0;
                if (out[i] == AAS_MSG_DONE &&
                    aas_ledger_close(c->ledger, topic, part, msgs[i]->offset, &next)) {
                    rd_kafka_topic_partition_t *p =
                        rd_kafka_topic_partition_list_find(done, topic, part);
                    if (!p) p = rd_kafka_topic_partition_list_add(done, topic, part);
                    if (next > p->offset) p->offset = next;
                }
                continue;
            }
            if (rd_kafka_topic_partition_list_find(blocked, topic, part)) continue;
            if (out[i] == AAS_MSG_DONE) {
                rd_kafka_topic_partition_t *p =
                    rd_kafka_topic_partition_list_find(done, topic, part);
                if (!p) p = rd_kafka_topic_partition_list_add(done, topic, part);
                p->offset = msgs[i]->offset + 1;
            } else {
                aas_consumer_rewind(c, msgs[i]);
                rd_kafka_topic_partition_list_add(blocked, topic, part);
            }
        }
        if (done->cnt > 0) {
            rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, done);
            for (int i = 0; i < done->cnt; i++) {
                rd_kafka_resp_err_t e = err ? err : done->elems[i].err;
                /* Revoked meanwhile: its next owner re-runs the jobs and
                 * finds them terminal; nothing is lost. */
                if (e)
                    AAS_LOG(AAS_LOG_WARN, "worker", "offset store %s/%d@%lld: %s",
                            done->elems[i].topic, (int)done->elems[i].partition,
                            (long long)done->elems[i].offset, rd_kafka_err2str(e));
            }
        }
    }
    int retry = 0;
    for (size_t i = 0; i < n; i++) retry |= out[i] == AAS_MSG_RETRY;
    if (done) rd_kafka_topic_partition_list_destroy(done);
    if (blocked) rd_kafka_topic_partition_list_destroy(blocked);
    if (retry) aas_consumer_backoff(c, stop);
    else aas_consumer_backoff_reset(c);
}

static void aas_consumer_pause(aas_consumer_t *c, int pause) {
    rd_kafka_topic_partition_list_t *a = NULL;
    rd_kafka_resp_err_t err = rd_kafka_assignment(c->rk, &a);
    if (!err && a->cnt > 0)
        err = pause ? rd_kafka_pause_partitions(c->rk, a) : rd_kafka_resume_partitions(c->rk, a);
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "%s partitions: %s", pause ? "pause" : "resume",
                rd_kafka_err2str(err));
    if (a) rd_kafka_topic_partition_list_destroy(a);
    if (!pause && c->held->cnt > 0 && (err = rd_kafka_pause_partitions(c->rk, c->held)))
        AAS_LOG(AAS_LOG_WARN, "worker", "re-pause held partitions: %s", rd_kafka_err2str(err));
}

void aas_consumer_hold(aas_consumer_t *c, const rd_kafka_message_t *msg) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (!rd_kafka_topic_partition_list_find(c->held, topic, msg->partition))
        rd_kafka_topic_partition_list_add(c->held, topic, msg->partition);
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    if (!one) return;
    rd_kafka_topic_partition_list_add(one, topic, msg->partition);
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(c->rk, one);
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "hold %s/%d: %s", topic, (int)msg->partition,
                rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(one);
}

void aas_consumer_release(aas_consumer_t *c) {
    if (c->held->cnt == 0) return;
    rd_kafka_resp_err_t err = rd_kafka_resume_partitions(c->rk, c->held);
    if (err)
        AAS_LOG(AAS_LOG_WARN, "worker", "resume held partitions: %s", rd_kafka_err2str(err));
    /* Emptied in place: the list is never reallocated, so this cannot fail. */
    while (c->held->cnt > 0)
        rd_kafka_topic_partition_list_del_by_idx(c->held, c->held->cnt - 1);
}

void aas_consumer_backoff(aas_consumer_t *c, volatile sig_atomic_t *stop) {
    c->retries++;
    c->rng = c->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    int64_t wait = c->backoff_ms / 2 +
                   (int64_t)((c->rng >> 33) % (uint64_t)(c->backoff_ms / 2 + 1));
    AAS_LOG(AAS_LOG_WARN, "worker", "transient failure, pausing backoff_ms=%lld retries=%llu",
            (long long)wait, c->retries);
    aas_consumer_pause(c, 1);
    int64_t until = aas_mono_us() + wait * 1000;
    while (!*stop && aas_mono_us() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);
        if (!m) continue;
        /* Fetched before the pause or from a new assignment: not handled
         * now, so it must come again. */
        if (!m->err) aas_consumer_rewind(c, m);
        rd_kafka_message_destroy(m);
    }
    aas_consumer_pause(c, 0);
    c->backoff_ms = c->backoff_ms * 2 > c->backoff_max_ms ? c->backoff_max_ms
                                                          : c->backoff_ms * 2;
}

void aas_consumer_backoff_reset(aas_consumer_t *c) { c->backoff_ms = c->backoff_min_ms; }

void aas_consumer_charge(aas_consumer_t *c, const int64_t *compute_us, size_t n) {
    for (size_t i = 0; i < n && i < c->win_n; i++)
        if (c->win[i].lane >= 0 && c->fair[c->win[i].lane])
            aas_fair_charge(c->fair[c->win[i].lane], &c->win[i].ticket, compute_us[i]);
    c->win_n = 0;
}

size_t aas_consumer_buffered(const aas_consumer_t *c) {
    size_t n = 0;
    for (int i = 0; i < AAS_LANE_MAX; i++)
        if (c->fair[i]) n += aas_fair_count(c->fair[i]);
    return n;
}

unsigned long long aas_consumer_retries(const aas_consumer_t *c) { return c->retries; }

void aas_consumer_assignment(aas_consumer_t *c, char *buf, size_t size) {
    rd_kafka_topic_partition_list_t *a = NULL;
    buf[0] = '\0';
    if (rd_kafka_assignment(c->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        aas_consumer_parts_str(a, buf, size);
        rd_kafka_topic_partition_list_destroy(a);
    }
}

int aas_consumer_joined(const aas_consumer_t *c) { return c->assigned_once; }

aas_err_t aas_consumer_auth_check(aas_consumer_t *c, char *errstr, size_t errstr_size) {
    return aas_kafka_auth_check(c->auth, c->rk, errstr, errstr_size);
}

const char *aas_consumer_group(const aas_consumer_t *c) { return c->group; }
