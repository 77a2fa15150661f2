/*
 * bench_kernel.c - the forward pass the worker runs, against what it is made
 * of (issue 7, docs/precision.md, docs/performance.md).  One command:
 *
 *     build/bench/bench_kernel            # from the source root
 *
 * 1. Kernel: GFLOP/s of a 784-512-512-10 MLP (relu, relu, softmax; random
 *    weights) at batch 1, 8, 64, 256 and 1 and 2 OpenMP threads (set in
 *    process with omp_set_num_threads, the pool oneDNN and dnnl_sgemm run
 *    on), for
 *      aas_f32    aas_model_infer at f32 (the worker's batched forward)
 *      onednn_ip  a bare oneDNN inner_product chain at the same shapes:
 *                 primitives built and weights reordered to the layout they
 *                 want before timing, relu fused, softmax primitive
 *      sgemm      dnnl_sgemm per layer, bias + relu and softmax in a C loop
 *      naive      a C triple loop (dot products), the same epilogue
 *      aas_bf16 / aas_int8   aas_model_infer after aas_model_set_precision
 *    Each figure is the best of --reps timed runs of at least --min-ms
 *    each, the implementations' runs interleaved (on a shared machine the
 *    best run is the least disturbed one).  GFLOP/s counts the three matrix products only (2 x rows x
 *    668,672 multiply-adds a row).  Also: aas_f32 as a share of onednn_ip,
 *    and bf16 and int8 against f32.
 * 2. Buckets: time of the bare oneDNN chain at 33 rows exact, at the bucket
 *    aas_model_infer uses for 33 (40) and at 64, and aas_model_infer on 33.
 * 3. Digits: a 64-128-128-10 MLP trained with common/train.h on
 *    data/digits.csv.gz (rows with index % 5 == 0 held out, as
 *    bench_train_digits), then its held-out accuracy through aas_model_infer
 *    at f32, bf16 and int8: points lost against f32, per seed and mean.
 *
 * Prints tables, then one `RESULT bench=kernel ...` line per figure.  Not a
 * test; the machine should be otherwise idle for figures worth quoting.
 */
#include <dnnl.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digits.h"
#include "model.h"
#include "train.h"

#define N_LAYERS 3
static const int64_t dims[N_LAYERS + 1] = {784, 512, 512, 10};
#define MAX_ROWS 256

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what, const char *why) {
    fprintf(stderr, "bench_kernel: %s: %s\n", what, why);
    exit(1);
}

