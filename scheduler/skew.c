/*
 * skew.c - slow workers and hot partitions; see skew.h and
 * docs/scheduler.md.
 *
 * Findings come from this tick's numbers alone; the state only times them
 * (a finding must hold a whole window) and paces the actions (one per
 * cooldown).  It does not act: scheduler.c hands a restart to the
 * actuator.
 */
#include "skew.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aas_skew_state_init(aas_skew_state_t *s) {
    memset(s, 0, sizeof(*s));
    s->since_s = -1;
    s->seen_s = -1;
    s->last_action_s = -1;
}

const char *aas_skew_kind_name(aas_skew_kind_t kind) {
    switch (kind) {
    case AAS_SKEW_SLOW_WORKER: return "slow-worker";
    case AAS_SKEW_HOT_TOGETHER: return "hot-partitions-together";
    case AAS_SKEW_HOT_KEYS: return "hot-keys";
    case AAS_SKEW_NONE: break;
    }
    return "none";
}

int aas_skew_worker_parse(const char *json, const char *topic, int64_t now_ms,
                          aas_skew_worker_t *w) {
    aas_heartbeat_t hb;
    memset(w, 0, sizeof(*w));
    if (aas_heartbeat_parse(json, &hb, NULL, 0)) return -1;
    aas_skew_worker_from(&hb, topic, now_ms, w);
    return 0;
}

void aas_skew_worker_from(const aas_heartbeat_t *hb, const char *topic, int64_t now_ms,
                          aas_skew_worker_t *w) {
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", hb->id);
    snprintf(w->host, sizeof(w->host), "%s", hb->host);
    w->pid = hb->pid;
    w->rate = hb->rate;
    w->uptime_s = hb->started_ms > 0 ? (double)(now_ms - hb->started_ms) / 1000.0 : -1;
    w->training = hb->training[0] != '\0';
    w->done = hb->done;
    w->failed = hb->failed;
    w->n_partitions = aas_heartbeat_partitions(hb, topic, w->partitions,
                                               AAS_SKEW_WORKER_PARTS);
}

