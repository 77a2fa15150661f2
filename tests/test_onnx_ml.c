/*
 * test_onnx_ml.c - the ai.onnx.ml kernels (common/onnx_ops_ml.c) through
 * the public API: small graphs built here as ModelProto bytes with the
 * protobuf-c code generated from onnx.proto, loaded with aas_onnx_load and
 * run with aas_onnx_run; then the scikit-learn fixtures (data/onnx/sklearn-NAME)
 * and the smaller edge cases (each directory of tests/data/onnx-ml, both made by
 * tools/onnx-fixtures-sklearn.py) against ONNX Runtime's recorded outputs
 * (1e-4 absolute, same argmax).
 *
 * Expected values are worked out by hand in each test's comment, not taken
 * from the code under test.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include <cmocka.h>

#include "onnx.h"
#include "onnx.pb-c.h"

#if !defined(AAS_ONNX_FIXTURES_DIR) || !defined(AAS_ONNX_ML_CASES_DIR)
#error "AAS_ONNX_FIXTURES_DIR and AAS_ONNX_ML_CASES_DIR must be defined (tests/CMakeLists.txt)"
#endif

/* ---- a one-node model, built with protobuf-c ---------------------------- */

typedef struct {
    const char *name;
    int type;   /* ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__* */
    float f;
    int64_t i;
    const char *s;
    const float *floats;
    const int64_t *ints;
    const char *const *strings;
    const double *doubles;     /* TENSOR: a 1-D double tensor of n values */
    size_t n;
} t_attr_t;

#define A_INT(nm, v) {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, .i = (v)}
#define A_STR(nm, v) {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, .s = (v)}
#define A_FLOATS(nm, arr)                                                                     \
    {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS, .floats = (arr),    \
     .n = sizeof(arr) / sizeof((arr)[0])}
#define A_INTS(nm, arr)                                                                       \
    {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, .ints = (arr),        \
     .n = sizeof(arr) / sizeof((arr)[0])}
#define A_DTENSOR(nm, arr)                                                                    \
    {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, .doubles = (arr),   \
     .n = sizeof(arr) / sizeof((arr)[0])}
#define A_STRS(nm, arr)                                                                       \
    {.name = (nm), .type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS, .strings = (arr),  \
     .n = sizeof(arr) / sizeof((arr)[0])}

typedef struct {
    const char *name;
    int elem_type;   /* TensorProto.DataType */
} t_out_t;

static Onnx__ValueInfoProto *vi_new(const char *name, int elem, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = calloc(1, sizeof(*v));
    Onnx__TypeProto *tp = calloc(1, sizeof(*tp));
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof(*tt));
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    v->name = (char *)name;
    v->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = calloc(1, sizeof(*sh));
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = calloc((size_t)rank + 1, sizeof(*sh->dim));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = calloc(1, sizeof(*d));
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] < 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = (char *)"N";
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    return v;
}

static void vi_free(Onnx__ValueInfoProto *v) {
    if (!v) return;
    Onnx__TensorShapeProto *sh = v->type->tensor_type->shape;
    if (sh) {
        for (size_t i = 0; i < sh->n_dim; i++) free(sh->dim[i]);
        free(sh->dim);
        free(sh);
    }
    free(v->type->tensor_type);
    free(v->type);
    free(v);
}

/*
 * Serialise a model of one node: input "X" (elem type x_elem, [N, feats]
 * with a symbolic N), the node (domain, op) with attrs, and the graph
 * outputs outs.  Opsets: ai.onnx 17, ai.onnx.ml 3.  *len gets the size;
 * the caller frees the bytes.
 */
static uint8_t *model_bytes(const char *domain, const char *op, int x_elem, int64_t feats,
                            const t_attr_t *attrs, size_t n_attrs, const t_out_t *outs,
                            size_t n_outs, size_t *len) {
    Onnx__AttributeProto *ap = calloc(n_attrs + 1, sizeof(*ap));
    Onnx__AttributeProto **app = calloc(n_attrs + 1, sizeof(*app));
    ProtobufCBinaryData *strs[16] = {0};
    Onnx__TensorProto *tens[16] = {0};
    int64_t tdims[16];
    for (size_t i = 0; i < n_attrs; i++) {
        Onnx__AttributeProto *a = &ap[i];
        onnx__attribute_proto__init(a);
        a->name = (char *)attrs[i].name;
        a->has_type = 1;
        a->type = attrs[i].type;
        switch (attrs[i].type) {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
            a->has_i = 1;
            a->i = attrs[i].i;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
            a->has_f = 1;
            a->f = attrs[i].f;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            a->has_s = 1;
            a->s.data = (uint8_t *)attrs[i].s;
            a->s.len = strlen(attrs[i].s);
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            a->n_floats = attrs[i].n;
            a->floats = (float *)attrs[i].floats;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
            a->n_ints = attrs[i].n;
            a->ints = (int64_t *)attrs[i].ints;
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            assert_true(i < 16);
            tens[i] = calloc(1, sizeof(Onnx__TensorProto));
            onnx__tensor_proto__init(tens[i]);
            tens[i]->has_data_type = 1;
            tens[i]->data_type = AAS_ONNX_DOUBLE;
            tdims[i] = (int64_t)attrs[i].n;
            tens[i]->n_dims = 1;
            tens[i]->dims = &tdims[i];
            tens[i]->n_double_data = attrs[i].n;
            tens[i]->double_data = (double *)attrs[i].doubles;
            a->t = tens[i];
            break;
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
            assert_true(i < 16);
            strs[i] = calloc(attrs[i].n + 1, sizeof(ProtobufCBinaryData));
            for (size_t j = 0; j < attrs[i].n; j++) {
                strs[i][j].data = (uint8_t *)attrs[i].strings[j];
                strs[i][j].len = strlen(attrs[i].strings[j]);
            }
            a->n_strings = attrs[i].n;
            a->strings = strs[i];
            break;
        }
        app[i] = a;
    }

    char *in_names[1] = {(char *)"X"};
    char *out_names[4];
    for (size_t i = 0; i < n_outs; i++) out_names[i] = (char *)outs[i].name;
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    Onnx__NodeProto *nodes[1] = {&node};
    node.n_input = 1;
    node.input = in_names;
    node.n_output = n_outs;
    node.output = out_names;
    node.name = (char *)"n0";
    node.op_type = (char *)op;
    node.domain = (char *)domain;
    node.n_attribute = n_attrs;
    node.attribute = app;

    int64_t xdims[2] = {-1, feats};
    Onnx__ValueInfoProto *gin[1] = {vi_new("X", x_elem, 2, xdims)};
    Onnx__ValueInfoProto *gout[4];
    for (size_t i = 0; i < n_outs; i++) gout[i] = vi_new(outs[i].name, outs[i].elem_type, -1, NULL);

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = (char *)"g";
    graph.n_node = 1;
    graph.node = nodes;
    graph.n_input = 1;
    graph.input = gin;
    graph.n_output = n_outs;
    graph.output = gout;

    Onnx__OperatorSetIdProto os_ai = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto os_ml = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    os_ai.domain = (char *)"";
    os_ai.has_version = 1;
    os_ai.version = 17;
    os_ml.domain = (char *)"ai.onnx.ml";
    os_ml.has_version = 1;
    os_ml.version = 3;
    Onnx__OperatorSetIdProto *opsets[2] = {&os_ai, &os_ml};

    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.producer_name = (char *)"test_onnx_ml";
    model.n_opset_import = 2;
    model.opset_import = opsets;
    model.graph = &graph;

    *len = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&model, buf);

    vi_free(gin[0]);
    for (size_t i = 0; i < n_outs; i++) vi_free(gout[i]);
    for (size_t i = 0; i < 16; i++) {
        free(strs[i]);
        free(tens[i]);
    }
    free(ap);
    free(app);
    return buf;
}

