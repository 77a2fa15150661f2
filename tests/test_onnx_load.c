/*
 * test_onnx_load.c - what aas_onnx_load (and the first aas_onnx_run, for
 * what only planning can see) does with bad models: truncated and garbage
 * protobuf, graphs that are empty, cyclic, missing a value, with shapes
 * that disagree, unknown or unsupported dtypes, tensors that claim more
 * bytes than they hold or than the engine allows, ops from unknown domains
 * or unknown to ai.onnx, opsets newer than the engine follows, external
 * data.  Each must be refused with AAS_ERR_MODEL_FORMAT (AAS_ERR_TOO_LARGE
 * for a tensor over the limit) and a message that names the node, op,
 * initializer or field, and must never crash (run under ASan).  A tiny
 * valid graph (Gemm + Relu) loads, describes itself, and computes the
 * right numbers, through onnx.h and through the aas_model "onnx" kind.
 *
 * The models are built here with the protobuf-c code generated from
 * Debian's onnx.proto, so each test states exactly what is wrong.
 */
#define _GNU_SOURCE /* strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "onnx.h"
#include "onnx.pb-c.h"

/* ---- building models ---- */

#define MB_CAP 32 /* entries in each repeated field a test fills */

/* A ModelProto under construction; everything it points to is allocated
 * through mb_alloc and freed by mb_free. */
typedef struct {
    void **ptrs;
    size_t n_ptrs, cap_ptrs;
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
} mb_t;

static void *mb_alloc(mb_t *b, size_t size) {
    if (b->n_ptrs == b->cap_ptrs) {
        b->cap_ptrs = b->cap_ptrs ? 2 * b->cap_ptrs : 64;
        b->ptrs = realloc(b->ptrs, b->cap_ptrs * sizeof(*b->ptrs));
        assert_non_null(b->ptrs);
    }
    void *p = calloc(1, size ? size : 1);
    assert_non_null(p);
    b->ptrs[b->n_ptrs++] = p;
    return p;
}

static char *mb_str(mb_t *b, const char *s) {
    char *c = mb_alloc(b, strlen(s) + 1);
    memcpy(c, s, strlen(s));
    return c;
}

static void mb_free(mb_t *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n_ptrs; i++) free(b->ptrs[i]);
    free(b->ptrs);
    free(b);
}

static void mb_opset(mb_t *b, const char *domain, int64_t version) {
    Onnx__OperatorSetIdProto *o = mb_alloc(b, sizeof(*o));
    *o = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    o->domain = mb_str(b, domain);
    o->has_version = 1;
    o->version = version;
    b->model.opset_import[b->model.n_opset_import++] = o;
}

/* A model importing ai.onnx at `opset`, with an empty graph named "g". */
static mb_t *mb_new(int64_t opset) {
    mb_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    b->model = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    b->graph = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.producer_name = mb_str(b, "aas-test");
    b->model.producer_version = mb_str(b, "1.0");
    b->model.opset_import = mb_alloc(b, MB_CAP * sizeof(void *));
    b->model.graph = &b->graph;
    b->graph.name = mb_str(b, "g");
    b->graph.node = mb_alloc(b, MB_CAP * sizeof(void *));
    b->graph.initializer = mb_alloc(b, MB_CAP * sizeof(void *));
    b->graph.input = mb_alloc(b, MB_CAP * sizeof(void *));
    b->graph.output = mb_alloc(b, MB_CAP * sizeof(void *));
    b->graph.value_info = mb_alloc(b, MB_CAP * sizeof(void *));
    mb_opset(b, "", opset);
    return b;
}

/* A tensor value's declaration: dims[i] < 0 is symbolic, named
 * params[i] (or "N"); rank < 0 declares no shape. */
static Onnx__ValueInfoProto *mb_value(mb_t *b, const char *name, int32_t elem_type,
                                      int rank, const int64_t *dims,
                                      const char *const *params) {
    Onnx__ValueInfoProto *v = mb_alloc(b, sizeof(*v));
    Onnx__TypeProto *t = mb_alloc(b, sizeof(*t));
    Onnx__TypeProto__Tensor *tt = mb_alloc(b, sizeof(*tt));
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    *t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    v->name = mb_str(b, name);
    v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
    if (rank >= 0) {
        Onnx__TensorShapeProto *s = mb_alloc(b, sizeof(*s));
        *s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
        s->n_dim = (size_t)rank;
        s->dim = mb_alloc(b, (size_t)rank * sizeof(void *));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = mb_alloc(b, sizeof(*d));
            *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
            if (dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = mb_str(b, params && params[i] ? params[i] : "N");
            }
            s->dim[i] = d;
        }
        tt->shape = s;
    }
    return v;
}

static void mb_input(mb_t *b, const char *name, int32_t elem_type, int rank,
                     const int64_t *dims, const char *const *params) {
    b->graph.input[b->graph.n_input++] = mb_value(b, name, elem_type, rank, dims, params);
}

static void mb_output(mb_t *b, const char *name, int32_t elem_type, int rank,
                      const int64_t *dims, const char *const *params) {
    b->graph.output[b->graph.n_output++] = mb_value(b, name, elem_type, rank, dims, params);
}

