/*
 * train_step.c - the optimiser: one SGD-with-momentum or Adam update of
 * every parameter from the gradients train_pass.c computed (plain
 * sequential C, vectorised, so a given thread count gives the same bytes
 * every run).
 */
#include <math.h>
#include <stddef.h>

#include "train_int.h"

/* ---- optimiser ---- */

/* The update kernels walk whole padded slices in blocks of AAS_TRAIN_AF
 * floats: the padding is zero in every array and stays zero, and a fixed
 * block length lets the compiler vectorise at -O2. */
typedef struct {
    float lr, decay, mu;              /* sgd */
    float b1, c1, b2, c2, a, inv_bc2, eps; /* adam */
} aas_train_upd_t;

static void aas_train_sgd(float *restrict w, const float *restrict g,
                          float *restrict m, size_t n, const aas_train_upd_t *u) {
    const float mu = u->mu, decay = u->decay, lr = u->lr;
    for (size_t k0 = 0; k0 < n; k0 += AAS_TRAIN_AF) {
        float *wb = w + k0, *mb = m + k0;
        const float *gb = g + k0;
        for (size_t k = 0; k < AAS_TRAIN_AF; k++) {
            mb[k] = mu * mb[k] + (gb[k] + decay * wb[k]);
            wb[k] -= lr * mb[k];
        }
    }
}

static void aas_train_adam(float *restrict w, const float *restrict g,
                           float *restrict m, float *restrict v, size_t n,
                           const aas_train_upd_t *u) {
    const float decay = u->decay, b1 = u->b1, c1 = u->c1, b2 = u->b2, c2 = u->c2;
    const float a = u->a, inv_bc2 = u->inv_bc2, eps = u->eps;
    for (size_t k0 = 0; k0 < n; k0 += AAS_TRAIN_AF) {
        float *wb = w + k0, *mb = m + k0, *vb = v + k0;
        const float *gb = g + k0;
        for (size_t k = 0; k < AAS_TRAIN_AF; k++) {
            float gk = gb[k] + decay * wb[k];
            mb[k] = b1 * mb[k] + c1 * gk;
            vb[k] = b2 * vb[k] + c2 * gk * gk;
            wb[k] -= a * mb[k] / (sqrtf(vb[k] * inv_bc2) + eps);
        }
    }
}

aas_err_t aas_train_net_step(aas_train_net_t *net, char *errstr,
                             size_t errstr_size) {
    if (!net)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_step: NULL net");
    if (!net->have_grads)
        return aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                           "aas_train_net_step: no gradients (call "
                           "aas_train_net_loss_and_grads first)");
    const aas_train_params_t *p = &net->p;
    aas_train_upd_t u = {(float)net->lr, 0, (float)p->momentum,
                         (float)p->beta1, (float)(1.0 - p->beta1),
                         (float)p->beta2, (float)(1.0 - p->beta2), 0, 0,
                         (float)p->epsilon};
    if (p->optimizer == AAS_TRAIN_ADAM) {
        net->steps++;
        /* Bias correction folded into the step size and the root. */
        u.a = (float)(net->lr / (1.0 - pow(p->beta1, (double)net->steps)));
        u.inv_bc2 = (float)(1.0 / (1.0 - pow(p->beta2, (double)net->steps)));
    }
    for (size_t i = 0; i < net->n_layers; i++) {
        for (int part = 0; part < 2; part++) { /* weights, then bias */
            size_t off = part ? net->b_off[i] : net->w_off[i];
            size_t n = aas_train_round_up(
                (size_t)(part ? net->out[i] : net->in[i] * net->out[i]),
                AAS_TRAIN_AF);
            u.decay = part ? 0.0f : (float)p->weight_decay; /* not biases */
            if (p->optimizer == AAS_TRAIN_SGD)
                aas_train_sgd(net->param + off, net->grad + off, net->mom1 + off, n, &u);
            else
                aas_train_adam(net->param + off, net->grad + off, net->mom1 + off,
                               net->mom2 + off, n, &u);
        }
    }
    return AAS_ERR_OK;
}

