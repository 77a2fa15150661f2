/*
 * store_conn.c - the store's connection to Redis: connect (AUTH, SELECT,
 * SCRIPT LOAD), the one command wrapper that reconnects at most once per
 * call and maps hiredis errors (NULL reply, c->err, REDIS_REPLY_ERROR) to
 * aas_err_t, EVALSHA with EVAL fallback, and the Lua scripts themselves.
 *
 * The scripts are the data model's write rules (docs/redis.md describes
 * them for other languages).  Timestamps come from the server's TIME so
 * every writer agrees on one clock.  This file knows no job or model
 * semantics beyond the script bodies; store.c and store_model.c do.
 */
#include "store_int.h"

#include "fmt.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"

/* ---- Lua scripts ------------------------------------------------------ */

/* The data model's write rules, one file each in common/lua/ (what each
 * takes and returns is at the top of its file; docs/redis.md describes
 * them for other languages), compiled in by common/lua/embed.cmake. */
#include "store_lua.h"

/* ro: the script only reads, so it runs as EVALSHA_RO (Redis 7), which an
 * ACL user with read-only access to its keys may call (docs/redis.md#acl-
 * users: clients and the gateway read the registry, never write it). */
static const struct {
    const char *name;
    const char *body;
    int ro;
} aas_store_scripts[AAS_STORE_LUA__COUNT] = {
    [AAS_STORE_LUA_QUEUED] = {"queued", aas_store_lua_queued},
    [AAS_STORE_LUA_START] = {"start", aas_store_lua_start},
    [AAS_STORE_LUA_FINISH] = {"finish", aas_store_lua_finish},
    [AAS_STORE_LUA_WAKE] = {"wake", aas_store_lua_wake},
    [AAS_STORE_LUA_RESULT] = {"result", aas_store_lua_result, 1},
    [AAS_STORE_LUA_CLAIM] = {"claim", aas_store_lua_claim},
    [AAS_STORE_LUA_UNCLAIM] = {"unclaim", aas_store_lua_unclaim},
    [AAS_STORE_LUA_GETB] = {"getb", aas_store_lua_getb, 1},
    [AAS_STORE_LUA_MODEL_PUT] = {"model_put", aas_store_lua_model_put},
    [AAS_STORE_LUA_MODEL_GET] = {"model_get", aas_store_lua_model_get, 1},
    [AAS_STORE_LUA_MODEL_META] = {"model_meta", aas_store_lua_model_meta, 1},
    [AAS_STORE_LUA_MODEL_VERSIONS] = {"model_versions", aas_store_lua_model_versions, 1},
    [AAS_STORE_LUA_MODEL_DELETE] = {"model_delete", aas_store_lua_model_delete},
    [AAS_STORE_LUA_CANCEL] = {"cancel", aas_store_lua_cancel},
    [AAS_STORE_LUA_PROGRESS] = {"progress", aas_store_lua_progress},
    [AAS_STORE_LUA_METER] = {"meter", aas_store_lua_meter},
    [AAS_STORE_LUA_LEASE] = {"lease", aas_store_lua_lease},
    [AAS_STORE_LUA_QUOTA_ADMIT] = {"quota_admit", aas_store_lua_quota_admit},
    [AAS_STORE_LUA_QUOTA_RELEASE] = {"quota_release", aas_store_lua_quota_release},
    [AAS_STORE_LUA_QUOTA_SET] = {"quota_set", aas_store_lua_quota_set},
    [AAS_STORE_LUA_QUOTA_GET] = {"quota_get", aas_store_lua_quota_get, 1},
    [AAS_STORE_LUA_TRAIN_SLOT] = {"train_slot", aas_store_lua_train_slot},
};

/* Longest prefix we accept; keeps every key under AAS_STORE_KEY_MAX. */
#define AAS_STORE_PREFIX_MAX 64

/* ---- small helpers ---------------------------------------------------- */

void aas_store_args_init(aas_store_args_t *a) { memset(a, 0, sizeof(*a)); }

