/*
 * model_text.c - the text classifier kind "AASTXT1": the featurizer
 * (featurize.h) in front of a native MLP, so text goes in and a label comes
 * out (docs/text.md, docs/model-format.md).
 *
 * Blob, integers little-endian:
 *   0  "AASTXT1\0"
 *   8  u32 featurizer version (AAS_FEATURIZE_VERSION)
 *   12 u32 dim (power of two, AAS_FEATURIZE_MIN_DIM..MAX_DIM)
 *   16 u32 flags (0; any other bit is refused)
 *   20 u64 n, the length of the embedded model
 *   28 n bytes: an AASMLP1 blob whose input dim is dim; nothing follows.
 *
 * The tensor entry point takes rows that are already featurized
 * ([rows, dim]); it exists for tests and tools, the worker sends text.
 * It does not featurize anything itself (featurize.c does).
 */
#include <stdlib.h>
#include <string.h>

#include "featurize.h"
#include "model_int.h"

#define AAS_TXT_MAGIC "AASTXT1" /* + its NUL: 8 bytes */
#define AAS_TXT_HEADER 28

typedef struct {
    aas_model_t base;
    aas_model_t *inner;    /* the MLP, owned */
    float *scratch;        /* featurized rows, scratch_rows x dim */
    int64_t scratch_rows;
} aas_txt_t;

static int aas_txt_probe(const void *blob, size_t len) {
    return len >= 8 && memcmp(blob, AAS_TXT_MAGIC, 8) == 0;
}

static uint64_t aas_txt_get(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static void aas_txt_put(unsigned char *p, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

static void aas_txt_destroy(aas_model_t *base) {
    aas_txt_t *t = (aas_txt_t *)base;
    aas_model_destroy(t->inner);
    free(t->scratch);
    free(t);
}

static aas_err_t aas_txt_load(const void *blob, size_t len, aas_model_t **out,
                              char *errstr, size_t errstr_size) {
    const unsigned char *p = blob;
    if (len < AAS_TXT_HEADER)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "AASTXT1: truncated header (%zu bytes)", len);
    uint32_t version = (uint32_t)aas_txt_get(p + 8, 4), dim = (uint32_t)aas_txt_get(p + 12, 4);
    uint32_t flags = (uint32_t)aas_txt_get(p + 16, 4);
    uint64_t n = aas_txt_get(p + 20, 8);
    if (version != AAS_FEATURIZE_VERSION)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "AASTXT1: featurizer version %u, this build has %d", version,
                           AAS_FEATURIZE_VERSION);
    if (!aas_featurize_dim_valid(dim))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "AASTXT1: feature dim %u is not a power of two in %d..%d", dim,
                           AAS_FEATURIZE_MIN_DIM, AAS_FEATURIZE_MAX_DIM);
    if (flags != 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "AASTXT1: unknown flags 0x%x", flags);
    if (n != len - AAS_TXT_HEADER)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "AASTXT1: embedded model of %llu bytes, %zu follow the header",
                           (unsigned long long)n, len - AAS_TXT_HEADER);
    aas_txt_t *t = calloc(1, sizeof(*t));
    if (!t) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_err_t err = aas_model_load(p + AAS_TXT_HEADER, (size_t)n, &t->inner, errstr,
                                   errstr_size);
    if (!err && aas_model_takes_text(t->inner))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "AASTXT1: the embedded model takes text itself");
    if (!err && aas_model_input_dim(t->inner) != (int64_t)dim)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "AASTXT1: embedded model takes %lld inputs, featurizer gives %u",
                          (long long)aas_model_input_dim(t->inner), dim);
    if (err) {
        aas_txt_destroy(&t->base);
        return err;
    }
    t->base.input_dim = dim;
    t->base.output_dim = aas_model_output_dim(t->inner);
    t->base.classifier = aas_model_is_classifier(t->inner);
    t->base.labels = t->inner->labels; /* borrowed: the inner model owns them */
    t->base.footprint = sizeof(*t) + aas_model_footprint(t->inner);
    *out = &t->base;
    return AAS_ERR_OK;
}

