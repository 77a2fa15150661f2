/*
 * store_fleet.c - what the fleet says about itself in Redis: worker
 * heartbeats (liveness and load, read by the scheduler) and the
 * scheduler's decisions.  Values are opaque JSON text here.
 *
 * Keys: <prefix>worker:{<id>} (string, TTL = liveness), <prefix>workers
 * (set of ids; stale ids are dropped on read), <prefix>scheduler:decisions
 * (list, newest first, capped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define AAS_STORE_DECISIONS_KEEP 200

aas_err_t aas_store_heartbeat(aas_store_t *st, const char *worker_id,
                              const char *json, int ttl_s, char *errstr,
                              size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], set[AAS_STORE_KEY_MAX];
    if (!aas_id_valid(worker_id))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "invalid worker id");
    if (aas_store_key(st, key, sizeof(key), "worker", worker_id) ||
        aas_store_key(st, set, sizeof(set), "workers", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "key too long");
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SET");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, json);
    aas_store_args_add(&a, "EX");
    aas_store_args_addll(&a, ttl_s);
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SET heartbeat", &a, &r,
                                  errstr, errstr_size);
    if (err) return err;
    freeReplyObject(r);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SADD");
    aas_store_args_add(&a, set);
    aas_store_args_add(&a, worker_id);
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SADD workers", &a, &r, errstr,
                        errstr_size);
    if (!err) freeReplyObject(r);
    return err;
}

aas_err_t aas_store_heartbeats(aas_store_t *st, char ***jsons, size_t *n,
                               char *errstr, size_t errstr_size) {
    char set[AAS_STORE_KEY_MAX];
    if (aas_store_key(st, set, sizeof(set), "workers", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "key too long");
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "SMEMBERS");
    aas_store_args_add(&a, set);
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SMEMBERS workers", &a, &r,
                                  errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY) {
        err = aas_store_reply_bad(r, "SMEMBERS workers", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    size_t count = 0;
    char **out = calloc(r->elements + 1, sizeof(char *));
    if (!out) {
        freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->elements && !err; i++) {
        const redisReply *e = r->element[i];
        char id[AAS_ID_MAX + 1], key[AAS_STORE_KEY_MAX];
        if (e->type != REDIS_REPLY_STRING || e->len > AAS_ID_MAX) continue;
        memcpy(id, e->str, e->len);
        id[e->len] = '\0';
        if (!aas_id_valid(id) || aas_store_key(st, key, sizeof(key), "worker", id))
            continue;
        aas_store_args_t g;
        redisReply *v;
        aas_store_args_init(&g);
        aas_store_args_add(&g, "GET");
        aas_store_args_add(&g, key);
        if ((err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "GET heartbeat", &g, &v,
                                 errstr, errstr_size)))
            break;
        if (v->type == REDIS_REPLY_STRING && v->len <= 65536) {
            if (!(out[count] = aas_store_memdup0(v->str, v->len)))
                err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            else count++;
        } else if (v->type == REDIS_REPLY_NIL) {
            /* Expired: the worker is gone; forget its id. */
            aas_store_args_init(&g);
            aas_store_args_add(&g, "SREM");
            aas_store_args_add(&g, set);
            aas_store_args_add(&g, id);
            redisReply *d;
            if (aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "SREM workers", &g, &d, NULL, 0) ==
                AAS_ERR_OK)
                freeReplyObject(d);
        }
        freeReplyObject(v);
    }
    freeReplyObject(r);
    if (err) {
        aas_store_list_free(out, count);
        return err;
    }
    *jsons = out;
    *n = count;
    return AAS_ERR_OK;
}

void aas_store_list_free(char **items, size_t n) {
    for (size_t i = 0; items && i < n; i++) free(items[i]);
    free(items);
}

/* <prefix>scheduler:KIND:{group}, for a valid group name. */
static aas_err_t aas_store_group_key(aas_store_t *st, const char *kind, const char *group,
                                     char *key, size_t size, char *errstr,
                                     size_t errstr_size) {
    if (!group || !aas_id_valid(group))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "invalid consumer group name '%.40s' (use [A-Za-z0-9_.-], at most "
                           "%d)", group ? group : "", AAS_ID_MAX);
    if (aas_store_key(st, key, size, kind, group))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "key too long");
    return AAS_ERR_OK;
}

