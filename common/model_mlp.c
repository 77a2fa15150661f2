/*
 * model_mlp.c - the native feed-forward format "AASMLP1" and its oneDNN
 * inference (docs/model-format.md).
 *
 * Each dense layer is an inner_product forward_inference primitive with its
 * activation fused as an eltwise post-op; a softmax primitive closes a
 * classifier.  Primitives and the weights reordered into the layout they
 * prefer are built once per batch size and kept in a small LRU, so steady
 * traffic never re-creates them.  Parsing checks every count against the
 * remaining bytes before allocating.
 */
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

#define AAS_MLP_MAGIC "AASMLP1"       /* 8 bytes with the NUL */
#define AAS_MLP_MAX_LAYERS 64
#define AAS_MLP_MAX_DIM (1 << 20)
#define AAS_MLP_MAX_PARAMS (1LL << 28) /* 1 GiB of f32 */
#define AAS_MLP_MAX_LABEL 256
#define AAS_MLP_CACHE 8               /* batch sizes kept */

/* oneDNN status -> AAS_ERR_DNN naming the call and where. */
#define AAS_DNN(call)                                                         \
    do {                                                                      \
        dnnl_status_t st_ = (call);                                           \
        if (st_ != dnnl_success)                                              \
            return aas_err_set(errstr, errstr_size, AAS_ERR_DNN,              \
                               "%s failed (status %d) at %s:%d", #call,       \
                               (int)st_, __FILE__, __LINE__);                 \
    } while (0)

typedef struct {
    int64_t in, out;
    aas_act_t act;
    float *w;   /* out x in, "oi" */
    float *b;
} aas_mlp_layer_data_t;

/* Everything that depends on the batch size. */
typedef struct {
    int64_t rows;        /* 0 = empty slot */
    uint64_t last_use;
    dnnl_primitive_t ip[AAS_MLP_MAX_LAYERS];
    dnnl_memory_t src[AAS_MLP_MAX_LAYERS], wts[AAS_MLP_MAX_LAYERS],
        bias[AAS_MLP_MAX_LAYERS], dst[AAS_MLP_MAX_LAYERS];
    dnnl_primitive_t softmax;
    float *act[2];       /* ping-pong buffers for hidden activations */
    size_t bytes;
} aas_mlp_batch_t;

typedef struct {
    aas_model_t base;
    size_t n_layers;
    aas_mlp_layer_data_t *layers;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    aas_mlp_batch_t cache[AAS_MLP_CACHE];
    uint64_t clock;
    size_t weight_bytes;
} aas_mlp_t;

/* ---- format ---- */

typedef struct {
    const unsigned char *p;
    size_t left;
} aas_rd_t;

static int aas_rd_u32(aas_rd_t *r, uint32_t *v) {
    if (r->left < 4) return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int aas_rd_f32s(aas_rd_t *r, float *dst, size_t n) {
    if (r->left / 4 < n) return -1;
    memcpy(dst, r->p, n * 4); /* little-endian host (checked by CMake) */
    r->p += n * 4;
    r->left -= n * 4;
    return 0;
}

static int aas_mlp_probe(const void *blob, size_t len) {
    return len >= 8 && memcmp(blob, AAS_MLP_MAGIC, 8) == 0;
}

static void aas_mlp_batch_free(aas_mlp_batch_t *b, size_t n_layers) {
    for (size_t i = 0; i < n_layers; i++) {
        dnnl_primitive_destroy(b->ip[i]);
        dnnl_memory_destroy(b->src[i]);
        dnnl_memory_destroy(b->wts[i]);
        dnnl_memory_destroy(b->bias[i]);
        dnnl_memory_destroy(b->dst[i]);
    }
    dnnl_primitive_destroy(b->softmax);
    free(b->act[0]);
    free(b->act[1]);
    memset(b, 0, sizeof(*b));
}

static void aas_mlp_destroy(aas_model_t *base) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    for (int i = 0; i < AAS_MLP_CACHE; i++)
        if (m->cache[i].rows) aas_mlp_batch_free(&m->cache[i], m->n_layers);
    for (size_t i = 0; m->layers && i < m->n_layers; i++) {
        free(m->layers[i].w);
        free(m->layers[i].b);
    }
    free(m->layers);
    if (m->base.labels)
        for (int64_t i = 0; i < m->base.output_dim; i++) free(m->base.labels[i]);
    free(m->base.labels);
    if (m->stream) dnnl_stream_destroy(m->stream);
    if (m->engine) dnnl_engine_destroy(m->engine);
    free(m);
}