/* An initializer with its dims; the caller fills the data. */
static Onnx__TensorProto *mb_init(mb_t *b, const char *name, int32_t dtype, int rank,
                                  const int64_t *dims) {
    Onnx__TensorProto *t = mb_alloc(b, sizeof(*t));
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = mb_str(b, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = mb_alloc(b, (size_t)rank * sizeof(int64_t));
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    b->graph.initializer[b->graph.n_initializer++] = t;
    return t;
}

/* A float initializer in float_data (n values, whatever the dims say). */
static Onnx__TensorProto *mb_init_f(mb_t *b, const char *name, int rank,
                                    const int64_t *dims, const float *vals, size_t n) {
    Onnx__TensorProto *t = mb_init(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims);
    t->n_float_data = n;
    t->float_data = mb_alloc(b, n * sizeof(float));
    memcpy(t->float_data, vals, n * sizeof(float));
    return t;
}

/* An initializer whose bytes are raw_data (len bytes, zeros if vals NULL). */
static Onnx__TensorProto *mb_init_raw(mb_t *b, const char *name, int32_t dtype, int rank,
                                      const int64_t *dims, const void *vals, size_t len) {
    Onnx__TensorProto *t = mb_init(b, name, dtype, rank, dims);
    t->has_raw_data = 1;
    t->raw_data.len = len;
    t->raw_data.data = mb_alloc(b, len);
    if (vals) memcpy(t->raw_data.data, vals, len);
    return t;
}

/* Split "a,b,,c" into b-owned strings ("" is an omitted optional input). */
static char **mb_list(mb_t *b, const char *csv, size_t *n) {
    *n = 0;
    if (!csv) return NULL;
    char **v = mb_alloc(b, MB_CAP * sizeof(char *));
    const char *p = csv;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *s = mb_alloc(b, len + 1);
        memcpy(s, p, len);
        v[(*n)++] = s;
        if (!e) break;
        p = e + 1;
    }
    return v;
}

static Onnx__NodeProto *mb_node(mb_t *b, const char *op, const char *name, const char *in,
                                const char *out) {
    Onnx__NodeProto *n = mb_alloc(b, sizeof(*n));
    *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    n->op_type = op ? mb_str(b, op) : NULL;
    n->name = mb_str(b, name);
    n->input = mb_list(b, in, &n->n_input);
    n->output = mb_list(b, out, &n->n_output);
    n->attribute = mb_alloc(b, MB_CAP * sizeof(void *));
    b->graph.node[b->graph.n_node++] = n;
    return n;
}

static Onnx__AttributeProto *mb_attr(mb_t *b, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = mb_alloc(b, sizeof(*a));
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = mb_str(b, name);
    a->has_type = 1;
    a->type = type;
    n->attribute[n->n_attribute++] = a;
    return a;
}

