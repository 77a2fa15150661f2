/*
 * model_text.c - the text classifier kind "AASTXT1": a featurizer
 * (featurize.h) in front of a native MLP, so text goes in and a label comes
 * out (docs/text.md).
 *
 * Blob: "AASTXT1\0", u32 featurizer version, u32 dim (little-endian), then
 * an AASMLP1 blob whose input dim is dim.  Tensor inputs of [rows, dim]
 * (already featurized) are accepted too.
 */
#include <stdlib.h>
#include <string.h>

#include "featurize.h"
#include "model_int.h"

#define AAS_TXT_MAGIC "AASTXT1"

typedef struct {
    aas_model_t base;
    aas_model_t *inner;    /* the MLP, owned */
    float *scratch;        /* featurized rows */
    int64_t scratch_rows;
} aas_txt_t;

static int aas_txt_probe(const void *blob, size_t len) {
    return len >= 8 && memcmp(blob, AAS_TXT_MAGIC, 8) == 0;
}

static uint32_t aas_txt_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
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
    if (len < 16)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "truncated header");
    uint32_t version = aas_txt_u32(p + 8), dim = aas_txt_u32(p + 12);
    if (version != AAS_FEATURIZE_VERSION)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "featurizer version %u, this build has %d", version,
                           AAS_FEATURIZE_VERSION);
    if (dim < AAS_FEATURIZE_MIN_DIM || dim > AAS_FEATURIZE_MAX_DIM || (dim & (dim - 1)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "feature dim %u is not a power of two in %d..%d", dim,
                           AAS_FEATURIZE_MIN_DIM, AAS_FEATURIZE_MAX_DIM);
    aas_txt_t *t = calloc(1, sizeof(*t));
    if (!t) return AAS_ERR_NOMEM;
    aas_err_t err = aas_model_load(p + 16, len - 16, &t->inner, errstr, errstr_size);
    if (!err && aas_model_input_dim(t->inner) != (int64_t)dim)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "inner model takes %lld inputs, featurizer gives %u",
                          (long long)aas_model_input_dim(t->inner), dim);
    if (!err && aas_model_takes_text(t->inner))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "a text model cannot wrap another text model");
    if (err) {
        aas_txt_destroy(&t->base);
        return err;
    }
    t->base.input_dim = dim;
    t->base.output_dim = aas_model_output_dim(t->inner);
    t->base.classifier = aas_model_is_classifier(t->inner);
    t->base.labels = t->inner->labels; /* borrowed from the inner model */
    t->base.footprint = aas_model_footprint(t->inner);
    *out = &t->base;
    return AAS_ERR_OK;
}

static aas_err_t aas_txt_infer(aas_model_t *base, const float *in, int64_t rows,
                               float *out, char *errstr, size_t errstr_size) {
    aas_txt_t *t = (aas_txt_t *)base;
    aas_err_t err = aas_model_infer(t->inner, in, rows, out, errstr, errstr_size);
    t->base.footprint = aas_model_footprint(t->inner) +
                        (size_t)(t->scratch_rows * t->base.input_dim) * sizeof(float);
    return err;
}

static aas_err_t aas_txt_infer_text(aas_model_t *base, const char *const *texts,
                                    const size_t *lens, int64_t rows, float *out,
                                    char *errstr, size_t errstr_size) {
    aas_txt_t *t = (aas_txt_t *)base;
    int64_t dim = t->base.input_dim;
    if (rows > t->scratch_rows) {
        float *s = realloc(t->scratch, (size_t)(rows * dim) * sizeof(float));
        if (!s)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for %lld texts", (long long)rows);
        t->scratch = s;
        t->scratch_rows = rows;
    }
    for (int64_t r = 0; r < rows; r++)
        aas_featurize_text(texts[r], lens[r], t->scratch + r * dim, dim);
    return aas_txt_infer(base, t->scratch, rows, out, errstr, errstr_size);
}

const aas_model_ops_t aas_model_text_ops = {"text", aas_txt_probe, aas_txt_load,
                                            aas_txt_destroy, aas_txt_infer,
                                            aas_txt_infer_text};

aas_err_t aas_text_model_wrap(int64_t dim, const void *mlp, size_t mlp_len,
                              void **blob, size_t *len, char *errstr,
                              size_t errstr_size) {
    if (dim < AAS_FEATURIZE_MIN_DIM || dim > AAS_FEATURIZE_MAX_DIM || (dim & (dim - 1)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text_dim must be a power of two in %d..%d",
                           AAS_FEATURIZE_MIN_DIM, AAS_FEATURIZE_MAX_DIM);
    unsigned char *b = malloc(16 + mlp_len);
    if (!b) return AAS_ERR_NOMEM;
    memcpy(b, AAS_TXT_MAGIC, 8);
    uint32_t v[2] = {AAS_FEATURIZE_VERSION, (uint32_t)dim};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) b[8 + 4 * i + k] = (unsigned char)(v[i] >> (8 * k));
    memcpy(b + 16, mlp, mlp_len);
    *blob = b;
    *len = 16 + mlp_len;
    return AAS_ERR_OK;
}
