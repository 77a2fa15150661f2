/*
 * test_onnx_fleet.c - ONNX models served by the real fleet (redis-server, a
 * broker, two aas-worker processes): every export in data/onnx/ (PyTorch MLPs
 * and CNNs at opset 13 and 17, scikit-learn LogisticRegression,
 * RandomForest, GradientBoosting and SVC) is registered with the client,
 * its 20 fixture rows are submitted as jobs (one job of all rows bound by
 * the input's name, and single-row jobs bound by position, so the worker
 * batches them), and each result read back from Redis must match ONNX
 * Runtime's outputs (data/onnx/<name>/test_data_set_0/output_K.pb) within
 * 1e-4 absolute, with the same predicted class per row (the graph's own
 * label for scikit-learn classifiers).  A tensor named for an input the
 * model does not have, and a tensor of the wrong row shape, end FAILED with
 * a reason that says so.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness_fleet.h"
#include "onnx.h"

#define TIMEOUT_MS 60000
#define MAX_OUT 4

typedef struct {
    char name[256];
    void *blob;
    size_t len;
    aas_onnx_tensor_t in;
    aas_onnx_tensor_t out[MAX_OUT];
    int n_out;
    char input_name[128];
} fixture_t;

static void *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    void *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static int decode(const char *path, aas_onnx_tensor_t *t) {
    size_t len;
    void *b = slurp(path, &len);
    char why[256];
    if (!b) return -1;
    aas_err_t err = aas_onnx_tensor_decode(b, len, t, NULL, why, sizeof(why));
    free(b);
    if (err) fprintf(stderr, "%s: %s\n", path, why);
    return err ? -1 : 0;
}

static int fixture_load(const char *name, fixture_t *fx) {
    char path[512];
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->name, sizeof(fx->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s/model.onnx", AAS_ONNX_FIXTURES_DIR, name);
    if (!(fx->blob = slurp(path, &fx->len))) return -1;
    snprintf(path, sizeof(path), "%s/%s/test_data_set_0/input_0.pb", AAS_ONNX_FIXTURES_DIR, name);
    if (decode(path, &fx->in)) return -1;
    for (int k = 0; k < MAX_OUT; k++) {
        snprintf(path, sizeof(path), "%s/%s/test_data_set_0/output_%d.pb",
                 AAS_ONNX_FIXTURES_DIR, name, k);
        FILE *fp = fopen(path, "rb");
        if (!fp) break;
        fclose(fp);
        if (decode(path, &fx->out[fx->n_out++])) return -1;
    }
    aas_onnx_t *g;
    char why[512];
    if (aas_onnx_load(fx->blob, fx->len, &g, why, sizeof(why))) {
        fprintf(stderr, "%s: %s\n", name, why);
        return -1;
    }
    aas_onnx_io_t io;
    aas_onnx_input(g, 0, &io);
    snprintf(fx->input_name, sizeof(fx->input_name), "%s", io.name);
    aas_onnx_destroy(g);
    return 0;
}

static void fixture_free(fixture_t *fx) {
    free(fx->blob);
    free(fx->in.data);
    for (int k = 0; k < fx->n_out; k++) free(fx->out[k].data);
}

/* The expected float output [rows, n] and int64 labels (or NULL). */
static const aas_onnx_tensor_t *expected(const fixture_t *fx, const aas_onnx_tensor_t **labels) {
    const aas_onnx_tensor_t *y = NULL;
    *labels = NULL;
    for (int k = 0; k < fx->n_out; k++) {
        if (!y && fx->out[k].dtype == AAS_ONNX_FLOAT) y = &fx->out[k];
        else if (!*labels && fx->out[k].dtype == AAS_ONNX_INT64) *labels = &fx->out[k];
    }
    return y;
}

