/*
 * model_mlp.c - the native feed-forward format "AASMLP1" and its oneDNN
 * inference (docs/model-format.md).
 *
 * Loading validates the whole blob (every count against the bytes left,
 * finite weights, softmax only last, labels, exact length) before it
 * allocates anything, then copies the weights.  Each dense layer runs as an
 * inner_product forward_inference primitive with its activation fused as an
 * eltwise post-op; a softmax primitive closes a classifier, in place on the
 * caller's output.  Primitives are built once per batch size and kept in a
 * small LRU (AAS_MLP_CACHE entries); the weights are reordered once into each
 * layout the primitives ask for and shared between batch sizes.
 *
 * It does not train, quantise or run anything but f32 on the CPU engine.
 * oneDNN's status codes become aas_err_t through dnn.h, shared with the
 * training code.
 */
#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn.h"
#include "model_int.h"

#define AAS_MLP_MAGIC "AASMLP1"   /* 8 bytes with the NUL */
#define AAS_MLP_MAGIC_LEN 8
#define AAS_MLP_CACHE 8           /* batch sizes kept */
/* Host memory a cached primitive holds beyond the buffers we count, a
 * nominal figure so that footprint grows with the cache. */
#define AAS_MLP_PRIM_BYTES 4096

/* ---- data ---- */

/* Weights in one layout some primitive asked for, shared by the batch
 * sizes whose primitives want that layout (refs). */
typedef struct aas_mlp_wts_s {
    struct aas_mlp_wts_s *next;
    dnnl_memory_desc_t md;
    dnnl_memory_t mem;
    size_t bytes;        /* allocated by oneDNN; 0 if mem wraps layer->w */
    int refs;
} aas_mlp_wts_t;

typedef struct {
    int64_t in, out;
    aas_act_t act;
    float *w;            /* out x in, row-major ("oi") */
    float *b;            /* out */
    dnnl_memory_t bias;  /* wraps b */
    aas_mlp_wts_t *wts;  /* layouts in use */
} aas_mlp_layer_data_t;

/* Everything that depends on the batch size. */
typedef struct {
    int64_t rows;        /* 0 = empty slot */
    uint64_t last_use;
    dnnl_primitive_t ip[AAS_MLP_MAX_LAYERS];
    dnnl_memory_t src[AAS_MLP_MAX_LAYERS], dst[AAS_MLP_MAX_LAYERS];
    aas_mlp_wts_t *wts[AAS_MLP_MAX_LAYERS];   /* one reference each */
    dnnl_primitive_t softmax;
    float *act[2];       /* ping-pong buffers for hidden activations */
    size_t bytes;        /* act buffers + nominal primitive bytes */
} aas_mlp_batch_t;

typedef struct {
    aas_model_t base;    /* first: model.c sees only this */
    size_t n_layers;
    aas_mlp_layer_data_t *layers;
    int64_t widest;      /* largest hidden (not last) out dim, 0 if none */
    int64_t max_rows;    /* rows above this would overflow a buffer size */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    aas_mlp_batch_t cache[AAS_MLP_CACHE];
    uint64_t clock;
    size_t fixed_bytes;  /* struct, weights, biases, labels */
} aas_mlp_t;

/* ---- little-endian reader over the blob ---- */

typedef struct {
    const unsigned char *p;
    size_t left;
    size_t off;          /* offset of p in the blob, for messages */
} aas_rd_t;

static int aas_rd_u32(aas_rd_t *r, uint32_t *v) {
    if (r->left < 4) return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    r->off += 4;
    return 0;
}

static int aas_rd_u16(aas_rd_t *r, uint32_t *v) {
    if (r->left < 2) return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8;
    r->p += 2;
    r->left -= 2;
    r->off += 2;
    return 0;
}

static void aas_rd_skip(aas_rd_t *r, size_t n) {
    r->p += n;
    r->left -= n;
    r->off += n;
}

