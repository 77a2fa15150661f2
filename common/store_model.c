/*
 * store_model.c - the model registry half of the store: immutable numbered
 * versions of a model blob in one hash per model, plus a set of names.
 *
 * Versions are handed out by a counter (field `next`) that never goes back,
 * so a (name, version) pair always means the same bytes and workers may
 * cache by it.  Writes are Lua scripts (atomic); the names set lives on
 * another cluster slot, so it is kept beside them as an index.  This file
 * does not parse blobs or metadata: both are opaque bytes here.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aas_err_t aas_store_model_key(aas_store_t *st, const char *name,
                                     char *key, size_t size, char *errstr,
                                     size_t errstr_size) {
    if (!st)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: NULL handle");
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid model name (want [A-Za-z0-9_.-]{1,%d}, "
                           "not starting with '.' or '-')",
                           AAS_ID_MAX);
    if (aas_store_key(st, key, size, "model", name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: key too long", name);
    return AAS_ERR_OK;
}

static aas_err_t aas_store_models_key(aas_store_t *st, char *key, size_t size,
                                      char *errstr, size_t errstr_size) {
    if (aas_store_key(st, key, size, "models", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "models key too long");
    return AAS_ERR_OK;
}

/* One command whose integer reply we want. */
static aas_err_t aas_store_cmd_int(aas_store_t *st, int flags, const char *what,
                                   const aas_store_args_t *a, int64_t *out,
                                   char *errstr, size_t errstr_size) {
    redisReply *r;
    aas_err_t err = aas_store_cmd(st, flags, 0, what, a, &r, errstr,
                                  errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_INTEGER)
        err = aas_store_reply_bad(r, what, errstr, errstr_size);
    else if (out)
        *out = r->integer;
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_model_put(aas_store_t *st, const char *name,
                              const void *blob, size_t len,
                              const char *meta_json, int64_t *version_out,
                              char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], names[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)) ||
        (err = aas_store_models_key(st, names, sizeof(names), errstr,
                                    errstr_size)))
        return err;
    if (!blob || len == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: empty blob", name);
    if (len > AAS_STORE_BLOB_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "model %s: blob of %zu bytes exceeds %zu", name,
                           len, (size_t)AAS_STORE_BLOB_MAX);
    size_t meta_len = meta_json ? strlen(meta_json) : 0;
    if (meta_len > AAS_STORE_META_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "model %s: metadata of %zu bytes exceeds %zu", name,
                           meta_len, (size_t)AAS_STORE_META_MAX);

    /* Index first (idempotent): a failure after it leaves a listed name
     * with no version, never a version that is not listed. */
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SADD");
    aas_store_args_add(&a, names);
    aas_store_args_add(&a, name);
    if ((err = aas_store_cmd_int(st, AAS_STORE_F_RETRY, "SADD models", &a,
                                 NULL, errstr, errstr_size)))
        return err;

    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_addb(&a, blob, len);
    aas_store_args_add(&a, meta_json ? meta_json : "");
    aas_store_args_add(&a, meta_json ? "1" : "0");
    /* Not retried: a resend would store a second version. */
    err = aas_store_eval(st, AAS_STORE_LUA_MODEL_PUT, 0, "model put", 1, &a,
                         &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 1)
        err = aas_store_reply_bad(r, "model put", errstr, errstr_size);
    else if (version_out)
        *version_out = r->integer;
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_model_get(aas_store_t *st, const char *name,
                              int64_t version, size_t max_len, void **blob,
                              size_t *len, int64_t *version_out, char *errstr,
                              size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    if (version < 0 || !blob || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: bad version or NULL out-pointer", name);
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_addll(&a, (long long)version);
    aas_store_args_addll(&a, max_len > (size_t)AAS_STORE_BLOB_MAX
                                 ? (long long)AAS_STORE_BLOB_MAX
                                 : (long long)max_len);
    /* The script compares the length with max_len server-side, so an
     * oversized blob never reaches hiredis. */
    err = aas_store_eval(st, AAS_STORE_LUA_MODEL_GET, AAS_STORE_F_RETRY,
                         "model get", 1, &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = version ? aas_err_set(errstr, errstr_size,
                                    AAS_ERR_UNKNOWN_MODEL,
                                    "model %s version %lld not found", name,
                                    (long long)version)
                      : aas_err_set(errstr, errstr_size,
                                    AAS_ERR_UNKNOWN_MODEL,
                                    "model %s not found", name);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[0]->type != REDIS_REPLY_INTEGER) {
        err = aas_store_reply_bad(r, "model get", errstr, errstr_size);
    } else if (r->element[1]->type == REDIS_REPLY_INTEGER) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "model %s version %lld: blob of %lld bytes exceeds "
                          "the limit of %zu",
                          name, r->element[0]->integer,
                          r->element[1]->integer, max_len);
    } else if (r->element[1]->type != REDIS_REPLY_STRING ||
               r->element[1]->len > max_len) {
        err = aas_store_reply_bad(r->element[1], "model get", errstr,
                                  errstr_size);
    } else {
        size_t n = r->element[1]->len;
        void *p = malloc(n ? n : 1);
        if (!p) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                              "model %s: out of memory for %zu bytes", name,
                              n);
        } else {
            memcpy(p, r->element[1]->str, n);
            *blob = p;
            *len = n;
            if (version_out) *version_out = r->element[0]->integer;
        }
    }
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_model_latest(aas_store_t *st, const char *name,
                                 int64_t *version_out, char *errstr,
                                 size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    int64_t v;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HGET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "latest");
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGET latest", &a, &r,
                        errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_NIL)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                          "model %s not found", name);
    else if (aas_store_reply_ll(r, &v) || v < 1)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "model %s: field latest is not a version", name);
    else if (version_out)
        *version_out = v;
    freeReplyObject(r);
    return err;
}

