/*
 * store_quota.c - per-tenant quotas in Redis (store.h, "per-tenant
 * quotas"): a token bucket and a set of the jobs in flight per tenant,
 * checked and taken by one script (quota_admit.lua) on the Redis clock, so
 * every client and worker shares one bucket.  Both keys of a call carry the
 * tenant's hash tag: one cluster slot.  It knows nothing of jobs' own keys
 * (another slot): callers release a job when it becomes terminal.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "log.h"
#include "store_int.h"

const char *aas_quota_tenant(const char *tenant) {
    return tenant && tenant[0] ? tenant : "default";
}

/* <prefix>quota:{tenant} and <prefix>quota:{tenant}:inflight. */
int aas_quota_keys(const aas_store_t *st, const char *tenant, char cfg[AAS_STORE_KEY_MAX],
                   char inflight[AAS_STORE_KEY_MAX]) {
    int n = snprintf(cfg, AAS_STORE_KEY_MAX, "%squota:{%s}", st->prefix, tenant);
    if (n < 0 || n >= AAS_STORE_KEY_MAX - 10) return -1;
    memcpy(inflight, cfg, (size_t)n);
    memcpy(inflight + n, ":inflight", 10);
    return 0;
}

/* In-flight ids older than the job TTL are pruned: the job's hash is gone
 * by then too, so nothing could ever release them. */
static long long aas_quota_stale_ms(const aas_store_t *st) { return (long long)st->ttl_s * 1000; }

static int aas_quota_reply_num(const redisReply *r, double *out) {
    char buf[64], *end;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (double)r->integer;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof(buf)) return -1;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    *out = strtod(buf, &end);
    return *end || !isfinite(*out) ? -1 : 0;
}

/* The admit script's reply into *out; 0, or -1 if it is not one. */
static int aas_quota_admit_parse(const redisReply *r, aas_quota_admit_t *out) {
    static const struct {
        const char *name;
        aas_quota_verdict_t v;
    } verdicts[] = {{"NONE", AAS_QUOTA_NONE},
                    {"OK", AAS_QUOTA_OK},
                    {"AGAIN", AAS_QUOTA_AGAIN},
                    {"RATE", AAS_QUOTA_RATE},
                    {"INFLIGHT", AAS_QUOTA_INFLIGHT}};
    enum { NV = sizeof(verdicts) / sizeof(verdicts[0]) };
    aas_quota_admit_t res = {0};
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 6 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    size_t v = 0;
    while (v < NV && (strlen(verdicts[v].name) != r->element[0]->len ||
                      memcmp(verdicts[v].name, r->element[0]->str, r->element[0]->len)))
        v++;
    double inflight_max = 0;
    if (v == NV || aas_store_reply_ll(r->element[1], &res.retry_ms) ||
        aas_quota_reply_num(r->element[2], &res.quota.rate) ||
        aas_quota_reply_num(r->element[3], &res.quota.burst) ||
        aas_quota_reply_num(r->element[4], &inflight_max) ||
        aas_store_reply_ll(r->element[5], &res.inflight_now))
        return -1;
    res.verdict = verdicts[v].v;
    res.quota.inflight = (int64_t)inflight_max;
    *out = res;
    return 0;
}

/* The admit script's keys and arguments for one job into a. */
static int aas_quota_admit_args(const aas_store_t *st, const char *tenant, const char *job_id,
                                int enforce_inflight, char keys[2][AAS_STORE_KEY_MAX],
                                aas_store_args_t *a) {
    tenant = aas_quota_tenant(tenant);
    if (!job_id || !aas_id_valid(job_id) || !aas_id_valid(tenant) ||
        aas_quota_keys(st, tenant, keys[0], keys[1]))
        return -1;
    aas_store_args_init(a);
    aas_store_args_add(a, keys[0]);
    aas_store_args_add(a, keys[1]);
    aas_store_args_add(a, job_id);
    aas_store_args_addll(a, aas_quota_stale_ms(st));
    aas_store_args_addll(a, AAS_QUOTA_INFLIGHT_RETRY_MS);
    aas_store_args_add(a, enforce_inflight ? "1" : "0");
    return 0;
}

/* How often whether any tenant has a quota is asked again. */
#define AAS_QUOTA_ACTIVE_POLL_US 1000000