static int submit(aas_fleet_t *f, const char *id, const char *model, const char *tname,
                  const float *x, int rank, const int64_t *shape) {
    aas_tensor_t t;
    if (aas_tensor_set_f32(&t, tname, x, rank, shape)) return -1;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = (char *)model,
                     .inputs = &t, .n_inputs = 1};
    char why[512];
    aas_err_t err = aas_client_submit(f->client, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    if (err) fprintf(stderr, "submit %s: %s\n", id, why);
    return err ? -1 : 0;
}

/* Rows [r0, r0 + n) of the result must match the fixture's. */
static int check(const fixture_t *fx, const aas_result_t *res, int64_t r0, int64_t n) {
    const aas_onnx_tensor_t *lab, *y = expected(fx, &lab);
    int64_t cols = y->dims[1];
    if (res->status != AAS_STATUS_SUCCEEDED) {
        fprintf(stderr, "%s: %s %s\n", fx->name, aas_status_name(res->status),
                res->error ? res->error : "");
        return -1;
    }
    if (res->n_outputs != 1 || res->outputs[0].shape[0] != n ||
        res->outputs[0].shape[1] != cols) {
        fprintf(stderr, "%s: output shape differs\n", fx->name);
        return -1;
    }
    const float *got = res->outputs[0].data, *want = (const float *)y->data + r0 * cols;
    double worst = 0;
    for (int64_t i = 0; i < n * cols; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= worst)) worst = d;
    }
    if (!(worst <= 1e-4)) {
        fprintf(stderr, "%s: max |aas - onnxruntime| = %g\n", fx->name, worst);
        return -1;
    }
    for (int64_t r = 0; r < n; r++) {
        int64_t want_cls = 0;
        if (lab) {
            want_cls = ((const int64_t *)lab->data)[r0 + r];
        } else {
            for (int64_t c = 1; c < cols; c++)
                if (want[r * cols + c] > want[r * cols + want_cls]) want_cls = c;
        }
        int64_t got_cls = 0;
        if (res->n_predictions) {
            got_cls = res->predictions[r].label;
        } else {
            for (int64_t c = 1; c < cols; c++)
                if (got[r * cols + c] > got[r * cols + got_cls]) got_cls = c;
        }
        if (lab && res->n_predictions) {
            /* the class name comes from the classifier's classlabels */
            char want_name[32];
            snprintf(want_name, sizeof(want_name), "%lld", (long long)want_cls);
            const char *nm = res->predictions[r].name;
            if (!nm || strcmp(nm, want_name)) {
                fprintf(stderr, "%s: row %lld class name '%s', want '%s'\n", fx->name,
                        (long long)(r0 + r), nm ? nm : "(none)", want_name);
                return -1;
            }
        }
        if (got_cls != want_cls) {
            fprintf(stderr, "%s: row %lld class %lld, onnxruntime %lld\n", fx->name,
                    (long long)(r0 + r), (long long)got_cls, (long long)want_cls);
            return -1;
        }
    }
    return 0;
}

static int wait_failed(aas_fleet_t *f, const char *id, const char *needle) {
    aas_result_t res = {0};
    char why[512];
    if (aas_client_wait(f->client, id, TIMEOUT_MS, &res, why, sizeof(why))) {
        fprintf(stderr, "wait %s: %s\n", id, why);
        return -1;
    }
    int ok = res.status == AAS_STATUS_FAILED && res.error && strstr(res.error, needle);
    if (!ok)
        fprintf(stderr, "%s: %s '%s' (wanted FAILED mentioning '%s')\n", id,
                aas_status_name(res.status), res.error ? res.error : "", needle);
    aas_result_clear(&res);
    return ok ? 0 : -1;
}

