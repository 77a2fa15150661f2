/*
 * store.c - the job half of the data model: status hash, result string and
 * done list (see store.h and docs/redis.md).
 *
 * Every state change is one Lua script (store_conn.c), so it is atomic and
 * a terminal status is never overwritten.  Results are opaque bytes here;
 * this file does not encode or decode them.  The connection, reconnecting
 * and error mapping live in store_conn.c, the model registry in
 * store_model.c.
 */
#include "store_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- jobs ------------------------------------------------------------- */

typedef struct {
    char job[AAS_STORE_KEY_MAX];
    char result[AAS_STORE_KEY_MAX];
    char done[AAS_STORE_KEY_MAX];
} aas_store_job_keys_t;

static aas_err_t aas_store_job_keys(aas_store_t *st, const char *job_id,
                                    aas_store_job_keys_t *k, char *errstr,
                                    size_t errstr_size) {
    if (!st)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: NULL handle");
    if (!aas_id_valid(job_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid job id (want [A-Za-z0-9_.-]{1,%d}, not "
                           "starting with '.' or '-')",
                           AAS_ID_MAX);
    if (aas_store_key(st, k->job, sizeof(k->job), "job", job_id) ||
        aas_store_key(st, k->result, sizeof(k->result), "result", job_id) ||
        aas_store_key(st, k->done, sizeof(k->done), "done", job_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job id %s: key too long", job_id);
    return AAS_ERR_OK;
}

/* Calls per pipelined round trip in the *_many functions: bounds the
 * stack arrays and one reply batch. */
#define AAS_STORE_MANY_CHUNK 64

/* Keys and arguments of one queued call, after its checks. */
static aas_err_t aas_store_queued_args(aas_store_t *st, const aas_store_queued_t *it,
                                       aas_store_job_keys_t *k, aas_store_args_t *a,
                                       char *errstr, size_t errstr_size) {
    aas_err_t err = aas_store_job_keys(st, it->job_id, k, errstr, errstr_size);
    if (err) return err;
    if (!aas_id_valid(it->model))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: invalid model name", it->job_id);
    if (it->tenant && it->tenant[0] && !aas_id_valid(it->tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: invalid tenant", it->job_id);
    aas_store_args_init(a);
    aas_store_args_add(a, k->job);
    aas_store_args_add(a, it->model);
    aas_store_args_addll(a, it->submit_ms);
    aas_store_args_addll(a, st->ttl_s);
    aas_store_args_add(a, it->tenant ? it->tenant : "");
    return AAS_ERR_OK;
}

/* Keys and arguments of one claim call, after its checks. */
static aas_err_t aas_store_claim_args(aas_store_t *st, int idempotent,
                                      const aas_store_claim_t *it, aas_store_job_keys_t *k,
                                      aas_store_args_t *a, char *errstr, size_t errstr_size) {
    aas_err_t err = aas_store_job_keys(st, it->job_id, k, errstr, errstr_size);
    if (err) return err;
    if (!it->payload_hash || strlen(it->payload_hash) != 16)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: payload hash must be 16 hex digits", it->job_id);
    aas_store_args_init(a);
    aas_store_args_add(a, k->job);
    aas_store_args_add(a, it->payload_hash);
    aas_store_args_addll(a, st->ttl_s);
    aas_store_args_add(a, idempotent ? "1" : "0");
    return AAS_ERR_OK;
}

/* One claim's reply: NEW, SAME (an idempotent resubmission), EXISTS or
 * OTHER (a different payload). */
static aas_err_t aas_store_claim_reply(const redisReply *r, aas_store_claim_t *it,
                                       char *errstr, size_t errstr_size) {
    if (r->type != REDIS_REPLY_STRING) return aas_store_reply_bad(r, "claim", errstr, errstr_size);
    if (r->len == 3 && memcmp(r->str, "NEW", 3) == 0) {
        it->resubmit = 0;
        return AAS_ERR_OK;
    }
    if (r->len == 4 && memcmp(r->str, "SAME", 4) == 0) {
        it->resubmit = 1;
        return AAS_ERR_OK;
    }
    if (r->len == 6 && memcmp(r->str, "EXISTS", 6) == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "job id %s exists (same payload); to submit it again on "
                           "purpose, resubmit idempotently (aas-producer --idempotent)",
                           it->job_id);
    return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                       "job id %s exists with a different payload; choose another id",
                       it->job_id);
}

/* The one pipelined loop of the *_many calls: checks and arguments per
 * item, a round trip per chunk, each reply to its item.  ctx is the
 * call's (claim: the idempotent flag; start: the worker id). */
typedef aas_err_t aas_store_many_args_fn(aas_store_t *st, const void *ctx, void *item,
                                         aas_store_job_keys_t *k, aas_store_args_t *a,
                                         char *errstr, size_t errstr_size);
typedef aas_err_t aas_store_many_reply_fn(const redisReply *r, void *item, char *errstr,
                                          size_t errstr_size);

static aas_err_t aas_store_claim_args_v(aas_store_t *st, const void *ctx, void *item,
                                        aas_store_job_keys_t *k, aas_store_args_t *a,
                                        char *errstr, size_t errstr_size) {
    return aas_store_claim_args(st, *(const int *)ctx, item, k, a, errstr, errstr_size);
}

static aas_err_t aas_store_claim_reply_v(const redisReply *r, void *item, char *errstr,
                                         size_t errstr_size) {
    return aas_store_claim_reply(r, item, errstr, errstr_size);
}

static aas_err_t aas_store_queued_args_v(aas_store_t *st, const void *ctx, void *item,
                                         aas_store_job_keys_t *k, aas_store_args_t *a,
                                         char *errstr, size_t errstr_size) {
    (void)ctx;
    return aas_store_queued_args(st, item, k, a, errstr, errstr_size);
}

static aas_err_t aas_store_queued_reply_v(const redisReply *r, void *item, char *errstr,
                                          size_t errstr_size) {
    (void)item;
    if (r->type != REDIS_REPLY_INTEGER) return aas_store_reply_bad(r, "queued", errstr, errstr_size);
    return AAS_ERR_OK;
}

/* How an item array is laid out for aas_store_many: n records of size
 * bytes, each with its aas_err_t at err_off and, when why_size is not 0,
 * a why[why_size] at why_off. */
typedef struct {
    void *items;
    size_t n, size, err_off, why_off, why_size;
} aas_store_items_t;

/* A connection failure stops the call: it is every item's not yet
 * answered (none may be taken as done), and errstr says it.  Otherwise
 * errstr says the first item's failure. */
static aas_err_t aas_store_many(aas_store_t *st, aas_store_lua_t script, int flags,
                                const char *what, const void *ctx, const aas_store_items_t *it,
                                aas_store_many_args_fn *args_fn,
                                aas_store_many_reply_fn *reply_fn, char *errstr,
                                size_t errstr_size) {
#define AAS_ITEM(i) ((char *)it->items + (i) * it->size)
#define AAS_ERR(i) (*(aas_err_t *)(AAS_ITEM(i) + it->err_off))
    char own[256];
#define AAS_WHY(i) (it->why_size ? AAS_ITEM(i) + it->why_off : own)
#define AAS_WHY_SIZE (it->why_size ? it->why_size : sizeof(own))
    aas_err_t first = AAS_ERR_OK;
    for (size_t j = 0; j < it->n; j++) {
        AAS_ERR(j) = AAS_ERR_OK;
        if (it->why_size) AAS_WHY(j)[0] = '\0';
    }
    for (size_t base = 0; base < it->n; base += AAS_STORE_MANY_CHUNK) {
        size_t m = it->n - base < AAS_STORE_MANY_CHUNK ? it->n - base : AAS_STORE_MANY_CHUNK;
        aas_store_job_keys_t k[AAS_STORE_MANY_CHUNK];
        aas_store_args_t a[AAS_STORE_MANY_CHUNK];
        redisReply *r[AAS_STORE_MANY_CHUNK];
        aas_err_t errs[AAS_STORE_MANY_CHUNK];
        size_t idx[AAS_STORE_MANY_CHUNK], na = 0;
        for (size_t j = 0; j < m; j++) {
            size_t i = base + j;
            AAS_ERR(i) = args_fn(st, ctx, AAS_ITEM(i), &k[na], &a[na], AAS_WHY(i), AAS_WHY_SIZE);
            if (!AAS_ERR(i)) idx[na++] = i;
            else if (!first) first = aas_err_set(errstr, errstr_size, AAS_ERR(i), "%s", AAS_WHY(i));
        }
        if (!na) continue;
        char cwhy[256];
        aas_err_t err = aas_store_eval_many(st, script, flags, what, 1, a, na, r, errs, cwhy,
                                            sizeof(cwhy));
        if (err) {
            for (size_t i = base; i < it->n; i++) {
                if (AAS_ERR(i)) continue;
                AAS_ERR(i) = err;
                if (it->why_size) snprintf(AAS_WHY(i), it->why_size, "%s", cwhy);
            }
            return aas_err_set(errstr, errstr_size, err, "%s", cwhy);
        }
        for (size_t j = 0; j < na; j++) {
            size_t i = idx[j];
            if (!r[j]) {
                AAS_ERR(i) = errs[j];
                snprintf(AAS_WHY(i), AAS_WHY_SIZE, "%s: %s", what, aas_err_str(errs[j]));
            } else {
                AAS_ERR(i) = reply_fn(r[j], AAS_ITEM(i), AAS_WHY(i), AAS_WHY_SIZE);
                freeReplyObject(r[j]);
            }
            if (AAS_ERR(i) && !first)
                first = aas_err_set(errstr, errstr_size, AAS_ERR(i), "%s", AAS_WHY(i));
        }
    }
    return AAS_ERR_OK; /* items carry their own outcomes; errstr names the first */
#undef AAS_ITEM
#undef AAS_ERR
#undef AAS_WHY
#undef AAS_WHY_SIZE
}

aas_err_t aas_store_job_queued_many(aas_store_t *st, aas_store_queued_t *items, size_t n,
                                    char *errstr, size_t errstr_size) {
    if (!st)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "store: NULL handle");
    /* Create-if-absent: a resend after a reconnect changes nothing. */
    aas_store_items_t it = {items, n, sizeof(*items), offsetof(aas_store_queued_t, err),
                            offsetof(aas_store_queued_t, why), sizeof(items->why)};
    return aas_store_many(st, AAS_STORE_LUA_QUEUED, AAS_STORE_F_RETRY, "queued", NULL, &it,
                          aas_store_queued_args_v, aas_store_queued_reply_v, errstr,
                          errstr_size);
}

aas_err_t aas_store_job_queued(aas_store_t *st, const char *job_id,
                               const char *model, const char *tenant, int64_t submit_ms,
                               char *errstr, size_t errstr_size) {
    aas_store_queued_t it = {.job_id = job_id, .model = model, .tenant = tenant,
                             .submit_ms = submit_ms};
    aas_err_t err = aas_store_job_queued_many(st, &it, 1, errstr, errstr_size);
    if (!err && it.err) err = aas_err_set(errstr, errstr_size, it.err, "%s", it.why);
    return err;
}

aas_err_t aas_store_job_claim_many(aas_store_t *st, int idempotent, aas_store_claim_t *items,
                                   size_t n, char *errstr, size_t errstr_size) {
    if (!st)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "store: NULL handle");
    /* Not resent after a reconnect: a claim that landed reads back as
     * EXISTS for the same payload, which the caller cannot tell from a
     * real duplicate; so a lost reply is an error, not a resend. */
    int flag = idempotent != 0;
    aas_store_items_t it = {items, n, sizeof(*items), offsetof(aas_store_claim_t, err),
                            offsetof(aas_store_claim_t, why), sizeof(items->why)};
    return aas_store_many(st, AAS_STORE_LUA_CLAIM, 0, "claim", &flag, &it,
                          aas_store_claim_args_v, aas_store_claim_reply_v, errstr,
                          errstr_size);
}

aas_err_t aas_store_job_claim(aas_store_t *st, const char *job_id,
                              const char *payload_hash, int idempotent,
                              int *resubmit_out, char *errstr, size_t errstr_size) {
    aas_store_claim_t it = {.job_id = job_id, .payload_hash = payload_hash};
    aas_err_t err = aas_store_job_claim_many(st, idempotent, &it, 1, errstr, errstr_size);
    if (!err && it.err) err = aas_err_set(errstr, errstr_size, it.err, "%s", it.why);
    if (!err) *resubmit_out = it.resubmit;
    return err;
}

aas_err_t aas_store_job_unclaim(aas_store_t *st, const char *job_id,
                                const char *payload_hash, char *errstr,
                                size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    aas_store_args_init(&a);
    aas_store_args_add(&a, k.job);
    aas_store_args_add(&a, payload_hash);
    err = aas_store_eval(st, AAS_STORE_LUA_UNCLAIM, AAS_STORE_F_RETRY, "unclaim", 1, &a,
                         &r, errstr, errstr_size);
    if (err) return err;
    freeReplyObject(r);
    return AAS_ERR_OK;
}

/* Length of at most max bytes of s, not cutting a UTF-8 sequence. */
static size_t aas_store_utf8_cut(const char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return n;
}

/* Reply of the start script: "<STATUS>" when terminal, "RUNNING <n>". */
static aas_err_t aas_store_start_reply(const redisReply *r, aas_store_start_t *it,
                                       char *errstr, size_t errstr_size) {
    char name[16];
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof(name))
        return aas_store_reply_bad(r, "start", errstr, errstr_size);
    memcpy(name, r->str, r->len);
    name[r->len] = '\0';
    char *sp = strchr(name, ' ');
    long long attempts = 0;
    if (sp) {
        *sp = '\0';
        attempts = strtoll(sp + 1, NULL, 10);
    }
    it->attempts = attempts;
    if (aas_status_parse(name, &it->status))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "job %s: unknown status '%s' in Redis", it->job_id, name);
    return AAS_ERR_OK;
}


/* Keys and arguments of one start call, after its checks. */
static aas_err_t aas_store_start_args(aas_store_t *st, const char *worker_id,
                                      const aas_store_start_t *it, aas_store_job_keys_t *k,
                                      aas_store_args_t *a, char *errstr,
                                      size_t errstr_size) {
    aas_err_t err = aas_store_job_keys(st, it->job_id, k, errstr, errstr_size);
    if (err) return err;
    if (it->model && !aas_id_valid(it->model))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: invalid model name", it->job_id);
    if (it->tenant && it->tenant[0] && !aas_id_valid(it->tenant))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: invalid tenant", it->job_id);
    if (it->src && strlen(it->src) > AAS_STORE_SRC_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: src longer than %d bytes", it->job_id,
                           AAS_STORE_SRC_MAX);
    aas_store_args_init(a);
    aas_store_args_add(a, k->job);
    aas_store_args_add(a, worker_id);
    aas_store_args_add(a, it->src ? it->src : "");
    aas_store_args_add(a, it->model ? it->model : "");
    aas_store_args_addll(a, st->ttl_s);
    aas_store_args_add(a, it->tenant ? it->tenant : "");
    return AAS_ERR_OK;
}

static aas_err_t aas_store_start_args_v(aas_store_t *st, const void *ctx, void *item,
                                        aas_store_job_keys_t *k, aas_store_args_t *a,
                                        char *errstr, size_t errstr_size) {
    return aas_store_start_args(st, ctx, item, k, a, errstr, errstr_size);
}

static aas_err_t aas_store_start_reply_v(const redisReply *r, void *item, char *errstr,
                                         size_t errstr_size) {
    return aas_store_start_reply(r, item, errstr, errstr_size);
}

aas_err_t aas_store_job_start_many(aas_store_t *st, const char *worker_id,
                                   aas_store_start_t *items, size_t n,
                                   char *errstr, size_t errstr_size) {
    aas_err_t err = AAS_ERR_OK;
    if (!st) err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "store: NULL handle");
    else if (!aas_id_valid(worker_id))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid worker id");
    if (err) { /* a failure of the whole call is every item's */
        for (size_t j = 0; j < n; j++) items[j].err = err;
        return err;
    }
    aas_store_items_t it = {items, n, sizeof(*items), offsetof(aas_store_start_t, err), 0, 0};
    /* Not AAS_STORE_F_RETRY: a resend could count an attempt twice. */
    return aas_store_many(st, AAS_STORE_LUA_START, 0, "start", worker_id, &it,
                          aas_store_start_args_v, aas_store_start_reply_v, errstr,
                          errstr_size);
}