int aas_store_quotas_active(aas_store_t *st) {
    int64_t now = aas_mono_us();
    if (st->quotas_asked_us && now - st->quotas_asked_us < AAS_QUOTA_ACTIVE_POLL_US)
        return st->quotas_any;
    int64_t nq = 1; /* not known: check each job */
    char why[256];
    if (aas_store_quota_count(st, &nq, why, sizeof(why)))
        AAS_LOG(AAS_LOG_DEBUG, "store", "quota count: %s", why);
    st->quotas_any = nq > 0;
    st->quotas_asked_us = now;
    return st->quotas_any;
}

aas_err_t aas_store_quota_admit(aas_store_t *st, const char *tenant, const char *job_id,
                                aas_quota_admit_t *out, char *errstr, size_t errstr_size) {
    char keys[2][AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    if (aas_quota_admit_args(st, tenant, job_id, 1, keys, &a))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "quota: invalid job id or tenant");
    redisReply *r;
    /* Resending is safe: an id admitted by the first send is AGAIN. */
    aas_err_t err = aas_store_eval(st, AAS_STORE_LUA_QUOTA_ADMIT, AAS_STORE_F_RETRY,
                                   "quota admit", 2, &a, &r, errstr, errstr_size);
    if (err) return err;
    aas_quota_admit_t res;
    if (aas_quota_admit_parse(r, &res))
        err = aas_store_reply_bad(r, "quota admit", errstr, errstr_size);
    else
        *out = res;
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_quota_admit_many(aas_store_t *st, aas_store_quota_item_t *items, size_t n,
                                     char *errstr, size_t errstr_size) {
    enum { CHUNK = 64 };
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK, na = 0;
        aas_store_args_t a[CHUNK];
        char keys[CHUNK][2][AAS_STORE_KEY_MAX];
        redisReply *r[CHUNK];
        aas_err_t errs[CHUNK];
        size_t idx[CHUNK];
        for (size_t j = 0; j < m; j++) {
            aas_store_quota_item_t *it = &items[base + j];
            it->err = AAS_ERR_OK;
            if (aas_quota_admit_args(st, it->tenant, it->job_id, 0, keys[na], &a[na])) {
                it->err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                      "quota: invalid job id or tenant");
                continue;
            }
            idx[na++] = base + j;
        }
        if (!na) continue;
        aas_err_t err = aas_store_eval_many(st, AAS_STORE_LUA_QUOTA_ADMIT, AAS_STORE_F_RETRY,
                                            "quota admit", 2, a, na, r, errs, errstr,
                                            errstr_size);
        if (err) {
            for (size_t j = base; j < n; j++)
                if (!items[j].err) items[j].err = err;
            return err;
        }
        for (size_t j = 0; j < na; j++) {
            aas_store_quota_item_t *it = &items[idx[j]];
            it->err = errs[j];
            if (!r[j]) continue;
            if (aas_quota_admit_parse(r[j], &it->res))
                it->err = aas_store_reply_bad(r[j], "quota admit", errstr, errstr_size);
            freeReplyObject(r[j]);
        }
    }
    return AAS_ERR_OK;
}