static void mb_attr_i(mb_t *b, Onnx__NodeProto *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static void mb_attr_f(mb_t *b, Onnx__NodeProto *n, const char *name, float v) {
    Onnx__AttributeProto *a = mb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

/* The serialized model, malloc'ed (caller frees). */
static uint8_t *mb_pack(const mb_t *b, size_t *len) {
    *len = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(onnx__model_proto__pack(&b->model, buf), *len);
    return buf;
}

/* ---- the valid graph: y = Relu(Gemm(features, gemm_w^T, gemm_b)) ---- */

#define IN_DIM 3
#define OUT_DIM 2
static const float gemm_w[OUT_DIM * IN_DIM] = {1.0f, -2.0f, 0.5f, -1.0f, 0.5f, 2.0f};
static const float gemm_b[OUT_DIM] = {0.5f, -1.0f};

/* features [batch, IN_DIM] -> Gemm (transB) -> Relu -> y [batch, OUT_DIM],
 * at ai.onnx opset 13.  Tests break one thing in it. */
static mb_t *mb_gemm_relu(void) {
    mb_t *b = mb_new(13);
    static const char *const params[] = {"batch", NULL};
    mb_input(b, "features", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
             (const int64_t[]){-1, IN_DIM}, params);
    mb_output(b, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
              (const int64_t[]){-1, OUT_DIM}, params);
    mb_init_f(b, "gemm_w", 2, (const int64_t[]){OUT_DIM, IN_DIM}, gemm_w, OUT_DIM * IN_DIM);
    mb_init_f(b, "gemm_b", 1, (const int64_t[]){OUT_DIM}, gemm_b, OUT_DIM);
    Onnx__NodeProto *g = mb_node(b, "Gemm", "gemm0", "features,gemm_w,gemm_b", "h");
    mb_attr_i(b, g, "transB", 1);
    mb_attr_f(b, g, "alpha", 1.0f);
    mb_node(b, "Relu", "relu0", "h", "y");
    return b;
}

static void reference(const float *x, int64_t rows, float *y) {
    for (int64_t r = 0; r < rows; r++)
        for (int o = 0; o < OUT_DIM; o++) {
            double s = gemm_b[o];
            for (int i = 0; i < IN_DIM; i++) s += (double)x[r * IN_DIM + i] * gemm_w[o * IN_DIM + i];
            y[r * OUT_DIM + o] = s > 0 ? (float)s : 0.0f;
        }
}

/* ---- checking refusals ---- */

/* Whether msg contains any of the '|'-separated words, ignoring case. */
static int mentions(const char *msg, const char *words) {
    char w[128];
    for (const char *p = words; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len >= sizeof(w)) len = sizeof(w) - 1;
        memcpy(w, p, len);
        w[len] = '\0';
        if (len && strcasestr(msg, w)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Fail the test unless msg mentions each '|'-group of the NULL-terminated
 * list (each group: any of its words). */
static void expect_mentions(const char *what, const char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    for (const char *words; (words = va_arg(ap, const char *));) {
        if (!mentions(msg, words)) {
            va_end(ap);
            fail_msg("%s: the message \"%s\" does not mention %s", what, msg, words);
        }
    }
    va_end(ap);
}

static char sentinel_byte; /* its address is never a graph */
#define SENTINEL ((aas_onnx_t *)(void *)&sentinel_byte)

/* Load must fail with want (and leave *out alone, STYLE.md: out-params are
 * written only on success); returns the message (static buffer). */
static const char *load_fails(const char *what, const void *buf, size_t len,
                              aas_err_t want) {
    static char why[1024];
    memset(why, 0, sizeof(why));
    aas_onnx_t *g = SENTINEL;
    aas_err_t err = aas_onnx_load(buf, len, &g, why, sizeof(why));
    if (err == AAS_ERR_OK) {
        aas_onnx_destroy(g);
        fail_msg("%s: loaded; it must be refused", what);
    }
    print_message("  %s: %s: %s\n", what, aas_err_name(err), why);
    if (err != want)
        fail_msg("%s: got %s, want %s (%s)", what, aas_err_name(err), aas_err_name(want),
                 why);
    if (g != SENTINEL) fail_msg("%s: *out written on failure", what);
    if (strlen(why) < 8) fail_msg("%s: no useful message ('%s')", what, why);
    return why;
}

static const char *model_load_fails(const char *what, mb_t *b, aas_err_t want) {
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    const char *why = load_fails(what, buf, len, want);
    free(buf);
    return why;
}

/* For what only planning sees: load may refuse, else the first run must
 * (AAS_ERR_MODEL_FORMAT); either way the message is returned. */
static const char *load_or_run_fails(const char *what, mb_t *b, int64_t rows) {
    static char why[1024];
    memset(why, 0, sizeof(why));
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    aas_onnx_t *g = NULL;
    aas_err_t err = aas_onnx_load(buf, len, &g, why, sizeof(why));
    free(buf);
    if (err) {
        print_message("  %s: at load: %s: %s\n", what, aas_err_name(err), why);
        assert_int_equal(err, AAS_ERR_MODEL_FORMAT);
        return why;
    }
    float x[64] = {0};
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {rows, IN_DIM},
                            .data = x, .nbytes = (size_t)rows * IN_DIM * sizeof(float)};
    const aas_onnx_tensor_t *out[8];
    size_t n_out = aas_onnx_n_outputs(g);
    assert_true(n_out >= 1 && n_out <= 8);
    err = aas_onnx_run(g, &in, 1, out, n_out, why, sizeof(why));
    aas_onnx_destroy(g);
    if (err == AAS_ERR_OK) fail_msg("%s: loaded and ran; it must be refused", what);
    print_message("  %s: at the first run: %s: %s\n", what, aas_err_name(err), why);
    assert_int_equal(err, AAS_ERR_MODEL_FORMAT);
    return why;
}

/* ---- the valid graph ---- */

static void run_and_compare(aas_onnx_t *g, int64_t rows) {
    float x[64 * IN_DIM], want[64 * OUT_DIM];
    assert_true(rows <= 64);
    for (int64_t i = 0; i < rows * IN_DIM; i++) x[i] = (float)((i * 7) % 11) / 4.0f - 1.2f;
    reference(x, rows, want);
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {rows, IN_DIM},
                            .data = x, .nbytes = (size_t)rows * IN_DIM * sizeof(float)};
    const aas_onnx_tensor_t *out = NULL;
    char why[512] = "";
    aas_err_t err = aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why));
    if (err) fail_msg("run of %lld rows: %s: %s", (long long)rows, aas_err_name(err), why);
    assert_non_null(out);
    assert_int_equal(out->dtype, AAS_ONNX_FLOAT);
    assert_int_equal(out->rank, 2);
    assert_int_equal(out->dims[0], rows);
    assert_int_equal(out->dims[1], OUT_DIM);
    assert_int_equal(out->nbytes, (size_t)rows * OUT_DIM * sizeof(float));
    const float *y = out->data;
    for (int64_t i = 0; i < rows * OUT_DIM; i++)
        if (fabsf(y[i] - want[i]) > 1e-5f)
            fail_msg("rows=%lld y[%lld] = %g, want %g", (long long)rows, (long long)i,
                     (double)y[i], (double)want[i]);
}

