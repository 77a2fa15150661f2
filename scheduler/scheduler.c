/* scheduler.c - observe, decide, act; see scheduler.h. */
#include "scheduler.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "actuator.h"
#include "cli.h"
#include "heartbeat.h"
#include "job.h"
#include "lane.h"
#include "log.h"
#include "metrics.h"
#include "observe.h"
#include "policy.h"
#include "skew.h"
#include "store.h"

const aas_conf_def_t aas_scheduler_conf_defs[] = {
    {"worker.group", AAS_CONF_STR, "aas-workers", 0, 0, 0,
     "Kafka consumer group of the fleet",
     AAS_CONF_FIELD(aas_scheduler_conf_t, group)},
    {"scheduler.timeout.ms", AAS_CONF_INT, "10000", 100, 600000, 0,
     "Timeout of each Kafka query",
     AAS_CONF_FIELD(aas_scheduler_conf_t, timeout_ms)},
    {"scheduler.interval.ms", AAS_CONF_INT, "2000", 100, 600000, 0,
     "Time between decisions",
     AAS_CONF_FIELD(aas_scheduler_conf_t, interval_ms)},
    {"scheduler.min", AAS_CONF_INT, "1", 0, 256, 0, "Fewest workers",
     AAS_CONF_FIELD(aas_scheduler_conf_t, min)},
    {"scheduler.max", AAS_CONF_INT, "8", 1, 256, 0, "Most workers",
     AAS_CONF_FIELD(aas_scheduler_conf_t, max)},
    {"scheduler.lag.threshold", AAS_CONF_INT, "100", 1, 1000000000, 0,
     "Queued jobs one worker may have (the fallback rule, as KEDA's)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, lag_threshold)},
    {"scheduler.drain.s", AAS_CONF_INT, "10", 1, 86400, 0,
     "Drain a backlog within this many seconds",
     AAS_CONF_FIELD(aas_scheduler_conf_t, drain_s)},
    {"scheduler.down.window.s", AAS_CONF_INT, "60", 0, 86400, 0,
     "Scale down only after less was needed for this long",
     AAS_CONF_FIELD(aas_scheduler_conf_t, down_window_s)},
    {"scheduler.cooldown.s", AAS_CONF_INT, "15", 0, 86400, 0,
     "After a change: no scale-down (and no queue-age scale-up) for this long",
     AAS_CONF_FIELD(aas_scheduler_conf_t, cooldown_s)},
    {"scheduler.down.step", AAS_CONF_INT, "1", 1, 256, 0,
     "Most workers removed by one decision",
     AAS_CONF_FIELD(aas_scheduler_conf_t, down_step)},
    {"scheduler.headroom.pct", AAS_CONF_INT, "20", 0, 1000, 0,
     "Capacity kept above the measured arrival rate, in percent",
     AAS_CONF_FIELD(aas_scheduler_conf_t, headroom_pct)},
    {"scheduler.age.target.s", AAS_CONF_INT, "5", 1, 86400, 0,
     "Oldest queued job's age above which capacity is added",
     AAS_CONF_FIELD(aas_scheduler_conf_t, age_target_s)},
    {"scheduler.age.timeout.ms", AAS_CONF_INT, "1000", 10, 60000, 0,
     "Time allowed to read the oldest queued job of each lagging partition",
     AAS_CONF_FIELD(aas_scheduler_conf_t, age_timeout_ms)},
    {"scheduler.busy.age.ms", AAS_CONF_INT, "2000", 0, 600000, 0,
     "A worker whose partition's oldest job waited this long is busy: its "
     "rate is taken as what one worker can do",
     AAS_CONF_FIELD(aas_scheduler_conf_t, busy_age_ms)},
    {"scheduler.inflight.ms", AAS_CONF_INT, "1500", 0, 600000, 0,
     "A partition whose oldest job waited less than this has jobs in flight, "
     "not a backlog (workers commit offsets every second)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, inflight_ms)},
    {"scheduler.lane.high.weight", AAS_CONF_INT, "4", 1, 1000, 0,
     "Priority lanes (topic.infer.lanes): a job queued on the high lane counts as N "
     "queued jobs, and its wait as N times as long, so a high-lane backlog adds workers "
     "sooner; the normal and low lanes count once",
     AAS_CONF_FIELD(aas_scheduler_conf_t, lane_high_weight)},
    {"scheduler.skew.restart", AAS_CONF_BOOL, "true", 0, 0, 0,
     "Restart a slow worker, or one holding several hot partitions (local "
     "actuator); false: only log the finding",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_restart)},
    {"scheduler.skew.window.s", AAS_CONF_INT, "20", 0, 86400, 0,
     "A skew finding must hold this long before it is acted on",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_window_s)},
    {"scheduler.skew.cooldown.s", AAS_CONF_INT, "120", 0, 86400, 0,
     "At most one skew action (restart or report) per this many seconds",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_cooldown_s)},
    {"scheduler.skew.slow.pct", AAS_CONF_INT, "50", 1, 100, 0,
     "A worker is slow below this percentage of the others' median rate",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_slow_pct)},
    {"scheduler.skew.lag", AAS_CONF_INT, "100", 1, 1000000000, 0,
     "Queued jobs from which a partition or worker counts as behind",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_lag)},
    {"scheduler.skew.warmup.s", AAS_CONF_INT, "30", 0, 86400, 0,
     "Workers younger than this are not judged slow",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_warmup_s)},
    {"scheduler.skew.age.s", AAS_CONF_INT, "5", 0, 86400, 0,
     "A partition whose oldest queued job is younger than this is not behind",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_age_s)},
    {"scheduler.skew.key.pct", AAS_CONF_INT, "200", 100, 100000, 0,
     "A hot partition receiving more than this percentage of the median partition's "
     "arrivals is hot by its keys (else its worker is slow)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, skew_key_pct)},
    {"scheduler.grow.partitions", AAS_CONF_BOOL, "false", 0, 0, 0,
     "Add partitions (CreatePartitions) when more workers than partitions "
     "are needed, up to scheduler.max",
     AAS_CONF_FIELD(aas_scheduler_conf_t, grow_partitions)},
    {"scheduler.actuator", AAS_CONF_STR, "local", 0, 0, 0,
     "local (spawn aas-worker here), command (run scheduler.command) or none (decide "
     "only: the count is served at GET /keda on metrics.port for KEDA to act on)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, actuator)},
    {"scheduler.worker.bin", AAS_CONF_STR, "aas-worker", 0, 0, 0,
     "Worker program the local actuator starts (PATH is searched)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, worker_bin)},
    {"scheduler.worker.prefix", AAS_CONF_STR, "sched", 0, 0, 0,
     "Prefix of the worker ids the local actuator gives",
     AAS_CONF_FIELD(aas_scheduler_conf_t, worker_prefix)},
    {"scheduler.worker.logdir", AAS_CONF_STR, "aas-worker-logs", 0, 0, 0,
     "Directory for the local workers' logs, one file per worker (WORKER_ID.log, appended); "
     "created if missing; a relative path is from the scheduler's working directory",
     AAS_CONF_FIELD(aas_scheduler_conf_t, worker_logdir)},
    {"scheduler.worker.metrics.port", AAS_CONF_INT, "0", 0, 65535, 0,
     "Local workers serve Prometheus metrics on ports from this one up (the lowest free of "
     "scheduler.max ports), reported in their heartbeat and by status; 0: none (the "
     "scheduler's own metrics.port is never passed on)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, worker_metrics_port)},
    {"scheduler.command", AAS_CONF_STR, NULL, 0, 0, 0,
     "Command actuator: shell command run with AAS_DESIRED_WORKERS set",
     AAS_CONF_FIELD(aas_scheduler_conf_t, command)},
    {"scheduler.command.timeout.ms", AAS_CONF_INT, "60000", 100, 3600000, 0,
     "Command actuator: a run of scheduler.command taking longer is killed (its process "
     "group, SIGKILL) and counts as failed; the scheduler's tick waits at most this long",
     AAS_CONF_FIELD(aas_scheduler_conf_t, command_timeout_ms)},
    {"scheduler.command.reconcile.ms", AAS_CONF_INT, "60000", 1000, 86400000, 0,
     "Command actuator: when the live workers of the group (heartbeats) differ from the "
     "count last "
     "asked for this long, the command is run again with that count (and again each "
     "such period while they still differ)",
     AAS_CONF_FIELD(aas_scheduler_conf_t, command_reconcile_ms)},
    AAS_METRICS_CONF_ROWS,
    AAS_CONF_END};

typedef struct {
    aas_scheduler_conf_t c;  /* parsed once; the tick reads no keys */
    const char *topic;       /* topic.infer, read once */
    aas_observer_t *obs;
    aas_store_t *st;
    aas_actuator_t *act;     /* workers and partitions (actuator.h) */
    aas_policy_conf_t pc;
    aas_policy_state_t ps;
    aas_skew_conf_t kc;
    aas_skew_state_t ks;
    aas_metrics_t *metrics;  /* GET /metrics when metrics.port > 0 */
    /* One scheduler acts per consumer group: the lease in Redis
     * (aas_store_lease), taken and renewed each tick. */
    char owner[128];         /* this scheduler: host:pid:random */
    int leading;             /* holds the lease (it acted on the last tick) */
    char standby_for[128];   /* the holder last logged while standing by */
    int others_seen;         /* live workers of other groups, last logged */
    aas_metric_t *m_live, *m_desired, *m_up, *m_down, *m_restart;
    aas_metric_t *m_oldest, *m_arrival, *m_service;
    int64_t last_high;       /* sum of high watermarks at the last tick */
    double last_t;
    double arrival;          /* jobs/s, smoothed; < 0 unknown */
    int64_t *highs;          /* per partition at the last tick (n_highs) */
    double *part_arrival;    /* per partition, jobs/s, smoothed; < 0 unknown */
    size_t n_highs;
    double service;          /* jobs/s per busy worker, smoothed; <= 0 unknown */
    /* Priority lanes: topic (the normal lane) is observed in full above;
     * the high and low lanes for their backlog, age and arrivals only. */
    aas_lanes_t lanes;
    struct {
        int64_t last_high;   /* sum of high watermarks at the last tick */
        double last_t;       /* < 0: no previous sample */
        double arrival;      /* jobs/s, smoothed; < 0 unknown */
        int absent;          /* the topic does not exist (logged once) */
        aas_metric_t *m_lag, *m_age;
    } lane[AAS_LANE_MAX];
} aas_sched_t;

/* What one tick measured. */
typedef struct {
    aas_partition_lag_t *parts;  /* NULL when the lag query failed */
    size_t n_parts;
    aas_skew_worker_t *workers;  /* live workers (heartbeats) */
    int live;                    /* -1 when heartbeats are unknown */
    double rate_sum;             /* their summed completion rate */
    int age_partial;             /* oldest age is a lower bound */
    double *ages;                /* per partition: oldest job's age; < 0
                                  * unknown or nothing queued */
} aas_sched_view_t;

void aas_scheduler_policy_conf(const aas_scheduler_conf_t *c, aas_policy_conf_t *pc,
                               aas_skew_conf_t *kc) {
    *pc = (aas_policy_conf_t){
        .min_workers = (int)c->min, .max_workers = (int)c->max,
        .partitions = 0, /* unknown until measured */
        .can_grow_partitions = c->grow_partitions,
        .lag_threshold = (double)c->lag_threshold, .target_drain_s = (double)c->drain_s,
        .target_queue_age_s = (double)c->age_target_s,
        .headroom = 1.0 + (double)c->headroom_pct / 100.0,
        .scale_down_window_s = (double)c->down_window_s, .cooldown_s = (double)c->cooldown_s,
        .max_step_down = (int)c->down_step};
    *kc = (aas_skew_conf_t){
        .window_s = (double)c->skew_window_s, .cooldown_s = (double)c->skew_cooldown_s,
        .slow_ratio = (double)c->skew_slow_pct / 100.0, .min_lag = c->skew_lag,
        .min_age_s = (double)c->skew_age_s, .warmup_s = (double)c->skew_warmup_s,
        .key_factor = (double)c->skew_key_pct / 100.0};
}

aas_err_t aas_scheduler_policy_defaults(aas_policy_conf_t *pc, aas_skew_conf_t *kc) {
    aas_conf_t *conf;
    aas_err_t err = aas_conf_new(aas_scheduler_conf_defs, &conf);
    if (err) return err;
    aas_scheduler_conf_t c;
    aas_conf_fill(conf, &c);
    aas_scheduler_policy_conf(&c, pc, kc);
    aas_conf_destroy(conf);
    return AAS_ERR_OK;
}

static double aas_sched_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Live workers of the group and their summed completion rate, from
 * heartbeats.  A worker of another consumer group (a training-only fleet
 * in its own group, say) shares the Redis prefix but not this group's
 * partitions: it is left out of everything the scheduler counts and
 * measures (aas_heartbeat_in_group: a record without a group, from a
 * worker older than the field, still counts). */
static void aas_sched_workers(aas_sched_t *s, aas_sched_view_t *v) {
    char **hb = NULL;
    size_t n = 0;
    char why[256];
    v->live = -1;
    if (aas_store_heartbeats(s->st, &hb, &n, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "heartbeats unknown: %s", why);
        return;
    }
    v->workers = calloc(n > 0 ? n : 1, sizeof(*v->workers));
    if (!v->workers) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "heartbeats unknown: no memory");
        aas_store_list_free(hb, n);
        return;
    }
    const char *topic = s->topic, *group = aas_observer_group(s->obs);
    int64_t now_ms = aas_now_ms();
    int others = 0;
    v->live = 0;
    for (size_t i = 0; i < n; i++) {
        aas_heartbeat_t b;
        if (aas_heartbeat_parse(hb[i], &b, NULL, 0)) continue;
        if (!aas_heartbeat_in_group(&b, group)) {
            others++;
            continue;
        }
        aas_skew_worker_t *w = &v->workers[v->live];
        aas_skew_worker_from(&b, topic, now_ms, w);
        if (w->rate > 0) v->rate_sum += w->rate;
        v->live++;
    }
    aas_store_list_free(hb, n);
    if (others != s->others_seen) {
        AAS_LOG(AAS_LOG_INFO, "scheduler", "group=%s live=%d other_groups_live=%d (workers "
                "of other consumer groups are not counted)", group, v->live, others);
        s->others_seen = others;
    }
}

static void aas_sched_record(aas_sched_t *s, json_t *entry) {
    char why[256];
    char *text = entry ? json_dumps(entry, JSON_COMPACT) : NULL;
    if (!text)
        AAS_LOG(AAS_LOG_WARN, "scheduler", "decision not recorded: not encodable");
    else if (aas_store_decision_log(s->st, s->c.group, text, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "decision not recorded: %s", why);
    free(text);
    json_decref(entry);
}

/* Per-partition arrival rates from the high watermarks (the skew
 * detector tells hot keys from slow workers by them).  Called only when
 * every watermark is known; before s->last_t moves. */
static void aas_sched_part_arrivals(aas_sched_t *s, const aas_sched_view_t *v, double now) {
    size_t n = v->n_parts;
    if (n != s->n_highs || !s->highs) {
        /* First tick, or the partition count changed: start over. */
        free(s->highs);
        free(s->part_arrival);
        s->highs = calloc(n > 0 ? n : 1, sizeof(*s->highs));
        s->part_arrival = calloc(n > 0 ? n : 1, sizeof(*s->part_arrival));
        if (!s->highs || !s->part_arrival) {
            free(s->highs);
            free(s->part_arrival);
            s->highs = NULL;
            s->part_arrival = NULL;
            s->n_highs = 0;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            s->highs[i] = v->parts[i].high;
            s->part_arrival[i] = -1;
        }
        s->n_highs = n;
        return;
    }
    double dt = now - s->last_t;
    for (size_t i = 0; i < n; i++) {
        if (dt > 0) {
            double a = (double)(v->parts[i].high - s->highs[i]) / dt;
            if (a < 0) a = 0; /* a recreated topic: no arrivals, not negative */
            s->part_arrival[i] = s->part_arrival[i] < 0 ? a : 0.5 * s->part_arrival[i] + 0.5 * a;
        }
        s->highs[i] = v->parts[i].high;
    }
}

/* One side lane (high or low): its queued jobs (lag less what is only in
 * flight, as for the normal lane), oldest job's age and arrival rate.  A
 * lane topic that does not exist is empty (its clients cannot publish
 * there either), said once. */
static void aas_sched_observe_lane(aas_sched_t *s, aas_lane_t lane, double now,
                                   aas_lane_backlog_t *b) {
    char why[512];
    const char *topic = s->lanes.topic[lane];
    aas_partition_lag_t *p = NULL;
    size_t n = 0;
    *b = (aas_lane_backlog_t){.lag = AAS_OBSERVE_UNKNOWN, .age_s = -1,
                              .weight = lane == AAS_LANE_HIGH ? (double)s->c.lane_high_weight
                                                              : 1};
    aas_err_t err = aas_observer_lag(s->obs, topic, (int)s->c.timeout_ms, &p, &n, why,
                                     sizeof(why));
    if (err == AAS_ERR_NOT_FOUND) {
        if (!s->lane[lane].absent)
            AAS_LOG(AAS_LOG_WARN, "scheduler", "lane=%s topic=%s does not exist: counted "
                    "as empty (create it: docs/sharing.md)", aas_lane_name(lane), topic);
        s->lane[lane].absent = 1;
        b->lag = 0;
        b->age_s = 0;
        return;
    }
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "lane=%s lag unknown: %s", aas_lane_name(lane),
                why);
        return;
    }
    s->lane[lane].absent = 0;
    if (aas_observer_oldest(s->obs, topic, p, n, (int)s->c.age_timeout_ms, why,
                            sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "lane=%s oldest queued job unknown: %s",
                aas_lane_name(lane), why);
    int64_t now_ms = aas_now_ms(), queued = 0, high = 0;
    int known = n > 0;
    double inflight_s = (double)s->c.inflight_ms / 1000.0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].lag < 0 || p[i].high < 0) {
            known = 0;
            continue;
        }
        high += p[i].high;
        double age = p[i].lag > 0 ? aas_observe_oldest_age_s(&p[i], 1, now_ms, NULL) : -1;
        if (p[i].lag > 0 && !(age >= 0 && age < inflight_s)) queued += p[i].lag;
    }
    if (known) {
        b->lag = queued;
        if (s->lane[lane].last_t > 0 && now > s->lane[lane].last_t) {
            double a = (double)(high - s->lane[lane].last_high) / (now - s->lane[lane].last_t);
            if (a < 0) a = 0; /* a recreated topic */
            s->lane[lane].arrival =
                s->lane[lane].arrival < 0 ? a : 0.5 * s->lane[lane].arrival + 0.5 * a;
        }
        s->lane[lane].last_high = high;
        s->lane[lane].last_t = now;
    } else {
        s->lane[lane].last_t = -1;
    }
    b->age_s = aas_observe_oldest_age_s(p, n, now_ms, NULL);
    free(p);
}