/* Index of the first NaN/Inf among n little-endian f32 at p, or n. */
static size_t aas_mlp_first_nonfinite(const unsigned char *p, size_t n) {
    for (size_t k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, p + 4 * k, 4); /* little-endian host (checked by CMake) */
        if ((u & 0x7f800000u) == 0x7f800000u) return k;
    }
    return n;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or NUL). */
static int aas_mlp_utf8_ok(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp, min;
        size_t k;
        if (c == 0) return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* ---- format: validate everything, then allocate ---- */

/* What the validating pass learns about a blob. */
typedef struct {
    uint32_t n_layers, in_dim, n_labels;
    uint32_t out[AAS_MLP_MAX_LAYERS], act[AAS_MLP_MAX_LAYERS];
    size_t weights_off;  /* first weight byte */
    size_t labels_off;   /* first byte after the label count */
    size_t labels_bytes; /* sum of label lengths */
} aas_mlp_hdr_t;

#define AAS_MLP_BAD(...)                                                      \
    aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "AASMLP1: " __VA_ARGS__)

static aas_err_t aas_mlp_check(const void *blob, size_t len, aas_mlp_hdr_t *h,
                               char *errstr, size_t errstr_size) {
    aas_rd_t r = {blob, len, 0};
    if (len < AAS_MLP_MAGIC_LEN || memcmp(blob, AAS_MLP_MAGIC, AAS_MLP_MAGIC_LEN))
        return AAS_MLP_BAD("bad magic");
    aas_rd_skip(&r, AAS_MLP_MAGIC_LEN);
    if (aas_rd_u32(&r, &h->n_layers) || aas_rd_u32(&r, &h->in_dim))
        return AAS_MLP_BAD("truncated header (%zu bytes)", len);
    if (h->n_layers < 1 || h->n_layers > AAS_MLP_MAX_LAYERS)
        return AAS_MLP_BAD("%u layers, must be 1..%d", h->n_layers,
                           AAS_MLP_MAX_LAYERS);
    if (h->in_dim < 1 || h->in_dim > AAS_MLP_MAX_DIM)
        return AAS_MLP_BAD("input dim %u, must be 1..%d", h->in_dim,
                           AAS_MLP_MAX_DIM);
    uint64_t params = 0, prev = h->in_dim;
    for (uint32_t i = 0; i < h->n_layers; i++) {
        if (aas_rd_u32(&r, &h->out[i]) || aas_rd_u32(&r, &h->act[i]))
            return AAS_MLP_BAD("truncated layer table at byte %zu", r.off);
        if (h->out[i] < 1 || h->out[i] > AAS_MLP_MAX_DIM)
            return AAS_MLP_BAD("layer %u: out dim %u, must be 1..%d", i,
                               h->out[i], AAS_MLP_MAX_DIM);
        if (h->act[i] > AAS_ACT_SOFTMAX)
            return AAS_MLP_BAD("layer %u: unknown activation %u", i, h->act[i]);
        if (h->act[i] == AAS_ACT_SOFTMAX && i + 1 != h->n_layers)
            return AAS_MLP_BAD("layer %u: softmax is allowed on the last layer "
                               "only", i);
        /* Both factors <= 2^20: no overflow in 64 bits. */
        params += (uint64_t)h->out[i] * prev + h->out[i];
        if (params > (uint64_t)AAS_MLP_MAX_PARAMS)
            return AAS_MLP_BAD("more than %lld parameters",
                               (long long)AAS_MLP_MAX_PARAMS);
        prev = h->out[i];
    }
    h->weights_off = r.off;
    if ((uint64_t)r.left / 4 < params)
        return AAS_MLP_BAD("truncated: %llu parameters declared, %zu bytes left "
                           "at byte %zu",
                           (unsigned long long)params, r.left, r.off);
    prev = h->in_dim;
    for (uint32_t i = 0; i < h->n_layers; i++) {
        size_t nw = (size_t)(h->out[i] * prev), bad;
        if ((bad = aas_mlp_first_nonfinite(r.p, nw)) < nw)
            return AAS_MLP_BAD("layer %u: weight %zu is NaN or Inf", i, bad);
        aas_rd_skip(&r, 4 * nw);
        if ((bad = aas_mlp_first_nonfinite(r.p, h->out[i])) < h->out[i])
            return AAS_MLP_BAD("layer %u: bias %zu is NaN or Inf", i, bad);
        aas_rd_skip(&r, 4 * (size_t)h->out[i]);
        prev = h->out[i];
    }
    if (aas_rd_u32(&r, &h->n_labels))
        return AAS_MLP_BAD("truncated label count at byte %zu", r.off);
    if (h->n_labels != 0 && h->n_labels != prev)
        return AAS_MLP_BAD("%u labels for %llu outputs (want 0 or %llu)",
                           h->n_labels, (unsigned long long)prev,
                           (unsigned long long)prev);
    h->labels_off = r.off;
    h->labels_bytes = 0;
    for (uint32_t i = 0; i < h->n_labels; i++) {
        uint32_t ll;
        if (aas_rd_u16(&r, &ll))
            return AAS_MLP_BAD("truncated label %u at byte %zu", i, r.off);
        if (ll < 1 || ll > AAS_MLP_MAX_LABEL_LEN)
            return AAS_MLP_BAD("label %u: length %u, must be 1..%d", i, ll,
                               AAS_MLP_MAX_LABEL_LEN);
        if (ll > r.left)
            return AAS_MLP_BAD("truncated label %u: %u bytes, %zu left", i, ll,
                               r.left);
        if (!aas_mlp_utf8_ok(r.p, ll))
            return AAS_MLP_BAD("label %u is not UTF-8 (or holds NUL)", i);
        aas_rd_skip(&r, ll);
        h->labels_bytes += ll;
    }
    if (r.left != 0)
        return AAS_MLP_BAD("%zu unexpected trailing bytes at byte %zu", r.left,
                           r.off);
    return AAS_ERR_OK;
}