#define DNN(call)                                                             \
    do {                                                                      \
        dnnl_status_t st_ = (call);                                           \
        if (st_ != dnnl_success) {                                            \
            fprintf(stderr, "bench_kernel: %s: oneDNN status %d\n", #call,    \
                    (int)st_);                                                \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

static uint64_t rng_state = 88172645463325252ull;
static float rng_unit(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- the network, shared by every implementation ---- */

typedef struct {
    float *w[N_LAYERS], *b[N_LAYERS]; /* w: out x in, row-major */
    float *x;                         /* MAX_ROWS x 784 inputs */
    float *y;                         /* MAX_ROWS x 10 outputs */
    float *act[2];                    /* MAX_ROWS x 512 */
    double flop_per_row;
} net_t;

static void net_init(net_t *n) {
    n->flop_per_row = 0;
    for (int i = 0; i < N_LAYERS; i++) {
        int64_t in = dims[i], out = dims[i + 1];
        n->w[i] = malloc((size_t)(in * out) * sizeof(float));
        n->b[i] = malloc((size_t)out * sizeof(float));
        if (!n->w[i] || !n->b[i]) die("malloc", "out of memory");
        float scale = (float)sqrt(3.0 / (double)in);
        for (int64_t k = 0; k < in * out; k++) n->w[i][k] = scale * rng_unit();
        for (int64_t k = 0; k < out; k++) n->b[i][k] = 0.1f * rng_unit();
        n->flop_per_row += 2.0 * (double)(in * out);
    }
    n->x = malloc(MAX_ROWS * 784 * sizeof(float));
    n->y = malloc(MAX_ROWS * 10 * sizeof(float));
    n->act[0] = malloc(MAX_ROWS * 512 * sizeof(float));
    n->act[1] = malloc(MAX_ROWS * 512 * sizeof(float));
    if (!n->x || !n->y || !n->act[0] || !n->act[1]) die("malloc", "out of memory");
    for (int k = 0; k < MAX_ROWS * 784; k++) n->x[k] = rng_unit();
}

static aas_model_t *net_model(const net_t *n) {
    aas_mlp_layer_t layers[N_LAYERS];
    for (int i = 0; i < N_LAYERS; i++)
        layers[i] = (aas_mlp_layer_t){dims[i], dims[i + 1],
                                      i + 1 < N_LAYERS ? AAS_ACT_RELU : AAS_ACT_SOFTMAX,
                                      n->w[i], n->b[i]};
    void *blob = NULL;
    size_t len = 0;
    char why[512] = "";
    aas_model_t *m = NULL;
    if (aas_mlp_serialize(layers, N_LAYERS, NULL, 0, &blob, &len, why, sizeof(why)) ||
        aas_model_load(blob, len, &m, why, sizeof(why)))
        die("model", why);
    free(blob);
    return m;
}

/* The epilogue the non-oneDNN chains share: bias, relu or softmax. */
static void epilogue(float *y, int64_t rows, int64_t out, const float *b, int last) {
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * out;
        for (int64_t o = 0; o < out; o++) {
            float v = row[o] + b[o];
            row[o] = last || v > 0.0f ? v : 0.0f;
        }
        if (!last) continue;
        float mx = row[0], sum = 0.0f;
        for (int64_t o = 1; o < out; o++) mx = row[o] > mx ? row[o] : mx;
        for (int64_t o = 0; o < out; o++) sum += (row[o] = expf(row[o] - mx));
        for (int64_t o = 0; o < out; o++) row[o] /= sum;
    }
}

/* ---- the implementations: one forward pass of `rows` rows ---- */

typedef struct {
    net_t *net;
    aas_model_t *model;                 /* aas_* */
    int64_t rows;
    /* onednn_ip */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_primitive_t ip[N_LAYERS], softmax;
    dnnl_memory_t src[N_LAYERS], wts[N_LAYERS], bias[N_LAYERS], dst[N_LAYERS];
} ctx_t;

static void run_aas(ctx_t *c) {
    char why[512] = "";
    if (aas_model_infer(c->model, c->net->x, c->rows, c->net->y, why, sizeof(why)))
        die("aas_model_infer", why);
}

static void run_onednn(ctx_t *c) {
    for (int i = 0; i < N_LAYERS; i++) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, c->src[i]},
                                   {DNNL_ARG_WEIGHTS, c->wts[i]},
                                   {DNNL_ARG_BIAS, c->bias[i]},
                                   {DNNL_ARG_DST, c->dst[i]}};
        DNN(dnnl_primitive_execute(c->ip[i], c->stream, 4, args));
    }
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, c->dst[N_LAYERS - 1]},
                               {DNNL_ARG_DST, c->dst[N_LAYERS - 1]}};
    DNN(dnnl_primitive_execute(c->softmax, c->stream, 2, args));
    DNN(dnnl_stream_wait(c->stream));
}

static void run_sgemm(ctx_t *c) {
    const float *x = c->net->x;
    for (int i = 0; i < N_LAYERS; i++) {
        int last = i + 1 == N_LAYERS;
        float *y = last ? c->net->y : c->net->act[i % 2];
        /* Row-major Y[rows x out] = X[rows x in] . W^T, W out x in. */
        DNN(dnnl_sgemm('N', 'T', c->rows, dims[i + 1], dims[i], 1.0f, x, dims[i],
                       c->net->w[i], dims[i], 0.0f, y, dims[i + 1]));
        epilogue(y, c->rows, dims[i + 1], c->net->b[i], last);
        x = y;
    }
}