static void aas_skew_say(aas_skew_decision_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void aas_skew_say(aas_skew_decision_t *d, const char *fmt, ...) {
    size_t used = strlen(d->reason);
    if (used + 1 >= sizeof(d->reason)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason + used, sizeof(d->reason) - used, fmt, ap);
    va_end(ap);
}

static int aas_skew_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The lag of partition p, or -1 when it is not in the topic. */
static int64_t aas_skew_lag_of(const aas_skew_obs_t *o, int32_t p) {
    for (size_t i = 0; i < o->n_parts; i++)
        if (o->parts[i].partition == p) return o->parts[i].lag;
    return -1;
}

/* Partition i is behind: min_lag jobs or more, and (when its oldest job's
 * age is known) waiting min_age_s or more.  The age keeps busy, healthy
 * partitions out: their committed offset trails by up to a commit
 * interval's worth of jobs, however many that is. */
static int aas_skew_behind(const aas_skew_conf_t *c, const aas_skew_obs_t *o, size_t i) {
    if (o->parts[i].lag < c->min_lag) return 0;
    double age = o->age_s ? o->age_s[i] : -1;
    return !(isfinite(age) && age >= 0 && age < c->min_age_s);
}

/* Index of partition p in o->parts, or -1. */
static long aas_skew_part_index(const aas_skew_obs_t *o, int32_t p) {
    for (size_t i = 0; i < o->n_parts; i++)
        if (o->parts[i].partition == p) return (long)i;
    return -1;
}

/* Judged (and compared with): old enough, serving inference, measured. */
static int aas_skew_judged(const aas_skew_conf_t *c, const aas_skew_worker_t *w) {
    return !w->training && w->uptime_s >= c->warmup_s && isfinite(w->rate) &&
           w->rate >= 0 && w->n_partitions > 0;
}

static int aas_skew_worker_behind(const aas_skew_conf_t *c, const aas_skew_obs_t *o,
                                  const aas_skew_worker_t *w) {
    for (size_t k = 0; k < w->n_partitions; k++) {
        long i = aas_skew_part_index(o, w->partitions[k]);
        if (i >= 0 && aas_skew_behind(c, o, (size_t)i)) return 1;
    }
    return 0;
}

static int64_t aas_skew_worker_lag(const aas_skew_obs_t *o, const aas_skew_worker_t *w) {
    int64_t sum = 0;
    for (size_t k = 0; k < w->n_partitions; k++) {
        int64_t lag = aas_skew_lag_of(o, w->partitions[k]);
        if (lag > 0) sum += lag;
    }
    return sum;
}

/* The slowest worker with a partition behind whose rate is below slow_ratio x
 * the median of the other judged workers; -1 if none.  *ratio_out: its
 * rate over that median, *median_out: the median. */
static long aas_skew_find_slow(const aas_skew_conf_t *c, const aas_skew_obs_t *o,
                               double *ratio_out, double *median_out) {
    long best = -1;
    double best_ratio = 0, best_median = 0;
    double *rates = malloc((o->n_workers > 0 ? o->n_workers : 1) * sizeof(*rates));
    if (!rates) return -1; /* no finding: the safe side */
    for (size_t i = 0; i < o->n_workers; i++) {
        const aas_skew_worker_t *w = &o->workers[i];
        if (!aas_skew_judged(c, w) || !aas_skew_worker_behind(c, o, w)) continue;
        size_t n = 0;
        for (size_t j = 0; j < o->n_workers; j++)
            if (j != i && aas_skew_judged(c, &o->workers[j])) rates[n++] = o->workers[j].rate;
        if (n == 0) continue;
        qsort(rates, n, sizeof(*rates), aas_skew_cmp_double);
        double median = n % 2 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2;
        if (!(median > 0) || !(w->rate < c->slow_ratio * median)) continue;
        double ratio = w->rate / median;
        if (best < 0 || ratio < best_ratio) {
            best = (long)i;
            best_ratio = ratio;
            best_median = median;
        }
    }
    free(rates);
    *ratio_out = best_ratio;
    *median_out = best_median;
    return best;
}

/* Index of the live worker holding partition p, or -1. */
static long aas_skew_owner(const aas_skew_obs_t *o, int32_t p) {
    for (size_t i = 0; i < o->n_workers; i++)
        for (size_t k = 0; k < o->workers[i].n_partitions; k++)
            if (o->workers[i].partitions[k] == p) return (long)i;
    return -1;
}

/* Median arrival rate over the partitions, or -1 when any is unknown. */
static double aas_skew_median_arrival(const aas_skew_obs_t *o) {
    if (!o->arrival || o->n_parts == 0) return -1;
    double *v = malloc(o->n_parts * sizeof(*v));
    if (!v) return -1;
    for (size_t i = 0; i < o->n_parts; i++) {
        if (!isfinite(o->arrival[i]) || o->arrival[i] < 0) {
            free(v);
            return -1;
        }
        v[i] = o->arrival[i];
    }
    qsort(v, o->n_parts, sizeof(*v), aas_skew_cmp_double);
    size_t n = o->n_parts;
    double m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    free(v);
    return m;
}

/* The finding on this tick, with its reason; *suspect: the worker it
 * names (index), or -1; *incomplete: nothing found because data was
 * missing (which neither confirms nor clears an earlier finding). */
static aas_skew_kind_t aas_skew_find(const aas_skew_conf_t *c, const aas_skew_obs_t *o,
                                     aas_skew_decision_t *d, long *suspect,
                                     int *incomplete) {
    *suspect = -1;
    *incomplete = 1;
    if (o->n_parts == 0) {
        aas_skew_say(d, "no partitions measured");
        return AAS_SKEW_NONE;
    }
    int64_t total = 0;
    for (size_t i = 0; i < o->n_parts; i++) {
        if (o->parts[i].lag < 0) {
            aas_skew_say(d, "lag of partition %d unknown: skew not judged",
                         (int)o->parts[i].partition);
            return AAS_SKEW_NONE;
        }
        total += o->parts[i].lag;
    }
    *incomplete = 0;
    /* A partition behind whose holder is not among the live workers:
     * mid-rebalance, or that worker's heartbeat lapsed (a starved worker
     * misses some).  Data missing, not a verdict. */
    for (size_t i = 0; i < o->n_parts; i++)
        if (aas_skew_behind(c, o, i) && aas_skew_owner(o, o->parts[i].partition) < 0) {
            aas_skew_say(d, "partition %d is behind and has no live worker: skew not judged",
                         (int)o->parts[i].partition);
            *incomplete = 1;
            return AAS_SKEW_NONE;
        }
    if (o->last_change_s >= 0 && o->now_s >= o->last_change_s &&
        o->now_s - o->last_change_s < c->window_s) {
        aas_skew_say(d, "fleet changed %.0fs ago: partitions still moving",
                     o->now_s - o->last_change_s);
        return AAS_SKEW_NONE;
    }

    double ratio, median;
    long slow = aas_skew_find_slow(c, o, &ratio, &median);
    if (slow >= 0) {
        const aas_skew_worker_t *w = &o->workers[slow];
        *suspect = slow;
        aas_skew_say(d, "worker %s completes %.1f/s, %.0f%% of the others' median %.1f/s, "
                     "while its %zu partition(s) hold %lld jobs",
                     w->id, w->rate, 100 * ratio, median, w->n_partitions,
                     (long long)aas_skew_worker_lag(o, w));
        return AAS_SKEW_SLOW_WORKER;
    }

    /* Hot partitions: some behind while at least half keep up.  More
     * behind than that is overload, the policy's business. */
    size_t hot = 0;
    int64_t hot_lag = 0;
    for (size_t i = 0; i < o->n_parts; i++)
        if (aas_skew_behind(c, o, i)) {
            hot++;
            hot_lag += o->parts[i].lag;
        }
    size_t idle = o->n_parts - hot;
    if (hot == 0 || idle * 2 < o->n_parts) {
        aas_skew_say(d, "no skew: %zu of %zu partitions behind (lag %lld)", hot, o->n_parts,
                     (long long)total);
        return AAS_SKEW_NONE;
    }
    /* Who holds the hot ones. */
    size_t *held = calloc(o->n_workers > 0 ? o->n_workers : 1, sizeof(*held));
    if (!held) {
        aas_skew_say(d, "no memory: skew not judged");
        *incomplete = 1;
        return AAS_SKEW_NONE;
    }
    long *owner = calloc(o->n_parts, sizeof(*owner));
    if (!owner) {
        free(held);
        aas_skew_say(d, "no memory: skew not judged");
        *incomplete = 1;
        return AAS_SKEW_NONE;
    }
    for (size_t i = 0; i < o->n_parts; i++) {
        owner[i] = aas_skew_owner(o, o->parts[i].partition);
        if (aas_skew_behind(c, o, i)) held[owner[i]]++; /* owned: checked above */
    }
    double med_in = aas_skew_median_arrival(o);
    aas_skew_say(d, "%zu of %zu partitions hold %.0f%% of the lag (", hot, o->n_parts,
                 total > 0 ? 100.0 * (double)hot_lag / (double)total : 0.0);
    int first = 1;
    for (size_t i = 0; i < o->n_parts; i++)
        if (aas_skew_behind(c, o, i)) {
            aas_skew_say(d, "%s%d: %lld", first ? "" : ", ", (int)o->parts[i].partition,
                         (long long)o->parts[i].lag);
            if (o->age_s && o->age_s[i] >= 0) aas_skew_say(d, " %.0fs old", o->age_s[i]);
            if (med_in >= 0) aas_skew_say(d, " at %.1f/s", o->arrival[i]);
            first = 0;
        }
    aas_skew_say(d, "), %zu keep up", idle);
    if (med_in >= 0) aas_skew_say(d, ", median arrival %.1f/s", med_in);

    /* A backlog on partitions that receive no more than the others:
     * their worker cannot keep up with an ordinary share.  This catches a
     * slow worker once its backlog has settled, when it completes as much
     * as arrives and its rate no longer stands out. */
    long slowest = -1, unjudged = -1;
    int64_t worst = 0;
    if (med_in > 0) {
        for (size_t i = 0; i < o->n_parts; i++) {
            if (!aas_skew_behind(c, o, i) || o->arrival[i] > c->key_factor * med_in)
                continue;
            const aas_skew_worker_t *w = &o->workers[owner[i]];
            int64_t wl = aas_skew_worker_lag(o, w);
            if (!aas_skew_judged(c, w)) unjudged = owner[i];
            else if (slowest < 0 || wl > worst) {
                slowest = owner[i];
                worst = wl;
            }
        }
    }
    long holder = -1, free_worker = -1;
    size_t most = 0;
    for (size_t i = 0; i < o->n_workers; i++) {
        if (held[i] == 0) free_worker = (long)i;
        if (held[i] > most) most = held[i];
        if (held[i] >= 2 && aas_skew_judged(c, &o->workers[i]) &&
            (holder < 0 || held[i] > held[holder] ||
             (held[i] == held[holder] &&
              aas_skew_worker_lag(o, &o->workers[i]) >
                  aas_skew_worker_lag(o, &o->workers[holder]))))
            holder = (long)i;
    }
    aas_skew_kind_t kind = AAS_SKEW_NONE;
    if (slowest >= 0) {
        *suspect = slowest;
        aas_skew_say(d, "; behind with ordinary arrivals: worker %s is slow",
                     o->workers[slowest].id);
        kind = AAS_SKEW_SLOW_WORKER;
    } else if (unjudged >= 0) {
        /* Likely the one that just took over a backlog (a restart). */
        aas_skew_say(d, "; behind with ordinary arrivals on %s, new or training: judged "
                     "later", o->workers[unjudged].id);
    } else if (most <= 1) {
        aas_skew_say(d, "; each on a worker of its own: a partition is read by one "
                     "consumer, so only more partitions or keyless producing spread it");
        kind = AAS_SKEW_HOT_KEYS;
    } else if (free_worker < 0) {
        aas_skew_say(d, "; every worker holds some: more workers spread them (the policy)");
    } else if (holder < 0) {
        aas_skew_say(d, "; their worker is new or training: judged later");
    } else {
        *suspect = holder;
        aas_skew_say(d, "; worker %s holds %zu of them while %s holds none",
                     o->workers[holder].id, held[holder], o->workers[free_worker].id);
        kind = AAS_SKEW_HOT_TOGETHER;
    }
    free(held);
    free(owner);
    return kind;
}

double aas_skew_busy_rate(const aas_skew_obs_t *o, double busy_age_s,
                          double min_uptime_s) {
    if (!o->age_s) return -1;
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; i < o->n_workers; i++) {
        const aas_skew_worker_t *w = &o->workers[i];
        if (w->training || !(w->uptime_s >= min_uptime_s) || !isfinite(w->rate) ||
            !(w->rate > 0))
            continue;
        int busy = 0;
        for (size_t k = 0; k < w->n_partitions && !busy; k++) {
            long j = aas_skew_part_index(o, w->partitions[k]);
            busy = j >= 0 && o->parts[j].lag > 0 && isfinite(o->age_s[j]) &&
                   o->age_s[j] >= busy_age_s;
        }
        if (busy) {
            sum += w->rate;
            n++;
        }
    }
    return n ? sum / (double)n : -1;
}

