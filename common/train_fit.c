/*
 * train_fit.c - a whole training job on a network (train.c): the epoch
 * loop with shuffling, validation split, early stopping, progress and
 * cancellation; evaluation and prediction; export to the native model
 * format.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train_int.h"

/* ---- evaluation ---- */

/* Loss sum, correct count and/or probabilities over rows (idx or the
 * first rows), in chunks of the batch size. */
aas_err_t aas_train_eval(aas_train_net_t *net, const float *x,
                                const int32_t *y, const int64_t *idx,
                                int64_t rows, double *loss_sum, int64_t *correct,
                                float *probs, char *errstr, size_t errstr_size) {
    int64_t chunk = net->p.batch_size, c = net->n_classes;
    size_t last = net->n_layers - 1;
    for (int64_t off = 0; off < rows; off += chunk) {
        int64_t r = rows - off < chunk ? rows - off : chunk;
        aas_train_plan_t *pl;
        aas_err_t err = aas_train_plan_get(net, r, &pl, errstr, errstr_size);
        if (err) return err;
        if (idx) {
            aas_train_load_x(net, pl, x, idx + off);
        } else {
            aas_train_load_x(net, pl, x + off * net->dim, NULL);
        }
        if ((err = aas_train_forward(net, pl, errstr, errstr_size))) return err;
        double s = aas_train_softmax_ce(pl->z[last], idx ? y : (y ? y + off : NULL),
                                        idx ? idx + off : NULL, r, c, NULL,
                                        probs ? probs + off * c : NULL, correct);
        if (loss_sum) *loss_sum += s;
    }
    return AAS_ERR_OK;
}

aas_err_t aas_train_net_predict(aas_train_net_t *net, const float *x,
                                int64_t rows, float *probs, char *errstr,
                                size_t errstr_size) {
    if (!net || !probs)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_predict: NULL argument");
    aas_err_t err = aas_train_check_rows(net, x, NULL, rows, AAS_TRAIN_MAX_ROWS,
                                         errstr, errstr_size);
    if (err) return err;
    return aas_train_eval(net, x, NULL, NULL, rows, NULL, NULL, probs, errstr,
                          errstr_size);
}

aas_err_t aas_train_net_evaluate(aas_train_net_t *net, const float *x,
                                 const int32_t *y, int64_t rows, double *loss,
                                 double *accuracy, char *errstr,
                                 size_t errstr_size) {
    if (!net || !y || !loss || !accuracy)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_evaluate: NULL argument");
    aas_err_t err = aas_train_check_rows(net, x, y, rows, AAS_TRAIN_MAX_ROWS,
                                         errstr, errstr_size);
    if (err) return err;
    double sum = 0;
    int64_t correct = 0;
    if ((err = aas_train_eval(net, x, y, NULL, rows, &sum, &correct, NULL, errstr,
                              errstr_size)))
        return err;
    *loss = sum / (double)rows;
    *accuracy = (double)correct / (double)rows;
    return AAS_ERR_OK;
}

/* ---- export ---- */

aas_err_t aas_train_net_export(const aas_train_net_t *net, void **blob,
                               size_t *len, char *errstr, size_t errstr_size) {
    if (!net || !blob || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_export: NULL argument");
    aas_mlp_layer_t layers[AAS_TRAIN_L];
    float *w0 = NULL;
    for (size_t i = 0; i < net->n_layers; i++) {
        int last = i + 1 == net->n_layers;
        layers[i] = (aas_mlp_layer_t){net->in[i], net->out[i],
                                      last ? AAS_ACT_SOFTMAX : net->act[i],
                                      net->param + net->w_off[i],
                                      net->param + net->b_off[i]};
    }
    if (net->p.scale != 1.0) { /* served models take raw inputs */
        int64_t nw = net->in[0] * net->out[0];
        float s = (float)net->p.scale;
        if (!(w0 = malloc((size_t)nw * sizeof(float))))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "training: out of memory for the export");
        for (int64_t k = 0; k < nw; k++) w0[k] = layers[0].weights[k] * s;
        layers[0].weights = w0;
    }
    aas_err_t err = aas_mlp_serialize(layers, net->n_layers,
                                      (const char *const *)net->labels,
                                      (size_t)net->n_classes, blob, len, errstr,
                                      errstr_size);
    free(w0);
    return err;
}

/* ---- a whole job ---- */