static void valid_gemm_relu_loads_describes_and_runs(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    mb_free(b);
    /* The fuzzer's seed (tests/fuzz/corpus-onnx/gemm_relu.onnx). */
    const char *seed_dir = getenv("AAS_ONNX_SEED_DIR");
    if (seed_dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/gemm_relu.onnx", seed_dir);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
    }
    aas_onnx_t *g = NULL;
    char why[512] = "";
    aas_err_t err = aas_onnx_load(buf, len, &g, why, sizeof(why));
    memset(buf, 0xa5, len); /* the graph must not point into the bytes */
    free(buf);
    if (err) fail_msg("load: %s: %s", aas_err_name(err), why);

    assert_int_equal(aas_onnx_ir_version(g), 8);
    assert_int_equal(aas_onnx_opset(g, ""), 13);
    assert_int_equal(aas_onnx_opset(g, "ai.onnx"), 13);
    assert_int_equal(aas_onnx_opset(g, "ai.onnx.ml"), 0);
    assert_non_null(strstr(aas_onnx_producer(g), "aas-test"));
    /* Relu is fused into the Gemm as a post-op (onnx.h). */
    assert_int_equal(aas_onnx_n_nodes(g), 1);
    assert_int_equal(aas_onnx_n_inputs(g), 1); /* initializers are not inputs */
    assert_int_equal(aas_onnx_n_outputs(g), 1);
    aas_onnx_io_t io;
    aas_onnx_input(g, 0, &io);
    assert_string_equal(io.name, "features");
    assert_int_equal(io.dtype, AAS_ONNX_FLOAT);
    assert_int_equal(io.rank, 2);
    assert_int_equal(io.dims[0], -1);
    assert_non_null(io.dim_params[0]);
    assert_string_equal(io.dim_params[0], "batch");
    assert_int_equal(io.dims[1], IN_DIM);
    assert_null(io.dim_params[1]);
    aas_onnx_output(g, 0, &io);
    assert_string_equal(io.name, "y");
    assert_int_equal(io.rank, 2);
    assert_int_equal(io.dims[1], OUT_DIM);

    run_and_compare(g, 2);
    run_and_compare(g, 5);  /* another plan */
    run_and_compare(g, 2);  /* the cached one again */
    run_and_compare(g, 1);
    assert_true(aas_onnx_footprint(g) >= sizeof(gemm_w) + sizeof(gemm_b));
    aas_onnx_destroy(g);
    aas_onnx_destroy(NULL);
}

static void valid_gemm_relu_serves_as_an_aas_model(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    mb_free(b);
    aas_model_t *m = NULL;
    char why[512] = "";
    aas_err_t err = aas_model_load(buf, len, &m, why, sizeof(why));
    free(buf);
    if (err) fail_msg("aas_model_load: %s: %s", aas_err_name(err), why);
    assert_int_equal(aas_model_input_dim(m), IN_DIM);
    assert_int_equal(aas_model_output_dim(m), OUT_DIM);
    assert_false(aas_model_takes_text(m));
    float x[3 * IN_DIM] = {1, 2, 3, -1, 0, 4, 0.25f, -0.5f, 2}, y[3 * OUT_DIM],
          want[3 * OUT_DIM];
    reference(x, 3, want);
    err = aas_model_infer(m, x, 3, y, why, sizeof(why));
    if (err) fail_msg("aas_model_infer: %s: %s", aas_err_name(err), why);
    for (int i = 0; i < 3 * OUT_DIM; i++) assert_float_equal(y[i], want[i], 1e-5);
    aas_model_destroy(m);
}

static void run_refuses_input_that_does_not_fit_naming_it(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    mb_free(b);
    aas_onnx_t *g = NULL;
    char why[512] = "";
    assert_int_equal(aas_onnx_load(buf, len, &g, why, sizeof(why)), AAS_ERR_OK);
    free(buf);
    float x[8] = {0};
    const aas_onnx_tensor_t *out = NULL;
    /* 4 features where the graph declares 3. */
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {2, 4},
                            .data = x, .nbytes = sizeof(x)};
    assert_int_equal(aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why)), AAS_ERR_SHAPE);
    print_message("  4 features for 3: %s\n", why);
    expect_mentions("wrong width", why, "features", NULL);
    /* Rank 1 where the graph declares 2. */
    in = (aas_onnx_tensor_t){.dtype = AAS_ONNX_FLOAT, .rank = 1, .dims = {3},
                             .data = x, .nbytes = 3 * sizeof(float)};
    assert_int_equal(aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why)), AAS_ERR_SHAPE);
    print_message("  rank 1 for 2: %s\n", why);
    expect_mentions("wrong rank", why, "features", NULL);
    /* int64 where the graph declares float. */
    in = (aas_onnx_tensor_t){.dtype = AAS_ONNX_INT64, .rank = 2, .dims = {1, 3},
                             .data = x, .nbytes = 3 * sizeof(int64_t)};
    assert_int_equal(aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why)), AAS_ERR_SHAPE);
    print_message("  int64 for float: %s\n", why);
    expect_mentions("wrong dtype", why, "features", NULL);
    /* The graph still runs after refusals. */
    run_and_compare(g, 3);
    aas_onnx_destroy(g);
}