aas_err_t aas_store_job_start(aas_store_t *st, const char *job_id,
                              const char *worker_id, const char *model,
                              const char *src, aas_status_t *status_out,
                              int64_t *attempts_out, char *errstr,
                              size_t errstr_size) {
    aas_store_start_t it = {.job_id = job_id, .model = model, .src = src};
    aas_err_t err = aas_store_job_start_many(st, worker_id, &it, 1, errstr, errstr_size);
    if (!err) err = it.err;
    if (err) return err;
    if (status_out) *status_out = it.status;
    if (attempts_out) *attempts_out = it.attempts;
    return AAS_ERR_OK;
}

/* Keys and arguments of one finish call, after its checks. */
static aas_err_t aas_store_finish_args(aas_store_t *st, const aas_store_finish_t *it,
                                       aas_store_job_keys_t *k, aas_store_args_t *a,
                                       char *errstr, size_t errstr_size) {
    aas_err_t err = aas_store_job_keys(st, it->job_id, k, errstr, errstr_size);
    if (err) return err;
    if (!aas_status_is_terminal(it->status))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: finish needs a terminal status, not %s",
                           it->job_id, aas_status_name(it->status));
    if (it->model_version && !aas_id_valid(it->model_version))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: invalid model version", it->job_id);
    if (it->result_len > AAS_STORE_RESULT_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "job %s: result of %zu bytes exceeds %zu", it->job_id,
                           it->result_len, (size_t)AAS_STORE_RESULT_MAX);
    int has_result = it->result != NULL && it->result_len > 0;
    aas_store_args_init(a);
    aas_store_args_add(a, k->job);
    aas_store_args_add(a, k->result);
    aas_store_args_add(a, k->done);
    aas_store_args_add(a, aas_status_name(it->status));
    aas_store_args_add(a, it->model_version ? it->model_version : "");
    aas_store_args_addb(a, it->error ? it->error : "",
                        it->error ? aas_store_utf8_cut(it->error, AAS_STORE_ERROR_MAX) : 0);
    aas_store_args_addb(a, has_result ? it->result : "", has_result ? it->result_len : 0);
    aas_store_args_add(a, has_result ? "1" : "0");
    aas_store_args_addll(a, st->ttl_s);
    aas_store_args_add(a, it->usage ? it->usage : "");
    aas_store_args_add(a, st->done_channel);
    aas_store_args_add(a, it->job_id);
    return AAS_ERR_OK;
}