/* With lanes on, the policy sees every lane: their weighted backlog
 * (aas_observe_lanes_fold) and the sum of their arrivals. */
static void aas_sched_observe_lanes(aas_sched_t *s, double now, aas_policy_obs_t *o) {
    if (!s->lanes.enabled) return;
    aas_lane_backlog_t b[AAS_LANE_MAX];
    b[AAS_LANE_NORMAL] = (aas_lane_backlog_t){.lag = o->lag, .age_s = o->oldest_age_s,
                                              .weight = 1};
    for (int l = 0; l < AAS_LANE_MAX; l++) {
        if (l == AAS_LANE_NORMAL) continue;
        aas_sched_observe_lane(s, (aas_lane_t)l, now, &b[l]);
        aas_metric_set(s->lane[l].m_lag, b[l].lag >= 0 ? (double)b[l].lag : NAN);
        aas_metric_set(s->lane[l].m_age, b[l].age_s >= 0 ? b[l].age_s : NAN);
        if (o->arrival_rate >= 0 && !s->lane[l].absent)
            o->arrival_rate =
                s->lane[l].arrival >= 0 ? o->arrival_rate + s->lane[l].arrival : -1;
    }
    aas_metric_set(s->lane[AAS_LANE_NORMAL].m_lag, o->lag >= 0 ? (double)o->lag : NAN);
    aas_metric_set(s->lane[AAS_LANE_NORMAL].m_age,
                   o->oldest_age_s >= 0 ? o->oldest_age_s : NAN);
    int partial = 0;
    aas_observe_lanes_fold(b, AAS_LANE_MAX, &o->lag, &o->oldest_age_s, &partial);
    AAS_LOG(AAS_LOG_DEBUG, "scheduler", "lanes high_lag=%lld high_age=%.1f normal_lag=%lld "
            "normal_age=%.1f low_lag=%lld low_age=%.1f weighted_lag=%lld weighted_age=%.1f",
            (long long)b[AAS_LANE_HIGH].lag, b[AAS_LANE_HIGH].age_s,
            (long long)b[AAS_LANE_NORMAL].lag, b[AAS_LANE_NORMAL].age_s,
            (long long)b[AAS_LANE_LOW].lag, b[AAS_LANE_LOW].age_s, (long long)o->lag,
            o->oldest_age_s);
}

