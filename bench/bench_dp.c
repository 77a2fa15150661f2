/*
 * bench_dp.c - data-parallel training's accuracy and cost, in one process
 * (common/train_dp.h): the digits data (data/README.md's split: every
 * fifth row held out), one worker's training (aas_train_run) against N
 * shards averaged each round (aas_train_dp_run, what N workers compute),
 * for N = 1, 2, 4, 8; held-out accuracy through the served model, the
 * bytes a round moves and the compute per step.  Prints figures; a
 * benchmark, not a test (docs/training.md#data-parallel-training).
 *
 * Usage: bench_dp [DIGITS_CSV_GZ] [--hidden H] [--epochs E] [--seeds S]
 *        bench_dp put-dataset NAME COPIES [DIGITS_CSV_GZ]
 *            store digits x COPIES (each copy's pixels jittered by +-1, seeded)
 *            as the v1 data set NAME (Redis from AAS_REDIS_*), the
 *            in-memory data a data-parallel job on the fleet reads
 *            (bench/run_dp_bench.sh)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "digits.h"
#include "model.h"
#include "train.h"
#include "train_dp.h"

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Held-out accuracy of a trained blob, served as the workers serve it. */
static double held_out(const aas_train_result_t *r, const float *x, const int32_t *y, int64_t n) {
    aas_model_t *m = NULL;
    char why[256];
    float *pr = malloc((size_t)n * 10 * sizeof(float));
    if (!pr || aas_model_load(r->blob, r->blob_len, &m, why, sizeof(why)) ||
        aas_model_infer(m, x, n, pr, why, sizeof(why))) {
        fprintf(stderr, "bench_dp: serve: %s\n", why);
        exit(1);
    }
    int64_t ok = 0;
    for (int64_t i = 0; i < n; i++) ok += argmax(pr + i * 10, 10) == y[i];
    aas_model_destroy(m);
    free(pr);
    return (double)ok / (double)n;
}

