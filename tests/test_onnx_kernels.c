/*
 * test_onnx_kernels.c - the ONNX kernels aas writes itself, or tunes,
 * against naive loops written here:
 *  - Conv (+ a fused activation) with constant weights, over shapes that
 *    exercise both paths the engine has: the direct C kernel for 1..4 input
 *    channels at stride 1 (common/onnx_conv_direct.c: output widths that
 *    are and are not multiples of 8, output channels past a block of 8,
 *    asymmetric pads, auto_pad SAME, kernel 1..5, ReLU and LeakyReLU fused)
 *    and oneDNN's blocked kernels (more channels, strides, dilations,
 *    groups);
 *  - Gemm (+ a fused activation) with constant B, as PyTorch exports
 *    nn.Linear, at every batch from 1 to 40 rows: the packed C kernel for
 *    1..32 rows (common/gemm_small.c, whose one row is a gemv of its own
 *    that must give a row the same bits as in a batch; N not a multiple
 *    of 16, past 4 panel pairs and not, B transposed or not, bias [N],
 *    [1,N] or none) and oneDNN's inner product above 32.
 * The ONNX node tests feed W and B as graph inputs, which take none of
 * these paths.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx.h"
#include "onnx.pb-c.h"

typedef struct {
    int64_t n, ic, h, w, oc, kh, kw, sh, sw, dh, dw, group;
    int64_t pads[4];          /* top, left, bottom, right */
    const char *auto_pad;     /* NULL: NOTSET */
    const char *act;          /* NULL, "Relu", "LeakyRelu" */
} conv_case_t;

static float frand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Output size and left pads as ONNX defines them. */
static void geometry(const conv_case_t *c, int64_t *oh, int64_t *ow, int64_t *pt, int64_t *pl) {
    int64_t ekh = (c->kh - 1) * c->dh + 1, ekw = (c->kw - 1) * c->dw + 1;
    if (c->auto_pad) {
        *oh = (c->h + c->sh - 1) / c->sh;
        *ow = (c->w + c->sw - 1) / c->sw;
        int64_t th = (*oh - 1) * c->sh + ekh - c->h, tw = (*ow - 1) * c->sw + ekw - c->w;
        if (th < 0) th = 0;
        if (tw < 0) tw = 0;
        *pt = th / 2;   /* SAME_UPPER: the extra pad at the end */
        *pl = tw / 2;
        return;
    }
    *oh = (c->h + c->pads[0] + c->pads[2] - ekh) / c->sh + 1;
    *ow = (c->w + c->pads[1] + c->pads[3] - ekw) / c->sw + 1;
    *pt = c->pads[0];
    *pl = c->pads[1];
}

static void naive(const conv_case_t *c, const float *x, const float *wt, const float *b,
                  float *y) {
    int64_t oh, ow, pt, pl;
    geometry(c, &oh, &ow, &pt, &pl);
    int64_t icg = c->ic / c->group, ocg = c->oc / c->group;
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t o = 0; o < c->oc; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = b[o];
                    int64_t g = o / ocg;
                    for (int64_t ci = 0; ci < icg; ci++)
                        for (int64_t a = 0; a < c->kh; a++)
                            for (int64_t e = 0; e < c->kw; e++) {
                                int64_t ih = i * c->sh + a * c->dh - pt;
                                int64_t iw = j * c->sw + e * c->dw - pl;
                                if (ih < 0 || ih >= c->h || iw < 0 || iw >= c->w) continue;
                                acc += (double)wt[((o * icg + ci) * c->kh + a) * c->kw + e] *
                                       x[((n * c->ic + g * icg + ci) * c->h + ih) * c->w + iw];
                            }
                    float v = (float)acc;
                    if (c->act && !strcmp(c->act, "Relu")) v = v > 0 ? v : 0;
                    if (c->act && !strcmp(c->act, "LeakyRelu")) v = v > 0 ? v : 0.1f * v;
                    y[((n * c->oc + o) * oh + i) * ow + j] = v;
                }
}

/* ---- a Conv [+ activation] graph, W and B initializers ---- */

static Onnx__TensorProto *tensor(const char *name, int rank, const int64_t *dims,
                                 const float *data, size_t n) {
    Onnx__TensorProto *t = calloc(1, sizeof(*t));
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)rank;
    t->dims = (int64_t *)dims;
    t->n_float_data = n;
    t->float_data = (float *)data;
    return t;
}

