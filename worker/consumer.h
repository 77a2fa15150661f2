/*
 * consumer.h - the worker's side of Kafka: group membership
 * (cooperative-sticky), windows of fetched messages, offsets stored only
 * for messages whose outcome is recorded, rewinding what must come again,
 * holding partitions while a training job runs, and backing off after a
 * transient failure without leaving the group.
 *
 * Offsets: enable.auto.offset.store=false and auto-commit of what was
 * stored, so a committed offset never passes a message whose outcome is
 * not in Redis (at-least-once); a new group starts at the earliest offset
 * (auto.offset.reset=earliest), so no job published before the first
 * worker joined is skipped.
 *
 * Priority lanes (lane.h, docs/sharing.md): each inference lane topic's
 * partitions are forwarded, as they are assigned, to a queue of that lane
 * (rd_kafka_queue_get_partition + rd_kafka_queue_forward), so a high-lane
 * message fetched behind thousands of prefetched normal ones is served
 * next, not after them.  A window is opened from the highest lane with a
 * message waiting, except that a lower lane with messages waiting is
 * passed over at most lane_share - 1 windows in a row (the starvation
 * guard).  The consumer queue itself keeps the rebalance events, errors,
 * training messages and any message fetched before its partition was
 * forwarded (served first: there are few).
 *
 * Fair share (fair.h, docs/sharing.md#fair-share): with fair_jobs > 0,
 * each lane's messages are read ahead (up to fair_jobs and fair_bytes a
 * lane) and handed out by deficit round robin between their tenants, so a
 * tenant's job is not served after another tenant's whole backlog.  Jobs
 * then finish out of offset order: a partition's offset is stored only up
 * to its first unfinished message (ledger.h), and a rewound or revoked
 * partition's read-ahead is dropped (it comes again).  While several
 * tenants' jobs arrive, windows are cut to fair_window messages, since a
 * job arriving mid-window waits for that window and its own.
 *
 * It knows nothing of jobs, Redis or models (the tenant of a message comes
 * from the caller's tenant_of).
 *
 * Threading: one thread (the worker's loop); the rebalance callback runs
 * inside aas_consumer_poll() on that thread.
 */
#ifndef AAS_CONSUMER_H
#define AAS_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "lane.h"
#include "outcome.h"

#define AAS_CONSUMER_GROUP_MAX 256  /* bytes of group.id, with its NUL */

typedef struct aas_consumer_s aas_consumer_t;

typedef struct {
    const char *client_id;     /* Kafka client.id (the worker id) */
    const char *group;         /* consumer group */
    /* Inference lane topics, highest first; NULL: the lane is not used
     * (lanes off: only [AAS_LANE_NORMAL]; none: a training-only worker,
     * then train_topic must be set).  At least one topic in all. */
    const char *lanes[AAS_LANE_MAX];
    const char *train_topic;   /* also subscribed, unless NULL */
    int64_t lane_share;        /* starvation guard: a waiting lane is passed
                                * over at most lane_share - 1 windows in a row
                                * (worker.lane.share; >= 1) */
    size_t max_message_bytes;  /* job.max.bytes */
    int64_t backoff_min_ms, backoff_max_ms;  /* retry.backoff.ms, .max.ms */
    /* Fair share: jobs and bytes read ahead per lane (worker.fair.jobs,
     * worker.fair.mb); fair_jobs 0 = off, lanes are served in offset order. */
    size_t fair_jobs, fair_bytes;
    int64_t fair_quantum_us;      /* worker.fair.quantum.us */
    const char *fair_weights;     /* worker.fair.weights (fair.h syntax) */
    /* The tenant of a lane message into out (AAS_ID_MAX+1 bytes; "" for
     * none or unknown).  Required when fair_jobs > 0. */
    void (*tenant_of)(const rd_kafka_message_t *m, char *out, void *opaque);
    void *tenant_opaque;
    size_t max_window;            /* most messages in one window (charge) */
    /* While jobs of more than one tenant arrived within the last second, a
     * fair-share window holds at most this many (worker.fair.window.jobs;
     * 0 = no cap): a job arriving meanwhile waits for less. */
    size_t fair_window;
} aas_consumer_conf_t;

/** @brief Create and subscribe.  conf (kafka.* keys) is read now only. */
aas_err_t aas_consumer_new(const aas_conf_t *conf, const aas_consumer_conf_t *cc,
                           aas_consumer_t **out, char *errstr, size_t errstr_size);