void aas_store_args_addb(aas_store_args_t *a, const void *p, size_t n) {
    if (a->argc >= AAS_STORE_ARGS_MAX) {
        a->overflow = 1;
        return;
    }
    a->argv[a->argc] = p ? (const char *)p : "";
    a->len[a->argc] = p ? n : 0;
    a->argc++;
}

void aas_store_args_add(aas_store_args_t *a, const char *s) {
    aas_store_args_addb(a, s, s ? strlen(s) : 0);
}

void aas_store_args_addll(aas_store_args_t *a, long long v) {
    if (a->n_nums >= AAS_STORE_ARGS_NUMS) {
        a->overflow = 1;
        return;
    }
    char *buf = a->nums[a->n_nums++];
    _Static_assert(sizeof(a->nums[0]) >= AAS_FMT_LL_MAX, "a number fits");
    aas_store_args_addb(a, buf, aas_fmt_ll(buf, v));
}

int aas_store_key(const aas_store_t *st, char *buf, size_t size,
                  const char *kind, const char *id) {
    /* Plain copies: three keys are built for every write of every job. */
    size_t np = strlen(st->prefix), nk = strlen(kind), ni = id ? strlen(id) : 0;
    size_t need = np + nk + (id ? ni + 3 : 0) + 1;
    if (need > size) return -1;
    char *p = buf;
    memcpy(p, st->prefix, np);
    p += np;
    memcpy(p, kind, nk);
    p += nk;
    if (id) {
        memcpy(p, ":{", 2);
        memcpy(p + 2, id, ni);
        p[2 + ni] = '}';
        p += ni + 3;
    }
    *p = '\0';
    return 0;
}

char *aas_store_memdup0(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static char *aas_store_strdup_or_null(const char *s) {
    return s ? aas_store_memdup0(s, strlen(s)) : NULL;
}

int aas_store_reply_ll(const redisReply *r, int64_t *out) {
    if (!r) return -1;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if ((r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) ||
        r->len == 0 || r->len > 20)
        return -1;
    char buf[24], *end;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* hiredis 0.14 takes `const char **` but only reads the array. */
static const char **aas_store_argv(const aas_store_args_t *a) {
    return (const char **)(uintptr_t)a->argv;
}

static struct timeval aas_store_tv(int ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* ---- errors ----------------------------------------------------------- */

aas_err_t aas_store_reply_err(aas_store_t *st, const redisReply *r,
                              const char *what, char *errstr,
                              size_t errstr_size) {
    const char *m = r->str ? r->str : "";
    int n = r->len > 300 ? 300 : (int)r->len;
    if (strncmp(m, "NOAUTH", 6) == 0 || strncmp(m, "WRONGPASS", 9) == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                           "Redis %s failed: not authenticated (%.*s); "
                           "check the store's AUTH user/password",
                           what, n, m);
    if (strncmp(m, "WRONGTYPE", 9) == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "Redis %s failed: %.*s (a key of the aas layout "
                           "holds another type)",
                           what, n, m);
    if (strncmp(m, "READONLY", 8) == 0 && st && st->ctx) {
        /* Talking to a replica after a failover: drop the connection so the
         * next call resolves the host again. */
        redisFree(st->ctx);
        st->ctx = NULL;
    }
    return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                       "Redis %s failed: %.*s", what, n, m);
}

aas_err_t aas_store_reply_bad(const redisReply *r, const char *what,
                              char *errstr, size_t errstr_size) {
    return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                       "Redis %s: unexpected reply type %d", what,
                       r ? r->type : -1);
}

/* ---- connecting ------------------------------------------------------- */

/* One command on a fresh context during connect; no reconnect logic. */
static aas_err_t aas_store_raw(redisContext *c, const aas_store_args_t *a,
                               const char *what, redisReply **out,
                               char *errstr, size_t errstr_size) {
    redisReply *r = redisCommandArgv(c, a->argc, aas_store_argv(a), a->len);
    if (!r || c->err) {
        if (r) freeReplyObject(r);
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                           "Redis %s failed: %s", what,
                           c->err ? c->errstr : "no reply");
    }
    *out = r;
    return AAS_ERR_OK;
}

/* Ask the sentinel at addr ("host:port") for the master's address and
 * make it st->host/port. */