static void onnx_exports_served_by_the_fleet_match_onnxruntime(void **state) {
    aas_fleet_t *f = *state;
    DIR *d = opendir(AAS_ONNX_FIXTURES_DIR);
    assert_non_null(d);
    struct dirent *e;
    int n_fixtures = 0, failures = 0;
    while ((e = readdir(d))) {
        char probe[512];
        snprintf(probe, sizeof(probe), "%s/%s/model.onnx", AAS_ONNX_FIXTURES_DIR, e->d_name);
        FILE *pf = e->d_name[0] == '.' ? NULL : fopen(probe, "rb");
        if (!pf) continue;   /* README files */
        fclose(pf);
        fixture_t fx;
        if (fixture_load(e->d_name, &fx)) {
            fprintf(stderr, "cannot read fixture %s\n", e->d_name);
            failures++;
            fixture_free(&fx);
            continue;
        }
        n_fixtures++;
        char model[300], why[512], id[64];
        snprintf(model, sizeof(model), "onnx-%s", fx.name);
        int64_t version;
        assert_int_equal(aas_client_model_register(f->client, model, fx.blob, fx.len, NULL,
                                                   &version, why, sizeof(why)),
                         AAS_ERR_OK);
        int rank = fx.in.rank;
        int64_t rows = fx.in.dims[0], per = aas_onnx_numel(&fx.in) / rows;
        int64_t shape[AAS_ONNX_MAX_RANK];
        memcpy(shape, fx.in.dims, sizeof(int64_t) * (size_t)rank);
        /* all rows in one job, bound by the input's name */
        char all_id[64];
        assert_int_equal(aas_client_job_id(all_id, sizeof(all_id)), AAS_ERR_OK);
        assert_int_equal(submit(f, all_id, model, fx.input_name, fx.in.data, rank, shape), 0);
        /* one row per job, unnamed: batched by the worker */
        char ids[32][64];
        int64_t one = rows < 32 ? rows : 32;
        for (int64_t r = 0; r < one; r++) {
            assert_int_equal(aas_client_job_id(ids[r], sizeof(ids[r])), AAS_ERR_OK);
            shape[0] = 1;
            assert_int_equal(submit(f, ids[r], model, NULL, (const float *)fx.in.data + r * per,
                                    rank, shape), 0);
        }
        aas_result_t res = {0};
        assert_int_equal(aas_client_wait(f->client, all_id, TIMEOUT_MS, &res, why, sizeof(why)),
                         AAS_ERR_OK);
        int bad = check(&fx, &res, 0, rows);
        aas_result_clear(&res);
        for (int64_t r = 0; r < one; r++) {
            memset(&res, 0, sizeof(res));
            assert_int_equal(aas_client_wait(f->client, ids[r], TIMEOUT_MS, &res, why,
                                             sizeof(why)), AAS_ERR_OK);
            bad |= check(&fx, &res, r, 1);
            aas_result_clear(&res);
        }
        printf("  %-24s %s (%lld rows in one job + %lld single-row jobs)\n", fx.name,
               bad ? "MISMATCH" : "ok", (long long)rows, (long long)one);
        failures += bad != 0;
        if (!strcmp(fx.name, "torch-cnn-op17")) {
            /* wrong name, wrong row shape: FAILED with the reason */
            shape[0] = 1;
            assert_int_equal(aas_client_job_id(id, sizeof(id)), AAS_ERR_OK);
            assert_int_equal(submit(f, id, model, "pixels", fx.in.data, rank, shape), 0);
            assert_int_equal(wait_failed(f, id, "no input named 'pixels'"), 0);
            int64_t wrong[2] = {1, 63};
            assert_int_equal(aas_client_job_id(id, sizeof(id)), AAS_ERR_OK);
            assert_int_equal(submit(f, id, model, NULL, fx.in.data, 2, wrong), 0);
            assert_int_equal(wait_failed(f, id, "wants shape"), 0);
        }
        fixture_free(&fx);
    }
    closedir(d);
    printf("  %d fixtures served, %d mismatched\n", n_fixtures, failures);
    assert_true(n_fixtures >= 10);
    assert_int_equal(failures, 0);
}

static int setup(void **state) {
    aas_fleet_t *f = NULL;
    int rc = aas_fleet_start(&f, 2, NULL);
    *state = f;
    return rc;
}

static int teardown(void **state) {
    assert_int_equal(aas_fleet_stop(*state), 0);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(onnx_exports_served_by_the_fleet_match_onnxruntime,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