/* Observe: lag, arrival rate, oldest queued job, workers. */
static void aas_sched_observe(aas_sched_t *s, double now, aas_sched_view_t *v,
                              aas_policy_obs_t *o) {
    char why[512];
    *o = (aas_policy_obs_t){.now_s = now, .lag = -1, .arrival_rate = -1,
                            .service_rate_per_worker = -1, .oldest_age_s = -1};
    const char *topic = s->topic;
    int timeout = (int)s->c.timeout_ms;
    if (aas_observer_lag(s->obs, topic, timeout, &v->parts, &v->n_parts, why,
                         sizeof(why)) == AAS_ERR_OK) {
        int64_t lag = 0, high = 0;
        int known = v->n_parts > 0;
        for (size_t i = 0; i < v->n_parts; i++) {
            if (v->parts[i].lag < 0 || v->parts[i].high < 0) known = 0;
            else {
                lag += v->parts[i].lag;
                high += v->parts[i].high;
            }
        }
        if (known) {
            o->lag = lag;
            aas_sched_part_arrivals(s, v, now);
            if (s->last_t > 0 && now > s->last_t) {
                double a = (double)(high - s->last_high) / (now - s->last_t);
                s->arrival = s->arrival < 0 ? a : 0.5 * s->arrival + 0.5 * a;
            }
            s->last_high = high;
            s->last_t = now;
            o->arrival_rate = s->arrival;
        } else {
            s->n_highs = 0; /* a gap: per-partition rates start over */
        }
        s->pc.partitions = (int)v->n_parts;
        /* A lower bound of the age is safe to pass: the age only ever adds
         * capacity, never removes it. */
        if (aas_observer_oldest(s->obs, topic, v->parts, v->n_parts,
                                (int)s->c.age_timeout_ms,
                                why, sizeof(why)))
            AAS_LOG(AAS_LOG_WARN, "scheduler", "oldest queued job unknown: %s", why);
        o->oldest_age_s = aas_observe_oldest_age_s(v->parts, v->n_parts, aas_now_ms(),
                                                   &v->age_partial);
    } else {
        v->parts = NULL;
        v->n_parts = 0;
        AAS_LOG(AAS_LOG_WARN, "scheduler", "lag unknown: %s", why);
    }
    aas_sched_workers(s, v);
    if (v->n_parts > 0 && (v->ages = calloc(v->n_parts, sizeof(*v->ages)))) {
        int64_t now_ms = aas_now_ms();
        for (size_t i = 0; i < v->n_parts; i++)
            v->ages[i] = v->parts[i].lag > 0
                             ? aas_observe_oldest_age_s(&v->parts[i], 1, now_ms, NULL)
                             : -1;
    }
    /* Service rate: what a worker completes while it has jobs waiting.  A
     * worker that keeps up completes what arrives, whatever it could do;
     * reading that as its capacity would ask for more workers, each then
     * seeing less, and ratchet the fleet up to its maximum. */
    if (v->live > 0 && v->ages) {
        aas_skew_obs_t bo = {.parts = v->parts, .age_s = v->ages, .n_parts = v->n_parts,
                             .workers = v->workers, .n_workers = (size_t)v->live};
        double per = aas_skew_busy_rate(
            &bo, (double)s->c.busy_age_ms / 1000.0,
            5.0 /* s: the first heartbeats include loading the model */);
        if (per > 0) s->service = s->service <= 0 ? per : 0.5 * s->service + 0.5 * per;
    }
    o->service_rate_per_worker = s->service;
    /* The committed offsets trail what the workers have done by up to a
     * commit interval: at 3,000 jobs/s that is a "lag" of thousands with
     * nothing waiting.  A partition whose oldest job has waited less than
     * inflight.ms has nothing queued, only jobs in flight: its lag is not a
     * backlog to drain.  Where the age is unknown the lag counts in full
     * (that errs towards more workers, never fewer). */
    if (o->lag > 0 && v->ages) {
        double inflight_s = (double)s->c.inflight_ms / 1000.0;
        int64_t queued = 0;
        for (size_t i = 0; i < v->n_parts; i++)
            if (v->parts[i].lag > 0 && !(v->ages[i] >= 0 && v->ages[i] < inflight_s))
                queued += v->parts[i].lag;
        o->lag = queued;
    }
    aas_sched_observe_lanes(s, now, o);
    int current = s->act->ops->current(s->act);
    o->current_workers = current >= 0 ? current : (v->live >= 0 ? v->live : 0);
}