static aas_err_t aas_mlp_parse(aas_mlp_t *m, const void *blob, size_t len,
                               char *errstr, size_t errstr_size) {
    aas_rd_t r = {(const unsigned char *)blob + 8, len - 8};
    uint32_t n_layers, in_dim;
    if (aas_rd_u32(&r, &n_layers) || aas_rd_u32(&r, &in_dim))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "truncated header");
    if (n_layers < 1 || n_layers > AAS_MLP_MAX_LAYERS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%u layers, must be 1..%d", n_layers, AAS_MLP_MAX_LAYERS);
    if (in_dim < 1 || in_dim > AAS_MLP_MAX_DIM)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "input dim %u, must be 1..%d", in_dim, AAS_MLP_MAX_DIM);
    if (!(m->layers = calloc(n_layers, sizeof(*m->layers)))) return AAS_ERR_NOMEM;
    m->n_layers = n_layers;
    int64_t prev = in_dim, params = 0;
    for (uint32_t i = 0; i < n_layers; i++) {
        uint32_t out, act;
        if (aas_rd_u32(&r, &out) || aas_rd_u32(&r, &act))
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "truncated layer table");
        if (out < 1 || out > AAS_MLP_MAX_DIM)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "layer %u: %u outputs, must be 1..%d", i, out,
                               AAS_MLP_MAX_DIM);
        if (act > AAS_ACT_SOFTMAX || (act == AAS_ACT_SOFTMAX && i + 1 != n_layers))
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "layer %u: activation %u invalid%s", i, act,
                               act == AAS_ACT_SOFTMAX ? " (softmax only last)" : "");
        params += (int64_t)out * prev + out;
        if (params > AAS_MLP_MAX_PARAMS)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "more than %lld parameters", (long long)AAS_MLP_MAX_PARAMS);
        m->layers[i] = (aas_mlp_layer_data_t){prev, out, (aas_act_t)act, NULL, NULL};
        prev = out;
    }
    /* All weights must be there before anything is allocated for them. */
    if ((uint64_t)r.left / 4 < (uint64_t)params)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "truncated: %lld parameters declared, %zu bytes left",
                           (long long)params, r.left);
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        size_t nw = (size_t)(l->out * l->in);
        if (!(l->w = malloc(nw * 4)) || !(l->b = malloc((size_t)l->out * 4)))
            return AAS_ERR_NOMEM;
        aas_rd_f32s(&r, l->w, nw);
        aas_rd_f32s(&r, l->b, (size_t)l->out);
        for (size_t k = 0; k < nw; k++)
            if (!isfinite(l->w[k]))
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "layer %zu: weight %zu is not finite", i, k);
        for (int64_t k = 0; k < l->out; k++)
            if (!isfinite(l->b[k]))
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "layer %zu: bias %lld is not finite", i, (long long)k);
        m->weight_bytes += (nw + (size_t)l->out) * 4;
    }
    m->base.input_dim = in_dim;
    m->base.output_dim = prev;
    m->base.classifier = m->layers[m->n_layers - 1].act == AAS_ACT_SOFTMAX;

    uint32_t n_labels;
    if (aas_rd_u32(&r, &n_labels))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "truncated label count");
    if (n_labels != 0 && n_labels != (uint64_t)prev)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%u labels for %lld outputs", n_labels, (long long)prev);
    if (n_labels) {
        if (!(m->base.labels = calloc(n_labels, sizeof(char *)))) return AAS_ERR_NOMEM;
        for (uint32_t i = 0; i < n_labels; i++) {
            if (r.left < 2)
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "truncated label %u", i);
            size_t ll = (size_t)r.p[0] | (size_t)r.p[1] << 8;
            r.p += 2;
            r.left -= 2;
            if (ll > AAS_MLP_MAX_LABEL || ll > r.left)
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "label %u: bad length %zu", i, ll);
            if (memchr(r.p, 0, ll))
                return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                                   "label %u contains NUL", i);
            if (!(m->base.labels[i] = malloc(ll + 1))) return AAS_ERR_NOMEM;
            memcpy(m->base.labels[i], r.p, ll);
            m->base.labels[i][ll] = '\0';
            r.p += ll;
            r.left -= ll;
        }
    }
    if (r.left != 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "%zu unexpected trailing bytes", r.left);
    return AAS_ERR_OK;
}