void aas_train_result_free(aas_train_result_t *r) {
    if (!r) return;
    free(r->blob);
    free(r->curve_train_loss);
    free(r->curve_val_loss);
    free(r->curve_val_accuracy);
    memset(r, 0, sizeof(*r));
}

static double aas_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

aas_err_t aas_train_check_data(const aas_train_net_t *net, const float *x,
                                      const int32_t *y, int64_t n, char *errstr,
                                      size_t errstr_size) {
    if (n < 1 || n > AAS_TRAIN_MAX_ROWS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %lld rows, must be 1..%lld", (long long)n,
                           (long long)AAS_TRAIN_MAX_ROWS);
    int64_t dim = net->dim;
    double scale = net->p.scale;
    for (int64_t r = 0; r < n; r++) {
        if (y[r] < 0 || y[r] >= net->n_classes)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "training: row %lld has class %d, must be 0..%d",
                               (long long)r, (int)y[r], (int)net->n_classes - 1);
        const float *xr = x + r * dim;
        for (int64_t k = 0; k < dim; k++)
            if (!isfinite(xr[k]) || fabs((double)xr[k] * scale) > FLT_MAX)
                return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                                   "training: row %lld feature %lld is %s",
                                   (long long)r, (long long)k,
                                   isfinite(xr[k]) ? "too large for the scale"
                                                   : "NaN or Inf");
    }
    return AAS_ERR_OK;
}

/* Metrics of the current weights on the validation rows. */
static aas_err_t aas_train_validate(aas_train_net_t *net, const float *x,
                                    const int32_t *y, const int64_t *val_idx,
                                    aas_train_result_t *res, char *errstr,
                                    size_t errstr_size) {
    if (res->n_val == 0) return AAS_ERR_OK;
    double sum = 0;
    int64_t correct = 0;
    aas_err_t err = aas_train_eval(net, x, y, val_idx, res->n_val, &sum, &correct,
                                   NULL, errstr, errstr_size);
    if (err) return err;
    res->val_loss = sum / (double)res->n_val;
    res->val_accuracy = (double)correct / (double)res->n_val;
    return AAS_ERR_OK;
}

/* The epochs.  idx: the split (training rows first); res: curves allocated. */
static aas_err_t aas_train_loop(aas_train_net_t *net, int64_t *idx,
                                const float *x, const int32_t *y,
                                aas_train_progress_cb *cb, void *opaque,
                                double t0, aas_train_result_t *res,
                                char *errstr, size_t errstr_size) {
    const aas_train_params_t *p = &net->p;
    int64_t n_train = res->n_train;
    int64_t bs = p->batch_size < n_train ? p->batch_size : n_train;
    int64_t batches = (n_train + bs - 1) / bs;
    double work_ms = 0, samples = 0, last_cb = t0;
    int mid_epoch_stop = 0;
    aas_train_rng_t shuf;
    aas_err_t err;
    aas_train_rng_seed(&shuf, p->seed, AAS_TRAIN_RNG_SHUFFLE);
    res->train_loss = res->val_loss = res->val_accuracy = NAN;

    for (int32_t epoch = 1; epoch <= p->epochs && !res->cancelled; epoch++) {
        aas_train_rng_shuffle(&shuf, idx, n_train);
        double sum = 0;
        int64_t seen = 0;
        for (int64_t b = 0; b < batches; b++) {
            /* The last batch is partial when bs does not divide n_train: it
             * runs on its own plan, nothing is dropped. */
            int64_t off = b * bs, rows = n_train - off < bs ? n_train - off : bs;
            double loss, tb = aas_now_ms();
            if ((err = aas_train_batch(net, x, y, idx + off, rows, NULL, &loss, errstr,
                                       errstr_size)))
                return err;
            if (!isfinite(loss))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                                   "training diverged in epoch %d batch %lld: "
                                   "loss is %g (try a lower learning_rate)",
                                   (int)epoch, (long long)b + 1, loss);
            if ((err = aas_train_net_step(net, errstr, errstr_size))) return err;
            double now = aas_now_ms();
            work_ms += now - tb;
            samples += (double)rows;
            sum += loss * (double)rows;
            seen += rows;
            if (cb && b + 1 < batches && now - last_cb >= AAS_TRAIN_PROGRESS_MS) {
                aas_train_progress_t pr = {0, epoch - 1, p->epochs, b + 1, batches,
                                           sum / (double)seen, NAN, NAN, now - t0};
                last_cb = now;
                if (cb(opaque, &pr)) {
                    res->cancelled = 1;
                    mid_epoch_stop = 1;
                    res->train_loss = sum / (double)seen;
                    break;
                }
            }
        }
        if (mid_epoch_stop) break;
        res->train_loss = sum / (double)seen;
        if ((err = aas_train_validate(net, x, y, idx + n_train, res, errstr,
                                      errstr_size)))
            return err;
        res->curve_train_loss[epoch - 1] = res->train_loss;
        res->curve_val_loss[epoch - 1] = res->val_loss;
        res->curve_val_accuracy[epoch - 1] = res->val_accuracy;
        res->epochs_done = epoch;
        if (cb) {
            double now = aas_now_ms();
            aas_train_progress_t pr = {1, epoch, p->epochs, batches, batches,
                                       res->train_loss, res->val_loss,
                                       res->val_accuracy, now - t0};
            last_cb = now;
            if (cb(opaque, &pr)) res->cancelled = 1;
        }
    }
    /* After a mid-epoch stop, report the weights that are exported. */
    if (mid_epoch_stop &&
        (err = aas_train_validate(net, x, y, idx + n_train, res, errstr, errstr_size)))
        return err;
    res->samples_per_s = work_ms > 0 ? samples / (work_ms / 1e3) : 0;
    return AAS_ERR_OK;
}

