/* pool.c - the gateway's aas clients; see pool.h. */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "publish.h"

struct aas_gw_pool_s {
    const aas_conf_t *conf;
    aas_gw_pub_opts_t opts;
    pthread_mutex_t mu;
    pthread_cond_t back;
    size_t max, made, n_idle;
    aas_client_t **idle;   /* max slots */
    aas_client_t *producer; /* the publisher's; made once, under mu */
    aas_gw_pub_t *pub;      /* its thread publishes every job */
};

/* The producer and its publishing thread, once (under p->mu). */
static aas_err_t aas_gw_pool_producer(aas_gw_pool_t *p, char *errstr, size_t errstr_size) {
    if (p->producer) return AAS_ERR_OK;
    aas_client_t *c = NULL;
    aas_err_t err = aas_client_new(p->conf, &c, errstr, errstr_size);
    if (err) return err;
    if ((err = aas_gw_pub_new(c, &p->opts, &p->pub, errstr, errstr_size))) {
        aas_client_destroy(c);
        return err;
    }
    p->producer = c;
    return AAS_ERR_OK;
}

aas_err_t aas_gw_pool_new(const aas_conf_t *conf, const aas_gw_pub_opts_t *opts, size_t max,
                          aas_gw_pool_t **out) {
    if (max == 0) return AAS_ERR_INVAL;
    aas_gw_pool_t *p = calloc(1, sizeof(*p));
    if (!p) return AAS_ERR_NOMEM;
    if (!(p->idle = calloc(max, sizeof(*p->idle)))) {
        free(p);
        return AAS_ERR_NOMEM;
    }
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p->idle);
        free(p);
        return AAS_ERR_NOMEM;
    }
    if (pthread_cond_init(&p->back, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p->idle);
        free(p);
        return AAS_ERR_NOMEM;
    }
    p->conf = conf;
    p->opts = *opts;
    p->max = max;
    *out = p;
    return AAS_ERR_OK;
}

void aas_gw_pool_destroy(aas_gw_pool_t *p) {
    if (!p) return;
    /* The clients first (they publish nothing: the publisher does), then
     * the publisher, once every job it took has its answer. */
    for (size_t i = 0; i < p->n_idle; i++) aas_client_destroy(p->idle[i]);
    aas_gw_pub_destroy(p->pub);
    aas_client_destroy(p->producer);
    pthread_cond_destroy(&p->back);
    pthread_mutex_destroy(&p->mu);
    free(p->idle);
    free(p);
}

aas_err_t aas_gw_pool_get(aas_gw_pool_t *p, aas_client_t **out, char *errstr,
                          size_t errstr_size) {
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->n_idle) {
            *out = p->idle[--p->n_idle];
            pthread_mutex_unlock(&p->mu);
            return AAS_ERR_OK;
        }
        if (p->made < p->max) break;
        pthread_cond_wait(&p->back, &p->mu);
    }
    /* The producer connects under the lock: it is made once, and a
     * request finding none waits for it rather than making another. */
    aas_err_t err = aas_gw_pool_producer(p, errstr, errstr_size);
    if (err) {
        pthread_mutex_unlock(&p->mu);
        return err;
    }
    p->made++; /* reserve the slot; connect outside the lock */
    pthread_mutex_unlock(&p->mu);
    aas_client_t *c = NULL;
    err = aas_client_new_shared(p->conf, p->producer, &c, errstr, errstr_size);
    if (err) {
        pthread_mutex_lock(&p->mu);
        p->made--;
        pthread_cond_signal(&p->back);
        pthread_mutex_unlock(&p->mu);
        return err;
    }
    *out = c;
    return AAS_ERR_OK;
}

void aas_gw_pool_put(aas_gw_pool_t *p, aas_client_t *c) {
    if (!c) return;
    pthread_mutex_lock(&p->mu);
    p->idle[p->n_idle++] = c;
    pthread_cond_signal(&p->back);
    pthread_mutex_unlock(&p->mu);
}

aas_err_t aas_gw_pool_publish(aas_gw_pool_t *p, const aas_job_t *job,
                              const aas_jobsig_key_t *key, int sync, int wait_ms,
                              aas_gw_pub_outcome_t *out) {
    char why[512];
    pthread_mutex_lock(&p->mu);
    aas_err_t err = aas_gw_pool_producer(p, why, sizeof(why));
    pthread_mutex_unlock(&p->mu);
    if (err) {
        memset(out, 0, sizeof(*out));
        out->stage = AAS_GW_PUB_REFUSED;
        snprintf(out->why, sizeof(out->why), "not connected: %s", why);
        return err;
    }
    return aas_gw_pub_publish(p->pub, job, key, sync, wait_ms, out);
}
