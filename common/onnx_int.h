/*
 * onnx_int.h - what the ONNX engine's files share: the graph as loaded
 * (values, nodes, attributes) and the kernel interface every operator
 * implements.
 *
 *   onnx_load.c     protobuf -> graph, checks, topological order
 *   onnx_fuse.c     load-time rewrites (BatchNorm into Conv, activations
 *                   into Gemm/MatMul/Conv post-ops)
 *   onnx_plan.c     plans per input shape set: shapes, constant folding,
 *                   buffers; running a plan
 *   onnx_ops.c      the operator table, attribute getters, shared helpers
 *   onnx_ops_dnn.c  Gemm, MatMul, Conv, pools, BatchNormalization, Softmax,
 *                   LogSoftmax on oneDNN
 *   onnx_ops_elem.c element-wise: Add Sub Mul Div (broadcasting), Relu,
 *                   LeakyRelu, Sigmoid, Tanh, Erf, Clip, Cast, ...
 *   onnx_ops_shape.c Shape, Reshape, Flatten, Transpose, Concat, Gather,
 *                   Unsqueeze, Squeeze, Identity, Dropout, Constant
 *   onnx_ops_ml.c   ai.onnx.ml: linear, tree ensembles, SVM, Scaler,
 *                   Normalizer, ZipMap, ArgMax
 */
#ifndef AAS_ONNX_INT_H
#define AAS_ONNX_INT_H

#include <dnnl.h>

#include "onnx.h"

#define AAS_ONNX_DOMAIN_ML "ai.onnx.ml"

/* AttributeProto.AttributeType numbers. */
enum {
    AAS_ONNX_ATTR_FLOAT = 1,
    AAS_ONNX_ATTR_INT = 2,
    AAS_ONNX_ATTR_STRING = 3,
    AAS_ONNX_ATTR_TENSOR = 4,
    AAS_ONNX_ATTR_GRAPH = 5,
    AAS_ONNX_ATTR_FLOATS = 6,
    AAS_ONNX_ATTR_INTS = 7,
    AAS_ONNX_ATTR_STRINGS = 8
};

typedef struct {
    char *name;
    int type;                  /* AAS_ONNX_ATTR_* */
    float f;
    int64_t i;
    char *s;                   /* NUL-terminated copy (s_len bytes before it) */
    size_t s_len;
    aas_onnx_tensor_t *t;      /* TENSOR: owned, data owned */
    float *floats;             /* FLOATS: n entries */
    int64_t *ints;             /* INTS: n entries */
    char **strings;            /* STRINGS: n NUL-terminated copies */
    size_t n;
} aas_onnx_attr_t;

/* A value: a graph input, an initializer, or a node's output. */
typedef struct {
    char *name;
    aas_onnx_dtype_t dtype;    /* declared (value_info / input / output), 0 unknown */
    int rank;                  /* declared, -1 unknown */
    int64_t dims[AAS_ONNX_MAX_RANK];   /* -1 symbolic or unknown */
    char *dim_param[AAS_ONNX_MAX_RANK];
    aas_onnx_tensor_t *init;   /* initializer or Constant folded at load: owned */
    int producer;              /* node index, -1 for inputs and initializers */
    int is_input, is_output;
} aas_onnx_value_t;

/* An activation fused into the node before it (onnx_fuse.c) as a oneDNN
 * eltwise post-op. */
typedef struct {
    dnnl_alg_kind_t alg;       /* dnnl_alg_kind_undef: none */
    float alpha, beta;
} aas_onnx_post_t;

struct aas_onnx_op_s;

typedef struct {
    char *name;                /* "" when unnamed */
    char *type;                /* op_type */
    char *domain;              /* "" for ai.onnx */
    int64_t opset;             /* the model's imported opset for domain */
    int *in, *out;             /* value indices; in[i] == -1: omitted optional */
    int n_in, n_out;
    aas_onnx_attr_t *attrs;
    int n_attrs;
    const struct aas_onnx_op_s *op;
    aas_onnx_post_t post;      /* Gemm, MatMul, Conv only */
    int dead;                  /* removed by a rewrite */
} aas_onnx_node_t;