static void run_naive(ctx_t *c) {
    const float *x = c->net->x;
    for (int i = 0; i < N_LAYERS; i++) {
        int last = i + 1 == N_LAYERS;
        int64_t in = dims[i], out = dims[i + 1];
        float *y = last ? c->net->y : c->net->act[i % 2];
        const float *w = c->net->w[i];
        for (int64_t r = 0; r < c->rows; r++)
            for (int64_t o = 0; o < out; o++) {
                float acc = 0.0f;
                for (int64_t k = 0; k < in; k++) acc += x[r * in + k] * w[o * in + k];
                y[r * out + o] = acc;
            }
        epilogue(y, c->rows, out, c->net->b[i], last);
        x = y;
    }
}

/* The bare oneDNN chain for `rows`: everything built and the weights
 * reordered before any timing. */
static void onednn_build(ctx_t *c, int64_t rows) {
    if (!c->engine) {
        DNN(dnnl_engine_create(&c->engine, dnnl_cpu, 0));
        DNN(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags));
    }
    for (int i = 0; i < N_LAYERS; i++) {
        int64_t in = dims[i], out = dims[i + 1];
        dnnl_memory_desc_t s, w_any, w_plain, b, d;
        dnnl_dims_t sd = {rows, in}, wd = {out, in}, bd = {out}, dd = {rows, out};
        DNN(dnnl_memory_desc_init_by_tag(&s, 2, sd, dnnl_f32, dnnl_nc));
        DNN(dnnl_memory_desc_init_by_tag(&w_any, 2, wd, dnnl_f32, dnnl_format_tag_any));
        DNN(dnnl_memory_desc_init_by_tag(&w_plain, 2, wd, dnnl_f32, dnnl_oi));
        DNN(dnnl_memory_desc_init_by_tag(&b, 1, bd, dnnl_f32, dnnl_x));
        DNN(dnnl_memory_desc_init_by_tag(&d, 2, dd, dnnl_f32, dnnl_nc));
        dnnl_inner_product_desc_t ipd;
        DNN(dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, &s, &w_any, &b,
                                                 &d));
        dnnl_primitive_attr_t attr = NULL;
        DNN(dnnl_primitive_attr_create(&attr));
        if (i + 1 < N_LAYERS) {
            dnnl_post_ops_t po;
            DNN(dnnl_post_ops_create(&po));
            DNN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
            DNN(dnnl_primitive_attr_set_post_ops(attr, po));
            dnnl_post_ops_destroy(po);
        }
        dnnl_primitive_desc_t pd;
        DNN(dnnl_primitive_desc_create(&pd, &ipd, attr, c->engine, NULL));
        dnnl_primitive_attr_destroy(attr);
        DNN(dnnl_primitive_create(&c->ip[i], pd));
        const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        dnnl_memory_t plain;
        DNN(dnnl_memory_create(&plain, &w_plain, c->engine, c->net->w[i]));
        DNN(dnnl_memory_create(&c->wts[i], want, c->engine, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd;
        dnnl_primitive_t reorder;
        DNN(dnnl_reorder_primitive_desc_create(&rpd, &w_plain, c->engine, want, c->engine, NULL));
        DNN(dnnl_primitive_create(&reorder, rpd));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, c->wts[i]}};
        DNN(dnnl_primitive_execute(reorder, c->stream, 2, rargs));
        DNN(dnnl_stream_wait(c->stream));
        dnnl_primitive_destroy(reorder);
        dnnl_primitive_desc_destroy(rpd);
        dnnl_memory_destroy(plain);
        dnnl_primitive_desc_destroy(pd);
        void *src = i == 0 ? (void *)c->net->x : c->net->act[(i - 1) % 2];
        void *dst = i + 1 == N_LAYERS ? (void *)c->net->y : c->net->act[i % 2];
        DNN(dnnl_memory_create(&c->src[i], &s, c->engine, src));
        DNN(dnnl_memory_create(&c->bias[i], &b, c->engine, c->net->b[i]));
        DNN(dnnl_memory_create(&c->dst[i], &d, c->engine, dst));
        if (i + 1 == N_LAYERS) {
            dnnl_softmax_desc_t smd;
            dnnl_primitive_desc_t spd;
            DNN(dnnl_softmax_forward_desc_init(&smd, dnnl_forward_inference, &d, 1));
            DNN(dnnl_primitive_desc_create(&spd, &smd, NULL, c->engine, NULL));
            DNN(dnnl_primitive_create(&c->softmax, spd));
            dnnl_primitive_desc_destroy(spd);
        }
    }
    c->rows = rows;
}