static void aas_mlp_batch_free(aas_mlp_t *m, aas_mlp_batch_t *b);

static void aas_mlp_destroy(aas_model_t *base) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    if (!m) return;
    for (int i = 0; i < AAS_MLP_CACHE; i++) aas_mlp_batch_free(m, &m->cache[i]);
    for (size_t i = 0; m->layers && i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        while (l->wts) { /* only if a batch leaked a reference */
            aas_mlp_wts_t *v = l->wts;
            l->wts = v->next;
            dnnl_memory_destroy(v->mem);
            free(v);
        }
        if (l->bias) dnnl_memory_destroy(l->bias);
        free(l->w);
        free(l->b);
    }
    free(m->layers);
    if (m->base.labels)
        for (int64_t i = 0; i < m->base.output_dim; i++) free(m->base.labels[i]);
    free(m->base.labels);
    if (m->stream) dnnl_stream_destroy(m->stream);
    if (m->engine) dnnl_engine_destroy(m->engine);
    free(m);
}

/* Copy a validated blob into m (allocations only). */
static aas_err_t aas_mlp_fill(aas_mlp_t *m, const unsigned char *blob,
                              const aas_mlp_hdr_t *h) {
    if (!(m->layers = calloc(h->n_layers, sizeof(*m->layers))))
        return AAS_ERR_NOMEM;
    m->n_layers = h->n_layers;
    m->fixed_bytes = sizeof(*m) + h->n_layers * sizeof(*m->layers);
    const unsigned char *p = blob + h->weights_off;
    int64_t prev = h->in_dim;
    for (size_t i = 0; i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        l->in = prev;
        l->out = h->out[i];
        l->act = (aas_act_t)h->act[i];
        size_t nw = (size_t)(l->out * l->in), nb = (size_t)l->out;
        if (!(l->w = malloc(nw * 4)) || !(l->b = malloc(nb * 4)))
            return AAS_ERR_NOMEM;
        memcpy(l->w, p, nw * 4);
        p += nw * 4;
        memcpy(l->b, p, nb * 4);
        p += nb * 4;
        m->fixed_bytes += (nw + nb) * 4;
        if (i + 1 < m->n_layers && l->out > m->widest) m->widest = l->out;
        prev = l->out;
    }
    m->base.input_dim = h->in_dim;
    m->base.output_dim = prev;
    m->base.classifier = m->layers[m->n_layers - 1].act == AAS_ACT_SOFTMAX;
    if (h->n_labels) {
        if (!(m->base.labels = calloc(h->n_labels, sizeof(char *))))
            return AAS_ERR_NOMEM;
        m->fixed_bytes += h->n_labels * (sizeof(char *) + 1) + h->labels_bytes;
        p = blob + h->labels_off;
        for (uint32_t i = 0; i < h->n_labels; i++) {
            size_t ll = (size_t)p[0] | (size_t)p[1] << 8;
            if (!(m->base.labels[i] = malloc(ll + 1))) return AAS_ERR_NOMEM;
            memcpy(m->base.labels[i], p + 2, ll);
            m->base.labels[i][ll] = '\0';
            p += 2 + ll;
        }
    }
    /* Largest rows for which rows * dim * 4 fits in int64 for every dim. */
    int64_t widest_any = h->in_dim > prev ? h->in_dim : prev;
    if (m->widest > widest_any) widest_any = m->widest;
    m->max_rows = INT64_MAX / 4 / widest_any;
    return AAS_ERR_OK;
}