static aas_err_t aas_store_sentinel_ask(aas_store_t *st, const char *addr, char *errstr,
                                        size_t errstr_size) {
    char host[256];
    snprintf(host, sizeof(host), "%s", addr);
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 26379;
    if (colon) *colon = '\0';
    if (port < 1 || port > 65535 || !host[0])
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "bad sentinel address '%s'",
                           addr);
    struct timeval tv = aas_store_tv(st->timeout_ms < 2000 ? st->timeout_ms : 2000);
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        aas_err_t e = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "sentinel %s: %s", addr,
                                  c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return e;
    }
    aas_err_t err = AAS_ERR_OK;
    redisReply *r = NULL;
    if (redisSetTimeout(c, tv) != REDIS_OK)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "sentinel %s: cannot set a "
                          "timeout", addr);
    else
        r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", st->master);
    if (err) {
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        char *mhost = aas_store_memdup0(r->element[0]->str, r->element[0]->len);
        int mport = atoi(r->element[1]->str);
        if (!mhost || mport < 1 || mport > 65535) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                              "sentinel %s: a bad address for master '%s'", addr, st->master);
            free(mhost);
        } else {
            if (strcmp(mhost, st->host) || mport != st->port)
                AAS_LOG(AAS_LOG_INFO, "store", "event=master master=%s addr=%s:%d sentinel=%s",
                        st->master, mhost, mport, addr);
            free(st->host);
            st->host = mhost;
            st->port = mport;
        }
    } else {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "sentinel %s: %s", addr,
                          !r ? c->errstr
                          : r->type == REDIS_REPLY_NIL ? "does not know the master"
                          : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return err;
}

static aas_err_t aas_store_connect_addr(aas_store_t *st, char *errstr, size_t errstr_size);

/* Connect to st->host/port, or with sentinels to the master they name:
 * each in turn is asked and its answer tried, until one is a reachable
 * master (right after a failover some still name the old one). */
static aas_err_t aas_store_connect(aas_store_t *st, char *errstr, size_t errstr_size) {
    if (!st->sentinels) return aas_store_connect_addr(st, errstr, errstr_size);
    char list[1024], why[512] = "no sentinel listed";
    aas_err_t err = AAS_ERR_REDIS;
    /* During a failover (seconds) every sentinel may still name the dead
     * master: ask again every 100 ms, for up to redis.timeout.ms. */
    int64_t deadline = aas_mono_us() + (int64_t)st->timeout_ms * 1000;
    do {
        snprintf(list, sizeof(list), "%s", st->sentinels);
        for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok;
             tok = strtok_r(NULL, ", ", &save)) {
            if ((err = aas_store_sentinel_ask(st, tok, why, sizeof(why)))) {
                if (err == AAS_ERR_INVAL) break; /* a bad list stays bad */
                continue;
            }
            if (!(err = aas_store_connect_addr(st, why, sizeof(why)))) return AAS_ERR_OK;
            if (err == AAS_ERR_INVAL) break; /* credentials refused */
        }
        if (err == AAS_ERR_INVAL) break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    } while (aas_mono_us() < deadline);
    return aas_err_set(errstr, errstr_size, err == AAS_ERR_INVAL ? AAS_ERR_INVAL : AAS_ERR_REDIS,
                       "no master '%s' reachable through the sentinels (last: %s)", st->master,
                       why);
}

/*
 * Open a new context to st->host/port: connect, command timeout, AUTH,
 * SELECT, (with sentinels) ROLE must be master, SCRIPT LOAD.
 * AAS_ERR_INVAL for rejected credentials, AAS_ERR_REDIS otherwise.  On
 * success replaces st->ctx.
 */
