/*
 * bench_train.c - training throughput of aas_train_run() on synthetic data.
 *
 * Trains an MLP (dim - hidden... - classes) on random inputs whose class is
 * a fixed function of them, and prints the samples per second of batch work
 * (forward, backward, optimiser step; validation excluded) that the trainer
 * measures.  docs/training.md quotes its figures.  It does not check what
 * the model learns (tests/test_train.c does).
 *
 *     OMP_NUM_THREADS=1 bench_train --dim 784 --hidden 512,512 --classes 10
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_train [options]\n"
            "  --dim N           input features             (default 64)\n"
            "  --hidden LIST     hidden widths              (default 128,128)\n"
            "  --classes N       output classes             (default 10)\n"
            "  --rows N          training rows              (default 20000)\n"
            "  --epochs N        epochs                     (default 3)\n"
            "  --batch-size N    rows per batch             (default 64)\n"
            "  --optimizer NAME  adam | sgd                 (default adam)\n"
            "  --threads N       OpenMP threads; 0: as OMP_NUM_THREADS (default 0)\n"
            "  --help            this text\n");
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"dim", required_argument, NULL, 'd'},
        {"hidden", required_argument, NULL, 'H'},
        {"classes", required_argument, NULL, 'c'},
        {"rows", required_argument, NULL, 'n'},
        {"epochs", required_argument, NULL, 'e'},
        {"batch-size", required_argument, NULL, 'b'},
        {"optimizer", required_argument, NULL, 'o'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long long dim = 64, classes = 10, rows = 20000;
    const char *hidden = "128,128", *epochs = "3", *batch = "64", *opt = "adam",
               *threads = "0";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dim = atoll(optarg); break;
        case 'H': hidden = optarg; break;
        case 'c': classes = atoll(optarg); break;
        case 'n': rows = atoll(optarg); break;
        case 'e': epochs = optarg; break;
        case 'b': batch = optarg; break;
        case 'o': opt = optarg; break;
        case 't': threads = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || dim < 1 || dim > AAS_MLP_MAX_DIM || classes < 2 ||
        classes > AAS_MLP_MAX_DIM || rows < 1 || rows > 10000000) {
        fprintf(stderr, "bench_train: bad arguments (dim, classes or rows)\n");
        usage(stderr);
        return 2;
    }
    aas_train_params_t p;
    aas_train_params_default(&p);
    char why[256] = "";
    const char *kv[][2] = {{"hidden", hidden},     {"epochs", epochs},
                           {"batch_size", batch},  {"optimizer", opt},
                           {"threads", threads},   {"validation_fraction", "0"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (aas_train_params_set(&p, kv[i][0], kv[i][1], why, sizeof(why))) {
            fprintf(stderr, "bench_train: %s\n", why);
            return 2;
        }
    float *x = malloc((size_t)(rows * dim) * sizeof(float));
    int32_t *y = malloc((size_t)rows * sizeof(int32_t));
    if (!x || !y) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    uint64_t s = 88172645463325252ull; /* xorshift64 */
    /* Class: the largest of the features 0, 1, ... (mod classes), a rule
     * an MLP can learn. */
    for (long long i = 0; i < rows; i++) {
        long long best = 0;
        for (long long k = 0; k < dim; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            x[i * dim + k] = (float)((double)(s >> 11) / 9007199254740992.0);
            if (k < classes && x[i * dim + k] > x[i * dim + best]) best = k;
        }
        y[i] = (int32_t)(best % classes);
    }
    aas_train_result_t r;
    aas_err_t err = aas_train_run(&p, x, y, rows, dim, (int32_t)classes, NULL, NULL,
                                  &r, why, sizeof(why));
    if (err) {
        fprintf(stderr, "bench_train: %s: %s\n", aas_err_name(err), why);
        return 1;
    }
    const char *omp = getenv("OMP_NUM_THREADS");
    printf("mlp=%lld-%s-%lld rows=%lld epochs=%d batch_size=%s optimizer=%s "
           "threads=%s OMP_NUM_THREADS=%s samples_per_s=%.0f train_loss=%.4f "
           "elapsed_ms=%.0f\n",
           dim, hidden, classes, rows, (int)r.epochs_done, batch, opt, threads,
           omp ? omp : "unset", r.samples_per_s, r.train_loss, r.elapsed_ms);
    aas_train_result_free(&r);
    free(x);
    free(y);
    return 0;
}