struct aas_onnx_plan_s;

struct aas_onnx_s {
    int64_t ir_version;
    char *producer;
    char *domains[8];          /* imported opsets */
    int64_t versions[8];
    int n_domains;
    aas_onnx_value_t *values;
    int n_values, cap_values;
    aas_onnx_node_t *nodes;    /* in topological order after load */
    int n_nodes;
    int *inputs, *outputs;     /* value indices */
    int n_inputs, n_outputs;
    size_t init_bytes;
    struct aas_onnx_plan_s *plans;  /* most recently used first */
    int n_plans;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct aas_onnx_wcache_s *wcache;  /* onnx_ops_dnn.c: reordered weights */
};

/*
 * One node in one plan.  in[i] is NULL for an omitted optional input.
 *
 * While op->plan runs, in[i]->data is non-NULL exactly when input i is a
 * constant at plan time (an initializer, or the output of a node whose
 * inputs were all constant, or of Shape); the other inputs have their
 * dtype and dims set but no data yet.  plan must set every out[i]'s dtype,
 * rank and dims (the planner computes nbytes and allocates out[i]->data
 * afterwards, unless plan set alias).  run computes out from in; it must
 * not allocate.
 */
typedef struct {
    const aas_onnx_node_t *node;
    aas_onnx_tensor_t **in;
    aas_onnx_tensor_t **out;
    int n_in, n_out;
    void *state;               /* the op's own; freed with op->release */
    int alias;                 /* set by plan: out[0] shares in[0]'s data
                                * (same nbytes; Reshape, Squeeze, ...) */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct aas_onnx_s *graph;  /* for caches shared by the graph's plans */
} aas_onnx_kernel_t;

typedef struct aas_onnx_op_s {
    const char *domain;        /* "" or AAS_ONNX_DOMAIN_ML */
    const char *type;
    int64_t min_opset;         /* oldest opset version the kernel follows */
    int64_t max_opset;         /* newest (a model importing a newer one is
                                * refused: its semantics may have changed) */
    int shape_only;            /* output depends on input shapes only (Shape) */
    /** Attribute checks at load (NULL: none). */
    aas_err_t (*check)(const aas_onnx_node_t *node, char *errstr, size_t errstr_size);
    aas_err_t (*plan)(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size);
    aas_err_t (*run)(aas_onnx_kernel_t *k, char *errstr, size_t errstr_size);
    void (*release)(void *state);   /* NULL: free(state) */
} aas_onnx_op_t;

/* ---- the operator table (onnx_ops.c) ---- */

/** @brief The op for (domain, type) handling opset, or NULL.  *known is set
 *         to 1 when (domain, type) exists for some other opset. */
const aas_onnx_op_t *aas_onnx_op_find(const char *domain, const char *type, int64_t opset,
                                      int *known);

extern const aas_onnx_op_t aas_onnx_ops_dnn[];
extern const size_t aas_onnx_ops_dnn_n;
extern const aas_onnx_op_t aas_onnx_ops_elem[];
extern const size_t aas_onnx_ops_elem_n;
extern const aas_onnx_op_t aas_onnx_ops_shape[];
extern const size_t aas_onnx_ops_shape_n;
extern const aas_onnx_op_t aas_onnx_ops_ml[];
extern const size_t aas_onnx_ops_ml_n;

/* ---- attributes (onnx_ops.c); borrowed from the node ---- */

const aas_onnx_attr_t *aas_onnx_attr(const aas_onnx_node_t *n, const char *name);
int64_t aas_onnx_attr_int(const aas_onnx_node_t *n, const char *name, int64_t dflt);
float aas_onnx_attr_float(const aas_onnx_node_t *n, const char *name, float dflt);
/** @return dflt when absent. */
const char *aas_onnx_attr_str(const aas_onnx_node_t *n, const char *name, const char *dflt);
/** @return the count (0 when absent, *v NULL). */
size_t aas_onnx_attr_ints(const aas_onnx_node_t *n, const char *name, const int64_t **v);
size_t aas_onnx_attr_floats(const aas_onnx_node_t *n, const char *name, const float **v);
size_t aas_onnx_attr_strings(const aas_onnx_node_t *n, const char *name,
                             char *const **v);

