/*
 * model_onnx.c - the model kind "ONNX": an ONNX graph (onnx.h) behind the
 * aas_model interface, so it is registered, cached, batched and served
 * like a native model (docs/onnx.md).
 *
 * What the graph must look like: one float32 input whose first dimension
 * is the batch (symbolic, or fixed: then rows run in groups of that size)
 * and whose other dimensions are known; at least one float output with
 * the batch first.  The model's output is the first float output (ZipMap's
 * output counts: this engine passes its probability tensor through); an
 * int64 output beside it is the graph's own predicted label (scikit-learn
 * classifiers), mapped to a class index through the classifier's
 * classlabels.  A graph is a classifier when it has such a label, or its
 * output comes from Softmax.
 *
 * Batches run as in model_mlp_run.c: rows rounded up to a bucket
 * (aas_model_bucket), the padding rows zeros, so every bucket's plan is
 * made once and reused; each output row depends only on its input row for
 * the ops aas runs (BatchNormalization in inference mode included).
 *
 * Not thread-safe: a model is used by one thread at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"
#include "onnx_int.h"

typedef struct {
    aas_model_t base;
    aas_onnx_t *g;
    int64_t fixed_batch;        /* 0: the batch dimension is free */
    int out_index, label_index; /* graph outputs; label_index -1: none */
    const int64_t *classlabels; /* int64 labels, their order = class index */
    size_t n_classlabels;
    float *pad;                 /* a bucket's input rows */
    size_t pad_cap;             /* floats */
    int64_t *pred;              /* class index per row */
    size_t pred_cap;
    int counted_plans;          /* what the footprint was last counted at */
    size_t counted_pad;
} aas_model_onnx_t;

/* A ModelProto starts with the tag of one of its fields, and exporters
 * write ir_version (field 1, varint: 0x08) first.  Accept the tags of the
 * fields ModelProto has (1-8, 14) so other bytes ("AASMLP2", a PNG) stay
 * "unknown model format" instead of a protobuf parse error. */
static int aas_onnx_probe(const void *blob, size_t len) {
    static const unsigned char tags[] = {0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72};
    if (len < 2) return 0;
    return memchr(tags, ((const unsigned char *)blob)[0], sizeof(tags)) != NULL;
}

static void aas_onnx_model_destroy(aas_model_t *base) {
    aas_model_onnx_t *m = (aas_model_onnx_t *)base;
    if (!m) return;
    aas_onnx_destroy(m->g);
    if (base->labels)
        for (int64_t i = 0; i < base->output_dim; i++) free(base->labels[i]);
    free(base->labels);
    free(m->pad);
    free(m->pred);
    free(m);
}

static aas_err_t aas_onnx_reserve(aas_model_onnx_t *m, size_t floats, size_t rows, char *errstr,
                                  size_t errstr_size) {
    if (floats > m->pad_cap) {
        float *p = realloc(m->pad, floats * sizeof(float));
        if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        m->pad = p;
        m->pad_cap = floats;
    }
    if (rows > m->pred_cap) {
        int64_t *p = realloc(m->pred, rows * sizeof(int64_t));
        if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        m->pred = p;
        m->pred_cap = rows;
    }
    return AAS_ERR_OK;
}

/* Run `rows` rows (rows <= the bucket) through the graph as a batch of
 * `batch`; copy the real rows' outputs to out and their labels to pred. */