static void onednn_free(ctx_t *c) {
    for (int i = 0; i < N_LAYERS; i++) {
        dnnl_primitive_destroy(c->ip[i]);
        dnnl_memory_destroy(c->src[i]);
        dnnl_memory_destroy(c->wts[i]);
        dnnl_memory_destroy(c->bias[i]);
        dnnl_memory_destroy(c->dst[i]);
    }
    dnnl_primitive_destroy(c->softmax);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    c->stream = NULL;
    c->engine = NULL;
}

/* ---- timing ---- */

static int opt_reps = 5;
static double opt_min_s = 0.1;

/* Calls of fn that take about opt_min_s (after one warm-up call). */
static long calibrate(void (*fn)(ctx_t *), ctx_t *c) {
    fn(c);
    double t0 = now_s();
    fn(c);
    double one = now_s() - t0;
    return one > 0 ? (long)(opt_min_s / one) + 1 : 1000;
}

/* Seconds per call over one run of `iters` calls. */
static double timed_run(void (*fn)(ctx_t *), ctx_t *c, long iters) {
    double t0 = now_s();
    for (long k = 0; k < iters; k++) fn(c);
    return (now_s() - t0) / (double)iters;
}

/* Best of opt_reps runs of each of n implementations, the runs interleaved
 * (impl 0, 1, ..., n-1, then again) so that a neighbour's load on a shared
 * machine hits them alike; the best run is the one least disturbed. */
static void time_all(int n, void (*const *fns)(ctx_t *), ctx_t *const *ctxs, double *best) {
    long iters[16];
    for (int k = 0; k < n; k++) {
        iters[k] = calibrate(fns[k], ctxs[k]);
        best[k] = INFINITY;
    }
    for (int r = 0; r < opt_reps; r++)
        for (int k = 0; k < n; k++) {
            double t = timed_run(fns[k], ctxs[k], iters[k]);
            best[k] = t < best[k] ? t : best[k];
        }
}

/* ---- digits ---- */



static double accuracy(aas_model_t *m, const float *x, const int32_t *y, int64_t rows) {
    static float p[DIGITS_ROWS * 10];
    char why[512] = "";
    if (aas_model_infer(m, x, rows, p, why, sizeof(why))) die("digits infer", why);
    int64_t ok = 0;
    for (int64_t r = 0; r < rows; r++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (p[r * 10 + k] > p[r * 10 + best]) best = k;
        ok += best == y[r];
    }
    return (double)ok / (double)rows;
}

