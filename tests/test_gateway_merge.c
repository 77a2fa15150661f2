/* test_gateway_merge.c - concurrent requests as one job and each request's
 * rows of its result (gateway/merge.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "merge.h"

#define W 3 /* row width */

typedef struct {
    aas_job_t job;
    aas_tensor_t in;
    float data[8 * W];
} req_t;

/* An inference of rows rows of width W, values base, base+1, ... */
static void req_make(req_t *r, const char *id, int rows, float base) {
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < rows * W; i++) r->data[i] = base + (float)i;
    r->in = (aas_tensor_t){.name = "input", .dtype = AAS_DTYPE_F32, .rank = 2,
                           .shape = {rows, W}, .data = r->data,
                           .nbytes = (size_t)rows * W * sizeof(float)};
    r->job = (aas_job_t){.id = (char *)id, .kind = AAS_JOB_INFER, .model = "m",
                         .model_version = "3", .inputs = &r->in, .n_inputs = 1,
                         .tenant = "t1", .priority = 0};
}

static void eligible_only_plain_fp32_rows(void **state) {
    (void)state;
    req_t r;
    req_make(&r, "a", 2, 0);
    assert_true(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
    assert_false(aas_gw_merge_eligible(&r.job, 1, 1 << 20));        /* too many rows */
    assert_false(aas_gw_merge_eligible(&r.job, 64, 2 * W * 4 - 1)); /* too many bytes */
    r.job.text = "hello";
    assert_false(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
    r.job.text = NULL;
    r.job.deadline_ms = 5;
    assert_false(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
    r.job.deadline_ms = 0;
    r.in.rank = 1;
    assert_false(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
    r.in.rank = 2;
    r.in.dtype = AAS_DTYPE_F64;
    assert_false(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
    r.in.dtype = AAS_DTYPE_F32;
    r.job.kind = AAS_JOB_TRAIN;
    assert_false(aas_gw_merge_eligible(&r.job, 64, 1 << 20));
}

static void compatible_needs_same_model_version_tenant_priority_width(void **state) {
    (void)state;
    req_t a, b;
    req_make(&a, "a", 1, 0);
    req_make(&b, "b", 2, 10);
    assert_true(aas_gw_merge_compatible(&a.job, &b.job));
    b.job.tenant = "t2";
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
    b.job.tenant = NULL;
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
    a.job.tenant = NULL;
    assert_true(aas_gw_merge_compatible(&a.job, &b.job)); /* both without a tenant */
    b.job.model_version = "4";
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
    b.job.model_version = "3";
    b.job.priority = 1;
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
    b.job.priority = 0;
    b.job.model = "other";
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
    b.job.model = "m";
    b.in.shape[1] = W + 1;
    assert_false(aas_gw_merge_compatible(&a.job, &b.job));
}

static void merge_concatenates_rows_in_order_under_the_first_id(void **state) {
    (void)state;
    req_t a, b, c;
    req_make(&a, "a", 1, 0);
    req_make(&b, "b", 3, 100);
    req_make(&c, "c", 2, 200);
    const aas_job_t *jobs[] = {&a.job, &b.job, &c.job};
    aas_job_t m;
    aas_tensor_t in;
    assert_int_equal(aas_gw_merge_jobs(jobs, 3, &m, &in), AAS_ERR_OK);
    assert_string_equal(m.id, "a");
    assert_string_equal(m.model, "m");
    assert_string_equal(m.model_version, "3");
    assert_string_equal(m.tenant, "t1");
    assert_ptr_equal(m.inputs, &in);
    assert_int_equal(m.n_inputs, 1);
    assert_int_equal(in.rank, 2);
    assert_int_equal(in.shape[0], 6);
    assert_int_equal(in.shape[1], W);
    assert_int_equal(in.nbytes, 6 * W * sizeof(float));
    assert_string_equal(in.name, "input");
    const float *d = in.data;
    assert_memory_equal(d, a.data, 1 * W * sizeof(float));
    assert_memory_equal(d + 1 * W, b.data, 3 * W * sizeof(float));
    assert_memory_equal(d + 4 * W, c.data, 2 * W * sizeof(float));
    free(in.data);
    assert_int_equal(aas_gw_merge_jobs(jobs, 0, &m, &in), AAS_ERR_INVAL);
}

/* A result of 6 rows: "probs" [6,2], "label" [6] (I64), 6 predictions. */
typedef struct {
    aas_result_t res;
    aas_tensor_t out[2];
    float probs[12];
    int64_t labels[6];
    aas_prediction_t pred[6];
} result_t;

static void result_make(result_t *r) {
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 12; i++) r->probs[i] = (float)i;
    for (int i = 0; i < 6; i++) {
        r->labels[i] = 10 + i;
        r->pred[i].label = 20 + i;
    }
    r->out[0] = (aas_tensor_t){.name = "probs", .dtype = AAS_DTYPE_F32, .rank = 2,
                               .shape = {6, 2}, .data = r->probs, .nbytes = sizeof(r->probs)};
    r->out[1] = (aas_tensor_t){.name = "label", .dtype = AAS_DTYPE_I64, .rank = 1,
                               .shape = {6}, .data = r->labels, .nbytes = sizeof(r->labels)};
    r->res = (aas_result_t){.job_id = "a", .status = AAS_STATUS_SUCCEEDED, .outputs = r->out,
                            .n_outputs = 2, .predictions = r->pred, .n_predictions = 6};
}

static void view_cuts_every_output_and_the_predictions(void **state) {
    (void)state;
    result_t r;
    result_make(&r);
    aas_result_t v;
    char why[256];
    assert_int_equal(aas_gw_merge_view(&r.res, 6, 1, 3, &v, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(v.job_id, "a");
    assert_int_equal(v.n_outputs, 2);
    assert_int_equal(v.outputs[0].shape[0], 3);
    assert_int_equal(v.outputs[0].shape[1], 2);
    assert_int_equal(v.outputs[0].nbytes, 3 * 2 * sizeof(float));
    assert_true(((const float *)v.outputs[0].data)[0] == 2.0f); /* row 1, column 0 */
    assert_int_equal(v.outputs[1].shape[0], 3);
    assert_int_equal(((const int64_t *)v.outputs[1].data)[0], 11);
    assert_int_equal(((const int64_t *)v.outputs[1].data)[2], 13);
    assert_int_equal(v.n_predictions, 3);
    assert_int_equal(v.predictions[0].label, 21);
    /* The result itself is untouched. */
    assert_int_equal(r.out[0].shape[0], 6);
    aas_gw_merge_view_clear(&v);
    assert_null(v.outputs);
}

static void view_of_a_job_of_its_own_is_the_result(void **state) {
    (void)state;
    result_t r;
    result_make(&r);
    r.out[1].shape[0] = 1; /* would not cut: not looked at for a whole view */
    aas_result_t v;
    char why[256];
    assert_int_equal(aas_gw_merge_view(&r.res, 6, 0, 6, &v, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(v.outputs[0].shape[0], 6);
    assert_int_equal(v.outputs[1].shape[0], 1);
    assert_ptr_equal(v.outputs[0].data, r.probs);
    assert_int_equal(v.n_predictions, 6);
    aas_gw_merge_view_clear(&v);
}

static void view_refuses_what_it_cannot_cut(void **state) {
    (void)state;
    result_t r;
    result_make(&r);
    aas_result_t v;
    char why[256];
    assert_int_equal(aas_gw_merge_view(&r.res, 6, 4, 3, &v, why, sizeof(why)), AAS_ERR_INVAL);
    aas_gw_merge_view_clear(&v);
    r.out[1].shape[0] = 1; /* an output without a row per input row */
    assert_int_equal(aas_gw_merge_view(&r.res, 6, 0, 2, &v, why, sizeof(why)), AAS_ERR_SHAPE);
    assert_non_null(strstr(why, "output 1"));
    aas_gw_merge_view_clear(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eligible_only_plain_fp32_rows),
        cmocka_unit_test(compatible_needs_same_model_version_tenant_priority_width),
        cmocka_unit_test(merge_concatenates_rows_in_order_under_the_first_id),
        cmocka_unit_test(view_cuts_every_output_and_the_predictions),
        cmocka_unit_test(view_of_a_job_of_its_own_is_the_result),
        cmocka_unit_test(view_refuses_what_it_cannot_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