/* Act on the policy's second decision: more partitions, so that more
 * workers than partitions have something to consume.  A broker that
 * cannot (the dev broker) or will not caps the workers at the partitions
 * there are from then on. */
static void aas_sched_grow(aas_sched_t *s, const aas_policy_decision_t *d) {
    if (!(d->want_partitions > s->pc.partitions && s->pc.can_grow_partitions)) return;
    char why[512];
    aas_err_t err = s->act->ops->grow(s->act, s->topic, d->want_partitions, why,
                                      sizeof(why));
    AAS_LOG(err ? AAS_LOG_WARN : AAS_LOG_INFO, "scheduler",
            "grow topic=%s partitions=%d->%d%s%s", s->topic, s->pc.partitions,
            d->want_partitions, err ? " error=" : " done", err ? why : "");
    if (err == AAS_ERR_INVAL) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "cannot add partitions here; capping "
                "workers at %d partitions", s->pc.partitions);
        s->pc.can_grow_partitions = 0;
    }
    if (!err) s->pc.partitions = d->want_partitions;
}

/* The decision as KEDA's metrics-api scaler reads it (GET /keda on
 * metrics.port; valueLocation desired_workers): every scheduler serves its
 * own, the standby's too (same observations, same policy). */
static void aas_sched_publish(aas_sched_t *s, const aas_sched_view_t *v,
                              const aas_policy_obs_t *o, const aas_policy_decision_t *d) {
    char why[256];
    json_t *doc = json_pack("{s:i, s:i, s:I, s:f, s:b, s:s}", "desired_workers", d->desired,
                            "live_workers", v->live, "lag", (json_int_t)o->lag,
                            "oldest_queued_s", o->oldest_age_s >= 0 ? o->oldest_age_s : -1.0,
                            "leader", s->leading, "reason", d->reason);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text || aas_metrics_document(s->metrics, "/keda", text, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "scheduler", "GET /keda not updated: %s",
                text ? why : "out of memory");
    free(text);
    json_decref(doc);
}

