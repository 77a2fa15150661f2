/*
 * store_apikey.c - the gateway's API key hashes in Redis (store.h, "API
 * keys"): one hash <prefix>apikeys, field = key hash, value = "TENANT
 * SCOPES".  Plain commands, no scripts: each change is one field.
 */
#include <stdlib.h>
#include <string.h>

#include "apikey.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

static aas_err_t apikeys_key(aas_store_t *st, char key[AAS_STORE_KEY_MAX], char *errstr,
                             size_t errstr_size) {
    if (aas_store_key(st, key, AAS_STORE_KEY_MAX, "apikeys", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    return AAS_ERR_OK;
}

aas_err_t aas_store_apikey_put(aas_store_t *st, const char *hash_hex, const char *tenant,
                               const char *scopes, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], value[AAS_ID_MAX + 40];
    unsigned sc;
    aas_err_t err;
    if (!aas_apikey_hash_valid(hash_hex))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid key hash");
    if (!aas_id_valid(tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid tenant name (want [A-Za-z0-9_.-]{1,%d})", AAS_ID_MAX);
    if ((err = aas_apikey_scopes_parse(scopes, &sc, errstr, errstr_size))) return err;
    if ((err = apikeys_key(st, key, errstr, errstr_size))) return err;
    char sbuf[16];
    snprintf(value, sizeof(value), "%s %s", tenant, aas_apikey_scopes_str(sc, sbuf, sizeof(sbuf)));
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSETNX");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, hash_hex);
    aas_store_args_add(&a, value);
    redisReply *r;
    /* HSETNX is idempotent for the same value, so a resend is safe. */
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HSETNX apikeys", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_INTEGER) err = aas_store_reply_bad(r, "HSETNX apikeys", errstr, errstr_size);
    else if (r->integer == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT, "that key is registered already");
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_apikey_delete(aas_store_t *st, const char *hash_hex, char *errstr,
                                  size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err;
    if (!aas_apikey_hash_valid(hash_hex))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid key hash");
    if ((err = apikeys_key(st, key, errstr, errstr_size))) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HDEL");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, hash_hex);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HDEL apikeys", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_INTEGER) err = aas_store_reply_bad(r, "HDEL apikeys", errstr, errstr_size);
    else if (r->integer == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "no such key");
    freeReplyObject(r);
    return err;
}

void aas_store_apikeys_free(aas_store_apikey_t *a, size_t n) {
    if (!a) return;
    for (size_t i = 0; i < n; i++) free(a[i].tenant);
    free(a);
}

static int cmp_entry(const void *x, const void *y) {
    const aas_store_apikey_t *a = x, *b = y;
    int c = strcmp(a->tenant, b->tenant);
    return c ? c : strcmp(a->hash, b->hash);
}

/* "TENANT SCOPES" of a reply into e; -1 if it is not ours. */
static int parse_value(const redisReply *v, aas_store_apikey_t *e) {
    char buf[AAS_ID_MAX + 40], tenant[AAS_ID_MAX + 2], scopes[32], extra[2];
    unsigned sc;
    if (v->type != REDIS_REPLY_STRING || v->len >= sizeof(buf)) return -1;
    memcpy(buf, v->str, v->len);
    buf[v->len] = '\0';
    if (sscanf(buf, "%129s %31s %1s", tenant, scopes, extra) != 2 || !aas_id_valid(tenant) ||
        aas_apikey_scopes_parse(scopes, &sc, NULL, 0))
        return -1;
    if (!(e->tenant = strdup(tenant))) return -2;
    snprintf(e->scopes, sizeof(e->scopes), "%s", scopes);
    return 0;
}

aas_err_t aas_store_apikey_all(aas_store_t *st, aas_store_apikey_t **out, size_t *n,
                               char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err;
    redisReply *r;
    if ((err = apikeys_key(st, key, errstr, errstr_size))) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HLEN");
    aas_store_args_add(&a, key);
    /* Sized first: hiredis would build any reply, however large. */
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HLEN apikeys", &a, &r, errstr,
                             errstr_size)))
        return err;
    long long len = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (len < 0) err = aas_store_reply_bad(r, "HLEN apikeys", errstr, errstr_size);
    freeReplyObject(r);
    if (err) return err;
    if (len > AAS_STORE_APIKEYS_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld API keys, more than the %d allowed", len, AAS_STORE_APIKEYS_MAX);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HGETALL");
    aas_store_args_add(&a, key);
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGETALL apikeys", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 ||
        r->elements / 2 > AAS_STORE_APIKEYS_MAX) {
        err = aas_store_reply_bad(r, "HGETALL apikeys", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    size_t cap = r->elements / 2, k = 0;
    aas_store_apikey_t *v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i];
        if (f->type != REDIS_REPLY_STRING || f->len != AAS_APIKEY_HASH_HEX) goto skip;
        memcpy(v[k].hash, f->str, AAS_APIKEY_HASH_HEX);
        v[k].hash[AAS_APIKEY_HASH_HEX] = '\0';
        if (!aas_apikey_hash_valid(v[k].hash)) goto skip;
        int pv = parse_value(r->element[i + 1], &v[k]);
        if (pv == -2) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        else if (pv == 0) k++;
        else goto skip;
        continue;
    skip:
        AAS_LOG(AAS_LOG_WARN, "store", "apikeys: skipped an entry that is not an aas key");
    }
    freeReplyObject(r);
    if (err) {
        aas_store_apikeys_free(v, k);
        return err;
    }
    qsort(v, k, sizeof(*v), cmp_entry);
    *out = v;
    *n = k;
    return AAS_ERR_OK;
}

aas_err_t aas_store_apikey_table(aas_store_t *st, aas_apikey_table_t **out, char *errstr,
                                 size_t errstr_size) {
    aas_store_apikey_t *v = NULL;
    size_t n = 0;
    aas_err_t err;
    if ((err = aas_store_apikey_all(st, &v, &n, errstr, errstr_size))) return err;
    aas_apikey_table_t *t = NULL;
    if ((err = aas_apikey_table_new(&t))) {
        aas_store_apikeys_free(v, n);
        return aas_err_set(errstr, errstr_size, err, "out of memory");
    }
    char why[256];
    for (size_t i = 0; !err && i < n; i++) {
        unsigned sc;
        if (aas_apikey_scopes_parse(v[i].scopes, &sc, NULL, 0)) continue; /* checked above */
        err = aas_apikey_table_add(t, v[i].hash, v[i].tenant, sc, why, sizeof(why));
        if (err == AAS_ERR_CONFLICT) {
            /* A hash is a field and cannot repeat: two signing ids clash. */
            AAS_LOG(AAS_LOG_WARN, "store", "api key %.12s skipped: %s", v[i].hash, why);
            err = AAS_ERR_OK;
        } else if (err) {
            aas_err_set(errstr, errstr_size, err, "%s", why);
        }
    }
    aas_store_apikeys_free(v, n);
    if (err) {
        aas_apikey_table_destroy(t);
        return err;
    }
    *out = t;
    return AAS_ERR_OK;
}
