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
#include <stdint.h>

#include "conf.h"
#include "err.h"
#include "policy.h"
#include "skew.h"

/** The scheduler's configuration rows (plus conf.h's common ones): the one
 *  place of each key's default, range and doc; each names its member of
 *  aas_scheduler_conf_t. */
extern const aas_conf_def_t aas_scheduler_conf_defs[];

/** The scheduler's settings, parsed once (aas_conf_fill). */
typedef struct {
    const char *group;                        /* worker.group */
    int64_t timeout_ms, interval_ms;          /* scheduler.timeout.ms, .interval.ms */
    int64_t min, max;                         /* scheduler.min, .max */
    int64_t lag_threshold, drain_s;           /* scheduler.lag.threshold, .drain.s */
    int64_t down_window_s, cooldown_s, down_step; /* scheduler.down.window.s, ... */
    int64_t headroom_pct;                     /* scheduler.headroom.pct */
    int64_t age_target_s, age_timeout_ms;     /* scheduler.age.target.s, .age.timeout.ms */
    int64_t busy_age_ms, inflight_ms;         /* scheduler.busy.age.ms, .inflight.ms */
    int skew_restart;                         /* scheduler.skew.restart */
    int64_t skew_window_s, skew_cooldown_s, skew_slow_pct, skew_lag, skew_warmup_s;
    int64_t skew_age_s, skew_key_pct;         /* scheduler.skew.age.s, .key.pct */
    int grow_partitions;                      /* scheduler.grow.partitions */
    int64_t lane_high_weight;                 /* scheduler.lane.high.weight */
    const char *actuator, *worker_bin, *worker_prefix, *worker_logdir, *command;
    int64_t worker_metrics_port;              /* scheduler.worker.metrics.port */
    int64_t command_timeout_ms;               /* scheduler.command.timeout.ms */
    int64_t command_reconcile_ms;             /* scheduler.command.reconcile.ms */
} aas_scheduler_conf_t;

/** @brief The policy's and skew detector's settings from the scheduler's
 *         (unit conversions only: percent to ratio, ms to s). */
void aas_scheduler_policy_conf(const aas_scheduler_conf_t *c, aas_policy_conf_t *pc,
                               aas_skew_conf_t *kc);

/** @brief The same from the table's defaults alone (tests, tools). */
aas_err_t aas_scheduler_policy_defaults(aas_policy_conf_t *pc, aas_skew_conf_t *kc);

/** @brief Run until *stop; then stop the workers it started (local). */
aas_err_t aas_scheduler_run(const aas_conf_t *conf, volatile sig_atomic_t *stop,
                            char *errstr, size_t errstr_size);

#endif
