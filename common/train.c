/*
 * train.c - training dense softmax classifiers with oneDNN primitives
 * (docs/training.md).
 *
 * Per dense layer and per batch size a "plan" holds oneDNN primitives in
 * plain layouts (nc activations, oi weights, x bias): inner_product
 * forward_training, eltwise forward_training for the activation (a separate
 * primitive so that its backward sees the pre-activation), eltwise backward,
 * inner_product backward_data and backward_weights.  The parameters,
 * gradients and optimiser moments are four flat f32 arrays owned here;
 * oneDNN memories wrap slices of them, so an update in C is seen by the
 * next primitive without a reorder.  The loss (log-softmax cross-entropy),
 * its gradient and the SGD/Adam updates are plain sequential C, so the
 * only source of run-to-run variation would be oneDNN's threading, which
 * is fixed for a given thread count.
 *
 * It does not touch files, Kafka or Redis, and it reads the clock only for
 * progress and throughput figures.  This file: the network (shapes,
 * parameter arrays, weight initialisation, class names) and the oneDNN
 * memories over its arrays.  train_rng.c the random numbers, train_plan.c
 * the per-batch-size plans, train_pass.c one forward/backward pass and the
 * loss, train_step.c the optimiser, train_fit.c the training loop,
 * evaluation and export (train_int.h is what they share).
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"
#include "train_int.h"

#include "dnn.h"

/* ---- memory ---- */

size_t aas_train_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

float *aas_train_alloc(size_t n_floats) {
    void *p = aligned_alloc(AAS_TRAIN_ALIGN,
                            aas_train_round_up(n_floats * sizeof(float), AAS_TRAIN_ALIGN));
    if (p) memset(p, 0, n_floats * sizeof(float));
    return p;
}

aas_err_t aas_train_md(dnnl_memory_desc_t *md, int64_t d0, int64_t d1,
                       dnnl_format_tag_t tag, char *errstr, size_t errstr_size) {
    dnnl_dims_t dims = {d0, d1};
    return AAS_DNN_CHECK(
        dnnl_memory_desc_init_by_tag(md, d1 ? 2 : 1, dims, dnnl_f32, tag));
}

/* A memory of md over our buffer ptr (NULL: handle set later). */
aas_err_t aas_train_wrap(aas_train_net_t *net, dnnl_memory_t *m,
                         const dnnl_memory_desc_t *md, void *ptr, char *errstr,
                         size_t errstr_size) {
    return AAS_DNN_CHECK(dnnl_memory_create(m, md, net->engine,
                                            ptr ? ptr : DNNL_MEMORY_NONE));
}

/* ---- the network ---- */

void aas_train_net_destroy(aas_train_net_t *net) {
    if (!net) return;
    for (int i = 0; i < AAS_TRAIN_PLANS; i++) aas_train_plan_free(net, &net->plan[i]);
    for (size_t i = 0; i < net->n_layers; i++) {
        dnnl_memory_t mems[4] = {net->m_w[i], net->m_b[i], net->m_dw[i], net->m_db[i]};
        for (int k = 0; k < 4; k++)
            if (mems[k]) dnnl_memory_destroy(mems[k]);
    }
    for (int32_t i = 0; net->labels && i < net->n_classes; i++) free(net->labels[i]);
    free(net->labels);
    free(net->param);
    free(net->grad);
    free(net->mom1);
    free(net->mom2);
    if (net->stream) dnnl_stream_destroy(net->stream);
    if (net->engine) dnnl_engine_destroy(net->engine);
    free(net);
}