static aas_err_t aas_store_connect_addr(aas_store_t *st, char *errstr,
                                        size_t errstr_size) {
    struct timeval tv = aas_store_tv(st->timeout_ms);
    redisContext *c = st->host[0] == '/'
                          ? redisConnectUnixWithTimeout(st->host, tv)
                          : redisConnectWithTimeout(st->host, st->port, tv);
    redisReply *r = NULL;
    aas_err_t err;
    aas_store_args_t a;
    if (!c)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "Redis connect to %s:%d: out of memory", st->host,
                           st->port);
    if (c->err) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                          "Redis connect to %s:%d failed: %s", st->host,
                          st->port, c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                          "Redis %s:%d: cannot set the command timeout",
                          st->host, st->port);
        goto fail;
    }
    if (st->password) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "AUTH");
        if (st->user) aas_store_args_add(&a, st->user);
        aas_store_args_add(&a, st->password);
        if ((err = aas_store_raw(c, &a, "AUTH", &r, errstr, errstr_size)))
            goto fail;
        if (r->type == REDIS_REPLY_ERROR) {
            /* The reply never echoes the password; only print the reply. */
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "Redis AUTH failed: %.*s (user %s at %s:%d)",
                              r->len > 300 ? 300 : (int)r->len, r->str,
                              st->user ? st->user : "default", st->host,
                              st->port);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (st->db != 0) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "SELECT");
        aas_store_args_addll(&a, st->db);
        if ((err = aas_store_raw(c, &a, "SELECT", &r, errstr, errstr_size)))
            goto fail;
        if (r->type == REDIS_REPLY_ERROR) goto reply_error;
        freeReplyObject(r);
        r = NULL;
    }
    if (st->sentinels) {
        /* Right after a failover a sentinel may still name the old master,
         * now a replica: writes there would fail; wait for the next try. */
        aas_store_args_init(&a);
        aas_store_args_add(&a, "ROLE");
        if ((err = aas_store_raw(c, &a, "ROLE", &r, errstr, errstr_size))) goto fail;
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
            r->element[0]->type != REDIS_REPLY_STRING ||
            strcmp(r->element[0]->str, "master") != 0) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                              "%s:%d, named master '%s' by a sentinel, is not a master "
                              "(a failover in progress?)", st->host, st->port, st->master);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    for (int i = 0; i < AAS_STORE_LUA__COUNT; i++) {
        aas_store_args_init(&a);
        aas_store_args_add(&a, "SCRIPT");
        aas_store_args_add(&a, "LOAD");
        aas_store_args_add(&a, aas_store_scripts[i].body);
        if ((err = aas_store_raw(c, &a, "SCRIPT LOAD", &r, errstr,
                                 errstr_size)))
            goto fail;
        if (r->type == REDIS_REPLY_ERROR) goto reply_error;
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            err = aas_store_reply_bad(r, "SCRIPT LOAD", errstr, errstr_size);
            goto fail;
        }
        memcpy(st->sha[i], r->str, 40);
        st->sha[i][40] = '\0';
        freeReplyObject(r);
        r = NULL;
    }
    if (st->ctx) redisFree(st->ctx);
    st->ctx = c;
    return AAS_ERR_OK;

reply_error:
    if (strncmp(r->str, "NOAUTH", 6) == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "Redis at %s:%d requires AUTH (%.*s); set the "
                          "store password",
                          st->host, st->port,
                          r->len > 300 ? 300 : (int)r->len, r->str);
    else
        err = aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                          "Redis setup at %s:%d failed: %.*s", st->host,
                          st->port, r->len > 300 ? 300 : (int)r->len, r->str);
fail:
    if (r) freeReplyObject(r);
    redisFree(c);
    return err;
}

/* 1 if the idle socket has EOF, an error or unexpected bytes pending: the
 * server went away (or restarted) since our last command. */
static int aas_store_socket_dead(const redisContext *c) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0 /* do not block */);
    return n != 0; /* readable while idle, error, or poll failed */
}

static void aas_store_disconnect(aas_store_t *st) {
    if (st->ctx) redisFree(st->ctx);
    st->ctx = NULL;
}

