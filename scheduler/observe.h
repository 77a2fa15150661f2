/*
 * observe.h - what the scheduler measures about the fleet's Kafka side.
 *
 * Per partition of a topic: the high watermark, the group's committed
 * offset and the lag between them.  A measurement that fails is UNKNOWN,
 * never zero: a scheduler must not read "no lag" from missing data (the
 * classic failure of lag-based autoscalers mid-rebalance).
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

typedef struct {
    int32_t partition;
    int64_t high;       /* high watermark, or AAS_OBSERVE_UNKNOWN */
    int64_t committed;  /* group's committed offset; AAS_OBSERVE_UNKNOWN if
                         * the query failed; 0 when the group never
                         * committed (then lag = high - low) */
    int64_t lag;        /* AAS_OBSERVE_UNKNOWN unless both are known */
} aas_partition_lag_t;

typedef struct aas_observer_s aas_observer_t;

/** @brief A Kafka handle for `group` (it does not join the group). */
aas_err_t aas_observer_new(const aas_conf_t *conf, const char *group,
                           aas_observer_t **out, char *errstr,
                           size_t errstr_size);
void aas_observer_destroy(aas_observer_t *o);

/**
 * @brief Lag of every partition of topic.
 * @param parts malloc'ed array (caller frees) of *n entries on success.
 */
aas_err_t aas_observer_lag(aas_observer_t *o, const char *topic,
                           int timeout_ms, aas_partition_lag_t **parts,
                           size_t *n, char *errstr, size_t errstr_size);

/**
 * @brief Grow topic to `partitions` partitions (Admin API CreatePartitions).
 * @return AAS_ERR_INVAL when the broker refuses or does not support it
 *         (the dev broker cannot add partitions), AAS_ERR_KAFKA/TIMEOUT on
 *         transient failures.
 */
aas_err_t aas_observer_grow(aas_observer_t *o, const char *topic, int partitions,
                            int timeout_ms, char *errstr, size_t errstr_size);

#endif
