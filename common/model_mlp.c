/*
 * model_mlp.c - the native feed-forward format "AASMLP1": validating load
 * and the writer (docs/model-format.md).
 *
 * Loading validates the whole blob (every count against the bytes left,
 * finite weights, softmax only last, labels, exact length) before it
 * allocates anything, then copies the weights.  Running them is
 * model_mlp_run.c's job (oneDNN primitives per batch-size bucket, f32, bf16
 * or int8).  Nothing here trains or quantizes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_mlp_int.h"

#define AAS_MLP_MAGIC "AASMLP1"   /* 8 bytes with the NUL */
#define AAS_MLP_MAGIC_LEN 8

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


static void aas_mlp_destroy(aas_model_t *base) {
    aas_mlp_t *m = (aas_mlp_t *)base;
    if (!m) return;
    aas_mlp_run_free(m);
    for (size_t i = 0; m->layers && i < m->n_layers; i++) {
        free(m->layers[i].w);
        free(m->layers[i].b);
    }
    free(m->layers);
    if (m->base.labels)
        for (int64_t i = 0; i < m->base.output_dim; i++) free(m->base.labels[i]);
    free(m->base.labels);
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
        if (l->in > m->widest_in) m->widest_in = l->in;
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
    if ((err = aas_mlp_run_init(m, errstr, errstr_size))) {
        aas_mlp_destroy(&m->base);
        return err;
    }
    aas_mlp_update_footprint(m);
    *out = &m->base;
    return AAS_ERR_OK;
}

static int aas_mlp_probe(const void *blob, size_t len) {
    return len >= AAS_MLP_MAGIC_LEN && memcmp(blob, AAS_MLP_MAGIC, AAS_MLP_MAGIC_LEN) == 0;
}

const aas_model_ops_t aas_model_mlp_ops = {"AASMLP1", aas_mlp_probe, aas_mlp_load,
                                           aas_mlp_destroy, aas_mlp_infer,
                                           NULL /* takes no text */,
                                           aas_mlp_set_precision};

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
