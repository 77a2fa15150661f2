/*
 * model_text2.c - the text classifier kind "AASTXT2" (model_text2.h,
 * docs/model-format.md#aastxt2, docs/text.md).
 *
 * Blob, integers and floats little-endian:
 *   0  "AASTXT2\0"
 *   8  u32 featurizer version (2)
 *   12 u32 dim
 *   16 u8 char_min, u8 char_max, u8 word_max, u8 flags (bit 0 sublinear
 *      TF, bit 1 IDF weights present; other bits refused)
 *   20 u32 head (1 linear, 2 MLP)
 *   24 u32 classes
 *   28 u32 reserved, 0
 *   32 u64 training documents
 *   40 u64 body bytes (exactly what follows)
 *   48 body: f32 idf[dim] if flagged, then
 *      linear: f32 w[dim][classes] (feature-major: a feature's weights are
 *              together, so a sparse row reads nnz short runs), f32
 *              b[classes], u32 label count (0 or classes), per label a u16
 *              length and its bytes;
 *      MLP:    an AASMLP1 blob taking dim inputs (it carries the labels).
 *
 * The linear head never densifies: logits are sums over the text's
 * features, so serving costs O(features x classes), whatever dim is.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"
#include "model_text2.h"

#define AAS_TXT2_MAGIC "AASTXT2"
#define AAS_TXT2_HEADER 48
#define AAS_TXT2_F_SUBLINEAR 1u
#define AAS_TXT2_F_IDF 2u

typedef struct {
    aas_model_t base;
    aas_textfeat_conf_t feat;
    int head;
    float *idf;            /* dim or NULL, owned */
    float *w, *b;          /* linear head, owned */
    aas_model_t *inner;    /* MLP head, owned */
    aas_textfeat_t *tf;    /* featurizer with its scratch */
    float *dense;          /* MLP head: rows x dim scratch */
    int64_t dense_rows;
    double *logits;        /* classes */
} aas_txt2_t;

