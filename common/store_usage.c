/*
 * store_usage.c - usage metering in Redis (store.h, "usage metering"): one
 * script call per finished job counts it in its tenant's hourly hash,
 * guarded by a set of the ids counted in that hour, so a redelivered or
 * retried job is counted once.  Both keys of a call carry the tenant's hash
 * tag: one cluster slot.  Reading walks a tenant's hours with SCAN.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store.h"
#include "store_int.h"

#include "fmt.h"

#define AAS_USAGE_HOUR_MS 3600000LL
#define AAS_STORE_USAGE_TENANTS_TTL_MS 60000
/* Most hourly rows one read returns (a year of one model is 8760). */
#define AAS_USAGE_READ_MAX 1000000

static const char *const aas_usage_names[] = {"rows",     "compute_us", "queue_ms",
                                              "bytes_in", "bytes_out",  "sample_epochs"};

static int64_t *aas_usage_slot(aas_usage_t *u, int i) {
    int64_t *s[] = {&u->rows,     &u->compute_us, &u->queue_ms,
                    &u->bytes_in, &u->bytes_out,  &u->sample_epochs};
    return s[i];
}

void aas_usage_format(const aas_usage_t *u, char *buf, size_t size) {
    /* Once per finished job: plain digits, not snprintf. */
    const int64_t v[6] = {u->rows,     u->compute_us, u->queue_ms,
                          u->bytes_in, u->bytes_out,  u->sample_epochs};
    char tmp[6 * AAS_FMT_LL_MAX];
    size_t n = 0;
    for (int i = 0; i < 6; i++) {
        if (i) tmp[n++] = ' ';
        n += aas_fmt_ll(tmp + n, (long long)v[i]);
    }
    if (!size) return;
    if (n >= size) n = size - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

int aas_usage_parse(const char *s, aas_usage_t *u) {
    aas_usage_t v;
    char extra;
    if (!s || sscanf(s, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %c",
                     &v.rows, &v.compute_us, &v.queue_ms, &v.bytes_in, &v.bytes_out,
                     &v.sample_epochs, &extra) != 6)
        return -1;
    for (int i = 0; i < 6; i++)
        if (*aas_usage_slot(&v, i) < 0) return -1;
    *u = v;
    return 0;
}

static const char *aas_usage_tenant(const char *t) { return t && t[0] ? t : "default"; }

/* <prefix>usage:{tenant}:hour, and the ids set beside it. */
static int aas_usage_keys(const aas_store_t *st, const char *tenant, int64_t hour,
                          char hash[AAS_STORE_KEY_MAX], char ids[AAS_STORE_KEY_MAX]) {
    char h[AAS_FMT_LL_MAX];
    size_t hl = aas_fmt_ll(h, (long long)hour), n;
    if (aas_store_key(st, hash, AAS_STORE_KEY_MAX - 5 - 1 - hl, "usage", tenant)) return -1;
    n = strlen(hash);
    hash[n++] = ':';
    memcpy(hash + n, h, hl + 1);
    n += hl;
    memcpy(ids, hash, n);
    memcpy(ids + n, ":jobs", 6);
    return 0;
}

/* Was tenant put in the tenants set lately (by this handle)? */
static int aas_usage_tenant_known(aas_store_t *st, const char *tenant) {
    if (aas_now_ms() - st->usage_tenants_since_ms > AAS_STORE_USAGE_TENANTS_TTL_MS) {
        st->n_usage_tenants = 0;
        st->usage_tenants_since_ms = aas_now_ms();
    }
    for (int i = 0; i < st->n_usage_tenants; i++)
        if (!strcmp(st->usage_tenants[i], tenant)) return 1;
    return 0;
}

static void aas_usage_tenant_remember(aas_store_t *st, const char *tenant) {
    int cap = (int)(sizeof(st->usage_tenants) / sizeof(st->usage_tenants[0]));
    if (st->n_usage_tenants < cap && !aas_usage_tenant_known(st, tenant))
        snprintf(st->usage_tenants[st->n_usage_tenants++], AAS_ID_MAX + 1, "%s", tenant);
}

aas_err_t aas_store_usage_meter_many(aas_store_t *st, aas_store_meter_t *items, size_t n,
                                     char *errstr, size_t errstr_size) {
    enum { CHUNK = 64 };
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK, na = 0;
        aas_store_args_t a[CHUNK];
        char keys[CHUNK][3][AAS_STORE_KEY_MAX], cfg[AAS_STORE_KEY_MAX];
        redisReply *r[CHUNK];
        aas_err_t errs[CHUNK];
        size_t idx[CHUNK];
        for (size_t j = 0; j < m; j++) {
            aas_store_meter_t *it = &items[base + j];
            const char *tenant = aas_usage_tenant(it->tenant);
            it->counted = 0;
            it->err = AAS_ERR_OK;
            if (!aas_id_valid(it->job_id) || !aas_id_valid(tenant) || !aas_id_valid(it->model) ||
                it->finished_ms <= 0 ||
                aas_usage_keys(st, tenant, it->finished_ms / AAS_USAGE_HOUR_MS, keys[na][0],
                               keys[na][1]) ||
                aas_quota_keys(st, aas_quota_tenant(it->tenant), cfg, keys[na][2])) {
                it->err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                      "meter: invalid job id, tenant, model or time");
                continue;
            }
            aas_store_args_t *x = &a[na];
            aas_store_args_init(x);
            aas_store_args_add(x, keys[na][0]);
            aas_store_args_add(x, keys[na][1]);
            aas_store_args_add(x, keys[na][2]);
            aas_store_args_add(x, it->job_id);
            aas_store_args_add(x, it->model);
            aas_store_args_add(x, it->failed ? "1" : "0");
            for (int k = 0; k < 6; k++) aas_store_args_addll(x, *aas_usage_slot(&it->usage, k));
            aas_store_args_addll(x, (long long)st->ttl_s + 3600);
            idx[na++] = base + j;
        }
        if (!na) continue;
        /* Retry is safe: the ids set makes a resent call count nothing. */
        aas_err_t err = aas_store_eval_many(st, AAS_STORE_LUA_METER, AAS_STORE_F_RETRY, "meter",
                                            3, a, na, r, errs, errstr, errstr_size);
        if (err) {
            for (size_t j = base; j < n; j++)
                if (!items[j].err) items[j].err = err;
            return err;
        }
        const char *added[CHUNK];
        size_t nadded = 0;
        for (size_t j = 0; j < na; j++) {
            aas_store_meter_t *it = &items[idx[j]];
            it->err = errs[j];
            if (!r[j]) continue;
            if (r[j]->type != REDIS_REPLY_INTEGER) {
                it->err = aas_store_reply_bad(r[j], "meter", errstr, errstr_size);
            } else if ((it->counted = r[j]->integer == 1)) {
                const char *t = aas_usage_tenant(it->tenant);
                size_t q = 0;
                while (q < nadded && strcmp(added[q], t)) q++;
                if (q == nadded && !aas_usage_tenant_known(st, t)) added[nadded++] = t;
            }
            freeReplyObject(r[j]);
        }
        if (nadded) {
            /* The list of tenants for readers; another slot, so not in
             * the script.  Losing it (a crash here) hides nothing for
             * good: the next job of the tenant adds it again. */
            char tkey[AAS_STORE_KEY_MAX];
            if (aas_store_key(st, tkey, sizeof(tkey), "usage:tenants", NULL))
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
            aas_store_args_t s;
            aas_store_args_init(&s);
            aas_store_args_add(&s, "SADD");
            aas_store_args_add(&s, tkey);
            for (size_t q = 0; q < nadded; q++) aas_store_args_add(&s, added[q]);
            redisReply *x;
            if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SADD usage tenants", &s, &x,
                                     errstr, errstr_size)))
                return err;
            freeReplyObject(x);
            for (size_t q = 0; q < nadded; q++) aas_usage_tenant_remember(st, added[q]);
        }
    }
    return AAS_ERR_OK;
}

