/*
 * textfeat.h - the text featurizer, version 2: Unicode text in, a sparse
 * TF-IDF vector of hashed character and word n-grams out, the same in
 * training and serving.  docs/text.md#the-featurizer-version-2 is the full
 * specification, with test vectors; in short:
 *
 *  1. The text must be valid UTF-8 without NUL (else AAS_ERR_INVAL with
 *     the byte offset).
 *  2. NFKC + case folding + default ignorables removed (utf8proc).
 *  3. Whitespace runs (Z*, Cc) become one space; the text is trimmed and
 *     padded with one space at each end.
 *  4. Character n-grams, char_min..char_max code points (default 1..3),
 *     over that sequence, the lone space excepted; word n-grams
 *     1..word_max (default 2) over words of scripts that put spaces
 *     between words (Han, Kana, Thai, Lao, Khmer, Myanmar and Tibetan
 *     characters end a word and are in no word).
 *  5. Each n-gram is hashed (FNV-1a over a kind byte and its UTF-8, then
 *     the murmur3 finaliser): the low bits pick one of dim buckets, bit 31
 *     the sign, so colliding n-grams tend to cancel.
 *  6. Per bucket c = signed count; nonzero c becomes sign(c) (1 + ln|c|)
 *     when sublinear, times the bucket's IDF weight (if the model has
 *     them), then the vector is scaled to unit L2 norm.
 * A text without a letter, digit or symbol (empty, spaces, punctuation
 * only) has no features: AAS_ERR_INVAL "no letter, digit or symbol".
 *
 * A featurizer handle owns its scratch (a dim-sized accumulator and code
 * point buffers), so it allocates only when a text is longer than any
 * before it; one handle, one thread.  Work is O(text length x n-gram
 * orders), never O(dim), after the first call.
 */
#ifndef AAS_TEXTFEAT_H
#define AAS_TEXTFEAT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_TEXTFEAT_VERSION 2
#define AAS_TEXTFEAT_MIN_DIM 16
#define AAS_TEXTFEAT_MAX_DIM (1 << 24)
#define AAS_TEXTFEAT_DEFAULT_DIM (1 << 18)
#define AAS_TEXTFEAT_MAX_ORDER 8 /* longest n-gram, chars or words */

typedef struct {
    int32_t char_min, char_max; /* 1 <= min <= max <= 8, or both 0: none */
    int32_t word_max;           /* 0 (none) .. 8 */
    int64_t dim;                /* a power of two, MIN_DIM..MAX_DIM */
    int sublinear_tf;           /* 1: 1 + ln(count) */
} aas_textfeat_conf_t;

/** @brief The defaults: chars 1..3, words 1..2, dim 2^18, sublinear. */
void aas_textfeat_conf_default(aas_textfeat_conf_t *c);

/** @brief AAS_ERR_INVAL naming the field if c is not valid. */
aas_err_t aas_textfeat_conf_check(const aas_textfeat_conf_t *c, char *errstr,
                                  size_t errstr_size);

typedef struct aas_textfeat_s aas_textfeat_t;

/**
 * @brief A featurizer for conf.  idf: NULL (weights 1) or dim weights,
 *        borrowed (they must outlive the handle: the model owns them).
 */
aas_err_t aas_textfeat_new(const aas_textfeat_conf_t *conf, const float *idf,
                           aas_textfeat_t **out, char *errstr, size_t errstr_size);

/** @brief NULL is a no-op. */
void aas_textfeat_destroy(aas_textfeat_t *f);

/** @brief Bytes held (scratch included). */
size_t aas_textfeat_footprint(const aas_textfeat_t *f);

/**
 * @brief Featurize len bytes of text.  *idx and *val (nnz entries, distinct
 *        buckets in no particular order) are borrowed until the next call.
 *        With raw = 1 the values are the signed counts (no TF, IDF or
 *        norm): what training counts document frequencies from.
 * @return AAS_ERR_INVAL (invalid UTF-8, NUL, no features; errstr says
 *         which and where), AAS_ERR_NOMEM.
 */
aas_err_t aas_textfeat_run(aas_textfeat_t *f, const char *text, size_t len, int raw,
                           const uint32_t **idx, const float **val, size_t *nnz,
                           char *errstr, size_t errstr_size);

/**
 * @brief Step 6 on raw counts (val[k], signed integers as floats, bucket
 *        idx[k]) in place: TF, IDF (idf NULL: none), unit L2 norm.
 *        aas_textfeat_run() with raw = 0 is run with raw = 1 then this.
 */
void aas_textfeat_weigh(const aas_textfeat_conf_t *c, const float *idf,
                        const uint32_t *idx, float *val, size_t nnz);

/** @brief The hash of one n-gram as step 5 defines it (for tests and
 *         docs): kind 'c' or 'w', s its UTF-8 bytes (word n-grams joined
 *         by one space). */
uint32_t aas_textfeat_hash(char kind, const char *s, size_t n);

#endif
