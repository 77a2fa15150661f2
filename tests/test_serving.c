/*
 * test_serving.c - per-model serving options (precision, batch limits) from
 * the registry to the worker, on real components (redis-server, a broker,
 * one aas-worker with model.refresh.ms = 200, the real CLI):
 *  - the worker's model cache (in this process, on the fleet's Redis)
 *    returns the options, follows `model set` within refresh_ms for latest
 *    and pinned versions, reloads a model whose precision changed, and
 *    turns a corrupt option into a non-retriable error naming it;
 *  - `aas-producer model set --precision bf16`, then int8: the worker's
 *    jobs still SUCCEED with outputs near the f32 ones, and not bit-equal
 *    to them (the precision was applied); on a CPU without bf16 / VNNI
 *    they FAIL with the model module's reason instead;
 *  - a worker whose oneDNN is held to AVX2 (ONEDNN_MAX_CPU_ISA): bf16 and
 *    int8 jobs FAIL with the reason, f32 serves again after `model set`;
 *  - `opt:precision` corrupted by hand: jobs FAIL naming the field; `model
 *    set --precision default` makes them SUCCEED at f32 again, exactly.
 * The registry names and model.h's aas_precision_parse() must agree.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness_fleet.h"
#include "model_cache.h"

#define IN AAS_FLEET_IN
#define OUT AAS_FLEET_OUT
#define REFRESH_MS 200
#define N_JOBS 20

static const char *const worker_args[] = {"-X", "model.refresh.ms=200", NULL};

static int setup(void **state) {
    aas_fleet_t *f = NULL;
    int rc = aas_fleet_start(&f, 1, worker_args);
    *state = f;
    return rc;
}

/* A worker whose oneDNN is held to AVX2 (ONEDNN_MAX_CPU_ISA, inherited at
 * start only): a CPU without AVX-512 BF16 or VNNI. */
static int setup_avx2(void **state) {
    setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
    int rc = setup(state);
    unsetenv("ONEDNN_MAX_CPU_ISA");
    return rc;
}

static int teardown(void **state) {
    assert_int_equal(aas_fleet_stop(*state), 0);
    return 0;
}

/* Run aas-producer against the fleet; its exit code.  stdout to out_path
 * (or /dev/null), stderr to err_path (or inherited). */
static int producer(aas_fleet_t *f, const char *args, const char *out_path,
                    const char *err_path) {
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "%s/producer/aas-producer -X %s -X %s %s > %s%s%s",
             AAS_BIN_DIR, f->redis_arg, f->brokers_arg, args,
             out_path ? out_path : "/dev/null", err_path ? " 2> " : "",
             err_path ? err_path : "");
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int file_contains(const char *path, const char *needle) {
    char buf[8192] = "";
    FILE *fp = fopen(path, "r");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return strstr(buf, needle) != NULL;
}

/* A second copy of the fleet's model, from the registry. */
static aas_model_t *load_copy(aas_fleet_t *f) {
    void *blob = NULL;
    size_t len = 0;
    int64_t v;
    char why[512];
    aas_model_t *m = NULL;
    assert_int_equal(aas_store_model_get(aas_client_store(f->client), AAS_FLEET_MODEL,
                                         0, (size_t)64 << 20, &blob, &len, &v, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_model_load(blob, len, &m, why, sizeof(why)), AAS_ERR_OK);
    free(blob);
    return m;
}

static void set_opts(aas_fleet_t *f, const char *precision, int32_t rows,
                     int32_t delay_us) {
    aas_store_model_opts_t o;
    char why[512];
    aas_store_model_opts_init(&o);
    snprintf(o.precision, sizeof(o.precision), "%s", precision);
    o.batch_max_rows = rows;
    o.batch_max_delay_us = delay_us;
    assert_int_equal(aas_store_model_opts_set(aas_client_store(f->client),
                                              AAS_FLEET_MODEL, &o, AAS_STORE_OPT_ALL,
                                              why, sizeof(why)),
                     AAS_ERR_OK);
}

/* ---- the registry and the model module agree on names ------------------ */

static void registry_precisions_parse_in_the_model_module(void **state) {
    (void)state;
    static const struct { const char *name; aas_precision_t p; } known[] = {
        {"f32", AAS_PRECISION_F32}, {"bf16", AAS_PRECISION_BF16},
        {"int8", AAS_PRECISION_INT8}};
    aas_store_model_opts_t o;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        aas_precision_t p;
        aas_store_model_opts_init(&o);
        strcpy(o.precision, known[i].name);
        assert_int_equal(aas_store_model_opts_check(&o, AAS_STORE_OPT_ALL, NULL, 0),
                         AAS_ERR_OK);
        assert_int_equal(aas_precision_parse(known[i].name, &p), 0);
        assert_int_equal(p, known[i].p);
        assert_string_equal(aas_precision_name(p), known[i].name);
    }
}

