/* merge.c - requests as one job, results cut back; see merge.h. */
#include "merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NULL-tolerant string equality: two absent values are equal. */
static int same(const char *a, const char *b) {
    return a == b || (a && b && !strcmp(a, b));
}

int aas_gw_merge_eligible(const aas_job_t *job, int64_t max_rows, size_t max_bytes) {
    if (job->kind != AAS_JOB_INFER || job->text || job->n_params || job->deadline_ms ||
        job->n_inputs != 1)
        return 0;
    const aas_tensor_t *t = &job->inputs[0];
    return t->dtype == AAS_DTYPE_F32 && t->rank == 2 && t->shape[0] >= 1 &&
           t->shape[0] <= max_rows && t->shape[1] >= 1 && t->nbytes <= max_bytes &&
           t->nbytes == (size_t)t->shape[0] * (size_t)t->shape[1] * sizeof(float);
}

int aas_gw_merge_compatible(const aas_job_t *a, const aas_job_t *b) {
    return same(a->model, b->model) && same(a->model_version, b->model_version) &&
           same(a->tenant, b->tenant) && a->priority == b->priority &&
           same(a->inputs[0].name, b->inputs[0].name) &&
           a->inputs[0].shape[1] == b->inputs[0].shape[1];
}

aas_err_t aas_gw_merge_jobs(const aas_job_t *const *jobs, size_t n, aas_job_t *out,
                            aas_tensor_t *input) {
    if (!n) return AAS_ERR_INVAL;
    size_t bytes = 0;
    int64_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += jobs[i]->inputs[0].nbytes;
        rows += jobs[i]->inputs[0].shape[0];
    }
    char *data = malloc(bytes ? bytes : 1);
    if (!data) return AAS_ERR_NOMEM;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(data + at, jobs[i]->inputs[0].data, jobs[i]->inputs[0].nbytes);
        at += jobs[i]->inputs[0].nbytes;
    }
    *input = jobs[0]->inputs[0];
    input->shape[0] = rows;
    input->data = data;
    input->nbytes = bytes;
    *out = *jobs[0];
    out->inputs = input;
    out->n_inputs = 1;
    return AAS_ERR_OK;
}

aas_err_t aas_gw_merge_view(const aas_result_t *all, int64_t total, int64_t off, int64_t rows,
                            aas_result_t *view, char *errstr, size_t errstr_size) {
    *view = *all;
    view->outputs = NULL;
    if (off < 0 || rows < 1 || off + rows > total)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "rows %lld..%lld of %lld",
                           (long long)off, (long long)(off + rows), (long long)total);
    if (all->n_outputs && !(view->outputs = malloc(all->n_outputs * sizeof(*view->outputs))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < all->n_outputs; i++) {
        const aas_tensor_t *t = &all->outputs[i];
        aas_tensor_t *v = &view->outputs[i];
        *v = *t;
        if (off == 0 && rows == total) continue; /* a job of its own: as it is */
        if (t->rank < 1 || t->shape[0] != total || t->nbytes % (size_t)total) {
            free(view->outputs);
            view->outputs = NULL;
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "output %zu of the shared job has no row per input row", i);
        }
        size_t row_bytes = t->nbytes / (size_t)total;
        v->shape[0] = rows;
        v->data = (char *)t->data + (size_t)off * row_bytes;
        v->nbytes = (size_t)rows * row_bytes;
    }
    if (off == 0 && rows == total) return AAS_ERR_OK;
    if (all->n_predictions == (size_t)total) {
        view->predictions = all->predictions + off;
        view->n_predictions = (size_t)rows;
    } else {
        view->predictions = NULL;
        view->n_predictions = 0;
    }
    return AAS_ERR_OK;
}

void aas_gw_merge_view_clear(aas_result_t *view) {
    if (!view) return;
    free(view->outputs); /* the array only: the tensors' data is all's */
    memset(view, 0, sizeof(*view));
}
