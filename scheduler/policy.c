/*
 * policy.c - the scaling rule; see policy.h and docs/scheduler.md.
 *
 * Three steps per decision: the rule (how much capacity is needed, as a
 * worker count that adds capacity on this many partitions), the bounds,
 * and stabilisation (up at once, down late and slowly, never down on
 * missing data).  Everything here is arithmetic on its arguments.
 */
#include "policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Above this many workers the arithmetic stops (and so does any fleet). */
#define AAS_POLICY_MAX_COUNT 1000000.0
/* Tolerance when rounding ratios that are integers on paper. */
#define AAS_POLICY_EPS 1e-9
/* With no lag, less than this many workers' worth of arrivals is none: a
 * measured rate decays towards 0 after the last job (never reaching it),
 * and that residue must not keep, or wake, a worker. */
#define AAS_POLICY_IDLE_X 0.01
/* Slowest per-worker service rate taken as measured, jobs/s. */
#define AAS_POLICY_MIN_RATE 1e-6

void aas_policy_state_init(aas_policy_state_t *s) {
    *s = (aas_policy_state_t){.last_up_s = -1, .last_down_s = -1, .lower_since_s = -1,
                              .window_max = 0};
}

static int aas_policy_clamp(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* A conf value at least lo, else lo: the nearest sane value (NaN too).
 * Defaults live only in the scheduler's configuration table, which never
 * lets such a value through; this guards other callers without a second
 * copy of them. */
static double aas_policy_at_least(double v, double lo) {
    return isfinite(v) && v >= lo ? v : lo;
}

static void aas_policy_say(aas_policy_decision_t *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void aas_policy_say(aas_policy_decision_t *d, const char *fmt, ...) {
    size_t used = strlen(d->reason);
    if (used + 1 >= sizeof(d->reason)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason + used, sizeof(d->reason) - used, fmt, ap);
    va_end(ap);
}

/*
 * Workers for x workers' worth of load on p partitions (0: unknown).
 * Kafka gives each partition to one consumer, so with load spread evenly
 * over partitions the busiest worker has ceil(p / n) of them and sets the
 * fleet's pace: n workers hold x workers' worth only if ceil(p / n) <= p / x.
 * Take the largest partitions-per-worker k = floor(p / x) that keeps up and
 * the fewest workers giving it, ceil(p / k).  On 8 partitions 2.9 workers'
 * worth needs 4 (3 would leave one worker 3 partitions, 3 x 2.9 / 8 = 1.09
 * of its capacity), and 4.5 needs 8 (5..7 still leave someone 2).
 */
static int aas_policy_workers_for(double x, int p) {
    if (!(x > AAS_POLICY_EPS)) return 0;
    if (x > AAS_POLICY_MAX_COUNT) x = AAS_POLICY_MAX_COUNT;
    int n = (int)ceil(x - AAS_POLICY_EPS);
    if (p > 0 && n <= p) {
        /* In double: p / x overflowed an int for a tiny x (a decaying
         * rate), and the wrapped k put every partition on its own worker. */
        double kd = floor((double)p / x + AAS_POLICY_EPS);
        int k = kd >= p ? p : kd >= 1 ? (int)kd : 1;
        n = (p + k - 1) / k;
    }
    return n;
}

/* The smallest count above cur that adds capacity on p partitions. */
static int aas_policy_next_up(int cur, int p) {
    if (cur <= 0) return 1;
    if (p <= 0 || cur >= p) return cur + 1;
    int k = (p + cur - 1) / cur; /* partitions of the busiest worker now */
    return k <= 1 ? cur + 1 : (p + k - 2) / (k - 1);
}

void aas_policy_decide(const aas_policy_conf_t *c, const aas_policy_obs_t *o,
                       aas_policy_state_t *s, aas_policy_decision_t *d) {
    /* Configuration, read defensively: a pure function cannot fail. */
    int lo = c->min_workers > 0 ? c->min_workers : 0;
    int hi = c->max_workers > lo ? c->max_workers : lo;
    int parts = c->partitions > 0 ? c->partitions : 0;
    int grow = c->can_grow_partitions != 0;
    double threshold = aas_policy_at_least(c->lag_threshold, 1);   /* jobs */
    double drain_s = aas_policy_at_least(c->target_drain_s, 1);    /* s */
    double headroom = aas_policy_at_least(c->headroom, 1);         /* none */
    double age_target_s = aas_policy_at_least(c->target_queue_age_s, 1);
    double window_s = isfinite(c->scale_down_window_s) && c->scale_down_window_s > 0
                          ? c->scale_down_window_s : 0;
    double cool_s = isfinite(c->cooldown_s) && c->cooldown_s > 0 ? c->cooldown_s : 0;
    int max_step = c->max_step_down > 0 ? c->max_step_down : 1;

    /* Observations: NaN, Inf and negatives are unknown. */
    double now = o->now_s;
    int cur = o->current_workers > 0 ? o->current_workers : 0;
    int lag_known = o->lag >= 0;
    int arr_known = isfinite(o->arrival_rate) && o->arrival_rate >= 0;
    /* A service rate below a job a million seconds is no measurement:
     * dividing by it makes any arrival residue a fleet. */
    int svc_known = isfinite(o->service_rate_per_worker) &&
                    o->service_rate_per_worker >= AAS_POLICY_MIN_RATE;
    int age_known = isfinite(o->oldest_age_s) && o->oldest_age_s >= 0;
    double lag = lag_known ? (double)o->lag : 0;
    double arrival = arr_known ? o->arrival_rate : 0;

    memset(d, 0, sizeof(*d));

    /* 1. The rule: x workers' worth of load.  complete: every input the
     * rule uses was measured, so a lower count may be trusted. */
    double x = 0;
    int complete = 0, have_rule = 1;
    if (svc_known && (lag_known || arr_known)) {
        double need = fmax(arrival * headroom, arrival + lag / drain_s);
        x = need / o->service_rate_per_worker;
        complete = lag_known && arr_known;
        aas_policy_say(d, "rate: max(%s%.1f/s x%.2f, +lag %s%.0f/%.0fs) / %.1f/s = %.2f",
                       arr_known ? "" : ">=", arrival, headroom, lag_known ? "" : ">=",
                       lag, drain_s, o->service_rate_per_worker, x);
    } else if (lag_known) {
        x = lag / threshold;
        complete = 1; /* the fallback rule reads the lag alone */
        aas_policy_say(d, "lag (service rate unknown): %.0f / %.0f = %.2f", lag, threshold,
                       x);
    } else {
        have_rule = 0;
        aas_policy_say(d, "lag unknown");
    }
    if (have_rule && lag_known && o->lag == 0 && x < AAS_POLICY_IDLE_X) {
        x = 0;
        aas_policy_say(d, "; idle");
    }
    int raw = have_rule ? aas_policy_workers_for(x, parts) : cur;
    if (have_rule) aas_policy_say(d, " -> %d", raw);

    /* Observed queue age: the rates may be wrong (a slower model, skew),
     * the age of the oldest job is not.  Age lags behind a change, so
     * additions it drives are cooldown_s apart.  A stale age with no lag
     * at all is ignored. */
    if (age_known && o->oldest_age_s > age_target_s &&
        (!lag_known || o->lag > 0)) {
        int paced = s->last_up_s >= 0 && now - s->last_up_s < cool_s;
        int more = paced ? cur : aas_policy_next_up(cur, parts);
        if (raw < more) raw = more;
        aas_policy_say(d, "; oldest %.1fs > %.1fs%s", o->oldest_age_s,
                       age_target_s,
                       paced ? " (added lately, holding)" : "");
    }
    d->raw = raw;

    /* 2. Bounds.  More consumers than partitions would idle, unless the
     * topic may grow; an explicit minimum still wins. */
    int cap = hi;
    if (parts > 0 && !grow && parts < cap) cap = parts > lo ? parts : lo;
    int target = aas_policy_clamp(raw, lo, cap);
    if (grow && parts > 0 && target > parts) d->want_partitions = target;
    int floor_now = aas_policy_clamp(cur, lo, cap); /* where bounds alone put us */
    if (!complete && target < floor_now) {
        /* Never in on missing data. */
        target = floor_now;
        aas_policy_say(d, "; data incomplete: no scale-down");
    }

    /* 3. Stabilisation. */
    if (target >= floor_now) {
        s->lower_since_s = -1;
        s->window_max = 0;
        d->desired = target;
        if (target > cur) {
            s->last_up_s = now;
            aas_policy_say(d, "; up %d->%d", cur, target);
        } else if (target < cur) {
            s->last_down_s = now;
            aas_policy_say(d, "; bounds %d..%d: down %d->%d", lo, cap, cur, target);
        } else {
            aas_policy_say(d, "; hold %d", cur);
        }
        return;
    }
    /* Less is needed.  Go down only once it has been for the whole window,
     * no further than the most needed in it, max_step at a time. */
    if (s->lower_since_s < 0 || now < s->lower_since_s) {
        s->lower_since_s = now;
        s->window_max = target;
    } else if (target > s->window_max) {
        s->window_max = target;
    }
    double waited = now - s->lower_since_s;
    double last_change = fmax(s->last_up_s, s->last_down_s);
    d->desired = floor_now;
    if (waited < window_s) {
        aas_policy_say(d, "; hold %d, down to %d after %.0f/%.0fs", floor_now,
                       s->window_max, waited, window_s);
        return;
    }
    if (last_change >= 0 && now - last_change < cool_s) {
        aas_policy_say(d, "; hold %d, cooldown %.0f/%.0fs", floor_now, now - last_change,
                       cool_s);
        return;
    }
    int step = floor_now - s->window_max;
    if (step > max_step) step = max_step;
    if (step <= 0) { /* workers left on their own: start over */
        s->lower_since_s = -1;
        aas_policy_say(d, "; hold %d", floor_now);
        return;
    }
    d->desired = floor_now - step;
    s->last_down_s = now;
    aas_policy_say(d, "; down %d->%d (needed <= %d for %.0fs)", cur, d->desired,
                   s->window_max, waited);
    if (d->desired <= s->window_max) { /* reached: a further drop waits anew */
        s->lower_since_s = -1;
        s->window_max = 0;
    }
}
