/* infer.c - input checks and batched forward passes; see infer.h. */
#include "infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aas_infer_batch_s {
    float *in, *out;            /* stacked rows: inputs, outputs */
    size_t in_cap, out_cap;     /* floats */
    aas_tensor_t *tensors;      /* one output tensor per job */
    size_t tensors_cap;
    aas_prediction_t *preds;    /* one per row */
    size_t preds_cap;
    const char **texts;         /* text jobs: one per job */
    size_t *lens;
    size_t texts_cap, lens_cap;
};

aas_err_t aas_infer_check(aas_model_t *model, const aas_job_t *job,
                          int64_t max_rows, int64_t *rows_out, char *errstr,
                          size_t errstr_size) {
    int64_t in_dim = aas_model_input_dim(model);
    if (job->text) {
        if (!aas_model_takes_text(model))
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "model %s takes a tensor, not text", job->model);
        if (job->n_inputs != 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "a text job carries no tensors");
        *rows_out = 1;
        return AAS_ERR_OK;
    }
    if (aas_model_takes_text(model))
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "model %s takes text (the job's `text` field), not a tensor",
                           job->model);
    if (job->n_inputs != 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "model %s takes exactly 1 input tensor, job has %zu",
                           job->model, job->n_inputs);
    const aas_tensor_t *t = &job->inputs[0];
    /* A named tensor binds by name to a model that names its input (ONNX);
     * native models have one unnamed input, which any tensor binds to. */
    const char *want = aas_model_input_name(model);
    if (t->name && want && strcmp(t->name, want))
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "model %s has no input named '%s' (its input is '%s'; or send "
                           "the tensor without a name)", job->model, t->name, want);
    if (t->dtype != AAS_DTYPE_F32)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "input must be F32, got %s", aas_dtype_name(t->dtype));
    int64_t rows, row[7];
    int row_rank = aas_model_row_shape(model, row), same = t->rank == row_rank + 1;
    for (int i = 0; same && i < row_rank; i++) same = t->shape[i + 1] == row[i];
    if (t->rank == 1 && t->shape[0] == in_dim) {
        rows = 1;
    } else if ((t->rank == 2 && t->shape[1] == in_dim) || same) {
        rows = t->shape[0];
    } else {
        char shape[128] = "";
        size_t n = 0;
        for (int i = 0; i < t->rank && n < sizeof(shape) - 24; i++)
            n += (size_t)snprintf(shape + n, sizeof(shape) - n, "%s%lld",
                                  i ? "," : "", (long long)t->shape[i]);
        char alt[128] = "";
        if (row_rank > 1) {
            size_t k = (size_t)snprintf(alt, sizeof(alt), " or [rows");
            for (int i = 0; i < row_rank && k < sizeof(alt) - 24; i++)
                k += (size_t)snprintf(alt + k, sizeof(alt) - k, ",%lld", (long long)row[i]);
            snprintf(alt + k, sizeof(alt) - k, "]");
        }
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "model %s wants shape [rows,%lld]%s or [%lld], got [%s]",
                           job->model, (long long)in_dim, alt, (long long)in_dim, shape);
    }
    if (rows > max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld rows, limit is %lld", (long long)rows,
                           (long long)max_rows);
    if ((size_t)(rows * in_dim) * sizeof(float) != t->nbytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "input has %zu bytes, shape needs %lld", t->nbytes,
                           (long long)(rows * in_dim * 4));
    aas_err_t err = aas_tensor_check_finite(t, errstr, errstr_size);
    if (err) return err;
    *rows_out = rows;
    return AAS_ERR_OK;
}