/* put-dataset NAME COPIES [PATH] */
static int put_dataset(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_dp put-dataset NAME COPIES [DIGITS_CSV_GZ]\n");
        return 2;
    }
    int copies = atoi(argv[3]);
    const char *path = argc > 4 ? argv[4] : "data/digits.csv.gz";
    if (copies < 1 || copies > 1000) {
        fprintf(stderr, "bench_dp: COPIES 1..1000\n");
        return 2;
    }
    float *x = malloc(DIGITS_ROWS * DIGITS_DIM * sizeof(float));
    int32_t *y = malloc(DIGITS_ROWS * sizeof(int32_t));
    int64_t n = (int64_t)DIGITS_ROWS * copies;
    float *bx = malloc((size_t)n * DIGITS_DIM * sizeof(float));
    int32_t *by = malloc((size_t)n * sizeof(int32_t));
    if (!x || !y || !bx || !by || bench_digits_load(path, x, y) != DIGITS_ROWS) {
        fprintf(stderr, "bench_dp: cannot read %s\n", path);
        return 1;
    }
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = i % DIGITS_ROWS;
        for (int k = 0; k < DIGITS_DIM; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            float v = x[r * DIGITS_DIM + k] + (i < DIGITS_ROWS ? 0.0f : (float)((int)(s >> 62) - 1));
            bx[i * DIGITS_DIM + k] = v < 0 ? 0 : v > 16 ? 16 : v;
        }
        by[i] = y[r];
    }
    aas_conf_t *conf = NULL;
    aas_client_t *c = NULL;
    char why[1024];
    if (aas_conf_new(aas_client_conf_defs, &conf) || aas_conf_load_env(conf, why, sizeof(why)) ||
        aas_client_new(conf, &c, why, sizeof(why)) ||
        aas_client_dataset_put(c, argv[2], bx, by, n, DIGITS_DIM, why, sizeof(why))) {
        fprintf(stderr, "bench_dp: %s\n", why);
        return 1;
    }
    printf("%s: %lld rows x %d (v1)\n", argv[2], (long long)n, DIGITS_DIM);
    aas_client_destroy(c);
    aas_conf_destroy(conf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "put-dataset")) return put_dataset(argc, argv);
    const char *path = "data/digits.csv.gz", *hidden = "64";
    int epochs = 40, seeds = 3, lr_scale = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = argv[++i];
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) seeds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lr-scale") && i + 1 < argc) {
            i++;
            lr_scale = !strcmp(argv[i], "linear") ? 2 : !strcmp(argv[i], "sqrt") ? 1 : 0;
        }
        else if (argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, "usage: bench_dp [DIGITS_CSV_GZ] [--hidden H] [--epochs E] "
                            "[--seeds S]\n");
            return 2;
        }
    }
    float *x = malloc(DIGITS_ROWS * DIGITS_DIM * sizeof(float));
    int32_t *y = malloc(DIGITS_ROWS * sizeof(int32_t));
    float *xtr = malloc(DIGITS_ROWS * DIGITS_DIM * sizeof(float));
    float *xte = malloc(DIGITS_ROWS * DIGITS_DIM * sizeof(float));
    int32_t *ytr = malloc(DIGITS_ROWS * sizeof(int32_t)), *yte = malloc(DIGITS_ROWS * sizeof(int32_t));
    if (!x || !y || !xtr || !xte || !ytr || !yte || bench_digits_load(path, x, y) != DIGITS_ROWS) {
        fprintf(stderr, "bench_dp: cannot read %s\n", path);
        return 1;
    }
    int64_t ntr = 0, nte = 0;
    for (int i = 0; i < DIGITS_ROWS; i++) {
        if (i % 5 == 0) {
            memcpy(xte + nte * DIGITS_DIM, x + i * DIGITS_DIM, DIGITS_DIM * sizeof(float));
            yte[nte++] = y[i];
        } else {
            memcpy(xtr + ntr * DIGITS_DIM, x + i * DIGITS_DIM, DIGITS_DIM * sizeof(float));
            ytr[ntr++] = y[i];
        }
    }
    printf("digits: %lld training rows (10%% of them validate), %lld held out; hidden %s, "
           "adam lr 0.003 (x N for N shards), batch 32, %d epochs = rounds, seeds 1..%d\n",
           (long long)ntr, (long long)nte, hidden, epochs, seeds);
    printf("%-10s %10s %10s %10s %12s %14s\n", "run", "held-out", "min", "max", "steps/shard",
           "bytes/epoch");
    size_t nparams = 0;
    {
        aas_train_params_t p;
        aas_train_net_t *net = NULL;
        char why[256];
        aas_train_params_default(&p);
        if (aas_train_params_set(&p, "hidden", hidden, why, sizeof(why)) ||
            aas_train_net_new(&p, DIGITS_DIM, 10, &net, why, sizeof(why))) {
            fprintf(stderr, "bench_dp: %s\n", why);
            return 1;
        }
        for (size_t i = 0; i < aas_train_net_layers(net); i++) {
            aas_train_layer_t l;
            if (!aas_train_net_layer(net, i, &l)) nparams += (size_t)(l.in * l.out + l.out);
        }
        aas_train_net_destroy(net);
    }
    int shards[] = {0, 1, 2, 4, 8, -2, -4, -8}; /* negative: sync gradient averaging */
    double base = 0;
    for (size_t si = 0; si < sizeof(shards) / sizeof(shards[0]); si++) {
        int n = shards[si];
        double sum = 0, lo = 1, hi = 0;
        size_t sbytes = 0;
        for (int seed = 1; seed <= seeds; seed++) {
            aas_train_params_t p;
            aas_train_params_default(&p);
            char why[256], sv[24], ev[24], lv[32];
            snprintf(sv, sizeof(sv), "%d", seed);
            /* dp scales the rate by N itself (linear); --lr-scale divides
             * that back out to show what the rule buys.  sync: one
             * worker with N x the batch and N x the rate is what averaging
             * the gradients of N shards of 32 rows every step computes. */
            int dpn = n > 0 ? n : -n;
            double lr = 0.003;
            if (n > 1 && lr_scale != 2) lr = 0.003 * (lr_scale == 1 ? sqrt(n) : 1) / n;
            if (n < 0) lr = 0.003 * dpn;
            char bv[24];
            snprintf(bv, sizeof(bv), "%d", 32 * (n < 0 ? dpn : 1));
            snprintf(lv, sizeof(lv), "%.6g", lr);
            snprintf(ev, sizeof(ev), "%d", epochs);
            const char *kv[][2] = {{"hidden", hidden}, {"learning_rate", lv}, {"batch_size", bv},
                                   {"epochs", ev}, {"scale", "0.0625"}, {"seed", sv},
                                   {"threads", "1"}};
            for (size_t k = 0; k < sizeof(kv) / sizeof(kv[0]); k++)
                if (aas_train_params_set(&p, kv[k][0], kv[k][1], why, sizeof(why))) {
                    fprintf(stderr, "bench_dp: %s\n", why);
                    return 1;
                }
            aas_train_result_t r;
            aas_err_t err = n > 0 ? aas_train_dp_run(&p, xtr, ytr, ntr, DIGITS_DIM, 10, n, &r, why,
                                                 sizeof(why))
                              : aas_train_run(&p, xtr, ytr, ntr, DIGITS_DIM, 10, NULL, NULL, &r,
                                              why, sizeof(why));
            if (err) {
                fprintf(stderr, "bench_dp: train: %s\n", why);
                return 1;
            }
            double a = held_out(&r, xte, yte, nte);
            sum += a;
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
            if (n > 0 && !sbytes) {
                aas_train_net_t *net = NULL;
                if (!aas_train_net_new(&p, DIGITS_DIM, 10, &net, why, sizeof(why)))
                    sbytes = aas_train_dp_state_bytes(net);
                aas_train_net_destroy(net);
            }
            aas_train_result_free(&r);
        }
        double mean = sum / seeds;
        if (!n) base = mean;
        int64_t n_train = ntr - (int64_t)floor(0.1 * (double)ntr);
        int64_t steps = (n_train / (n > 0 ? n : 1) + 32 * (n < 0 ? -n : 1) - 1) /
                        (32 * (n < 0 ? -n : 1));
        char name[32];
        snprintf(name, sizeof(name), n > 0 ? "dp N=%d" : n < 0 ? "sync N=%d" : "one worker",
                 n < 0 ? -n : n);
        /* sync: a gradient (the parameters' size) up and the parameters
         * down every step; dp: a state up and down every round. */
        printf("%-10s %9.2f%% %9.2f%% %9.2f%% %12lld %14zu", name, 100 * mean, 100 * lo,
               100 * hi, (long long)steps, n < 0 ? (size_t)steps * 2 * 4 * nparams : sbytes * 2);
        if (n) printf("   (%+.2f points)", 100 * (mean - base));
        printf("\n");
    }
    return 0;
}