static aas_err_t aas_mlp_load(const void *blob, size_t len, aas_model_t **out,
                              char *errstr, size_t errstr_size) {
    aas_mlp_t *m = calloc(1, sizeof(*m));
    if (!m) return AAS_ERR_NOMEM;
    aas_err_t err = aas_mlp_parse(m, blob, len, errstr, errstr_size);
    if (!err && dnnl_engine_create(&m->engine, dnnl_cpu, 0) != dnnl_success)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DNN, "dnnl_engine_create failed");
    if (!err && dnnl_stream_create(&m->stream, m->engine, dnnl_stream_default_flags) !=
                    dnnl_success)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DNN, "dnnl_stream_create failed");
    if (err) {
        if (err == AAS_ERR_NOMEM)
            aas_err_set(errstr, errstr_size, err, "out of memory loading the model");
        aas_mlp_destroy(&m->base);
        return err;
    }
    m->base.footprint = m->weight_bytes;
    *out = &m->base;
    return AAS_ERR_OK;
}

/* ---- oneDNN primitives for one batch size ---- */

static dnnl_alg_kind_t aas_mlp_alg(aas_act_t act) {
    switch (act) {
    case AAS_ACT_RELU: return dnnl_eltwise_relu;
    case AAS_ACT_TANH: return dnnl_eltwise_tanh;
    case AAS_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

static aas_err_t aas_mlp_layer_build(aas_mlp_t *m, aas_mlp_batch_t *b, size_t i,
                                     int64_t rows, char *errstr,
                                     size_t errstr_size) {
    aas_mlp_layer_data_t *l = &m->layers[i];
    dnnl_memory_desc_t src_md, w_any, w_user, b_md, dst_md;
    dnnl_dims_t sd = {rows, l->in}, wd = {l->out, l->in}, bd = {l->out},
                dd = {rows, l->out};
    AAS_DNN(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_f32, dnnl_nc));
    AAS_DNN(dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dnnl_f32, dnnl_format_tag_any));
    AAS_DNN(dnnl_memory_desc_init_by_tag(&w_user, 2, wd, dnnl_f32, dnnl_oi));
    AAS_DNN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    AAS_DNN(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_nc));
    dnnl_inner_product_desc_t ipd;
    AAS_DNN(dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference,
                                                 &src_md, &w_any, &b_md, &dst_md));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success && aas_mlp_alg(l->act) != dnnl_alg_kind_undef) {
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success)
            st = dnnl_post_ops_append_eltwise(po, 1.0f, aas_mlp_alg(l->act), 0.0f, 0.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &ipd, attr, m->engine, NULL);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                           "inner product layer %zu: primitive desc (status %d)", i, (int)st);
    st = dnnl_primitive_create(&b->ip[i], pd);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_desc_t w_want = *w_md;
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success)
        return aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                           "inner product layer %zu: primitive (status %d)", i, (int)st);

    AAS_DNN(dnnl_memory_create(&b->src[i], &src_md, m->engine, DNNL_MEMORY_NONE));
    AAS_DNN(dnnl_memory_create(&b->dst[i], &dst_md, m->engine, DNNL_MEMORY_NONE));
    AAS_DNN(dnnl_memory_create(&b->bias[i], &b_md, m->engine, l->b));
    if (dnnl_memory_desc_equal(&w_want, &w_user)) {
        AAS_DNN(dnnl_memory_create(&b->wts[i], &w_user, m->engine, l->w));
    } else {
        /* Reorder once into the layout this primitive runs fastest on. */
        dnnl_memory_t user = NULL;
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_t reorder = NULL;
        AAS_DNN(dnnl_memory_create(&b->wts[i], &w_want, m->engine, DNNL_MEMORY_ALLOCATE));
        b->bytes += dnnl_memory_desc_get_size(&w_want);
        st = dnnl_memory_create(&user, &w_user, m->engine, l->w);
        if (st == dnnl_success)
            st = dnnl_reorder_primitive_desc_create(&rpd, &w_user, m->engine, &w_want,
                                                    m->engine, NULL);
        if (st == dnnl_success) st = dnnl_primitive_create(&reorder, rpd);
        if (st == dnnl_success) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, b->wts[i]}};
            st = dnnl_primitive_execute(reorder, m->stream, 2, args);
        }
        if (st == dnnl_success) st = dnnl_stream_wait(m->stream);
        if (reorder) dnnl_primitive_destroy(reorder);
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (user) dnnl_memory_destroy(user);
        if (st != dnnl_success)
            return aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                               "weights reorder layer %zu (status %d)", i, (int)st);
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_mlp_batch_build(aas_mlp_t *m, aas_mlp_batch_t *b, int64_t rows,
                                     char *errstr, size_t errstr_size) {
    int64_t widest = 0;
    for (size_t i = 0; i + 1 < m->n_layers; i++)
        if (m->layers[i].out > widest) widest = m->layers[i].out;
    if (widest > 0) {
        size_t n = (size_t)(rows * widest) * sizeof(float);
        if (!(b->act[0] = malloc(n)) || !(b->act[1] = malloc(n))) return AAS_ERR_NOMEM;
        b->bytes += 2 * n;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_err_t err = aas_mlp_layer_build(m, b, i, rows, errstr, errstr_size);
        if (err) return err;
    }
    if (m->base.classifier) {
        dnnl_memory_desc_t md;
        dnnl_dims_t dd = {rows, m->base.output_dim};
        dnnl_softmax_desc_t sd;
        dnnl_primitive_desc_t pd;
        AAS_DNN(dnnl_memory_desc_init_by_tag(&md, 2, dd, dnnl_f32, dnnl_nc));
        AAS_DNN(dnnl_softmax_forward_desc_init(&sd, dnnl_forward_inference, &md, 1));
        AAS_DNN(dnnl_primitive_desc_create(&pd, &sd, NULL, m->engine, NULL));
        dnnl_status_t st = dnnl_primitive_create(&b->softmax, pd);
        dnnl_primitive_desc_destroy(pd);
        AAS_DNN(st);
    }
    b->rows = rows;
    return AAS_ERR_OK;
}