void aas_usage_rows_free(aas_usage_row_t *rows, size_t n) {
    if (!rows) return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].tenant);
        free(rows[i].model);
    }
    free(rows);
}

typedef struct {
    aas_usage_row_t *v;
    size_t n, cap;
} aas_usage_rows_t;

/* The row of (tenant, hour, model), made on first use; NULL on OOM. */
static aas_usage_row_t *aas_usage_row(aas_usage_rows_t *rs, const char *tenant, int64_t hour,
                                      const char *model, size_t model_len) {
    for (size_t i = rs->n; i-- > 0;) {
        aas_usage_row_t *x = &rs->v[i];
        if (x->hour != hour || strcmp(x->tenant, tenant)) break; /* rows of one key are last */
        if (strlen(x->model) == model_len && !memcmp(x->model, model, model_len)) return x;
    }
    if (rs->n == AAS_USAGE_READ_MAX) return NULL;
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        aas_usage_row_t *v = realloc(rs->v, cap * sizeof(*v));
        if (!v) return NULL;
        rs->v = v;
        rs->cap = cap;
    }
    aas_usage_row_t *x = &rs->v[rs->n];
    memset(x, 0, sizeof(*x));
    x->hour = hour;
    if (!(x->tenant = strdup(tenant)) || !(x->model = aas_store_memdup0(model, model_len))) {
        free(x->tenant);
        return NULL;
    }
    rs->n++;
    return x;
}