/* ---- the worker's model cache ---------------------------------------- */

static void cache_returns_options_and_follows_changes(void **state) {
    aas_fleet_t *f = *state;
    aas_store_t *st = aas_client_store(f->client);
    aas_model_cache_conf_t conf = {.max_models = 4, .max_bytes = (size_t)1 << 30,
                                   .max_blob_bytes = (size_t)64 << 20,
                                   .refresh_ms = REFRESH_MS};
    aas_model_cache_t *c = NULL;
    aas_model_t *m = NULL;
    aas_model_serving_t s;
    int64_t v = 0;
    char why[512];
    assert_int_equal(aas_model_cache_new(&conf, &c), AAS_ERR_OK);

    /* Nothing set: f32, batch limits left to the worker. */
    assert_int_equal(aas_model_cache_get_serving(c, st, AAS_FLEET_MODEL, NULL, &m, &v,
                                                 &s, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(v, 1);
    assert_int_equal(s.precision, AAS_PRECISION_F32);
    assert_int_equal(s.batch_max_rows, -1);
    assert_int_equal(s.batch_max_delay_us, -1);

    /* Batch limits change within refresh_ms, for a pinned version too,
     * without reloading the model. */
    set_opts(f, "", 32, 500);
    usleep((REFRESH_MS + 50) * 1000);
    aas_model_t *m2 = NULL;
    assert_int_equal(aas_model_cache_get_serving(c, st, AAS_FLEET_MODEL, "1", &m2, &v,
                                                 &s, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_ptr_equal(m2, m);
    assert_int_equal(s.batch_max_rows, 32);
    assert_int_equal(s.batch_max_delay_us, 500);

    /* Precision: applied at (re)load; the model copy is a new one. */
    aas_model_t *local = load_copy(f);
    char local_why[512] = "";
    aas_err_t bf16 = aas_model_set_precision(local, AAS_PRECISION_BF16, local_why,
                                             sizeof(local_why));
    aas_model_destroy(local);
    set_opts(f, "bf16", 32, 500);
    usleep((REFRESH_MS + 50) * 1000);
    aas_err_t err = aas_model_cache_get_serving(c, st, AAS_FLEET_MODEL, NULL, &m2, &v,
                                                &s, why, sizeof(why));
    if (bf16 == AAS_ERR_OK) {
        assert_int_equal(err, AAS_ERR_OK);
        assert_int_equal(s.precision, AAS_PRECISION_BF16);
        float x[IN], y32[OUT], y16[OUT];
        for (int k = 0; k < IN; k++) x[k] = aas_fleet_frand();
        assert_int_equal(aas_model_infer(f->model, x, 1, y32, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(aas_model_infer(m2, x, 1, y16, why, sizeof(why)), AAS_ERR_OK);
        float dmax = 0;
        for (int k = 0; k < OUT; k++) {
            float d = y16[k] > y32[k] ? y16[k] - y32[k] : y32[k] - y16[k];
            if (d > dmax) dmax = d;
        }
        assert_true(dmax > 0);      /* bf16 really ran */
        assert_true(dmax < 0.05f);  /* and stayed close */
    } else {
        /* This CPU (or model) cannot: the model's jobs fail with the
         * model module's reason, and not as "retry later". */
        assert_int_equal(err, bf16);
        assert_false(aas_err_is_retriable(err));
        assert_non_null(strstr(why, local_why));
        assert_non_null(strstr(why, AAS_FLEET_MODEL));
        fprintf(stderr, "note: bf16 not available here: %s\n", local_why);
    }

    /* Corrupt in Redis: a non-retriable error naming field and value. */
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "HSET", "aas:model:{fleet-mlp}",
                                        "opt:precision", "fp8", NULL),
                     0);
    usleep((REFRESH_MS + 50) * 1000);
    err = aas_model_cache_get_serving(c, st, AAS_FLEET_MODEL, "1", &m2, &v, &s, why,
                                      sizeof(why));
    assert_int_equal(err, AAS_ERR_DECODE);
    assert_false(aas_err_is_retriable(err));
    assert_non_null(strstr(why, "opt:precision"));
    assert_non_null(strstr(why, "'fp8'"));

    /* Back to the default: served again, at f32. */
    set_opts(f, "", -1, -1);
    usleep((REFRESH_MS + 50) * 1000);
    assert_int_equal(aas_model_cache_get_serving(c, st, AAS_FLEET_MODEL, NULL, &m2, &v,
                                                 &s, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(s.precision, AAS_PRECISION_F32);
    assert_int_equal(s.batch_max_rows, -1);
    /* The old entry point still works and agrees. */
    aas_model_t *m3 = NULL;
    assert_int_equal(aas_model_cache_get(c, st, AAS_FLEET_MODEL, "latest", &m3, &v, why,
                                         sizeof(why)),
                     AAS_ERR_OK);
    assert_ptr_equal(m3, m2);
    aas_model_cache_destroy(c);
}

/* ---- through the worker ---------------------------------------------- */

/* n one-row jobs "<prefix>-<i>"; inputs kept in x. */
static void publish(aas_fleet_t *f, const char *prefix, float *x, int n) {
    char id[64], why[512];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < IN; k++) x[i * IN + k] = aas_fleet_frand();
        snprintf(id, sizeof(id), "%s-%d", prefix, i);
        assert_int_equal(aas_fleet_submit(f, id, AAS_FLEET_MODEL, x + i * IN, 1, IN), 0);
    }
    assert_int_equal(aas_client_flush(f->client, 60000, NULL, why, sizeof(why)),
                     AAS_ERR_OK);
}

/* Wait for job id: its status, outputs copied to y when SUCCEEDED, error
 * text to err_out. */
static aas_status_t wait_job(aas_fleet_t *f, const char *id, float *y, char *err_out,
                             size_t err_size) {
    char why[512];
    aas_result_t res = {0};
    assert_int_equal(aas_client_wait(f->client, id, 60000, &res, why, sizeof(why)),
                     AAS_ERR_OK);
    aas_status_t s = res.status;
    snprintf(err_out, err_size, "%s", res.error ? res.error : "");
    if (s == AAS_STATUS_SUCCEEDED) {
        assert_int_equal(res.n_outputs, 1);
        assert_int_equal(res.outputs[0].nbytes, OUT * sizeof(float));
        memcpy(y, res.outputs[0].data, OUT * sizeof(float));
    }
    aas_result_clear(&res);
    return s;
}

/* Jobs after `model set --precision <name>`: SUCCEEDED near the f32
 * outputs (and not equal to them: the precision was applied), or, where
 * this CPU cannot run it, FAILED with the model module's reason. */
static void serve_at(aas_fleet_t *f, const char *name, aas_precision_t p, float *x) {
    char id[64], err[1024], why[512], local_why[512] = "";
    float y[OUT], expect[OUT];
    aas_model_t *local = load_copy(f);
    aas_err_t can = aas_model_set_precision(local, p, local_why, sizeof(local_why));
    aas_model_destroy(local);
    publish(f, name, x, N_JOBS);
    float dmax = 0;
    for (int i = 0; i < N_JOBS; i++) {
        snprintf(id, sizeof(id), "%s-%d", name, i);
        aas_status_t s = wait_job(f, id, y, err, sizeof(err));
        if (can != AAS_ERR_OK) {
            assert_int_equal(s, AAS_STATUS_FAILED);
            if (!strstr(err, local_why)) fail_msg("job %s: error '%s'", id, err);
            continue;
        }
        if (s != AAS_STATUS_SUCCEEDED) fail_msg("job %s: %s", id, err);
        assert_int_equal(aas_model_infer(f->model, x + i * IN, 1, expect, why,
                                         sizeof(why)),
                         AAS_ERR_OK);
        for (int k = 0; k < OUT; k++) {
            float d = y[k] > expect[k] ? y[k] - expect[k] : expect[k] - y[k];
            if (d > dmax) dmax = d;
        }
    }
    if (can != AAS_ERR_OK) {
        fprintf(stderr, "note: %s not available here: %s\n", name, local_why);
        return;
    }
    fprintf(stderr, "%s vs f32: largest output difference %g over %d jobs\n", name,
            (double)dmax, N_JOBS);
    assert_true(dmax > 0);
    assert_true(dmax < 0.05f);
    char needle[64];
    snprintf(needle, sizeof(needle), "precision=%s", name);
    assert_true(aas_fleet_log_contains(f, needle));
}

static void worker_applies_model_set_and_fails_on_corrupt_precision(void **state) {
    aas_fleet_t *f = *state;
    static float x[N_JOBS * IN];
    char id[64], err[1024], out[600], errp[600];
    float y[OUT];
    snprintf(out, sizeof(out), "%.500s/serving.out", f->dir);
    snprintf(errp, sizeof(errp), "%.500s/serving.err", f->dir);

    /* bf16 through the CLI, as an operator would. */
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --precision bf16 "
                                 "--max-batch 16 --max-delay-us 200", out, NULL),
                     0);
    assert_true(file_contains(out, "precision=bf16 batch_max_rows=16 "
                                   "batch_max_delay_us=200"));
    assert_int_equal(producer(f, "model show " AAS_FLEET_MODEL, out, NULL), 0);
    assert_true(file_contains(out, "\"serving\":{\"precision\":\"bf16\","
                                   "\"batch_max_rows\":16,\"batch_max_delay_us\":200}"));
    /* Bad values: usage error, nothing changed. */
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --precision fp16", NULL,
                              errp),
                     2);
    assert_true(file_contains(errp, "'fp16' is not one of f32, bf16 or int8"));
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --max-batch 5000", NULL,
                              errp),
                     2);
    assert_true(file_contains(errp, "(1..4096)"));
    usleep((REFRESH_MS + 100) * 1000);

    serve_at(f, "bf16", AAS_PRECISION_BF16, x);
    /* int8 the same way (per-row activation scales: a coarser grid). */
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --precision int8", out,
                              NULL),
                     0);
    assert_true(file_contains(out, "precision=int8 batch_max_rows=16"));
    usleep((REFRESH_MS + 100) * 1000);
    serve_at(f, "int8", AAS_PRECISION_INT8, x);

    /* Corrupted by hand: every job FAILS naming the field and the value. */
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "HSET", "aas:model:{fleet-mlp}",
                                        "opt:precision", "fp8", NULL),
                     0);
    usleep((REFRESH_MS + 100) * 1000);
    assert_int_equal(producer(f, "model show " AAS_FLEET_MODEL, out, errp), 0);
    assert_true(file_contains(out, "'fp8'"));
    publish(f, "corrupt", x, 3);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "corrupt-%d", i);
        assert_int_equal(wait_job(f, id, y, err, sizeof(err)), AAS_STATUS_FAILED);
        if (!strstr(err, "opt:precision") || !strstr(err, "'fp8'"))
            fail_msg("job %s: error '%s'", id, err);
    }
    assert_true(aas_fleet_log_contains(f, "serving options unusable"));

    /* Fixed with the CLI: f32 again, outputs exactly as before. */
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --precision default "
                                 "--max-batch default --max-delay-us default", out, NULL),
                     0);
    assert_true(file_contains(out, "precision=f32 batch_max_rows=default "
                                   "batch_max_delay_us=default"));
    usleep((REFRESH_MS + 100) * 1000);
    publish(f, "fixed", x, N_JOBS);
    for (int i = 0; i < N_JOBS; i++) {
        snprintf(id, sizeof(id), "fixed-%d", i);
        assert_int_equal(aas_fleet_check(f, id, x + i * IN, 1, 60000), 0);
    }
}

