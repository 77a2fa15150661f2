/*
 * bench_codec.c - what the codec costs a worker per job (issue 18): the
 * decode of a one-row job of 64 and of 784 FP32 inputs, and the encode of
 * its result (one 1x10 FP32 output tensor, one prediction), each through
 * the generic Avro C path (aas_codec_job_decode_generic,
 * aas_codec_result_encode_generic) and the direct one (aas_codec_job_decode,
 * aas_codec_result_encode: common/codec_direct.c).  Not a test; it prints
 * nanoseconds per operation: the median of several repeats, each timing
 * many operations, generic and direct repeats interleaved.
 *
 *   bench_codec [--iters N] [--repeats R]
 *
 * A decode includes aas_job_clear of what it returned and an encode the
 * free of its buffer: the whole cost to the caller.  Kafka and Redis are
 * not involved (bench_transport measures them).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "codec_int.h"

#define CB_MAX_REPEATS 64

static double cb_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cb_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One operation of a case; 0 on success. */
typedef int (*cb_op_fn)(void *arg);

typedef struct {
    aas_codec_t *codec;
    const void *msg;
    size_t len;
    const aas_result_t *res;
} cb_arg_t;

static int cb_decode_generic(void *arg) {
    cb_arg_t *a = arg;
    aas_job_t job;
    char why[256];
    if (aas_codec_job_decode_generic(a->codec, a->msg, a->len, NULL, &job, NULL, why,
                                     sizeof(why)))
        return -1;
    aas_job_clear(&job);
    return 0;
}

static int cb_decode_direct(void *arg) {
    cb_arg_t *a = arg;
    aas_job_t job;
    char why[256];
    if (aas_codec_job_decode(a->codec, a->msg, a->len, NULL, &job, NULL, why, sizeof(why)))
        return -1;
    aas_job_clear(&job);
    return 0;
}

static int cb_encode_generic(void *arg) {
    cb_arg_t *a = arg;
    void *buf;
    size_t len;
    char why[256];
    if (aas_codec_result_encode_generic(a->codec, a->res, &buf, &len, why, sizeof(why)))
        return -1;
    free(buf);
    return 0;
}

static int cb_encode_direct(void *arg) {
    cb_arg_t *a = arg;
    void *buf;
    size_t len;
    char why[256];
    if (aas_codec_result_encode(a->codec, a->res, &buf, &len, why, sizeof(why))) return -1;
    free(buf);
    return 0;
}

/* Median ns per op of generic and direct, repeats interleaved. */
static int cb_time(cb_op_fn generic, cb_op_fn direct, void *arg, int iters, int repeats,
                   double *gen_ns, double *dir_ns) {
    double g[CB_MAX_REPEATS], d[CB_MAX_REPEATS];
    for (int i = 0; i < iters / 10 + 1; i++) /* warm caches and the allocator */
        if (generic(arg) || direct(arg)) return -1;
    for (int r = 0; r < repeats; r++) {
        double t0 = cb_now_ns();
        for (int i = 0; i < iters; i++)
            if (generic(arg)) return -1;
        double t1 = cb_now_ns();
        for (int i = 0; i < iters; i++)
            if (direct(arg)) return -1;
        double t2 = cb_now_ns();
        g[r] = (t1 - t0) / iters;
        d[r] = (t2 - t1) / iters;
    }
    qsort(g, (size_t)repeats, sizeof(double), cb_cmp);
    qsort(d, (size_t)repeats, sizeof(double), cb_cmp);
    *gen_ns = g[repeats / 2];
    *dir_ns = d[repeats / 2];
    return 0;
}