static aas_err_t aas_onnx_chunk(aas_model_onnx_t *m, const float *in, int64_t rows,
                                int64_t batch, float *out, int64_t *pred, char *errstr,
                                size_t errstr_size) {
    aas_model_t *b = &m->base;
    size_t row_in = (size_t)b->input_dim;
    aas_onnx_tensor_t x = {.dtype = AAS_ONNX_FLOAT, .rank = b->input_rank + 1};
    x.dims[0] = batch;
    for (int i = 0; i < b->input_rank; i++) x.dims[i + 1] = b->input_dims[i];
    x.nbytes = (size_t)batch * row_in * sizeof(float);
    if (batch == rows) {
        x.data = (void *)in;
    } else {
        aas_err_t err = aas_onnx_reserve(m, (size_t)batch * row_in, 0, errstr, errstr_size);
        if (err) return err;
        memcpy(m->pad, in, (size_t)rows * row_in * sizeof(float));
        memset(m->pad + (size_t)rows * row_in, 0, (size_t)(batch - rows) * row_in * sizeof(float));
        x.data = m->pad;
    }
    const aas_onnx_tensor_t *outs[16];
    size_t n_out = aas_onnx_n_outputs(m->g);
    aas_err_t err = aas_onnx_run(m->g, &x, 1, outs, n_out, errstr, errstr_size);
    if (err) return err;
    const aas_onnx_tensor_t *y = outs[m->out_index];
    if (y->dtype != AAS_ONNX_FLOAT || y->rank < 1 || y->dims[0] != batch ||
        aas_onnx_numel(y) != batch * b->output_dim)
        return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                           "ONNX output '%s' has an unexpected shape for a batch of %lld",
                           m->g->values[m->g->outputs[m->out_index]].name, (long long)batch);
    memcpy(out, y->data, (size_t)rows * (size_t)b->output_dim * sizeof(float));
    if (m->label_index >= 0 && pred) {
        const aas_onnx_tensor_t *l = outs[m->label_index];
        if ((l->dtype != AAS_ONNX_INT64 && l->dtype != AAS_ONNX_INT32) ||
            aas_onnx_numel(l) != batch)
            return aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                               "ONNX label output has an unexpected shape");
        for (int64_t r = 0; r < rows; r++) {
            int64_t v = aas_onnx_int_at(l, r), idx = v;
            if (m->classlabels) {
                idx = -1;
                for (size_t c = 0; c < m->n_classlabels; c++)
                    if (m->classlabels[c] == v) idx = (int64_t)c;
            }
            pred[r] = idx >= 0 && idx < b->output_dim ? idx : 0;
        }
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_model_infer(aas_model_t *base, const float *in, int64_t rows,
                                      float *out, char *errstr, size_t errstr_size) {
    aas_model_onnx_t *m = (aas_model_onnx_t *)base;
    aas_err_t err = aas_onnx_reserve(m, 0, (size_t)rows, errstr, errstr_size);
    if (err) return err;
    int64_t chunk = m->fixed_batch ? m->fixed_batch : AAS_MODEL_BUCKET_MAX;
    for (int64_t done = 0; done < rows;) {
        int64_t n = rows - done < chunk ? rows - done : chunk, batch = m->fixed_batch;
        int index;
        if (!batch) batch = aas_model_bucket(n, &index);
        if ((err = aas_onnx_chunk(m, in + done * base->input_dim, n, batch,
                                  out + done * base->output_dim,
                                  m->label_index >= 0 ? m->pred + done : NULL, errstr,
                                  errstr_size)))
            return err;
        done += n;
    }
    base->predicted = m->label_index >= 0 ? m->pred : NULL;
    /* the footprint grows only when a plan is made (or evicted) or the
     * padding buffer grows: recount then, not on every batch */
    if (m->g->n_plans != m->counted_plans || m->pad_cap != m->counted_pad) {
        m->counted_plans = m->g->n_plans;
        m->counted_pad = m->pad_cap;
        base->footprint = sizeof(*m) + aas_onnx_footprint(m->g) + m->pad_cap * sizeof(float);
    }
    return AAS_ERR_OK;
}