static void aas_mlp_update_footprint(aas_mlp_t *m) {
    size_t bytes = m->fixed_bytes;
    for (size_t i = 0; i < m->n_layers; i++)
        for (const aas_mlp_wts_t *v = m->layers[i].wts; v; v = v->next)
            bytes += sizeof(*v) + v->bytes;
    for (int i = 0; i < AAS_MLP_CACHE; i++) bytes += m->cache[i].bytes;
    m->base.footprint = bytes;
}

static aas_err_t aas_mlp_load(const void *blob, size_t len, aas_model_t **out,
                              char *errstr, size_t errstr_size) {
    aas_mlp_hdr_t h = {0}; /* -O2 cannot see that check fills it */
    aas_err_t err = aas_mlp_check(blob, len, &h, errstr, errstr_size);
    if (err) return err;
    aas_mlp_t *m = calloc(1, sizeof(*m));
    if (!m || (err = aas_mlp_fill(m, blob, &h)) != AAS_ERR_OK) {
        if (m) aas_mlp_destroy(&m->base);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory loading a %zu-byte model", len);
    }
    err = AAS_DNN_CHECK(dnnl_engine_create(&m->engine, dnnl_cpu, 0));
    if (!err)
        err = AAS_DNN_CHECK(dnnl_stream_create(&m->stream, m->engine,
                                               dnnl_stream_default_flags));
    for (size_t i = 0; !err && i < m->n_layers; i++) {
        aas_mlp_layer_data_t *l = &m->layers[i];
        dnnl_memory_desc_t md;
        dnnl_dims_t bd = {l->out};
        err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&md, 1, bd, dnnl_f32,
                                                         dnnl_x));
        if (!err)
            err = AAS_DNN_CHECK(dnnl_memory_create(&l->bias, &md, m->engine, l->b));
    }
    if (err) {
        aas_mlp_destroy(&m->base);
        return err;
    }
    aas_mlp_update_footprint(m);
    *out = &m->base;
    return AAS_ERR_OK;
}

/* ---- weights, reordered once per layout ---- */

/* A reference to layer li's weights in layout `want`, reordering from the
 * plain copy only the first time a primitive asks for that layout. */