/* Decide (the policy) and, when leading, act on the partitions and the
 * worker count; returns 1 if the worker count changed. */
static int aas_sched_scale(aas_sched_t *s, const aas_sched_view_t *v,
                           const aas_policy_obs_t *o, int leading) {
    char why[512];
    aas_policy_decision_t d;
    aas_policy_decide(&s->pc, o, &s->ps, &d);
    aas_sched_publish(s, v, o, &d);
    if (!leading) return 0;
    aas_sched_grow(s, &d);
    aas_metric_set(s->m_desired, (double)d.desired);
    if (d.desired == o->current_workers) {
        AAS_LOG(AAS_LOG_DEBUG, "scheduler",
                "hold workers=%d lag=%lld arrival=%.1f service=%.1f age=%.1f live=%d "
                "reason=\"%s\"", d.desired, (long long)o->lag, o->arrival_rate,
                o->service_rate_per_worker, o->oldest_age_s, v->live, d.reason);
        return 0;
    }
    aas_err_t err = s->act->ops->apply(s->act, d.desired, why, sizeof(why));
    /* A failed action is logged and journalled, not counted: nothing
     * changed (the next tick decides again). */
    if (!err) aas_metric_inc(d.desired > o->current_workers ? s->m_up : s->m_down, 1);
    AAS_LOG(err ? AAS_LOG_ERROR : AAS_LOG_INFO, "scheduler",
            "decision from=%d to=%d lag=%lld arrival=%.1f service=%.1f age=%.1f live=%d "
            "reason=\"%s\"%s%s", o->current_workers, d.desired, (long long)o->lag,
            o->arrival_rate, o->service_rate_per_worker, o->oldest_age_s, v->live, d.reason,
            err ? " error=" : "", err ? why : "");
    json_t *e = json_pack("{s:I, s:s, s:i, s:i, s:I, s:f, s:f, s:f, s:i, s:s}",
                          "ts_ms", (json_int_t)aas_now_ms(),
                          "action", d.desired > o->current_workers ? "up" : "down",
                          "from", o->current_workers, "to", d.desired,
                          "lag", (json_int_t)o->lag, "arrival", o->arrival_rate,
                          "service", o->service_rate_per_worker,
                          "oldest_age_s", o->oldest_age_s, "live", v->live,
                          "reason", d.reason);
    if (e && err) json_object_set_new(e, "error", json_string(why));
    aas_sched_record(s, e);
    return 1;
}

