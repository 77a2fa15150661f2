/* policy.c - the scaling rule; see policy.h and docs/scheduler.md. */
#include "policy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void aas_policy_conf_default(aas_policy_conf_t *c) {
    *c = (aas_policy_conf_t){.min_workers = 1, .max_workers = 8, .partitions = 8,
                             .lag_threshold = 100, .target_drain_s = 10,
                             .target_queue_age_s = 5, .headroom = 1.2,
                             .scale_down_window_s = 30, .cooldown_s = 10,
                             .max_step_down = 1};
}

void aas_policy_state_init(aas_policy_state_t *s) {
    *s = (aas_policy_state_t){.below_since_s = -1, .window_max = 0, .last_down_s = -1e18};
}

static int aas_policy_clamp(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void aas_policy_decide(const aas_policy_conf_t *c, const aas_policy_obs_t *o,
                       aas_policy_state_t *s, aas_policy_decision_t *d) {
    int cur = o->current_workers;
    int known = o->lag >= 0;
    int need;
    d->want_partitions = 0;
    if (known && o->service_rate_per_worker > 0 && o->arrival_rate >= 0) {
        /* Capacity for what arrives (with headroom) plus draining the
         * backlog within the target. */
        double rate = o->arrival_rate * c->headroom + (double)o->lag / c->target_drain_s;
        need = (int)ceil(rate / o->service_rate_per_worker);
        snprintf(d->reason, sizeof(d->reason),
                 "rate rule: (arrival %.1f/s x %.2f + lag %lld / %.0fs) / %.1f/s per worker",
                 o->arrival_rate, c->headroom, (long long)o->lag, c->target_drain_s,
                 o->service_rate_per_worker);
    } else if (known) {
        need = (int)ceil((double)o->lag / c->lag_threshold);
        snprintf(d->reason, sizeof(d->reason),
                 "lag rule (service rate unknown): lag %lld / threshold %.0f",
                 (long long)o->lag, c->lag_threshold);
    } else {
        need = cur; /* unknown lag: hold, never scale in on missing data */
        snprintf(d->reason, sizeof(d->reason), "lag unknown: holding %d", cur);
    }
    if (known && o->oldest_age_s > c->target_queue_age_s && need <= cur) {
        need = cur + 1;
        snprintf(d->reason, sizeof(d->reason), "oldest job %.1fs > target %.1fs",
                 o->oldest_age_s, c->target_queue_age_s);
    }
    d->raw = need;
    int hi = c->max_workers;
    if (!c->can_grow_partitions && c->partitions > 0 && c->partitions < hi) hi = c->partitions;
    if (c->can_grow_partitions && need > c->partitions && c->partitions > 0)
        d->want_partitions = need < c->max_workers ? need : c->max_workers;
    int want = aas_policy_clamp(need, c->min_workers, hi < c->min_workers ? c->min_workers : hi);

    if (want >= cur) {
        /* Up (or steady): at once; any pending scale-down is forgotten. */
        s->below_since_s = -1;
        s->window_max = 0;
        d->desired = want;
        return;
    }
    if (!known) { /* never in on missing data */
        d->desired = cur;
        return;
    }
    /* Down: only once a lower need has held for the whole window, to the
     * largest need seen in it, one step at a time, not within cooldown. */
    if (s->below_since_s < 0) {
        s->below_since_s = o->now_s;
        s->window_max = want;
    } else if (want > s->window_max) {
        s->window_max = want;
    }
    if (o->now_s - s->below_since_s < c->scale_down_window_s ||
        o->now_s - s->last_down_s < c->cooldown_s) {
        d->desired = cur;
        snprintf(d->reason + strlen(d->reason), sizeof(d->reason) - strlen(d->reason),
                 "; waiting to scale down to %d", s->window_max);
        return;
    }
    int step = cur - s->window_max;
    if (step > c->max_step_down) step = c->max_step_down;
    d->desired = cur - step;
    s->last_down_s = o->now_s;
    if (d->desired <= s->window_max) s->below_since_s = -1; /* further steps: cooldown only */
    if (s->below_since_s < 0) s->window_max = 0;
}