aas_err_t aas_infer_batch_new(aas_infer_batch_t **out, char *errstr,
                              size_t errstr_size) {
    if (!(*out = calloc(1, sizeof(**out))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    return AAS_ERR_OK;
}

void aas_infer_batch_destroy(aas_infer_batch_t *b) {
    if (!b) return;
    free(b->in);
    free(b->out);
    free(b->tensors);
    free(b->preds);
    free(b->texts);
    free(b->lens);
    free(b);
}

/* Make *p hold at least need elements of size sz (contents not kept). */
static int aas_infer_reserve(void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = malloc(n * sz);
    if (!q) return -1;
    free(*p);
    *p = q;
    *cap = n;
    return 0;
}

aas_err_t aas_infer_batch_run(aas_infer_batch_t *b, aas_model_t *model,
                              const aas_job_t *const *jobs, const int64_t *rows,
                              size_t n, aas_result_t *res, char *errstr,
                              size_t errstr_size) {
    int64_t in_dim = aas_model_input_dim(model), out_dim = aas_model_output_dim(model);
    int text = aas_model_takes_text(model), classifier = aas_model_is_classifier(model);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += (size_t)rows[i];
    if (n == 0) return AAS_ERR_OK;
    /* The rows were bounded per job by aas_infer_check and per batch by the
     * caller; the products below cannot overflow for sane limits, but a
     * bound here keeps it so whatever the caller did. */
    if (total > (size_t)1 << 30 || (size_t)out_dim > ((size_t)1 << 40) / total)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "batch of %zu rows x %lld outputs is too large", total,
                           (long long)out_dim);
    if (aas_infer_reserve((void **)&b->out, &b->out_cap, total * (size_t)out_dim,
                          sizeof(float)) ||
        aas_infer_reserve((void **)&b->tensors, &b->tensors_cap, n, sizeof(aas_tensor_t)) ||
        (classifier && aas_infer_reserve((void **)&b->preds, &b->preds_cap, total,
                                         sizeof(aas_prediction_t))))
        goto nomem;

    aas_err_t err;
    int64_t t0 = aas_mono_us();
    if (text) {
        if (aas_infer_reserve((void **)&b->texts, &b->texts_cap, n, sizeof(char *)) ||
            aas_infer_reserve((void **)&b->lens, &b->lens_cap, n, sizeof(size_t)))
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            b->texts[i] = jobs[i]->text;
            b->lens[i] = strlen(jobs[i]->text);
        }
        err = aas_model_infer_text(model, b->texts, b->lens, (int64_t)n, b->out, errstr,
                                   errstr_size);
    } else {
        const float *x;
        const aas_tensor_t *t0t = &jobs[0]->inputs[0];
        if (n == 1 && ((uintptr_t)t0t->data % sizeof(float)) == 0) {
            x = t0t->data; /* one job, aligned: no copy */
        } else {
            /* Stack the rows (tensor bytes need not be float-aligned). */
            if (aas_infer_reserve((void **)&b->in, &b->in_cap, total * (size_t)in_dim,
                                  sizeof(float)))
                goto nomem;
            char *dst = (char *)b->in;
            for (size_t i = 0; i < n; i++) {
                const aas_tensor_t *t = &jobs[i]->inputs[0];
                memcpy(dst, t->data, t->nbytes);
                dst += t->nbytes;
            }
            x = b->in;
        }
        err = aas_model_infer(model, x, (int64_t)total, b->out, errstr, errstr_size);
    }
    int64_t compute_us = aas_mono_us() - t0;
    if (err) return err;

    const char *out_name = classifier ? "probabilities" : "output";
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        aas_tensor_t *t = &b->tensors[i];
        const float *y = b->out + row * (size_t)out_dim;
        *t = (aas_tensor_t){.name = (char *)out_name, .dtype = AAS_DTYPE_F32, .rank = 2,
                            .shape = {rows[i], out_dim}, .data = (void *)y,
                            .nbytes = (size_t)rows[i] * (size_t)out_dim * sizeof(float)};
        res[i].outputs = t;
        res[i].n_outputs = 1;
        res[i].predictions = NULL;
        res[i].n_predictions = 0;
        res[i].timings.compute_us = compute_us;
        if (classifier) {
            aas_prediction_t *p = b->preds + row;
            /* the graph's own label when it has one (an SVC votes) */
            const int64_t *own = aas_model_predicted(model);
            for (int64_t r = 0; r < rows[i]; r++) {
                const float *yr = y + r * out_dim;
                int64_t best = 0;
                if (own) {
                    best = own[row + (size_t)r];
                } else {
                    for (int64_t k = 1; k < out_dim; k++)
                        if (yr[k] > yr[best]) best = k;
                }
                p[r].label = (int32_t)best;
                p[r].probability = yr[best];
                p[r].name = (char *)aas_model_label_name(model, best);
            }
            res[i].predictions = p;
            res[i].n_predictions = (size_t)rows[i];
        }
        row += (size_t)rows[i];
    }
    return AAS_ERR_OK;

nomem:
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                       "out of memory for a batch of %zu rows", total);
}

aas_err_t aas_infer_result_check(const aas_result_t *res, char *errstr,
                                 size_t errstr_size) {
    for (size_t i = 0; i < res->n_outputs; i++) {
        const aas_tensor_t *t = &res->outputs[i];
        if (t->dtype != AAS_DTYPE_F32) continue;
        const float *v = t->data;
        size_t n = t->nbytes / sizeof(float);
        for (size_t k = 0; k < n; k++)
            if (!isfinite(v[k]))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                                   "the model's output %zu is %s at element %zu: the "
                                   "inputs overflow what the model computes in f32",
                                   i, isnan(v[k]) ? "NaN" : "infinite", k);
    }
    return AAS_ERR_OK;
}
