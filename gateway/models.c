/* models.c - model descriptions for the gateway, cached; see models.h. */
#include "models.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "model.h"

struct aas_gw_models_s {
    pthread_mutex_t mu;
    aas_gw_model_t **slots;
    size_t cap, next;      /* next: the slot a new entry replaces (round robin) */
};

static void model_free(aas_gw_model_t *d) {
    if (!d) return;
    if (d->labels)
        for (int64_t i = 0; i < d->out_dim; i++) free(d->labels[i]);
    free(d->labels);
    free(d->input_name);
    free(d->name);
    free(d);
}

aas_err_t aas_gw_models_new(size_t capacity, aas_gw_models_t **out) {
    aas_gw_models_t *m = calloc(1, sizeof(*m));
    if (!m) return AAS_ERR_NOMEM;
    if (!(m->slots = calloc(capacity, sizeof(*m->slots))) ||
        pthread_mutex_init(&m->mu, NULL)) {
        free(m->slots);
        free(m);
        return AAS_ERR_NOMEM;
    }
    m->cap = capacity;
    *out = m;
    return AAS_ERR_OK;
}

void aas_gw_models_destroy(aas_gw_models_t *m) {
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) model_free(m->slots[i]);
    pthread_mutex_destroy(&m->mu);
    free(m->slots);
    free(m);
}

void aas_gw_model_release(aas_gw_models_t *m, const aas_gw_model_t *model) {
    if (!model) return;
    aas_gw_model_t *d = (aas_gw_model_t *)model;
    pthread_mutex_lock(&m->mu);
    int last = --d->refs == 0;
    pthread_mutex_unlock(&m->mu);
    if (last) model_free(d);
}

/* Build a description from the blob (no lock held). */
static aas_err_t describe(const char *name, int64_t version, const void *blob, size_t len,
                          aas_gw_model_t **out, char *errstr, size_t errstr_size) {
    aas_model_t *mdl = NULL;
    aas_err_t err = aas_model_load(blob, len, &mdl, errstr, errstr_size);
    if (err) return err;
    aas_gw_model_t *d = calloc(1, sizeof(*d));
    if (!d || !(d->name = strdup(name))) goto nomem;
    d->version = version;
    d->kind = aas_model_kind(mdl);
    d->text = !strncmp(d->kind, "AASTXT", 6);
    d->classifier = aas_model_is_classifier(mdl);
    d->in_dim = aas_model_input_dim(mdl);
    d->out_dim = aas_model_output_dim(mdl);
    d->row_rank = aas_model_row_shape(mdl, d->row_dims);
    const char *in = aas_model_input_name(mdl);
    if (in && !(d->input_name = strdup(in))) goto nomem;
    if (d->out_dim > 0 && d->out_dim <= (1 << 20) && aas_model_label_name(mdl, 0)) {
        if (!(d->labels = calloc((size_t)d->out_dim, sizeof(*d->labels)))) goto nomem;
        for (int64_t i = 0; i < d->out_dim; i++) {
            const char *l = aas_model_label_name(mdl, i);
            if (!(d->labels[i] = strdup(l ? l : ""))) goto nomem;
        }
    }
    aas_model_destroy(mdl);
    d->refs = 1;
    *out = d;
    return AAS_ERR_OK;
nomem:
    model_free(d);
    aas_model_destroy(mdl);
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
}

aas_err_t aas_gw_models_get(aas_gw_models_t *m, aas_store_t *st, const char *name,
                            int64_t version, const aas_gw_model_t **out,
                            char *errstr, size_t errstr_size) {
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                           "invalid model name");
    aas_err_t err;
    int64_t now = aas_mono_us();
    int latest = version == 0;
    if (latest) { /* answered lately? */
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < m->cap; i++) {
            aas_gw_model_t *d = m->slots[i];
            if (d && d->latest_until_us > now && !strcmp(d->name, name)) {
                d->refs++;
                pthread_mutex_unlock(&m->mu);
                *out = d;
                return AAS_ERR_OK;
            }
        }
        pthread_mutex_unlock(&m->mu);
        if ((err = aas_store_model_latest(st, name, &version, errstr, errstr_size)))
            return err;
    }
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->cap; i++) {
        aas_gw_model_t *d = m->slots[i];
        if (d && d->version == version && !strcmp(d->name, name)) {
            d->refs++;
            if (latest) d->latest_until_us = now + AAS_GW_LATEST_MS * 1000;
            pthread_mutex_unlock(&m->mu);
            *out = d;
            return AAS_ERR_OK;
        }
    }
    pthread_mutex_unlock(&m->mu);
    void *blob = NULL;
    size_t len = 0;
    int64_t got = 0;
    if ((err = aas_store_model_get(st, name, version, AAS_STORE_BLOB_MAX, &blob, &len, &got,
                                   errstr, errstr_size)))
        return err;
    aas_gw_model_t *d = NULL;
    err = describe(name, got, blob, len, &d, errstr, errstr_size);
    free(blob);
    if (err) return err;
    pthread_mutex_lock(&m->mu);
    if (latest) d->latest_until_us = now + AAS_GW_LATEST_MS * 1000;
    aas_gw_model_t *old = m->slots[m->next];
    m->slots[m->next] = d;
    m->next = (m->next + 1) % m->cap;
    d->refs++; /* the caller's */
    int drop = old && --old->refs == 0;
    pthread_mutex_unlock(&m->mu);
    if (drop) model_free(old);
    *out = d;
    return AAS_ERR_OK;
}

const char *aas_gw_model_label(const aas_gw_model_t *model, int64_t i, char *buf,
                               size_t size) {
    if (model && model->labels && i >= 0 && i < model->out_dim) return model->labels[i];
    snprintf(buf, size, "%" PRId64, i);
    return buf;
}
