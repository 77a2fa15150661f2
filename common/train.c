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
 * progress and throughput figures.  This file: the network, its plans and
 * one forward/backward pass; train_step.c the optimiser; train_fit.c the
 * training loop, evaluation and export (train_int.h is what they share).
 */
#include <dnnl.h>
#include <dnnl_debug.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train.h"
#include "train_int.h"

#include "dnn.h"


/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */


static uint64_t aas_train_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void aas_train_rng_seed(aas_train_rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = aas_train_splitmix64(&x);
}

static uint64_t aas_train_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t aas_train_rng_next(aas_train_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = aas_train_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = aas_train_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), unbiased (rejection), n >= 1. */
static uint64_t aas_train_rng_below(aas_train_rng_t *r, uint64_t n) {
    uint64_t threshold = (0 - n) % n, x;
    while ((x = aas_train_rng_next(r)) < threshold) {
    }
    return x % n;
}

/* Uniform in (0, 1). */
static double aas_train_rng_open01(aas_train_rng_t *r) {
    return ((double)(aas_train_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller, one value per pair). */
static double aas_train_rng_normal(aas_train_rng_t *r) {
    double u1 = aas_train_rng_open01(r), u2 = aas_train_rng_open01(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void aas_train_rng_shuffle(aas_train_rng_t *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)aas_train_rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ---- data ---- */



size_t aas_train_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static float *aas_train_alloc(size_t n_floats) {
    void *p = aligned_alloc(AAS_TRAIN_ALIGN,
                            aas_train_round_up(n_floats * sizeof(float), AAS_TRAIN_ALIGN));
    if (p) memset(p, 0, n_floats * sizeof(float));
    return p;
}

static dnnl_alg_kind_t aas_train_alg(aas_act_t act) {
    switch (act) {
    case AAS_ACT_RELU: return dnnl_eltwise_relu;
    case AAS_ACT_TANH: return dnnl_eltwise_tanh;
    case AAS_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

/* Bytes of activation buffers for a batch of rows (no overflow: rows <=
 * 2^16, dim <= 2^20, widths sum <= 2^26). */
static int64_t aas_train_plan_bytes(const aas_train_net_t *net, int64_t rows) {
    int64_t per_row = net->dim;
    for (size_t i = 0; i < net->n_layers; i++) per_row += 4 * net->out[i];
    return rows * per_row * (int64_t)sizeof(float);
}

/* ---- plans ---- */

static void aas_train_plan_free(aas_train_net_t *net, aas_train_plan_t *pl) {
    for (size_t i = 0; i < net->n_layers; i++) {
        dnnl_primitive_t prims[5] = {pl->ip_fwd[i], pl->ip_bwd_d[i], pl->ip_bwd_w[i],
                                     pl->elt_fwd[i], pl->elt_bwd[i]};
        for (int k = 0; k < 5; k++)
            if (prims[k]) dnnl_primitive_destroy(prims[k]);
        dnnl_memory_t mems[5] = {pl->m_z[i], pl->m_dz[i], pl->m_a[i], pl->m_da[i],
                                 pl->m_ws[i]};
        for (int k = 0; k < 5; k++)
            if (mems[k]) dnnl_memory_destroy(mems[k]);
    }
    if (pl->m_x) dnnl_memory_destroy(pl->m_x);
    if (pl->m_dx) dnnl_memory_destroy(pl->m_dx);
    free(pl->buf);
    memset(pl, 0, sizeof(*pl));
}

static aas_err_t aas_train_md(dnnl_memory_desc_t *md, int64_t d0, int64_t d1,
                              dnnl_format_tag_t tag, char *errstr,
                              size_t errstr_size) {
    dnnl_dims_t dims = {d0, d1};
    return AAS_DNN_CHECK(
        dnnl_memory_desc_init_by_tag(md, d1 ? 2 : 1, dims, dnnl_f32, tag));
}

/* A memory of md over our buffer ptr (NULL: handle set later). */
static aas_err_t aas_train_wrap(aas_train_net_t *net, dnnl_memory_t *m,
                                const dnnl_memory_desc_t *md, void *ptr,
                                char *errstr, size_t errstr_size) {
    return AAS_DNN_CHECK(dnnl_memory_create(m, md, net->engine,
                                            ptr ? ptr : DNNL_MEMORY_NONE));
}

/* The five primitives of layer i for pl->rows rows. */
static aas_err_t aas_train_layer_build(aas_train_net_t *net, aas_train_plan_t *pl,
                                       size_t i, char *errstr, size_t errstr_size) {
    int64_t rows = pl->rows;
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    dnnl_inner_product_desc_t fwd_d, bwd_d_d, bwd_w_d;
    dnnl_eltwise_desc_t elt_d, eltb_d;
    dnnl_primitive_desc_t fwd_pd = NULL, elt_pd = NULL, pd = NULL;
    dnnl_alg_kind_t alg = aas_train_alg(net->act[i]);
    aas_err_t err;

    if ((err = aas_train_md(&src_md, rows, net->in[i], dnnl_nc, errstr, errstr_size)) ||
        (err = aas_train_md(&w_md, net->out[i], net->in[i], dnnl_oi, errstr, errstr_size)) ||
        (err = aas_train_md(&b_md, net->out[i], 0, dnnl_x, errstr, errstr_size)) ||
        (err = aas_train_md(&dst_md, rows, net->out[i], dnnl_nc, errstr, errstr_size)))
        return err;
    /* forward_training keeps what backward needs; the activation is its own
     * primitive so that its backward gets the pre-activation z as src. */
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_forward_desc_init(
             &fwd_d, dnnl_forward_training, &src_md, &w_md, &b_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&fwd_pd, &fwd_d, NULL,
                                                        net->engine, NULL))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_fwd[i], fwd_pd))))
        goto done;
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_backward_data_desc_init(
             &bwd_d_d, &src_md, &w_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &bwd_d_d, NULL,
                                                        net->engine, fwd_pd))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_bwd_d[i], pd))))
        goto done;
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if ((err = AAS_DNN_CHECK(dnnl_inner_product_backward_weights_desc_init(
             &bwd_w_d, &src_md, &w_md, &b_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &bwd_w_d, NULL,
                                                        net->engine, fwd_pd))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->ip_bwd_w[i], pd))))
        goto done;
    dnnl_primitive_desc_destroy(pd);
    pd = NULL;
    if (alg != dnnl_alg_kind_undef) {
        if ((err = AAS_DNN_CHECK(dnnl_eltwise_forward_desc_init(
                 &elt_d, dnnl_forward_training, alg, &dst_md, 0.0f /* alpha */,
                 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&elt_pd, &elt_d, NULL,
                                                            net->engine, NULL))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->elt_fwd[i], elt_pd))) ||
            (err = AAS_DNN_CHECK(dnnl_eltwise_backward_desc_init(
                 &eltb_d, alg, &dst_md /* diff */, &dst_md /* data */,
                 0.0f /* alpha */, 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &eltb_d, NULL,
                                                            net->engine, elt_pd))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_create(&pl->elt_bwd[i], pd))))
            goto done;
        /* The CPU eltwise needs none today; honour it if a version does. */
        const dnnl_memory_desc_t *ws =
            dnnl_primitive_desc_query_md(elt_pd, dnnl_query_workspace_md, 0);
        if (ws && dnnl_memory_desc_get_size(ws) > 0 &&
            (err = AAS_DNN_CHECK(dnnl_memory_create(&pl->m_ws[i], ws, net->engine,
                                                    DNNL_MEMORY_ALLOCATE))))
            goto done;
    }
    if ((err = aas_train_wrap(net, &pl->m_z[i], &dst_md, pl->z[i], errstr, errstr_size)) ||
        (err = aas_train_wrap(net, &pl->m_dz[i], &dst_md, pl->dz[i], errstr, errstr_size)))
        goto done;
    if (i + 1 < net->n_layers &&
        ((err = aas_train_wrap(net, &pl->m_a[i], &dst_md, pl->a[i], errstr, errstr_size)) ||
         (err = aas_train_wrap(net, &pl->m_da[i], &dst_md, pl->da[i], errstr, errstr_size))))
        goto done;
    if (i == 0 &&
        ((err = aas_train_wrap(net, &pl->m_x, &src_md, pl->x, errstr, errstr_size)) ||
         (err = aas_train_wrap(net, &pl->m_dx, &src_md, NULL, errstr, errstr_size))))
        goto done;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (elt_pd) dnnl_primitive_desc_destroy(elt_pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    return err;
}