static void digits(const char *path, int seeds, const char *hidden_list, int threads) {
    char hidden[64]; /* "128,128" -> "128-128", as in 64-128-128-10 */
    snprintf(hidden, sizeof(hidden), "%s", hidden_list);
    for (char *p = hidden; *p; p++)
        if (*p == ',') *p = '-';
    static float x[DIGITS_ROWS * DIGITS_DIM], xtr[DIGITS_ROWS * DIGITS_DIM],
        xte[DIGITS_ROWS * DIGITS_DIM];
    static int32_t y[DIGITS_ROWS], ytr[DIGITS_ROWS], yte[DIGITS_ROWS];
    if (bench_digits_load(path, x, y) != DIGITS_ROWS) {
        fprintf(stderr, "bench_kernel: cannot read %d rows from %s (--data)\n", DIGITS_ROWS,
                path);
        exit(1);
    }
    int64_t ntr = 0, nte = 0;
    for (int i = 0; i < DIGITS_ROWS; i++) {
        if (i % 5 == 0) {
            memcpy(xte + nte * DIGITS_DIM, x + i * DIGITS_DIM, sizeof(float) * DIGITS_DIM);
            yte[nte++] = y[i];
        } else {
            memcpy(xtr + ntr * DIGITS_DIM, x + i * DIGITS_DIM, sizeof(float) * DIGITS_DIM);
            ytr[ntr++] = y[i];
        }
    }
    omp_set_num_threads(threads);
    printf("\n## Digits: held-out accuracy of a trained 64-%s-10 MLP through aas_model_infer\n"
           "(%lld train rows, %lld held out: index %% 5 == 0; adam, 40 epochs, batch 32)\n\n",
           hidden, (long long)ntr, (long long)nte);
    printf("| seed | f32 | bf16 | int8 | bf16 lost (points) | int8 lost (points) |\n"
           "|---:|---:|---:|---:|---:|---:|\n");
    double sum[3] = {0, 0, 0};
    for (int seed = 1; seed <= seeds; seed++) {
        aas_train_params_t p;
        aas_train_params_default(&p);
        char why[512] = "", seedtxt[16];
        snprintf(seedtxt, sizeof(seedtxt), "%d", seed);
        const char *kv[][2] = {{"hidden", hidden_list}, {"epochs", "40"},
                               {"batch_size", "32"},    {"optimizer", "adam"},
                               {"learning_rate", "0.003"}, {"scale", "0.0625"},
                               {"seed", seedtxt},       {"validation_fraction", "0"}};
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
            if (aas_train_params_set(&p, kv[i][0], kv[i][1], why, sizeof(why)))
                die("train params", why);
        aas_train_net_t *net = NULL;
        aas_train_result_t r;
        void *blob = NULL;
        size_t len = 0;
        aas_model_t *m = NULL;
        if (aas_train_net_new(&p, DIGITS_DIM, 10, &net, why, sizeof(why)) ||
            aas_train_fit(net, xtr, ytr, ntr, NULL, NULL, &r, why, sizeof(why)))
            die("train", why);
        aas_train_result_free(&r);
        if (aas_train_net_export(net, &blob, &len, why, sizeof(why)) ||
            aas_model_load(blob, len, &m, why, sizeof(why)))
            die("export", why);
        free(blob);
        aas_train_net_destroy(net);
        double acc[3];
        for (int pr = 0; pr < 3; pr++) {
            /* a precision this CPU cannot run (said above) counts as NaN */
            if (aas_model_set_precision(m, (aas_precision_t)pr, why, sizeof(why))) {
                if (!pr) die("set_precision", why);
                acc[pr] = NAN;
            } else {
                acc[pr] = accuracy(m, xte, yte, nte);
            }
            sum[pr] += acc[pr];
        }
        aas_model_destroy(m);
        printf("| %d | %.2f %% | %.2f %% | %.2f %% | %+.2f | %+.2f |\n", seed, 100 * acc[0],
               100 * acc[1], 100 * acc[2], 100 * (acc[0] - acc[1]), 100 * (acc[0] - acc[2]));
        for (int pr = 0; pr < 3; pr++)
            printf("RESULT bench=kernel section=digits mlp=64-%s-10 seed=%d precision=%s "
                   "held_out=%lld accuracy=%.4f points_lost=%.2f\n",
                   hidden, seed, aas_precision_name((aas_precision_t)pr), (long long)nte,
                   acc[pr], 100 * (acc[0] - acc[pr]));
    }
    printf("| mean | %.2f %% | %.2f %% | %.2f %% | %+.2f | %+.2f |\n", 100 * sum[0] / seeds,
           100 * sum[1] / seeds, 100 * sum[2] / seeds, 100 * (sum[0] - sum[1]) / seeds,
           100 * (sum[0] - sum[2]) / seeds);
    for (int pr = 1; pr < 3; pr++)
        printf("RESULT bench=kernel section=digits_mean mlp=64-%s-10 seeds=%d precision=%s "
               "mean_accuracy=%.4f f32_mean_accuracy=%.4f points_lost=%.2f\n",
               hidden, seeds, aas_precision_name((aas_precision_t)pr), sum[pr] / seeds,
               sum[0] / seeds, 100 * (sum[0] - sum[pr]) / seeds);
}