static int aas_store_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void aas_store_model_list_free(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

aas_err_t aas_store_model_list(aas_store_t *st, char ***names, size_t *n,
                               char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if (!st || !names || !n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model list: NULL argument");
    if ((err = aas_store_models_key(st, key, sizeof(key), errstr,
                                    errstr_size)))
        return err;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SMEMBERS");
    aas_store_args_add(&a, key);
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SMEMBERS models", &a, &r,
                        errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = aas_store_reply_bad(r, "SMEMBERS models", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    char **v = calloc(r->elements ? r->elements : 1, sizeof(*v));
    size_t k = 0;
    if (!v) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        if (!(v[k] = aas_store_memdup0(e->str, e->len)))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        else k++;
    }
    freeReplyObject(r);
    if (err) {
        aas_store_model_list_free(v, k);
        return aas_err_set(errstr, errstr_size, err,
                           "model list: out of memory");
    }
    qsort(v, k, sizeof(*v), aas_store_cmp_str);
    *names = v;
    *n = k;
    return AAS_ERR_OK;
}

aas_err_t aas_store_model_versions(aas_store_t *st, const char *name,
                                   int64_t **versions, size_t *n,
                                   char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    if (!versions || !n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: NULL out-pointer", name);
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    err = aas_store_eval(st, AAS_STORE_LUA_MODEL_VERSIONS, AAS_STORE_F_RETRY,
                         "model versions", 1, &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = aas_store_reply_bad(r, "model versions", errstr, errstr_size);
    } else if (r->elements == 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                          "model %s not found", name);
    } else {
        int64_t *v = malloc(r->elements * sizeof(*v));
        if (!v) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                              "model %s: out of memory", name);
        } else {
            for (size_t i = 0; !err && i < r->elements; i++)
                if (r->element[i]->type != REDIS_REPLY_INTEGER)
                    err = aas_store_reply_bad(r->element[i], "model versions",
                                              errstr, errstr_size);
                else
                    v[i] = r->element[i]->integer;
            if (err) {
                free(v);
            } else {
                *versions = v;
                *n = r->elements;
            }
        }
    }
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_model_meta(aas_store_t *st, const char *name,
                               int64_t version, char **meta_json,
                               int64_t *created_ms, char *errstr,
                               size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    int64_t created = 0;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    if (version < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: negative version", name);
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_addll(&a, (long long)version);
    aas_store_args_addll(&a, (long long)AAS_STORE_META_MAX);
    err = aas_store_eval(st, AAS_STORE_LUA_MODEL_META, AAS_STORE_F_RETRY,
                         "model meta", 1, &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                          "model %s version %lld not found", name,
                          (long long)version);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
               (r->element[2]->type != REDIS_REPLY_NIL &&
                aas_store_reply_ll(r->element[2], &created))) {
        err = aas_store_reply_bad(r, "model meta", errstr, errstr_size);
    } else if (r->element[1]->type == REDIS_REPLY_INTEGER) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "model %s: metadata of %lld bytes exceeds %zu", name,
                          r->element[1]->integer, (size_t)AAS_STORE_META_MAX);
    } else if (r->element[1]->type != REDIS_REPLY_NIL &&
               r->element[1]->type != REDIS_REPLY_STRING) {
        err = aas_store_reply_bad(r->element[1], "model meta", errstr,
                                  errstr_size);
    } else {
        char *m = NULL;
        if (r->element[1]->type == REDIS_REPLY_STRING &&
            !(m = aas_store_memdup0(r->element[1]->str, r->element[1]->len))) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                              "model %s: out of memory", name);
        } else {
            if (meta_json) *meta_json = m;
            else free(m);
            if (created_ms) *created_ms = created;
        }
    }
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_model_delete(aas_store_t *st, const char *name,
                                 int64_t version, char *errstr,
                                 size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], names[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)) ||
        (err = aas_store_models_key(st, names, sizeof(names), errstr,
                                    errstr_size)))
        return err;
    if (version < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: delete needs an explicit version >= 1",
                           name);
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_addll(&a, (long long)version);
    /* Not retried: a resend after success would report "not found". */
    err = aas_store_eval(st, AAS_STORE_LUA_MODEL_DELETE, 0, "model delete", 1,
                         &a, &r, errstr, errstr_size);
    if (err) return err;
    int64_t left = -2;
    if (r->type != REDIS_REPLY_INTEGER)
        err = aas_store_reply_bad(r, "model delete", errstr, errstr_size);
    else if ((left = r->integer) < 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                          "model %s version %lld not found", name,
                          (long long)version);
    freeReplyObject(r);
    if (err || left > 0) return err;
    /* Last version gone: drop the name from the index.  The hash stays,
     * holding `next`, so version numbers are never reused. */
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SREM");
    aas_store_args_add(&a, names);
    aas_store_args_add(&a, name);
    return aas_store_cmd_int(st, AAS_STORE_F_RETRY, "SREM models", &a, NULL,
                             errstr, errstr_size);
}

