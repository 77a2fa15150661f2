/*
 * observe.h - what the scheduler measures about the fleet's Kafka side.
 *
 * Per partition of a topic: the high watermark, the group's committed
 * offset and the lag between them, and the timestamp of the oldest job not
 * done yet (the message at the committed offset).  A measurement that
 * fails is UNKNOWN, never zero: a scheduler must not read "no lag" from
 * missing data (the classic failure of lag-based autoscalers
 * mid-rebalance), nor "fresh queue" from an age it could not read.
 *
 * Threading: an aas_observer_t is used by one thread at a time.
 */
#ifndef AAS_OBSERVE_H
#define AAS_OBSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "err.h"

#define AAS_OBSERVE_UNKNOWN (-1)
#define AAS_OBSERVE_GROUP_MAX 256  /* bytes of group.id, with its NUL */

typedef struct {
    int32_t partition;
    int64_t high;       /* high watermark, or AAS_OBSERVE_UNKNOWN */
    int64_t committed;  /* group's committed offset; AAS_OBSERVE_UNKNOWN if
                         * the query failed; 0 when the group never
                         * committed (then lag = high - low) */
    int64_t lag;        /* AAS_OBSERVE_UNKNOWN unless both are known */
    int64_t oldest_ts_ms; /* timestamp (unix ms) of the message at
                           * `committed`, the oldest job not done yet;
                           * AAS_OBSERVE_UNKNOWN when lag <= 0 (nothing
                           * queued) or it was not read (set by
                           * aas_observer_oldest) */
} aas_partition_lag_t;

typedef struct aas_observer_s aas_observer_t;

/** @brief Kafka handles for `group` (they never join the group nor
 *         commit).  conf is read here only. */
aas_err_t aas_observer_new(const aas_conf_t *conf, const char *group,
                           aas_observer_t **out, char *errstr,
                           size_t errstr_size);
void aas_observer_destroy(aas_observer_t *o);

/** @brief The consumer group whose offsets it reads: `group` of
 *         aas_observer_new(), unless the configuration sets kafka.group.id
 *         (then that, as for the workers).  Borrowed, valid until
 *         aas_observer_destroy(); thread-safe. */
const char *aas_observer_group(const aas_observer_t *o);

/**
 * @brief Lag of every partition of topic.
 * @param parts malloc'ed array (caller frees) of *n entries on success.
 */
aas_err_t aas_observer_lag(aas_observer_t *o, const char *topic,
                           int timeout_ms, aas_partition_lag_t **parts,
                           size_t *n, char *errstr, size_t errstr_size);

/**
 * @brief The timestamp of the oldest job not done yet, per partition:
 *        for every entry of parts with lag > 0, read the one message at
 *        the committed offset (a separate handle assigned to those
 *        offsets: no group join, no commit, small fetches) and set
 *        oldest_ts_ms from its timestamp.
 * @param parts from aas_observer_lag(); entries with lag > 0 are updated,
 *        the others get AAS_OBSERVE_UNKNOWN.
 * @param timeout_ms bound on the whole read; a partition not read in time
 *        (or whose message carries no timestamp) stays AAS_OBSERVE_UNKNOWN.
 * @return AAS_ERR_OK, also when some partitions stay unknown; an error
 *         when the read could not even start (then every entry is unknown).
 */
aas_err_t aas_observer_oldest(aas_observer_t *o, const char *topic,
                              aas_partition_lag_t *parts, size_t n,
                              int timeout_ms, char *errstr,
                              size_t errstr_size);

/**
 * @brief Age in seconds at now_ms of the oldest queued job of the topic:
 *        the largest now_ms - oldest_ts_ms over the partitions with lag
 *        (clamped at 0: clocks differ between hosts).
 * @param partial set to 1 when some partition's lag or age is unknown, so
 *        the result is a lower bound (may be NULL).
 * @return that age; 0 when every lag is known and 0 (nothing is queued);
 *         AAS_OBSERVE_UNKNOWN when nothing was measured (no partitions,
 *         or no lagging partition's age is known while some lag or age is
 *         unknown).  Never 0 for "could not tell".  Pure; thread-safe.
 */
double aas_observe_oldest_age_s(const aas_partition_lag_t *parts, size_t n,
                                int64_t now_ms, int *partial);

/* One priority lane's backlog (common/lane.h), as the policy should weigh
 * it: a high-lane job waiting counts `weight` times. */
typedef struct {
    int64_t lag;      /* queued jobs; AAS_OBSERVE_UNKNOWN if not measured */
    double age_s;     /* oldest queued job's age; < 0 unknown (or none) */
    double weight;    /* >= 1 */
} aas_lane_backlog_t;

/**
 * @brief The backlog the policy sees from all lanes: lag = sum of
 *        weight x lag, age = the largest weight x age.  Any lane's lag
 *        unknown makes the lag unknown (never a smaller number); the age
 *        is the largest known one (a lower bound, *partial = 1, when some
 *        lane with lag has no age), AAS_OBSERVE_UNKNOWN when none is known
 *        and some is missing, 0 when nothing is queued anywhere.  Pure.
 */
void aas_observe_lanes_fold(const aas_lane_backlog_t *lanes, size_t n, int64_t *lag,
                            double *age_s, int *partial);

#endif
