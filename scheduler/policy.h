/*
 * policy.h - how many workers the fleet should have: a pure function of
 * what was measured (docs/scheduler.md).
 *
 * Baseline is KEDA's Kafka rule, ceil(lag / lag_threshold).  When the
 * workers' service rate is known it does better: enough workers to absorb
 * the arrival rate with headroom and to drain the backlog within
 * target_drain_s.  Up is fast, down is slow: a lower count must hold for
 * scale_down_window_s, and each step down removes at most max_step_down.
 * Unknown measurements never scale down.
 *
 * Pure: no clock, no I/O; the caller passes the time and keeps the state.
 */
#ifndef AAS_POLICY_H
#define AAS_POLICY_H

#include <stdint.h>

typedef struct {
    int min_workers, max_workers;    /* 0 <= min <= max */
    int partitions;                  /* consumers beyond this would idle */
    int can_grow_partitions;         /* an actuator may add partitions */
    double lag_threshold;            /* jobs per worker, fallback rule (100) */
    double target_drain_s;           /* drain a backlog within this (10) */
    double target_queue_age_s;       /* oldest job's age target (5) */
    double headroom;                 /* capacity over the arrival rate (1.2) */
    double scale_down_window_s;      /* lower need must hold this long (30) */
    double cooldown_s;               /* between two scale-downs (10) */
    int max_step_down;               /* workers removed per decision (1) */
} aas_policy_conf_t;

void aas_policy_conf_default(aas_policy_conf_t *c);

typedef struct {
    double now_s;                    /* monotonic seconds */
    int current_workers;
    int64_t lag;                     /* total lag; -1 unknown */
    double arrival_rate;             /* jobs/s; < 0 unknown */
    double service_rate_per_worker;  /* jobs/s per busy worker; <= 0 unknown */
    double oldest_age_s;             /* < 0 unknown */
} aas_policy_obs_t;

/* What the policy remembers between decisions (plain data). */
typedef struct {
    double below_since_s;            /* need < current since; < 0: not */
    int window_max;                  /* largest need seen in that window */
    double last_down_s;              /* time of the last scale-down */
} aas_policy_state_t;

void aas_policy_state_init(aas_policy_state_t *s);

typedef struct {
    int desired;                     /* workers after this decision */
    int raw;                         /* the rule's need before bounds */
    int want_partitions;             /* > partitions: grow the topic; else 0 */
    char reason[256];                /* which rule decided, with numbers */
} aas_policy_decision_t;

/** @brief Decide.  Reads o, updates s, fills d.  Thread-safe (pure). */
void aas_policy_decide(const aas_policy_conf_t *c, const aas_policy_obs_t *o,
                       aas_policy_state_t *s, aas_policy_decision_t *d);

#endif