/* Class names from the classifier node of ai.onnx.ml, if there is one. */
static aas_err_t aas_onnx_labels(aas_model_onnx_t *m, char *errstr, size_t errstr_size) {
    aas_onnx_t *g = m->g;
    for (int i = 0; i < g->n_nodes; i++) {
        const aas_onnx_node_t *n = &g->nodes[i];
        if (n->dead || strcmp(n->domain, AAS_ONNX_DOMAIN_ML) || !strstr(n->type, "Classifier"))
            continue;
        char *const *strs;
        const int64_t *ints;
        size_t ns = aas_onnx_attr_strings(n, "classlabels_strings", &strs);
        /* TreeEnsembleClassifier says int64s, Linear/SVMClassifier ints */
        size_t ni = aas_onnx_attr_ints(n, "classlabels_int64s", &ints);
        if (!ni) ni = aas_onnx_attr_ints(n, "classlabels_ints", &ints);
        size_t count = ns ? ns : ni;
        if (!count || (int64_t)count != m->base.output_dim) return AAS_ERR_OK;
        if (!(m->base.labels = calloc(count, sizeof(char *))))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        for (size_t c = 0; c < count; c++) {
            char buf[32];
            if (!ns) snprintf(buf, sizeof(buf), "%lld", (long long)ints[c]);
            if (!(m->base.labels[c] = strdup(ns ? strs[c] : buf)))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        }
        if (ni && !ns) {
            m->classlabels = ints;
            m->n_classlabels = ni;
        }
        return AAS_ERR_OK;
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_onnx_model_load(const void *blob, size_t len, aas_model_t **out,
                                     char *errstr, size_t errstr_size) {
    aas_model_onnx_t *m = calloc(1, sizeof(*m));
    if (!m) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_model_t *b = &m->base;
    aas_err_t err = aas_onnx_load(blob, len, &m->g, errstr, errstr_size);
    if (err) goto fail;
    aas_onnx_io_t io;
    if (aas_onnx_n_inputs(m->g) != 1) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "ONNX: the graph has %zu inputs; aas serves graphs with one input",
                          aas_onnx_n_inputs(m->g));
        goto fail;
    }
    if (aas_onnx_n_outputs(m->g) > 16) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "ONNX: the graph has %zu outputs (at most 16)",
                          aas_onnx_n_outputs(m->g));
        goto fail;
    }
    aas_onnx_input(m->g, 0, &io);
    if (io.dtype != AAS_ONNX_FLOAT || io.rank < 1 || io.rank > 8) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "ONNX: input '%s' is %s of rank %d; aas serves a float32 input "
                          "[batch, ...]", io.name, aas_onnx_dtype_name(io.dtype), io.rank);
        goto fail;
    }
    b->input_name = io.name;
    b->input_rank = io.rank - 1;
    b->input_dim = 1;
    for (int i = 1; i < io.rank; i++) {
        if (io.dims[i] <= 0) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                              "ONNX: input '%s' dimension %d is %s; aas needs every "
                              "dimension but the batch (the first) to be fixed", io.name, i,
                              io.dim_params[i] ? io.dim_params[i] : "unknown");
            goto fail;
        }
        b->input_dims[i - 1] = io.dims[i];
        b->input_dim *= io.dims[i];
    }
    m->fixed_batch = io.dims[0] > 0 ? io.dims[0] : 0;
    m->out_index = m->label_index = -1;
    for (size_t i = 0; i < aas_onnx_n_outputs(m->g); i++) {
        aas_onnx_io_t o;
        aas_onnx_output(m->g, i, &o);
        if (m->out_index < 0 && (o.dtype == AAS_ONNX_FLOAT || o.dtype == AAS_ONNX_UNDEFINED))
            m->out_index = (int)i;
        else if (m->label_index < 0 && o.dtype == AAS_ONNX_INT64)
            m->label_index = (int)i;
    }
    if (m->out_index < 0) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "ONNX: the graph has no float output");
        goto fail;
    }
    /* One probe row: shapes inferred along the whole graph now, so a graph
     * that cannot run fails at load (register), not on a job. */
    int64_t probe_rows = m->fixed_batch ? m->fixed_batch : 1;
    if (b->input_dim > (int64_t)(AAS_ONNX_MAX_TENSOR_BYTES / sizeof(float)) / probe_rows) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "ONNX: input row too large");
        goto fail;
    }
    if ((err = aas_onnx_reserve(m, (size_t)(probe_rows * b->input_dim), (size_t)probe_rows,
                                errstr, errstr_size)))
        goto fail;
    memset(m->pad, 0, (size_t)(probe_rows * b->input_dim) * sizeof(float));
    aas_onnx_tensor_t x = {.dtype = AAS_ONNX_FLOAT, .rank = io.rank, .data = m->pad,
                           .nbytes = (size_t)(probe_rows * b->input_dim) * sizeof(float)};
    x.dims[0] = probe_rows;
    for (int i = 1; i < io.rank; i++) x.dims[i] = io.dims[i];
    const aas_onnx_tensor_t *outs[16];
    if ((err = aas_onnx_run(m->g, &x, 1, outs, aas_onnx_n_outputs(m->g), errstr, errstr_size)))
        goto fail;
    const aas_onnx_tensor_t *y = outs[m->out_index];
    if (y->dtype != AAS_ONNX_FLOAT || y->rank < 1 || y->dims[0] != probe_rows) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT,
                          "ONNX: output %d is not float32 [batch, ...]", m->out_index);
        goto fail;
    }
    b->output_dim = aas_onnx_numel(y) / probe_rows;
    if (b->output_dim < 1) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_MODEL_FORMAT, "ONNX: empty output");
        goto fail;
    }
    const aas_onnx_value_t *yv = &m->g->values[m->g->outputs[m->out_index]];
    b->classifier = m->label_index >= 0 ||
                    (yv->producer >= 0 && !strcmp(m->g->nodes[yv->producer].type, "Softmax"));
    if ((err = aas_onnx_labels(m, errstr, errstr_size))) goto fail;
    b->footprint = sizeof(*m) + aas_onnx_footprint(m->g) + m->pad_cap * sizeof(float);
    *out = b;
    return AAS_ERR_OK;
fail:
    aas_onnx_model_destroy(b);
    return err;
}

static aas_err_t aas_onnx_model_set_precision(aas_model_t *m, aas_precision_t p, char *errstr,
                                              size_t errstr_size) {
    (void)m;
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "ONNX models run in f32 only in this version (asked for %s; "
                       "docs/onnx.md)", aas_precision_name(p));
}

const aas_model_ops_t aas_model_onnx_ops = {"ONNX", aas_onnx_probe, aas_onnx_model_load,
                                            aas_onnx_model_destroy, aas_onnx_model_infer,
                                            NULL /* takes no text */,
                                            aas_onnx_model_set_precision};