/* Load, expecting success (prints the reason otherwise). */
static aas_onnx_t *load_ok(const uint8_t *buf, size_t len) {
    aas_onnx_t *g = NULL;
    char err[512] = "";
    aas_err_t rc = aas_onnx_load(buf, len, &g, err, sizeof(err));
    if (rc != AAS_ERR_OK) print_error("aas_onnx_load: %s\n", err);
    assert_int_equal(rc, AAS_ERR_OK);
    return g;
}

/* Run on rows x feats floats; outputs borrowed from g. */
static void run_ok(aas_onnx_t *g, const float *x, int64_t rows, int64_t feats,
                   const aas_onnx_tensor_t **out, size_t n_out) {
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT,
                            .rank = 2,
                            .dims = {rows, feats},
                            .data = (void *)x,
                            .nbytes = (size_t)(rows * feats) * sizeof(float)};
    char err[512] = "";
    aas_err_t rc = aas_onnx_run(g, &in, 1, out, n_out, err, sizeof(err));
    if (rc != AAS_ERR_OK) print_error("aas_onnx_run: %s\n", err);
    assert_int_equal(rc, AAS_ERR_OK);
}

/* ---- tree ensembles ------------------------------------------------------ */

/* One stump: node 0 compares x[0] with 0.5 (mode), true -> node 1 (leaf,
 * 10), false -> node 2 (leaf, 20). */
static aas_onnx_t *stump_regressor_typed(const char *mode, int x_elem) {
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {0, 0, 0},
                         trueids[] = {1, 0, 0}, falseids[] = {2, 0, 0};
    static const float values[] = {0.5f, 0, 0}, weights[] = {10, 20};
    static const int64_t t_ids[] = {0, 0}, t_nodeids[] = {1, 2}, t_treeids[] = {0, 0};
    const char *modes[] = {mode, "LEAF", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights), A_INT("n_targets", 1),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", x_elem, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    return g;
}

static aas_onnx_t *stump_regressor(const char *mode) {
    return stump_regressor_typed(mode, AAS_ONNX_FLOAT);
}

/* BRANCH_LEQ: 0.5 <= 0.5 goes true (10); 0.7 false (20); 0.2 true. */
static void tree_stump_leq_takes_true_branch_at_threshold(void **state) {
    (void)state;
    aas_onnx_t *g = stump_regressor("BRANCH_LEQ");
    const float x[] = {0.5f, 0.7f, 0.2f};
    const aas_onnx_tensor_t *out[1];
    run_ok(g, x, 3, 1, out, 1);
    assert_int_equal(out[0]->dtype, AAS_ONNX_FLOAT);
    assert_int_equal(out[0]->rank, 2);
    assert_int_equal(out[0]->dims[0], 3);
    assert_int_equal(out[0]->dims[1], 1);
    const float *y = out[0]->data;
    assert_float_equal(y[0], 10, 0);
    assert_float_equal(y[1], 20, 0);
    assert_float_equal(y[2], 10, 0);
    aas_onnx_destroy(g);
}

/* BRANCH_LT: 0.5 < 0.5 is false (20); the other rows as LEQ. */
static void tree_stump_lt_takes_false_branch_at_threshold(void **state) {
    (void)state;
    aas_onnx_t *g = stump_regressor("BRANCH_LT");
    const float x[] = {0.5f, 0.7f, 0.2f};
    const aas_onnx_tensor_t *out[1];
    run_ok(g, x, 3, 1, out, 1);
    const float *y = out[0]->data;
    assert_float_equal(y[0], 20, 0);
    assert_float_equal(y[1], 20, 0);
    assert_float_equal(y[2], 10, 0);
    aas_onnx_destroy(g);
}

/* The same LEQ stump fed double and int64 inputs (the general path: the
 * fast one is for float): double 0.5 / 0.7 / 0.2 -> 10 / 20 / 10; int64
 * 0 / 1 / -3 -> 10 / 20 / 10. */