aas_err_t aas_store_job_finish_many(aas_store_t *st, aas_store_finish_t *items,
                                    size_t n, char *errstr, size_t errstr_size) {
    if (!st) {
        for (size_t j = 0; j < n; j++) {
            items[j].written = 0;
            items[j].err = AAS_ERR_INVAL;
        }
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "store: NULL handle");
    }
    for (size_t base = 0; base < n; base += AAS_STORE_MANY_CHUNK) {
        size_t m = n - base < AAS_STORE_MANY_CHUNK ? n - base : AAS_STORE_MANY_CHUNK;
        aas_store_job_keys_t k[AAS_STORE_MANY_CHUNK];
        aas_store_args_t a[AAS_STORE_MANY_CHUNK];
        redisReply *r[AAS_STORE_MANY_CHUNK];
        aas_err_t errs[AAS_STORE_MANY_CHUNK];
        size_t idx[AAS_STORE_MANY_CHUNK], na = 0;
        for (size_t j = 0; j < m; j++) {
            aas_store_finish_t *it = &items[base + j];
            char why[256];
            it->written = 0;
            it->err = aas_store_finish_args(st, it, &k[na], &a[na], why, sizeof(why));
            if (it->err) {
                aas_err_set(errstr, errstr_size, it->err, "%s", why);
                continue;
            }
            idx[na++] = base + j;
        }
        if (!na) continue;
        /* Retry is safe: a resend after the first one landed finds the job
         * terminal and changes nothing (then written is 0). */
        aas_err_t err = aas_store_eval_many(st, AAS_STORE_LUA_FINISH, AAS_STORE_F_RETRY,
                                            "finish", 3, a, na, r, errs, errstr,
                                            errstr_size);
        if (err) {
            for (size_t j = 0; j < na; j++) items[idx[j]].err = err;
            for (size_t j = base + m; j < n; j++) items[j].err = err;
            return err;
        }
        for (size_t j = 0; j < na; j++) {
            aas_store_finish_t *it = &items[idx[j]];
            it->err = errs[j];
            if (!r[j]) continue;
            if (r[j]->type != REDIS_REPLY_INTEGER)
                it->err = aas_store_reply_bad(r[j], "finish", errstr, errstr_size);
            else if ((it->written = r[j]->integer > 0))
                it->finished_ms = r[j]->integer;
            freeReplyObject(r[j]);
        }
        /* Replicas first (redis.wait.replicas): a terminal write only the
         * master has would be lost in a failover after its offset was
         * committed.  Not enough of them: every write of the chunk is
         * retriable (finish is idempotent: the retry only waits again). */
        char wwhy[256];
        if ((err = aas_store_wait_replicas(st, "the terminal write", wwhy, sizeof(wwhy)))) {
            aas_err_set(errstr, errstr_size, err, "%s", wwhy);
            for (size_t j = 0; j < na; j++)
                if (!items[idx[j]].err) items[idx[j]].err = err;
        }
    }
    return AAS_ERR_OK;
}