static aas_err_t aas_mlp_wts_get(aas_mlp_t *m, size_t li,
                                 const dnnl_memory_desc_t *want,
                                 aas_mlp_wts_t **out, char *errstr,
                                 size_t errstr_size) {
    aas_mlp_layer_data_t *l = &m->layers[li];
    for (aas_mlp_wts_t *v = l->wts; v; v = v->next)
        if (dnnl_memory_desc_equal(&v->md, want)) {
            v->refs++;
            *out = v;
            return AAS_ERR_OK;
        }
    dnnl_memory_desc_t plain_md;
    dnnl_dims_t wd = {l->out, l->in};
    aas_err_t err = AAS_DNN_CHECK(
        dnnl_memory_desc_init_by_tag(&plain_md, 2, wd, dnnl_f32, dnnl_oi));
    if (err) return err;
    aas_mlp_wts_t *v = calloc(1, sizeof(*v));
    if (!v)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for layer %zu weights", li);
    v->md = *want;
    if (dnnl_memory_desc_equal(want, &plain_md)) {
        err = AAS_DNN_CHECK(dnnl_memory_create(&v->mem, want, m->engine, l->w));
    } else {
        dnnl_memory_t plain = NULL;
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_primitive_t reorder = NULL;
        err = AAS_DNN_CHECK(dnnl_memory_create(&v->mem, want, m->engine,
                                               DNNL_MEMORY_ALLOCATE));
        if (!err) {
            v->bytes = dnnl_memory_desc_get_size(want);
            err = AAS_DNN_CHECK(dnnl_memory_create(&plain, &plain_md, m->engine, l->w));
        }
        if (!err)
            err = AAS_DNN_CHECK(dnnl_reorder_primitive_desc_create(
                &rpd, &plain_md, m->engine, want, m->engine, NULL));
        if (!err) err = AAS_DNN_CHECK(dnnl_primitive_create(&reorder, rpd));
        if (!err) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, v->mem}};
            err = AAS_DNN_CHECK(dnnl_primitive_execute(reorder, m->stream, 2, args));
        }
        if (!err) err = AAS_DNN_CHECK(dnnl_stream_wait(m->stream));
        if (reorder) dnnl_primitive_destroy(reorder);
        if (rpd) dnnl_primitive_desc_destroy(rpd);
        if (plain) dnnl_memory_destroy(plain);
    }
    if (err) {
        if (v->mem) dnnl_memory_destroy(v->mem);
        free(v);
        return err;
    }
    v->refs = 1;
    v->next = l->wts;
    l->wts = v;
    *out = v;
    return AAS_ERR_OK;
}

static void aas_mlp_wts_put(aas_mlp_t *m, size_t li, aas_mlp_wts_t *v) {
    if (!v || --v->refs > 0) return;
    for (aas_mlp_wts_t **pp = &m->layers[li].wts; *pp; pp = &(*pp)->next)
        if (*pp == v) {
            *pp = v->next;
            break;
        }
    dnnl_memory_destroy(v->mem);
    free(v);
}

/* ---- primitives for one batch size ---- */

static dnnl_alg_kind_t aas_mlp_alg(aas_act_t act) {
    switch (act) {
    case AAS_ACT_RELU: return dnnl_eltwise_relu;
    case AAS_ACT_TANH: return dnnl_eltwise_tanh;
    case AAS_ACT_SIGMOID: return dnnl_eltwise_logistic;
    default: return dnnl_alg_kind_undef;
    }
}

/* Releases what b holds (partially built is fine) and empties the slot. */
static void aas_mlp_batch_free(aas_mlp_t *m, aas_mlp_batch_t *b) {
    for (size_t i = 0; i < m->n_layers; i++) {
        if (b->ip[i]) dnnl_primitive_destroy(b->ip[i]);
        if (b->src[i]) dnnl_memory_destroy(b->src[i]);
        if (b->dst[i]) dnnl_memory_destroy(b->dst[i]);
        aas_mlp_wts_put(m, i, b->wts[i]);
    }
    if (b->softmax) dnnl_primitive_destroy(b->softmax);
    free(b->act[0]);
    free(b->act[1]);
    memset(b, 0, sizeof(*b));
}

