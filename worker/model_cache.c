/* model_cache.c - LRU of loaded models; see model_cache.h. */
#include "model_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "log.h"

typedef struct {
    char name[AAS_ID_MAX + 1];
    int64_t version;
    aas_model_t *model;
    size_t bytes;
    uint64_t last_use;
} aas_mc_entry_t;

typedef struct {
    char name[AAS_ID_MAX + 1];
    int64_t version;
    int64_t resolved_at_ms;
} aas_mc_latest_t;

struct aas_model_cache_s {
    aas_model_cache_conf_t conf;
    aas_mc_entry_t *entries;    /* conf.max_models slots */
    size_t n;
    aas_mc_latest_t *latest;    /* same count of slots, LRU by resolved_at */
    size_t n_latest;
    uint64_t clock;
    size_t bytes;
};

aas_err_t aas_model_cache_new(const aas_model_cache_conf_t *conf,
                              aas_model_cache_t **out) {
    if (conf->max_models < 1) return AAS_ERR_INVAL;
    aas_model_cache_t *c = calloc(1, sizeof(*c));
    if (!c) return AAS_ERR_NOMEM;
    c->conf = *conf;
    c->entries = calloc(conf->max_models, sizeof(*c->entries));
    c->latest = calloc(conf->max_models, sizeof(*c->latest));
    if (!c->entries || !c->latest) {
        aas_model_cache_destroy(c);
        return AAS_ERR_NOMEM;
    }
    *out = c;
    return AAS_ERR_OK;
}

void aas_model_cache_destroy(aas_model_cache_t *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) aas_model_destroy(c->entries[i].model);
    free(c->entries);
    free(c->latest);
    free(c);
}

static void aas_mc_evict(aas_model_cache_t *c, size_t i) {
    AAS_LOG(AAS_LOG_INFO, "model_cache", "evict model=%s version=%lld",
            c->entries[i].name, (long long)c->entries[i].version);
    aas_model_destroy(c->entries[i].model);
    c->bytes -= c->entries[i].bytes;
    c->entries[i] = c->entries[--c->n];
}

static size_t aas_mc_lru(const aas_model_cache_t *c) {
    size_t lru = 0;
    for (size_t i = 1; i < c->n; i++)
        if (c->entries[i].last_use < c->entries[lru].last_use) lru = i;
    return lru;
}

static aas_err_t aas_mc_resolve_latest(aas_model_cache_t *c, aas_store_t *st,
                                       const char *name, int64_t *version,
                                       char *errstr, size_t errstr_size) {
    int64_t now = aas_now_ms();
    size_t slot = c->n_latest;
    for (size_t i = 0; i < c->n_latest; i++)
        if (strcmp(c->latest[i].name, name) == 0) {
            if (now - c->latest[i].resolved_at_ms < c->conf.refresh_ms) {
                *version = c->latest[i].version;
                return AAS_ERR_OK;
            }
            slot = i;
            break;
        }
    int64_t v;
    aas_err_t err = aas_store_model_latest(st, name, &v, errstr, errstr_size);
    if (err) return err;
    if (slot == c->n_latest) {
        if (c->n_latest < c->conf.max_models) {
            c->n_latest++;
        } else { /* forget the oldest resolution */
            slot = 0;
            for (size_t i = 1; i < c->n_latest; i++)
                if (c->latest[i].resolved_at_ms < c->latest[slot].resolved_at_ms)
                    slot = i;
        }
        snprintf(c->latest[slot].name, sizeof(c->latest[slot].name), "%s", name);
    }
    c->latest[slot].version = v;
    c->latest[slot].resolved_at_ms = now;
    *version = v;
    return AAS_ERR_OK;
}

aas_err_t aas_model_cache_get(aas_model_cache_t *c, aas_store_t *st,
                              const char *name, const char *version,
                              aas_model_t **model_out, int64_t *version_out,
                              char *errstr, size_t errstr_size) {
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                           "invalid model name");
    int64_t v;
    aas_err_t err;
    if (!version || strcmp(version, "latest") == 0) {
        err = aas_mc_resolve_latest(c, st, name, &v, errstr, errstr_size);
        if (err) return err;
    } else {
        char *end;
        errno = 0;
        long long lv = strtoll(version, &end, 10);
        if (errno || end == version || *end || lv < 1)
            return aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                               "model %s: version '%s' is not 'latest' or a "
                               "positive integer",
                               name, version);
        v = lv;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].version == v && strcmp(c->entries[i].name, name) == 0) {
            c->entries[i].last_use = ++c->clock;
            /* A model grows as it meets new batch sizes (cached primitives
             * and buffers): keep the budget honest. */
            size_t now_bytes = aas_model_footprint(c->entries[i].model);
            c->bytes = c->bytes - c->entries[i].bytes + now_bytes;
            c->entries[i].bytes = now_bytes;
            *model_out = c->entries[i].model;
            *version_out = v;
            return AAS_ERR_OK;
        }

    void *blob = NULL;
    size_t len = 0;
    int64_t got;
    err = aas_store_model_get(st, name, v, c->conf.max_blob_bytes, &blob, &len,
                              &got, errstr, errstr_size);
    if (err) return err;
    aas_model_t *m = NULL;
    char why[256];
    err = aas_model_load(blob, len, &m, why, sizeof(why));
    free(blob);
    if (err)
        return aas_err_set(errstr, errstr_size, err, "model %s version %lld: %s",
                           name, (long long)got, why);
    size_t bytes = aas_model_footprint(m);
    while (c->n > 0 &&
           (c->n == c->conf.max_models || c->bytes + bytes > c->conf.max_bytes))
        aas_mc_evict(c, aas_mc_lru(c));
    aas_mc_entry_t *e = &c->entries[c->n++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->version = got;
    e->model = m;
    e->bytes = bytes;
    e->last_use = ++c->clock;
    c->bytes += bytes;
    AAS_LOG(AAS_LOG_INFO, "model_cache",
            "loaded model=%s version=%lld bytes=%zu cached=%zu", name,
            (long long)got, bytes, c->n);
    *model_out = m;
    *version_out = got;
    return AAS_ERR_OK;
}