static aas_err_t aas_store_reconnect(aas_store_t *st, const char *reason,
                                     char *errstr, size_t errstr_size) {
    aas_store_disconnect(st);
    st->reconnects++;
    AAS_LOG(AAS_LOG_WARN, "store",
            "event=reconnect addr=%s:%d reason=\"%s\" reconnects=%" PRId64,
            st->host, st->port, reason, st->reconnects);
    char why[256];
    aas_err_t err = aas_store_connect(st, why, sizeof(why));
    if (err) {
        /* Mid-session, any failure (even rejected credentials) is the
         * environment's fault, not the job's: retriable. */
        AAS_LOG(AAS_LOG_WARN, "store", "event=reconnect_failed addr=%s:%d "
                "error=\"%s\"", st->host, st->port, why);
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                           "%s (after: %s)", why, reason);
    }
    return AAS_ERR_OK;
}

/* Before sending: reconnect (at most once per call, *reconnected says
 * whether it happened) when there is no live connection. */
static aas_err_t aas_store_ensure(aas_store_t *st, int *reconnected, const char *what,
                                  char *errstr, size_t errstr_size) {
    if (st->ctx && !st->ctx->err && !aas_store_socket_dead(st->ctx)) return AAS_ERR_OK;
    if (*reconnected)
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "Redis %s: connection lost",
                           what);
    char reason[192];
    snprintf(reason, sizeof(reason), "%s",
             !st->ctx ? "not connected"
             : st->ctx->err ? st->ctx->errstr
                            : "server closed the connection");
    *reconnected = 1;
    return aas_store_reconnect(st, reason, errstr, errstr_size);
}

aas_err_t aas_store_connected(aas_store_t *st, char *errstr, size_t errstr_size) {
    int reconnected = 0;
    return aas_store_ensure(st, &reconnected, "connect", errstr, errstr_size);
}

void aas_store_drop(aas_store_t *st) { aas_store_disconnect(st); }

aas_err_t aas_store_cmd(aas_store_t *st, int flags, int block_ms,
                        const char *what, const aas_store_args_t *a,
                        redisReply **out, char *errstr, size_t errstr_size) {
    int reconnected = 0;
    char reason[192];
    aas_err_t err;
    if (a->overflow)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "Redis %s: too many arguments", what);
    for (;;) {
        if ((err = aas_store_ensure(st, &reconnected, what, errstr, errstr_size)))
            return err;
        if (block_ms > 0 &&
            redisSetTimeout(st->ctx, aas_store_tv(st->timeout_ms + block_ms)) !=
                REDIS_OK) {
            aas_store_disconnect(st);
            return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                               "Redis %s: cannot set the socket timeout",
                               what);
        }
        redisReply *r = redisCommandArgv(st->ctx, a->argc, aas_store_argv(a),
                                         a->len);
        if (r && !st->ctx->err) {
            if (block_ms > 0 &&
                redisSetTimeout(st->ctx, aas_store_tv(st->timeout_ms)) !=
                    REDIS_OK)
                aas_store_disconnect(st); /* next call reconnects */
            if (r->type == REDIS_REPLY_ERROR &&
                !(flags & AAS_STORE_F_KEEP_ERR)) {
                err = aas_store_reply_err(st, r, what, errstr, errstr_size);
                freeReplyObject(r);
                return err;
            }
            *out = r;
            return AAS_ERR_OK;
        }
        snprintf(reason, sizeof(reason), "%s",
                 st->ctx->err ? st->ctx->errstr : "no reply");
        if (r) freeReplyObject(r);
        aas_store_disconnect(st);
        if (!(flags & AAS_STORE_F_RETRY) || reconnected)
            return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                               "Redis %s failed at %s:%d: %s", what, st->host,
                               st->port, reason);
        /* Loop: the top reconnects once and resends. */
    }
}