static Onnx__ValueInfoProto *value(const char *name, int rank, const int64_t *dims,
                                   Onnx__TensorShapeProto__Dimension **dv) {
    Onnx__ValueInfoProto *v = calloc(1, sizeof(*v));
    Onnx__TypeProto *t = calloc(1, sizeof(*t));
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof(*tt));
    Onnx__TensorShapeProto *s = calloc(1, sizeof(*s));
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    *t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    *s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    v->name = (char *)name;
    v->type = t;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = s;
    s->n_dim = (size_t)rank;
    s->dim = dv;
    for (int i = 0; i < rank; i++) {
        dv[i] = calloc(1, sizeof(*dv[i]));
        *dv[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        dv[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dv[i]->dim_value = dims[i];
    }
    return v;
}

static void value_free(Onnx__ValueInfoProto *v) {
    for (size_t i = 0; i < v->type->tensor_type->shape->n_dim; i++)
        free(v->type->tensor_type->shape->dim[i]);
    free(v->type->tensor_type->shape);
    free(v->type->tensor_type);
    free(v->type);
    free(v);
}

static Onnx__AttributeProto *attr_ints(const char *name, const int64_t *v, size_t n) {
    Onnx__AttributeProto *a = calloc(1, sizeof(*a));
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = n;
    a->ints = (int64_t *)v;
    return a;
}

/* Serialized model (malloc'ed) of Conv(x, W, B) [-> act] -> y. */
static void *build(const conv_case_t *c, const float *w, const float *b, size_t *len) {
    int64_t oh, ow, pt, pl;
    geometry(c, &oh, &ow, &pt, &pl);
    int64_t xd[4] = {c->n, c->ic, c->h, c->w}, yd[4] = {c->n, c->oc, oh, ow};
    int64_t wd[4] = {c->oc, c->ic / c->group, c->kh, c->kw}, bd[1] = {c->oc};
    int64_t strides[2] = {c->sh, c->sw}, dil[2] = {c->dh, c->dw}, ks[2] = {c->kh, c->kw};
    Onnx__TensorShapeProto__Dimension *dx[4], *dy[4];
    Onnx__ValueInfoProto *vin = value("x", 4, xd, dx), *vout = value("y", 4, yd, dy);
    Onnx__TensorProto *tw = tensor("W", 4, wd, w, (size_t)(wd[0] * wd[1] * wd[2] * wd[3]));
    Onnx__TensorProto *tb = tensor("B", 1, bd, b, (size_t)c->oc);
    Onnx__AttributeProto *attrs[6];
    size_t na = 0;
    attrs[na++] = attr_ints("strides", strides, 2);
    attrs[na++] = attr_ints("dilations", dil, 2);
    attrs[na++] = attr_ints("kernel_shape", ks, 2);
    Onnx__AttributeProto group = ONNX__ATTRIBUTE_PROTO__INIT, pads_a, ap = ONNX__ATTRIBUTE_PROTO__INIT;
    group.name = "group";
    group.has_type = 1;
    group.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    group.has_i = 1;
    group.i = c->group;
    attrs[na++] = &group;
    Onnx__AttributeProto *pads = NULL;
    if (c->auto_pad) {
        ap.name = "auto_pad";
        ap.has_type = 1;
        ap.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        ap.has_s = 1;
        ap.s.data = (uint8_t *)c->auto_pad;
        ap.s.len = strlen(c->auto_pad);
        attrs[na++] = &ap;
    } else {
        pads = attr_ints("pads", c->pads, 4);
        attrs[na++] = pads;
    }
    (void)pads_a;
    char *conv_in[3] = {"x", "W", "B"}, *conv_out[1] = {c->act ? "h" : "y"};
    char *act_in[1] = {"h"}, *act_out[1] = {"y"};
    Onnx__NodeProto conv = ONNX__NODE_PROTO__INIT, act = ONNX__NODE_PROTO__INIT;
    conv.name = "conv";
    conv.op_type = "Conv";
    conv.n_input = 3;
    conv.input = conv_in;
    conv.n_output = 1;
    conv.output = conv_out;
    conv.n_attribute = na;
    conv.attribute = attrs;
    Onnx__AttributeProto alpha = ONNX__ATTRIBUTE_PROTO__INIT;
    Onnx__AttributeProto *act_attrs[1] = {&alpha};
    alpha.name = "alpha";
    alpha.has_type = 1;
    alpha.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    alpha.has_f = 1;
    alpha.f = 0.1f;
    act.name = "act";
    act.op_type = (char *)(c->act ? c->act : "Relu");
    act.n_input = 1;
    act.input = act_in;
    act.n_output = 1;
    act.output = act_out;
    if (c->act && !strcmp(c->act, "LeakyRelu")) {
        act.n_attribute = 1;
        act.attribute = act_attrs;
    }
    Onnx__NodeProto *nodes[2] = {&conv, &act};
    Onnx__TensorProto *inits[2] = {tw, tb};
    Onnx__ValueInfoProto *ins[1] = {vin}, *outs[1] = {vout};
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "g";
    g.n_node = c->act ? 2 : 1;
    g.node = nodes;
    g.n_initializer = 2;
    g.initializer = inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    op.domain = "";
    op.has_version = 1;
    op.version = 17;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.n_opset_import = 1;
    m.opset_import = ops;
    m.graph = &g;
    *len = onnx__model_proto__get_packed_size(&m);
    void *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&m, buf);
    for (size_t i = 0; i < 3; i++) free(attrs[i]);
    free(pads);
    free(tw);
    free(tb);
    value_free(vin);
    value_free(vout);
    return buf;
}

