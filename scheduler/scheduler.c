/* scheduler.c - observe, decide, act; see scheduler.h. */
#include "scheduler.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actuator.h"
#include "cli.h"
#include "job.h"
#include "log.h"
#include "observe.h"
#include "policy.h"
#include "store.h"

const aas_conf_def_t aas_scheduler_conf_defs[] = {
    {"worker.group", AAS_CONF_STR, "aas-workers", 0, 0, 0,
     "Kafka consumer group of the fleet"},
    {"scheduler.timeout.ms", AAS_CONF_INT, "10000", 100, 600000, 0,
     "Timeout of each Kafka query"},
    {"scheduler.interval.ms", AAS_CONF_INT, "2000", 100, 600000, 0,
     "Time between decisions"},
    {"scheduler.min", AAS_CONF_INT, "1", 0, 256, 0, "Fewest workers"},
    {"scheduler.max", AAS_CONF_INT, "8", 1, 256, 0, "Most workers"},
    {"scheduler.lag.threshold", AAS_CONF_INT, "100", 1, 1000000000, 0,
     "Queued jobs one worker may have (the fallback rule, as KEDA's)"},
    {"scheduler.drain.s", AAS_CONF_INT, "10", 1, 86400, 0,
     "Drain a backlog within this many seconds"},
    {"scheduler.down.window.s", AAS_CONF_INT, "60", 0, 86400, 0,
     "Scale down only after less was needed for this long"},
    {"scheduler.cooldown.s", AAS_CONF_INT, "15", 0, 86400, 0,
     "After a change: no scale-down (and no queue-age scale-up) for this long"},
    {"scheduler.down.step", AAS_CONF_INT, "1", 1, 256, 0,
     "Most workers removed by one decision"},
    {"scheduler.headroom.pct", AAS_CONF_INT, "20", 0, 1000, 0,
     "Capacity kept above the measured arrival rate, in percent"},
    {"scheduler.grow.partitions", AAS_CONF_BOOL, "false", 0, 0, 0,
     "Add partitions (CreatePartitions) when more workers than partitions "
     "are needed, up to scheduler.max"},
    {"scheduler.actuator", AAS_CONF_STR, "local", 0, 0, 0,
     "local (spawn aas-worker here) or command (run scheduler.command)"},
    {"scheduler.worker.bin", AAS_CONF_STR, "aas-worker", 0, 0, 0,
     "Worker program the local actuator starts (PATH is searched)"},
    {"scheduler.worker.prefix", AAS_CONF_STR, "sched", 0, 0, 0,
     "Prefix of the worker ids the local actuator gives"},
    {"scheduler.worker.logdir", AAS_CONF_STR, NULL, 0, 0, 0,
     "Directory for the local workers' logs (unset: discarded)"},
    {"scheduler.command", AAS_CONF_STR, NULL, 0, 0, 0,
     "Command actuator: shell command run with AAS_DESIRED_WORKERS set"},
    AAS_CONF_END};

typedef struct {
    const aas_conf_t *conf;
    aas_observer_t *obs;
    aas_store_t *st;
    aas_actuator_t *act;
    aas_policy_conf_t pc;
    aas_policy_state_t ps;
    int64_t last_high;       /* sum of high watermarks at the last tick */
    double last_t;
    double arrival;          /* jobs/s, smoothed; < 0 unknown */
    double service;          /* jobs/s per busy worker, smoothed; <= 0 unknown */
} aas_sched_t;

static double aas_sched_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Live workers and their summed completion rate, from heartbeats. */
static int aas_sched_workers(aas_sched_t *s, double *rate_sum) {
    char **hb = NULL;
    size_t n = 0;
    char why[256];
    *rate_sum = 0;
    if (aas_store_heartbeats(s->st, &hb, &n, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "heartbeats unknown: %s", why);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loads(hb[i], 0, NULL);
        if (o) *rate_sum += json_number_value(json_object_get(o, "rate"));
        json_decref(o);
    }
    aas_store_list_free(hb, n);
    return (int)n;
}

