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
 * progress and throughput figures.
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

#include "dnn.h"

#define AAS_TRAIN_PLANS 4 /* batch sizes kept: batch, remainders, predict */
#define AAS_TRAIN_ALIGN 64 /* bytes; every parameter slice starts here */
#define AAS_TRAIN_AF (AAS_TRAIN_ALIGN / sizeof(float))
#define AAS_TRAIN_L AAS_MLP_MAX_LAYERS

/* ---- oneDNN status ---- */

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */

typedef struct {
    uint64_t s[4];
} aas_rng_t;

/* Independent streams from one seed: init, split, shuffles. */
enum { AAS_RNG_INIT = 1, AAS_RNG_SPLIT = 2, AAS_RNG_SHUFFLE = 3 };

static uint64_t aas_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void aas_rng_seed(aas_rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = aas_splitmix64(&x);
}

static uint64_t aas_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t aas_rng_next(aas_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = aas_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = aas_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), unbiased (rejection), n >= 1. */
static uint64_t aas_rng_below(aas_rng_t *r, uint64_t n) {
    uint64_t threshold = (0 - n) % n, x;
    while ((x = aas_rng_next(r)) < threshold) {
    }
    return x % n;
}

/* Uniform in (0, 1). */
static double aas_rng_open01(aas_rng_t *r) {
    return ((double)(aas_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller, one value per pair). */
static double aas_rng_normal(aas_rng_t *r) {
    double u1 = aas_rng_open01(r), u2 = aas_rng_open01(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void aas_rng_shuffle(aas_rng_t *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)aas_rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* ---- data ---- */

/* Everything that depends on the batch size. */
typedef struct {
    int64_t rows; /* 0 = empty slot */
    uint64_t last_use;
    float *buf;   /* all activation buffers, one allocation */
    float *x;     /* rows x dim, scaled input */
    float *z[AAS_TRAIN_L], *dz[AAS_TRAIN_L]; /* pre-activation and its grad */
    float *a[AAS_TRAIN_L], *da[AAS_TRAIN_L]; /* hidden outputs and grads */
    dnnl_memory_t m_x, m_dx;                 /* m_dx wraps the caller's dx */
    dnnl_memory_t m_z[AAS_TRAIN_L], m_dz[AAS_TRAIN_L];
    dnnl_memory_t m_a[AAS_TRAIN_L], m_da[AAS_TRAIN_L];
    dnnl_memory_t m_ws[AAS_TRAIN_L];         /* eltwise workspace, if any */
    dnnl_primitive_t ip_fwd[AAS_TRAIN_L], ip_bwd_d[AAS_TRAIN_L],
        ip_bwd_w[AAS_TRAIN_L], elt_fwd[AAS_TRAIN_L], elt_bwd[AAS_TRAIN_L];
} aas_train_plan_t;

struct aas_train_net_s {
    aas_train_params_t p;   /* labels not used */
    double lr;
    int64_t dim;
    int32_t n_classes;
    size_t n_layers;
    int64_t in[AAS_TRAIN_L], out[AAS_TRAIN_L];
    aas_act_t act[AAS_TRAIN_L];               /* NONE on the output layer */
    size_t w_off[AAS_TRAIN_L], b_off[AAS_TRAIN_L]; /* floats into the arrays */
    size_t n_floats;                          /* per array, with padding */
    float *param, *grad, *mom1, *mom2;        /* mom2 only for adam */
    int64_t steps;
    int have_grads;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_memory_t m_w[AAS_TRAIN_L], m_b[AAS_TRAIN_L];
    dnnl_memory_t m_dw[AAS_TRAIN_L], m_db[AAS_TRAIN_L];
    aas_train_plan_t plan[AAS_TRAIN_PLANS];
    uint64_t clock;
    char **labels;                            /* n_classes names, owned */
};

static size_t aas_round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

static float *aas_train_alloc(size_t n_floats) {
    void *p = aligned_alloc(AAS_TRAIN_ALIGN,
                            aas_round_up(n_floats * sizeof(float), AAS_TRAIN_ALIGN));
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
    total += aas_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++)
        total += 4 * aas_round_up((size_t)(rows * net->out[i]), pad);
    if (!(pl->buf = aas_train_alloc(total)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "training: out of memory for a batch of %lld rows",
                           (long long)rows);
    float *p = pl->buf;
    pl->x = p;
    p += aas_round_up((size_t)(rows * net->dim), pad);
    for (size_t i = 0; i < net->n_layers; i++) {
        size_t n = aas_round_up((size_t)(rows * net->out[i]), pad);
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
static aas_err_t aas_train_plan_get(aas_train_net_t *net, int64_t rows,
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
        off += aas_round_up((size_t)(net->in[i] * net->out[i]), AAS_TRAIN_AF);
        net->b_off[i] = off;
        off += aas_round_up((size_t)net->out[i], AAS_TRAIN_AF);
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
    aas_rng_t r;
    aas_rng_seed(&r, net->p.seed, AAS_RNG_INIT);
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
            w[k] = (float)(sd * aas_rng_normal(&r));
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
static void aas_train_load_x(const aas_train_net_t *net, aas_train_plan_t *pl,
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
static aas_err_t aas_train_forward(aas_train_net_t *net, aas_train_plan_t *pl,
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
static double aas_train_softmax_ce(const float *z, const int32_t *y,
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
static aas_err_t aas_train_batch(aas_train_net_t *net, const float *x,
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

static aas_err_t aas_train_check_rows(const aas_train_net_t *net, const float *x,
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
            size_t n = aas_round_up(
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

/* ---- evaluation ---- */

/* Loss sum, correct count and/or probabilities over rows (idx or the
 * first rows), in chunks of the batch size. */
static aas_err_t aas_train_eval(aas_train_net_t *net, const float *x,
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

static aas_err_t aas_train_check_data(const aas_train_net_t *net, const float *x,
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
    aas_rng_t shuf;
    aas_err_t err;
    aas_rng_seed(&shuf, p->seed, AAS_RNG_SHUFFLE);
    res->train_loss = res->val_loss = res->val_accuracy = NAN;

    for (int32_t epoch = 1; epoch <= p->epochs && !res->cancelled; epoch++) {
        aas_rng_shuffle(&shuf, idx, n_train);
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
    aas_rng_t split;
    aas_rng_seed(&split, p->seed, AAS_RNG_SPLIT);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    aas_rng_shuffle(&split, idx, n);

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
