/*
 * train_pass.c - one pass of a training network over a batch: scaled
 * input rows into the plan, the forward primitives, log-softmax
 * cross-entropy with its gradient (sequential C, in double), the backward
 * primitives down to the weight gradients and optionally to the inputs.
 * It builds no primitive (train_plan.c) and updates no parameter
 * (train_step.c).
 */
#include <dnnl.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "train.h"
#include "train_int.h"

#include "dnn.h"

/* Rows of x (idx[r] or r) into the plan's input, times scale. */
void aas_train_load_x(const aas_train_net_t *net, aas_train_plan_t *pl,
                             const float *x, const int64_t *idx) {
    int64_t dim = net->dim;
    float s = (float)net->p.scale;
    for (int64_t r = 0; r < pl->rows; r++) {
        const float *src = x + (idx ? idx[r] : r) * dim;
        float *dst = pl->x + r * dim;
        if (s == 1.0f) {
            memcpy(dst, src, (size_t)dim * sizeof(float));
        } else {
            for (int64_t k = 0; k < dim; k++) dst[k] = src[k] * s;
        }
    }
}

static aas_err_t aas_train_exec(aas_train_net_t *net, dnnl_primitive_t prim,
                                int nargs, const dnnl_exec_arg_t *args,
                                char *errstr, size_t errstr_size) {
    return AAS_DNN_CHECK(dnnl_primitive_execute(prim, net->stream, nargs, args));
}

/* Forward through every layer; logits in pl->z[last] after the wait. */
aas_err_t aas_train_forward(aas_train_net_t *net, aas_train_plan_t *pl,
                                   char *errstr, size_t errstr_size) {
    aas_err_t err;
    for (size_t i = 0; i < net->n_layers; i++) {
        dnnl_exec_arg_t ip[4] = {{DNNL_ARG_SRC, i ? pl->m_a[i - 1] : pl->m_x},
                                 {DNNL_ARG_WEIGHTS, net->m_w[i]},
                                 {DNNL_ARG_BIAS, net->m_b[i]},
                                 {DNNL_ARG_DST, pl->m_z[i]}};
        if ((err = aas_train_exec(net, pl->ip_fwd[i], 4, ip, errstr, errstr_size)))
            return err;
        if (pl->elt_fwd[i]) {
            dnnl_exec_arg_t el[3] = {{DNNL_ARG_SRC, pl->m_z[i]},
                                     {DNNL_ARG_DST, pl->m_a[i]},
                                     {DNNL_ARG_WORKSPACE, pl->m_ws[i]}};
            if ((err = aas_train_exec(net, pl->elt_fwd[i], pl->m_ws[i] ? 3 : 2, el,
                                      errstr, errstr_size)))
                return err;
        }
    }
    return AAS_DNN_CHECK(dnnl_stream_wait(net->stream));
}

/*
 * Softmax cross-entropy on rows x c logits z, in double, stable
 * (log-sum-exp around the row maximum).  Optional outputs: dz = (p -
 * onehot) / rows (the gradient of the mean), probs, count of rows whose
 * argmax (first maximum) is y.  Returns the summed (not mean) loss.
 */
double aas_train_softmax_ce(const float *z, const int32_t *y,
                                   const int64_t *idx, int64_t rows, int64_t c,
                                   float *dz, float *probs, int64_t *correct) {
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * c;
        int64_t arg = 0;
        for (int64_t k = 1; k < c; k++)
            if (zr[k] > zr[arg]) arg = k;
        double mx = zr[arg], sum = 0;
        for (int64_t k = 0; k < c; k++) sum += exp((double)zr[k] - mx);
        double lse = mx + log(sum);
        if (probs)
            for (int64_t k = 0; k < c; k++)
                probs[r * c + k] = (float)exp((double)zr[k] - lse);
        if (!y) continue;
        int32_t t = y[idx ? idx[r] : r];
        total += lse - (double)zr[t];
        if (correct && arg == t) (*correct)++;
        if (dz)
            for (int64_t k = 0; k < c; k++)
                dz[r * c + k] =
                    (float)((exp((double)zr[k] - lse) - (k == t)) / (double)rows);
    }
    return total;
}

/* Backward from pl->dz[last] to every weight/bias gradient, and to dx
 * (rows x dim, w.r.t. raw inputs) if non-NULL. */
