/* model_cache.c - LRU of loaded models, with their serving options; see
 * model_cache.h. */
#include "model_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "log.h"

/* One loaded (name, version) at one precision.  model == NULL records that
 * applying the precision failed (fail_err, fail_why), so the model's jobs
 * fail at once instead of refetching the blob each time. */
typedef struct {
    char name[AAS_ID_MAX + 1];
    int64_t version;
    aas_precision_t precision;
    aas_model_t *model;
    aas_err_t fail_err;
    char fail_why[384];
    size_t bytes;
    uint64_t last_use;
} aas_mc_entry_t;

/* What Redis said about one name at resolved_at_ms: its latest version and
 * its serving options (or why they are unusable). */
typedef struct {
    char name[AAS_ID_MAX + 1];
    int64_t latest;               /* 0: no version at that time */
    aas_model_serving_t serving;
    aas_err_t opts_err;           /* != OK: the options in Redis are bad */
    char opts_why[384];
    int64_t resolved_at_ms;
} aas_mc_name_t;

struct aas_model_cache_s {
    aas_model_cache_conf_t conf;
    aas_mc_entry_t *entries;    /* conf.max_models slots */
    size_t n;
    aas_mc_name_t *names;       /* same count of slots, LRU by resolved_at */
    size_t n_names;
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
    c->names = calloc(conf->max_models, sizeof(*c->names));
    if (!c->entries || !c->names) {
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
    free(c->names);
    free(c);
}

static void aas_mc_evict(aas_model_cache_t *c, size_t i, const char *why) {
    AAS_LOG(AAS_LOG_INFO, "model_cache", "evict model=%s version=%lld "
            "precision=%s reason=%s", c->entries[i].name,
            (long long)c->entries[i].version,
            aas_precision_name(c->entries[i].precision), why);
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

/* Serving options from Redis into rec (opts_err set when they are bad). */
static aas_err_t aas_mc_read_opts(aas_store_t *st, const char *name,
                                  aas_mc_name_t *rec, char *errstr,
                                  size_t errstr_size) {
    aas_store_model_opts_t o;
    aas_err_t err = aas_store_model_opts_get(st, name, &o, rec->opts_why,
                                             sizeof(rec->opts_why));
    rec->opts_err = AAS_ERR_OK;
    rec->opts_why[sizeof(rec->opts_why) - 1] = '\0';
    if (err == AAS_ERR_DECODE) { /* corrupt in Redis: the jobs' fault */
        rec->opts_err = err;
        return AAS_ERR_OK;
    }
    if (err) return aas_err_set(errstr, errstr_size, err, "%s", rec->opts_why);
    aas_precision_t p = AAS_PRECISION_F32;
    if (o.precision[0] && aas_precision_parse(o.precision, &p)) {
        /* The registry knows a name this worker's model module does not
         * (a newer writer): refuse rather than serve another precision. */
        rec->opts_err = AAS_ERR_DECODE;
        snprintf(rec->opts_why, sizeof(rec->opts_why),
                 "model %s: precision '%s' is not known to this worker",
                 name, o.precision);
        return AAS_ERR_OK;
    }
    rec->serving.precision = p;
    rec->serving.batch_max_rows = o.batch_max_rows;
    rec->serving.batch_max_delay_us = o.batch_max_delay_us;
    return AAS_ERR_OK;
}

/* The name's record, re-read from Redis when older than refresh_ms (or
 * when a "latest" lookup finds no version: a model may appear any time). */
static aas_err_t aas_mc_name(aas_model_cache_t *c, aas_store_t *st,
                             const char *name, int want_latest,
                             const aas_mc_name_t **out, char *errstr,
                             size_t errstr_size) {
    int64_t now = aas_now_ms();
    size_t slot = c->n_names;
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i].name, name) == 0) {
            if (now - c->names[i].resolved_at_ms < c->conf.refresh_ms &&
                !(want_latest && c->names[i].latest == 0)) {
                *out = &c->names[i];
                return AAS_ERR_OK;
            }
            slot = i;
            break;
        }
    aas_mc_name_t rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    aas_err_t err = aas_store_model_latest(st, name, &rec.latest, errstr,
                                           errstr_size);
    if (err == AAS_ERR_UNKNOWN_MODEL && want_latest) return err;
    if (err == AAS_ERR_UNKNOWN_MODEL) rec.latest = 0; /* a pinned version may
                                                         still be cached */
    else if (err) return err;
    if ((err = aas_mc_read_opts(st, name, &rec, errstr, errstr_size)))
        return err;
    rec.resolved_at_ms = now;

    if (slot == c->n_names) {
        if (c->n_names < c->conf.max_models) {
            c->n_names++;
        } else { /* forget the oldest resolution */
            slot = 0;
            for (size_t i = 1; i < c->n_names; i++)
                if (c->names[i].resolved_at_ms < c->names[slot].resolved_at_ms)
                    slot = i;
        }
        c->names[slot].name[0] = '\0'; /* new: everything below is news */
    }
    aas_mc_name_t *old = &c->names[slot];
    int known = strcmp(old->name, name) == 0;
    if (rec.opts_err &&
        (!known || !old->opts_err || strcmp(old->opts_why, rec.opts_why)))
        AAS_LOG(AAS_LOG_WARN, "model_cache", "model=%s serving options "
                "unusable, its jobs fail: %s", name, rec.opts_why);
    else if (!rec.opts_err &&
             (!known || old->opts_err ||
              memcmp(&old->serving, &rec.serving, sizeof(rec.serving))))
        AAS_LOG(AAS_LOG_INFO, "model_cache", "model=%s serving precision=%s "
                "batch_max_rows=%ld batch_max_delay_us=%ld", name,
                aas_precision_name(rec.serving.precision),
                (long)rec.serving.batch_max_rows,
                (long)rec.serving.batch_max_delay_us);
    *old = rec;
    *out = old;
    return AAS_ERR_OK;
}

