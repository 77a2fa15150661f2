/*
 * store_dataset.c - training data sets uploaded to Redis in chunks, so a
 * training job can name its data instead of carrying it (docs/redis.md,
 * docs/training.md).  The bytes are opaque here; the meta text (JSON) is
 * the uploader's and the trainer's business.
 *
 * Key <prefix>dataset:{<name>} hash: meta, bytes, chunks, c:<i>.  meta is
 * written last, so a reader never sees a half-uploaded set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static aas_err_t aas_store_dataset_key(aas_store_t *st, const char *name, char *key,
                                       char *errstr, size_t errstr_size) {
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid data set name (want [A-Za-z0-9_.-]{1,%d})",
                           AAS_ID_MAX);
    if (aas_store_key(st, key, AAS_STORE_KEY_MAX, "dataset", name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "data set name too long");
    return AAS_ERR_OK;
}

static aas_err_t aas_store_dataset_simple(aas_store_t *st, aas_store_args_t *a,
                                          const char *what, char *errstr,
                                          size_t errstr_size) {
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, what, a, &r, errstr,
                                  errstr_size);
    if (!err) freeReplyObject(r);
    return err;
}

aas_err_t aas_store_dataset_put(aas_store_t *st, const char *name,
                                const char *meta_json, const void *data,
                                size_t len, size_t chunk_bytes, char *errstr,
                                size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    if (chunk_bytes == 0 || chunk_bytes > AAS_STORE_RESULT_MAX || len == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set %s: empty, or bad chunk size", name);
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "DEL");
    aas_store_args_add(&a, key);
    if ((err = aas_store_dataset_simple(st, &a, "DEL dataset", errstr, errstr_size)))
        return err;
    size_t chunks = (len + chunk_bytes - 1) / chunk_bytes;
    for (size_t i = 0; i < chunks; i++) {
        char field[32];
        size_t n = i + 1 == chunks ? len - i * chunk_bytes : chunk_bytes;
        snprintf(field, sizeof(field), "c:%zu", i);
        aas_store_args_init(&a);
        aas_store_args_add(&a, "HSET");
        aas_store_args_add(&a, key);
        aas_store_args_add(&a, field);
        aas_store_args_addb(&a, (const char *)data + i * chunk_bytes, n);
        if ((err = aas_store_dataset_simple(st, &a, "HSET dataset chunk", errstr,
                                            errstr_size)))
            return err;
    }
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HSET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "bytes");
    aas_store_args_addll(&a, (long long)len);
    aas_store_args_add(&a, "chunks");
    aas_store_args_addll(&a, (long long)chunks);
    aas_store_args_add(&a, "meta");
    aas_store_args_add(&a, meta_json ? meta_json : "{}");
    return aas_store_dataset_simple(st, &a, "HSET dataset meta", errstr, errstr_size);
}

aas_err_t aas_store_dataset_get(aas_store_t *st, const char *name,
                                size_t max_bytes, char **meta_json,
                                void **data, size_t *len, char *errstr,
                                size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "bytes");
    aas_store_args_add(&a, "chunks");
    aas_store_args_add(&a, "meta");
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET dataset", &a, &r, errstr,
                             errstr_size)))
        return err;
    long long bytes = -1, chunks = -1;
    char *meta = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[2]->type == REDIS_REPLY_STRING) {
        bytes = r->element[0]->str ? atoll(r->element[0]->str) : -1;
        chunks = r->element[1]->str ? atoll(r->element[1]->str) : -1;
        meta = aas_store_memdup0(r->element[2]->str, r->element[2]->len);
    }
    int absent = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                 r->element[2]->type == REDIS_REPLY_NIL;
    freeReplyObject(r);
    if (absent)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                           "data set %s not found (never uploaded, or deleted)", name);
    if (!meta || bytes <= 0 || chunks <= 0 || chunks > bytes) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "data set %s: malformed record in Redis", name);
    }
    if ((unsigned long long)bytes > max_bytes) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "data set %s has %lld bytes, the limit is %zu", name, bytes,
                           max_bytes);
    }
    char *buf = malloc((size_t)bytes);
    if (!buf) {
        free(meta);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    size_t got = 0;
    for (long long i = 0; i < chunks && !err; i++) {
        char field[32];
        snprintf(field, sizeof(field), "c:%lld", i);
        aas_store_args_init(&a);
        aas_store_args_add(&a, "HGET");
        aas_store_args_add(&a, key);
        aas_store_args_add(&a, field);
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGET dataset chunk", &a, &r,
                                 errstr, errstr_size)))
            break;
        if (r->type != REDIS_REPLY_STRING || r->len > (size_t)bytes - got)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                              "data set %s: chunk %lld missing or too long", name, i);
        else {
            memcpy(buf + got, r->str, r->len);
            got += r->len;
        }
        freeReplyObject(r);
    }
    if (!err && got != (size_t)bytes)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "data set %s: %zu of %lld bytes present", name, got, bytes);
    if (err) {
        free(buf);
        free(meta);
        return err;
    }
    *meta_json = meta;
    *data = buf;
    *len = got;
    return AAS_ERR_OK;
}

aas_err_t aas_store_dataset_delete(aas_store_t *st, const char *name,
                                   char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_dataset_key(st, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "DEL");
    aas_store_args_add(&a, key);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "DEL dataset", &a, &r, errstr,
                             errstr_size)))
        return err;
    /* A resend after a reconnect may find it gone by our own first send:
     * rare, and then "not found" only overstates. */
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "data set %s not found",
                          name);
    freeReplyObject(r);
    return err;
}
