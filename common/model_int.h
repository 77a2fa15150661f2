/*
 * model_int.h - what model.c shares with each model implementation.
 *
 * An implementation fills one aas_model_ops table and embeds
 * aas_model_t as the first member of its own struct.
 */
#ifndef AAS_MODEL_INT_H
#define AAS_MODEL_INT_H

#include "model.h"

typedef struct aas_model_ops {
    const char *name;
    /** 1 if the blob starts with this implementation's magic. */
    int (*probe)(const void *blob, size_t len);
    aas_err_t (*load)(const void *blob, size_t len, aas_model_t **out,
                      char *errstr, size_t errstr_size);
    void (*destroy)(aas_model_t *m);
    aas_err_t (*infer)(aas_model_t *m, const float *in, int64_t rows,
                       float *out, char *errstr, size_t errstr_size);
    /** Text in (NULL for kinds that take only tensors). */
    aas_err_t (*infer_text)(aas_model_t *m, const char *const *texts,
                            const size_t *lens, int64_t rows, float *out,
                            char *errstr, size_t errstr_size);
    /** Switch precision (model.c has checked p is a known value and differs
     *  from the current one; it records p on success). */
    aas_err_t (*set_precision)(aas_model_t *m, aas_precision_t p, char *errstr,
                               size_t errstr_size);
} aas_model_ops_t;

struct aas_model_s {
    const aas_model_ops_t *ops;
    int64_t input_dim, output_dim;
    int classifier;
    char **labels;      /* output_dim names or NULL */
    size_t footprint;   /* bytes, kept current by the implementation */
    aas_precision_t precision;
    /* ONNX: the input's name and per-row shape (input_rank 0: a row of
     * input_dim, the native kinds), and the class index per row of the last
     * infer when the graph computes its own (NULL otherwise). */
    const char *input_name;
    int input_rank;
    int64_t input_dims[8];
    const int64_t *predicted;
};

/* The bucket of a batch of 1..AAS_MODEL_BUCKET_MAX rows: exact up to 8,
 * then rounded up to three significant bits (10, 12, 14, 16, 20, ...);
 * *index is its cache slot (0..27).  Past a few rows a row costs the same
 * at every batch size, so a bucket wastes at most a quarter of a batch
 * while 28 buckets cover every size. */
#define AAS_MODEL_BUCKET_MAX 256
int64_t aas_model_bucket(int64_t rows, int *index);

extern const aas_model_ops_t aas_model_mlp_ops;
extern const aas_model_ops_t aas_model_text_ops;
extern const aas_model_ops_t aas_model_text2_ops;
extern const aas_model_ops_t aas_model_onnx_ops;

#endif