/* ---- bytes that are not a model ---- */

static void truncated_bytes_are_refused_at_every_length(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    mb_free(b);
    /* Half the bytes: cut inside the graph, so the protobuf itself is bad. */
    uint8_t *half = malloc(len / 2);
    memcpy(half, buf, len / 2); /* its own allocation, so ASan sees overreads */
    const char *why = load_fails("half the bytes", half, len / 2, AAS_ERR_MODEL_FORMAT);
    expect_mentions("half the bytes", why,
                    "protobuf|truncat|parse|decode|ModelProto|malformed|invalid", NULL);
    free(half);
    /* Every shorter length: refused (a prefix ending between fields is a
     * valid protobuf, but then the graph or the opset import is missing). */
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        aas_onnx_t *g = NULL;
        char msg[512] = "";
        aas_err_t err = aas_onnx_load(p, n, &g, msg, sizeof(msg));
        free(p);
        if (err == AAS_ERR_OK) {
            aas_onnx_destroy(g);
            fail_msg("the first %zu of %zu bytes loaded", n, len);
        }
        if (err != AAS_ERR_MODEL_FORMAT || !msg[0])
            fail_msg("the first %zu of %zu bytes: %s '%s'", n, len, aas_err_name(err), msg);
    }
    free(buf);
}

static void garbage_bytes_are_refused(void **state) {
    (void)state;
    static const char text[] = "this is not an ONNX model, it is a sentence\n";
    load_fails("text", text, sizeof(text) - 1, AAS_ERR_MODEL_FORMAT);
    uint8_t ff[64];
    memset(ff, 0xff, sizeof(ff));
    load_fails("0xff bytes", ff, sizeof(ff), AAS_ERR_MODEL_FORMAT);
    /* A native blob's magic is not ONNX either. */
    load_fails("AASMLP1 magic", "AASMLP1\0\0\0\0", 11, AAS_ERR_MODEL_FORMAT);
    /* Field 7 (graph), length-delimited, claiming 2^31 bytes. */
    static const uint8_t huge_len[] = {0x3a, 0x80, 0x80, 0x80, 0x80, 0x08, 0x0a, 0x00};
    load_fails("graph length past the end", huge_len, sizeof(huge_len),
               AAS_ERR_MODEL_FORMAT);
    load_fails("no bytes", "", 0, AAS_ERR_MODEL_FORMAT);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(round * 37 % 700);
        uint8_t *p = malloc(n);
        for (size_t i = 0; i < n; i++) {
            s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
            p[i] = (uint8_t)((s * 2685821657736338717ull) >> 56);
        }
        aas_onnx_t *g = NULL;
        char msg[512] = "";
        aas_err_t err = aas_onnx_load(p, n, &g, msg, sizeof(msg));
        free(p);
        if (err == AAS_ERR_OK) {
            aas_onnx_destroy(g); /* improbable; not wrong in itself */
            continue;
        }
        if (!msg[0]) fail_msg("random bytes (round %d): %s with no message", round,
                              aas_err_name(err));
    }
}

/* Every single-byte change of the valid model: refused with a message, or
 * loaded and then runs (or refuses to) without crashing. */
static void every_single_byte_change_is_survived(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    mb_free(b);
    static const int deltas[] = {0x01, 0x80, 0xff};
    int loaded = 0, refused = 0;
    for (size_t i = 0; i < len; i++)
        for (size_t d = 0; d < sizeof(deltas) / sizeof(*deltas); d++) {
            uint8_t *p = malloc(len);
            memcpy(p, buf, len);
            p[i] ^= (uint8_t)deltas[d];
            aas_onnx_t *g = NULL;
            char msg[512] = "";
            aas_err_t err = aas_onnx_load(p, len, &g, msg, sizeof(msg));
            free(p);
            if (err) {
                if (!msg[0]) fail_msg("byte %zu ^ 0x%02x: %s with no message", i,
                                      deltas[d], aas_err_name(err));
                refused++;
                continue;
            }
            loaded++;
            aas_onnx_io_t io;
            if (aas_onnx_n_inputs(g) == 1 && aas_onnx_n_outputs(g) >= 1) {
                aas_onnx_input(g, 0, &io);
                float x[4 * 16] = {0};
                aas_onnx_tensor_t in = {.dtype = io.dtype, .rank = io.rank, .data = x};
                int64_t numel = 1;
                for (int k = 0; k < io.rank && k < AAS_ONNX_MAX_RANK; k++) {
                    in.dims[k] = io.dims[k] < 0 ? 1 : io.dims[k];
                    numel *= in.dims[k];
                }
                size_t es = aas_onnx_dtype_size(io.dtype);
                if (io.rank >= 0 && es && numel <= 16 && numel * (int64_t)es <= (int64_t)sizeof(x)) {
                    in.nbytes = (size_t)numel * es;
                    const aas_onnx_tensor_t *outs[8];
                    size_t n_out = aas_onnx_n_outputs(g) < 8 ? aas_onnx_n_outputs(g) : 8;
                    if (n_out == aas_onnx_n_outputs(g))
                        (void)aas_onnx_run(g, &in, 1, outs, n_out, msg, sizeof(msg));
                }
            }
            aas_onnx_destroy(g);
        }
    print_message("  %zu bytes x 3 changes: %d refused, %d loaded\n", len, refused, loaded);
    free(buf);
}