/* One hourly hash into rows. */
static aas_err_t aas_usage_read_hash(aas_store_t *st, const char *key, const char *tenant,
                                     int64_t hour, aas_usage_rows_t *rs, char *errstr,
                                     size_t errstr_size) {
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HGETALL");
    aas_store_args_add(&a, key);
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGETALL usage", &a, &r, errstr,
                                  errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
        err = aas_store_reply_bad(r, "HGETALL usage", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    for (size_t i = 0; !err && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        int64_t v;
        const char *bar = f->type == REDIS_REPLY_STRING ? memchr(f->str, '|', f->len) : NULL;
        if (!bar || aas_store_reply_ll(r->element[i + 1], &v)) continue; /* not ours */
        const char *name = bar + 1;
        size_t name_len = f->len - (size_t)(name - f->str);
        aas_usage_row_t *x = aas_usage_row(rs, tenant, hour, f->str, (size_t)(bar - f->str));
        if (!x) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            break;
        }
        if (name_len == 4 && !memcmp(name, "jobs", 4)) x->jobs = v;
        else if (name_len == 6 && !memcmp(name, "failed", 6)) x->failed = v;
        else
            for (int k = 0; k < 6; k++)
                if (strlen(aas_usage_names[k]) == name_len &&
                    !memcmp(name, aas_usage_names[k], name_len))
                    *aas_usage_slot(&x->u, k) = v;
    }
    freeReplyObject(r);
    return err;
}