/* ---- helpers for kernels (onnx_ops.c) ---- */

/** @brief "node 'name' (Op)" for error messages, into buf. */
const char *aas_onnx_node_str(const aas_onnx_node_t *n, char *buf, size_t size);
/** @brief AAS_ERR_MODEL_FORMAT "node 'x' (Op): <fmt>". */
aas_err_t aas_onnx_node_err(const aas_onnx_node_t *n, char *errstr, size_t errstr_size,
                            const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** @brief Normalise an axis in [-rank, rank) to [0, rank); -1 if out of range. */
int aas_onnx_axis(int64_t axis, int rank);
/** @brief Numpy broadcasting of a and b into out (rank, dims); -1 if they
 *         do not broadcast. */
int aas_onnx_broadcast(const aas_onnx_tensor_t *a, const aas_onnx_tensor_t *b,
                       aas_onnx_tensor_t *out);
/** @brief Load-time arity check: lo to hi inputs, the first lo given, 1 to
 *         max_out outputs; AAS_ERR_MODEL_FORMAT naming the node if not. */
aas_err_t aas_onnx_arity(const aas_onnx_node_t *n, int lo, int hi, int max_out, char *errstr,
                         size_t errstr_size);
/** @brief "2,3,4": t's dims into buf (truncated to size), for messages. */
const char *aas_onnx_dims_str(const aas_onnx_tensor_t *t, char *buf, size_t size);
/** @brief Read element i of an integer tensor (INT64 or INT32) as int64. */
int64_t aas_onnx_int_at(const aas_onnx_tensor_t *t, int64_t i);

/* ---- load-time rewrites (onnx_fuse.c) ---- */

aas_err_t aas_onnx_fuse(aas_onnx_t *g, char *errstr, size_t errstr_size);

/* ---- the direct convolution for few input channels (onnx_conv_direct.c) ---- */

#define AAS_ONNX_CONV_DIRECT_MAX_IC 4

typedef struct {
    int64_t n, ic, ih, iw, oc, oh, ow, kh, kw, ph, pw;  /* ph, pw: left pads */
    aas_onnx_post_t post;
} aas_onnx_conv_direct_t;

typedef struct aas_onnx_conv_direct_s aas_onnx_conv_direct_state_t;

/** @brief 1 if a Conv of these parameters runs direct: group 1, 2-D,
 *         1..AAS_ONNX_CONV_DIRECT_MAX_IC input channels, stride 1, no
 *         dilation. */
int aas_onnx_conv_direct_fits(int64_t ic, int64_t group, int sp, const int64_t *stride,
                              const int64_t *dil);
/** @brief Weights (OIHW) and bias (or NULL) copied; scratch for every
 *         OpenMP thread allocated here, none when running. */
aas_err_t aas_onnx_conv_direct_new(const aas_onnx_conv_direct_t *c, const float *w,
                                   const float *b, aas_onnx_conv_direct_state_t **out,
                                   char *errstr, size_t errstr_size);
void aas_onnx_conv_direct_free(aas_onnx_conv_direct_state_t *s);
/** @brief y = act(conv(x) + b), NCHW in and out. */
void aas_onnx_conv_direct(const aas_onnx_conv_direct_state_t *s, const float *x, float *y);

/* ---- weights reordered once per graph (onnx_ops_dnn.c) ---- */

void aas_onnx_wcache_free(aas_onnx_t *g);
size_t aas_onnx_wcache_bytes(const aas_onnx_t *g);

/* ---- plans (onnx_plan.c) ---- */

void aas_onnx_plans_free(aas_onnx_t *g);
size_t aas_onnx_plans_bytes(const aas_onnx_t *g);

#endif
