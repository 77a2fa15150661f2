/* model.c - model-kind dispatch and accessors; see model.h. */
#include "model_int.h"

#include <stdlib.h>
#include <string.h>

/* ONNX last: it has no magic, its probe accepts what looks like a
 * ModelProto (the native magics are not protobuf). */
static const aas_model_ops_t *const aas_model_kinds[] = {
    &aas_model_mlp_ops, &aas_model_text_ops, &aas_model_text2_ops, &aas_model_onnx_ops};

aas_err_t aas_model_load(const void *blob, size_t len, aas_model_t **out,
                         char *errstr, size_t errstr_size) {
    if (!out || (!blob && len > 0))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_model_load: NULL argument");
    for (size_t i = 0; i < sizeof(aas_model_kinds) / sizeof(*aas_model_kinds); i++)
        if (aas_model_kinds[i]->probe(blob, len)) {
            aas_model_t *m = NULL;
            aas_err_t err = aas_model_kinds[i]->load(blob, len, &m, errstr,
                                                     errstr_size);
            if (err) return err;
            m->ops = aas_model_kinds[i];
            *out = m;
            return AAS_ERR_OK;
        }
    return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                       "unknown model format (no known magic in the first bytes)");
}

void aas_model_destroy(aas_model_t *m) {
    if (m) m->ops->destroy(m);
}

int64_t aas_model_input_dim(const aas_model_t *m) { return m->input_dim; }
const char *aas_model_kind(const aas_model_t *m) { return m->ops->name; }
const char *aas_model_input_name(const aas_model_t *m) { return m->input_name; }
const int64_t *aas_model_predicted(const aas_model_t *m) { return m->predicted; }

int aas_model_row_shape(const aas_model_t *m, int64_t dims[7]) {
    if (!m->input_rank) {
        dims[0] = m->input_dim;
        return 1;
    }
    for (int i = 0; i < m->input_rank; i++) dims[i] = m->input_dims[i];
    return m->input_rank;
}
int64_t aas_model_output_dim(const aas_model_t *m) { return m->output_dim; }
int aas_model_is_classifier(const aas_model_t *m) { return m->classifier; }
size_t aas_model_footprint(const aas_model_t *m) { return m->footprint; }

const char *aas_model_label_name(const aas_model_t *m, int64_t i) {
    return m->labels && i >= 0 && i < m->output_dim ? m->labels[i] : NULL;
}

aas_err_t aas_model_infer(aas_model_t *m, const float *in, int64_t rows,
                          float *out, char *errstr, size_t errstr_size) {
    if (!m || !in || !out)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_model_infer: NULL argument");
    if (rows < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "need at least one row");
    return m->ops->infer(m, in, rows, out, errstr, errstr_size);
}

int aas_model_takes_text(const aas_model_t *m) { return m->ops->infer_text != NULL; }

aas_err_t aas_model_infer_text(aas_model_t *m, const char *const *texts,
                               const size_t *lens, int64_t rows, float *out,
                               char *errstr, size_t errstr_size) {
    if (!m || !out || (rows > 0 && (!texts || !lens)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_model_infer_text: NULL argument");
    if (!m->ops->infer_text)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "this model takes a tensor, not text");
    if (rows < 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE, "need at least one text");
    return m->ops->infer_text(m, texts, lens, rows, out, errstr, errstr_size);
}

static const char *const aas_precision_names[] = {"f32", "bf16", "int8"};
#define AAS_PRECISION_COUNT (sizeof(aas_precision_names) / sizeof(*aas_precision_names))

const char *aas_precision_name(aas_precision_t p) {
    return (unsigned)p < AAS_PRECISION_COUNT ? aas_precision_names[p] : "?";
}

int aas_precision_parse(const char *s, aas_precision_t *out) {
    for (size_t i = 0; s && i < AAS_PRECISION_COUNT; i++)
        if (!strcmp(s, aas_precision_names[i])) {
            *out = (aas_precision_t)i;
            return 0;
        }
    return -1;
}

aas_err_t aas_model_set_precision(aas_model_t *m, aas_precision_t p, char *errstr,
                                  size_t errstr_size) {
    if (!m)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "aas_model_set_precision: NULL model");
    if ((unsigned)p >= AAS_PRECISION_COUNT)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "unknown precision %d",
                           (int)p);
    if (p == m->precision) return AAS_ERR_OK;
    aas_err_t err = m->ops->set_precision(m, p, errstr, errstr_size);
    if (!err) m->precision = p;
    return err;
}

aas_precision_t aas_model_precision(const aas_model_t *m) { return m->precision; }

int64_t aas_model_bucket(int64_t rows, int *index) {
    if (rows <= 8) {
        *index = (int)rows - 1;
        return rows;
    }
    int bits = 0;
    for (uint64_t v = (uint64_t)(rows - 1); v; v >>= 1) bits++; /* 4..8 */
    int64_t step = (int64_t)1 << (bits - 3);
    int64_t steps = (rows + step - 1) / step;                     /* 5..8 */
    *index = 8 + (bits - 4) * 4 + (int)(steps - 5);
    return steps * step;
}