static void check_case(const conv_case_t *c) {
    uint32_t seed = 12345;
    int64_t oh, ow, pt, pl;
    geometry(c, &oh, &ow, &pt, &pl);
    size_t nx = (size_t)(c->n * c->ic * c->h * c->w), ny = (size_t)(c->n * c->oc * oh * ow);
    size_t nw = (size_t)(c->oc * (c->ic / c->group) * c->kh * c->kw);
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc((size_t)c->oc * 4);
    float *want = malloc(ny * 4);
    assert_true(x && w && b && want);
    for (size_t i = 0; i < nx; i++) x[i] = frand(&seed);
    for (size_t i = 0; i < nw; i++) w[i] = frand(&seed);
    for (int64_t i = 0; i < c->oc; i++) b[i] = frand(&seed);
    naive(c, x, w, b, want);
    size_t len;
    void *blob = build(c, w, b, &len);
    aas_onnx_t *g;
    char why[512];
    if (aas_onnx_load(blob, len, &g, why, sizeof(why))) fail_msg("load: %s", why);
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 4, .dims = {c->n, c->ic, c->h, c->w},
                            .data = x, .nbytes = nx * 4};
    const aas_onnx_tensor_t *out;
    for (int rep = 0; rep < 2; rep++) {   /* the plan is made, then reused */
        if (aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why))) fail_msg("run: %s", why);
        assert_int_equal(aas_onnx_numel(out), (int64_t)ny);
        const float *y = out->data;
        for (size_t i = 0; i < ny; i++)
            if (!(fabsf(y[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i])))
                fail_msg("ic=%lld oc=%lld %lldx%lld k=%lldx%lld s=%lld d=%lld g=%lld %s %s: "
                         "element %zu is %g, want %g",
                         (long long)c->ic, (long long)c->oc, (long long)c->h, (long long)c->w,
                         (long long)c->kh, (long long)c->kw, (long long)c->sh,
                         (long long)c->dh, (long long)c->group,
                         c->auto_pad ? c->auto_pad : "pads", c->act ? c->act : "-", i,
                         (double)y[i], (double)want[i]);
    }
    aas_onnx_destroy(g);
    free(blob);
    free(x);
    free(w);
    free(b);
    free(want);
}

