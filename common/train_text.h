/*
 * train_text.h - training AASTXT2 text classifiers (docs/text.md#training)
 * from a stream of labeled texts that may be far larger than memory.
 *
 * Passes over the reader: one to count rows, classes and document
 * frequencies (the IDF weights), then one per epoch.  Featurized rows are
 * kept in memory while they fit in cache_bytes (then epochs re-read
 * nothing); past that, each epoch re-reads and re-featurizes the stream
 * through a shuffle buffer of shuffle_bytes.  So memory is bounded by
 * cache_bytes + shuffle_bytes + the model (+ the reader's own buffer),
 * never by the data set's size.
 *
 * Numeric rows (dense_dim > 0) go through the same passes, cache and
 * shuffle buffer into the MLP, so a CSV data set of any size trains in
 * bounded memory too.
 *
 * Heads:
 *  - linear (default): multinomial logistic regression on the sparse
 *    TF-IDF features, one example at a time with AdaGrad steps and L2,
 *    in plain C: a row touches only its few hundred features, where a
 *    dense formulation (oneDNN 2.6 has no sparse primitives) would move
 *    dim floats per row.
 *  - mlp: the oneDNN MLP of train.h on densified rows (dim <=
 *    AAS_TEXT2_MLP_MAX_DIM), batch by batch.
 *
 * Validation rows are chosen by a hash of the text and the seed, so a
 * row's side does not depend on the order it is read in (and duplicates
 * of a text are on the same side).  Deterministic for a given reader
 * order and seed.  Not thread-safe per call; distinct calls are.
 */
#ifndef AAS_TRAIN_TEXT_H
#define AAS_TRAIN_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "textfeat.h"
#include "train.h"
#include "train_dp.h"

/** Where the labeled texts come from: rewind, then next until eof. */
typedef struct {
    /** Back to the first row; seed lets a reader that can reorder its
     *  chunks draw the order from it. */
    aas_err_t (*rewind)(void *opaque, uint64_t seed, char *errstr, size_t errstr_size);
    /** The next row: text and label bytes, borrowed until the next call;
     *  *eof = 1 at the end.  An error stops training with its message. */
    aas_err_t (*next)(void *opaque, const char **text, size_t *text_len,
                      const char **label, size_t *label_len, int *eof, char *errstr,
                      size_t errstr_size);
    void *opaque;
} aas_text_reader_t;

typedef struct {
    aas_textfeat_conf_t feat;     /* text_dim, char_ngrams, word_ngrams, sublinear_tf */
    int head;                     /* AAS_TEXT2_HEAD_LINEAR (default) or _MLP */
    int idf;                      /* 1: learn IDF weights (default) */
    int32_t epochs;               /* linear default 10 */
    double learning_rate;         /* linear: AdaGrad step, default 0.1 */
    double l2;                    /* linear: L2 per example, default 1e-6 */
    uint64_t seed;
    double validation_fraction;   /* default 0.1 */
    int64_t max_rows;             /* refuse more rows (0: no limit) */
    size_t cache_bytes;           /* featurized rows kept, default 256 MiB */
    size_t shuffle_bytes;         /* streaming shuffle buffer, default 32 MiB */
    aas_train_params_t mlp;       /* head=mlp: hidden, batch_size, optimiser...;
                                     its epochs, seed and validation_fraction are
                                     the ones above */
    const char *const *classes;   /* NULL: the distinct labels sorted by strcmp; */
    size_t n_classes;             /* else exactly these, in this order (numeric
                                     rows: the names of classes 0..n-1) */
    /* Numeric rows instead of texts (a CSV data set or topic): > 0 is the
     * number of values before the label on each row, the `text` a reader
     * gives is those values comma-separated and the label a class index
     * 0..65535.  No featurizer; head must be mlp; the model is an AASMLP1
     * (train.h's `scale` applies).  0: texts. */
    int64_t dense_dim;
    int32_t min_classes;          /* numeric rows: at least this many classes
                                     (param `classes`), default 0 */
} aas_text_train_params_t;

/** @brief Defaults (feat: textfeat.h's; the rest as documented above). */
void aas_text_train_params_default(aas_text_train_params_t *p);

/**
 * @brief Set one key from a job param: text_dim, char_ngrams ("1-3",
 *        "0" for none), word_ngrams (max order, 0 none), sublinear_tf,
 *        idf, head (linear|mlp), text_cache_mb, epochs, learning_rate,
 *        weight_decay (the L2), seed, validation_fraction; with head=mlp
 *        any key of train.h too.
 * @return AAS_ERR_NOT_FOUND for a key that is none of these (the caller
 *         decides), AAS_ERR_INVAL naming the key on a bad value.
 */
aas_err_t aas_text_train_params_set(aas_text_train_params_t *p, const char *key,
                                    const char *value, char *errstr, size_t errstr_size);

/**
 * @brief Train.  result->blob is an AASTXT2 model (aas_train_result_free
 *        frees it); curves and metrics as aas_train_run's.  cb (may be
 *        NULL) is called as aas_train_run calls it and may cancel.
 * @return AAS_ERR_INVAL (bad rows: invalid UTF-8, unknown label, one
 *         class...; errstr names the row), AAS_ERR_TOO_LARGE, AAS_ERR_NOMEM,
 *         or the reader's error.
 */
aas_err_t aas_text_train(const aas_text_train_params_t *p, const aas_text_reader_t *r,
                         aas_train_progress_cb *cb, void *opaque,
                         aas_train_result_t *result, char *errstr, size_t errstr_size);

/**
 * @brief A data-parallel engine (train_dp.h) for the job p over r: shard s
 *        of n_shards trains on the cached training rows s, s + N, ...
 *        (only shard `only`'s rows when only >= 0, all when -1).  The
 *        counting pass runs here, reading every row: the classes, IDF
 *        weights and row order are then the same on every worker that
 *        reads the same data.  r is used only during the call.
 * @return as aas_text_train's; AAS_ERR_TOO_LARGE when the featurized rows
 *         do not fit cache_bytes (rounds need them in memory).
 */
aas_err_t aas_text_dp_new(const aas_text_train_params_t *p, const aas_text_reader_t *r,
                          int n_shards, int only, aas_train_dp_engine_t **out, char *errstr,
                          size_t errstr_size);

#endif