static aas_err_t aas_mlp_layer_build(aas_mlp_t *m, aas_mlp_batch_t *b, size_t i,
                                     int64_t rows, char *errstr,
                                     size_t errstr_size) {
    aas_mlp_layer_data_t *l = &m->layers[i];
    dnnl_memory_desc_t src_md, w_any, dst_md;
    const dnnl_memory_desc_t *b_md = NULL;
    dnnl_dims_t sd = {rows, l->in}, wd = {l->out, l->in}, dd = {rows, l->out};
    dnnl_inner_product_desc_t ipd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    aas_err_t err;

    if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, dnnl_f32, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dnnl_f32,
                                                          dnnl_format_tag_any))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dd, dnnl_f32, dnnl_nc))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_get_memory_desc(l->bias, &b_md))) ||
        (err = AAS_DNN_CHECK(dnnl_inner_product_forward_desc_init(
             &ipd, dnnl_forward_inference, &src_md, &w_any, b_md, &dst_md))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_attr_create(&attr))))
        goto done;
    if (aas_mlp_alg(l->act) != dnnl_alg_kind_undef) {
        if ((err = AAS_DNN_CHECK(dnnl_post_ops_create(&po))) ||
            (err = AAS_DNN_CHECK(dnnl_post_ops_append_eltwise(
                 po, 1.0f /* scale */, aas_mlp_alg(l->act), 0.0f /* alpha */,
                 0.0f /* beta */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_attr_set_post_ops(attr, po))))
            goto done;
    }
    if ((err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &ipd, attr, m->engine,
                                                        NULL))) ||
        (err = AAS_DNN_CHECK(dnnl_primitive_create(&b->ip[i], pd))))
        goto done;
    const dnnl_memory_desc_t *w_want =
        dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!w_want) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                          "oneDNN gave no weights layout for layer %zu", i);
        goto done;
    }
    if ((err = aas_mlp_wts_get(m, i, w_want, &b->wts[i], errstr, errstr_size)) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(&b->src[i], &src_md, m->engine,
                                                DNNL_MEMORY_NONE))) ||
        (err = AAS_DNN_CHECK(dnnl_memory_create(&b->dst[i], &dst_md, m->engine,
                                                DNNL_MEMORY_NONE))))
        goto done;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return err;
}

static aas_err_t aas_mlp_batch_build(aas_mlp_t *m, aas_mlp_batch_t *b, int64_t rows,
                                     char *errstr, size_t errstr_size) {
    aas_err_t err;
    if (m->widest > 0) {
        size_t n = (size_t)(rows * m->widest) * sizeof(float);
        if (!(b->act[0] = malloc(n)) || !(b->act[1] = malloc(n)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for a batch of %lld rows",
                               (long long)rows);
        b->bytes += 2 * n;
    }
    for (size_t i = 0; i < m->n_layers; i++) {
        if ((err = aas_mlp_layer_build(m, b, i, rows, errstr, errstr_size)))
            return err;
        b->bytes += AAS_MLP_PRIM_BYTES;
    }
    if (m->base.classifier) {
        dnnl_memory_desc_t md;
        dnnl_dims_t dd = {rows, m->base.output_dim};
        dnnl_softmax_desc_t sd;
        dnnl_primitive_desc_t pd = NULL;
        if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&md, 2, dd, dnnl_f32,
                                                              dnnl_nc))) ||
            (err = AAS_DNN_CHECK(dnnl_softmax_forward_desc_init(
                 &sd, dnnl_forward_inference, &md, 1 /* axis */))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&pd, &sd, NULL,
                                                            m->engine, NULL))))
            return err;
        err = AAS_DNN_CHECK(dnnl_primitive_create(&b->softmax, pd));
        dnnl_primitive_desc_destroy(pd);
        if (err) return err;
        b->bytes += AAS_MLP_PRIM_BYTES;
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
        if (slot->rows != 0 &&
            (m->cache[i].rows == 0 || m->cache[i].last_use < slot->last_use))
            slot = &m->cache[i];
    }
    aas_mlp_batch_free(m, slot);
    aas_err_t err = aas_mlp_batch_build(m, slot, rows, errstr, errstr_size);
    if (err) aas_mlp_batch_free(m, slot);
    else slot->last_use = ++m->clock;
    aas_mlp_update_footprint(m);
    if (err) return err;
    *out = slot;
    return AAS_ERR_OK;
}