static void tree_takes_double_and_int64_inputs(void **state) {
    (void)state;
    const double xd[] = {0.5, 0.7, 0.2};
    const int64_t xi[] = {0, 1, -3};
    for (int c = 0; c < 2; c++) {
        aas_onnx_t *g = stump_regressor_typed("BRANCH_LEQ", c ? AAS_ONNX_INT64 : AAS_ONNX_DOUBLE);
        aas_onnx_tensor_t in = {.dtype = c ? AAS_ONNX_INT64 : AAS_ONNX_DOUBLE,
                                .rank = 2,
                                .dims = {3, 1},
                                .data = c ? (void *)xi : (void *)xd,
                                .nbytes = 3 * 8};
        const aas_onnx_tensor_t *out[1];
        char err[512] = "";
        aas_err_t rc = aas_onnx_run(g, &in, 1, out, 1, err, sizeof(err));
        if (rc != AAS_ERR_OK) fail_msg("%s input: %s", c ? "int64" : "double", err);
        const float *y = out[0]->data;
        assert_float_equal(y[0], 10, 0);
        assert_float_equal(y[1], 20, 0);
        assert_float_equal(y[2], 10, 0);
        aas_onnx_destroy(g);
    }
}

/* GTE / GT / EQ / NEQ on x = 0.5 against 0.5: true, false, true, false;
 * NaN with missing_value_tracks_true is sent to the true branch. */
static void tree_modes_compare_as_named(void **state) {
    (void)state;
    const struct {
        const char *mode;
        float at, below;   /* leaf for x = 0.5 and x = 0.2 */
    } cases[] = {{"BRANCH_GTE", 10, 20}, {"BRANCH_GT", 20, 20}, {"BRANCH_EQ", 10, 20},
                 {"BRANCH_NEQ", 20, 10}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        aas_onnx_t *g = stump_regressor(cases[c].mode);
        const float x[] = {0.5f, 0.2f};
        const aas_onnx_tensor_t *out[1];
        run_ok(g, x, 2, 1, out, 1);
        const float *y = out[0]->data;
        if (y[0] != cases[c].at || y[1] != cases[c].below)
            fail_msg("%s: got %g %g, want %g %g", cases[c].mode, y[0], y[1], cases[c].at,
                     cases[c].below);
        aas_onnx_destroy(g);
    }
}

/* Two stumps on x[0] <= 0.5: tree 0 leaves 10 / 20, tree 1 leaves 1 / 3.
 * x = 0.2: SUM 11, AVERAGE 5.5, MIN 1, MAX 10; x = 0.9: 23, 11.5, 3, 20.
 * With base_values {100}: SUM 111 and 123. */
static aas_onnx_t *two_stumps(const char *agg, int with_base) {
    static const int64_t treeids[] = {0, 0, 0, 1, 1, 1}, nodeids[] = {0, 1, 2, 0, 1, 2},
                         featureids[] = {0, 0, 0, 0, 0, 0}, trueids[] = {1, 0, 0, 1, 0, 0},
                         falseids[] = {2, 0, 0, 2, 0, 0};
    static const float values[] = {0.5f, 0, 0, 0.5f, 0, 0}, weights[] = {10, 20, 1, 3},
                       base[] = {100};
    static const int64_t t_ids[] = {0, 0, 0, 0}, t_nodeids[] = {1, 2, 1, 2},
                         t_treeids[] = {0, 0, 1, 1};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"};
    t_attr_t attrs[16] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights), A_INT("n_targets", 1),
        A_STR("aggregate_function", agg),
    };
    size_t n = 13;
    if (with_base) attrs[n++] = (t_attr_t)A_FLOATS("base_values", base);
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs, n,
                               outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    return g;
}

static void tree_aggregates_sum_average_min_max(void **state) {
    (void)state;
    const struct {
        const char *agg;
        int base;
        float lo, hi;
    } cases[] = {{"SUM", 0, 11, 23},  {"AVERAGE", 0, 5.5f, 11.5f}, {"MIN", 0, 1, 3},
                 {"MAX", 0, 10, 20}, {"SUM", 1, 111, 123}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        aas_onnx_t *g = two_stumps(cases[c].agg, cases[c].base);
        const float x[] = {0.2f, 0.9f};
        const aas_onnx_tensor_t *out[1];
        run_ok(g, x, 2, 1, out, 1);
        const float *y = out[0]->data;
        if (fabsf(y[0] - cases[c].lo) > 1e-6f || fabsf(y[1] - cases[c].hi) > 1e-6f)
            fail_msg("%s base=%d: got %g %g, want %g %g", cases[c].agg, cases[c].base, y[0], y[1],
                     cases[c].lo, cases[c].hi);
        aas_onnx_destroy(g);
    }
}

/* A 3-class stump with labels {7, 8, 9} and SOFTMAX: x[1] <= 0.5 reaches
 * node 1 (class 0 += 1, class 1 += 2), else node 2 (class 2 += 3).
 * Left: scores {1, 2, 0} -> label 8, softmax e^{1,2,0} / (e + e^2 + 1).
 * Right: {0, 0, 3} -> label 9.  The feature index 1 of 2 inputs is used. */