aas_err_t aas_store_decision_log(aas_store_t *st, const char *group, const char *json,
                                 char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_group_key(st, "scheduler:decisions", group, key, sizeof(key),
                                        errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "LPUSH");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, json);
    err = aas_store_cmd(st, 0, 0, "LPUSH decisions", &a, &r, errstr, errstr_size);
    if (err) return err;
    freeReplyObject(r);
    aas_store_args_init(&a);
    aas_store_args_add(&a, "LTRIM");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "0");
    aas_store_args_addll(&a, AAS_STORE_DECISIONS_KEEP - 1);
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "LTRIM decisions", &a, &r, errstr,
                        errstr_size);
    if (!err) freeReplyObject(r);
    return err;
}

aas_err_t aas_store_decisions(aas_store_t *st, const char *group, size_t max, char ***jsons,
                              size_t *n, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_group_key(st, "scheduler:decisions", group, key, sizeof(key),
                                        errstr, errstr_size);
    if (err) return err;
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "LRANGE");
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, "0");
    aas_store_args_addll(&a, (long long)(max > 0 ? max - 1 : 0));
    err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, "LRANGE decisions", &a, &r, errstr,
                        errstr_size);
    if (err) return err;
    char **out = calloc(r->type == REDIS_REPLY_ARRAY ? r->elements + 1 : 1, sizeof(char *));
    size_t count = 0;
    if (!out) err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !err && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            (out[count] = aas_store_memdup0(r->element[i]->str, r->element[i]->len)))
            count++;
    freeReplyObject(r);
    if (err) return err;
    *jsons = out;
    *n = count;
    return AAS_ERR_OK;
}

/* The value of "name:" in an INFO section, as an integer; -1 if absent. */
static long long aas_store_info_int(const char *info, const char *name) {
    size_t n = strlen(name);
    for (const char *p = info; (p = strstr(p, name)); p += n)
        if ((p == info || p[-1] == '\n') && p[n] == ':') return strtoll(p + n + 1, NULL, 10);
    return -1;
}

/* One command whose error reply is an answer ("unknown command" when
 * renamed away, NOPERM under an ACL), not a failure: *out is NULL then.
 * Only a connection that fails is an error. */
static aas_err_t aas_store_ask(aas_store_t *st, const char *what, const char *a0,
                               const char *a1, const char *a2, redisReply **out,
                               char *errstr, size_t errstr_size) {
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, a0);
    aas_store_args_add(&a, a1);
    if (a2) aas_store_args_add(&a, a2);
    aas_err_t err = aas_store_cmd(st, AAS_STORE_F_RETRY | AAS_STORE_F_KEEP_ERR, 0, what,
                                  &a, &r, errstr, errstr_size);
    if (err) return err;
    if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        r = NULL;
    }
    *out = r;
    return AAS_ERR_OK;
}

/* The value of CONFIG GET <name>, or NULL (refused, unknown). */
static const char *aas_store_config_value(const redisReply *r) {
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        return r->element[1]->str;
    return NULL;
}

aas_err_t aas_store_persistence(aas_store_t *st, aas_store_persistence_t *out,
                                char *errstr, size_t errstr_size) {
    aas_store_persistence_t p = {.aof = -1, .fsync_always = -1, .rdb = -1};
    redisReply *r;
    aas_err_t err = aas_store_ask(st, "INFO persistence", "INFO", "persistence", NULL, &r,
                                  errstr, errstr_size);
    if (err) return err;
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)) {
        long long aof = aas_store_info_int(r->str, "aof_enabled");
        p.aof = aof < 0 ? -1 : aof != 0;
    }
    if (r) freeReplyObject(r);
    /* The save policy and appendfsync are not in INFO.  CONFIG may be
     * renamed or refused (managed Redis, ACLs): then they stay -1. */
    static const char *keys[] = {"appendonly", "appendfsync", "save"};
    for (int i = 0; i < 3; i++) {
        err = aas_store_ask(st, "CONFIG GET", "CONFIG", "GET", keys[i], &r, errstr,
                            errstr_size);
        if (err) return err;
        const char *v = aas_store_config_value(r);
        if (v && i == 0 && p.aof < 0) p.aof = strcmp(v, "yes") == 0; /* INFO refused */
        if (v && i == 1) p.fsync_always = strcmp(v, "always") == 0;
        if (v && i == 2) p.rdb = v[0] != '\0';
        if (r) freeReplyObject(r);
    }
    *out = p;
    return AAS_ERR_OK;
}