aas_err_t aas_store_job_finish(aas_store_t *st, const char *job_id,
                               aas_status_t status, const char *model_version,
                               const void *result, size_t result_len,
                               const char *error, int *written_out,
                               char *errstr, size_t errstr_size) {
    aas_store_finish_t it = {.job_id = job_id, .status = status,
                             .model_version = model_version, .result = result,
                             .result_len = result_len, .error = error};
    aas_err_t err = aas_store_job_finish_many(st, &it, 1, errstr, errstr_size);
    if (!err) err = it.err;
    if (!err && written_out) *written_out = it.written;
    return err;
}

void aas_job_info_clear(aas_job_info_t *info) {
    if (!info) return;
    free(info->model);
    free(info->version);
    free(info->error);
    free(info->worker);
    free(info->src);
    free(info->progress);
    free(info->tenant);
    free(info->usage);
    memset(info, 0, sizeof(*info));
}

/* The fields job_get reads, in HMGET order. */
enum {
    AAS_F_STATUS, AAS_F_MODEL, AAS_F_VERSION, AAS_F_ERROR, AAS_F_WORKER,
    AAS_F_SRC, AAS_F_PROGRESS, AAS_F_TENANT, AAS_F_USAGE, AAS_F_ATTEMPTS, AAS_F_SUBMIT, AAS_F_QUEUED,
    AAS_F_STARTED, AAS_F_FINISHED, AAS_F_WRITES, AAS_F_SKIPS, AAS_F_CANCEL,
    AAS_F__COUNT
};
static const char *const aas_store_job_fields[AAS_F__COUNT] = {
    "status", "model", "version", "error", "worker", "src", "progress",
    "tenant", "usage", "attempts", "submit_ms", "queued_ms", "started_ms", "finished_ms",
    "result_writes", "skips", "cancel_requested"};