static void tree_classifier_softmax_and_labels(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {1, 0, 0},
                         trueids[] = {1, 0, 0}, falseids[] = {2, 0, 0};
    static const float values[] = {0.5f, 0, 0}, weights[] = {1, 2, 3};
    static const int64_t c_ids[] = {0, 1, 2}, c_nodeids[] = {1, 1, 2}, c_treeids[] = {0, 0, 0},
                         labels[] = {7, 8, 9};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("class_ids", c_ids),
        A_INTS("class_nodeids", c_nodeids), A_INTS("class_treeids", c_treeids),
        A_FLOATS("class_weights", weights), A_INTS("classlabels_int64s", labels),
        A_STR("post_transform", "SOFTMAX"),
    };
    const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"probabilities", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleClassifier", AAS_ONNX_FLOAT, 2, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 2, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {9.0f, 0.1f, -9.0f, 0.9f};
    const aas_onnx_tensor_t *out[2];
    run_ok(g, x, 2, 2, out, 2);
    assert_int_equal(out[0]->dtype, AAS_ONNX_INT64);
    assert_int_equal(out[0]->dims[0], 2);
    assert_int_equal(out[1]->dims[1], 3);
    const int64_t *lab = out[0]->data;
    const float *p = out[1]->data;
    assert_int_equal(lab[0], 8);
    assert_int_equal(lab[1], 9);
    double e1 = exp(1), e2 = exp(2), s = e1 + e2 + 1;
    assert_float_equal(p[0], e1 / s, 1e-6);
    assert_float_equal(p[1], e2 / s, 1e-6);
    assert_float_equal(p[2], 1 / s, 1e-6);
    double e3 = exp(3), s2 = 2 + e3;
    assert_float_equal(p[3], 1 / s2, 1e-6);
    assert_float_equal(p[4], 1 / s2, 1e-6);
    assert_float_equal(p[5], e3 / s2, 1e-6);
    aas_onnx_destroy(g);
}

/* A regressor stump whose node 0 names a true child that does not exist
 * (node 7 in a 3-node tree): refused at load, naming the child. */
static void tree_with_missing_child_is_refused_at_load(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {0, 0, 0},
                         trueids[] = {7, 0, 0}, falseids[] = {2, 0, 0};
    static const float values[] = {0.5f, 0, 0}, weights[] = {10, 20};
    static const int64_t t_ids[] = {0, 0}, t_nodeids[] = {1, 2}, t_treeids[] = {0, 0};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = NULL;
    char err[512] = "";
    assert_int_equal(aas_onnx_load(buf, len, &g, err, sizeof(err)), AAS_ERR_MODEL_FORMAT);
    assert_null(g);
    if (!strstr(err, "TreeEnsembleRegressor") || !strstr(err, "true child 7"))
        fail_msg("unclear error: %s", err);
    free(buf);
}

/* Node 1 branches back to node 0: a cycle, refused at load. */
static void tree_with_cycle_is_refused_at_load(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {0, 0, 0},
                         trueids[] = {1, 0, 0}, falseids[] = {2, 2, 0};
    static const float values[] = {0.5f, 0.2f, 0}, weights[] = {20};
    static const int64_t t_ids[] = {0}, t_nodeids[] = {2}, t_treeids[] = {0};
    const char *modes[] = {"BRANCH_LEQ", "BRANCH_LEQ", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = NULL;
    char err[512] = "";
    assert_int_equal(aas_onnx_load(buf, len, &g, err, sizeof(err)), AAS_ERR_MODEL_FORMAT);
    if (!strstr(err, "cycle")) fail_msg("unclear error: %s", err);
    free(buf);
}

/* Attribute arrays of different lengths (nodes_values one short) and a
 * class id beyond the labels: both refused at load. */
static void tree_with_bad_lengths_or_class_id_is_refused(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {0, 0, 0},
                         trueids[] = {1, 0, 0}, falseids[] = {2, 0, 0};
    static const float short_values[] = {0.5f, 0}, values[] = {0.5f, 0, 0}, weights[] = {1, 1};
    static const int64_t c_ids[] = {0, 5}, c_nodeids[] = {1, 2}, c_treeids[] = {0, 0},
                         labels[] = {0, 1};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF"};
    for (int bad = 0; bad < 2; bad++) {
        const t_attr_t attrs[] = {
            A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
            A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
            A_INTS("nodes_falsenodeids", falseids),
            bad == 0 ? (t_attr_t)A_FLOATS("nodes_values", short_values)
                     : (t_attr_t)A_FLOATS("nodes_values", values),
            A_STRS("nodes_modes", modes),       A_INTS("class_ids", c_ids),
            A_INTS("class_nodeids", c_nodeids), A_INTS("class_treeids", c_treeids),
            A_FLOATS("class_weights", weights), A_INTS("classlabels_int64s", labels),
        };
        const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"probabilities", AAS_ONNX_FLOAT}};
        size_t len;
        uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleClassifier", AAS_ONNX_FLOAT, 1,
                                   attrs, sizeof(attrs) / sizeof(attrs[0]), outs, 2, &len);
        aas_onnx_t *g = NULL;
        char err[512] = "";
        assert_int_equal(aas_onnx_load(buf, len, &g, err, sizeof(err)), AAS_ERR_MODEL_FORMAT);
        const char *want = bad == 0 ? "nodes_values 2" : "class_ids 5 out of range";
        if (!strstr(err, want)) fail_msg("error lacks '%s': %s", want, err);
        free(buf);
    }
}

/* A branch on feature 3 of a 1-feature input: the model loads (the width
 * is not known until run) but running refuses it instead of reading past
 * the row. */
static void tree_feature_beyond_input_is_refused_at_run(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0}, nodeids[] = {0, 1, 2}, featureids[] = {3, 0, 0},
                         trueids[] = {1, 0, 0}, falseids[] = {2, 0, 0};
    static const float values[] = {0.5f, 0, 0}, weights[] = {10, 20};
    static const int64_t t_ids[] = {0, 0}, t_nodeids[] = {1, 2}, t_treeids[] = {0, 0};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {0.1f};
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {1, 1},
                            .data = (void *)x, .nbytes = sizeof(x)};
    const aas_onnx_tensor_t *out[1];
    char err[512] = "";
    assert_int_not_equal(aas_onnx_run(g, &in, 1, out, 1, err, sizeof(err)), AAS_ERR_OK);
    if (!strstr(err, "feature 3")) fail_msg("unclear error: %s", err);
    aas_onnx_destroy(g);
}

/* 40 branches, each with both children the next node, then a leaf of 7:
 * 2^40 paths through 41 nodes.  Load and run must stay linear in the
 * nodes (a hostile model must not stall a worker); every row gets 7. */
