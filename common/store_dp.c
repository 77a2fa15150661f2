/*
 * store_dp.c - the rounds of a data-parallel training job in Redis
 * (store.h, "Data-parallel training"; docs/training.md#data-parallel-training).
 * Plain SET/GET/DEL: every value is written whole by one worker, and a
 * value written twice is the same bytes (a round is a pure function), so
 * no script is needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "train_dp.h"

/* <prefix>dp:{<job>}[:<what>] */
static aas_err_t dp_key(aas_store_t *st, const char *job, const char *what, char *key,
                        char *errstr, size_t errstr_size) {
    if (!aas_id_valid(job))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid job id");
    size_t n;
    if (aas_store_key(st, key, AAS_STORE_KEY_MAX, "dp", job) ||
        (n = strlen(key)) + strlen(what) + 2 > AAS_STORE_KEY_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "prefix too long");
    snprintf(key + n, AAS_STORE_KEY_MAX - n, ":%s", what);
    return AAS_ERR_OK;
}

static void dp_state_name(char *buf, size_t size, int global, int64_t round, int shard) {
    if (global) snprintf(buf, size, "g:%lld", (long long)round);
    else snprintf(buf, size, "s:%lld:%d", (long long)round, shard);
}

/* SET key value EX ttl: every dp value is written whole, the same bytes
 * whoever writes it, so a resend is safe. */
static aas_err_t dp_set(aas_store_t *st, const char *key, const void *value, size_t len,
                        char *errstr, size_t errstr_size) {
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SET");
    aas_store_args_add(&a, key);
    aas_store_args_addb(&a, value, len);
    aas_store_args_add(&a, "EX");
    aas_store_args_addll(&a, st->ttl_s);
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SET dp", &a, &r, errstr,
                                  errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_STATUS) err = aas_store_reply_bad(r, "SET dp", errstr, errstr_size);
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_dp_put(aas_store_t *st, const char *job, int global, int64_t round,
                           int shard, const void *state, size_t len, char *errstr,
                           size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], name[48];
    dp_state_name(name, sizeof(name), global, round, shard);
    aas_err_t err = dp_key(st, job, name, key, errstr, errstr_size);
    return err ? err : dp_set(st, key, state, len, errstr, errstr_size);
}

aas_err_t aas_store_dp_get(aas_store_t *st, const char *job, int global, int64_t round,
                           int shard, size_t max_len, void **state, size_t *len,
                           char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], name[48];
    dp_state_name(name, sizeof(name), global, round, shard);
    aas_err_t err = dp_key(st, job, name, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_addll(&a, (long long)max_len);
    redisReply *r;
    /* Bounded server-side: a wrong value is never sent whole. */
    if ((err = aas_store_eval(st, AAS_STORE_LUA_GETB, AAS_STORE_F_RETRY, "dp state get", 1, &a,
                              &r, errstr, errstr_size)))
        return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND, "no %s", name);
    } else if (r->type == REDIS_REPLY_INTEGER) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "%s: %lld bytes, want at most %zu", name, r->integer, max_len);
    } else if (r->type != REDIS_REPLY_STRING) {
        err = aas_store_reply_bad(r, "dp state get", errstr, errstr_size);
    } else if (!(*state = malloc(r->len ? r->len : 1))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory for %s", name);
    } else {
        memcpy(*state, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return err;
}

/* A small string field of the job's rounds: "round" or "stop". */
static aas_err_t dp_set_text(aas_store_t *st, const char *job, const char *what,
                             const char *value, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = dp_key(st, job, what, key, errstr, errstr_size);
    return err ? err : dp_set(st, key, value, strlen(value), errstr, errstr_size);
}

static aas_err_t dp_get_text(aas_store_t *st, const char *job, const char *what, char *out,
                             size_t size, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = dp_key(st, job, what, key, errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "GET");
    aas_store_args_add(&a, key);
    redisReply *r;
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "GET dp", &a, &r, errstr, errstr_size)))
        return err;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING) snprintf(out, size, "%.*s", (int)r->len, r->str);
    else if (r->type != REDIS_REPLY_NIL) err = aas_store_reply_bad(r, "GET dp", errstr, errstr_size);
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_dp_set_round(aas_store_t *st, const char *job, int64_t round, char *errstr,
                                 size_t errstr_size) {
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)round);
    return dp_set_text(st, job, "round", v, errstr, errstr_size);
}