/* Look for skew and act on it (rate-limited inside the detector). */
static void aas_sched_rebalance(aas_sched_t *s, const aas_sched_view_t *v, double now,
                                int changed) {
    if (!v->parts || v->live < 0) return; /* missing data finds nothing */
    double last_change = changed ? now : fmax(s->ps.last_up_s, s->ps.last_down_s);
    aas_skew_obs_t ko = {.now_s = now, .last_change_s = last_change, .parts = v->parts,
                         .arrival = s->n_highs == v->n_parts ? s->part_arrival : NULL,
                         .age_s = v->ages,
                         .n_parts = v->n_parts, .workers = v->workers,
                         .n_workers = (size_t)v->live};
    aas_skew_decision_t d;
    aas_skew_decide(&s->kc, &ko, &s->ks, &d);
    if (d.action == AAS_SKEW_HOLD) {
        AAS_LOG(AAS_LOG_DEBUG, "scheduler", "skew kind=%s reason=\"%s\"",
                aas_skew_kind_name(d.kind), d.reason);
        return;
    }
    char why[512] = "";
    aas_err_t err = AAS_ERR_OK;
    const char *action = "report";
    if (d.action == AAS_SKEW_RESTART) {
        if (s->c.skew_restart) {
            action = "restart";
            aas_metric_inc(s->m_restart, 1);
            err = s->act->ops->restart(s->act, d.worker, why, sizeof(why));
        } else {
            snprintf(why, sizeof(why), "scheduler.skew.restart=false: not restarted");
        }
    }
    AAS_LOG(err || d.action == AAS_SKEW_REPORT ? AAS_LOG_WARN : AAS_LOG_INFO, "scheduler",
            "skew action=%s kind=%s worker=%s reason=\"%s\"%s%s", action,
            aas_skew_kind_name(d.kind), d.worker[0] ? d.worker : "-", d.reason,
            why[0] ? (err ? " error=" : " note=") : "", why);
    json_t *e = json_pack("{s:I, s:s, s:s, s:s, s:s}", "ts_ms", (json_int_t)aas_now_ms(),
                          "action", action, "kind", aas_skew_kind_name(d.kind), "worker",
                          d.worker, "reason", d.reason);
    if (e && why[0]) json_object_set_new(e, err ? "error" : "note", json_string(why));
    aas_sched_record(s, e);
}