static aas_err_t aas_train_backward(aas_train_net_t *net, aas_train_plan_t *pl,
                                    float *dx, char *errstr, size_t errstr_size) {
    aas_err_t err;
    for (size_t i = net->n_layers; i-- > 0;) {
        dnnl_exec_arg_t bw[4] = {{DNNL_ARG_SRC, i ? pl->m_a[i - 1] : pl->m_x},
                                 {DNNL_ARG_DIFF_DST, pl->m_dz[i]},
                                 {DNNL_ARG_DIFF_WEIGHTS, net->m_dw[i]},
                                 {DNNL_ARG_DIFF_BIAS, net->m_db[i]}};
        if ((err = aas_train_exec(net, pl->ip_bwd_w[i], 4, bw, errstr, errstr_size)))
            return err;
        if (i == 0 && !dx) break;
        if (i == 0 &&
            (err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(pl->m_dx, dx))))
            return err;
        dnnl_exec_arg_t bd[3] = {{DNNL_ARG_DIFF_DST, pl->m_dz[i]},
                                 {DNNL_ARG_WEIGHTS, net->m_w[i]},
                                 {DNNL_ARG_DIFF_SRC, i ? pl->m_da[i - 1] : pl->m_dx}};
        if ((err = aas_train_exec(net, pl->ip_bwd_d[i], 3, bd, errstr, errstr_size)))
            return err;
        if (i == 0) break;
        dnnl_exec_arg_t eb[4] = {{DNNL_ARG_SRC, pl->m_z[i - 1]},
                                 {DNNL_ARG_DIFF_DST, pl->m_da[i - 1]},
                                 {DNNL_ARG_DIFF_SRC, pl->m_dz[i - 1]},
                                 {DNNL_ARG_WORKSPACE, pl->m_ws[i - 1]}};
        if ((err = aas_train_exec(net, pl->elt_bwd[i - 1], pl->m_ws[i - 1] ? 4 : 3,
                                  eb, errstr, errstr_size)))
            return err;
    }
    if ((err = AAS_DNN_CHECK(dnnl_stream_wait(net->stream)))) return err;
    if (dx && net->p.scale != 1.0) {
        float s = (float)net->p.scale; /* the net sees x * scale */
        for (int64_t k = 0; k < pl->rows * net->dim; k++) dx[k] *= s;
    }
    return AAS_ERR_OK;
}

/* One batch: rows of x/y picked by idx (NULL: the first rows). */
aas_err_t aas_train_batch(aas_train_net_t *net, const float *x,
                                 const int32_t *y, const int64_t *idx,
                                 int64_t rows, float *dx, double *loss,
                                 char *errstr, size_t errstr_size) {
    aas_train_plan_t *pl;
    aas_err_t err = aas_train_plan_get(net, rows, &pl, errstr, errstr_size);
    if (err) return err;
    aas_train_load_x(net, pl, x, idx);
    if ((err = aas_train_forward(net, pl, errstr, errstr_size))) return err;
    size_t last = net->n_layers - 1;
    double sum = aas_train_softmax_ce(pl->z[last], y, idx, rows, net->n_classes,
                                      pl->dz[last], NULL, NULL);
    net->have_grads = 0;
    if ((err = aas_train_backward(net, pl, dx, errstr, errstr_size))) return err;
    net->have_grads = 1;
    *loss = sum / (double)rows;
    return AAS_ERR_OK;
}

aas_err_t aas_train_check_rows(const aas_train_net_t *net, const float *x,
                                      const int32_t *y, int64_t rows,
                                      int64_t max_rows, char *errstr,
                                      size_t errstr_size) {
    if (!x || rows < 1 || rows > max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %lld rows, must be 1..%lld (and x non-NULL)",
                           (long long)rows, (long long)max_rows);
    for (int64_t r = 0; y && r < rows; r++)
        if (y[r] < 0 || y[r] >= net->n_classes)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "training: row %lld has class %d, must be 0..%d",
                               (long long)r, (int)y[r], (int)net->n_classes - 1);
    return AAS_ERR_OK;
}

aas_err_t aas_train_net_loss_and_grads(aas_train_net_t *net, const float *x,
                                       const int32_t *y, int64_t rows,
                                       float *dx, double *loss, char *errstr,
                                       size_t errstr_size) {
    if (!net || !y || !loss)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_loss_and_grads: NULL argument");
    aas_err_t err = aas_train_check_rows(net, x, y, rows, AAS_TRAIN_MAX_BATCH,
                                         errstr, errstr_size);
    if (err) return err;
    return aas_train_batch(net, x, y, NULL, rows, dx, loss, errstr, errstr_size);
}