/* ---- graphs that are wrong ---- */

static void model_without_graph_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_new(13);
    b->model.graph = NULL;
    const char *why = model_load_fails("no graph", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("no graph", why, "graph", NULL);
    mb_free(b);
}

static void empty_graph_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_new(13);
    const char *why = model_load_fails("empty graph", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("empty graph", why, "empty|no node|no output|0 nodes|0 outputs", NULL);
    mb_free(b);
}

static void model_without_opset_import_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->model.n_opset_import = 0;
    const char *why = model_load_fails("no opset_import", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("no opset_import", why, "opset", NULL);
    mb_free(b);
}

static void graph_with_a_cycle_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_new(13);
    mb_input(b, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (const int64_t[]){1, 4}, NULL);
    mb_output(b, "out", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (const int64_t[]){1, 4}, NULL);
    /* a = Add(x, c); c = Relu(a); out = Relu(c): a and c feed each other. */
    mb_node(b, "Add", "loop_add", "x,c", "a");
    mb_node(b, "Relu", "loop_relu", "a", "c");
    mb_node(b, "Relu", "tail_relu", "c", "out");
    const char *why = model_load_fails("cycle", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("cycle", why, "cycle|cyclic|loop", "loop_add|loop_relu", NULL);
    mb_free(b);
}

static void self_loop_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_new(13);
    mb_input(b, "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (const int64_t[]){1, 4}, NULL);
    mb_output(b, "out", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, (const int64_t[]){1, 4}, NULL);
    mb_node(b, "Add", "self_add", "x,out", "out");
    const char *why = model_load_fails("self loop", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("self loop", why, "self_add", NULL);
    mb_free(b);
}

static void node_input_no_one_produces_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    /* The Gemm's bias is not an initializer, an input or a node's output. */
    b->graph.node[0]->input[2] = mb_str(b, "bias_nowhere");
    const char *why = model_load_fails("missing initializer", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("missing initializer", why, "bias_nowhere", "gemm0|Gemm", NULL);
    mb_free(b);
}

static void graph_output_no_one_produces_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    mb_output(b, "ghost_out", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
              (const int64_t[]){1, 2}, NULL);
    const char *why = model_load_fails("unproduced output", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("unproduced output", why, "ghost_out", NULL);
    mb_free(b);
}

static void value_produced_twice_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    mb_node(b, "Relu", "relu_again", "h", "y"); /* y already comes from relu0 */
    const char *why = model_load_fails("two producers", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("two producers", why, "'y'|\"y\"| y ", NULL);
    mb_free(b);
}

static void node_without_op_type_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->op_type = NULL;
    const char *why = model_load_fails("no op_type", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("no op_type", why, "relu0|op_type", NULL);
    mb_free(b);
}

/* Found by fuzz_onnx_load: a Relu with no outputs after a Gemm was fused
 * into it through its (unset) out[0].  ONNX gives Relu exactly one output. */
static void node_without_outputs_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->n_output = 0;  /* relu0 */
    b->graph.output[0]->name = mb_str(b, "y2");
    mb_node(b, "Sigmoid", "other", "features", "y2");
    const char *why = model_load_fails("Relu without outputs", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("Relu without outputs", why, "relu0", "output", NULL);
    mb_free(b);
}

/* Found by fuzz_onnx_load (with the Gemm before it left without outputs):
 * a Relu with no inputs loads.  Relu takes exactly one. */
static void node_without_its_required_input_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->n_input = 0;  /* relu0 */
    b->graph.output[0]->name = mb_str(b, "h");  /* keep the Gemm's output used */
    mb_output(b, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
              (const int64_t[]){-1, OUT_DIM}, NULL);
    const char *why = load_or_run_fails("Relu without inputs", b, 2);
    expect_mentions("Relu without inputs", why, "relu0", "input", NULL);
    mb_free(b);
}

/* An output named "" is an omitted optional output; Relu's and Gemm's
 * only output is required. */
static void required_relu_output_named_empty_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->output[0] = mb_str(b, "");  /* relu0 */
    b->graph.output[0]->name = mb_str(b, "y2");
    mb_node(b, "Sigmoid", "other", "features", "y2");
    const char *why = load_or_run_fails("Relu output ''", b, 2);
    expect_mentions("Relu output ''", why, "relu0", NULL);
    mb_free(b);
}

static void required_gemm_output_named_empty_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[0]->output[0] = mb_str(b, "");  /* gemm0 */
    b->graph.node[1]->input[0] = mb_str(b, "features");
    const char *why = load_or_run_fails("Gemm output ''", b, 2);
    expect_mentions("Gemm output ''", why, "gemm0", NULL);
    mb_free(b);
}