/* Layer shapes and parameter offsets; TOO_LARGE past a limit. */
static aas_err_t aas_train_net_shape(aas_train_net_t *net, char *errstr,
                                     size_t errstr_size) {
    const aas_train_params_t *p = &net->p;
    net->n_layers = p->n_hidden + 1;
    int64_t prev = net->dim, params = 0;
    size_t off = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        int last = i + 1 == net->n_layers;
        net->in[i] = prev;
        net->out[i] = last ? net->n_classes : p->hidden[i];
        net->act[i] = last ? AAS_ACT_NONE : p->activation;
        /* Both factors <= 2^20, at most 64 layers: no overflow. */
        params += (net->in[i] + 1) * net->out[i];
        if (params > AAS_TRAIN_MAX_PARAMS)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "training: more than %lld trainable parameters "
                               "(input %lld, hidden layers up to %zu, %d "
                               "classes); use narrower hidden layers",
                               (long long)AAS_TRAIN_MAX_PARAMS,
                               (long long)net->dim, i + 1, (int)net->n_classes);
        net->w_off[i] = off;
        off += aas_train_round_up((size_t)(net->in[i] * net->out[i]), AAS_TRAIN_AF);
        net->b_off[i] = off;
        off += aas_train_round_up((size_t)net->out[i], AAS_TRAIN_AF);
        prev = net->out[i];
    }
    net->n_floats = off;
    int64_t bytes = aas_train_plan_bytes(net, p->batch_size);
    if (bytes > AAS_TRAIN_MAX_BATCH_BYTES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "training parameter batch_size: %d rows need %lld "
                           "MiB of activations, limit %lld MiB",
                           (int)p->batch_size, (long long)(bytes >> 20),
                           (long long)(AAS_TRAIN_MAX_BATCH_BYTES >> 20));
    return AAS_ERR_OK;
}

/* Weights: hidden by p->init, output Xavier, normal draws; biases 0. */
static void aas_train_net_init_weights(aas_train_net_t *net) {
    aas_train_rng_t r;
    aas_train_rng_seed(&r, net->p.seed, AAS_TRAIN_RNG_INIT);
    aas_train_init_t init = net->p.init;
    if (init == AAS_TRAIN_INIT_AUTO)
        init = net->p.activation == AAS_ACT_RELU ? AAS_TRAIN_INIT_HE
                                                 : AAS_TRAIN_INIT_XAVIER;
    for (size_t i = 0; i < net->n_layers; i++) {
        int last = i + 1 == net->n_layers;
        double fan_in = (double)net->in[i], fan_out = (double)net->out[i];
        double sd = (!last && init == AAS_TRAIN_INIT_HE)
                        ? sqrt(2.0 / fan_in)
                        : sqrt(2.0 / (fan_in + fan_out));
        float *w = net->param + net->w_off[i];
        for (int64_t k = 0; k < net->in[i] * net->out[i]; k++)
            w[k] = (float)(sd * aas_train_rng_normal(&r));
    }
}

static aas_err_t aas_train_net_wrap_params(aas_train_net_t *net, char *errstr,
                                           size_t errstr_size) {
    aas_err_t err;
    for (size_t i = 0; i < net->n_layers; i++) {
        dnnl_memory_desc_t w_md, b_md;
        if ((err = aas_train_md(&w_md, net->out[i], net->in[i], dnnl_oi, errstr,
                                errstr_size)) ||
            (err = aas_train_md(&b_md, net->out[i], 0, dnnl_x, errstr, errstr_size)) ||
            (err = aas_train_wrap(net, &net->m_w[i], &w_md, net->param + net->w_off[i],
                                  errstr, errstr_size)) ||
            (err = aas_train_wrap(net, &net->m_b[i], &b_md, net->param + net->b_off[i],
                                  errstr, errstr_size)) ||
            (err = aas_train_wrap(net, &net->m_dw[i], &w_md, net->grad + net->w_off[i],
                                  errstr, errstr_size)) ||
            (err = aas_train_wrap(net, &net->m_db[i], &b_md, net->grad + net->b_off[i],
                                  errstr, errstr_size)))
            return err;
    }
    return AAS_ERR_OK;
}

/* Own copies of the class names (p->labels or "0".."n-1"), checked now by
 * the format's writer on a stand-in layer so that a bad name fails the job
 * before training rather than at the export. */