/* A one-row FP32 job of dim inputs, as the C client sends it. */
static int cb_job_message(aas_codec_t *codec, int dim, void **msg, size_t *len) {
    aas_job_t job;
    memset(&job, 0, sizeof(job));
    float *x = malloc((size_t)dim * sizeof(float));
    if (!x) return -1;
    for (int i = 0; i < dim; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    int64_t shape[2] = {1, dim};
    aas_tensor_t t;
    char why[256];
    int rc = aas_tensor_set_f32(&t, NULL, x, 2, shape) == AAS_ERR_OK ? 0 : -1;
    free(x);
    if (rc) return -1;
    job.id = "0f8e6a52-9c1d-4a57-b2a4-5d3c8e1f7a90";
    job.kind = AAS_JOB_INFER;
    job.model = "mnist_mlp";
    job.inputs = &t;
    job.n_inputs = 1;
    job.submit_ms = 1764888000123;
    rc = aas_codec_job_encode(codec, &job, msg, len, why, sizeof(why)) ? -1 : 0;
    aas_tensor_clear(&t);
    if (rc) fprintf(stderr, "bench_codec: job encode: %s\n", why);
    return rc;
}

int main(int argc, char **argv) {
    int iters = 20000, repeats = 9;
    static const struct option opts[] = {{"iters", required_argument, NULL, 'n'},
                                         {"repeats", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "n:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': iters = atoi(optarg); break;
        case 'r': repeats = atoi(optarg); break;
        case 'h':
            printf("usage: bench_codec [options]\n"
                   "  -n, --iters N     operations per timed repeat  (default 20000)\n"
                   "  -r, --repeats R   repeats, median printed      (default 9, max %d)\n",
                   CB_MAX_REPEATS);
            return 0;
        default: return 2;
        }
    }
    if (iters < 1 || repeats < 1 || repeats > CB_MAX_REPEATS) {
        fprintf(stderr, "bench_codec: --iters >= 1, --repeats 1..%d\n", CB_MAX_REPEATS);
        return 2;
    }

    aas_codec_t *codec = NULL;
    char why[256];
    if (aas_codec_new(&codec, why, sizeof(why))) {
        fprintf(stderr, "bench_codec: %s\n", why);
        return 1;
    }
    int status = 0;
    printf("%-40s %8s %12s %12s %8s\n", "case", "bytes", "generic ns", "direct ns",
           "speedup");
    static const int dims[] = {64, 784};
    for (size_t i = 0; i < 2 && !status; i++) {
        cb_arg_t a = {codec, NULL, 0, NULL};
        void *msg = NULL;
        double g, d;
        char name[64];
        if (cb_job_message(codec, dims[i], &msg, &a.len)) {
            status = 1;
            break;
        }
        a.msg = msg;
        snprintf(name, sizeof(name), "job decode, 1x%d f32", dims[i]);
        if (cb_time(cb_decode_generic, cb_decode_direct, &a, iters, repeats, &g, &d)) {
            fprintf(stderr, "bench_codec: decode failed\n");
            status = 1;
        } else {
            printf("%-40s %8zu %12.0f %12.0f %7.2fx\n", name, a.len, g, d, g / d);
        }
        free(msg);
    }

    /* The result of such a job: 10 class probabilities, one prediction. */
    float probs[10] = {0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f, 0.07f, 0.08f, 0.09f, 0.55f};
    int64_t shape[2] = {1, 10};
    aas_result_t res;
    aas_prediction_t pred = {9, NULL, 0.55f};
    memset(&res, 0, sizeof(res));
    res.outputs = calloc(1, sizeof(*res.outputs));
    if (!status && res.outputs &&
        aas_tensor_set_f32(&res.outputs[0], NULL, probs, 2, shape) == AAS_ERR_OK) {
        cb_arg_t a = {codec, NULL, 0, &res};
        void *buf = NULL;
        size_t len = 0;
        double g, d;
        res.n_outputs = 1;
        res.job_id = "0f8e6a52-9c1d-4a57-b2a4-5d3c8e1f7a90";
        res.status = AAS_STATUS_SUCCEEDED;
        res.model = "mnist_mlp";
        res.model_version = "3";
        res.predictions = &pred;
        res.n_predictions = 1;
        res.timings.queue_ms = 3;
        res.timings.decode_us = 4;
        res.timings.compute_us = 21;
        res.timings.total_us = 30;
        res.worker_id = "worker-0";
        res.finished_ms = 1764888000160;
        if (aas_codec_result_encode(codec, &res, &buf, &len, why, sizeof(why)) ||
            cb_time(cb_encode_generic, cb_encode_direct, &a, iters, repeats, &g, &d)) {
            fprintf(stderr, "bench_codec: result encode failed\n");
            status = 1;
        } else {
            printf("%-40s %8zu %12.0f %12.0f %7.2fx\n", "result encode, 1x10 f32 + 1 pred",
                   len, g, d, g / d);
        }
        free(buf);
        aas_tensor_clear(&res.outputs[0]);
    } else if (!status) {
        fprintf(stderr, "bench_codec: out of memory\n");
        status = 1;
    }
    free(res.outputs);
    aas_codec_destroy(codec);
    return status;
}