aas_err_t aas_store_eval(aas_store_t *st, aas_store_lua_t script, int flags,
                         const char *what, int nkeys,
                         const aas_store_args_t *a, redisReply **out,
                         char *errstr, size_t errstr_size) {
    aas_store_args_t e;
    redisReply *r = NULL;
    aas_err_t err;
    for (int pass = 0; pass < 2; pass++) {
        int ro = aas_store_scripts[script].ro && !st->no_ro;
        aas_store_args_init(&e);
        aas_store_args_add(&e, pass == 0 ? (ro ? "EVALSHA_RO" : "EVALSHA")
                                         : (ro ? "EVAL_RO" : "EVAL"));
        aas_store_args_add(&e, pass == 0 ? st->sha[script]
                                         : aas_store_scripts[script].body);
        aas_store_args_addll(&e, nkeys);
        for (int i = 0; i < a->argc; i++)
            aas_store_args_addb(&e, a->argv[i], a->len[i]);
        if (a->overflow) e.overflow = 1;
        err = aas_store_cmd(st, flags | AAS_STORE_F_KEEP_ERR, 0, what, &e, &r,
                            errstr, errstr_size);
        if (err) return err;
        if (r->type != REDIS_REPLY_ERROR) {
            *out = r;
            return AAS_ERR_OK;
        }
        /* The server lost its script cache (restart, SCRIPT FLUSH, failover
         * to a replica that never saw SCRIPT LOAD): send the body. */
        if (pass == 0 && r->str && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            r = NULL;
            continue;
        }
        /* Redis before 7 has no EVAL_RO: the plain form, from now on. */
        if (ro && r->str && strncmp(r->str, "ERR unknown command", 19) == 0) {
            st->no_ro = 1;
            freeReplyObject(r);
            r = NULL;
            pass--;
            continue;
        }
        err = aas_store_reply_err(st, r, what, errstr, errstr_size);
        freeReplyObject(r);
        return err;
    }
    return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "Redis %s failed",
                       what); /* not reached */
}

/* Room for more bytes of protocol in st->resp after len. */
static int aas_store_resp_room(aas_store_t *st, size_t len, size_t more) {
    if (more > SIZE_MAX / 2 - len) return -1;
    if (len + more <= st->resp_cap) return 0;
    size_t cap = st->resp_cap ? st->resp_cap : 4096;
    while (cap < len + more) cap *= 2;
    char *p = realloc(st->resp, cap);
    if (!p) return -1;
    st->resp = p;
    st->resp_cap = cap;
    return 0;
}

/* Let a buffer grown past 4 MiB by one pipeline (large results) go. */
static void aas_store_resp_trim(aas_store_t *st) {
    if (st->resp_cap <= (4u << 20)) return;
    free(st->resp);
    st->resp = NULL;
    st->resp_cap = 0;
}

/* "*<n>\r\n" or "$<n>\r\n" at p; returns the bytes written. */
static size_t aas_store_resp_head(char *p, char tag, size_t n) {
    p[0] = tag;
    size_t k = 1 + aas_fmt_ll(p + 1, (long long)n);
    p[k] = '\r';
    p[k + 1] = '\n';
    return k + 2;
}

static size_t aas_store_resp_bulk(char *p, const char *s, size_t n) {
    size_t k = aas_store_resp_head(p, '$', n);
    if (n) memcpy(p + k, s, n);
    p[k + n] = '\r';
    p[k + n + 1] = '\n';
    return k + n + 2;
}

/* Append one EVALSHA of a to st->resp at *len, in Redis' protocol: written
 * here rather than by redisAppendCommandArgv, which formats every length
 * with sdscatfmt, a measurable share of a worker's CPU per job
 * (docs/performance.md, "Cost per job"). */
static int aas_store_resp_eval(aas_store_t *st, size_t *len, aas_store_lua_t script,
                               int nkeys, const aas_store_args_t *a) {
    char nk[AAS_FMT_LL_MAX];
    size_t nkl = aas_fmt_ll(nk, nkeys), shal = strlen(st->sha[script]);
    /* Each bulk: '$', up to 20 digits, CRLF, the bytes, CRLF. */
    size_t more = 24 + (7 + 25) + (shal + 25) + (nkl + 25);
    for (int i = 0; i < a->argc; i++) {
        if (a->len[i] > SIZE_MAX / 4) return -1;
        more += a->len[i] + 25;
    }
    if (aas_store_resp_room(st, *len, more)) return -1;
    char *p = st->resp + *len;
    p += aas_store_resp_head(p, '*', (size_t)(3 + a->argc));
    p += aas_store_resp_bulk(p, "EVALSHA", 7);
    p += aas_store_resp_bulk(p, st->sha[script], shal);
    p += aas_store_resp_bulk(p, nk, nkl);
    for (int i = 0; i < a->argc; i++) p += aas_store_resp_bulk(p, a->argv[i], a->len[i]);
    *len = (size_t)(p - st->resp);
    return 0;
}