static aas_err_t aas_train_net_labels(aas_train_net_t *net,
                                      const aas_train_params_t *p, char *errstr,
                                      size_t errstr_size) {
    int32_t n = net->n_classes;
    if (p->n_labels && p->n_labels != (size_t)n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %zu labels for %d classes", p->n_labels,
                           (int)n);
    if (!(net->labels = calloc((size_t)n, sizeof(char *))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for %d labels", (int)n);
    for (int32_t i = 0; i < n; i++) {
        char num[16];
        snprintf(num, sizeof(num), "%d", (int)i);
        const char *src = p->n_labels ? p->labels[i] : num;
        if (!src)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "training: label %d is NULL", (int)i);
        if (!(net->labels[i] = strdup(src)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "training: out of memory for %d labels", (int)n);
    }
    float *zeros = calloc(2 * (size_t)n, sizeof(float));
    if (!zeros)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for %d labels", (int)n);
    aas_mlp_layer_t probe = {1, n, AAS_ACT_SOFTMAX, zeros, zeros + n};
    void *blob = NULL;
    size_t len = 0;
    aas_err_t err = aas_mlp_serialize(&probe, 1, (const char *const *)net->labels,
                                      (size_t)n, &blob, &len, errstr, errstr_size);
    free(blob);
    free(zeros);
    return err;
}

aas_err_t aas_train_net_new(const aas_train_params_t *p, int64_t dim,
                            int32_t n_classes, aas_train_net_t **out,
                            char *errstr, size_t errstr_size) {
    aas_err_t err;
    if (!p || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_train_net_new: NULL argument");
    if ((err = aas_train_params_check(p, errstr, errstr_size))) return err;
    if (dim < 1 || dim > AAS_MLP_MAX_DIM)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %lld input features, must be 1..%d",
                           (long long)dim, AAS_MLP_MAX_DIM);
    if (n_classes < 2 || n_classes > AAS_MLP_MAX_DIM)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training: %d classes, must be 2..%d", (int)n_classes,
                           AAS_MLP_MAX_DIM);
    aas_train_net_t *net = calloc(1, sizeof(*net));
    if (!net)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory");
    net->p = *p;
    net->p.labels = NULL;
    net->p.n_labels = 0;
    net->lr = aas_train_params_learning_rate(p);
    net->dim = dim;
    net->n_classes = n_classes;
    if ((err = aas_train_net_shape(net, errstr, errstr_size)) ||
        (err = aas_train_net_labels(net, p, errstr, errstr_size)))
        goto fail;
    if (!(net->param = aas_train_alloc(net->n_floats)) ||
        !(net->grad = aas_train_alloc(net->n_floats)) ||
        !(net->mom1 = aas_train_alloc(net->n_floats)) ||
        (p->optimizer == AAS_TRAIN_ADAM && !(net->mom2 = aas_train_alloc(net->n_floats)))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                          "training: out of memory for %zu parameters",
                          net->n_floats);
        goto fail;
    }
    aas_train_net_init_weights(net);
    if ((err = AAS_DNN_CHECK(dnnl_engine_create(&net->engine, dnnl_cpu, 0))) ||
        (err = AAS_DNN_CHECK(dnnl_stream_create(&net->stream, net->engine,
                                                dnnl_stream_default_flags))) ||
        (err = aas_train_net_wrap_params(net, errstr, errstr_size)))
        goto fail;
    *out = net;
    return AAS_ERR_OK;
fail:
    aas_train_net_destroy(net);
    return err;
}

size_t aas_train_net_layers(const aas_train_net_t *net) { return net->n_layers; }

aas_err_t aas_train_net_layer(const aas_train_net_t *net, size_t i,
                              aas_train_layer_t *out) {
    if (!net || !out || i >= net->n_layers) return AAS_ERR_INVAL;
    out->in = net->in[i];
    out->out = net->out[i];
    out->act = net->act[i];
    out->weights = net->param + net->w_off[i];
    out->bias = net->param + net->b_off[i];
    out->grad_weights = net->grad + net->w_off[i];
    out->grad_bias = net->grad + net->b_off[i];
    return AAS_ERR_OK;
}
