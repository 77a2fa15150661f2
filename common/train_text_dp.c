/* train_text_dp.c - a text classifier's (or streamed numeric rows')
 * data-parallel engine; see train_text.h and train_dp.h.
 *
 * Every shard reads all the rows once (the counting pass of aas_text_train:
 * classes, IDF weights, the cache), so each worker builds the same
 * featurizer and the same row order without exchanging them; shard s then
 * trains on the cached training rows s, s + N, s + 2N...  The state is
 * the linear head's weights and AdaGrad sums (two arrays: w then b, gw
 * then gb) or the MLP's train_dp.h state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_dp.h"
#include "train_text.h"
#include "train_text_int.h"

typedef struct {
    aas_text_train_params_t p; /* the job's, with the shard learning rate */
    aas_tt_t t;
    int64_t *rows[AAS_TRAIN_DP_MAX_SHARDS], nrows[AAS_TRAIN_DP_MAX_SHARDS];
    int64_t *order;            /* a round's shuffle */
    size_t n_floats;           /* linear: per array */
} dp_text_t;

static void dp_text_err(dp_text_t *d, char *errstr, size_t errstr_size) {
    d->t.errstr = errstr;
    d->t.errstr_size = errstr_size;
}

static aas_err_t text_get(void *impl, void *buf, size_t size, char *errstr,
                          size_t errstr_size) {
    dp_text_t *d = impl;
    if (d->t.net) return aas_train_dp_state_get(d->t.net, buf, size, errstr, errstr_size);
    const float *arr[2] = {d->t.w, d->t.gw};
    return aas_train_dp_pack(arr, 2, d->n_floats, 0, buf, size, errstr, errstr_size);
}

static aas_err_t text_set(void *impl, const void *buf, size_t size, char *errstr,
                          size_t errstr_size) {
    dp_text_t *d = impl;
    if (d->t.net) return aas_train_dp_state_set(d->t.net, buf, size, errstr, errstr_size);
    float *arr[2] = {d->t.w, d->t.gw};
    int64_t steps;
    return aas_train_dp_unpack(arr, 2, d->n_floats, &steps, buf, size, errstr, errstr_size);
}

static aas_err_t text_round(void *impl, int32_t round, int shard, double *loss_sum,
                            char *errstr, size_t errstr_size) {
    dp_text_t *d = impl;
    aas_tt_t *t = &d->t;
    dp_text_err(d, errstr, errstr_size);
    /* From the shard's own order every round, shuffled by a stream of
     * (seed, round, shard): a pure function of the state it starts from. */
    int64_t n = d->nrows[shard];
    memcpy(d->order, d->rows[shard], (size_t)n * sizeof(int64_t));
    uint64_t rng = d->p.seed ^ 0x2545f4914f6cdd1dull ^ ((uint64_t)(round + 1) << 20) ^
                   (uint64_t)(shard + 1);
    aas_tt_shuffle(d->order, (size_t)n, &rng);
    t->loss_sum = 0;
    t->loss_n = 0;
    aas_err_t err = aas_tt_train_rows(t, &t->train, d->order, (size_t)n);
    if (!err && t->net) err = aas_tt_mlp_flush(t);
    if (!err) *loss_sum += t->loss_sum;
    return err;
}

static aas_err_t text_validate(void *impl, double *loss, double *accuracy, char *errstr,
                               size_t errstr_size) {
    dp_text_t *d = impl;
    dp_text_err(d, errstr, errstr_size);
    if (d->t.n_val == 0) {
        *loss = *accuracy = NAN;
        return AAS_ERR_OK;
    }
    return aas_tt_evaluate(&d->t, loss, accuracy);
}

static aas_err_t text_export(void *impl, void **blob, size_t *len, char *errstr,
                             size_t errstr_size) {
    dp_text_t *d = impl;
    dp_text_err(d, errstr, errstr_size);
    aas_train_result_t res;
    memset(&res, 0, sizeof(res));
    aas_err_t err = aas_tt_export(&d->t, &res);
    if (!err) {
        *blob = res.blob;
        *len = res.blob_len;
    }
    return err;
}

static void text_destroy(void *impl) {
    dp_text_t *d = impl;
    if (!d) return;
    for (int i = 0; i < AAS_TRAIN_DP_MAX_SHARDS; i++) free(d->rows[i]);
    free(d->order);
    aas_tt_free(&d->t);
    free(d);
}

static const aas_train_dp_ops_t dp_text_ops = {text_get, text_set, text_round, text_validate,
                                               text_export, text_destroy};

aas_err_t aas_text_dp_new(const aas_text_train_params_t *p, const aas_text_reader_t *r,
                          int n_shards, int only, aas_train_dp_engine_t **out, char *errstr,
                          size_t errstr_size) {
    *out = NULL;
    if (!p || !r || n_shards < 1 || n_shards > AAS_TRAIN_DP_MAX_SHARDS || only >= n_shards)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_text_dp_new: bad argument");
    dp_text_t *d = calloc(1, sizeof(*d));
    if (!d) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    d->p = *p;
    /* The linear head's AdaGrad rate is not scaled with N (the MLP head's
     * is, as train_dp.h says): AdaGrad's per-weight step adapts by itself,
     * and on zh-reviews the unscaled rate gave N = 2, 4, 8 within +0.3
     * points of one worker where N x the rate lost 0.7 at N = 4
     * (bench_text --parallelism; docs/training.md). */
    d->t = (aas_tt_t){.p = &d->p, .r = r, .errstr = errstr, .errstr_size = errstr_size};
    aas_tt_t *t = &d->t;
    aas_err_t err = aas_tt_prepare(t);
    t->r = NULL; /* read once: every later use is of the cache */
    if (!err && !t->cached)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "parallelism needs every featurized row in memory: they are over "
                          "text_cache_mb=%zu (raise it, or train on one worker)",
                          p->cache_bytes >> 20);
    if (!err && t->n_train < n_shards)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "%lld training rows cannot make %d shards", (long long)t->n_train,
                          n_shards);
    if (!err && t->net) aas_train_dp_shard_net(t->net, n_shards);
    aas_train_dp_info_t info = {.n_shards = n_shards, .n_train = t->n_train,
                                .n_val = t->n_val};
    int64_t nt = t->n_train;
    for (int s = 0; !err && s < n_shards; s++) {
        int64_t mine = (nt - s + n_shards - 1) / n_shards;
        info.shard_rows[s] = mine;
        if (only >= 0 && s != only) continue;
        info.have[s] = 1;
        if (!(d->rows[s] = malloc((size_t)mine * sizeof(int64_t)))) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            break;
        }
        for (int64_t i = 0; i < mine; i++) d->rows[s][i] = s + i * n_shards;
        d->nrows[s] = mine;
    }
    if (!err && !(d->order = malloc((size_t)((nt + n_shards - 1) / n_shards) * sizeof(int64_t))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (err) {
        text_destroy(d);
        return err;
    }
    d->n_floats = (size_t)(t->dim * t->classes + t->classes);
    info.state_bytes = t->net ? aas_train_dp_state_bytes(t->net)
                              : aas_train_dp_packed_bytes(2, d->n_floats);
    return aas_train_dp_engine_new(&dp_text_ops, d, &info, out, errstr, errstr_size);
}