/* The cached primitives for `rows`, building them (and evicting the least
 * recently used batch size) on a miss. */
static aas_err_t aas_mlp_batch_get(aas_mlp_t *m, int64_t rows, aas_mlp_batch_t **out,
                                   char *errstr, size_t errstr_size) {
    aas_mlp_batch_t *slot = &m->cache[0];
    for (int i = 0; i < AAS_MLP_CACHE; i++) {
        if (m->cache[i].rows == rows) {
            m->cache[i].last_use = ++m->clock;
            *out = &m->cache[i];
            return AAS_ERR_OK;
        }
        if (m->cache[i].rows == 0 ||
            (slot->rows != 0 && m->cache[i].last_use < slot->last_use))
            slot = &m->cache[i];
    }
    if (slot->rows) {
        m->base.footprint -= slot->bytes;
        aas_mlp_batch_free(slot, m->n_layers);
    }
    aas_err_t err = aas_mlp_batch_build(m, slot, rows, errstr, errstr_size);
    if (err) {
        if (err == AAS_ERR_NOMEM)
            aas_err_set(errstr, errstr_size, err, "out of memory for batch of %lld",
                        (long long)rows);
        aas_mlp_batch_free(slot, m->n_layers);
        return err;
    }
    slot->last_use = ++m->clock;
    m->base.footprint += slot->bytes;
    *out = slot;
    return AAS_ERR_OK;
}

