/* waiter.c - the gateway's thread that hears of finished jobs; see waiter.h. */
#include "waiter.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "job.h"
#include "log.h"
#include "store.h"

/* Tickets by a hash of their id: a few hundred at most (gateway.threads). */
#define AAS_GW_WAITER_BUCKETS 256
/* Ids read per call. */
#define AAS_GW_WAITER_READ 64
/* How long a read waits, so the thread sees a stop soon. */
#define AAS_GW_WAITER_READ_MS 200
/* Between attempts to connect or subscribe. */
#define AAS_GW_WAITER_RETRY_MS 1000

struct aas_gw_ticket_s {
    struct aas_gw_ticket_s *next;
    char id[AAS_ID_MAX + 1];
    int woken;           /* announced, or told to look */
    pthread_cond_t cv;
};

struct aas_gw_waiter_s {
    const aas_conf_t *conf;
    pthread_mutex_t mu;
    aas_gw_ticket_t *bucket[AAS_GW_WAITER_BUCKETS];
    int live;            /* subscribed, and an id heard since */
    int stop;
    pthread_t thread;
    int started;
    char ids[AAS_GW_WAITER_READ][AAS_ID_MAX + 1]; /* the thread's */
};

static unsigned aas_gw_waiter_hash(const char *id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h % AAS_GW_WAITER_BUCKETS;
}

/* Wake every ticket to look (under mu): what it waits for may have been
 * announced while nobody listened. */
static void aas_gw_waiter_wake_all(aas_gw_waiter_t *w) {
    for (int b = 0; b < AAS_GW_WAITER_BUCKETS; b++)
        for (aas_gw_ticket_t *t = w->bucket[b]; t; t = t->next) {
            t->woken = 1;
            pthread_cond_signal(&t->cv);
        }
}

static void aas_gw_waiter_set_live(aas_gw_waiter_t *w, int live) {
    pthread_mutex_lock(&w->mu);
    int changed = w->live != live;
    if (changed) aas_gw_waiter_wake_all(w);
    w->live = live;
    pthread_mutex_unlock(&w->mu);
    if (changed)
        AAS_LOG(AAS_LOG_INFO, "gateway", "waiter=%s", live ? "live (one subscription hears "
                "finished jobs)" : "off (each request waits on its job's own token)");
}

/* Sleep ms unless stopped; 1 if stopped. */
static int aas_gw_waiter_pause(aas_gw_waiter_t *w, int ms) {
    for (int slept = 0; slept < ms; slept += 50) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop) return 1;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void *aas_gw_waiter_main(void *arg) {
    aas_gw_waiter_t *w = arg;
    aas_store_t *st = NULL;
    int subscribed = 0, heard = 0;
    char why[512];
    for (;;) {
        pthread_mutex_lock(&w->mu);
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop) break;
        if (!st && aas_cli_store_new(w->conf, &st, why, sizeof(why))) {
            st = NULL;
            AAS_LOG(AAS_LOG_DEBUG, "gateway", "waiter: %s", why);
            aas_gw_waiter_pause(w, AAS_GW_WAITER_RETRY_MS);
            continue;
        }
        if (!subscribed) {
            if (aas_store_done_subscribe(st, why, sizeof(why))) {
                AAS_LOG(AAS_LOG_DEBUG, "gateway", "waiter: %s", why);
                aas_gw_waiter_pause(w, AAS_GW_WAITER_RETRY_MS);
                continue;
            }
            subscribed = 1;
            heard = 0;
        }
        size_t n = 0;
        if (aas_store_done_read(st, AAS_GW_WAITER_READ_MS, w->ids, AAS_GW_WAITER_READ, &n, why,
                                sizeof(why))) {
            AAS_LOG(AAS_LOG_WARN, "gateway", "waiter: %s; requests wait on their own until "
                    "it is back", why);
            subscribed = 0;
            aas_gw_waiter_set_live(w, 0);
            continue;
        }
        if (!n) continue;
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < n; i++)
            for (aas_gw_ticket_t *t = w->bucket[aas_gw_waiter_hash(w->ids[i])]; t; t = t->next)
                if (!strcmp(t->id, w->ids[i])) {
                    t->woken = 1;
                    pthread_cond_signal(&t->cv);
                }
        pthread_mutex_unlock(&w->mu);
        if (!heard) {
            heard = 1;
            aas_gw_waiter_set_live(w, 1);
        }
    }
    aas_store_destroy(st);
    return NULL;
}

aas_err_t aas_gw_waiter_new(const aas_conf_t *conf, aas_gw_waiter_t **out, char *errstr,
                            size_t errstr_size) {
    aas_gw_waiter_t *w = calloc(1, sizeof(*w));
    if (!w) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    w->conf = conf;
    if (pthread_mutex_init(&w->mu, NULL)) {
        free(w);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    if (pthread_create(&w->thread, NULL, aas_gw_waiter_main, w)) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "cannot start a thread");
    }
    w->started = 1;
    *out = w;
    return AAS_ERR_OK;
}

void aas_gw_waiter_destroy(aas_gw_waiter_t *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_mutex_unlock(&w->mu);
    if (w->started) pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

aas_gw_ticket_t *aas_gw_waiter_add(aas_gw_waiter_t *w, const char *job_id) {
    if (!aas_id_valid(job_id)) return NULL;
    aas_gw_ticket_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_condattr_t ca;
    int ok = 0;
    if (!pthread_condattr_init(&ca)) {
        /* Waits are measured on the monotonic clock, as every timeout here. */
        ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) && !pthread_cond_init(&t->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (!ok) {
        free(t);
        return NULL;
    }
    snprintf(t->id, sizeof(t->id), "%s", job_id);
    unsigned b = aas_gw_waiter_hash(t->id);
    pthread_mutex_lock(&w->mu);
    t->next = w->bucket[b];
    w->bucket[b] = t;
    pthread_mutex_unlock(&w->mu);
    return t;
}

int aas_gw_waiter_sleep(aas_gw_waiter_t *w, aas_gw_ticket_t *t, int timeout_ms) {
    int ms = timeout_ms < AAS_GW_WAITER_LOOK_MS ? timeout_ms : AAS_GW_WAITER_LOOK_MS;
    struct timespec until = aas_mono_deadline(ms > 0 ? ms : 0);
    pthread_mutex_lock(&w->mu);
    int live = w->live;
    while (live && !t->woken && pthread_cond_timedwait(&t->cv, &w->mu, &until) == 0)
        ;
    t->woken = 0;
    pthread_mutex_unlock(&w->mu);
    return live;
}

void aas_gw_waiter_remove(aas_gw_waiter_t *w, aas_gw_ticket_t *t) {
    if (!t) return;
    pthread_mutex_lock(&w->mu);
    for (aas_gw_ticket_t **pp = &w->bucket[aas_gw_waiter_hash(t->id)]; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