/* The direct kernel: 1..4 input channels, stride 1, no dilation. */
static void conv_with_few_input_channels_matches_naive(void **state) {
    (void)state;
    const conv_case_t cases[] = {
        {2, 1, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, "Relu"},     /* digits CNN */
        {3, 1, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, NULL},
        {2, 3, 13, 11, 10, 3, 3, 1, 1, 1, 1, 1, {1, 2, 0, 1}, NULL, "LeakyRelu"},
        {1, 2, 5, 17, 17, 5, 5, 1, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, "Relu"},
        {4, 4, 9, 7, 3, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, NULL},
        {1, 1, 6, 10, 9, 2, 4, 1, 1, 1, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", "Relu"},
        {1, 3, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, NULL},
        {5, 1, 1, 9, 7, 1, 3, 1, 1, 1, 1, 1, {0, 1, 0, 1}, NULL, "Relu"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) check_case(&cases[i]);
}

/* oneDNN's blocked kernels: more channels, strides, dilations, groups. */
static void conv_on_onednn_matches_naive(void **state) {
    (void)state;
    const conv_case_t cases[] = {
        {2, 8, 4, 4, 16, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, "Relu"},   /* digits CNN */
        {2, 1, 9, 9, 4, 3, 3, 2, 2, 1, 1, 1, {1, 1, 1, 1}, NULL, NULL},      /* stride 2 */
        {1, 2, 9, 9, 4, 3, 3, 1, 1, 2, 2, 1, {2, 2, 2, 2}, NULL, "Relu"},    /* dilation 2 */
        {2, 6, 7, 5, 9, 3, 2, 1, 2, 1, 1, 3, {1, 0, 1, 1}, NULL, "LeakyRelu"},  /* groups */
        {1, 16, 6, 6, 8, 1, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) check_case(&cases[i]);
}

/* ---- Gemm ---- */

typedef struct {
    int64_t k, n;
    int trans_b;
    int bias_rank;            /* 0: no C, 1: [N], 2: [1,N] */
    const char *act;          /* NULL, "Relu", "Sigmoid" */
} gemm_case_t;

/* Serialized model of Gemm(x [M,K] symbolic M, B, C) [-> act] -> y. */
static void *gemm_build(const gemm_case_t *c, const float *w, const float *b, size_t *len) {
    int64_t xd[2] = {1, c->k}, yd[2] = {1, c->n};
    int64_t wd[2] = {c->trans_b ? c->n : c->k, c->trans_b ? c->k : c->n};
    int64_t bd[2] = {1, c->n};
    Onnx__TensorShapeProto__Dimension *dx[2], *dy[2];
    Onnx__ValueInfoProto *vin = value("x", 2, xd, dx), *vout = value("y", 2, yd, dy);
    /* the batch dimension symbolic: one graph for every M */
    dx[0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    dx[0]->dim_param = "batch";
    dy[0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    dy[0]->dim_param = "batch";
    Onnx__TensorProto *tw = tensor("B", 2, wd, w, (size_t)(c->k * c->n));
    Onnx__TensorProto *tb = tensor("C", c->bias_rank, c->bias_rank == 1 ? bd + 1 : bd, b,
                                   (size_t)c->n);
    Onnx__AttributeProto tb_attr = ONNX__ATTRIBUTE_PROTO__INIT, *attrs[1] = {&tb_attr};
    tb_attr.name = "transB";
    tb_attr.has_type = 1;
    tb_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    tb_attr.has_i = 1;
    tb_attr.i = c->trans_b;
    char *gin[3] = {"x", "B", "C"}, *gout[1] = {c->act ? "h" : "y"};
    char *ain[1] = {"h"}, *aout[1] = {"y"};
    Onnx__NodeProto gemm = ONNX__NODE_PROTO__INIT, act = ONNX__NODE_PROTO__INIT;
    gemm.name = "gemm";
    gemm.op_type = "Gemm";
    gemm.n_input = c->bias_rank ? 3 : 2;
    gemm.input = gin;
    gemm.n_output = 1;
    gemm.output = gout;
    gemm.n_attribute = 1;
    gemm.attribute = attrs;
    act.name = "act";
    act.op_type = (char *)(c->act ? c->act : "Relu");
    act.n_input = 1;
    act.input = ain;
    act.n_output = 1;
    act.output = aout;
    Onnx__NodeProto *nodes[2] = {&gemm, &act};
    Onnx__TensorProto *inits[2] = {tw, tb};
    Onnx__ValueInfoProto *ins[1] = {vin}, *outs[1] = {vout};
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "g";
    g.n_node = c->act ? 2 : 1;
    g.node = nodes;
    g.n_initializer = c->bias_rank ? 2 : 1;
    g.initializer = inits;
    g.n_input = 1;
    g.input = ins;
    g.n_output = 1;
    g.output = outs;
    Onnx__OperatorSetIdProto op = ONNX__OPERATOR_SET_ID_PROTO__INIT, *ops[1] = {&op};
    op.domain = "";
    op.has_version = 1;
    op.version = 13;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1;
    m.ir_version = 8;
    m.n_opset_import = 1;
    m.opset_import = ops;
    m.graph = &g;
    *len = onnx__model_proto__get_packed_size(&m);
    void *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&m, buf);
    dx[0]->value_case = dy[0]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    free(tw);
    free(tb);
    value_free(vin);
    value_free(vout);
    return buf;
}

static void gemm_case(const gemm_case_t *c) {
    uint32_t seed = 777;
    size_t nw = (size_t)(c->k * c->n);
    float *w = malloc(nw * 4), *b = malloc((size_t)c->n * 4);
    assert_true(w && b);
    for (size_t i = 0; i < nw; i++) w[i] = frand(&seed);
    for (int64_t i = 0; i < c->n; i++) b[i] = frand(&seed);
    size_t len;
    void *blob = gemm_build(c, w, b, &len);
    aas_onnx_t *g;
    char why[512];
    if (aas_onnx_load(blob, len, &g, why, sizeof(why))) fail_msg("load: %s", why);
    for (int64_t m = 1; m <= 40; m++) {
        float *x = malloc((size_t)(m * c->k) * 4), *want = malloc((size_t)(m * c->n) * 4);
        assert_true(x && want);
        for (int64_t i = 0; i < m * c->k; i++) x[i] = frand(&seed);
        for (int64_t r = 0; r < m; r++)
            for (int64_t j = 0; j < c->n; j++) {
                double acc = c->bias_rank ? b[j] : 0.0;
                for (int64_t kk = 0; kk < c->k; kk++)
                    acc += (double)x[r * c->k + kk] *
                           w[c->trans_b ? j * c->k + kk : kk * c->n + j];
                float v = (float)acc;
                if (c->act && !strcmp(c->act, "Relu")) v = v > 0 ? v : 0;
                if (c->act && !strcmp(c->act, "Sigmoid")) v = 1.0f / (1.0f + expf(-v));
                want[r * c->n + j] = v;
            }
        aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {m, c->k},
                                .data = x, .nbytes = (size_t)(m * c->k) * 4};
        const aas_onnx_tensor_t *out;
        if (aas_onnx_run(g, &in, 1, &out, 1, why, sizeof(why))) fail_msg("run: %s", why);
        assert_int_equal(out->dims[0], m);
        assert_int_equal(out->dims[1], c->n);
        const float *y = out->data;
        for (int64_t i = 0; i < m * c->n; i++)
            if (!(fabsf(y[i] - want[i]) <= 1e-4f + 1e-4f * fabsf(want[i])))
                fail_msg("k=%lld n=%lld transB=%d bias rank %d %s, %lld rows: element %lld "
                         "is %g, want %g", (long long)c->k, (long long)c->n, c->trans_b,
                         c->bias_rank, c->act ? c->act : "-", (long long)m, (long long)i,
                         (double)y[i], (double)want[i]);
        /* Up to 32 rows (gemm_small), a row alone (the gemv) gives the
         * same bits as in the batch: dynamic batching never changes a
         * job's answer there. */
        if (m >= 2 && m <= 32) {
            float *rows = malloc((size_t)(2 * c->n) * 4);
            assert_non_null(rows);
            memcpy(rows, y, (size_t)c->n * 4);
            memcpy(rows + c->n, y + (m - 1) * c->n, (size_t)c->n * 4);
            for (int h = 0; h < 2; h++) {
                int64_t r = h ? m - 1 : 0;
                aas_onnx_tensor_t one = {.dtype = AAS_ONNX_FLOAT, .rank = 2, .dims = {1, c->k},
                                         .data = x + r * c->k, .nbytes = (size_t)c->k * 4};
                if (aas_onnx_run(g, &one, 1, &out, 1, why, sizeof(why)))
                    fail_msg("run: %s", why);
                if (memcmp(out->data, rows + h * c->n, (size_t)c->n * 4))
                    fail_msg("k=%lld n=%lld: row %lld of %lld rows alone differs from it "
                             "in the batch", (long long)c->k, (long long)c->n, (long long)r,
                             (long long)m);
            }
            free(rows);
        }
        free(x);
        free(want);
    }
    aas_onnx_destroy(g);
    free(blob);
    free(w);
    free(b);
}

static void gemm_at_every_batch_matches_naive(void **state) {
    (void)state;
    const gemm_case_t cases[] = {
        {64, 10, 1, 1, NULL},          /* a digits classifier head */
        {33, 17, 1, 1, "Relu"},        /* N past a pair of panels, odd K */
        {5, 40, 0, 2, "Sigmoid"},      /* B not transposed, C [1,N] */
        {100, 8, 1, 0, "Relu"},        /* no bias, one panel */
        {1, 3, 0, 1, NULL},
        {20, 150, 1, 1, "Relu"},       /* one row: two whole groups of 4 panel pairs, one part */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) gemm_case(&cases[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_with_few_input_channels_matches_naive),
        cmocka_unit_test(conv_on_onednn_matches_naive),
        cmocka_unit_test(gemm_at_every_batch_matches_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