/* ---- serving options -------------------------------------------------- */

/* The precisions the registry accepts.  model.h's aas_precision_parse()
 * knows the same names (tests/test_serving.c checks they agree); the store
 * keeps its own list so it does not link the model module. */
static const char *const aas_store_precisions[] = {"f32", "bf16", "int8"};
#define AAS_STORE_PRECISIONS_TEXT "f32, bf16 or int8"

static const char *const aas_store_opt_fields[] = {
    "opt:precision", "opt:batch_max_rows", "opt:batch_max_delay_us"};

void aas_store_model_opts_init(aas_store_model_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->batch_max_rows = -1;
    o->batch_max_delay_us = -1;
}

static int aas_store_precision_known(const char *s) {
    for (size_t i = 0; i < sizeof(aas_store_precisions) /
                               sizeof(aas_store_precisions[0]); i++)
        if (strcmp(s, aas_store_precisions[i]) == 0) return 1;
    return 0;
}

/* A printable, bounded copy of bytes from Redis for an error message. */
static void aas_store_printable(char *out, size_t size, const char *p,
                                size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < size; i++)
        out[k++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    if (k + 4 >= size && n > k) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

aas_err_t aas_store_model_opts_check(const aas_store_model_opts_t *o,
                                     unsigned fields, char *errstr,
                                     size_t errstr_size) {
    if (!o)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "serving options: NULL");
    if ((fields & AAS_STORE_OPT_PRECISION) && o->precision[0]) {
        char shown[AAS_STORE_OPT_PRECISION_MAX + 4];
        aas_store_printable(shown, sizeof(shown), o->precision,
                            strnlen(o->precision, sizeof(o->precision)));
        if (!memchr(o->precision, '\0', sizeof(o->precision)) ||
            !aas_store_precision_known(o->precision))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "precision '%s' is not one of "
                               AAS_STORE_PRECISIONS_TEXT, shown);
    }
    if ((fields & AAS_STORE_OPT_BATCH_ROWS) && o->batch_max_rows != -1 &&
        (o->batch_max_rows < 1 || o->batch_max_rows > AAS_STORE_BATCH_ROWS_MAX))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "batch_max_rows %ld is out of range (1..%d)",
                           (long)o->batch_max_rows, AAS_STORE_BATCH_ROWS_MAX);
    if ((fields & AAS_STORE_OPT_BATCH_DELAY) && o->batch_max_delay_us != -1 &&
        (o->batch_max_delay_us < 0 ||
         o->batch_max_delay_us > AAS_STORE_BATCH_DELAY_US_MAX))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "batch_max_delay_us %ld is out of range (0..%d)",
                           (long)o->batch_max_delay_us,
                           AAS_STORE_BATCH_DELAY_US_MAX);
    if (fields & ~AAS_STORE_OPT_ALL)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "serving options: unknown field bits 0x%x",
                           fields & ~AAS_STORE_OPT_ALL);
    return AAS_ERR_OK;
}