void aas_skew_decide(const aas_skew_conf_t *cin, const aas_skew_obs_t *o,
                     aas_skew_state_t *s, aas_skew_decision_t *d) {
    /* The defaults and ranges live in the scheduler's configuration table,
     * which validates every value; a caller that passes something out of
     * range anyway gets no action (restarting on a garbled window or
     * cooldown could restart every tick), not a second copy of the
     * defaults.  min_lag below 1 is read as 1. */
    aas_skew_conf_t c = *cin;
    if (c.min_lag < 1) c.min_lag = 1;
    memset(d, 0, sizeof(*d));
    const char *bad = !(isfinite(c.window_s) && c.window_s >= 0)       ? "window_s"
                      : !(isfinite(c.cooldown_s) && c.cooldown_s >= 0) ? "cooldown_s"
                      : !(isfinite(c.slow_ratio) && c.slow_ratio > 0 && c.slow_ratio <= 1)
                          ? "slow_ratio"
                      : !(isfinite(c.warmup_s) && c.warmup_s >= 0)     ? "warmup_s"
                      : !(isfinite(c.key_factor) && c.key_factor >= 1) ? "key_factor"
                      : !(isfinite(c.min_age_s) && c.min_age_s >= 0)   ? "min_age_s"
                                                                       : NULL;
    if (bad) {
        aas_skew_say(d, "configuration out of range (%s): skew not judged", bad);
        return;
    }

    long suspect = -1;
    int incomplete = 0;
    d->kind = aas_skew_find(&c, o, d, &suspect, &incomplete);
    if (suspect >= 0) snprintf(d->worker, sizeof(d->worker), "%s", o->workers[suspect].id);
    if (d->kind == AAS_SKEW_NONE) {
        /* A tick with missing data keeps a finding's clock (a window is
         * still whole only if the gap in it is shorter than the window);
         * a tick that judged and found nothing clears it. */
        if (!incomplete) {
            s->kind = AAS_SKEW_NONE;
            s->suspect[0] = '\0';
            s->since_s = -1;
            s->seen_s = -1;
        }
        return;
    }
    /* The same finding must hold for the whole window.  "The same" is what
     * would be done: restarting one worker (whether it was found slow by
     * its rate, by its backlog or holding hot partitions: near a threshold
     * one tick may say one and the next the other), or reporting. */
    int restart_now = d->kind != AAS_SKEW_HOT_KEYS;
    int restart_before = s->kind != AAS_SKEW_HOT_KEYS;
    if (s->kind == AAS_SKEW_NONE || restart_now != restart_before ||
        strcmp(s->suspect, d->worker) != 0 || s->since_s < 0 || o->now_s < s->since_s ||
        s->seen_s < 0 || o->now_s - s->seen_s > c.window_s) {
        s->kind = d->kind;
        snprintf(s->suspect, sizeof(s->suspect), "%s", d->worker);
        s->since_s = o->now_s;
    }
    s->seen_s = o->now_s;
    double held = o->now_s - s->since_s;
    if (held < c.window_s) {
        aas_skew_say(d, "; for %.0f/%.0fs", held, c.window_s);
        return;
    }
    if (s->last_action_s >= 0 && o->now_s >= s->last_action_s &&
        o->now_s - s->last_action_s < c.cooldown_s) {
        aas_skew_say(d, "; acted %.0fs ago, cooldown %.0fs", o->now_s - s->last_action_s,
                     c.cooldown_s);
        return;
    }
    s->last_action_s = o->now_s;
    s->since_s = o->now_s; /* still there after the action: a whole window again */
    if (d->kind == AAS_SKEW_HOT_KEYS) {
        d->action = AAS_SKEW_REPORT;
        aas_skew_say(d, "; for %.0fs: reported", held);
    } else {
        d->action = AAS_SKEW_RESTART;
        aas_skew_say(d, "; for %.0fs: restart %s", held, d->worker);
    }
}
