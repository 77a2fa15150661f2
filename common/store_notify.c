/*
 * store_notify.c - waiting for many jobs on one connection: the ids that
 * terminal writes publish on <prefix>done (see store.h, docs/redis.md).
 *
 * A subscribed connection answers nothing else, so it is a store handle
 * of its own.  Replies are read without blocking hiredis: poll(2) on the
 * socket with the caller's timeout, then hiredis' reader, so a quiet
 * channel is a timeout and not a broken context.
 */
#include "store_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

aas_err_t aas_store_done_subscribe(aas_store_t *st, char *errstr, size_t errstr_size) {
    aas_err_t err = aas_store_connected(st, errstr, errstr_size);
    if (err) return err;
    redisReply *r = redisCommand(st->ctx, "SUBSCRIBE %s", st->done_channel);
    if (!r || st->ctx->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", st->ctx->err ? st->ctx->errstr : "no reply");
        if (r) freeReplyObject(r);
        aas_store_drop(st);
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "Redis SUBSCRIBE: %s", why);
    }
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             !strcmp(r->element[0]->str, "subscribe");
    if (!ok) err = aas_store_reply_bad(r, "SUBSCRIBE", errstr, errstr_size);
    freeReplyObject(r);
    if (err) aas_store_drop(st);
    return err;
}

/* One pushed reply: a message's id into ids[*n] when it is a valid id. */
static void aas_store_done_take(const redisReply *r, char (*ids)[AAS_ID_MAX + 1], size_t *n) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
    const redisReply *kind = r->element[0], *msg = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") ||
        msg->type != REDIS_REPLY_STRING || msg->len > AAS_ID_MAX)
        return;
    memcpy(ids[*n], msg->str, msg->len);
    ids[*n][msg->len] = '\0';
    if (aas_id_valid(ids[*n])) (*n)++; /* anything else is not ours to pass on */
}

aas_err_t aas_store_done_read(aas_store_t *st, int timeout_ms, char (*ids)[AAS_ID_MAX + 1],
                              size_t max, size_t *n, char *errstr, size_t errstr_size) {
    *n = 0;
    if (!st->ctx)
        return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS, "Redis: not subscribed");
    int waited = 0;
    while (*n < max) {
        void *reply = NULL;
        if (redisGetReplyFromReader(st->ctx, &reply) != REDIS_OK) break;
        if (reply) {
            aas_store_done_take(reply, ids, n);
            freeReplyObject(reply);
            continue;
        }
        if (*n || waited) return AAS_ERR_OK; /* what was buffered, or one wait's worth */
        struct pollfd p = {.fd = st->ctx->fd, .events = POLLIN};
        int k = poll(&p, 1, timeout_ms);
        if (k < 0 && errno == EINTR) return AAS_ERR_OK;
        if (k == 0) return AAS_ERR_OK; /* quiet */
        waited = 1;
        if (k < 0 || redisBufferRead(st->ctx) != REDIS_OK) break;
    }
    if (*n == max) return AAS_ERR_OK;
    char why[128];
    snprintf(why, sizeof(why), "%s", st->ctx->err ? st->ctx->errstr : "connection lost");
    aas_store_drop(st);
    return aas_err_set(errstr, errstr_size, AAS_ERR_REDIS,
                       "Redis subscription lost: %s (ids published meanwhile are lost)", why);
}