/* The hours of one tenant in [since, until), by SCAN. */
static aas_err_t aas_usage_read_tenant(aas_store_t *st, const char *tenant, int64_t since,
                                       int64_t until, aas_usage_rows_t *rs, char *errstr,
                                       size_t errstr_size) {
    char pattern[AAS_STORE_KEY_MAX * 2], cursor[32] = "0";
    size_t o = 0;
    /* The prefix is the operator's text: escape glob characters. */
    for (const char *p = st->prefix; *p && o + 2 < sizeof(pattern) / 2; p++) {
        if (strchr("*?[]\\", *p)) pattern[o++] = '\\';
        pattern[o++] = *p;
    }
    snprintf(pattern + o, sizeof(pattern) - o, "usage:{%s}:*", tenant);
    size_t plen = strlen(pattern) - 1; /* up to the hour */
    aas_err_t err = AAS_ERR_OK;
    do {
        aas_store_args_t a;
        aas_store_args_init(&a);
        aas_store_args_add(&a, "SCAN");
        aas_store_args_add(&a, cursor);
        aas_store_args_add(&a, "MATCH");
        aas_store_args_add(&a, pattern);
        aas_store_args_add(&a, "COUNT");
        aas_store_args_add(&a, "1000");
        redisReply *r;
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SCAN usage", &a, &r, errstr,
                                 errstr_size)))
            return err;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            err = aas_store_reply_bad(r, "SCAN usage", errstr, errstr_size);
            freeReplyObject(r);
            return err;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        const redisReply *keys = r->element[1];
        for (size_t i = 0; !err && i < keys->elements; i++) {
            const redisReply *k = keys->element[i];
            char key[AAS_STORE_KEY_MAX], *end;
            if (k->type != REDIS_REPLY_STRING || k->len >= sizeof(key)) continue;
            memcpy(key, k->str, k->len);
            key[k->len] = '\0';
            /* The hour is the key's last part; ids sets end in ":jobs". */
            const char *h = strrchr(key, ':');
            if (!h || (size_t)(h - key) + 1 < plen) continue;
            long long hour = strtoll(h + 1, &end, 10);
            if (end == h + 1 || *end || hour < since || hour >= until) continue;
            err = aas_usage_read_hash(st, key, tenant, hour, rs, errstr, errstr_size);
        }
        freeReplyObject(r);
    } while (!err && strcmp(cursor, "0"));
    return err;
}

static int aas_usage_row_cmp(const void *x, const void *y) {
    const aas_usage_row_t *a = x, *b = y;
    int c = strcmp(a->tenant, b->tenant);
    if (c) return c;
    if (a->hour != b->hour) return a->hour < b->hour ? -1 : 1;
    return strcmp(a->model, b->model);
}

aas_err_t aas_store_usage_read(aas_store_t *st, const char *tenant, int64_t since_hour,
                               int64_t until_hour, aas_usage_row_t **out, size_t *n,
                               char *errstr, size_t errstr_size) {
    aas_usage_rows_t rs = {0};
    aas_err_t err = AAS_ERR_OK;
    if (tenant && !aas_id_valid(tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid tenant name");
    if (tenant) {
        err = aas_usage_read_tenant(st, tenant, since_hour, until_hour, &rs, errstr,
                                    errstr_size);
    } else {
        char tkey[AAS_STORE_KEY_MAX];
        if (aas_store_key(st, tkey, sizeof(tkey), "usage:tenants", NULL))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
        aas_store_args_t a;
        aas_store_args_init(&a);
        aas_store_args_add(&a, "SMEMBERS");
        aas_store_args_add(&a, tkey);
        redisReply *r;
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SMEMBERS usage tenants", &a, &r,
                                 errstr, errstr_size)))
            return err;
        if (r->type != REDIS_REPLY_ARRAY)
            err = aas_store_reply_bad(r, "SMEMBERS usage tenants", errstr, errstr_size);
        for (size_t i = 0; !err && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            const redisReply *e = r->element[i];
            char t[AAS_ID_MAX + 1];
            if (e->type != REDIS_REPLY_STRING || e->len > AAS_ID_MAX) continue;
            memcpy(t, e->str, e->len);
            t[e->len] = '\0';
            if (!aas_id_valid(t)) continue; /* not ours to build a key from */
            err = aas_usage_read_tenant(st, t, since_hour, until_hour, &rs, errstr, errstr_size);
        }
        freeReplyObject(r);
    }
    if (err) {
        aas_usage_rows_free(rs.v, rs.n);
        return err;
    }
    if (rs.n) qsort(rs.v, rs.n, sizeof(*rs.v), aas_usage_row_cmp);
    *out = rs.v;
    *n = rs.n;
    return AAS_ERR_OK;
}