static aas_err_t aas_store_field_str(const redisReply *e, char **out) {
    *out = NULL;
    if (e->type == REDIS_REPLY_NIL) return AAS_ERR_OK;
    if (e->type != REDIS_REPLY_STRING) return AAS_ERR_REDIS;
    *out = aas_store_memdup0(e->str, e->len);
    return *out ? AAS_ERR_OK : AAS_ERR_NOMEM;
}

aas_err_t aas_store_job_get(aas_store_t *st, const char *job_id,
                            aas_job_info_t *info, char *errstr,
                            size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    aas_job_info_t v;
    char name[16];
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (!info)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: info is NULL", job_id);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HMGET");
    aas_store_args_add(&a, k.job);
    for (int i = 0; i < AAS_F__COUNT; i++)
        aas_store_args_add(&a, aas_store_job_fields[i]);
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HMGET job", &a, &r, errstr,
                        errstr_size);
    if (err) return err;
    memset(&v, 0, sizeof(v));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != AAS_F__COUNT) {
        err = aas_store_reply_bad(r, "HMGET job", errstr, errstr_size);
        goto out;
    }
    redisReply **e = r->element;
    if (e[AAS_F_STATUS]->type == REDIS_REPLY_NIL) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "job %s not found in Redis", job_id);
        goto out;
    }
    if (e[AAS_F_STATUS]->type != REDIS_REPLY_STRING ||
        e[AAS_F_STATUS]->len >= sizeof(name)) {
        err = aas_store_reply_bad(e[AAS_F_STATUS], "HMGET job", errstr,
                                  errstr_size);
        goto out;
    }
    memcpy(name, e[AAS_F_STATUS]->str, e[AAS_F_STATUS]->len);
    name[e[AAS_F_STATUS]->len] = '\0';
    if (aas_status_parse(name, &v.status)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "job %s: unknown status '%s' in Redis", job_id,
                          name);
        goto out;
    }
    int64_t *nums[] = {&v.attempts,   &v.submit_ms,   &v.queued_ms,
                       &v.started_ms, &v.finished_ms, &v.result_writes,
                       &v.skips,      &v.cancel_requested};
    for (int i = AAS_F_ATTEMPTS; i <= AAS_F_CANCEL; i++) {
        if (e[i]->type == REDIS_REPLY_NIL) continue; /* absent = 0 */
        if (aas_store_reply_ll(e[i], nums[i - AAS_F_ATTEMPTS])) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                              "job %s: field %s is not an integer", job_id,
                              aas_store_job_fields[i]);
            goto out;
        }
    }
    char **strs[] = {&v.model, &v.version, &v.error, &v.worker, &v.src,
                     &v.progress, &v.tenant, &v.usage};
    for (int i = AAS_F_MODEL; i <= AAS_F_USAGE; i++) {
        if ((err = aas_store_field_str(e[i], strs[i - AAS_F_MODEL]))) {
            err = aas_err_set(errstr, errstr_size, err,
                              "job %s: cannot read field %s", job_id,
                              aas_store_job_fields[i]);
            goto out;
        }
    }
    *info = v;
    memset(&v, 0, sizeof(v));
