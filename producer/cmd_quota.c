/* cmd_quota.c - aas-producer quota: set, list and delete the per-tenant
 * quotas in Redis (store.h "per-tenant quotas", docs/sharing.md#quotas):
 * a rate (token bucket: jobs/s and burst) and a limit on jobs in flight,
 * checked at submit by every client and enforced by workers (cmd.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define QUOTA_USAGE                                                                    \
    "aas-producer: usage: quota set TENANT [--rate R] [--burst B] [--inflight N] | "   \
    "quota list | quota delete TENANT\n"                                               \
    "  R jobs/s (may be fractional, 0 = no rate limit), B bucket size (>= 1, default " \
    "max(1, R)), N jobs in flight (0 = unlimited); at least --rate or --inflight\n"

/* A decimal number in [lo, hi]; 0 or -1. */
static int parse_num(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The limits of quota set from the options; 0, or AAS_EXIT_USAGE having
 * said why. */
static int quota_from_opts(const aas_cmd_opts_t *o, aas_quota_t *q) {
    memset(q, 0, sizeof(*q));
    if (o->rate && parse_num(o->rate, 0, AAS_QUOTA_RATE_MAX, &q->rate)) {
        fprintf(stderr, "aas-producer: --rate '%s': want jobs per second, 0 to %g (e.g. 5 or "
                        "0.5)\n", o->rate, AAS_QUOTA_RATE_MAX);
        return AAS_EXIT_USAGE;
    }
    if (o->burst && parse_num(o->burst, 1, AAS_QUOTA_RATE_MAX, &q->burst)) {
        fprintf(stderr, "aas-producer: --burst '%s': want a bucket size, 1 to %g jobs\n",
                o->burst, AAS_QUOTA_RATE_MAX);
        return AAS_EXIT_USAGE;
    }
    if (o->inflight && aas_cmd_parse_i64(o->inflight, 0, 1000000000, &q->inflight)) {
        fprintf(stderr, "aas-producer: --inflight '%s': want a job count, 0 (unlimited) to "
                        "1000000000\n", o->inflight);
        return AAS_EXIT_USAGE;
    }
    if (q->burst > 0 && q->rate == 0) {
        fprintf(stderr, "aas-producer: --burst needs a --rate above 0 (the bucket refills at "
                        "the rate)\n");
        return AAS_EXIT_USAGE;
    }
    if (q->rate == 0 && q->inflight == 0) {
        fprintf(stderr, "aas-producer: quota set: give --rate or --inflight above 0 (to "
                        "remove a quota: quota delete TENANT)\n");
        return AAS_EXIT_USAGE;
    }
    return 0;
}

static int cmd_quota_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    const char *sub = n > 0 ? args[0] : "";
    int set = !strcmp(sub, "set") && n == 2;
    int list = !strcmp(sub, "list") && n == 1;
    int del = !strcmp(sub, "delete") && n == 2;
    if ((!set && !list && !del) || (!set && (o->rate || o->burst || o->inflight))) {
        fputs(QUOTA_USAGE, stderr);
        return AAS_EXIT_USAGE;
    }
    if ((set || del) && !aas_id_valid(args[1])) {
        fprintf(stderr, "aas-producer: tenant '%s' is not valid ([A-Za-z0-9_.-], at most %d)\n",
                args[1], AAS_ID_MAX);
        return AAS_EXIT_USAGE;
    }
    aas_quota_t q;
    return set ? quota_from_opts(o, &q) : 0;
}

static int quota_set(aas_client_t *c, const aas_cmd_opts_t *o, const char *tenant) {
    aas_quota_t q;
    char why[512];
    if (quota_from_opts(o, &q)) return AAS_EXIT_USAGE;
    if (aas_store_quota_set(aas_client_store(c), tenant, &q, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    char rate[64] = "no rate limit", infl[64] = "no in-flight limit";
    if (q.rate > 0)
        snprintf(rate, sizeof(rate), "%g jobs/s, burst %g", q.rate,
                 q.burst > 0 ? q.burst : fmax(1, q.rate));
    if (q.inflight > 0) snprintf(infl, sizeof(infl), "at most %" PRId64 " in flight", q.inflight);
    fprintf(stderr, "aas-producer: quota of %s: %s, %s\n", tenant, rate, infl);
    return 0;
}

static int quota_list(aas_client_t *c) {
    aas_quota_row_t *v = NULL;
    size_t n = 0;
    char why[512];
    if (aas_store_quota_list(aas_client_store(c), &v, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    printf("%-24s %10s %10s %10s %10s %10s\n", "TENANT", "RATE", "BURST", "INFLIGHT", "IN_FLIGHT",
           "TOKENS");
    for (size_t i = 0; i < n; i++) {
        char rate[32] = "-", burst[32] = "-", lim[32] = "-", tok[32] = "-";
        if (v[i].quota.rate > 0) {
            snprintf(rate, sizeof(rate), "%g", v[i].quota.rate);
            snprintf(burst, sizeof(burst), "%g", v[i].quota.burst);
        }
        if (v[i].quota.inflight > 0) snprintf(lim, sizeof(lim), "%" PRId64, v[i].quota.inflight);
        if (v[i].tokens_now >= 0) snprintf(tok, sizeof(tok), "%.2f", v[i].tokens_now);
        printf("%-24s %10s %10s %10s %10" PRId64 " %10s\n", v[i].tenant, rate, burst, lim,
               v[i].inflight_now, tok);
    }
    aas_quota_rows_free(v, n);
    fprintf(stderr, "aas-producer: %zu quota(s); tenants not listed are unlimited\n", n);
    return 0;
}

static int quota_delete(aas_client_t *c, const char *tenant) {
    char why[512];
    aas_err_t err = aas_store_quota_delete(aas_client_store(c), tenant, why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    fprintf(stderr, "aas-producer: quota of %s deleted: it is unlimited now\n", tenant);
    return 0;
}

static int cmd_quota(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    (void)n;
    if (!strcmp(args[0], "set")) return quota_set(c, o, args[1]);
    if (!strcmp(args[0], "list")) return quota_list(c);
    return quota_delete(c, args[1]);
}

static const aas_cmd_help_t quota_help[] = {
    {"quota set TENANT [--rate R] [--burst B] [--inflight N]",
     "replace TENANT's quota: R jobs/s\n(fractional ok; default none), bucket\nB (default "
     "max(1, R)), N jobs in\nflight (default unlimited); 'default'\nis the jobs without a "
     "tenant"},
    {"quota list", "quotas, jobs in flight, tokens now"},
    {"quota delete TENANT", "remove a quota (then unlimited)"},
    {NULL, NULL}};

const aas_cmd_t aas_cmd_quota_def = {"quota", cmd_quota_check, cmd_quota, quota_help, NULL};
