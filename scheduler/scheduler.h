/*
 * scheduler.h - the scheduler's loop: observe, decide, act.
 *
 * Every scheduler.interval.ms it measures the worker group's lag and the
 * arrival rate on topic.infer (Kafka), the live workers and their
 * completion rates (heartbeats in Redis), asks the policy (policy.h) for a
 * worker count, and has the actuator (actuator.h) apply it.  Decisions are
 * logged and appended to Redis.  It holds no state that matters for data:
 * if it dies, workers keep working; on restart it rebuilds its view.
 */
#ifndef AAS_SCHEDULER_H
#define AAS_SCHEDULER_H

#include <signal.h>

#include "conf.h"
#include "err.h"

/** The scheduler's configuration rows (plus conf.h's common ones). */
extern const aas_conf_def_t aas_scheduler_conf_defs[];

/** @brief Run until *stop; then stop the workers it started (local). */
aas_err_t aas_scheduler_run(const aas_conf_t *conf, volatile sig_atomic_t *stop,
                            char *errstr, size_t errstr_size);

#endif