aas_err_t aas_store_lease_at(aas_store_t *st, const char *key, const char *owner,
                             int64_t ttl_ms, int *held, char *holder, size_t holder_size,
                             int64_t *left_ms, char *errstr, size_t errstr_size) {
    if (!owner || !owner[0] || ttl_ms < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "lease: owner and ttl >= 0");
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, owner);
    aas_store_args_addll(&a, (long long)ttl_ms);
    aas_err_t err = aas_store_eval(st, AAS_STORE_LUA_LEASE, AAS_STORE_F_RETRY, "lease", 1, &a,
                                   &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        err = aas_store_reply_bad(r, "lease", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    *held = r->element[0]->integer == 1;
    if (holder && holder_size) {
        const redisReply *h = r->element[1];
        if (h->type == REDIS_REPLY_STRING)
            snprintf(holder, holder_size, "%.*s", (int)h->len, h->str);
        else
            holder[0] = '\0';
    }
    if (left_ms) *left_ms = r->element[2]->integer;
    freeReplyObject(r);
    return AAS_ERR_OK;
}

aas_err_t aas_store_lease(aas_store_t *st, const char *group, const char *owner,
                          int64_t ttl_ms, int *held, char *holder, size_t holder_size,
                          int64_t *left_ms, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_group_key(st, "scheduler:lease", group, key, sizeof(key),
                                        errstr, errstr_size);
    return err ? err : aas_store_lease_at(st, key, owner, ttl_ms, held, holder, holder_size,
                                          left_ms, errstr, errstr_size);
}

aas_err_t aas_store_train_slot(aas_store_t *st, const char *group, const char *worker_id,
                               int64_t lease_ms, int64_t floor, int *held, int64_t *live,
                               int64_t *training, char *errstr, size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX], set[AAS_STORE_KEY_MAX], hb[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_group_key(st, "trainslots", group, key, sizeof(key), errstr,
                                        errstr_size);
    if (err) return err;
    if (!aas_id_valid(worker_id) || lease_ms < 0 || floor < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "train slot: a valid worker id, lease and floor >= 0");
    if (aas_store_key(st, set, sizeof(set), "workers", NULL) ||
        aas_store_key(st, hb, sizeof(hb), "worker:{", NULL))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "key too long");
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, key);
    aas_store_args_add(&a, set);
    aas_store_args_add(&a, worker_id);
    aas_store_args_addll(&a, (long long)lease_ms);
    aas_store_args_addll(&a, (long long)floor);
    aas_store_args_add(&a, hb);
    aas_store_args_add(&a, group);
    err = aas_store_eval(st, AAS_STORE_LUA_TRAIN_SLOT, AAS_STORE_F_RETRY, "train slot", 2, &a,
                         &r, errstr, errstr_size);
    if (err) return err;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_INTEGER) {
        err = aas_store_reply_bad(r, "train slot", errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    *held = r->element[0]->integer == 1;
    if (live) *live = r->element[1]->integer;
    if (training) *training = r->element[2]->integer;
    freeReplyObject(r);
    return AAS_ERR_OK;
}

aas_err_t aas_store_lease_holder(aas_store_t *st, const char *group, char *holder,
                                 size_t holder_size, int64_t *left_ms, char *errstr,
                                 size_t errstr_size) {
    char key[AAS_STORE_KEY_MAX];
    aas_err_t err = aas_store_group_key(st, "scheduler:lease", group, key, sizeof(key),
                                        errstr, errstr_size);
    if (err) return err;
    const char *cmds[2] = {"GET", "PTTL"};
    redisReply *r[2] = {NULL, NULL};
    for (int i = 0; i < 2 && !err; i++) {
        aas_store_args_t a;
        aas_store_args_init(&a);
        aas_store_args_add(&a, cmds[i]);
        aas_store_args_add(&a, key);
        err = aas_store_cmd(st, AAS_STORE_F_RETRY, 0, cmds[i], &a, &r[i], errstr, errstr_size);
    }
    if (!err) {
        if (r[0]->type == REDIS_REPLY_STRING)
            snprintf(holder, holder_size, "%.*s", (int)r[0]->len, r[0]->str);
        else
            holder[0] = '\0';
        *left_ms = holder[0] && r[1]->type == REDIS_REPLY_INTEGER && r[1]->integer > 0
                       ? r[1]->integer : 0;
    }
    for (int i = 0; i < 2; i++)
        if (r[i]) freeReplyObject(r[i]);
    return err;
}
