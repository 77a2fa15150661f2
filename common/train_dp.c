/* train_dp.c - data-parallel training without the network; see train_dp.h. */
#include "train_dp.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train_int.h"

/* A state: this header, then param, mom1 and (adam) mom2, n_floats each,
 * as the host's floats (a state never leaves the fleet's machines, which
 * are all little-endian x86-64: checked by the magic's byte order). */
#define AAS_TRAIN_DP_MAGIC 0x31504453414100ULL /* "\0AASDP1" little-endian */
typedef struct {
    uint64_t magic;
    uint64_t n_floats;
    int64_t steps;
    uint32_t arrays;   /* 2 (sgd) or 3 (adam) */
    uint32_t pad;
} aas_train_dp_hdr_t;

static uint32_t dp_arrays(const aas_train_net_t *net) {
    return net->p.optimizer == AAS_TRAIN_ADAM ? 3u : 2u;
}

void aas_train_dp_shard_net(aas_train_net_t *net, int n_shards) {
    if (n_shards > 1) net->lr *= (double)n_shards;
}

size_t aas_train_dp_packed_bytes(uint32_t n_arrays, size_t n_floats) {
    return sizeof(aas_train_dp_hdr_t) + (size_t)n_arrays * n_floats * sizeof(float);
}

size_t aas_train_dp_state_bytes(const aas_train_net_t *net) {
    return aas_train_dp_packed_bytes(dp_arrays(net), net->n_floats);
}

aas_err_t aas_train_dp_pack(const float *const *arrays, uint32_t n_arrays, size_t n_floats,
                            int64_t steps, void *buf, size_t size, char *errstr,
                            size_t errstr_size) {
    if (n_arrays < 1 || n_arrays > 3 || size < aas_train_dp_packed_bytes(n_arrays, n_floats))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "state buffer too small");
    aas_train_dp_hdr_t h = {AAS_TRAIN_DP_MAGIC, n_floats, steps, n_arrays, 0};
    memcpy(buf, &h, sizeof(h));
    float *f = (float *)((char *)buf + sizeof(h));
    for (uint32_t a = 0; a < n_arrays; a++)
        memcpy(f + a * n_floats, arrays[a], n_floats * sizeof(float));
    return AAS_ERR_OK;
}

aas_err_t aas_train_dp_state_get(const aas_train_net_t *net, void *buf, size_t size,
                                 char *errstr, size_t errstr_size) {
    const float *arr[3] = {net->param, net->mom1, net->mom2};
    return aas_train_dp_pack(arr, dp_arrays(net), net->n_floats, net->steps, buf, size, errstr,
                             errstr_size);
}

static aas_err_t dp_check(const void *buf, size_t size, size_t n_floats, uint32_t arrays,
                          char *errstr, size_t errstr_size) {
    aas_train_dp_hdr_t h;
    if (size < sizeof(h))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "training state: %zu bytes",
                           size);
    memcpy(&h, buf, sizeof(h));
    if (h.magic != AAS_TRAIN_DP_MAGIC || h.n_floats != n_floats || h.arrays != arrays ||
        size != sizeof(h) + (size_t)arrays * n_floats * sizeof(float))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                           "training state of another shape (%zu bytes; want %zu)", size,
                           sizeof(h) + (size_t)arrays * n_floats * sizeof(float));
    return AAS_ERR_OK;
}

aas_err_t aas_train_dp_unpack(float *const *arrays, uint32_t n_arrays, size_t n_floats,
                              int64_t *steps, const void *buf, size_t size, char *errstr,
                              size_t errstr_size) {
    aas_err_t err = dp_check(buf, size, n_floats, n_arrays, errstr, errstr_size);
    if (err) return err;
    aas_train_dp_hdr_t h;
    memcpy(&h, buf, sizeof(h));
    const float *f = (const float *)((const char *)buf + sizeof(h));
    for (uint32_t a = 0; a < h.arrays; a++)
        memcpy(arrays[a], f + a * n_floats, n_floats * sizeof(float));
    *steps = h.steps;
    return AAS_ERR_OK;
}

