/*
 * grow.h - the scheduler's partition action: add partitions to a topic
 * (Admin API CreatePartitions) when the policy wants more workers than
 * there are partitions (scheduler.grow.partitions).  Observing stays in
 * observe.h and deciding in policy.h; this only acts, and only through
 * the actuator's ops table (actuator.h: ops->grow), which owns the handle.
 *
 * Threading: one thread.
 */
#ifndef AAS_GROW_H
#define AAS_GROW_H

#include <stddef.h>

#include "conf.h"
#include "err.h"

typedef struct aas_grow_s aas_grow_t;

/** @brief An admin client from conf's kafka.* settings. */
aas_err_t aas_grow_new(const aas_conf_t *conf, aas_grow_t **out, char *errstr,
                       size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_grow_destroy(aas_grow_t *g);

/**
 * @brief Grow topic to `partitions` partitions.
 * @return AAS_ERR_INVAL when the broker refuses or does not support it
 *         (the dev broker cannot add partitions), AAS_ERR_KAFKA/TIMEOUT on
 *         transient failures.
 */
aas_err_t aas_grow_partitions(aas_grow_t *g, const char *topic, int partitions,
                              int timeout_ms, char *errstr, size_t errstr_size);

#endif