aas_err_t aas_store_eval_many(aas_store_t *st, aas_store_lua_t script, int flags,
                              const char *what, int nkeys,
                              const aas_store_args_t *a, size_t n,
                              redisReply **out, aas_err_t *errs,
                              char *errstr, size_t errstr_size) {
    int reconnected = 0;
    char reason[192];
    aas_err_t err;
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    /* The pipeline is built once, before any I/O: it does not depend on
     * the connection, a resend after a reconnect reuses it, and a call it
     * cannot hold is refused as such, not as a broken connection. */
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].overflow)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "Redis %s: more than %d arguments in a call", what,
                               AAS_STORE_ARGS_MAX);
        if (aas_store_resp_eval(st, &len, script, nkeys, &a[i]))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "Redis %s: out of memory for a pipeline of %zu calls", what,
                               n);
    }
    for (;;) {
        if ((err = aas_store_ensure(st, &reconnected, what, errstr, errstr_size)))
            return err;
        /* All commands go out in one write; the replies come back in order. */
        size_t got = 0;
        int io_ok = !len || redisAppendFormattedCommand(st->ctx, st->resp, len) == REDIS_OK;
        for (; io_ok && got < n; got++) {
            void *r = NULL;
            if (redisGetReply(st->ctx, &r) != REDIS_OK || !r) {
                if (r) freeReplyObject(r);
                io_ok = 0;
                break;
            }
            out[got] = r;
        }
        if (io_ok) break;
        snprintf(reason, sizeof(reason), "%s",
                 st->ctx && st->ctx->err ? st->ctx->errstr : "no reply");
        for (size_t i = 0; i < got; i++) {
            freeReplyObject(out[i]);
            out[i] = NULL;
        }
        aas_store_disconnect(st);
        if (!(flags & AAS_STORE_F_RETRY) || reconnected) {
            aas_store_resp_trim(st);
            return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                               "Redis %s failed at %s:%d: %s", what, st->host,
                               st->port, reason);
        }
        /* Loop: reconnect once and resend all (the caller said it is safe). */
    }
    /* A one-off huge pipeline (large results) does not keep its buffer. */
    aas_store_resp_trim(st);
    /* Per command: an error reply is that item's failure; NOSCRIPT (the
     * server lost its script cache) is resent alone with the body. */
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        errs[i] = AAS_ERR_OK;
        redisReply *r = out[i];
        if (r->type != REDIS_REPLY_ERROR) continue;
        char why[512];
        if (r->str && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            out[i] = NULL;
            errs[i] = aas_store_eval(st, script, flags, what, nkeys, &a[i], &out[i], why,
                                     sizeof(why));
        } else {
            errs[i] = aas_store_reply_err(st, r, what, why, sizeof(why));
            freeReplyObject(r);
            out[i] = NULL;
        }
        if (errs[i] && first) {
            first = 0;
            aas_err_set(errstr, errstr_size, errs[i], "%s", why);
        }
    }
    return AAS_ERR_OK;
}

/* ---- lifecycle -------------------------------------------------------- */

void aas_store_conf_init(aas_store_conf_t *conf) {
    memset(conf, 0, sizeof(*conf));
    conf->host = "127.0.0.1";
    conf->port = 6379;
    conf->db = 0;
    conf->timeout_ms = 5000;
    conf->ttl_s = 86400;
    conf->prefix = "aas:";
}