aas_err_t aas_train_dp_state_set(aas_train_net_t *net, const void *buf, size_t size,
                                 char *errstr, size_t errstr_size) {
    float *arr[3] = {net->param, net->mom1, net->mom2};
    return aas_train_dp_unpack(arr, dp_arrays(net), net->n_floats, &net->steps, buf, size,
                               errstr, errstr_size);
}

aas_err_t aas_train_dp_average(const void *const *states, size_t n, size_t size, void *out,
                               char *errstr, size_t errstr_size) {
    if (n == 0 || n > AAS_TRAIN_DP_MAX_SHARDS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "average of %zu states", n);
    aas_train_dp_hdr_t h0, h;
    if (size < sizeof(h0))
        return aas_err_set(errstr, errstr_size, AAS_ERR_DECODE, "training state: %zu bytes",
                           size);
    memcpy(&h0, states[0], sizeof(h0));
    aas_err_t err;
    for (size_t i = 0; i < n; i++)
        if ((err = dp_check(states[i], size, h0.n_floats, h0.arrays, errstr, errstr_size)))
            return err;
    int64_t steps = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(&h, states[i], sizeof(h));
        if (h.steps > steps) steps = h.steps;
    }
    size_t nf = (size_t)h0.n_floats * h0.arrays;
    float *o = (float *)((char *)out + sizeof(h0));
    /* Summed in shard order, in float: the same bytes on every machine of
     * the fleet for the same states. */
    const float inv = 1.0f / (float)n;
    for (size_t k = 0; k < nf; k++) {
        float s = 0.0f;
        for (size_t i = 0; i < n; i++)
            s += ((const float *)((const char *)states[i] + sizeof(h0)))[k];
        o[k] = s * inv;
    }
    h0.steps = steps;
    memcpy(out, &h0, sizeof(h0));
    return AAS_ERR_OK;
}

aas_err_t aas_train_dp_shard_rows(const aas_train_params_t *p, int64_t n, int shard,
                                  int n_shards, int64_t **rows, int64_t *n_rows,
                                  int64_t **val_rows, int64_t *n_val, char *errstr,
                                  size_t errstr_size) {
    if (n_shards < 1 || n_shards > AAS_TRAIN_DP_MAX_SHARDS || shard < 0 || shard >= n_shards)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "shard %d of %d (at most %d shards)", shard, n_shards,
                           AAS_TRAIN_DP_MAX_SHARDS);
    if (n < 1 || n > AAS_TRAIN_MAX_ROWS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "training: %lld rows",
                           (long long)n);
    int64_t nv = (int64_t)floor(p->validation_fraction * (double)n), nt = n - nv;
    if (nt < n_shards)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%lld training rows cannot make %d shards", (long long)nt,
                           n_shards);
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    int64_t mine = (nt - shard + n_shards - 1) / n_shards;
    int64_t *r = malloc((size_t)mine * sizeof(int64_t));
    int64_t *v = val_rows && nv ? malloc((size_t)nv * sizeof(int64_t)) : NULL;
    if (!idx || !r || (val_rows && nv && !v)) {
        free(idx);
        free(r);
        free(v);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory for %lld rows",
                           (long long)n);
    }
    /* The split of aas_train_fit: one seeded shuffle, the tail validates. */
    aas_train_rng_t split;
    aas_train_rng_seed(&split, p->seed, AAS_TRAIN_RNG_SPLIT);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    aas_train_rng_shuffle(&split, idx, n);
    int64_t k = 0;
    for (int64_t i = shard; i < nt; i += n_shards) r[k++] = idx[i];
    if (v) memcpy(v, idx + nt, (size_t)nv * sizeof(int64_t));
    free(idx);
    *rows = r;
    *n_rows = k;
    if (val_rows) *val_rows = v;
    if (n_val) *n_val = nv;
    return AAS_ERR_OK;
}