static void tree_sharing_subtrees_stays_linear(void **state) {
    (void)state;
    enum { N = 41 };
    int64_t treeids[N], nodeids[N], featureids[N], trueids[N], falseids[N];
    float values[N];
    const char *modes[N];
    for (int i = 0; i < N; i++) {
        treeids[i] = 0;
        nodeids[i] = i;
        featureids[i] = 0;
        trueids[i] = falseids[i] = i + 1 < N ? i + 1 : 0;
        values[i] = 0.5f;
        modes[i] = i + 1 < N ? "BRANCH_LEQ" : "LEAF";
    }
    static const float weights[] = {7};
    static const int64_t t_ids[] = {0}, t_nodeids[] = {N - 1}, t_treeids[] = {0};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_FLOATS("nodes_values", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_FLOATS("target_weights", weights),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {0.1f, 0.9f};
    const aas_onnx_tensor_t *out[1];
    run_ok(g, x, 2, 1, out, 1);
    assert_float_equal(((const float *)out[0]->data)[0], 7, 0);
    assert_float_equal(((const float *)out[0]->data)[1], 7, 0);
    aas_onnx_destroy(g);
}

/* Opset 3's tensor attributes: the two-stump AVERAGE regressor with
 * nodes_values_as_tensor, target_weights_as_tensor and
 * base_values_as_tensor as doubles: x = 0.2 -> (10 + 1) / 2 + 100,
 * x = 0.9 -> (20 + 3) / 2 + 100. */
static void tree_reads_opset3_tensor_attributes(void **state) {
    (void)state;
    static const int64_t treeids[] = {0, 0, 0, 1, 1, 1}, nodeids[] = {0, 1, 2, 0, 1, 2},
                         featureids[] = {0, 0, 0, 0, 0, 0}, trueids[] = {1, 0, 0, 1, 0, 0},
                         falseids[] = {2, 0, 0, 2, 0, 0};
    static const double values[] = {0.5, 0, 0, 0.5, 0, 0}, weights[] = {10, 20, 1, 3},
                        base[] = {100};
    static const int64_t t_ids[] = {0, 0, 0, 0}, t_nodeids[] = {1, 2, 1, 2},
                         t_treeids[] = {0, 0, 1, 1};
    const char *modes[] = {"BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"};
    const t_attr_t attrs[] = {
        A_INTS("nodes_treeids", treeids),   A_INTS("nodes_nodeids", nodeids),
        A_INTS("nodes_featureids", featureids), A_INTS("nodes_truenodeids", trueids),
        A_INTS("nodes_falsenodeids", falseids), A_DTENSOR("nodes_values_as_tensor", values),
        A_STRS("nodes_modes", modes),       A_INTS("target_ids", t_ids),
        A_INTS("target_nodeids", t_nodeids), A_INTS("target_treeids", t_treeids),
        A_DTENSOR("target_weights_as_tensor", weights), A_INT("n_targets", 1),
        A_STR("aggregate_function", "AVERAGE"), A_DTENSOR("base_values_as_tensor", base),
    };
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "TreeEnsembleRegressor", AAS_ONNX_FLOAT, 1, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {0.2f, 0.9f};
    const aas_onnx_tensor_t *out[1];
    run_ok(g, x, 2, 1, out, 1);
    assert_float_equal(((const float *)out[0]->data)[0], 105.5, 1e-5);
    assert_float_equal(((const float *)out[0]->data)[1], 111.5, 1e-5);
    aas_onnx_destroy(g);
}

/* ---- SVM, linear, scaler, normalizer, ArgMax ------------------------------ */

/* Two classes {3, 4}, one LINEAR support vector each: sv0 = (1, 0) for
 * class 3, sv1 = (0, 1) for class 4, coefficients (1, -1), rho 0.  The pair
 * score is x0 - x1: (2, 1) -> 1 > 0 votes class 3; (1, 3) -> -2 votes 4.
 * No prob_a: two score columns, (-s, s) as ONNX Runtime writes them. */
static void svm_linear_two_classes_votes_and_scores(void **state) {
    (void)state;
    static const float sv[] = {1, 0, 0, 1}, coef[] = {1, -1}, rho[] = {0}, kp[] = {0, 0, 0};
    static const int64_t vpc[] = {1, 1}, labels[] = {3, 4};
    const t_attr_t attrs[] = {
        A_STR("kernel_type", "LINEAR"), A_FLOATS("kernel_params", kp),
        A_FLOATS("support_vectors", sv), A_INTS("vectors_per_class", vpc),
        A_FLOATS("coefficients", coef), A_FLOATS("rho", rho),
        A_INTS("classlabels_ints", labels),
    };
    const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"scores", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "SVMClassifier", AAS_ONNX_FLOAT, 2, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 2, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {2, 1, 1, 3};
    const aas_onnx_tensor_t *out[2];
    run_ok(g, x, 2, 2, out, 2);
    const int64_t *lab = out[0]->data;
    const float *z = out[1]->data;
    assert_int_equal(lab[0], 3);
    assert_int_equal(lab[1], 4);
    assert_int_equal(out[1]->dims[1], 2);
    assert_float_equal(z[0], -1, 1e-6);
    assert_float_equal(z[1], 1, 1e-6);
    assert_float_equal(z[2], 2, 1e-6);
    assert_float_equal(z[3], -2, 1e-6);
    aas_onnx_destroy(g);
}

/* RBF with gamma 0.5 and three classes, one support vector each at
 * e0, e1, e2 in 3-d; coefficients all 1 for the "first" class of each
 * pair and -1 for the second, rho 0: the nearest support vector wins every
 * pair it is in, so x near e1 is class 1 ({10, 11, 12} -> 11). */
static void svm_rbf_three_classes_votes_for_nearest(void **state) {
    (void)state;
    static const float sv[] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, kp[] = {0.5f, 0, 3};
    /* coefficients [C-1, V]: row j-1 holds class i's coefficient against
     * j > i at class i's vectors, row i holds class j's against i. */
    static const float coef[] = {1, -1, -1, 1, 1, -1}, rho[] = {0, 0, 0};
    static const int64_t vpc[] = {1, 1, 1}, labels[] = {10, 11, 12};
    const t_attr_t attrs[] = {
        A_STR("kernel_type", "RBF"), A_FLOATS("kernel_params", kp),
        A_FLOATS("support_vectors", sv), A_INTS("vectors_per_class", vpc),
        A_FLOATS("coefficients", coef), A_FLOATS("rho", rho),
        A_INTS("classlabels_ints", labels),
    };
    const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"scores", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "SVMClassifier", AAS_ONNX_FLOAT, 3, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 2, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {0.1f, 0.9f, 0.0f, 0.0f, 0.1f, 1.1f, 0.8f, 0.1f, 0.2f};
    const aas_onnx_tensor_t *out[2];
    run_ok(g, x, 3, 3, out, 2);
    const int64_t *lab = out[0]->data;
    assert_int_equal(lab[0], 11);
    assert_int_equal(lab[1], 12);
    assert_int_equal(lab[2], 10);
    /* three pair scores per row without probabilities */
    assert_int_equal(out[1]->dims[1], 3);
    aas_onnx_destroy(g);
}

/* LinearClassifier, 2 features, 3 classes, SOFTMAX:
 * scores = (x0, x1, x0 + x1 - 1) + (0, 0, 0.5); x = (1, 2): (1, 2, 2.5) ->
 * label 2 (class index 2 of labels {0, 1, 2}); probabilities softmax. */
static void linear_classifier_softmax(void **state) {
    (void)state;
    static const float coef[] = {1, 0, 0, 1, 1, 1}, icpt[] = {0, 0, -0.5f};
    static const int64_t labels[] = {0, 1, 2};
    const t_attr_t attrs[] = {
        A_FLOATS("coefficients", coef), A_FLOATS("intercepts", icpt),
        A_INTS("classlabels_ints", labels), A_STR("post_transform", "SOFTMAX"),
        A_INT("multi_class", 1),
    };
    const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"probabilities", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "LinearClassifier", AAS_ONNX_FLOAT, 2, attrs,
                               sizeof(attrs) / sizeof(attrs[0]), outs, 2, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {1, 2};
    const aas_onnx_tensor_t *out[2];
    run_ok(g, x, 1, 2, out, 2);
    assert_int_equal(((const int64_t *)out[0]->data)[0], 2);
    const float *p = out[1]->data;
    double s = exp(1) + exp(2) + exp(2.5);
    assert_float_equal(p[0], exp(1) / s, 1e-6);
    assert_float_equal(p[1], exp(2) / s, 1e-6);
    assert_float_equal(p[2], exp(2.5) / s, 1e-6);
    aas_onnx_destroy(g);
}

/* String class labels: the engine has no string tensors, so the label
 * output is the class index (int64).  Scores (0, 1, 2) + 0 -> index 2. */
static void linear_classifier_string_labels_give_the_index(void **state) {
    (void)state;
    static const float coef[] = {0, 1, 2}, icpt[] = {0, 0, 0};
    const char *labels[] = {"cat", "dog", "emu"};
    const t_attr_t attrs[] = {A_FLOATS("coefficients", coef), A_FLOATS("intercepts", icpt),
                              A_STRS("classlabels_strings", labels)};
    const t_out_t outs[] = {{"label", AAS_ONNX_INT64}, {"scores", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "LinearClassifier", AAS_ONNX_FLOAT, 1, attrs, 3,
                               outs, 2, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {1};
    const aas_onnx_tensor_t *out[2];
    run_ok(g, x, 1, 1, out, 2);
    assert_int_equal(((const int64_t *)out[0]->data)[0], 2);
    aas_onnx_destroy(g);
}

/* LinearRegressor with 3 targets (coefficients 0, 1, 2 on one feature,
 * x = 1): LOGISTIC gives 1 / (1 + e^-s); SOFTMAX_ZERO leaves the zero
 * score at 0 and normalises the others: e^-1 / (e^-1 + 1), 1 / (e^-1 + 1). */
static void linear_regressor_post_transforms(void **state) {
    (void)state;
    static const float coef[] = {0, 1, 2};
    const char *pts[] = {"LOGISTIC", "SOFTMAX_ZERO"};
    double em1 = exp(-1);
    const double want[2][3] = {{0.5, 1 / (1 + em1), 1 / (1 + exp(-2))},
                               {0, em1 / (em1 + 1), 1 / (em1 + 1)}};
    for (int c = 0; c < 2; c++) {
        const t_attr_t attrs[] = {A_FLOATS("coefficients", coef), A_INT("targets", 3),
                                  A_STR("post_transform", pts[c])};
        const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
        size_t len;
        uint8_t *buf = model_bytes("ai.onnx.ml", "LinearRegressor", AAS_ONNX_FLOAT, 1, attrs, 3,
                                   outs, 1, &len);
        aas_onnx_t *g = load_ok(buf, len);
        free(buf);
        const float x[] = {1};
        const aas_onnx_tensor_t *out[1];
        run_ok(g, x, 1, 1, out, 1);
        const float *y = out[0]->data;
        for (int j = 0; j < 3; j++)
            if (fabs(y[j] - want[c][j]) > 1e-6)
                fail_msg("%s: y[%d] = %g, want %g", pts[c], j, y[j], want[c][j]);
        aas_onnx_destroy(g);
    }
}

/* Normalizer L1 / L2 / MAX on the row (1, -3): (0.25, -0.75),
 * (1/sqrt 10, -3/sqrt 10), (1, -3) / 1. */
static void normalizer_l1_l2_max(void **state) {
    (void)state;
    const char *norms[] = {"L1", "L2", "MAX"};
    const float want[3][2] = {{0.25f, -0.75f}, {0.31622777f, -0.9486833f}, {1, -3}};
    for (int c = 0; c < 3; c++) {
        const t_attr_t attrs[] = {A_STR("norm", norms[c])};
        const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
        size_t len;
        uint8_t *buf = model_bytes("ai.onnx.ml", "Normalizer", AAS_ONNX_FLOAT, 2, attrs, 1, outs, 1,
                                   &len);
        aas_onnx_t *g = load_ok(buf, len);
        free(buf);
        const float x[] = {1, -3};
        const aas_onnx_tensor_t *out[1];
        run_ok(g, x, 1, 2, out, 1);
        const float *y = out[0]->data;
        if (fabsf(y[0] - want[c][0]) > 1e-6f || fabsf(y[1] - want[c][1]) > 1e-6f)
            fail_msg("%s: got %g %g", norms[c], y[0], y[1]);
        aas_onnx_destroy(g);
    }
}

/* Scaler: (x - offset) * scale per column: (3, 5) with offset (1, 1) and
 * scale (2, 0.5) -> (4, 2). */
static void scaler_offsets_then_scales(void **state) {
    (void)state;
    static const float off[] = {1, 1}, sc[] = {2, 0.5f};
    const t_attr_t attrs[] = {A_FLOATS("offset", off), A_FLOATS("scale", sc)};
    const t_out_t outs[] = {{"Y", AAS_ONNX_FLOAT}};
    size_t len;
    uint8_t *buf = model_bytes("ai.onnx.ml", "Scaler", AAS_ONNX_FLOAT, 2, attrs, 2, outs, 1, &len);
    aas_onnx_t *g = load_ok(buf, len);
    free(buf);
    const float x[] = {3, 5};
    const aas_onnx_tensor_t *out[1];
    run_ok(g, x, 1, 2, out, 1);
    const float *y = out[0]->data;
    assert_float_equal(y[0], 4, 0);
    assert_float_equal(y[1], 2, 0);
    aas_onnx_destroy(g);
}

/* ArgMax over axis 1 of [[1, 5, 5], [7, 2, 7]]: first index (1, 0) or,
 * with select_last_index, (2, 2); keepdims 0 gives shape [2]. */
static void argmax_first_or_last_index(void **state) {
    (void)state;
    for (int last = 0; last < 2; last++) {
        const t_attr_t attrs[] = {A_INT("axis", 1), A_INT("keepdims", 0),
                                  A_INT("select_last_index", last)};
        const t_out_t outs[] = {{"Y", AAS_ONNX_INT64}};
        size_t len;
        uint8_t *buf = model_bytes("", "ArgMax", AAS_ONNX_FLOAT, 3, attrs, 3, outs, 1, &len);
        aas_onnx_t *g = load_ok(buf, len);
        free(buf);
        const float x[] = {1, 5, 5, 7, 2, 7};
        const aas_onnx_tensor_t *out[1];
        run_ok(g, x, 2, 3, out, 1);
        assert_int_equal(out[0]->rank, 1);
        assert_int_equal(out[0]->dims[0], 2);
        const int64_t *y = out[0]->data;
        assert_int_equal(y[0], last ? 2 : 1);
        assert_int_equal(y[1], last ? 2 : 0);
        aas_onnx_destroy(g);
    }
}

/* ---- the scikit-learn fixtures against ONNX Runtime ---------------------- */

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf ? (size_t)n : 0;
    return buf;
}

static void read_tensor(const char *path, aas_onnx_tensor_t *t) {
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    char err[512] = "";
    aas_err_t rc = aas_onnx_tensor_decode(buf, len, t, NULL, err, sizeof(err));
    if (rc != AAS_ERR_OK) fail_msg("%s: %s", path, err);
    free(buf);
}

/* Compare one output with ONNX Runtime's: int64 exactly, floats within
 * 1e-4 absolute and, for [N, C] with C > 1, the same argmax per row.
 * Returns 0 on a match; prints the measured numbers either way. */
static int compare_output(const char *name, int k, const aas_onnx_tensor_t *got,
                          const aas_onnx_tensor_t *want) {
    int64_t n = aas_onnx_numel(want);
    if (got->dtype != want->dtype || aas_onnx_numel(got) != n) {
        printf("%s output %d: got %s x %lld, want %s x %lld\n", name, k,
               aas_onnx_dtype_name(got->dtype), (long long)aas_onnx_numel(got),
               aas_onnx_dtype_name(want->dtype), (long long)n);
        return -1;
    }
    if (want->dtype == AAS_ONNX_BOOL) {
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++)
            same += !((const uint8_t *)got->data)[i] == !((const uint8_t *)want->data)[i];
        printf("%s output %d (bool): %lld/%lld equal\n", name, k, (long long)same, (long long)n);
        return same == n ? 0 : -1;
    }
    if (want->dtype == AAS_ONNX_INT64) {
        int64_t same = 0;
        for (int64_t i = 0; i < n; i++)
            same += ((const int64_t *)got->data)[i] == ((const int64_t *)want->data)[i];
        printf("%s output %d (int64): %lld/%lld equal\n", name, k, (long long)same, (long long)n);
        return same == n ? 0 : -1;
    }
    if (want->dtype != AAS_ONNX_FLOAT) {
        printf("%s output %d: dtype %s not compared\n", name, k, aas_onnx_dtype_name(want->dtype));
        return -1;
    }
    const float *p = got->data, *wp = want->data;
    int64_t cols = want->rank == 2 ? want->dims[1] : 1, rows = cols ? n / cols : 0;
    double maxdiff = 0;
    int64_t argmax_same = 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t a = 0, wa = 0;
        for (int64_t c = 0; c < cols; c++) {
            double d = fabs((double)p[r * cols + c] - wp[r * cols + c]);
            if (!(d <= maxdiff)) maxdiff = d;   /* NaN counts as a mismatch */
            if (p[r * cols + c] > p[r * cols + a]) a = c;
            if (wp[r * cols + c] > wp[r * cols + wa]) wa = c;
        }
        argmax_same += a == wa;
    }
    printf("%s output %d (float [%lld x %lld]): max |aas - onnxruntime| %.3g, argmax %lld/%lld "
           "equal\n",
           name, k, (long long)rows, (long long)cols, maxdiff, (long long)argmax_same,
           (long long)rows);
    return maxdiff <= 1e-4 && (cols == 1 || argmax_same == rows) ? 0 : -1;
}

