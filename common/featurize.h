/*
 * featurize.h - text to a fixed-size feature vector, the same in training
 * and serving (docs/text.md has the full specification).
 *
 * Version 1: bytes 'A'-'Z' become 'a'-'z'; tokens are maximal runs of
 * token bytes: [a-z0-9'] and every byte >= 0x80 (so UTF-8 letters stay
 * inside words; other ASCII bytes separate tokens).  Each token, and each
 * pair of neighbouring tokens joined by one space ("w1 w2"), is hashed
 * with 32-bit FNV-1a into bucket hash & (dim - 1) (dim a power of two),
 * whose value grows by 1 (unsigned counts); then the vector is scaled to
 * unit L2 norm (all zeros if the text has no token).
 *
 * It does not bound the text: callers do (the job decoder refuses texts
 * over job.max.text.bytes).  Work is O(len + dim); nothing is allocated.
 * Thread-safe (no state).
 */
#ifndef AAS_FEATURIZE_H
#define AAS_FEATURIZE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_FEATURIZE_VERSION 1
#define AAS_FEATURIZE_MIN_DIM 16
#define AAS_FEATURIZE_MAX_DIM (1 << 20)
#define AAS_FEATURIZE_DEFAULT_DIM 4096
#define AAS_FEATURIZE_FNV_OFFSET 2166136261u  /* FNV-1a 32-bit offset basis */

/** @brief 1 if dim is a power of two in MIN_DIM..MAX_DIM. */
int aas_featurize_dim_valid(int64_t dim);

/**
 * @brief 32-bit FNV-1a of n bytes, continuing from h (start a new hash
 *        with AAS_FEATURIZE_FNV_OFFSET).
 */
uint32_t aas_featurize_fnv1a(uint32_t h, const void *p, size_t n);

/**
 * @brief Featurize len bytes of text (need not be NUL-terminated; NUL is a
 *        separator byte like any other) into out[dim], overwriting it.
 * @return AAS_ERR_INVAL if dim is not valid or out is NULL (out untouched).
 */
aas_err_t aas_featurize_text(const char *text, size_t len, float *out,
                             int64_t dim);

#endif
