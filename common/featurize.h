/*
 * featurize.h - text to a fixed-size feature vector, the same in training
 * and serving (docs/text.md).
 *
 * Lower-case ASCII letters; tokens are maximal runs of [a-z0-9'] (other
 * bytes, including non-ASCII, separate tokens); each token and each pair of
 * neighbouring tokens ("w1 w2") is hashed with 32-bit FNV-1a into one of
 * `dim` buckets (dim a power of two: bucket = hash & (dim - 1)); bucket
 * values are counts, then the vector is scaled to unit L2 norm (all zeros
 * if the text has no token).  Thread-safe; no allocation.
 */
#ifndef AAS_FEATURIZE_H
#define AAS_FEATURIZE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_FEATURIZE_VERSION 1
#define AAS_FEATURIZE_MIN_DIM 16
#define AAS_FEATURIZE_MAX_DIM (1 << 20)
#define AAS_FEATURIZE_MAX_TOKEN 64   /* longer tokens are cut */

/** @brief 32-bit FNV-1a of n bytes, continuing from h (start: 2166136261). */
uint32_t aas_featurize_fnv1a(uint32_t h, const void *p, size_t n);

/**
 * @brief Featurize len bytes of text into out[dim].
 * @return AAS_ERR_INVAL if dim is not a power of two in range.
 */
aas_err_t aas_featurize_text(const char *text, size_t len, float *out,
                             int64_t dim);

#endif