aas_err_t aas_train_dp_round(aas_train_net_t *net, const float *x, const int32_t *y,
                             const int64_t *shard_rows, int64_t n_rows, int32_t round, int shard,
                             double *loss_sum, char *errstr, size_t errstr_size) {
    if (!net || !x || !y || !shard_rows || n_rows < 1 || round < 0 || shard < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_train_dp_round: bad argument");
    /* Shuffled from the shard's own order every round, so the round does
     * not depend on the rounds this process ran before. */
    int64_t *rows = malloc((size_t)n_rows * sizeof(int64_t));
    if (!rows) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(rows, shard_rows, (size_t)n_rows * sizeof(int64_t));
    /* A stream of its own per (round, shard), apart from init, split and
     * the one-process epochs' shuffles (streams 1..3). */
    aas_train_rng_t shuf;
    aas_train_rng_seed(&shuf, net->p.seed, 0x100 + ((uint64_t)round << 8) + (uint64_t)shard);
    aas_train_rng_shuffle(&shuf, rows, n_rows);
    int64_t bs = net->p.batch_size < n_rows ? net->p.batch_size : n_rows;
    double sum = 0;
    aas_err_t err;
    for (int64_t off = 0; off < n_rows; off += bs) {
        int64_t r = n_rows - off < bs ? n_rows - off : bs;
        double loss;
        if ((err = aas_train_batch(net, x, y, rows + off, r, NULL, &loss, errstr, errstr_size)))
            break;
        if (!isfinite(loss)) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                              "training diverged in round %d (shard %d): loss is %g (try a "
                              "lower learning_rate)", (int)round + 1, shard, loss);
            break;
        }
        if ((err = aas_train_net_step(net, errstr, errstr_size))) break;
        sum += loss * (double)r;
    }
    free(rows);
    if (!err) *loss_sum = sum;
    return err;
}

aas_err_t aas_train_dp_validate(aas_train_net_t *net, const float *x, const int32_t *y,
                                const int64_t *idx, int64_t n, double *loss,
                                double *accuracy, char *errstr, size_t errstr_size) {
    if (n == 0) {
        *loss = *accuracy = NAN;
        return AAS_ERR_OK;
    }
    double sum = 0;
    int64_t correct = 0;
    aas_err_t err = aas_train_eval(net, x, y, idx, n, &sum, &correct, NULL, errstr, errstr_size);
    if (err) return err;
    *loss = sum / (double)n;
    *accuracy = (double)correct / (double)n;
    return AAS_ERR_OK;
}

/* ---- the dense MLP's engine ---- */

typedef struct {
    aas_train_net_t *net;
    const float *x;
    const int32_t *y;
    int64_t *rows[AAS_TRAIN_DP_MAX_SHARDS], nrows[AAS_TRAIN_DP_MAX_SHARDS];
    int64_t *val, nval;
    size_t sb;
} dp_dense_t;

static aas_err_t dense_get(void *impl, void *buf, size_t size, char *errstr,
                           size_t errstr_size) {
    return aas_train_dp_state_get(((dp_dense_t *)impl)->net, buf, size, errstr, errstr_size);
}

static aas_err_t dense_set(void *impl, const void *buf, size_t size, char *errstr,
                           size_t errstr_size) {
    return aas_train_dp_state_set(((dp_dense_t *)impl)->net, buf, size, errstr, errstr_size);
}

static aas_err_t dense_round(void *impl, int32_t round, int shard, double *loss_sum,
                             char *errstr, size_t errstr_size) {
    dp_dense_t *d = impl;
    double ls = 0;
    aas_err_t err = aas_train_dp_round(d->net, d->x, d->y, d->rows[shard], d->nrows[shard],
                                       round, shard, &ls, errstr, errstr_size);
    if (!err) *loss_sum += ls;
    return err;
}