static aas_err_t aas_mlp_infer(aas_model_t *base, const float *in, int64_t rows,
                               float *out, char *errstr, size_t errstr_size) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    aas_mlp_batch_t *b;
    aas_err_t err = aas_mlp_batch_get(m, rows, &b, errstr, errstr_size);
    if (err) return err;
    const float *x = in;
    for (size_t i = 0; i < m->n_layers; i++) {
        float *y = i + 1 == m->n_layers ? out : b->act[i % 2];
        AAS_DNN(dnnl_memory_set_data_handle(b->src[i], (void *)x));
        AAS_DNN(dnnl_memory_set_data_handle(b->dst[i], y));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, b->src[i]},
                                   {DNNL_ARG_WEIGHTS, b->wts[i]},
                                   {DNNL_ARG_BIAS, b->bias[i]},
                                   {DNNL_ARG_DST, b->dst[i]}};
        AAS_DNN(dnnl_primitive_execute(b->ip[i], m->stream, 4, args));
        x = y;
    }
    if (b->softmax) {
        /* In place on the output. */
        dnnl_memory_t last = b->dst[m->n_layers - 1];
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, last}, {DNNL_ARG_DST, last}};
        AAS_DNN(dnnl_primitive_execute(b->softmax, m->stream, 2, args));
    }
    AAS_DNN(dnnl_stream_wait(m->stream));
    return AAS_ERR_OK;
}

const aas_model_ops_t aas_model_mlp_ops = {"mlp", aas_mlp_probe, aas_mlp_load,
                                           aas_mlp_destroy, aas_mlp_infer};

/* ---- writer ---- */

static void aas_wr_u32(unsigned char **p, uint32_t v) {
    (*p)[0] = (unsigned char)v;
    (*p)[1] = (unsigned char)(v >> 8);
    (*p)[2] = (unsigned char)(v >> 16);
    (*p)[3] = (unsigned char)(v >> 24);
    *p += 4;
}

aas_err_t aas_mlp_serialize(const aas_mlp_layer_t *layers, size_t n_layers,
                            const char *const *labels, size_t n_labels,
                            void **blob, size_t *len, char *errstr,
                            size_t errstr_size) {
    if (n_layers < 1 || n_layers > AAS_MLP_MAX_LAYERS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "1..%d layers",
                           AAS_MLP_MAX_LAYERS);
    size_t size = 8 + 8 + 8 * n_layers + 4;
    for (size_t i = 0; i < n_layers; i++) {
        const aas_mlp_layer_t *l = &layers[i];
        if (l->in < 1 || l->out < 1 || l->in > AAS_MLP_MAX_DIM || l->out > AAS_MLP_MAX_DIM ||
            (i > 0 && l->in != layers[i - 1].out) || (int)l->act < 0 ||
            l->act > AAS_ACT_SOFTMAX || (l->act == AAS_ACT_SOFTMAX && i + 1 != n_layers))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "layer %zu: bad dims or activation", i);
        size += (size_t)(l->out * l->in + l->out) * 4;
    }
    if (n_labels && n_labels != (size_t)layers[n_layers - 1].out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%zu labels for %lld outputs", n_labels,
                           (long long)layers[n_layers - 1].out);
    for (size_t i = 0; i < n_labels; i++) {
        if (strlen(labels[i]) > AAS_MLP_MAX_LABEL)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "label %zu too long", i);
        size += 2 + strlen(labels[i]);
    }
    unsigned char *buf = malloc(size), *p = buf;
    if (!buf) return AAS_ERR_NOMEM;
    memcpy(p, AAS_MLP_MAGIC, 8);
    p += 8;
    aas_wr_u32(&p, (uint32_t)n_layers);
    aas_wr_u32(&p, (uint32_t)layers[0].in);
    for (size_t i = 0; i < n_layers; i++) {
        aas_wr_u32(&p, (uint32_t)layers[i].out);
        aas_wr_u32(&p, (uint32_t)layers[i].act);
    }
    for (size_t i = 0; i < n_layers; i++) {
        size_t nw = (size_t)(layers[i].out * layers[i].in);
        memcpy(p, layers[i].weights, nw * 4);
        p += nw * 4;
        memcpy(p, layers[i].bias, (size_t)layers[i].out * 4);
        p += (size_t)layers[i].out * 4;
    }
    aas_wr_u32(&p, (uint32_t)n_labels);
    for (size_t i = 0; i < n_labels; i++) {
        size_t ll = strlen(labels[i]);
        *p++ = (unsigned char)ll;
        *p++ = (unsigned char)(ll >> 8);
        memcpy(p, labels[i], ll);
        p += ll;
    }
    *blob = buf;
    *len = size;
    return AAS_ERR_OK;
}
