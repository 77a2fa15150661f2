/* harness_fleet.c - a fleet for integration tests; see harness_fleet.h. */
#include "harness_fleet.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HID 128

static uint64_t aas_fleet_rng = 0x9E3779B97F4A7C15ULL;

float aas_fleet_frand(void) {
    aas_fleet_rng ^= aas_fleet_rng << 13;
    aas_fleet_rng ^= aas_fleet_rng >> 7;
    aas_fleet_rng ^= aas_fleet_rng << 17;
    return (float)((aas_fleet_rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void *aas_fleet_model_blob(size_t *len) {
    static float w1[HID * AAS_FLEET_IN], b1[HID], w2[HID * HID], b2[HID],
        w3[AAS_FLEET_OUT * HID], b3[AAS_FLEET_OUT];
    float *all[] = {w1, b1, w2, b2, w3, b3};
    size_t sizes[] = {HID * AAS_FLEET_IN, HID, HID * HID, HID, AAS_FLEET_OUT * HID,
                      AAS_FLEET_OUT};
    for (int a = 0; a < 6; a++)
        for (size_t i = 0; i < sizes[a]; i++) all[a][i] = aas_fleet_frand() * 0.2f;
    aas_mlp_layer_t layers[] = {{AAS_FLEET_IN, HID, AAS_ACT_RELU, w1, b1},
                                {HID, HID, AAS_ACT_TANH, w2, b2},
                                {HID, AAS_FLEET_OUT, AAS_ACT_SOFTMAX, w3, b3}};
    const char *labels[] = {"zero", "one", "two", "three", "four",
                            "five", "six", "seven", "eight", "nine"};
    void *blob = NULL;
    char why[256];
    if (aas_mlp_serialize(layers, 3, labels, 10, &blob, len, why, sizeof(why))) {
        fprintf(stderr, "fleet: model: %s\n", why);
        return NULL;
    }
    return blob;
}

int aas_fleet_start_worker(aas_fleet_t *f, int i) {
    char bin[512], id[64];
    snprintf(bin, sizeof(bin), "%s/worker/aas-worker", AAS_BIN_DIR);
    snprintf(id, sizeof(id), "worker.id=fleet-w%d", i);
    char log[sizeof(f->logs[i])];
    snprintf(log, sizeof(log), "%.400s/worker%d.log", f->dir, i);
    memcpy(f->logs[i], log, sizeof(log));
    if (f->worker_password[0])
        setenv("AAS_REDIS_PASSWORD", f->worker_password, 1);
    else
        unsetenv("AAS_REDIS_PASSWORD");
    char *argv[32] = {bin, "-X", f->redis_arg, "-X", f->brokers_arg, "-X", id};
    int n = 7;
    for (int k = 0; f->worker_args && f->worker_args[k] && n < 30; k++)
        argv[n++] = (char *)f->worker_args[k];
    argv[n] = NULL;
    return aas_test_proc_start(&f->workers[i], bin, argv, f->logs[i]);
}

int aas_fleet_start(aas_fleet_t **out, int n_workers,
                    const char *const *worker_args) {
    return aas_fleet_start_auth(out, n_workers, worker_args, NULL);
}

int aas_fleet_start_auth(aas_fleet_t **out, int n_workers,
                         const char *const *worker_args, const char *password) {
    signal(SIGPIPE, SIG_IGN); /* hiredis: a dead Redis must give EPIPE */
    if (n_workers < 0 || n_workers > AAS_FLEET_MAX_WORKERS) return -1;
    aas_fleet_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    *out = f;
    f->n_workers = n_workers;
    f->worker_args = worker_args;
    snprintf(f->dir, sizeof(f->dir), "/tmp/aas-fleet-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    if (password)
        snprintf(f->worker_password, sizeof(f->worker_password), "%s", password);
    if (aas_test_redis_start(&f->redis, password)) return -1;
    const char *parts = getenv("AAS_TEST_PARTITIONS");
    if (aas_test_broker_start(&f->broker, AAS_BIN_DIR, f->dir, parts ? atoi(parts) : 4)) {
        fprintf(stderr, "fleet: broker did not start (logs in %s)\n", f->dir);
        return -1;
    }
    snprintf(f->redis_arg, sizeof(f->redis_arg), "redis.port=%d", f->redis.port);
    snprintf(f->brokers_arg, sizeof(f->brokers_arg), "kafka.bootstrap.servers=%s",
             f->broker.bootstrap);
    char why[512];
    if (aas_conf_new(aas_client_conf_defs, &f->conf) ||
        aas_conf_set_arg(f->conf, f->redis_arg, why, sizeof(why)) ||
        aas_conf_set_arg(f->conf, f->brokers_arg, why, sizeof(why)) ||
        (password && aas_conf_set(f->conf, "redis.password", password,
                                  AAS_CONF_SRC_ENV, why, sizeof(why))) ||
        aas_client_new(f->conf, &f->client, why, sizeof(why))) {
        fprintf(stderr, "fleet: client: %s\n", why);
        return -1;
    }
    size_t len;
    void *blob = aas_fleet_model_blob(&len);
    int64_t version;
    if (!blob ||
        aas_client_model_register(f->client, AAS_FLEET_MODEL, blob, len, NULL,
                                  &version, why, sizeof(why)) ||
        aas_model_load(blob, len, &f->model, why, sizeof(why))) {
        fprintf(stderr, "fleet: model: %s\n", why);
        free(blob);
        return -1;
    }
    free(blob);
    for (int i = 0; i < n_workers; i++)
        if (aas_fleet_start_worker(f, i)) return -1;
    return 0;
}

int aas_fleet_stop(aas_fleet_t *f) {
    if (!f) return 0;
    int rc = 0;
    for (int i = 0; i < f->n_workers; i++) {
        if (f->workers[i].pid <= 0) continue;
        int st = aas_test_proc_stop(&f->workers[i], 30000);
        if (st != 0) {
            fprintf(stderr, "fleet: worker %d exit status %d (log %s)\n", i, st,
                    f->logs[i]);
            rc = -1;
        }
    }
    aas_client_destroy(f->client);
    aas_conf_destroy(f->conf);
    aas_model_destroy(f->model);
    aas_test_broker_stop(&f->broker);
    aas_test_redis_stop(&f->redis);
    if (rc == 0 && f->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        if (system(cmd) != 0) fprintf(stderr, "fleet: could not remove %s\n", f->dir);
    }
    free(f);
    return rc;
}

int aas_fleet_submit(aas_fleet_t *f, const char *id, const char *model,
                     const float *x, int64_t rows, int64_t cols) {
    return aas_fleet_submit_as(f, id, model, NULL, x, rows, cols);
}

int aas_fleet_submit_as(aas_fleet_t *f, const char *id, const char *model, const char *tenant,
                        const float *x, int64_t rows, int64_t cols) {
    aas_tensor_t t;
    int64_t shape[2] = {rows, cols};
    if (aas_tensor_set_f32(&t, "x", x, 2, shape)) return -1;
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER,
                     .model = (char *)model, .inputs = &t, .n_inputs = 1,
                     .tenant = (char *)tenant};
    char why[512];
    aas_err_t err = aas_client_submit(f->client, &job, why, sizeof(why));
    aas_tensor_clear(&t);
    if (err) fprintf(stderr, "fleet: submit %s: %s\n", id, why);
    return err ? -1 : 0;
}

int aas_fleet_check(aas_fleet_t *f, const char *id, const float *x,
                    int64_t rows, int timeout_ms) {
    char why[512];
    aas_result_t res = {0};
    aas_err_t err = aas_client_wait(f->client, id, timeout_ms, &res, why, sizeof(why));
    if (err) {
        fprintf(stderr, "fleet: wait %s: %s\n", id, why);
        return -1;
    }
    int rc = 0;
    float expect[16 * AAS_FLEET_OUT];
    if (res.status != AAS_STATUS_SUCCEEDED) {
        fprintf(stderr, "fleet: job %s: %s %s\n", id, aas_status_name(res.status),
                res.error ? res.error : "");
        rc = -1;
    } else if (rows > 16 || res.n_outputs != 1 || res.outputs[0].rank != 2 ||
               res.outputs[0].shape[0] != rows ||
               res.outputs[0].shape[1] != AAS_FLEET_OUT ||
               (int64_t)res.n_predictions != rows) {
        fprintf(stderr, "fleet: job %s: wrong output shape\n", id);
        rc = -1;
    } else if (aas_model_infer(f->model, x, rows, expect, why, sizeof(why))) {
        fprintf(stderr, "fleet: local infer: %s\n", why);
        rc = -1;
    } else {
        const float *got = res.outputs[0].data;
        for (int64_t k = 0; k < rows * AAS_FLEET_OUT && !rc; k++) {
            float d = got[k] - expect[k];
            if (d < 0) d = -d;
            if (d > 1e-5f + 1e-4f * expect[k]) {
                fprintf(stderr, "fleet: job %s: output %lld is %g, expected %g\n", id,
                        (long long)k, (double)got[k], (double)expect[k]);
                rc = -1;
            }
        }
        for (int64_t r = 0; r < rows && !rc; r++) {
            int best = 0;
            for (int k = 1; k < AAS_FLEET_OUT; k++)
                if (expect[r * AAS_FLEET_OUT + k] > expect[r * AAS_FLEET_OUT + best])
                    best = k;
            if (res.predictions[r].label != best || !res.predictions[r].name) rc = -1;
        }
    }
    aas_result_clear(&res);
    aas_job_info_t info = {0};
    if (!rc && aas_client_status(f->client, id, &info, why, sizeof(why)) != AAS_ERR_OK) {
        fprintf(stderr, "fleet: status %s: %s\n", id, why);
        rc = -1;
    } else if (!rc && info.result_writes != 1) {
        fprintf(stderr, "fleet: job %s written %lld times\n", id,
                (long long)info.result_writes);
        rc = -1;
    }
    aas_job_info_clear(&info);
    return rc;
}

int aas_fleet_log_contains(aas_fleet_t *f, const char *needle) {
    for (int i = 0; i < f->n_workers; i++)
        if (aas_test_log_contains(f->logs[i], needle)) return 1;
    return 0;
}