static aas_err_t dense_validate(void *impl, double *loss, double *accuracy, char *errstr,
                                size_t errstr_size) {
    dp_dense_t *d = impl;
    return aas_train_dp_validate(d->net, d->x, d->y, d->val, d->nval, loss, accuracy, errstr,
                                 errstr_size);
}

static aas_err_t dense_export(void *impl, void **blob, size_t *len, char *errstr,
                              size_t errstr_size) {
    return aas_train_net_export(((dp_dense_t *)impl)->net, blob, len, errstr, errstr_size);
}

static void dense_destroy(void *impl) {
    dp_dense_t *d = impl;
    if (!d) return;
    for (int i = 0; i < AAS_TRAIN_DP_MAX_SHARDS; i++) free(d->rows[i]);
    free(d->val);
    aas_train_net_destroy(d->net);
    free(d);
}

static const aas_train_dp_ops_t dp_dense_ops = {dense_get, dense_set, dense_round,
                                                dense_validate, dense_export, dense_destroy};

aas_err_t aas_train_dp_dense_new(const aas_train_params_t *p, const float *x, const int32_t *y,
                                 int64_t n, int64_t dim, int32_t n_classes, int n_shards,
                                 int only, aas_train_dp_engine_t **out, char *errstr,
                                 size_t errstr_size) {
    *out = NULL;
    if (!p || !x || !y || n_shards < 1 || n_shards > AAS_TRAIN_DP_MAX_SHARDS ||
        only >= n_shards)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_dp_dense_new: bad argument");
    dp_dense_t *d = calloc(1, sizeof(*d));
    if (!d) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    d->x = x;
    d->y = y;
    aas_train_dp_info_t info = {.n_shards = n_shards};
    aas_err_t err = aas_train_net_new(p, dim, n_classes, &d->net, errstr, errstr_size);
    if (!err) err = aas_train_check_data(d->net, x, y, n, errstr, errstr_size);
    if (!err) aas_train_dp_shard_net(d->net, n_shards);
    for (int i = 0; !err && i < n_shards; i++) {
        if (only >= 0 && i != only && i != 0) continue;
        /* Shard 0's call also deals the validation rows (every engine
         * validates: a shard's own check is cheap). */
        err = aas_train_dp_shard_rows(p, n, i, n_shards, &d->rows[i], &d->nrows[i],
                                      i == 0 ? &d->val : NULL, i == 0 ? &d->nval : NULL,
                                      errstr, errstr_size);
        info.shard_rows[i] = d->nrows[i];
        info.have[i] = only < 0 || i == only;
    }
    if (err) {
        dense_destroy(d);
        return err;
    }
    info.state_bytes = aas_train_dp_state_bytes(d->net);
    info.n_val = d->nval;
    info.n_train = n - d->nval;
    return aas_train_dp_engine_new(&dp_dense_ops, d, &info, out, errstr, errstr_size);
}

aas_err_t aas_train_dp_run(const aas_train_params_t *p, const float *x, const int32_t *y,
                           int64_t n, int64_t dim, int32_t n_classes, int n_shards,
                           aas_train_result_t *out, char *errstr, size_t errstr_size) {
    if (!p || !x || !y || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_train_dp_run: NULL argument");
    aas_train_dp_engine_t *e = NULL;
    int old = omp_get_max_threads();
    if (p->threads > 0) omp_set_num_threads(p->threads);
    aas_err_t err = aas_train_dp_dense_new(p, x, y, n, dim, n_classes, n_shards, -1, &e, errstr,
                                           errstr_size);
    if (!err) err = aas_train_dp_run_all(e, p->epochs, out, errstr, errstr_size);
    if (p->threads > 0) omp_set_num_threads(old);
    aas_train_dp_engine_destroy(e);
    return err;
}