static aas_err_t aas_txt_infer(aas_model_t *base, const float *in, int64_t rows,
                               float *out, char *errstr, size_t errstr_size) {
    aas_txt_t *t = (aas_txt_t *)base;
    aas_err_t err = aas_model_infer(t->inner, in, rows, out, errstr, errstr_size);
    t->base.footprint = sizeof(*t) + aas_model_footprint(t->inner) +
                        (size_t)(t->scratch_rows * t->base.input_dim) * sizeof(float);
    return err;
}

static aas_err_t aas_txt_infer_text(aas_model_t *base, const char *const *texts,
                                    const size_t *lens, int64_t rows, float *out,
                                    char *errstr, size_t errstr_size) {
    aas_txt_t *t = (aas_txt_t *)base;
    int64_t dim = t->base.input_dim;
    if ((uint64_t)rows > SIZE_MAX / sizeof(float) / (uint64_t)dim)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld texts is too many", (long long)rows);
    if (rows > t->scratch_rows) {
        float *s = realloc(t->scratch, (size_t)(rows * dim) * sizeof(float));
        if (!s)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for %lld texts", (long long)rows);
        t->scratch = s;
        t->scratch_rows = rows;
    }
    for (int64_t r = 0; r < rows; r++) {
        aas_err_t err = aas_featurize_text(texts[r], lens[r], t->scratch + r * dim, dim);
        if (err)
            return aas_err_set(errstr, errstr_size, err, "text %lld cannot be featurized",
                               (long long)r);
    }
    return aas_txt_infer(base, t->scratch, rows, out, errstr, errstr_size);
}

/* The featurizer is f32 and cheap; only the MLP changes precision. */
static aas_err_t aas_txt_set_precision(aas_model_t *base, aas_precision_t p,
                                       char *errstr, size_t errstr_size) {
    aas_txt_t *t = (aas_txt_t *)base;
    aas_err_t err = aas_model_set_precision(t->inner, p, errstr, errstr_size);
    t->base.footprint = sizeof(*t) + aas_model_footprint(t->inner) +
                        (size_t)(t->scratch_rows * t->base.input_dim) * sizeof(float);
    return err;
}

const aas_model_ops_t aas_model_text_ops = {"AASTXT1", aas_txt_probe, aas_txt_load,
                                            aas_txt_destroy, aas_txt_infer,
                                            aas_txt_infer_text, aas_txt_set_precision};

aas_err_t aas_text_model_serialize(int64_t dim, uint32_t version, const void *mlp,
                                   size_t mlp_len, void **blob, size_t *len,
                                   char *errstr, size_t errstr_size) {
    if (!mlp || !blob || !len)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_text_model_serialize: NULL argument");
    if (version != AAS_FEATURIZE_VERSION)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "featurizer version %u, this build has %d", version,
                           AAS_FEATURIZE_VERSION);
    if (!aas_featurize_dim_valid(dim))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text_dim %lld is not a power of two in %d..%d",
                           (long long)dim, AAS_FEATURIZE_MIN_DIM, AAS_FEATURIZE_MAX_DIM);
    /* The embedded model must load and fit, so no bad blob is registered. */
    aas_model_t *inner = NULL;
    aas_err_t err = aas_model_load(mlp, mlp_len, &inner, errstr, errstr_size);
    if (err) return err;
    int fits = !aas_model_takes_text(inner) && aas_model_input_dim(inner) == dim;
    aas_model_destroy(inner);
    if (!fits)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "the embedded model must be a tensor model taking %lld inputs",
                           (long long)dim);
    if (mlp_len > SIZE_MAX - AAS_TXT_HEADER) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    unsigned char *b = malloc(AAS_TXT_HEADER + mlp_len);
    if (!b) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(b, AAS_TXT_MAGIC, 8);
    aas_txt_put(b + 8, version, 4);
    aas_txt_put(b + 12, (uint64_t)dim, 4);
    aas_txt_put(b + 16, 0, 4); /* flags */
    aas_txt_put(b + 20, mlp_len, 8);
    memcpy(b + AAS_TXT_HEADER, mlp, mlp_len);
    *blob = b;
    *len = AAS_TXT_HEADER + mlp_len;
    return AAS_ERR_OK;
}