static aas_err_t aas_mlp_infer(aas_model_t *base, const float *in, int64_t rows,
                               float *out, char *errstr, size_t errstr_size) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    if (rows > m->max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld rows, limit %lld for this model",
                           (long long)rows, (long long)m->max_rows);
    aas_mlp_batch_t *b;
    aas_err_t err = aas_mlp_batch_get(m, rows, &b, errstr, errstr_size);
    if (err) return err;
    const float *x = in;
    for (size_t i = 0; i < m->n_layers; i++) {
        float *y = i + 1 == m->n_layers ? out : b->act[i % 2];
        /* oneDNN takes a void *; the source is only read. */
        if ((err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->src[i], (void *)x))) ||
            (err = AAS_DNN_CHECK(dnnl_memory_set_data_handle(b->dst[i], y))))
            return err;
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, b->src[i]},
                                   {DNNL_ARG_WEIGHTS, b->wts[i]->mem},
                                   {DNNL_ARG_BIAS, m->layers[i].bias},
                                   {DNNL_ARG_DST, b->dst[i]}};
        if ((err = AAS_DNN_CHECK(dnnl_primitive_execute(b->ip[i], m->stream, 4, args))))
            return err;
        x = y;
    }
    if (b->softmax) {
        dnnl_memory_t last = b->dst[m->n_layers - 1]; /* in place on out */
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, last}, {DNNL_ARG_DST, last}};
        if ((err = AAS_DNN_CHECK(dnnl_primitive_execute(b->softmax, m->stream, 2, args))))
            return err;
    }
    return AAS_DNN_CHECK(dnnl_stream_wait(m->stream));
}

static int aas_mlp_probe(const void *blob, size_t len) {
    return len >= AAS_MLP_MAGIC_LEN && memcmp(blob, AAS_MLP_MAGIC, AAS_MLP_MAGIC_LEN) == 0;
}

const aas_model_ops_t aas_model_mlp_ops = {"mlp", aas_mlp_probe, aas_mlp_load,
                                           aas_mlp_destroy, aas_mlp_infer,
                                           NULL /* takes no text */};

/* ---- writer ---- */

static void aas_wr_u32(unsigned char **p, uint32_t v) {
    (*p)[0] = (unsigned char)v;
    (*p)[1] = (unsigned char)(v >> 8);
    (*p)[2] = (unsigned char)(v >> 16);
    (*p)[3] = (unsigned char)(v >> 24);
    *p += 4;
}

#define AAS_MLP_INVAL(...)                                                    \
    aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_mlp_serialize: " __VA_ARGS__)