/* Fetch, load and apply the precision; a precision failure is cached as
 * an entry without a model. */
static aas_err_t aas_mc_load(aas_model_cache_t *c, aas_store_t *st,
                             const char *name, int64_t v,
                             aas_precision_t precision, aas_mc_entry_t **out,
                             char *errstr, size_t errstr_size) {
    void *blob = NULL;
    size_t len = 0;
    int64_t got;
    aas_err_t err = aas_store_model_get(st, name, v, c->conf.max_blob_bytes,
                                        &blob, &len, &got, errstr, errstr_size);
    if (err) return err;
    aas_model_t *m = NULL;
    char why[256];
    err = aas_model_load(blob, len, &m, why, sizeof(why));
    free(blob);
    if (err)
        return aas_err_set(errstr, errstr_size, err, "model %s version %lld: %s",
                           name, (long long)got, why);
    aas_err_t fail = AAS_ERR_OK;
    char fail_why[384] = "";
    if (precision != AAS_PRECISION_F32 &&
        (fail = aas_model_set_precision(m, precision, why, sizeof(why)))) {
        snprintf(fail_why, sizeof(fail_why), "model %s version %lld: %s", name,
                 (long long)got, why);
        AAS_LOG(AAS_LOG_WARN, "model_cache", "model=%s version=%lld "
                "precision=%s refused, its jobs fail: %s", name, (long long)got,
                aas_precision_name(precision), why);
        aas_model_destroy(m);
        m = NULL;
    }
    size_t bytes = m ? aas_model_footprint(m) : 0;
    while (c->n > 0 &&
           (c->n == c->conf.max_models || c->bytes + bytes > c->conf.max_bytes))
        aas_mc_evict(c, aas_mc_lru(c), "lru");
    aas_mc_entry_t *e = &c->entries[c->n++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->version = got;
    e->precision = precision;
    e->model = m;
    e->fail_err = fail;
    snprintf(e->fail_why, sizeof(e->fail_why), "%s", fail_why);
    e->bytes = bytes;
    c->bytes += bytes;
    if (m)
        AAS_LOG(AAS_LOG_INFO, "model_cache",
                "loaded model=%s version=%lld precision=%s bytes=%zu "
                "cached=%zu", name, (long long)got,
                aas_precision_name(precision), bytes, c->n);
    *out = e;
    return AAS_ERR_OK;
}

int aas_model_cache_serving_known(const aas_model_cache_t *c, const char *name,
                                  aas_model_serving_t *serving_out) {
    for (size_t i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i].name, name) == 0) {
            if (c->names[i].opts_err) return -1;
            *serving_out = c->names[i].serving;
            return 0;
        }
    return -1;
}

aas_err_t aas_model_cache_get_serving(aas_model_cache_t *c, aas_store_t *st,
                                      const char *name, const char *version,
                                      aas_model_t **model_out,
                                      int64_t *version_out,
                                      aas_model_serving_t *serving_out,
                                      char *errstr, size_t errstr_size) {
    if (!aas_id_valid(name))
        return aas_err_set(errstr, errstr_size, AAS_ERR_UNKNOWN_MODEL,
                           "invalid model name");
    int want_latest = !version || strcmp(version, "latest") == 0;
    int64_t v = 0;
    if (!want_latest) {
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
    const aas_mc_name_t *rec;
    aas_err_t err = aas_mc_name(c, st, name, want_latest, &rec, errstr,
                                errstr_size);
    if (err) return err;
    if (want_latest) v = rec->latest;
    if (rec->opts_err)
        return aas_err_set(errstr, errstr_size, rec->opts_err, "%s",
                           rec->opts_why);
    aas_model_serving_t serving = rec->serving;

    aas_mc_entry_t *e = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->entries[i].version == v && strcmp(c->entries[i].name, name) == 0) {
            if (c->entries[i].precision == serving.precision) {
                e = &c->entries[i];
            } else {
                /* Reload from the blob rather than convert in place: the
                 * new precision starts from the stored f32 weights. */
                aas_mc_evict(c, i, "precision changed");
            }
            break;
        }
    if (e) {
        /* A model grows as it meets new batch sizes (cached primitives
         * and buffers): keep the budget honest. */
        size_t now_bytes = e->model ? aas_model_footprint(e->model) : 0;
        c->bytes = c->bytes - e->bytes + now_bytes;
        e->bytes = now_bytes;
    } else if ((err = aas_mc_load(c, st, name, v, serving.precision, &e,
                                  errstr, errstr_size))) {
        return err;
    }
    e->last_use = ++c->clock;
    if (!e->model)
        return aas_err_set(errstr, errstr_size, e->fail_err, "%s", e->fail_why);
    *model_out = e->model;
    *version_out = e->version;
    if (serving_out) *serving_out = serving;
    return AAS_ERR_OK;
}

aas_err_t aas_model_cache_get(aas_model_cache_t *c, aas_store_t *st,
                              const char *name, const char *version,
                              aas_model_t **model_out, int64_t *version_out,
                              char *errstr, size_t errstr_size) {
    return aas_model_cache_get_serving(c, st, name, version, model_out,
                                       version_out, NULL, errstr, errstr_size);
}