/* What this tick measured, for Prometheus.  Unknown is NaN, never 0. */
static void aas_sched_export(aas_sched_t *s, const aas_sched_view_t *v,
                             const aas_policy_obs_t *o) {
    const char *topic = s->topic;
    for (size_t i = 0; i < v->n_parts; i++) {
        char labels[320];
        /* Topic names are [a-zA-Z0-9._-]: nothing to escape. */
        snprintf(labels, sizeof(labels), "topic=\"%s\",partition=\"%d\"", topic,
                 (int)v->parts[i].partition);
        aas_metric_set(aas_metrics_gauge(s->metrics, "aas_scheduler_lag",
                                         "Jobs between the workers' committed offset and "
                                         "the high watermark; NaN unknown", labels),
                       v->parts[i].lag >= 0 ? (double)v->parts[i].lag : NAN);
    }
    aas_metric_set(s->m_live, v->live >= 0 ? (double)v->live : NAN);
    aas_metric_set(s->m_oldest, o->oldest_age_s >= 0 ? o->oldest_age_s : NAN);
    aas_metric_set(s->m_arrival, o->arrival_rate >= 0 ? o->arrival_rate : NAN);
    aas_metric_set(s->m_service,
                   o->service_rate_per_worker > 0 ? o->service_rate_per_worker : NAN);
}

/* The lease's length: three ticks, at least 10 s, so a renewal that
 * misses one tick (a slow Redis, a long hook) does not hand it over. */
static int64_t aas_sched_lease_ms(const aas_sched_t *s) {
    int64_t ms = 3 * s->c.interval_ms;
    return ms > 10000 ? ms : 10000;
}

/* Take or renew the lease; 1 if this scheduler may act this tick.  Redis
 * unreachable: act only if it held the lease before (it cannot have
 * expired yet: the last renewal was a tick ago, the lease is three). */
static int aas_sched_lead(aas_sched_t *s) {
    char why[256], holder[128];
    int held = 0;
    int64_t left = 0;
    aas_err_t err = aas_store_lease(s->st, s->c.group, s->owner, aas_sched_lease_ms(s), &held,
                                    holder, sizeof(holder), &left, why, sizeof(why));
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "lease of group %s not renewed: %s", s->c.group,
                why);
        return s->leading;
    }
    if (held && !s->leading)
        AAS_LOG(AAS_LOG_INFO, "scheduler", "leading group=%s owner=%s lease_ms=%lld",
                s->c.group, s->owner, (long long)aas_sched_lease_ms(s));
    if (!held && strcmp(holder, s->standby_for)) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "standing by: group %s is scaled by scheduler %s "
                "(its lease ends in %lld ms unless renewed); this one only observes",
                s->c.group, holder, (long long)left);
        snprintf(s->standby_for, sizeof(s->standby_for), "%s", holder);
    }
    if (held) s->standby_for[0] = '\0';
    s->leading = held;
    return held;
}

static void aas_sched_tick(aas_sched_t *s) {
    double now = aas_sched_now();
    aas_sched_view_t v = {0};
    aas_policy_obs_t o;
    aas_sched_observe(s, now, &v, &o);
    aas_sched_export(s, &v, &o);
    aas_metrics_alive(s->metrics);
    int leading = aas_sched_lead(s);
    /* Ready: it measured this tick (Kafka and Redis answered). */
    if (!v.parts) aas_metrics_ready(s->metrics, 0, "the lag could not be read from Kafka");
    else if (v.live < 0) aas_metrics_ready(s->metrics, 0, "heartbeats could not be read from Redis");
    else aas_metrics_ready(s->metrics, 1, NULL);
    if (leading) {
        /* Start at the minimum at once (here, not at start: only the
         * leader acts), then follow the load. */
        if (s->act->ops->current(s->act) == 0 && s->pc.min_workers > 0)
            s->act->ops->apply(s->act, s->pc.min_workers, NULL, 0);
        s->act->ops->reconcile(s->act, v.live, now);
    }
    int changed = aas_sched_scale(s, &v, &o, leading);
    if (leading) aas_sched_rebalance(s, &v, now, changed);
    free(v.parts);
    free(v.workers);
    free(v.ages);
}