/** @brief Commit what was stored (bounded wait), leave the group, free.
 *         NULL is a no-op. */
void aas_consumer_destroy(aas_consumer_t *c);

/** @brief The next message within timeout_ms, or NULL (errors are logged
 *         here): a training message or one that opens a window, taken
 *         from the lane chosen as consumer.h says (that choice is counted
 *         as one window).  The caller owns it (rd_kafka_message_destroy). */
rd_kafka_message_t *aas_consumer_poll(aas_consumer_t *c, int timeout_ms);

/**
 * @brief A window after msgs[0]: what is already fetched, or what arrives
 *        within delay_us, up to cap messages, all of msgs[0]'s topic (its
 *        lane).  A message of another topic ends the window: a training
 *        message comes back in *tail, another lane's is kept and is the
 *        next aas_consumer_poll()'s.  A rebalance (partitions revoked
 *        meanwhile) ends it too.
 * @return the window's message count (>= 1).
 */
size_t aas_consumer_collect(aas_consumer_t *c, rd_kafka_message_t **msgs, size_t cap,
                            int64_t delay_us, rd_kafka_message_t **tail);

/**
 * @brief The window just collected (msgs[0..n) as aas_consumer_poll and
 *        aas_consumer_collect gave them) was run: compute_us[i] is what
 *        msgs[i]'s job measured.  Its tenant's fair share is charged with
 *        it (nothing when fair share is off).
 */
void aas_consumer_charge(aas_consumer_t *c, const int64_t *compute_us, size_t n);

/** @brief Lane messages read ahead for the fair share, all lanes. */
size_t aas_consumer_buffered(const aas_consumer_t *c);

/**
 * @brief After a window: per partition, store the offset after the last
 *        message that is DONE before the first that is not; rewind that one
 *        (everything after it comes again, and is found terminal).  With
 *        fair share, "before" counts every message read ahead of the
 *        partition, not only the window's (ledger.h).  Backs off
 *        (aas_consumer_backoff) if any message must be retried.
 */
void aas_consumer_settle(aas_consumer_t *c, rd_kafka_message_t *const *msgs,
                         const aas_msg_outcome_t *out, size_t n,
                         volatile sig_atomic_t *stop);

/** @brief Store msg's offset + 1 (its outcome is recorded). */
void aas_consumer_store(aas_consumer_t *c, const rd_kafka_message_t *msg);

/** @brief Put msg's partition back to msg so it comes again. */
void aas_consumer_rewind(aas_consumer_t *c, const rd_kafka_message_t *msg);

/** @brief Pause msg's partition until aas_consumer_release(). */
void aas_consumer_hold(aas_consumer_t *c, const rd_kafka_message_t *msg);

/** @brief Resume every held partition. */
void aas_consumer_release(aas_consumer_t *c);

/**
 * @brief After a transient failure: pause fetching, wait (exponential
 *        backoff with full jitter, retry.backoff.ms doubling up to
 *        retry.backoff.max.ms), keep the membership alive, resume.
 */
void aas_consumer_backoff(aas_consumer_t *c, volatile sig_atomic_t *stop);

/** @brief A message went through: the next backoff starts small again. */
void aas_consumer_backoff_reset(aas_consumer_t *c);

/** @brief Backoffs so far. */
unsigned long long aas_consumer_retries(const aas_consumer_t *c);

/** @brief The assignment as "topic/p,topic/p" (cut to fit size). */
void aas_consumer_assignment(aas_consumer_t *c, char *buf, size_t size);
/** @brief 1 once the consumer has joined its group (its first assignment,
 *         possibly empty, has come). */
int aas_consumer_joined(const aas_consumer_t *c);

/** @brief AAS_ERR_AUTH (errstr says why, never a password) while Kafka
 *         refuses the consumer's credentials (kafka.h's
 *         aas_kafka_auth_check), else AAS_ERR_OK.  The worker's thread. */
aas_err_t aas_consumer_auth_check(aas_consumer_t *c, char *errstr, size_t errstr_size);

/** @brief The consumer group it is in: the group.id its Kafka handle uses
 *         (worker.group, unless the configuration sets kafka.group.id).
 *         Borrowed, valid until aas_consumer_destroy(); thread-safe. */
const char *aas_consumer_group(const aas_consumer_t *c);

#endif