/* One fixture directory (backend test layout): every output of
 * test_data_set_0 against ONNX Runtime's.  Returns 0 on a match. */
static int check_fixture(const char *dir, const char *name) {
    char path[1200], err[512] = "";
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf) fail_msg("cannot read %s", path);
    aas_onnx_t *g = NULL;
    aas_err_t rc = aas_onnx_load(buf, len, &g, err, sizeof(err));
    free(buf);
    if (rc != AAS_ERR_OK) {
        printf("%s: load: %s\n", name, err);
        return -1;
    }
    aas_onnx_tensor_t in[4];
    size_t n_in = aas_onnx_n_inputs(g), n_out = aas_onnx_n_outputs(g);
    const aas_onnx_tensor_t *out[4];
    int bad = 0;
    if (n_in > 4 || n_out > 4) {
        printf("%s: more than 4 inputs or outputs\n", name);
        aas_onnx_destroy(g);
        return -1;
    }
    for (size_t k = 0; k < n_in; k++) {
        snprintf(path, sizeof(path), "%s/test_data_set_0/input_%zu.pb", dir, k);
        read_tensor(path, &in[k]);
    }
    if ((rc = aas_onnx_run(g, in, n_in, out, n_out, err, sizeof(err))) != AAS_ERR_OK) {
        printf("%s: run: %s\n", name, err);
        bad = 1;
    }
    for (size_t k = 0; !bad && k < n_out; k++) {
        aas_onnx_tensor_t want;
        snprintf(path, sizeof(path), "%s/test_data_set_0/output_%zu.pb", dir, k);
        read_tensor(path, &want);
        if (compare_output(name, (int)k, out[k], &want)) bad = 1;
        free(want.data);
    }
    for (size_t k = 0; k < n_in; k++) free(in[k].data);
    aas_onnx_destroy(g);
    return bad ? -1 : 0;
}