out:
    aas_job_info_clear(&v);
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_result_get(aas_store_t *st, const char *job_id,
                               void **buf, size_t *len, char *errstr,
                               size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (!buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: buf and len are required", job_id);
    aas_store_args_init(&a);
    aas_store_args_add(&a, k.result);
    aas_store_args_addll(&a, (long long)AAS_STORE_RESULT_MAX);
    /* The script checks the length server-side so a huge value is never
     * sent to (and allocated by) hiredis. */
    err = aas_store_eval(st, AAS_STORE_LUA_GETB, AAS_STORE_F_RETRY,
                         "result get", 1, &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_NIL) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "job %s has no result in Redis", job_id);
    } else if (r->type == REDIS_REPLY_INTEGER) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "job %s: result of %lld bytes exceeds %zu", job_id,
                          r->integer, (size_t)AAS_STORE_RESULT_MAX);
    } else if (r->type != REDIS_REPLY_STRING || r->len > AAS_STORE_RESULT_MAX) {
        err = aas_store_reply_bad(r, "result get", errstr, errstr_size);
    } else {
        void *p = malloc(r->len ? r->len : 1);
        if (!p) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                              "job %s: out of memory for the result", job_id);
        } else {
            memcpy(p, r->str, r->len);
            *buf = p;
            *len = r->len;
        }
    }
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_result_if_done(aas_store_t *st, const char *job_id, int *done,
                                   aas_status_t *status, void **buf, size_t *len,
                                   char *errstr, size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    char name[16];
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (!done || !status || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: done, status, buf and len are required", job_id);
    *done = 0;
    aas_store_args_init(&a);
    aas_store_args_add(&a, k.job);
    aas_store_args_add(&a, k.result);
    aas_store_args_addll(&a, (long long)AAS_STORE_RESULT_MAX);
    err = aas_store_eval(st, AAS_STORE_LUA_RESULT, AAS_STORE_F_RETRY, "result", 2, &a, &r,
                         errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return AAS_ERR_OK; /* not terminal */
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->elements > 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(name)) {
        err = aas_store_reply_bad(r, "result", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    memcpy(name, r->element[0]->str, r->element[0]->len);
    name[r->element[0]->len] = '\0';
    redisReply *v = r->elements == 2 ? r->element[1] : NULL;
    if (aas_status_parse(name, status)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "job %s: unknown status '%s' in Redis", job_id, name);
    } else if (!v) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                          "job %s has no result in Redis", job_id);
    } else if (v->type == REDIS_REPLY_INTEGER) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "job %s: result of %lld bytes exceeds %zu", job_id, v->integer,
                          (size_t)AAS_STORE_RESULT_MAX);
    } else if (v->type != REDIS_REPLY_STRING || v->len > AAS_STORE_RESULT_MAX) {
        err = aas_store_reply_bad(v, "result", errstr, errstr_size);
    } else if (!(*buf = malloc(v->len ? v->len : 1))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                          "job %s: out of memory for the result", job_id);
    } else {
        memcpy(*buf, v->str, v->len);
        *len = v->len;
        *done = 1;
    }
    freeReplyObject(r);
    return err;
}

