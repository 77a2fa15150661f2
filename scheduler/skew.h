/*
 * skew.h - is the load spread badly over the fleet, and what may fix it
 * (docs/scheduler.md, "Rebalancing by load").
 *
 * Two findings, from the partitions' lag and the workers' heartbeats:
 *  - a slow worker: its partitions are behind while it completes well
 *    below the median rate of the others, or (once its backlog settled and
 *    it completes what arrives) its partitions stay behind while they
 *    receive no more than the others (a degraded process: restart it,
 *    the cooperative-sticky assignor hands its partitions out anew);
 *  - hot partitions: a few partitions behind while most keep up.  If
 *    one worker holds several of them while another holds none, restarting
 *    it spreads them; if each hot partition already has a worker of its
 *    own, nothing the scheduler can move helps (a partition is read by one
 *    consumer: the fix is more partitions or keyless producing), and the
 *    finding is reported.
 * A finding must hold for a whole window before anything is done, and
 * actions are a cooldown apart (no restart storms).  Missing data finds
 * nothing (and neither confirms nor clears a finding: gaps shorter than
 * the window are bridged); a fleet that just changed size finds nothing
 * and starts over.
 *
 * aas_skew_decide() is pure like the policy (no clock, no I/O): the caller
 * passes the time and keeps the state.  aas_skew_worker_parse() reads a
 * worker's heartbeat (worker.c) into the detector's input.
 */
#ifndef AAS_SKEW_H
#define AAS_SKEW_H

#include <stddef.h>
#include <stdint.h>

#include "heartbeat.h"
#include "job.h"
#include "observe.h"

#define AAS_SKEW_ID_MAX (AAS_ID_MAX + 1)
#define AAS_SKEW_WORKER_PARTS 256

typedef struct {
    double window_s;     /* a finding must hold this long (20) */
    double cooldown_s;   /* between two actions, restarts or reports (120) */
    double slow_ratio;   /* slow: rate below this x the others' median (0.5) */
    int64_t min_lag;     /* jobs: a partition with less is not behind (100) */
    double min_age_s;    /* nor one whose oldest queued job is younger,
                          * when that age is known (5) */
    double warmup_s;     /* younger workers are neither judged nor compared
                          * with (30) */
    double key_factor;   /* a hot partition receiving more than this x the
                          * median partition's arrivals is hot by its keys;
                          * with no more, its worker is slow (2) */
} aas_skew_conf_t;

/* One live worker, as its heartbeat describes it. */
typedef struct {
    char id[AAS_SKEW_ID_MAX];
    char host[64];
    int pid;
    double rate;            /* jobs/s completed lately; < 0 unknown */
    double uptime_s;        /* since it started; < 0 unknown */
    int training;           /* runs a training job: its inference rate
                             * says nothing about its speed */
    uint64_t done, failed;
    int32_t partitions[AAS_SKEW_WORKER_PARTS]; /* of the topic, as assigned */
    size_t n_partitions;
} aas_skew_worker_t;

/**
 * @brief Read a heartbeat (JSON written by aas-worker) into *w: keep the
 *        partitions of `topic` only; uptime from started_ms at now_ms.
 * @return 0, or -1 if it is not a heartbeat (no id); *w is then zeroed.
 *         Pure; thread-safe.
 */
int aas_skew_worker_parse(const char *json, const char *topic, int64_t now_ms,
                          aas_skew_worker_t *w);

/** @brief The same from a heartbeat already read (aas_heartbeat_parse()),
 *         for a caller that looks at the record first (its group).  Pure;
 *         thread-safe. */
void aas_skew_worker_from(const aas_heartbeat_t *hb, const char *topic, int64_t now_ms,
                          aas_skew_worker_t *w);

typedef struct {
    double now_s;                  /* monotonic seconds */
    double last_change_s;          /* the fleet's size last changed (< 0
                                    * never): partitions were moving */
    const aas_partition_lag_t *parts; /* every partition of the topic */
    const double *arrival;         /* per entry of parts: jobs/s arriving
                                    * lately; NULL or < 0: unknown */
    const double *age_s;           /* per entry of parts: age of its oldest
                                    * queued job; NULL or < 0: unknown */
    size_t n_parts;
    const aas_skew_worker_t *workers; /* live workers */
    size_t n_workers;
} aas_skew_obs_t;

typedef enum {
    AAS_SKEW_NONE = 0,
    AAS_SKEW_SLOW_WORKER,   /* one worker completes far less than the rest */
    AAS_SKEW_HOT_TOGETHER,  /* one worker holds several hot partitions */
    AAS_SKEW_HOT_KEYS       /* hot partitions, each with its own worker */
} aas_skew_kind_t;

typedef enum {
    AAS_SKEW_HOLD = 0,      /* nothing to do (yet) */
    AAS_SKEW_RESTART,       /* restart worker `worker` */
    AAS_SKEW_REPORT         /* log the finding: nothing here can move it */
} aas_skew_action_t;

/* What the detector remembers: plain data, kept by the caller. */
typedef struct {
    aas_skew_kind_t kind;          /* the finding being timed */
    char suspect[AAS_SKEW_ID_MAX]; /* the worker it names, "" none */
    double since_s;                /* it has held since; < 0 nothing held */
    double seen_s;                 /* last tick it was found; < 0 never */
    double last_action_s;          /* last restart or report; < 0 never */
} aas_skew_state_t;

/** @brief Start state: nothing found, nothing done. */
void aas_skew_state_init(aas_skew_state_t *s);

typedef struct {
    aas_skew_kind_t kind;          /* what holds on this tick */
    aas_skew_action_t action;
    char worker[AAS_SKEW_ID_MAX];  /* the worker the finding names */
    char reason[320];              /* one line, always non-empty */
} aas_skew_decision_t;

/**
 * @brief What one busy worker completes: the mean rate of the workers that
 *        hold a partition whose oldest job has waited busy_age_s or more
 *        (they have work queued, so their rate is their capacity), leaving
 *        out workers that train, are younger than min_uptime_s, or report
 *        no rate.  A worker without a backlog completes what arrives, which
 *        says nothing about what it could do.
 * @param o the partitions with ages (o->age_s) and the live workers; the
 *        other fields are not read.
 * @return jobs/s, or -1 when no worker is busy (or ages are unknown).
 *         Pure; thread-safe.
 */
double aas_skew_busy_rate(const aas_skew_obs_t *o, double busy_age_s,
                          double min_uptime_s);

/** @brief "none", "slow-worker", "hot-partitions-together", "hot-keys". */
const char *aas_skew_kind_name(aas_skew_kind_t kind);

/**
 * @brief Look for skew on one topic and say what to do.
 * @param c its values as the scheduler's configuration table allows them
 *        (aas_scheduler_policy_conf); a value out of range holds (no
 *        action, the reason names it), except min_lag < 1, read as 1.
 * @param s read and updated (see aas_skew_state_t).
 * @param d filled completely.
 * Pure: no clock, no I/O, no globals.  Thread-safe for distinct s and d.
 */
void aas_skew_decide(const aas_skew_conf_t *c, const aas_skew_obs_t *o,
                     aas_skew_state_t *s, aas_skew_decision_t *d);

#endif