static aas_err_t aas_store_conf_check(const aas_store_conf_t *c, char *errstr,
                                      size_t errstr_size) {
    if (!c->host || !*c->host || strlen(c->host) > 255)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: host must be 1..255 characters");
    if (c->host[0] != '/' && (c->port < 1 || c->port > 65535))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: port %d out of range 1..65535", c->port);
    if (c->db < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: db %d must be >= 0", c->db);
    if (c->timeout_ms < 1 || c->timeout_ms > 3600000)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: timeout_ms %d out of range 1..3600000",
                           c->timeout_ms);
    if (c->ttl_s < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: ttl_s %d must be >= 1", c->ttl_s);
    if (c->user && !c->password)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: user %s given without a password",
                           c->user);
    const char *p = c->prefix ? c->prefix : "";
    if (strlen(p) > AAS_STORE_PREFIX_MAX)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: prefix longer than %d characters",
                           AAS_STORE_PREFIX_MAX);
    for (; *p; p++)
        if (*p == '{' || *p == '}' || *p <= ' ' || *p == 0x7f)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "store: prefix may not contain braces, "
                               "spaces or control characters");
    return AAS_ERR_OK;
}

aas_err_t aas_store_new(const aas_store_conf_t *conf, aas_store_t **out,
                        char *errstr, size_t errstr_size) {
    aas_err_t err;
    if (!conf || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "store: conf and out are required");
    if ((err = aas_store_conf_check(conf, errstr, errstr_size))) return err;
    aas_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "store: out of memory");
    st->port = conf->port;
    st->db = conf->db;
    st->timeout_ms = conf->timeout_ms;
    st->ttl_s = conf->ttl_s;
    st->host = aas_store_strdup_or_null(conf->host);
    st->user = aas_store_strdup_or_null(conf->user);
    st->password = aas_store_strdup_or_null(conf->password);
    st->prefix = aas_store_strdup_or_null(conf->prefix ? conf->prefix : "");
    if (conf->sentinels && *conf->sentinels) {
        st->sentinels = aas_store_strdup_or_null(conf->sentinels);
        st->master = aas_store_strdup_or_null(
            conf->sentinel_master && *conf->sentinel_master ? conf->sentinel_master
                                                             : "mymaster");
    }
    st->wait_replicas = conf->wait_replicas > 0 ? conf->wait_replicas : 0;
    st->wait_timeout_ms = conf->wait_timeout_ms > 0 ? conf->wait_timeout_ms : 1000;
    if (!st->host || !st->prefix || (conf->user && !st->user) ||
        (conf->password && !st->password) ||
        (conf->sentinels && *conf->sentinels && (!st->sentinels || !st->master))) {
        aas_store_destroy(st);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "store: out of memory");
    }
    if (aas_store_key(st, st->done_channel, sizeof(st->done_channel), "done", NULL)) {
        aas_store_destroy(st);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "store: prefix too long");
    }
    if ((err = aas_store_connect(st, errstr, errstr_size))) {
        aas_store_destroy(st);
        return err;
    }
    *out = st;
    return AAS_ERR_OK;
}

void aas_store_destroy(aas_store_t *st) {
    if (!st) return;
    aas_store_disconnect(st);
    free(st->host);
    free(st->user);
    if (st->password) {
        /* Do not leave the secret in freed heap. */
        volatile char *p = st->password;
        while (*p) *p++ = '\0';
        free(st->password);
    }
    free(st->prefix);
    free(st->sentinels);
    free(st->master);
    free(st->resp);
    free(st);
}

aas_err_t aas_store_wait_replicas(aas_store_t *st, const char *what, char *errstr,
                                  size_t errstr_size) {
    if (!st->wait_replicas) return AAS_ERR_OK;
    aas_store_args_t a;
    redisReply *r;
    aas_store_args_init(&a);
    aas_store_args_add(&a, "WAIT");
    aas_store_args_addll(&a, st->wait_replicas);
    aas_store_args_addll(&a, st->wait_timeout_ms);
    /* No retry: after a reconnect WAIT would cover nothing we wrote. */
    aas_err_t err = aas_store_cmd(st, 0, st->wait_timeout_ms, "WAIT", &a, &r, errstr,
                                  errstr_size);
    if (err) return err;
    long long got = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (got < st->wait_replicas)
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                           "%s reached %lld of redis.wait.replicas=%d replicas within %d ms: "
                           "not counted as durable yet", what, got, st->wait_replicas,
                           st->wait_timeout_ms);
    return AAS_ERR_OK;
}

int64_t aas_store_reconnects(const aas_store_t *st) {
    return st ? st->reconnects : 0;
}