static void aas_sched_tick(aas_sched_t *s) {
    double now = aas_sched_now();
    aas_partition_lag_t *p = NULL;
    size_t np = 0;
    char why[512];
    aas_policy_obs_t o = {.now_s = now, .lag = -1, .arrival_rate = -1,
                          .service_rate_per_worker = -1, .oldest_age_s = -1};
    const char *topic = aas_conf_get(s->conf, "topic.infer");
    int timeout = (int)aas_conf_get_int(s->conf, "scheduler.timeout.ms");
    if (aas_observer_lag(s->obs, topic, timeout, &p, &np, why, sizeof(why)) == AAS_ERR_OK) {
        int64_t lag = 0, high = 0;
        int known = np > 0;
        for (size_t i = 0; i < np; i++) {
            if (p[i].lag < 0 || p[i].high < 0) known = 0;
            else {
                lag += p[i].lag;
                high += p[i].high;
            }
        }
        if (known) {
            o.lag = lag;
            if (s->last_t > 0 && now > s->last_t) {
                double a = (double)(high - s->last_high) / (now - s->last_t);
                s->arrival = s->arrival < 0 ? a : 0.5 * s->arrival + 0.5 * a;
            }
            s->last_high = high;
            s->last_t = now;
            o.arrival_rate = s->arrival;
        }
        s->pc.partitions = (int)np;
        free(p);
    } else {
        AAS_LOG(AAS_LOG_WARN, "scheduler", "lag unknown: %s", why);
    }
    double rate_sum = 0;
    int live = aas_sched_workers(s, &rate_sum);
    /* Service rate: what workers complete while there is a backlog (when
     * idle their rate says nothing about capacity). */
    if (live > 0 && o.lag > 0 && rate_sum > 0) {
        double per = rate_sum / live;
        s->service = s->service <= 0 ? per : 0.5 * s->service + 0.5 * per;
    }
    o.service_rate_per_worker = s->service;
    int current = s->act->ops->current(s->act);
    o.current_workers = current >= 0 ? current : (live >= 0 ? live : 0);

    aas_policy_decision_t d;
    aas_policy_decide(&s->pc, &o, &s->ps, &d);
    if (d.want_partitions > s->pc.partitions && s->pc.can_grow_partitions) {
        aas_err_t gerr = aas_observer_grow(s->obs, topic, d.want_partitions, timeout, why,
                                           sizeof(why));
        AAS_LOG(gerr ? AAS_LOG_WARN : AAS_LOG_INFO, "scheduler",
                "grow topic=%s partitions=%d->%d%s%s", topic, s->pc.partitions,
                d.want_partitions, gerr ? " error=" : " done", gerr ? why : "");
        if (gerr == AAS_ERR_INVAL) {
            /* The broker cannot (dev broker) or will not: cap at what is. */
            AAS_LOG(AAS_LOG_WARN, "scheduler", "cannot add partitions here; capping "
                    "workers at %d partitions", s->pc.partitions);
            s->pc.can_grow_partitions = 0;
        }
        if (!gerr) s->pc.partitions = d.want_partitions;
    }
    if (d.desired != o.current_workers) {
        aas_err_t err = s->act->ops->apply(s->act, d.desired, why, sizeof(why));
        AAS_LOG(AAS_LOG_INFO, "scheduler",
                "decision from=%d to=%d lag=%lld arrival=%.1f service=%.1f live=%d "
                "reason=\"%s\"%s%s", o.current_workers, d.desired, (long long)o.lag,
                o.arrival_rate, o.service_rate_per_worker, live, d.reason,
                err ? " error=" : "", err ? why : "");
        char json[768];
        snprintf(json, sizeof(json),
                 "{\"ts_ms\":%lld,\"from\":%d,\"to\":%d,\"lag\":%lld,\"arrival\":%.3f,"
                 "\"service\":%.3f,\"live\":%d,\"reason\":\"%s\"}",
                 (long long)aas_now_ms(), o.current_workers, d.desired, (long long)o.lag,
                 o.arrival_rate, o.service_rate_per_worker, live, d.reason);
        if (aas_store_decision_log(s->st, json, why, sizeof(why)))
            AAS_LOG(AAS_LOG_WARN, "scheduler", "decision not recorded: %s", why);
    }
}

aas_err_t aas_scheduler_run(const aas_conf_t *conf, volatile sig_atomic_t *stop,
                            char *errstr, size_t errstr_size) {
    aas_sched_t s = {.conf = conf, .arrival = -1, .service = -1};
    aas_policy_conf_default(&s.pc);
    s.pc.min_workers = (int)aas_conf_get_int(conf, "scheduler.min");
    s.pc.max_workers = (int)aas_conf_get_int(conf, "scheduler.max");
    s.pc.lag_threshold = (double)aas_conf_get_int(conf, "scheduler.lag.threshold");
    s.pc.target_drain_s = (double)aas_conf_get_int(conf, "scheduler.drain.s");
    s.pc.scale_down_window_s = (double)aas_conf_get_int(conf, "scheduler.down.window.s");
    s.pc.cooldown_s = (double)aas_conf_get_int(conf, "scheduler.cooldown.s");
    s.pc.max_step_down = (int)aas_conf_get_int(conf, "scheduler.down.step");
    s.pc.headroom = 1.0 + (double)aas_conf_get_int(conf, "scheduler.headroom.pct") / 100.0;
    s.pc.can_grow_partitions = (int)aas_conf_get_int(conf, "scheduler.grow.partitions");
    if (s.pc.min_workers > s.pc.max_workers)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "scheduler.min (%d) is above scheduler.max (%d)",
                           s.pc.min_workers, s.pc.max_workers);
    aas_policy_state_init(&s.ps);
    aas_err_t err = aas_observer_new(conf, aas_conf_get(conf, "worker.group"), &s.obs,
                                     errstr, errstr_size);
    if (!err) err = aas_cli_store_new(conf, &s.st, errstr, errstr_size);
    if (!err) err = aas_actuator_new(conf, &s.act, errstr, errstr_size);
    if (!err) {
        AAS_LOG(AAS_LOG_INFO, "scheduler", "running actuator=%s min=%d max=%d",
                s.act->ops->name, s.pc.min_workers, s.pc.max_workers);
        /* Start at the minimum at once, then follow the load. */
        if (s.act->ops->current(s.act) == 0 && s.pc.min_workers > 0)
            s.act->ops->apply(s.act, s.pc.min_workers, NULL, 0);
        int64_t period_ns = aas_conf_get_int(conf, "scheduler.interval.ms") * 1000000LL;
        while (!*stop) {
            aas_sched_tick(&s);
            for (int64_t slept = 0; slept < period_ns && !*stop; slept += 50000000) {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
            }
        }
    }
    aas_actuator_destroy(s.act);
    aas_store_destroy(s.st);
    aas_observer_destroy(s.obs);
    return err;
}
