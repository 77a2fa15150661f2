/*
 * onnx.h - ONNX graphs: load, describe, run (docs/onnx.md).
 *
 * A graph is parsed from a ModelProto's bytes (protobuf-c, code generated
 * from Debian's onnx.proto), checked (every node's op and opset known, no
 * cycle, every input produced, initializer sizes agree, no external data)
 * and optimised once (BatchNormalization folded into the Conv before it,
 * an activation fused into the Gemm/MatMul/Conv before it as a oneDNN
 * post-op).  Running it with concrete input shapes makes a plan: shapes
 * inferred along the graph, shape arithmetic folded to constants, one
 * kernel per node (a oneDNN primitive where oneDNN has one, plain C
 * otherwise), every intermediate buffer allocated.  Plans are cached per
 * input shape set, so a steady stream of one batch size allocates nothing.
 *
 * This module knows nothing of aas jobs: common/model_onnx.c adapts a graph
 * with one float input to the aas_model interface (batch buckets, labels).
 *
 * Threading: a graph is used by one thread at a time (plans own their
 * oneDNN stream and buffers).
 */
#ifndef AAS_ONNX_H
#define AAS_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AAS_ONNX_MAX_RANK 8
/* Largest tensor (initializer or planned intermediate), in bytes. */
#define AAS_ONNX_MAX_TENSOR_BYTES ((size_t)1 << 30)
#define AAS_ONNX_MAX_NODES 100000

/* Element types, numbered as ONNX's TensorProto.DataType.  The engine
 * computes in FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 and BOOL; the other
 * numbers are named so errors can say what was refused. */
typedef enum {
    AAS_ONNX_UNDEFINED = 0,
    AAS_ONNX_FLOAT = 1,
    AAS_ONNX_UINT8 = 2,
    AAS_ONNX_INT8 = 3,
    AAS_ONNX_UINT16 = 4,
    AAS_ONNX_INT16 = 5,
    AAS_ONNX_INT32 = 6,
    AAS_ONNX_INT64 = 7,
    AAS_ONNX_STRING = 8,
    AAS_ONNX_BOOL = 9,
    AAS_ONNX_FLOAT16 = 10,
    AAS_ONNX_DOUBLE = 11,
    AAS_ONNX_UINT32 = 12,
    AAS_ONNX_UINT64 = 13,
    AAS_ONNX_COMPLEX64 = 14,
    AAS_ONNX_COMPLEX128 = 15,
    AAS_ONNX_BFLOAT16 = 16
} aas_onnx_dtype_t;

/* A dense tensor, row-major.  Who owns `data` is said where one is
 * handed over. */
typedef struct {
    aas_onnx_dtype_t dtype;
    int rank;                          /* 0 for a scalar */
    int64_t dims[AAS_ONNX_MAX_RANK];
    void *data;
    size_t nbytes;                     /* numel * element size */
} aas_onnx_tensor_t;

/** @brief "float", "int64", ... ("dtype(N)" style names are not returned:
 *         unknown numbers give "?"). */
const char *aas_onnx_dtype_name(aas_onnx_dtype_t t);
/** @brief Bytes per element; 0 for types the engine does not compute in. */
size_t aas_onnx_dtype_size(aas_onnx_dtype_t t);
/** @brief Product of the dims (1 for a scalar). */
int64_t aas_onnx_numel(const aas_onnx_tensor_t *t);

typedef struct aas_onnx_s aas_onnx_t;

/**
 * @brief Parse, check and optimise a graph (the bytes are copied from; buf
 *        may be freed afterwards).
 * @return AAS_ERR_MODEL_FORMAT with a reason naming the first problem (the
 *         node and op, the opset, the field), AAS_ERR_TOO_LARGE for a
 *         tensor over AAS_ONNX_MAX_TENSOR_BYTES, AAS_ERR_NOMEM.
 */
aas_err_t aas_onnx_load(const void *buf, size_t len, aas_onnx_t **out, char *errstr,
                        size_t errstr_size);
/** @brief NULL is a no-op. */
void aas_onnx_destroy(aas_onnx_t *g);

/* One graph input or output as declared.  Borrowed from the graph. */
typedef struct {
    const char *name;
    aas_onnx_dtype_t dtype;
    int rank;                 /* -1: not declared */
    const int64_t *dims;      /* rank entries; -1 where symbolic or unknown */
    const char *const *dim_params; /* rank entries; the symbol or NULL */
} aas_onnx_io_t;

/** @brief Inputs the caller feeds (graph inputs that are not initializers). */
size_t aas_onnx_n_inputs(const aas_onnx_t *g);
size_t aas_onnx_n_outputs(const aas_onnx_t *g);
/** @brief i < n; fills *out with borrowed pointers valid while g lives. */
void aas_onnx_input(const aas_onnx_t *g, size_t i, aas_onnx_io_t *out);
void aas_onnx_output(const aas_onnx_t *g, size_t i, aas_onnx_io_t *out);

/** @brief Imported opset of a domain ("" or "ai.onnx", "ai.onnx.ml"); 0 if
 *         the model does not import it. */
int64_t aas_onnx_opset(const aas_onnx_t *g, const char *domain);
/** @brief "pytorch 1.13.1", "skl2onnx 1.16.0", or "" (borrowed). */
const char *aas_onnx_producer(const aas_onnx_t *g);
int64_t aas_onnx_ir_version(const aas_onnx_t *g);
/** @brief Nodes after optimisation (fused nodes are not counted). */
size_t aas_onnx_n_nodes(const aas_onnx_t *g);
/** @brief Bytes held: initializers plus every cached plan's buffers. */
size_t aas_onnx_footprint(const aas_onnx_t *g);

/**
 * @brief Run the graph.
 * @param in n_in tensors in the order of aas_onnx_input (dtype must match,
 *        dims must agree with the declared ones except symbolic ones).
 * @param out n_out pointers filled with borrowed tensors, valid until the
 *        next run or destroy of g.
 * @return AAS_ERR_SHAPE for inputs that do not fit the graph (with the
 *         input's name), AAS_ERR_MODEL_FORMAT for a graph whose shapes do
 *         not agree at some node, AAS_ERR_TOO_LARGE, AAS_ERR_DNN, ...
 */
aas_err_t aas_onnx_run(aas_onnx_t *g, const aas_onnx_tensor_t *in, size_t n_in,
                       const aas_onnx_tensor_t **out, size_t n_out, char *errstr,
                       size_t errstr_size);

/**
 * @brief Decode a serialized TensorProto (the conformance suite's .pb
 *        files).
 * @param out data malloc'ed (caller frees out->data).
 * @param name_out if non-NULL, the tensor's name, malloc'ed (or NULL).
 */
aas_err_t aas_onnx_tensor_decode(const void *buf, size_t len, aas_onnx_tensor_t *out,
                                 char **name_out, char *errstr, size_t errstr_size);

#endif