/* Every directory under root whose name starts with prefix (and not with
 * exclude, when given). */
static void check_fixtures_but(const char *root, const char *prefix, const char *exclude,
                               int min_count) {
    DIR *d = opendir(root);
    if (!d) fail_msg("cannot open %s", root);
    struct dirent *e;
    int count = 0, failed = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (exclude && !strncmp(e->d_name, exclude, strlen(exclude))) continue;
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        count++;
        if (check_fixture(dir, e->d_name)) {
            printf("%s: DOES NOT MATCH\n", e->d_name);
            failed++;
        }
    }
    closedir(d);
    printf("%s/%s*: %d of %d match the recorded outputs\n", root, prefix, count - failed, count);
    assert_true(count >= min_count);
    assert_int_equal(failed, 0);
}

static void check_fixtures(const char *root, const char *prefix, int min_count) {
    check_fixtures_but(root, prefix, NULL, min_count);
}

/* data/onnx/sklearn-NAME: the four digit classifiers. */
static void sklearn_fixtures_match_onnx_runtime(void **state) {
    (void)state;
    check_fixtures(AAS_ONNX_FIXTURES_DIR, "sklearn-", 4);
}

/* Each case in tests/data/onnx-ml: two-class paths, other SVM kernels, regressors,
 * L2/MAX normalisation, a one-vs-rest SVC graph. */