static void gemm_weight_of_the_wrong_size_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_new(13);
    static const char *const params[] = {"batch", NULL};
    mb_input(b, "features", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
             (const int64_t[]){-1, IN_DIM}, params);
    mb_output(b, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
              (const int64_t[]){-1, OUT_DIM}, params);
    float w[OUT_DIM * 4] = {0};
    /* transB: the weight is [out, in] = [2, 4], but features have 3. */
    mb_init_f(b, "gemm_w", 2, (const int64_t[]){OUT_DIM, 4}, w, OUT_DIM * 4);
    mb_init_f(b, "gemm_b", 1, (const int64_t[]){OUT_DIM}, gemm_b, OUT_DIM);
    Onnx__NodeProto *g = mb_node(b, "Gemm", "gemm_bad", "features,gemm_w,gemm_b", "h");
    mb_attr_i(b, g, "transB", 1);
    mb_node(b, "Relu", "relu0", "h", "y");
    const char *why = load_or_run_fails("Gemm weight [2,4] for 3 features", b, 2);
    expect_mentions("Gemm weight", why, "gemm_bad", NULL);
    mb_free(b);
}

static void add_of_shapes_that_do_not_broadcast_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    float c[5] = {0};
    mb_init_f(b, "addend5", 1, (const int64_t[]){5}, c, 5);
    /* y [batch,2] + [5]: does not broadcast. */
    b->graph.node[1]->output[0] = mb_str(b, "r");
    mb_node(b, "Add", "add_bad", "r,addend5", "y");
    const char *why = load_or_run_fails("Add [N,2] + [5]", b, 2);
    expect_mentions("Add [N,2] + [5]", why, "add_bad", NULL);
    mb_free(b);
}

/* ---- tensors that are wrong ---- */

static void initializer_with_fewer_values_than_dims_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.initializer[0]->n_float_data = 5; /* dims say 6 */
    const char *why = model_load_fails("5 floats for [2,3]", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("5 floats for [2,3]", why, "gemm_w", NULL);
    mb_free(b);
}

static void raw_data_of_the_wrong_length_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.n_initializer = 1; /* replace gemm_b */
    mb_init_raw(b, "gemm_b", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1,
                (const int64_t[]){OUT_DIM}, NULL, 7); /* 8 wanted */
    const char *why = model_load_fails("7 raw bytes for 2 floats", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("7 raw bytes", why, "gemm_b", NULL);
    mb_free(b);
}

static void initializer_of_unknown_dtype_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.initializer[1]->data_type = 99;
    const char *why = model_load_fails("dtype 99", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("dtype 99", why, "gemm_b", "99", NULL);
    mb_free(b);
}

static void input_of_unknown_dtype_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.input[0]->type->tensor_type->elem_type = 99;
    const char *why = model_load_fails("input dtype 99", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("input dtype 99", why, "features", "99", NULL);
    mb_free(b);
}

static void float16_initializer_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.n_initializer = 1; /* replace gemm_b */
    static const uint16_t half[OUT_DIM] = {0x3800, 0xbc00}; /* 0.5, -1 */
    mb_init_raw(b, "gemm_b", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16, 1,
                (const int64_t[]){OUT_DIM}, half, sizeof(half));
    const char *why = model_load_fails("float16 bias", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("float16 bias", why, "gemm_b|gemm0", "float16|fp16|half", NULL);
    mb_free(b);
}

static void initializer_claiming_4_gib_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    /* [2^29, 2] float = 4 GiB claimed, 8 bytes held. */
    mb_init_raw(b, "huge", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
                (const int64_t[]){(int64_t)1 << 29, 2}, NULL, 8);
    const char *why = model_load_fails("[2^29,2] float", b, AAS_ERR_TOO_LARGE);
    expect_mentions("[2^29,2] float", why, "huge", NULL);
    mb_free(b);
}

static void initializer_whose_size_overflows_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    /* 2^62 * 2^3 wraps to 0 in 64 bits: must not pass as empty. */
    mb_init_raw(b, "wraps", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
                (const int64_t[]){(int64_t)1 << 62, 8}, NULL, 0);
    size_t len;
    uint8_t *buf = mb_pack(b, &len);
    aas_onnx_t *g = NULL;
    char why[512] = "";
    aas_err_t err = aas_onnx_load(buf, len, &g, why, sizeof(why));
    free(buf);
    if (!err) {
        aas_onnx_destroy(g);
        fail_msg("[2^62, 8] loaded");
    }
    print_message("  [2^62,8] float: %s: %s\n", aas_err_name(err), why);
    assert_true(err == AAS_ERR_TOO_LARGE || err == AAS_ERR_MODEL_FORMAT);
    expect_mentions("[2^62,8]", why, "wraps", NULL);
    mb_free(b);
}

static void initializer_with_a_negative_dim_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    mb_init_raw(b, "negative", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2,
                (const int64_t[]){-2, -4}, NULL, 32); /* (-2)(-4) = 8 floats */
    const char *why = model_load_fails("dims [-2,-4]", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("dims [-2,-4]", why, "negative", NULL);
    mb_free(b);
}