/* ---- main ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_kernel [options]\n"
            "  --threads LIST   OpenMP thread counts          (default 1,2)\n"
            "  --reps N         timed runs, best reported     (default 5)\n"
            "  --min-ms N       length of one timed run       (default 100)\n"
            "  --data PATH      digits.csv.gz                 (default data/digits.csv.gz)\n"
            "  --seeds N        digits models trained; 0 skips (default 3)\n"
            "  --hidden LIST    digits hidden widths          (default 128,128)\n"
            "  --help           this text\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                         {"reps", required_argument, NULL, 'r'},
                                         {"min-ms", required_argument, NULL, 'm'},
                                         {"data", required_argument, NULL, 'D'},
                                         {"seeds", required_argument, NULL, 's'},
                                         {"hidden", required_argument, NULL, 'H'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *threads_list = "1,2", *data = "data/digits.csv.gz", *hidden = "128,128";
    int seeds = 3, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': threads_list = optarg; break;
        case 'r': opt_reps = atoi(optarg); break;
        case 'm': opt_min_s = atof(optarg) / 1000.0; break;
        case 'D': data = optarg; break;
        case 's': seeds = atoi(optarg); break;
        case 'H': hidden = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int threads[8], n_threads = 0;
    for (const char *p = threads_list; *p && n_threads < 8;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > 1024) {
            usage(stderr);
            return 2;
        }
        threads[n_threads++] = (int)t;
        p = *end == ',' ? end + 1 : end;
    }
    if (optind != argc || opt_reps < 1 || opt_reps > 64 || opt_min_s <= 0 || seeds < 0 ||
        seeds > 100 || n_threads == 0) {
        usage(stderr);
        return 2;
    }

    net_t net;
    net_init(&net);
    /* One model per precision, so that no timing pays for a switch. */
    aas_model_t *models[3];
    int have[3] = {1, 1, 1};
    char why[512] = "";
    for (int p = 0; p < 3; p++) {
        models[p] = net_model(&net);
        if (p && aas_model_set_precision(models[p], (aas_precision_t)p, why, sizeof(why))) {
            fprintf(stderr, "bench_kernel: %s unavailable: %s\n",
                    aas_precision_name((aas_precision_t)p), why);
            have[p] = 0;
        }
    }
    const dnnl_version_t *v = dnnl_version();
    printf("# bench_kernel: 784-512-512-10 MLP (relu, relu, softmax), random weights\n"
           "oneDNN %d.%d.%d, CPU ISA as oneDNN sees it: 0x%x; GFLOP/s of the best of %d "
           "interleaved runs of >= %.0f ms each\n\n",
           v->major, v->minor, v->patch, (unsigned)dnnl_get_effective_cpu_isa(), opt_reps,
           opt_min_s * 1e3);
    printf("| threads | batch | aas_f32 | onednn_ip | aas/onednn | sgemm | naive | aas_bf16 | "
           "aas_int8 | bf16/f32 | int8/f32 |\n"
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    static const int64_t batches[] = {1, 8, 64, 256};
    static const char *names[] = {"aas_f32", "onednn_ip", "sgemm", "naive", "aas_bf16",
                                  "aas_int8"};
    for (int ti = 0; ti < n_threads; ti++) {
        omp_set_num_threads(threads[ti]);
        for (size_t bi = 0; bi < sizeof(batches) / sizeof(*batches); bi++) {
            int64_t rows = batches[bi];
            ctx_t f32 = {.net = &net, .model = models[0], .rows = rows};
            ctx_t bf16 = {.net = &net, .model = models[1], .rows = rows};
            ctx_t int8 = {.net = &net, .model = models[2], .rows = rows};
            ctx_t dnn = {.net = &net, .rows = rows};
            onednn_build(&dnn, rows);
            void (*const fns[6])(ctx_t *) = {run_aas, run_onednn, run_sgemm,
                                             run_naive, run_aas, run_aas};
            ctx_t *const ctxs[6] = {&f32, &dnn, &f32, &f32, &bf16, &int8};
            double sec[6];
            time_all(have[2] ? 6 : have[1] ? 5 : 4, fns, ctxs, sec);
            for (int p = 1; p <= 2; p++)
                if (!have[p]) sec[3 + p] = NAN;
            onednn_free(&dnn);
            double gf[6];
            for (int k = 0; k < 6; k++) gf[k] = net.flop_per_row * (double)rows / sec[k] * 1e-9;
            printf("| %d | %lld | %.1f | %.1f | %.0f %% | %.1f | %.1f | %.1f | %.1f | %.2fx | "
                   "%.2fx |\n",
                   threads[ti], (long long)rows, gf[0], gf[1], 100 * gf[0] / gf[1], gf[2],
                   gf[3], gf[4], gf[5], sec[0] / sec[4], sec[0] / sec[5]);
            fflush(stdout);
            for (int k = 0; k < 6; k++)
                printf("RESULT bench=kernel section=kernel impl=%s threads=%d batch=%lld "
                       "us_per_call=%.2f gflops=%.2f\n",
                       names[k], threads[ti], (long long)rows, sec[k] * 1e6, gf[k]);
            printf("RESULT bench=kernel section=ratio threads=%d batch=%lld aas_vs_onednn=%.3f "
                   "bf16_vs_f32=%.3f int8_vs_f32=%.3f\n",
                   threads[ti], (long long)rows, gf[0] / gf[1], sec[0] / sec[4],
                   sec[0] / sec[5]);
        }
    }

    /* Buckets: what padding 33 rows costs. */
    omp_set_num_threads(threads[0]);
    printf("\n## Buckets: 33 rows (%d thread%s), microseconds per forward pass\n\n"
           "| onednn_ip exact 33 | onednn_ip 40 (aas bucket) | onednn_ip 64 (power of 2) | "
           "aas_f32 on 33 |\n|---:|---:|---:|---:|\n",
           threads[0], threads[0] == 1 ? "" : "s");
    ctx_t d33 = {.net = &net}, d40 = {.net = &net}, d64 = {.net = &net};
    ctx_t a33 = {.net = &net, .model = models[0], .rows = 33};
    onednn_build(&d33, 33);
    onednn_build(&d40, 40);
    onednn_build(&d64, 64);
    void (*const bfns[4])(ctx_t *) = {run_onednn, run_onednn, run_onednn, run_aas};
    ctx_t *const bctx[4] = {&d33, &d40, &d64, &a33};
    double bs[4];
    time_all(4, bfns, bctx, bs);
    onednn_free(&d33);
    onednn_free(&d40);
    onednn_free(&d64);
    printf("| %.1f | %.1f | %.1f | %.1f |\n", bs[0] * 1e6, bs[1] * 1e6, bs[2] * 1e6,
           bs[3] * 1e6);
    printf("RESULT bench=kernel section=buckets threads=%d rows=33 onednn_exact_us=%.2f "
           "onednn_40_us=%.2f onednn_64_us=%.2f aas_us=%.2f\n",
           threads[0], bs[0] * 1e6, bs[1] * 1e6, bs[2] * 1e6, bs[3] * 1e6);
    for (int p = 0; p < 3; p++) aas_model_destroy(models[p]);

    if (seeds > 0) digits(data, seeds, hidden, threads[0]);
    return 0;
}