/* HGET status; *known = 0 if absent. */
static aas_err_t aas_store_status_read(aas_store_t *st, const char *job_id,
                                       const char *job_key, int *known,
                                       aas_status_t *status, char *errstr,
                                       size_t errstr_size) {
    aas_store_args_t a;
    redisReply *r;
    char name[16];
    aas_store_args_init(&a);
    aas_store_args_add(&a, "HGET");
    aas_store_args_add(&a, job_key);
    aas_store_args_add(&a, "status");
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "HGET status", &a,
                                  &r, errstr, errstr_size);
    if (err) return err;
    *known = 0;
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof(name)) {
        memcpy(name, r->str, r->len);
        name[r->len] = '\0';
        if (aas_status_parse(name, status))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                              "job %s: unknown status '%s' in Redis", job_id,
                              name);
        else
            *known = 1;
    } else if (r->type != REDIS_REPLY_NIL) {
        err = aas_store_reply_bad(r, "HGET status", errstr, errstr_size);
    }
    freeReplyObject(r);
    return err;
}

/* One look at whether a waited-for job is terminal (one round trip):
 * aas_store_job_wait reads the status, aas_store_result_wait the result
 * with it. */
typedef aas_err_t aas_store_wait_check_fn(aas_store_t *st, const char *job_id,
                                          const char *job_key, void *ctx, int *terminal,
                                          char *errstr, size_t errstr_size);

/* Block until check says terminal or timeout_ms passes: check (unless
 * AAS_STORE_WAIT_FRESH), then BRPOPLPUSH on done:{id} and check after each
 * token, and once more at the end.  AAS_ERR_TIMEOUT (naming the status) if
 * never terminal. */
static aas_err_t aas_store_wait(aas_store_t *st, const char *job_id, int timeout_ms,
                                int flags, aas_store_wait_check_fn *check, void *ctx,
                                char *errstr, size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    int terminal = 0;
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (timeout_ms < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: negative wait timeout", job_id);
    /* A terminal job has its token, so a wait for a job just published
     * (not done yet, most likely) can block first and look when woken. */
    if (!(flags & AAS_STORE_WAIT_FRESH) &&
        ((err = check(st, job_id, k.job, ctx, &terminal, errstr, errstr_size)) || terminal))
        return err;

    int64_t deadline = aas_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        int64_t left_ms = (deadline - aas_mono_us()) / 1000;
        if (left_ms <= 0) break;
        char secs[32];
        snprintf(secs, sizeof(secs), "%lld.%03lld", (long long)(left_ms / 1000),
                 (long long)(left_ms % 1000));
        /* BRPOPLPUSH done done: wait for the token and put it back in the
         * same step (a rotation), so every other waiter wakes too and the
         * list keeps its TTL. */
        aas_store_args_init(&a);
        aas_store_args_add(&a, "BRPOPLPUSH");
        aas_store_args_add(&a, k.done);
        aas_store_args_add(&a, k.done);
        aas_store_args_add(&a, secs);
        err = aas_store_cmd(st, 0, (int)left_ms, "BRPOPLPUSH done", &a, &r, errstr,
                            errstr_size);
        if (err) return err;
        int popped = r->type == REDIS_REPLY_STRING;
        if (!popped && r->type != REDIS_REPLY_NIL) {
            err = aas_store_reply_bad(r, "BRPOPLPUSH done", errstr, errstr_size);
            freeReplyObject(r);
            return err;
        }
        freeReplyObject(r);
        if (!popped) break; /* server-side timeout */
        if ((err = check(st, job_id, k.job, ctx, &terminal, errstr, errstr_size)) || terminal)
            return err;
        /* A stray token on a job that is not terminal (its hash deleted or
         * expired and the id reused): it would wake us at once forever.
         * Take it and give it back only if the job is terminal by then, in
         * one script (a finish racing with us pushes its own token); then
         * look again. */
        aas_store_args_init(&a);
        aas_store_args_add(&a, "LPOP");
        aas_store_args_add(&a, k.done);
        if ((err = aas_store_cmd(st, 0, 0, "LPOP done", &a, &r, errstr, errstr_size)))
            return err;
        if (r->type == REDIS_REPLY_STRING) {
            redisReply *w = NULL;
            aas_store_args_init(&a);
            aas_store_args_add(&a, k.job);
            aas_store_args_add(&a, k.done);
            aas_store_args_addb(&a, r->str, r->len);
            err = aas_store_eval(st, AAS_STORE_LUA_WAKE, 0, "wake", 2, &a, &w, errstr,
                                 errstr_size);
            if (w) freeReplyObject(w);
        }
        freeReplyObject(r);
        if (err) return err;
    }
    /* Last look: the job may have finished as the timeout fired. */
    if ((err = check(st, job_id, k.job, ctx, &terminal, errstr, errstr_size)) || terminal)
        return err;
    aas_status_t s;
    int known = 0;
    if (aas_store_status_read(st, job_id, k.job, &known, &s, errstr, errstr_size))
        known = 0;
    return aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                       "job %s: not terminal after %d ms (status %s)", job_id,
                       timeout_ms, known ? aas_status_name(s) : "unknown");
}

