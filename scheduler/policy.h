/*
 * policy.h - how many workers a topic should have: a pure function from
 * what was measured to a worker count (docs/scheduler.md, "Policy").
 *
 * The need comes from measured rates when the workers' service rate is
 * known (enough capacity for the arrivals with headroom, and to drain the
 * backlog within target_drain_s); otherwise from KEDA's Kafka rule,
 * lag / lag_threshold.  Either is rounded to a worker count that actually
 * adds capacity on the topic's partitions, and a queue older than
 * target_queue_age_s adds capacity even when the rates say otherwise.
 * With no lag, arrivals under 0.01 workers' worth are none (a decaying
 * rate's residue neither keeps nor wakes a worker).
 * Up is immediate; down waits until less was needed for a whole
 * stabilisation window, then steps max_step_down at a time, cooldown_s
 * apart.  A measurement that is unknown is never read as zero: missing
 * data may scale up, never down.
 *
 * It does not measure, act, log or read a clock: the caller passes the
 * time and keeps the state (scheduler.c).
 */
#ifndef AAS_POLICY_H
#define AAS_POLICY_H

#include <stdint.h>

typedef struct {
    int min_workers, max_workers;  /* bounds, 0 <= min <= max (1, 8); min wins
                                    * over partitions */
    int partitions;                /* the topic's partition count; 0 unknown:
                                    * no cap (0) */
    int can_grow_partitions;       /* an actuator may add partitions (0) */
    double lag_threshold;          /* jobs of lag per worker, the fallback
                                    * rule when the service rate is unknown
                                    * (100) */
    double target_drain_s;         /* drain a backlog within this (10) */
    double target_queue_age_s;     /* oldest queued job's age target (5) */
    double headroom;               /* capacity over the arrival rate (1.2) */
    double scale_down_window_s;    /* less must be needed this long before a
                                    * scale-down (60) */
    double cooldown_s;             /* after any change: no scale-down, and no
                                    * age-driven scale-up, for this long; a
                                    * rate- or lag-driven scale-up never
                                    * waits (15) */
    int max_step_down;             /* workers removed per decision (1) */
} aas_policy_conf_t;

/* One observation.  Negative (or NaN/Inf) means unknown, never zero. */
typedef struct {
    double now_s;                    /* monotonic seconds, >= 0 */
    int current_workers;             /* live workers now (< 0 read as 0) */
    int64_t lag;                     /* total lag; -1 unknown */
    double arrival_rate;             /* jobs/s arriving; < 0 unknown */
    double service_rate_per_worker;  /* jobs/s one busy worker completes;
                                      * below 1e-6 unknown */
    double oldest_age_s;             /* oldest queued job's age; < 0 unknown */
} aas_policy_obs_t;

/* What the policy remembers between decisions: plain data, the caller
 * keeps it (one per topic) and passes it back unchanged. */
typedef struct {
    double last_up_s, last_down_s;   /* time of the last change; < 0 never */
    double lower_since_s;            /* less needed than current since; < 0
                                      * not */
    int window_max;                  /* the most needed since lower_since_s:
                                      * how far a scale-down may go */
} aas_policy_state_t;

/** @brief Start state: no change yet, no scale-down pending. */
void aas_policy_state_init(aas_policy_state_t *s);

typedef struct {
    int desired;          /* workers wanted after this decision */
    int raw;              /* the rule's count, before bounds and
                           * stabilisation (for logs) */
    int want_partitions;  /* > partitions: grow the topic to this; else 0 */
    char reason[256];     /* one line: the rule, its numbers, the action */
} aas_policy_decision_t;

/**
 * @brief Decide the worker count for one topic.
 * @param c configuration (see aas_policy_conf_t; out-of-range values are
 *          read as their nearest sane value, never divided by).
 * @param o this tick's observation.
 * @param s the state of the previous decisions; read and updated.
 * @param d filled completely, reason always non-empty.
 * Pure: no clock, no I/O, no globals.  Thread-safe for distinct s and d.
 */
void aas_policy_decide(const aas_policy_conf_t *c, const aas_policy_obs_t *o,
                       aas_policy_state_t *s, aas_policy_decision_t *d);

#endif