static void ml_edge_cases_match_onnx_runtime(void **state) {
    (void)state;
    check_fixtures(AAS_ONNX_ML_CASES_DIR, "", 15);
}

/* The ONNX backend node tests Debian ships for the ai.onnx ops in this
 * file's table (ArgMax, Less, Sum); skipped when libonnx-testdata is not
 * installed.  LessOrEqual's cases (test_less_equal*) are another op. */
static void backend_node_tests_of_argmax_less_sum_pass(void **state) {
    (void)state;
    const char *root = "/usr/share/libonnx-testdata/data/node";
    DIR *d = opendir(root);
    if (!d) {
        printf("no %s: skipped\n", root);
        skip();
    }
    closedir(d);
    check_fixtures(root, "test_argmax_", 16);
    check_fixtures_but(root, "test_less", "test_less_equal", 2);
    check_fixtures(root, "test_sum_", 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tree_stump_leq_takes_true_branch_at_threshold),
        cmocka_unit_test(tree_stump_lt_takes_false_branch_at_threshold),
        cmocka_unit_test(tree_modes_compare_as_named),
        cmocka_unit_test(tree_takes_double_and_int64_inputs),
        cmocka_unit_test(tree_aggregates_sum_average_min_max),
        cmocka_unit_test(tree_classifier_softmax_and_labels),
        cmocka_unit_test(tree_with_missing_child_is_refused_at_load),
        cmocka_unit_test(tree_with_cycle_is_refused_at_load),
        cmocka_unit_test(tree_with_bad_lengths_or_class_id_is_refused),
        cmocka_unit_test(tree_feature_beyond_input_is_refused_at_run),
        cmocka_unit_test(tree_sharing_subtrees_stays_linear),
        cmocka_unit_test(tree_reads_opset3_tensor_attributes),
        cmocka_unit_test(svm_linear_two_classes_votes_and_scores),
        cmocka_unit_test(svm_rbf_three_classes_votes_for_nearest),
        cmocka_unit_test(linear_classifier_softmax),
        cmocka_unit_test(linear_classifier_string_labels_give_the_index),
        cmocka_unit_test(linear_regressor_post_transforms),
        cmocka_unit_test(normalizer_l1_l2_max),
        cmocka_unit_test(scaler_offsets_then_scales),
        cmocka_unit_test(argmax_first_or_last_index),
        cmocka_unit_test(sklearn_fixtures_match_onnx_runtime),
        cmocka_unit_test(ml_edge_cases_match_onnx_runtime),
        cmocka_unit_test(backend_node_tests_of_argmax_less_sum_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