static aas_err_t aas_train_plan_build(aas_train_net_t *net, aas_train_plan_t *pl,
                                      int64_t rows, char *errstr,
                                      size_t errstr_size) {
    int64_t bytes = aas_train_plan_bytes(net, rows);
    if (bytes > AAS_TRAIN_MAX_BATCH_BYTES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "training: a batch of %lld rows needs %lld MiB of "
                           "activations, limit %lld MiB (lower batch_size or "
                           "hidden)",
                           (long long)rows, (long long)(bytes >> 20),
                           (long long)(AAS_TRAIN_MAX_BATCH_BYTES >> 20));
    /* Slices padded to the alignment: (2 + 4 * layers) pads at most. */
    size_t total = 0, pad = AAS_TRAIN_AF;
    total += aas_train_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++)
        total += 4 * aas_train_round_up((size_t)(rows * net->out[i]), pad);
    if (!(pl->buf = aas_train_alloc(total)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for a batch of %lld rows",
                           (long long)rows);
    float *p = pl->buf;
    pl->x = p;
    p += aas_train_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++) {
        size_t n = aas_train_round_up((size_t)(rows * net->out[i]), pad);
        pl->z[i] = p, p += n;
        pl->dz[i] = p, p += n;
        pl->a[i] = p, p += n;
        pl->da[i] = p, p += n;
    }
    pl->rows = rows;
    for (size_t i = 0; i < net->n_layers; i++) {
        aas_err_t err = aas_train_layer_build(net, pl, i, errstr, errstr_size);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

/* The plan for rows, built on a miss in place of the least recently used. */
aas_err_t aas_train_plan_get(aas_train_net_t *net, int64_t rows,
                                    aas_train_plan_t **out, char *errstr,
                                    size_t errstr_size) {
    aas_train_plan_t *slot = &net->plan[0];
    for (int i = 0; i < AAS_TRAIN_PLANS; i++) {
        aas_train_plan_t *pl = &net->plan[i];
        if (pl->rows == rows) {
            pl->last_use = ++net->clock;
            *out = pl;
            return AAS_ERR_OK;
        }
        if (slot->rows != 0 && (pl->rows == 0 || pl->last_use < slot->last_use))
            slot = pl;
    }
    aas_train_plan_free(net, slot);
    aas_err_t err = aas_train_plan_build(net, slot, rows, errstr, errstr_size);
    if (err) {
        aas_train_plan_free(net, slot);
        return err;
    }
    slot->last_use = ++net->clock;
    *out = slot;
    return AAS_ERR_OK;
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
    aas_train_rng_seed(&r, net->p.seed, AAS_RNG_INIT);
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

/* ---- forward, loss, backward ---- */

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

