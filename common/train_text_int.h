/*
 * train_text_int.h - internals of the text trainer shared by its files:
 * the job's state (train_text.c) and its data-parallel engine
 * (train_text_dp.c).  Not an API: only those files include it.
 */
#ifndef AAS_TRAIN_TEXT_INT_H
#define AAS_TRAIN_TEXT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "train_text.h"

#define AAS_TT_MAX_CLASSES 65536
#define AAS_TT_MAX_LABEL 256

typedef struct {
    char **names;      /* by insertion, then sorted */
    size_t n;
    int32_t *slots;    /* open addressing: index into names, -1 empty */
    size_t cap;        /* power of two */
    int32_t *order;    /* insertion index -> class index (after sorting) */
} aas_tt_labels_t;

typedef struct {
    unsigned char *buf;
    size_t len, cap, limit;
    int64_t *off;      /* row starts */
    size_t n, off_cap;
} aas_tt_arena_t;

typedef struct {
    const aas_text_train_params_t *p;
    const aas_text_reader_t *r;
    aas_textfeat_t *tf;      /* NULL for numeric rows (p->dense_dim) */
    int64_t dim;             /* features per row: feat.dim or dense_dim */
    uint32_t *didx;          /* numeric rows: parsed non-zero values */
    float *dval;
    aas_tt_labels_t labels;
    int fixed_classes;       /* p->classes given */
    float *idf;
    uint32_t *df;
    int64_t n_rows, n_train, n_val, n_skipped;
    aas_tt_arena_t train, val; /* the cache (cached = 1) */
    int cached;
    aas_tt_arena_t buffer;   /* streaming shuffle buffer */
    int32_t classes;
    uint64_t rng;
    const char **names;      /* class index -> name (borrowed from labels) */
    /* linear head */
    float *w, *b, *gw, *gb;
    double *lg;
    /* mlp head */
    aas_train_net_t *net;
    float *xb;
    int32_t *yb;
    int64_t nb;
    /* progress */
    aas_train_progress_cb *cb;
    void *opaque;
    double t0, last_cb;
    int32_t epoch;
    double loss_sum;
    int64_t loss_n, seen, batch, batches;
    int cancel;
    char *errstr;
    size_t errstr_size;
} aas_tt_t;

/* Setup, the counting pass (and the cache of rows), classes, IDF, head. */
aas_err_t aas_tt_prepare(aas_tt_t *t);
uint64_t aas_tt_rand(uint64_t *s);
void aas_tt_arena_row(const aas_tt_arena_t *a, size_t i, int32_t *label, uint32_t **idx,
                      float **val, size_t *nnz);
/* Fisher-Yates shuffle of v[0..n) from rng. */
void aas_tt_shuffle(int64_t *v, size_t n, uint64_t *rng);
/* Train on n rows of arena a: rows order[0..n) (arena indices), or the
 * first n in arena order when order is NULL; stops at a cancel. */
aas_err_t aas_tt_train_rows(aas_tt_t *t, const aas_tt_arena_t *a, const int64_t *order,
                            size_t n);
/* One row's step (linear) or its place in the next batch (mlp). */
aas_err_t aas_tt_train_row(aas_tt_t *t, int32_t label, const uint32_t *idx, const float *val,
                           size_t nnz);
aas_err_t aas_tt_mlp_flush(aas_tt_t *t);
/* Mean loss and accuracy on the validation rows. */
aas_err_t aas_tt_evaluate(aas_tt_t *t, double *loss, double *acc);
/* The model (res->blob) of the current weights. */
aas_err_t aas_tt_export(aas_tt_t *t, aas_train_result_t *res);
void aas_tt_free(aas_tt_t *t);

#endif