static aas_err_t aas_store_wait_status(aas_store_t *st, const char *job_id, const char *job_key,
                                       void *ctx, int *terminal, char *errstr,
                                       size_t errstr_size) {
    aas_status_t *status = ctx;
    int known = 0;
    aas_err_t err = aas_store_status_read(st, job_id, job_key, &known, status, errstr,
                                          errstr_size);
    *terminal = !err && known && aas_status_is_terminal(*status);
    return err;
}

aas_err_t aas_store_job_wait(aas_store_t *st, const char *job_id,
                             int timeout_ms, aas_status_t *status_out,
                             char *errstr, size_t errstr_size) {
    aas_status_t s = AAS_STATUS_QUEUED;
    aas_err_t err = aas_store_wait(st, job_id, timeout_ms, 0, aas_store_wait_status, &s,
                                   errstr, errstr_size);
    if (!err && status_out) *status_out = s;
    return err;
}

typedef struct {
    aas_status_t *status;
    void **buf;
    size_t *len;
} aas_store_wait_result_t;

static aas_err_t aas_store_wait_result(aas_store_t *st, const char *job_id, const char *job_key,
                                       void *ctx, int *terminal, char *errstr,
                                       size_t errstr_size) {
    (void)job_key;
    aas_store_wait_result_t *w = ctx;
    aas_err_t err = aas_store_result_if_done(st, job_id, terminal, w->status, w->buf, w->len,
                                             errstr, errstr_size);
    /* Terminal without a result (or one too large): an answer, not a wait. */
    if (err == AAS_ERR_NOT_FOUND || err == AAS_ERR_TOO_LARGE) *terminal = 1;
    return err;
}

aas_err_t aas_store_result_wait(aas_store_t *st, const char *job_id, int timeout_ms,
                                int flags, aas_status_t *status, void **buf, size_t *len,
                                char *errstr, size_t errstr_size) {
    aas_store_wait_result_t w = {status, buf, len};
    if (!status || !buf || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "job %s: status, buf and len are required", job_id);
    return aas_store_wait(st, job_id, timeout_ms, flags, aas_store_wait_result, &w, errstr,
                          errstr_size);
}

aas_err_t aas_store_job_cancel(aas_store_t *st, const char *job_id,
                               const void *result, size_t result_len,
                               aas_status_t *status_out, char *errstr,
                               size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    char name[16];
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (result_len > AAS_STORE_RESULT_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "job %s: result too large", job_id);
    aas_store_args_init(&a);
    aas_store_args_add(&a, k.job);
    aas_store_args_add(&a, k.result);
    aas_store_args_add(&a, k.done);
    aas_store_args_addb(&a, result ? result : "", result ? result_len : 0);
    aas_store_args_addll(&a, st->ttl_s);
    aas_store_args_add(&a, st->done_channel);
    aas_store_args_add(&a, job_id);
    /* Idempotent: a resend finds CANCELLED (terminal) and changes nothing. */
    err = aas_store_eval(st, AAS_STORE_LUA_CANCEL, AAS_STORE_F_RETRY, "cancel", 3,
                         &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_STRING || r->len >= sizeof(name)) {
        err = aas_store_reply_bad(r, "cancel", errstr, errstr_size);
    } else {
        memcpy(name, r->str, r->len);
        name[r->len] = '\0';
        aas_status_t s;
        if (strcmp(name, "UNKNOWN") == 0)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                              "job %s not found in Redis", job_id);
        else if (aas_status_parse(name, &s))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                              "job %s: unknown status '%s' in Redis", job_id, name);
        else if (status_out)
            *status_out = s;
    }
    freeReplyObject(r);
    return err;
}

aas_err_t aas_store_job_progress(aas_store_t *st, const char *job_id,
                                 const char *progress_json, int *cancel_out,
                                 char *errstr, size_t errstr_size) {
    aas_store_job_keys_t k;
    aas_store_args_t a;
    redisReply *r;
    aas_err_t err = aas_store_job_keys(st, job_id, &k, errstr, errstr_size);
    if (err) return err;
    if (strlen(progress_json) > 65536)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "job %s: progress text over 64 KiB", job_id);
    aas_store_args_init(&a);
    aas_store_args_add(&a, k.job);
    aas_store_args_add(&a, progress_json);
    err = aas_store_eval(st, AAS_STORE_LUA_PROGRESS, AAS_STORE_F_RETRY, "progress",
                         1, &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_INTEGER)
        err = aas_store_reply_bad(r, "progress", errstr, errstr_size);
    else if (cancel_out)
        *cancel_out = r->integer == 1;
    freeReplyObject(r);
    return err;
}