aas_err_t aas_mlp_serialize(const aas_mlp_layer_t *layers, size_t n_layers,
                            const char *const *labels, size_t n_labels,
                            void **blob, size_t *len, char *errstr,
                            size_t errstr_size) {
    if (!layers || !blob || !len || (n_labels && !labels))
        return AAS_MLP_INVAL("NULL argument");
    if (n_layers < 1 || n_layers > AAS_MLP_MAX_LAYERS)
        return AAS_MLP_INVAL("%zu layers, must be 1..%d", n_layers,
                             AAS_MLP_MAX_LAYERS);
    uint64_t params = 0;
    for (size_t i = 0; i < n_layers; i++) {
        const aas_mlp_layer_t *l = &layers[i];
        if (l->in < 1 || l->out < 1 || l->in > AAS_MLP_MAX_DIM ||
            l->out > AAS_MLP_MAX_DIM)
            return AAS_MLP_INVAL("layer %zu: dims %lld x %lld outside 1..%d", i,
                                 (long long)l->out, (long long)l->in,
                                 AAS_MLP_MAX_DIM);
        if (i > 0 && l->in != layers[i - 1].out)
            return AAS_MLP_INVAL("layer %zu: in %lld != previous out %lld", i,
                                 (long long)l->in, (long long)layers[i - 1].out);
        if ((int)l->act < 0 || l->act > AAS_ACT_SOFTMAX)
            return AAS_MLP_INVAL("layer %zu: unknown activation %d", i, (int)l->act);
        if (l->act == AAS_ACT_SOFTMAX && i + 1 != n_layers)
            return AAS_MLP_INVAL("layer %zu: softmax only on the last layer", i);
        if (!l->weights || !l->bias)
            return AAS_MLP_INVAL("layer %zu: NULL weights or bias", i);
        size_t nw = (size_t)(l->out * l->in), nb = (size_t)l->out;
        if (aas_mlp_first_nonfinite((const unsigned char *)l->weights, nw) < nw ||
            aas_mlp_first_nonfinite((const unsigned char *)l->bias, nb) < nb)
            return AAS_MLP_INVAL("layer %zu: NaN or Inf parameter", i);
        params += nw + nb;
        if (params > (uint64_t)AAS_MLP_MAX_PARAMS)
            return AAS_MLP_INVAL("more than %lld parameters",
                                 (long long)AAS_MLP_MAX_PARAMS);
    }
    if (n_labels && n_labels != (size_t)layers[n_layers - 1].out)
        return AAS_MLP_INVAL("%zu labels for %lld outputs", n_labels,
                             (long long)layers[n_layers - 1].out);
    size_t label_bytes = 0;
    for (size_t i = 0; i < n_labels; i++) {
        size_t ll = labels[i] ? strlen(labels[i]) : 0;
        if (ll < 1 || ll > AAS_MLP_MAX_LABEL_LEN)
            return AAS_MLP_INVAL("label %zu: length %zu, must be 1..%d", i, ll,
                                 AAS_MLP_MAX_LABEL_LEN);
        if (!aas_mlp_utf8_ok((const unsigned char *)labels[i], ll))
            return AAS_MLP_INVAL("label %zu is not UTF-8", i);
        label_bytes += 2 + ll;
    }
    /* params <= 2^28 and label_bytes <= 2^20 * 258: fits a 64-bit size_t. */
    size_t size = AAS_MLP_MAGIC_LEN + 8 + 8 * n_layers + (size_t)params * 4 + 4 +
                  label_bytes;
    unsigned char *buf = malloc(size), *p = buf;
    if (!buf)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "aas_mlp_serialize: out of memory for %zu bytes", size);
    memcpy(p, AAS_MLP_MAGIC, AAS_MLP_MAGIC_LEN);
    p += AAS_MLP_MAGIC_LEN;
    aas_wr_u32(&p, (uint32_t)n_layers);
    aas_wr_u32(&p, (uint32_t)layers[0].in);
    for (size_t i = 0; i < n_layers; i++) {
        aas_wr_u32(&p, (uint32_t)layers[i].out);
        aas_wr_u32(&p, (uint32_t)layers[i].act);
    }
    for (size_t i = 0; i < n_layers; i++) {
        size_t nw = (size_t)(layers[i].out * layers[i].in);
        memcpy(p, layers[i].weights, nw * 4); /* little-endian host */
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