aas_err_t aas_store_quota_count(aas_store_t *st, int64_t *n, char *errstr, size_t errstr_size) {
    char tkey[AAS_STORE_KEY_MAX];
    if (aas_store_key(st, tkey, sizeof(tkey), "quota:tenants", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SCARD");
    aas_store_args_add(&a, tkey);
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SCARD quota tenants", &a, &r,
                                  errstr, errstr_size);
    if (err) return err;
    int64_t v;
    if (aas_store_reply_ll(r, &v))
        err = aas_store_reply_bad(r, "SCARD quota tenants", errstr, errstr_size);
    else
        *n = v;
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_quota_release_many(aas_store_t *st, const char *const *tenants,
                                       const char *const *ids, size_t n, char *errstr,
                                       size_t errstr_size) {
    enum { CHUNK = 64 };
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK, na = 0;
        aas_store_args_t a[CHUNK];
        char keys[CHUNK][2][AAS_STORE_KEY_MAX];
        redisReply *r[CHUNK];
        aas_err_t errs[CHUNK];
        for (size_t j = 0; j < m; j++) {
            const char *t = aas_quota_tenant(tenants[base + j]);
            const char *id = ids[base + j];
            if (!id || !aas_id_valid(id) || !aas_id_valid(t) ||
                aas_quota_keys(st, t, keys[na][0], keys[na][1]))
                continue; /* nothing of ours can hold it */
            aas_store_args_init(&a[na]);
            aas_store_args_add(&a[na], keys[na][1]);
            aas_store_args_add(&a[na], id);
            na++;
        }
        if (!na) continue;
        aas_err_t err = aas_store_eval_many(st, AAS_STORE_LUA_QUOTA_RELEASE, AAS_STORE_F_RETRY,
                                            "quota release", 1, a, na, r, errs, errstr,
                                            errstr_size);
        if (err) return err;
        for (size_t j = 0; j < na; j++) {
            if (r[j]) freeReplyObject(r[j]);
            if (errs[j] && !err) err = errs[j];
        }
        if (err) return err;
    }
    return AAS_ERR_OK;
}

void aas_quota_refusal_format(const char *tenant, const aas_quota_admit_t *a, char *buf,
                              size_t size) {
    tenant = aas_quota_tenant(tenant);
    if (a->verdict == AAS_QUOTA_INFLIGHT)
        snprintf(buf, size, "tenant %s is over its in-flight quota (%" PRId64 " jobs "
                 "submitted and not finished): retry in %" PRId64 " ms", tenant,
                 a->quota.inflight, a->retry_ms);
    else
        snprintf(buf, size, "tenant %s is over its rate quota (%g jobs/s, burst %g): retry in "
                 "%" PRId64 " ms", tenant, a->quota.rate, a->quota.burst, a->retry_ms);
}

aas_err_t aas_store_quota_set(aas_store_t *st, const char *tenant, const aas_quota_t *q,
                              char *errstr, size_t errstr_size) {
    char cfg[AAS_STORE_KEY_MAX], inflight[AAS_STORE_KEY_MAX], tkey[AAS_STORE_KEY_MAX];
    if (!tenant || !aas_id_valid(tenant) || aas_quota_keys(st, tenant, cfg, inflight) ||
        aas_store_key(st, tkey, sizeof(tkey), "quota:tenants", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "quota: invalid tenant name");
    if (!isfinite(q->rate) || q->rate < 0 || q->rate > AAS_QUOTA_RATE_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "quota rate %g: want 0 (no rate limit) to %g jobs/s", q->rate,
                           AAS_QUOTA_RATE_MAX);
    if (!isfinite(q->burst) || (q->burst != 0 && q->burst < 1) || q->burst > AAS_QUOTA_RATE_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "quota burst %g: want 1 to %g jobs (or unset: max(1, rate))",
                           q->burst, AAS_QUOTA_RATE_MAX);
    if (q->burst > 0 && q->rate == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "quota burst without a rate: the bucket needs a rate");
    if (q->inflight < 0 || q->inflight > 1000000000)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "quota inflight %" PRId64 ": want 0 (unlimited) to 1000000000",
                           q->inflight);
    if (q->rate == 0 && q->inflight == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "quota for %s: give a rate or an in-flight limit (to remove a quota, "
                           "delete it)", tenant);
    char rate[32] = "", burst[32] = "", infl[32] = "";
    if (q->rate > 0) snprintf(rate, sizeof(rate), "%.17g", q->rate);
    if (q->burst > 0) snprintf(burst, sizeof(burst), "%.17g", q->burst);
    if (q->inflight > 0) snprintf(infl, sizeof(infl), "%" PRId64, q->inflight);
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, cfg);
    aas_store_args_add(&a, rate);
    aas_store_args_add(&a, burst);
    aas_store_args_add(&a, infl);
    redisReply *r;
    aas_err_t err = aas_store_eval(st, AAS_STORE_LUA_QUOTA_SET, AAS_STORE_F_RETRY, "quota set",
                                   1, &a, &r, errstr, errstr_size);
    if (err) return err;
    freeReplyObject(r);
    /* The index for listing: another slot, so not in the script.  Losing
     * it (a crash here) hides the quota from `quota list` only; setting it
     * again adds it. */
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SADD");
    aas_store_args_add(&a, tkey);
    aas_store_args_add(&a, tenant);
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SADD quota tenants", &a, &r, errstr,
                             errstr_size)))
        return err;
    freeReplyObject(r);
    return AAS_ERR_OK;
}