aas_err_t aas_train_fit(aas_train_net_t *net, const float *x, const int32_t *y,
                        int64_t n, aas_train_progress_cb *cb, void *opaque,
                        aas_train_result_t *out, char *errstr,
                        size_t errstr_size) {
    double t0 = aas_now_ms();
    aas_err_t err;
    if (!net || !x || !y || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_fit: NULL argument");
    if ((err = aas_train_check_data(net, x, y, n, errstr, errstr_size))) return err;
    const aas_train_params_t *p = &net->p;
    int64_t n_val = (int64_t)floor(p->validation_fraction * (double)n);
    int64_t n_train = n - n_val;
    if (n_train < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %lld rows leave none to train on after "
                           "validation_fraction %g",
                           (long long)n, p->validation_fraction);

    aas_train_result_t res;
    memset(&res, 0, sizeof(res));
    res.n_train = n_train;
    res.n_val = n_val;
    size_t ne = (size_t)p->epochs;
    int64_t *idx = malloc((size_t)n * sizeof(int64_t));
    if (!idx || !(res.curve_train_loss = calloc(ne, sizeof(double))) ||
        !(res.curve_val_loss = calloc(ne, sizeof(double))) ||
        !(res.curve_val_accuracy = calloc(ne, sizeof(double)))) {
        free(idx);
        aas_train_result_free(&res);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for %lld rows", (long long)n);
    }
    /* The split: one seeded shuffle of every row, the tail validates. */
    aas_train_rng_t split;
    aas_train_rng_seed(&split, p->seed, AAS_TRAIN_RNG_SPLIT);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    aas_train_rng_shuffle(&split, idx, n);

    int old_threads = omp_get_max_threads();
    if (p->threads > 0) omp_set_num_threads(p->threads);
    err = aas_train_loop(net, idx, x, y, cb, opaque, t0, &res, errstr, errstr_size);
    if (p->threads > 0) omp_set_num_threads(old_threads);
    free(idx);
    if (!err)
        err = aas_train_net_export(net, &res.blob, &res.blob_len, errstr, errstr_size);
    if (err) {
        aas_train_result_free(&res);
        return err;
    }
    res.elapsed_ms = aas_now_ms() - t0;
    *out = res;
    return AAS_ERR_OK;
}

aas_err_t aas_train_run(const aas_train_params_t *p, const float *x,
                        const int32_t *y, int64_t n, int64_t dim,
                        int32_t n_classes, aas_train_progress_cb *cb,
                        void *opaque, aas_train_result_t *out, char *errstr,
                        size_t errstr_size) {
    aas_train_net_t *net = NULL;
    if (!p || !x || !y || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_run: NULL argument");
    /* Primitives are created lazily, inside aas_train_fit()'s thread
     * setting. */
    aas_err_t err = aas_train_net_new(p, dim, n_classes, &net, errstr, errstr_size);
    if (err) return err;
    err = aas_train_fit(net, x, y, n, cb, opaque, out, errstr, errstr_size);
    aas_train_net_destroy(net);
    return err;
}