static void input_of_rank_over_the_limit_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    int64_t dims[AAS_ONNX_MAX_RANK + 1];
    for (int i = 0; i <= AAS_ONNX_MAX_RANK; i++) dims[i] = 1;
    mb_input(b, "deep", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, AAS_ONNX_MAX_RANK + 1, dims,
             NULL);
    b->graph.node[1]->output[0] = mb_str(b, "r");
    mb_node(b, "Add", "add_deep", "r,deep", "y");
    const char *why = model_load_fails("rank 9 input", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("rank 9 input", why, "deep", NULL);
    mb_free(b);
}

static void external_data_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    Onnx__TensorProto *t = b->graph.initializer[0];
    t->n_float_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto *kv = mb_alloc(b, sizeof(*kv));
    *kv = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    kv->key = mb_str(b, "location");
    kv->value = mb_str(b, "weights.bin");
    t->external_data = mb_alloc(b, sizeof(void *));
    t->external_data[0] = kv;
    t->n_external_data = 1;
    const char *why = model_load_fails("external_data", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("external_data", why, "external", "gemm_w", NULL);
    mb_free(b);
}

/* ---- ops and opsets ---- */

static void op_from_an_unknown_domain_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    mb_opset(b, "com.example.custom", 1);
    b->graph.node[1]->op_type = mb_str(b, "FastRelu");
    b->graph.node[1]->domain = mb_str(b, "com.example.custom");
    const char *why = model_load_fails("com.example.custom", b, AAS_ERR_MODEL_FORMAT);
    /* The import is refused before any node is looked at: the domain is
     * what the message must name. */
    expect_mentions("unknown domain", why, "com.example.custom", NULL);
    mb_free(b);
}

static void op_from_a_domain_not_imported_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->domain = mb_str(b, "ai.onnx.ml");
    b->graph.node[1]->op_type = mb_str(b, "Normalizer");
    const char *why = model_load_fails("ai.onnx.ml not imported", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("domain not imported", why, "ai.onnx.ml", "Normalizer|relu0", NULL);
    mb_free(b);
}

static void op_unknown_to_ai_onnx_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->graph.node[1]->op_type = mb_str(b, "FancyActivation");
    const char *why = model_load_fails("FancyActivation", b, AAS_ERR_MODEL_FORMAT);
    /* The issue: the first unsupported op, with its opset. */
    expect_mentions("unknown op", why, "FancyActivation", "13", NULL);
    mb_free(b);
}

static void opset_newer_than_supported_is_refused(void **state) {
    (void)state;
    mb_t *b = mb_gemm_relu();
    b->model.opset_import[0]->version = 99;
    const char *why = model_load_fails("opset 99", b, AAS_ERR_MODEL_FORMAT);
    expect_mentions("opset 99", why, "99", "Gemm|Relu|gemm0|relu0", NULL);
    mb_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_gemm_relu_loads_describes_and_runs),
        cmocka_unit_test(valid_gemm_relu_serves_as_an_aas_model),
        cmocka_unit_test(run_refuses_input_that_does_not_fit_naming_it),
        cmocka_unit_test(truncated_bytes_are_refused_at_every_length),
        cmocka_unit_test(garbage_bytes_are_refused),
        cmocka_unit_test(every_single_byte_change_is_survived),
        cmocka_unit_test(model_without_graph_is_refused),
        cmocka_unit_test(empty_graph_is_refused),
        cmocka_unit_test(model_without_opset_import_is_refused),
        cmocka_unit_test(graph_with_a_cycle_is_refused),
        cmocka_unit_test(self_loop_is_refused),
        cmocka_unit_test(node_input_no_one_produces_is_refused),
        cmocka_unit_test(graph_output_no_one_produces_is_refused),
        cmocka_unit_test(value_produced_twice_is_refused),
        cmocka_unit_test(node_without_op_type_is_refused),
        cmocka_unit_test(node_without_outputs_is_refused),
        cmocka_unit_test(node_without_its_required_input_is_refused),
        cmocka_unit_test(required_relu_output_named_empty_is_refused),
        cmocka_unit_test(required_gemm_output_named_empty_is_refused),
        cmocka_unit_test(gemm_weight_of_the_wrong_size_is_refused),
        cmocka_unit_test(add_of_shapes_that_do_not_broadcast_is_refused),
        cmocka_unit_test(initializer_with_fewer_values_than_dims_is_refused),
        cmocka_unit_test(raw_data_of_the_wrong_length_is_refused),
        cmocka_unit_test(initializer_of_unknown_dtype_is_refused),
        cmocka_unit_test(input_of_unknown_dtype_is_refused),
        cmocka_unit_test(float16_initializer_is_refused),
        cmocka_unit_test(initializer_claiming_4_gib_is_refused),
        cmocka_unit_test(initializer_whose_size_overflows_is_refused),
        cmocka_unit_test(initializer_with_a_negative_dim_is_refused),
        cmocka_unit_test(input_of_rank_over_the_limit_is_refused),
        cmocka_unit_test(external_data_is_refused),
        cmocka_unit_test(op_from_an_unknown_domain_is_refused),
        cmocka_unit_test(op_from_a_domain_not_imported_is_refused),
        cmocka_unit_test(op_unknown_to_ai_onnx_is_refused),
        cmocka_unit_test(opset_newer_than_supported_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
