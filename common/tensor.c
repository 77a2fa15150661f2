/* tensor.c - validation of wire tensors; see tensor.h. */
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t aas_dtype_size(aas_dtype_t dtype) {
    static const size_t sizes[AAS_DTYPE__COUNT] = {4, 8, 4, 8, 1};
    return (int)dtype >= 0 && dtype < AAS_DTYPE__COUNT ? sizes[dtype] : 0;
}

const char *aas_dtype_name(aas_dtype_t dtype) {
    static const char *names[AAS_DTYPE__COUNT] = {"F32", "F64", "I32", "I64",
                                                  "U8"};
    return (int)dtype >= 0 && dtype < AAS_DTYPE__COUNT ? names[dtype] : "?";
}

aas_err_t aas_tensor_check(const aas_tensor_t *t, uint64_t max_elems,
                           uint64_t *elems_out, char *errstr,
                           size_t errstr_size) {
    size_t esz = aas_dtype_size(t->dtype);
    if (esz == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "tensor '%s': invalid dtype %d",
                           t->name ? t->name : "", (int)t->dtype);
    if (t->rank < 0 || t->rank > AAS_TENSOR_MAX_RANK)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "tensor '%s': rank %d outside 0..%d",
                           t->name ? t->name : "", t->rank,
                           AAS_TENSOR_MAX_RANK);
    uint64_t elems = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] < 1)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "tensor '%s': dim %d is %lld, must be >= 1",
                               t->name ? t->name : "", i,
                               (long long)t->shape[i]);
        /* Division, not multiplication, so a hostile shape cannot wrap. */
        if ((uint64_t)t->shape[i] > max_elems / elems)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "tensor '%s': more than %llu elements",
                               t->name ? t->name : "",
                               (unsigned long long)max_elems);
        elems *= (uint64_t)t->shape[i];
    }
    if (t->nbytes != elems * esz)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "tensor '%s': %zu data bytes, shape needs %llu",
                           t->name ? t->name : "", t->nbytes,
                           (unsigned long long)(elems * esz));
    if (elems_out) *elems_out = elems;
    return AAS_ERR_OK;
}

aas_err_t aas_tensor_check_finite(const aas_tensor_t *t, char *errstr,
                                  size_t errstr_size) {
    size_t n;
    if (t->dtype == AAS_DTYPE_F32) {
        n = t->nbytes / 4;
        for (size_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, (const char *)t->data + i * 4, 4);
            if (!isfinite(v))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                                   "tensor '%s': element %zu is not finite",
                                   t->name ? t->name : "", i);
        }
    } else if (t->dtype == AAS_DTYPE_F64) {
        n = t->nbytes / 8;
        for (size_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, (const char *)t->data + i * 8, 8);
            if (!isfinite(v))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                                   "tensor '%s': element %zu is not finite",
                                   t->name ? t->name : "", i);
        }
    }
    return AAS_ERR_OK;
}

aas_err_t aas_tensor_set_f32(aas_tensor_t *t, const char *name,
                             const float *data, int rank,
                             const int64_t *shape) {
    memset(t, 0, sizeof(*t));
    if (rank < 0 || rank > AAS_TENSOR_MAX_RANK) return AAS_ERR_SHAPE;
    size_t elems = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 1) return AAS_ERR_SHAPE;
        elems *= (size_t)shape[i];
        t->shape[i] = shape[i];
    }
    t->rank = rank;
    t->dtype = AAS_DTYPE_F32;
    t->nbytes = elems * 4;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    t->name = name ? strdup(name) : NULL;
    if (!t->data || (name && !t->name)) {
        aas_tensor_clear(t);
        return AAS_ERR_NOMEM;
    }
    memcpy(t->data, data, t->nbytes);
    return AAS_ERR_OK;
}

void aas_tensor_clear(aas_tensor_t *t) {
    if (!t) return;
    free(t->name);
    free(t->data);
    memset(t, 0, sizeof(*t));
}