static uint64_t aas_txt2_get(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void aas_txt2_put(unsigned char *p, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static int aas_txt2_probe(const void *blob, size_t len) {
    return len >= 8 && memcmp(blob, AAS_TXT2_MAGIC, 8) == 0;
}

static void aas_txt2_footprint(aas_txt2_t *t) {
    int64_t dim = t->feat.dim, c = t->base.output_dim;
    t->base.footprint = sizeof(*t) + aas_textfeat_footprint(t->tf) +
                        (t->idf ? (size_t)dim * 4 : 0) +
                        (t->w ? (size_t)(dim * c + c) * 4 : 0) + (size_t)c * 8 +
                        (t->inner ? aas_model_footprint(t->inner) : 0) +
                        (size_t)(t->dense_rows * dim) * 4;
}

static void aas_txt2_destroy(aas_model_t *base) {
    aas_txt2_t *t = (aas_txt2_t *)base;
    if (t->base.labels && !t->inner)
        for (int64_t i = 0; i < t->base.output_dim; i++) free(t->base.labels[i]);
    if (!t->inner) free(t->base.labels);
    aas_model_destroy(t->inner);
    aas_textfeat_destroy(t->tf);
    free(t->idf);
    free(t->w);
    free(t->b);
    free(t->dense);
    free(t->logits);
    free(t);
}

#define AAS_TXT2_BAD(...) aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "AASTXT2: " __VA_ARGS__)

static int aas_txt2_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Copy n floats out of the blob, checked finite. */
static aas_err_t aas_txt2_floats(const unsigned char *p, size_t n, float **out,
                                 const char *what, char *errstr, size_t errstr_size) {
    if (!(*out = malloc((n ? n : 1) * sizeof(float))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(*out, p, n * sizeof(float));
    if (!aas_txt2_finite(*out, n)) return AAS_TXT2_BAD("%s has a NaN or infinity", what);
    return AAS_ERR_OK;
}

static aas_err_t aas_txt2_labels(aas_txt2_t *t, const unsigned char *p, size_t n,
                                 char *errstr, size_t errstr_size) {
    if (n < 4) return AAS_TXT2_BAD("truncated label count");
    uint32_t count = (uint32_t)aas_txt2_get(p, 4);
    int64_t c = t->base.output_dim;
    if (count != 0 && count != (uint64_t)c)
        return AAS_TXT2_BAD("%u labels for %lld classes", count, (long long)c);
    size_t off = 4;
    if (count && !(t->base.labels = calloc((size_t)c, sizeof(char *))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        if (n - off < 2) return AAS_TXT2_BAD("truncated label %u", i);
        size_t ll = (size_t)aas_txt2_get(p + off, 2);
        off += 2;
        if (ll == 0 || n - off < ll) return AAS_TXT2_BAD("label %u: bad length", i);
        if (!(t->base.labels[i] = malloc(ll + 1)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        memcpy(t->base.labels[i], p + off, ll);
        t->base.labels[i][ll] = '\0';
        off += ll;
    }
    if (off != n) return AAS_TXT2_BAD("%zu bytes after the labels", n - off);
    return AAS_ERR_OK;
}

static aas_err_t aas_txt2_load_body(aas_txt2_t *t, const unsigned char *p, size_t n,
                                    int has_idf, char *errstr, size_t errstr_size) {
    uint64_t dim = (uint64_t)t->feat.dim, c = (uint64_t)t->base.output_dim;
    aas_err_t err;
    if (has_idf) {
        if (n < dim * 4) return AAS_TXT2_BAD("truncated IDF weights");
        if ((err = aas_txt2_floats(p, dim, &t->idf, "an IDF weight", errstr, errstr_size)))
            return err;
        p += dim * 4;
        n -= dim * 4;
    }
    if (t->head == AAS_TEXT2_HEAD_LINEAR) {
        if (dim * c > (uint64_t)AAS_TEXT2_LINEAR_MAX_WEIGHTS)
            return AAS_TXT2_BAD("%llu x %llu weights, the limit is %lld",
                                (unsigned long long)dim, (unsigned long long)c,
                                (long long)AAS_TEXT2_LINEAR_MAX_WEIGHTS);
        if (n < (dim * c + c) * 4) return AAS_TXT2_BAD("truncated weights");
        if ((err = aas_txt2_floats(p, dim * c, &t->w, "a weight", errstr, errstr_size)) ||
            (err = aas_txt2_floats(p + dim * c * 4, c, &t->b, "a bias", errstr,
                                   errstr_size)))
            return err;
        p += (dim * c + c) * 4;
        n -= (dim * c + c) * 4;
        return aas_txt2_labels(t, p, n, errstr, errstr_size);
    }
    if (dim > AAS_TEXT2_MLP_MAX_DIM)
        return AAS_TXT2_BAD("an MLP head takes at most %d features, dim is %llu",
                            AAS_TEXT2_MLP_MAX_DIM, (unsigned long long)dim);
    if ((err = aas_model_load(p, n, &t->inner, errstr, errstr_size))) return err;
    if (aas_model_takes_text(t->inner) || aas_model_input_dim(t->inner) != (int64_t)dim ||
        aas_model_output_dim(t->inner) != (int64_t)c || !aas_model_is_classifier(t->inner))
        return AAS_TXT2_BAD("the embedded model must be a classifier of %llu inputs and "
                            "%llu classes", (unsigned long long)dim, (unsigned long long)c);
    t->base.labels = t->inner->labels; /* borrowed: the inner model owns them */
    return AAS_ERR_OK;
}

static aas_err_t aas_txt2_load(const void *blob, size_t len, aas_model_t **out,
                               char *errstr, size_t errstr_size) {
    const unsigned char *p = blob;
    if (len < AAS_TXT2_HEADER) return AAS_TXT2_BAD("truncated header (%zu bytes)", len);
    uint32_t version = (uint32_t)aas_txt2_get(p + 8, 4);
    uint32_t flags = p[19], head = (uint32_t)aas_txt2_get(p + 20, 4);
    uint32_t classes = (uint32_t)aas_txt2_get(p + 24, 4);
    uint64_t body = aas_txt2_get(p + 40, 8);
    if (version != AAS_TEXTFEAT_VERSION)
        return AAS_TXT2_BAD("featurizer version %u, this build has %d", version,
                            AAS_TEXTFEAT_VERSION);
    if (flags & ~(AAS_TXT2_F_SUBLINEAR | AAS_TXT2_F_IDF))
        return AAS_TXT2_BAD("unknown flags 0x%x", flags);
    if (head != AAS_TEXT2_HEAD_LINEAR && head != AAS_TEXT2_HEAD_MLP)
        return AAS_TXT2_BAD("unknown head %u", head);
    if (classes < 2 || classes > 65536) return AAS_TXT2_BAD("%u classes", classes);
    if (aas_txt2_get(p + 28, 4) != 0) return AAS_TXT2_BAD("reserved field is not 0");
    if (body != len - AAS_TXT2_HEADER)
        return AAS_TXT2_BAD("header says %llu body bytes, %zu follow",
                            (unsigned long long)body, len - AAS_TXT2_HEADER);
    aas_textfeat_conf_t fc = {.char_min = p[16], .char_max = p[17], .word_max = p[18],
                              .dim = (int64_t)aas_txt2_get(p + 12, 4),
                              .sublinear_tf = (flags & AAS_TXT2_F_SUBLINEAR) != 0};
    char why[200];
    if (aas_textfeat_conf_check(&fc, why, sizeof(why))) return AAS_TXT2_BAD("%s", why);
    aas_txt2_t *t = calloc(1, sizeof(*t));
    if (!t) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    t->feat = fc;
    t->head = (int)head;
    t->base.input_dim = fc.dim;
    t->base.output_dim = classes;
    t->base.classifier = 1;
    aas_err_t err = aas_txt2_load_body(t, p + AAS_TXT2_HEADER, (size_t)body,
                                       (flags & AAS_TXT2_F_IDF) != 0, errstr, errstr_size);
    if (!err) err = aas_textfeat_new(&fc, t->idf, &t->tf, errstr, errstr_size);
    if (!err && !(t->logits = malloc(classes * sizeof(double))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (err) {
        aas_txt2_destroy(&t->base);
        return err;
    }
    aas_txt2_footprint(t);
    *out = &t->base;
    return AAS_ERR_OK;
}

/* Rows that are already features ([rows, dim], dense): for tools. */
static aas_err_t aas_txt2_infer(aas_model_t *base, const float *in, int64_t rows,
                                float *out, char *errstr, size_t errstr_size) {
    aas_txt2_t *t = (aas_txt2_t *)base;
    if (t->inner) return aas_model_infer(t->inner, in, rows, out, errstr, errstr_size);
    int64_t dim = t->feat.dim, c = base->output_dim;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = in + r * dim;
        for (int64_t k = 0; k < c; k++) t->logits[k] = t->b[k];
        for (int64_t i = 0; i < dim; i++)
            if (x[i] != 0)
                for (int64_t k = 0; k < c; k++) t->logits[k] += (double)x[i] * t->w[i * c + k];
        double mx = t->logits[0], sum = 0;
        for (int64_t k = 1; k < c; k++) mx = t->logits[k] > mx ? t->logits[k] : mx;
        for (int64_t k = 0; k < c; k++) sum += exp(t->logits[k] - mx);
        for (int64_t k = 0; k < c; k++) out[r * c + k] = (float)(exp(t->logits[k] - mx) / sum);
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_txt2_infer_text(aas_model_t *base, const char *const *texts,
                                     const size_t *lens, int64_t rows, float *out,
                                     char *errstr, size_t errstr_size) {
    aas_txt2_t *t = (aas_txt2_t *)base;
    int64_t dim = t->feat.dim, c = base->output_dim;
    if (t->inner && rows > t->dense_rows) {
        if ((uint64_t)rows > SIZE_MAX / sizeof(float) / (uint64_t)dim)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "%lld texts is too many", (long long)rows);
        float *d = realloc(t->dense, (size_t)(rows * dim) * sizeof(float));
        if (!d)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for %lld texts", (long long)rows);
        t->dense = d;
        t->dense_rows = rows;
        aas_txt2_footprint(t);
    }
    if (t->inner) memset(t->dense, 0, (size_t)(rows * dim) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const uint32_t *idx;
        const float *val;
        size_t nnz;
        char why[256];
        aas_err_t err = aas_textfeat_run(t->tf, texts[r], lens[r], 0, &idx, &val, &nnz,
                                         why, sizeof(why));
        if (err) {
            if (rows == 1) return aas_err_set(errstr, errstr_size, err, "%s", why);
            return aas_err_set(errstr, errstr_size, err, "text %lld: %s", (long long)r, why);
        }
        if (t->inner) {
            float *d = t->dense + r * dim;
            for (size_t k = 0; k < nnz; k++) d[idx[k]] = val[k];
            continue;
        }
        double *lg = t->logits;
        for (int64_t k = 0; k < c; k++) lg[k] = t->b[k];
        for (size_t j = 0; j < nnz; j++) {
            const float *w = t->w + (size_t)idx[j] * (size_t)c;
            double v = val[j];
            for (int64_t k = 0; k < c; k++) lg[k] += v * w[k];
        }
        double mx = lg[0], sum = 0;
        for (int64_t k = 1; k < c; k++) mx = lg[k] > mx ? lg[k] : mx;
        for (int64_t k = 0; k < c; k++) sum += (lg[k] = exp(lg[k] - mx));
        for (int64_t k = 0; k < c; k++) out[r * c + k] = (float)(lg[k] / sum);
    }
    if (t->inner) return aas_model_infer(t->inner, t->dense, rows, out, errstr, errstr_size);
    return AAS_ERR_OK;
}

static aas_err_t aas_txt2_set_precision(aas_model_t *base, aas_precision_t p,
                                        char *errstr, size_t errstr_size) {
    aas_txt2_t *t = (aas_txt2_t *)base;
    if (!t->inner)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "a linear text head computes in f32 only (it reads a few "
                           "hundred weights per text; lower precision would save nothing)");
    aas_err_t err = aas_model_set_precision(t->inner, p, errstr, errstr_size);
    aas_txt2_footprint(t);
    return err;
}

const aas_model_ops_t aas_model_text2_ops = {"AASTXT2", aas_txt2_probe, aas_txt2_load,
                                             aas_txt2_destroy, aas_txt2_infer,
                                             aas_txt2_infer_text, aas_txt2_set_precision};

aas_err_t aas_text2_serialize(const aas_text2_spec_t *s, void **blob, size_t *len,
                              char *errstr, size_t errstr_size) {
    if (!s || !blob || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "aas_text2_serialize: NULL");
    aas_err_t err = aas_textfeat_conf_check(&s->feat, errstr, errstr_size);
    if (err) return err;
    uint64_t dim = (uint64_t)s->feat.dim, c = (uint64_t)s->classes;
    if (s->classes < 2 || s->classes > 65536)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%d classes", (int)s->classes);
    int linear = s->head == AAS_TEXT2_HEAD_LINEAR;
    if ((linear && (!s->w || !s->b)) || (!linear && (s->head != AAS_TEXT2_HEAD_MLP || !s->mlp)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "text model: no head");
    if (linear && dim * c > (uint64_t)AAS_TEXT2_LINEAR_MAX_WEIGHTS)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "text_dim %llu x %llu classes is over %lld weights: lower text_dim",
                           (unsigned long long)dim, (unsigned long long)c,
                           (long long)AAS_TEXT2_LINEAR_MAX_WEIGHTS);
    size_t body = s->idf ? (size_t)dim * 4 : 0;
    size_t labels = 4;
    if (linear) {
        body += (size_t)(dim * c + c) * 4;
        for (uint64_t i = 0; s->labels && i < c; i++) {
            size_t ll = strlen(s->labels[i]);
            if (ll == 0 || ll > 65535)
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                   "label %llu: 1..65535 bytes", (unsigned long long)i);
            labels += 2 + ll;
        }
        body += labels;
    } else {
        body += s->mlp_len;
    }
    unsigned char *b = malloc(AAS_TXT2_HEADER + body);
    if (!b) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memset(b, 0, AAS_TXT2_HEADER);
    memcpy(b, AAS_TXT2_MAGIC, 8);
    aas_txt2_put(b + 8, AAS_TEXTFEAT_VERSION, 4);
    aas_txt2_put(b + 12, dim, 4);
    b[16] = (unsigned char)s->feat.char_min;
    b[17] = (unsigned char)s->feat.char_max;
    b[18] = (unsigned char)s->feat.word_max;
    b[19] = (unsigned char)((s->feat.sublinear_tf ? AAS_TXT2_F_SUBLINEAR : 0) |
                            (s->idf ? AAS_TXT2_F_IDF : 0));
    aas_txt2_put(b + 20, (uint64_t)s->head, 4);
    aas_txt2_put(b + 24, c, 4);
    aas_txt2_put(b + 32, s->n_docs, 8);
    aas_txt2_put(b + 40, body, 8);
    unsigned char *p = b + AAS_TXT2_HEADER;
    if (s->idf) {
        memcpy(p, s->idf, (size_t)dim * 4);
        p += dim * 4;
    }
    if (linear) {
        memcpy(p, s->w, (size_t)(dim * c) * 4);
        p += dim * c * 4;
        memcpy(p, s->b, (size_t)c * 4);
        p += c * 4;
        aas_txt2_put(p, s->labels ? c : 0, 4);
        p += 4;
        for (uint64_t i = 0; s->labels && i < c; i++) {
            size_t ll = strlen(s->labels[i]);
            aas_txt2_put(p, ll, 2);
            memcpy(p + 2, s->labels[i], ll);
            p += 2 + ll;
        }
    } else {
        memcpy(p, s->mlp, s->mlp_len);
    }
    /* It must load, so no bad blob is ever registered. */
    aas_model_t *m = NULL;
    err = aas_model_load(b, AAS_TXT2_HEADER + body, &m, errstr, errstr_size);
    aas_model_destroy(m);
    if (err) {
        free(b);
        return err;
    }
    *blob = b;
    *len = AAS_TXT2_HEADER + body;
    return AAS_ERR_OK;
}