aas_err_t aas_store_dp_round(aas_store_t *st, const char *job, int64_t *round, char *errstr,
                             size_t errstr_size) {
    char v[32], *end;
    aas_err_t err = dp_get_text(st, job, "round", v, sizeof(v), errstr, errstr_size);
    if (err) return err;
    *round = -1;
    if (v[0]) {
        long long r = strtoll(v, &end, 10);
        if (*end || r < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT, "dp round '%s'", v);
        *round = r;
    }
    return AAS_ERR_OK;
}

aas_err_t aas_store_dp_stop(aas_store_t *st, const char *job, const char *why, char *errstr,
                            size_t errstr_size) {
    return dp_set_text(st, job, "stop", why, errstr, errstr_size);
}

aas_err_t aas_store_dp_stopped(aas_store_t *st, const char *job, char *why, size_t size,
                               char *errstr, size_t errstr_size) {
    return dp_get_text(st, job, "stop", why, size, errstr, errstr_size);
}

aas_err_t aas_store_dp_forget_round(aas_store_t *st, const char *job, int64_t round, int shards,
                                    char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], name[48];
    aas_err_t err;
    /* One DEL a key (args point at their strings; a round is seconds
     * long, its few deletions cost nothing). */
    for (int i = -1; i < shards; i++) {
        dp_state_name(name, sizeof(name), i < 0, round, i);
        if ((err = dp_key(st, job, name, key, errstr, errstr_size))) return err;
        aas_store_args_t a;
        aas_store_args_init(&a);
        aas_store_args_add(&a, "DEL");
        aas_store_args_add(&a, key);
        redisReply *r;
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "DEL dp round", &a, &r, errstr,
                                 errstr_size)))
            return err;
        freeReplyObject(r);
    }
    return AAS_ERR_OK;
}

aas_err_t aas_store_dp_shards(aas_store_t *st, const char *job, int *shards, char *errstr,
                              size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], v[24], *end;
    aas_err_t err = dp_key(st, job, "shards", key, errstr, errstr_size);
    if (err) return err;
    snprintf(v, sizeof(v), "%d", *shards);
    aas_store_args_t a;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, v);
    aas_store_args_add(&a, "NX");
    aas_store_args_add(&a, "EX");
    aas_store_args_addll(&a, st->ttl_s);
    redisReply *r;
    /* NX: the first coordinator's count stands (a nil reply: it was set). */
    if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SET dp shards", &a, &r, errstr,
                             errstr_size)))
        return err;
    if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_NIL)
        err = aas_store_reply_bad(r, "SET dp shards", errstr, errstr_size);
    freeReplyObject(r);
    if (!err) err = dp_get_text(st, job, "shards", v, sizeof(v), errstr, errstr_size);
    if (err) return err;
    long n = strtol(v, &end, 10);
    if (!v[0] || *end || n < 1 || n > AAS_TRAIN_DP_MAX_SHARDS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT, "dp shards '%s'", v);
    *shards = (int)n;
    return AAS_ERR_OK;
}

aas_err_t aas_store_dp_lease(aas_store_t *st, const char *job, const char *owner, int64_t ttl_ms,
                             int *held, char *holder, size_t holder_size, int64_t *left_ms,
                             char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = dp_key(st, job, "lease", key, errstr, errstr_size);
    return err ? err : aas_store_lease_at(st, key, owner, ttl_ms, held, holder, holder_size,
                                          left_ms, errstr, errstr_size);
}