static void worker_that_cannot_run_a_precision_fails_its_jobs_saying_why(void **state) {
    aas_fleet_t *f = *state;
    static float x[N_JOBS * IN];
    char id[64], err[1024];
    float y[OUT];
    static const char *const cases[][2] = {{"bf16", "bf16 needs"},
                                           {"int8", "int8 needs"}};
    for (size_t c = 0; c < 2; c++) {
        char args[128], prefix[32];
        snprintf(args, sizeof(args), "model set %s --precision %s", AAS_FLEET_MODEL,
                 cases[c][0]);
        assert_int_equal(producer(f, args, NULL, NULL), 0);
        usleep((REFRESH_MS + 100) * 1000);
        snprintf(prefix, sizeof(prefix), "no-%s", cases[c][0]);
        publish(f, prefix, x, 5);
        for (int i = 0; i < 5; i++) {
            snprintf(id, sizeof(id), "%s-%d", prefix, i);
            assert_int_equal(wait_job(f, id, y, err, sizeof(err)), AAS_STATUS_FAILED);
            if (!strstr(err, cases[c][1]) || !strstr(err, AAS_FLEET_MODEL))
                fail_msg("job %s: error '%s'", id, err);
            if (i == 0) fprintf(stderr, "job %s FAILED: %s\n", id, err);
        }
    }
    assert_true(aas_fleet_log_contains(f, "refused, its jobs fail"));
    /* Back to f32: the same worker serves the model again, exactly. */
    assert_int_equal(producer(f, "model set " AAS_FLEET_MODEL " --precision f32", NULL,
                              NULL),
                     0);
    usleep((REFRESH_MS + 100) * 1000);
    publish(f, "f32-again", x, N_JOBS);
    for (int i = 0; i < N_JOBS; i++) {
        snprintf(id, sizeof(id), "f32-again-%d", i);
        assert_int_equal(aas_fleet_check(f, id, x + i * IN, 1, 60000), 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry_precisions_parse_in_the_model_module),
        cmocka_unit_test_setup_teardown(cache_returns_options_and_follows_changes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            worker_applies_model_set_and_fails_on_corrupt_precision, setup, teardown),
        cmocka_unit_test_setup_teardown(
            worker_that_cannot_run_a_precision_fails_its_jobs_saying_why, setup_avx2,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
