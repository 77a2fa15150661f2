/* train_dp_engine.c - the engine handle of data-parallel training and the
 * scheme run in one process over it; see train_dp.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_dp.h"

struct aas_train_dp_engine_s {
    const aas_train_dp_ops_t *ops;
    void *impl;
    aas_train_dp_info_t info;
};

aas_err_t aas_train_dp_engine_new(const aas_train_dp_ops_t *ops, void *impl,
                                  const aas_train_dp_info_t *info,
                                  aas_train_dp_engine_t **out, char *errstr,
                                  size_t errstr_size) {
    aas_train_dp_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        ops->destroy(impl);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    e->ops = ops;
    e->impl = impl;
    e->info = *info;
    *out = e;
    return AAS_ERR_OK;
}

const aas_train_dp_info_t *aas_train_dp_engine_info(const aas_train_dp_engine_t *e) {
    return &e->info;
}

aas_err_t aas_train_dp_engine_get(aas_train_dp_engine_t *e, void *buf, char *errstr,
                                  size_t errstr_size) {
    return e->ops->get(e->impl, buf, e->info.state_bytes, errstr, errstr_size);
}

aas_err_t aas_train_dp_engine_set(aas_train_dp_engine_t *e, const void *buf, char *errstr,
                                  size_t errstr_size) {
    return e->ops->set(e->impl, buf, e->info.state_bytes, errstr, errstr_size);
}

aas_err_t aas_train_dp_engine_round(aas_train_dp_engine_t *e, const void *g, int32_t r,
                                    int shard, void *out, double *loss_sum, char *errstr,
                                    size_t errstr_size) {
    if (shard < 0 || shard >= e->info.n_shards || !e->info.have[shard] || r < 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "round %d of shard %d: not this engine's", (int)r, shard);
    aas_err_t err = aas_train_dp_engine_set(e, g, errstr, errstr_size);
    if (!err) err = e->ops->round(e->impl, r, shard, loss_sum, errstr, errstr_size);
    if (!err) err = aas_train_dp_engine_get(e, out, errstr, errstr_size);
    return err;
}

aas_err_t aas_train_dp_engine_validate(aas_train_dp_engine_t *e, double *loss,
                                       double *accuracy, char *errstr, size_t errstr_size) {
    return e->ops->validate(e->impl, loss, accuracy, errstr, errstr_size);
}

aas_err_t aas_train_dp_engine_export(aas_train_dp_engine_t *e, void **blob, size_t *len,
                                     char *errstr, size_t errstr_size) {
    return e->ops->export_blob(e->impl, blob, len, errstr, errstr_size);
}

void aas_train_dp_engine_destroy(aas_train_dp_engine_t *e) {
    if (!e) return;
    e->ops->destroy(e->impl);
    free(e);
}

static double dp_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The rounds: every shard from the global state, one after the other,
 * then the average, which the held-out rows measure. */
static aas_err_t dp_rounds(aas_train_dp_engine_t *e, int32_t epochs, aas_train_result_t *res,
                           char *errstr, size_t errstr_size) {
    const aas_train_dp_info_t *in = &e->info;
    size_t sb = in->state_bytes;
    void *st[AAS_TRAIN_DP_MAX_SHARDS] = {0};
    void *global = malloc(sb);
    aas_err_t err = global ? AAS_ERR_OK
                           : aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (int s = 0; !err && s < in->n_shards; s++)
        if (!in->have[s])
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "run in one process: the engine lacks shard %d", s);
        else if (!(st[s] = malloc(sb)))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!err) err = aas_train_dp_engine_get(e, global, errstr, errstr_size);
    res->n_val = in->n_val;
    res->n_train = in->n_train;
    double work_ms = 0;
    for (int32_t r = 0; !err && r < epochs; r++) {
        double sum = 0, t = dp_ms();
        for (int s = 0; !err && s < in->n_shards; s++)
            err = aas_train_dp_engine_round(e, global, r, s, st[s], &sum, errstr, errstr_size);
        work_ms += dp_ms() - t;
        if (!err)
            err = aas_train_dp_average((const void *const *)st, (size_t)in->n_shards, sb, global,
                                       errstr, errstr_size);
        if (!err) err = aas_train_dp_engine_set(e, global, errstr, errstr_size);
        if (!err)
            err = aas_train_dp_engine_validate(e, &res->val_loss, &res->val_accuracy, errstr,
                                               errstr_size);
        if (err) break;
        res->train_loss = sum / (double)res->n_train;
        res->curve_train_loss[r] = res->train_loss;
        res->curve_val_loss[r] = res->val_loss;
        res->curve_val_accuracy[r] = res->val_accuracy;
        res->epochs_done = r + 1;
    }
    res->samples_per_s =
        work_ms > 0 ? (double)res->n_train * res->epochs_done / (work_ms / 1e3) : 0;
    for (int s = 0; s < in->n_shards; s++) free(st[s]);
    free(global);
    return err;
}

aas_err_t aas_train_dp_run_all(aas_train_dp_engine_t *e, int32_t epochs,
                               aas_train_result_t *out, char *errstr, size_t errstr_size) {
    double t0 = dp_ms();
    aas_train_result_t res;
    memset(&res, 0, sizeof(res));
    size_t ne = (size_t)(epochs > 0 ? epochs : 1);
    aas_err_t err = AAS_ERR_OK;
    if (!(res.curve_train_loss = calloc(ne, sizeof(double))) ||
        !(res.curve_val_loss = calloc(ne, sizeof(double))) ||
        !(res.curve_val_accuracy = calloc(ne, sizeof(double))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!err) err = dp_rounds(e, epochs, &res, errstr, errstr_size);
    if (!err) err = aas_train_dp_engine_export(e, &res.blob, &res.blob_len, errstr, errstr_size);
    if (err) {
        aas_train_result_free(&res);
        return err;
    }
    res.elapsed_ms = dp_ms() - t0;
    *out = res;
    return AAS_ERR_OK;
}