aas_err_t aas_scheduler_run(const aas_conf_t *conf, volatile sig_atomic_t *stop,
                            char *errstr, size_t errstr_size) {
    aas_sched_t s = {.arrival = -1, .service = -1,
                     .topic = aas_conf_get(conf, "topic.infer")};
    aas_conf_fill(conf, &s.c);
    aas_err_t lerr = aas_lanes_from_conf(conf, &s.lanes, errstr, errstr_size);
    if (lerr) return lerr;
    for (int l = 0; l < AAS_LANE_MAX; l++) {
        s.lane[l].last_t = -1;
        s.lane[l].arrival = -1;
    }
    aas_scheduler_policy_conf(&s.c, &s.pc, &s.kc);
    aas_skew_state_init(&s.ks);
    if (s.pc.min_workers > s.pc.max_workers)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "scheduler.min (%d) is above scheduler.max (%d)",
                           s.pc.min_workers, s.pc.max_workers);
    aas_policy_state_init(&s.ps);
    if (!aas_id_valid(s.c.group))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "worker.group '%.40s' is not a valid name ([A-Za-z0-9_.-], at most "
                           "%d): it names the scheduler's lease and decisions in Redis",
                           s.c.group, AAS_ID_MAX);
    {
        char host[64] = "host";
        unsigned char r[4] = {0};
        if (gethostname(host, sizeof(host))) snprintf(host, sizeof(host), "host");
        host[sizeof(host) - 1] = '\0';
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) memset(r, 0, sizeof(r));
        snprintf(s.owner, sizeof(s.owner), "%s:%d:%02x%02x%02x%02x", host, (int)getpid(), r[0],
                 r[1], r[2], r[3]);
    }
    aas_err_t err = aas_observer_new(conf, s.c.group, &s.obs, errstr, errstr_size);
    if (!err) err = aas_cli_store_new(conf, &s.st, errstr, errstr_size);
    if (!err) err = aas_actuator_new(conf, &s.c, &s.act, errstr, errstr_size);
    if (!err) err = aas_metrics_new(&s.metrics, errstr, errstr_size);
    if (!err) {
        s.m_live = aas_metrics_gauge(s.metrics, "aas_scheduler_workers",
                                     "Workers of the group with a live heartbeat (live) and "
                                     "the count the policy wants (desired)", "state=\"live\"");
        s.m_desired = aas_metrics_gauge(s.metrics, "aas_scheduler_workers", NULL,
                                        "state=\"desired\"");
        const char *help = "Decisions taken: scale up, scale down, restart a worker (skew)";
        s.m_up = aas_metrics_counter(s.metrics, "aas_scheduler_decisions_total", help,
                                     "direction=\"up\"");
        s.m_down = aas_metrics_counter(s.metrics, "aas_scheduler_decisions_total", help,
                                       "direction=\"down\"");
        s.m_restart = aas_metrics_counter(s.metrics, "aas_scheduler_decisions_total", help,
                                          "direction=\"restart\"");
        s.m_oldest = aas_metrics_gauge(s.metrics, "aas_scheduler_oldest_queued_seconds",
                                       "Age of the oldest job not done yet (0: none "
                                       "queued; NaN unknown)", NULL);
        s.m_arrival = aas_metrics_gauge(s.metrics, "aas_scheduler_arrival_rate",
                                        "Jobs per second arriving on topic.infer, smoothed; "
                                        "NaN unknown", NULL);
        s.m_service = aas_metrics_gauge(s.metrics, "aas_scheduler_service_rate",
                                        "Jobs per second one busy worker completes, "
                                        "smoothed; NaN unknown", NULL);
        for (int l = 0; l < AAS_LANE_MAX; l++) {
            char labels[64];
            snprintf(labels, sizeof(labels), "lane=\"%s\"", aas_lane_name((aas_lane_t)l));
            s.lane[l].m_lag = aas_metrics_gauge(
                s.metrics, "aas_scheduler_lane_queued",
                "Jobs queued per priority lane (in flight excluded; lanes on); NaN unknown",
                labels);
            s.lane[l].m_age = aas_metrics_gauge(
                s.metrics, "aas_scheduler_lane_oldest_queued_seconds",
                "Age of the oldest queued job per priority lane (lanes on); NaN unknown",
                labels);
        }
        err = aas_metrics_serve_conf(s.metrics, conf, errstr, errstr_size);
    }
    if (!err) {
        AAS_LOG(AAS_LOG_INFO, "scheduler", "running actuator=%s min=%d max=%d",
                s.act->ops->name, s.pc.min_workers, s.pc.max_workers);
        int64_t period_ns = s.c.interval_ms * 1000000LL;
        while (!*stop) {
            aas_sched_tick(&s);
            for (int64_t slept = 0; slept < period_ns && !*stop; slept += 50000000) {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
            }
        }
    }
    aas_actuator_destroy(s.act);
    if (s.leading) { /* hand over now, not when the lease runs out */
        char why[256];
        int held = 0;
        if (aas_store_lease(s.st, s.c.group, s.owner, 0, &held, NULL, 0, NULL, why, sizeof(why)))
            AAS_LOG(AAS_LOG_WARN, "scheduler", "lease not released: %s", why);
    }
    aas_metrics_destroy(s.metrics);
    free(s.highs);
    free(s.part_arrival);
    aas_store_destroy(s.st);
    aas_observer_destroy(s.obs);
    return err;
}
