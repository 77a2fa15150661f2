/*
 * tensor.h - dense tensors as they travel in jobs and results.
 *
 * A tensor is dtype + shape + little-endian bytes in row-major order.  This
 * module validates them (rank, element count against a limit, byte length
 * against shape, finite values) before anyone allocates or computes on them.
 * It does no arithmetic.
 *
 * Ownership: an aas_tensor_t owns `name` and `data` (heap, freed by
 * aas_tensor_clear()).  Not thread-safe per object; distinct objects are
 * independent.
 */
#ifndef AAS_TENSOR_H
#define AAS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_TENSOR_MAX_RANK 8

/* Order and names are the Avro enum aas.v1.DType; do not reorder. */
typedef enum {
    AAS_DTYPE_F32 = 0,
    AAS_DTYPE_F64 = 1,
    AAS_DTYPE_I32 = 2,
    AAS_DTYPE_I64 = 3,
    AAS_DTYPE_U8 = 4,
    AAS_DTYPE__COUNT
} aas_dtype_t;

typedef struct {
    char *name;                          /* may be NULL */
    aas_dtype_t dtype;
    int rank;                            /* 0..AAS_TENSOR_MAX_RANK */
    int64_t shape[AAS_TENSOR_MAX_RANK];
    void *data;                          /* nbytes bytes, little-endian */
    size_t nbytes;
} aas_tensor_t;

/** @brief Bytes per element (4, 8, 4, 8, 1); 0 for an invalid dtype. */
size_t aas_dtype_size(aas_dtype_t dtype);
/** @brief "F32", "F64", ...; "?" for an invalid dtype. */
const char *aas_dtype_name(aas_dtype_t dtype);

/**
 * @brief Check rank, dims (each >= 1), element count <= max_elems (without
 *        overflow), and that nbytes == elems * dtype size.
 * @param elems_out element count on success (may be NULL).
 * @return AAS_ERR_OK, AAS_ERR_SHAPE or AAS_ERR_TOO_LARGE with errstr filled.
 */
aas_err_t aas_tensor_check(const aas_tensor_t *t, uint64_t max_elems,
                           uint64_t *elems_out, char *errstr,
                           size_t errstr_size);

/** @brief AAS_ERR_NONFINITE if a float tensor holds NaN or +-Inf. */
aas_err_t aas_tensor_check_finite(const aas_tensor_t *t, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Fill t as an F32 tensor with a copy of `data` (rank dims).
 * @return AAS_ERR_NOMEM or AAS_ERR_SHAPE; on failure t is left cleared.
 */
aas_err_t aas_tensor_set_f32(aas_tensor_t *t, const char *name,
                             const float *data, int rank,
                             const int64_t *shape);

/** @brief Free what t owns and zero it.  NULL is a no-op. */
void aas_tensor_clear(aas_tensor_t *t);

#endif