aas_err_t aas_store_model_opts_set(aas_store_t *st, const char *name,
                                   const aas_store_model_opts_t *o,
                                   unsigned fields, char *errstr,
                                   size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], why[256];
    aas_store_args_t set, del;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    if ((err = aas_store_model_opts_check(o, fields, why, sizeof(why))))
        return aas_err_set(errstr, errstr_size, err, "model %s: %s", name, why);
    aas_store_args_init(&set);
    aas_store_args_add(&set, "HSET");
    aas_store_args_add(&set, key);
    aas_store_args_init(&del);
    aas_store_args_add(&del, "HDEL");
    aas_store_args_add(&del, key);
    if (fields & AAS_STORE_OPT_PRECISION) {
        aas_store_args_t *a = o->precision[0] ? &set : &del;
        aas_store_args_add(a, aas_store_opt_fields[0]);
        if (a == &set) aas_store_args_add(a, o->precision);
    }
    if (fields & AAS_STORE_OPT_BATCH_ROWS) {
        aas_store_args_t *a = o->batch_max_rows != -1 ? &set : &del;
        aas_store_args_add(a, aas_store_opt_fields[1]);
        if (a == &set) aas_store_args_addll(a, o->batch_max_rows);
    }
    if (fields & AAS_STORE_OPT_BATCH_DELAY) {
        aas_store_args_t *a = o->batch_max_delay_us != -1 ? &set : &del;
        aas_store_args_add(a, aas_store_opt_fields[2]);
        if (a == &set) aas_store_args_addll(a, o->batch_max_delay_us);
    }
    /* Both are idempotent: safe to resend after a reconnect. */
    if (set.argc > 2 &&
        (err = aas_store_cmd_int(st, AAS_STORE_F_RETRY, "HSET serving options",
                                 &set, NULL, errstr, errstr_size)))
        return err;
    if (del.argc > 2 &&
        (err = aas_store_cmd_int(st, AAS_STORE_F_RETRY, "HDEL serving options",
                                 &del, NULL, errstr, errstr_size)))
        return err;
    return AAS_ERR_OK;
}

/* Parse one stored integer option strictly: decimal digits only (a '-'
 * for negatives), in [lo, hi].  Returns 0 or -1. */
static int aas_store_opt_int(const redisReply *r, long lo, long hi,
                             int32_t *out) {
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 11) return -1;
    for (size_t i = 0; i < r->len; i++)
        if (!(r->str[i] >= '0' && r->str[i] <= '9') && !(i == 0 && r->str[i] == '-'))
            return -1;
    int64_t v;
    if (aas_store_reply_ll(r, &v) || v < lo || v > hi) return -1;
    *out = (int32_t)v;
    return 0;
}

aas_err_t aas_store_model_opts_get(aas_store_t *st, const char *name,
                                   aas_store_model_opts_t *opts, char *errstr,
                                   size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err;
    if ((err = aas_store_model_key(st, name, key, sizeof(key), errstr,
                                   errstr_size)))
        return err;
    if (!opts)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "model %s: NULL out-pointer", name);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, key);
    for (size_t i = 0; i < 3; i++) aas_store_args_add(&a, aas_store_opt_fields[i]);
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET serving options", &a,
                        &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        err = aas_store_reply_bad(r, "HMGET serving options", errstr,
                                  errstr_size);
        freeReplyObject(r);
        return err;
    }
    aas_store_model_opts_t o;
    aas_store_model_opts_init(&o);
    int bad = -1;
    redisReply *e = r->element[0];
    if (e->type == REDIS_REPLY_STRING) {
        if (e->len == 0 || e->len >= sizeof(o.precision) ||
            memchr(e->str, '\0', e->len)) {
            bad = 0;
        } else {
            memcpy(o.precision, e->str, e->len);
            o.precision[e->len] = '\0';
            if (!aas_store_precision_known(o.precision)) bad = 0;
        }
    } else if (e->type != REDIS_REPLY_NIL) {
        bad = 0;
    }
    if (bad < 0 && r->element[1]->type != REDIS_REPLY_NIL &&
        aas_store_opt_int(r->element[1], 1, AAS_STORE_BATCH_ROWS_MAX,
                          &o.batch_max_rows))
        bad = 1;
    if (bad < 0 && r->element[2]->type != REDIS_REPLY_NIL &&
        aas_store_opt_int(r->element[2], 0, AAS_STORE_BATCH_DELAY_US_MAX,
                          &o.batch_max_delay_us))
        bad = 2;
    if (bad >= 0) {
        static const char *const want[] = {
            AAS_STORE_PRECISIONS_TEXT, "an integer in 1..4096",
            "an integer in 0..1000000"};
        char shown[48] = "";
        e = r->element[bad];
        if (e->type == REDIS_REPLY_STRING)
            aas_store_printable(shown, sizeof(shown), e->str, e->len);
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "model %s: serving option %s = '%s' in Redis is not "
                          "valid (want %s)",
                          name, aas_store_opt_fields[bad], shown, want[bad]);
    } else {
        *opts = o;
    }
    freeReplyObject(r);
    return err;
}