aas_err_t aas_store_quota_delete(aas_store_t *st, const char *tenant, char *errstr,
                                 size_t errstr_size) {
    char cfg[AAS_STORE_KEY_MAX], inflight[AAS_STORE_KEY_MAX], tkey[AAS_STORE_KEY_MAX];
    if (!tenant || !aas_id_valid(tenant) || aas_quota_keys(st, tenant, cfg, inflight) ||
        aas_store_key(st, tkey, sizeof(tkey), "quota:tenants", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "quota: invalid tenant name");
    const char *cmds[2][3] = {{"DEL", cfg, inflight}, {"SREM", tkey, tenant}};
    long long deleted = 0;
    for (int i = 0; i < 2; i++) {
        aas_store_args_t a;
        aas_store_args_init(&a);
        for (int k = 0; k < 3; k++) aas_store_args_add(&a, cmds[i][k]);
        redisReply *r;
        aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, i ? "SREM quota tenants"
                                                                  : "DEL quota",
                                      &a, &r, errstr, errstr_size);
        if (err) return err;
        if (i == 0 && r->type == REDIS_REPLY_INTEGER) deleted = r->integer;
        freeReplyObject(r);
    }
    if (!deleted)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "tenant %s has no quota",
                           tenant);
    return AAS_ERR_OK;
}

void aas_quota_rows_free(aas_quota_row_t *rows, size_t n) {
    if (!rows) return;
    for (size_t i = 0; i < n; i++) free(rows[i].tenant);
    free(rows);
}

static int aas_quota_row_cmp(const void *x, const void *y) {
    return strcmp(((const aas_quota_row_t *)x)->tenant, ((const aas_quota_row_t *)y)->tenant);
}

/* One tenant's quota and state into *row; *has 0 when it has none. */
static aas_err_t aas_quota_read(aas_store_t *st, const char *tenant, aas_quota_row_t *row,
                                int *has, char *errstr, size_t errstr_size) {
    char cfg[AAS_STORE_KEY_MAX], inflight[AAS_STORE_KEY_MAX];
    if (aas_quota_keys(st, tenant, cfg, inflight))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "quota: key too long");
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, cfg);
    aas_store_args_add(&a, inflight);
    aas_store_args_addll(&a, aas_quota_stale_ms(st));
    redisReply *r;
    aas_err_t err = aas_store_eval(st, AAS_STORE_LUA_QUOTA_GET, AAS_STORE_F_RETRY, "quota get",
                                   2, &a, &r, errstr, errstr_size);
    if (err) return err;
    *has = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
        freeReplyObject(r);
        return AAS_ERR_OK;
    }
    double inflight_max;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        aas_quota_reply_num(r->element[0], &row->quota.rate) ||
        aas_quota_reply_num(r->element[1], &row->quota.burst) ||
        aas_quota_reply_num(r->element[2], &inflight_max) ||
        aas_store_reply_ll(r->element[3], &row->inflight_now) ||
        r->element[4]->type != REDIS_REPLY_STRING) {
        err = aas_store_reply_bad(r, "quota get", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    row->quota.inflight = (int64_t)inflight_max;
    row->tokens_now = -1;
    if (r->element[4]->len) aas_quota_reply_num(r->element[4], &row->tokens_now);
    freeReplyObject(r);
    *has = 1;
    return AAS_ERR_OK;
}

aas_err_t aas_store_quota_list(aas_store_t *st, aas_quota_row_t **out, size_t *n,
                               char *errstr, size_t errstr_size) {
    char tkey[AAS_STORE_KEY_MAX];
    if (aas_store_key(st, tkey, sizeof(tkey), "quota:tenants", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SMEMBERS");
    aas_store_args_add(&a, tkey);
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SMEMBERS quota tenants", &a, &r,
                                  errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = aas_store_reply_bad(r, "SMEMBERS quota tenants", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    aas_quota_row_t *rows = calloc(r->elements ? r->elements : 1, sizeof(*rows));
    size_t k = 0;
    if (!rows) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && i < r->elements; i++) {
        const redisReply *e = r->element[i];
        char t[AAS_ID_MAX + 1];
        if (e->type != REDIS_REPLY_STRING || e->len > AAS_ID_MAX) continue;
        memcpy(t, e->str, e->len);
        t[e->len] = '\0';
        if (!aas_id_valid(t)) continue; /* not ours to build a key from */
        int has = 0;
        if ((err = aas_quota_read(st, t, &rows[k], &has, errstr, errstr_size))) break;
        if (!has) continue; /* deleted by hand: a stale index entry */
        if (!(rows[k].tenant = strdup(t))) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            break;
        }
        k++;
    }
    freeReplyObject(r);
    if (err) {
        aas_quota_rows_free(rows, k);
        return err;
    }
    if (k) qsort(rows, k, sizeof(*rows), aas_quota_row_cmp);
    *out = rows;
    *n = k;
    return AAS_ERR_OK;
}
