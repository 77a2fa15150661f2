/* trainer_text.c - texts of a training job to feature rows; see trainer_text.h. */
#include "trainer_text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "featurize.h"

/* Features of [n, dim] F32 may take at most this many values (1 GiB). */
#define AAS_TRAINER_TEXT_MAX_VALUES (1LL << 28)

aas_err_t aas_trainer_text_data(const aas_job_t *job, int64_t max_rows,
                                aas_tensor_t *features, int64_t *dim, char *errstr,
                                size_t errstr_size) {
    int64_t d = AAS_FEATURIZE_DEFAULT_DIM;
    const char *dim_s = aas_job_param(job, "text_dim");
    if (dim_s) {
        char *end;
        errno = 0;
        long long v = strtoll(dim_s, &end, 10);
        d = errno || end == dim_s || *end ? 0 : v;
    }
    if (!aas_featurize_dim_valid(d))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text_dim: '%s' is not a power of two in %d..%d",
                           dim_s ? dim_s : "", AAS_FEATURIZE_MIN_DIM, AAS_FEATURIZE_MAX_DIM);
    const aas_tensor_t *tx = NULL;
    for (size_t i = 0; i < job->n_inputs; i++)
        if (job->inputs[i].name && strcmp(job->inputs[i].name, "text") == 0)
            tx = &job->inputs[i];
    if (!tx || tx->dtype != AAS_DTYPE_U8 || tx->rank != 1 || !tx->data ||
        tx->nbytes == 0 || (size_t)tx->shape[0] != tx->nbytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "featurizer=text needs tensor \"text\": U8 [bytes], the "
                           "texts joined by '\\n'");
    const char *b = tx->data;
    int64_t n = 1;
    for (size_t i = 0; i < tx->nbytes; i++) n += b[i] == '\n';
    if (n > max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld texts, limit is %lld", (long long)n, (long long)max_rows);
    if (n > AAS_TRAINER_TEXT_MAX_VALUES / d)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld texts x text_dim %lld is over %lld values: lower text_dim",
                           (long long)n, (long long)d, AAS_TRAINER_TEXT_MAX_VALUES);
    size_t nbytes = (size_t)(n * d) * sizeof(float);
    float *x = malloc(nbytes);
    if (!x)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for %lld x %lld features", (long long)n,
                           (long long)d);
    size_t start = 0;
    for (int64_t r = 0; r < n; r++) {
        const char *nl = start < tx->nbytes ? memchr(b + start, '\n', tx->nbytes - start)
                                            : NULL;
        size_t end = nl ? (size_t)(nl - b) : tx->nbytes;
        aas_featurize_text(b + start, end - start, x + r * d, d); /* d checked above */
        start = end + 1;
    }
    *features = (aas_tensor_t){.dtype = AAS_DTYPE_F32, .rank = 2, .shape = {n, d},
                               .data = x, .nbytes = nbytes};
    *dim = d;
    return AAS_ERR_OK;
}
