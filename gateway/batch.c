/* batch.c - the result the requests of one job share; see batch.h. */
#include "batch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

struct aas_gw_batch_s {
    pthread_mutex_t mu;      /* held by the reader for its whole wait */
    int refs;                /* under ref_mu */
    pthread_mutex_t ref_mu;
    aas_gw_waiter_t *w;
    aas_gw_ticket_t *tk;
    int64_t total;
    int read;                /* res, err and why hold the outcome */
    aas_err_t err;
    aas_result_t res;
    char why[1024];
    char id[AAS_ID_MAX + 1];
};

aas_gw_batch_t *aas_gw_batch_new(aas_gw_waiter_t *w, const char *job_id, int64_t total,
                                 int refs) {
    aas_gw_batch_t *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    if (pthread_mutex_init(&b->mu, NULL)) {
        free(b);
        return NULL;
    }
    if (pthread_mutex_init(&b->ref_mu, NULL)) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return NULL;
    }
    snprintf(b->id, sizeof(b->id), "%s", job_id);
    b->refs = refs;
    b->total = total;
    b->w = w;
    /* No ticket (out of memory) only costs the reader a blocking wait on
     * the job's own token. */
    b->tk = w ? aas_gw_waiter_add(w, job_id) : NULL;
    return b;
}

void aas_gw_batch_release(aas_gw_batch_t *b) {
    if (!b) return;
    pthread_mutex_lock(&b->ref_mu);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&b->ref_mu);
    if (!last) return;
    aas_gw_waiter_remove(b->w, b->tk);
    aas_result_clear(&b->res);
    pthread_mutex_destroy(&b->ref_mu);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

const char *aas_gw_batch_id(const aas_gw_batch_t *b) { return b->id; }

aas_err_t aas_gw_batch_result(aas_gw_batch_t *b, aas_gw_batch_read_fn read, void *ctx,
                              int64_t deadline_us, int64_t off, int64_t rows,
                              aas_result_t *view, char *why, size_t why_size) {
    memset(view, 0, sizeof(*view));
    pthread_mutex_lock(&b->mu);
    if (!b->read) {
        aas_result_t res = {0};
        aas_err_t err = read(ctx, b->id, b->tk, deadline_us, &res, b->why, sizeof(b->why));
        if (err == AAS_ERR_TIMEOUT) {
            pthread_mutex_unlock(&b->mu);
            aas_result_clear(&res);
            snprintf(why, why_size, "%s", b->why);
            return err;
        }
        b->err = err;
        b->res = res;
        b->read = 1;
    }
    aas_err_t err = b->err;
    if (err) snprintf(why, why_size, "%s", b->why);
    else if (b->res.status == AAS_STATUS_SUCCEEDED)
        err = aas_gw_merge_view(&b->res, b->total, off, rows, view, why, why_size);
    else { /* failed, cancelled, expired: its status and error, nothing to cut */
        *view = b->res;
        view->outputs = NULL;
        view->n_outputs = 0;
        view->predictions = NULL;
        view->n_predictions = 0;
    }
    pthread_mutex_unlock(&b->mu);
    return err;
}
