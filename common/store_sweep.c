/*
 * store_sweep.c - a hyper-parameter sweep's record: one hash per sweep,
 * <prefix>sweep:{<id>}, field -> value (JSON written by the coordinator,
 * aas-producer sweep; docs/training.md#sweeps).  See store.h.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static aas_err_t aas_store_sweep_key(aas_store_t *st, const char *id, char *key,
                                     char *errstr, size_t errstr_size) {
    if (!aas_id_valid(id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid sweep id");
    if (aas_store_key(st, key, AAS_STORE_KEY_MAX, "sweep", id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "sweep id %s: key too long", id);
    return AAS_ERR_OK;
}

aas_err_t aas_store_sweep_put(aas_store_t *st, const char *id, const char *field,
                              const char *value, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_sweep_key(st, id, key, errstr, errstr_size);
    if (err) return err;
    size_t vlen = strlen(value);
    if (!field[0] || strlen(field) > 256 || vlen > AAS_STORE_SWEEP_VALUE_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "sweep %s: field or value too long", id);
    /* HSET then EXPIRE: the record lives redis.ttl.s after its last write. */
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, field);
    aas_store_args_addb(&a, value, vlen);
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HSET sweep", &a, &r, errstr,
                             errstr_size)))
        return err;
    freeReplyObject(r);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "EXPIRE");
    aas_store_args_add(&a, key);
    aas_store_args_addll(&a, st->ttl_s);
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "EXPIRE sweep", &a, &r, errstr,
                             errstr_size)))
        return err;
    freeReplyObject(r);
    return AAS_ERR_OK;
}

aas_err_t aas_store_sweep_read(aas_store_t *st, const char *id, aas_kv_t **out, size_t *n,
                               char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_sweep_key(st, id, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HGETALL");
    aas_store_args_add(&a, key);
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGETALL sweep", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 ||
        r->elements / 2 > AAS_STORE_SWEEP_FIELDS_MAX) {
        err = aas_store_reply_bad(r, "HGETALL sweep", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    if (!r->elements) {
        freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "no sweep %s", id);
    }
    size_t k = r->elements / 2;
    aas_kv_t *v = calloc(k, sizeof(*v));
    for (size_t i = 0; v && i < k; i++) {
        const redisReply *f = r->element[2 * i], *x = r->element[2 * i + 1];
        if (f->type != REDIS_REPLY_STRING || x->type != REDIS_REPLY_STRING ||
            !(v[i].key = aas_store_memdup0(f->str, f->len)) ||
            !(v[i].value = aas_store_memdup0(x->str, x->len))) {
            aas_store_sweep_free(v, k);
            v = NULL;
        }
    }
    freeReplyObject(r);
    if (!v) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    *out = v;
    *n = k;
    return AAS_ERR_OK;
}

void aas_store_sweep_free(aas_kv_t *v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}
