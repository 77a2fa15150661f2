/* infer.c - input checks and forward pass for one job; see infer.h. */
#include "infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run the forward pass (on job->text, one row, if t is NULL) and fill res: outputs and, for
 * classifiers, one prediction per row. */
static aas_err_t aas_infer_finish(aas_model_t *model, const aas_job_t *job,
                                  int64_t rows, const aas_tensor_t *t,
                                  aas_result_t *res, char *errstr,
                                  size_t errstr_size) {
    int64_t out_dim = aas_model_output_dim(model);
    aas_tensor_t *out = calloc(1, sizeof(*out));
    aas_prediction_t *preds = NULL;
    float *y = malloc((size_t)(rows * out_dim) * sizeof(float));
    if (!out || !y) goto nomem;
    aas_err_t err;
    float *xcopy = NULL;
    int64_t t0 = aas_mono_us();
    if (!t) {
        size_t len = strlen(job->text);
        const char *texts[1] = {job->text};
        err = aas_model_infer_text(model, texts, &len, 1, y, errstr, errstr_size);
    } else {
        /* Tensor bytes need not be float-aligned inside the message. */
        const float *x = t->data;
        if (((uintptr_t)t->data % sizeof(float)) != 0) {
            if (!(xcopy = malloc(t->nbytes))) goto nomem;
            memcpy(xcopy, t->data, t->nbytes);
            x = xcopy;
        }
        err = aas_model_infer(model, x, rows, y, errstr, errstr_size);
    }
    res->timings.compute_us = aas_mono_us() - t0;
    free(xcopy);
    if (err) {
        free(out);
        free(y);
        return err;
    }
    out->name = strdup(aas_model_is_classifier(model) ? "probabilities" : "output");
    if (!out->name) goto nomem;
    out->dtype = AAS_DTYPE_F32;
    out->rank = 2;
    out->shape[0] = rows;
    out->shape[1] = out_dim;
    out->data = y;
    out->nbytes = (size_t)(rows * out_dim) * sizeof(float);
    y = NULL;

    if (aas_model_is_classifier(model)) {
        if (!(preds = calloc((size_t)rows, sizeof(*preds)))) goto nomem;
        const float *p = out->data;
        for (int64_t r = 0; r < rows; r++) {
            int64_t best = 0;
            for (int64_t k = 1; k < out_dim; k++)
                if (p[r * out_dim + k] > p[r * out_dim + best]) best = k;
            preds[r].label = (int32_t)best;
            preds[r].probability = p[r * out_dim + best];
            const char *name = aas_model_label_name(model, best);
            if (name && !(preds[r].name = strdup(name))) {
                for (int64_t i = 0; i < r; i++) free(preds[i].name);
                goto nomem;
            }
        }
    }
    res->outputs = out;
    res->n_outputs = 1;
    res->predictions = preds;
    res->n_predictions = preds ? (size_t)rows : 0;
    return AAS_ERR_OK;

nomem:
    if (out) aas_tensor_clear(out);
    free(out);
    free(preds);
    free(y);
    return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                       "out of memory for %lld rows", (long long)rows);
}

aas_err_t aas_infer_run(aas_model_t *model, const aas_job_t *job,
                        int64_t max_rows, aas_result_t *res, char *errstr,
                        size_t errstr_size) {
    int64_t in_dim = aas_model_input_dim(model);
    if (job->text) {
        if (!aas_model_takes_text(model))
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "model %s takes a tensor, not text", job->model);
        if (job->n_inputs != 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "a text job carries no tensors");
        return aas_infer_finish(model, job, 1, NULL, res, errstr, errstr_size);
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
    if (t->dtype != AAS_DTYPE_F32)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "input must be F32, got %s", aas_dtype_name(t->dtype));
    int64_t rows;
    if (t->rank == 1 && t->shape[0] == in_dim) {
        rows = 1;
    } else if (t->rank == 2 && t->shape[1] == in_dim) {
        rows = t->shape[0];
    } else {
        char shape[128] = "";
        size_t n = 0;
        for (int i = 0; i < t->rank && n < sizeof(shape) - 24; i++)
            n += (size_t)snprintf(shape + n, sizeof(shape) - n, "%s%lld",
                                  i ? "," : "", (long long)t->shape[i]);
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "model %s wants shape [rows,%lld] or [%lld], got [%s]",
                           job->model, (long long)in_dim, (long long)in_dim,
                           shape);
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

    return aas_infer_finish(model, job, rows, t, res, errstr, errstr_size);
}
