/*
 * bench_train_digits.c - held-out accuracy aas_train_fit() reaches on the
 * UCI digits, for the side-by-side with PyTorch (bench/run_train_bench.sh,
 * docs/performance.md).  Not a test: tests/test_train.c asserts >= 95 %.
 *
 * Split of data/README.md: row index % 5 == 0 held out (360 rows), the
 * other 1437 train, all of them (validation_fraction=0).  Inputs are the raw
 * pixels 0..16 with scale=0.0625.  One line per seed, then a summary:
 *
 *     bench_train_digits --hidden 64 --epochs 40 --learning-rate 0.003 --seeds 5
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits.h"
#include "train.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_train_digits [options]\n"
            "  --data PATH         digits.csv.gz          (default data/digits.csv.gz)\n"
            "  --hidden LIST       hidden widths          (default 64)\n"
            "  --epochs N          epochs                 (default 40)\n"
            "  --batch-size N      rows per batch         (default 32)\n"
            "  --optimizer NAME    adam | sgd             (default adam)\n"
            "  --learning-rate X   0: optimizer default   (default 0.003)\n"
            "  --seeds N           seeds 1..N, one run each (default 1)\n"
            "  --threads N         OpenMP threads; 0: as OMP_NUM_THREADS (default 0)\n"
            "  --help              this text\n");
}


int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'D'},
        {"hidden", required_argument, NULL, 'H'},
        {"epochs", required_argument, NULL, 'e'},
        {"batch-size", required_argument, NULL, 'b'},
        {"optimizer", required_argument, NULL, 'o'},
        {"learning-rate", required_argument, NULL, 'l'},
        {"seeds", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *data = "data/digits.csv.gz", *hidden = "64", *epochs = "40",
               *batch = "32", *opt = "adam", *lr = "0.003", *threads = "0";
    int seeds = 1, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'D': data = optarg; break;
        case 'H': hidden = optarg; break;
        case 'e': epochs = optarg; break;
        case 'b': batch = optarg; break;
        case 'o': opt = optarg; break;
        case 'l': lr = optarg; break;
        case 's': seeds = atoi(optarg); break;
        case 't': threads = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || seeds < 1 || seeds > 1000) {
        usage(stderr);
        return 2;
    }
    static float x[DIGITS_ROWS * DIGITS_DIM], xtr[DIGITS_ROWS * DIGITS_DIM],
        xte[DIGITS_ROWS * DIGITS_DIM];
    static int32_t y[DIGITS_ROWS], ytr[DIGITS_ROWS], yte[DIGITS_ROWS];
    if (bench_digits_load(data, x, y) != DIGITS_ROWS) {
        fprintf(stderr, "bench_train_digits: cannot read %d rows from %s\n",
                DIGITS_ROWS, data);
        return 1;
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
    double sum = 0, lo = 1, hi = 0;
    for (int seed = 1; seed <= seeds; seed++) {
        aas_train_params_t p;
        aas_train_params_default(&p);
        char why[256] = "", seedtxt[16];
        snprintf(seedtxt, sizeof(seedtxt), "%d", seed);
        const char *kv[][2] = {{"hidden", hidden},      {"epochs", epochs},
                               {"batch_size", batch},   {"optimizer", opt},
                               {"learning_rate", lr},   {"threads", threads},
                               {"scale", "0.0625"},     {"seed", seedtxt},
                               {"validation_fraction", "0"}};
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
            if (!strcmp(kv[i][0], "learning_rate") && !strcmp(kv[i][1], "0")) continue;
            if (aas_train_params_set(&p, kv[i][0], kv[i][1], why, sizeof(why))) {
                fprintf(stderr, "bench_train_digits: %s\n", why);
                return 2;
            }
        }
        aas_train_net_t *net = NULL;
        aas_train_result_t r;
        double loss, acc;
        aas_err_t err = aas_train_net_new(&p, DIGITS_DIM, 10, &net, why, sizeof(why));
        if (!err) err = aas_train_fit(net, xtr, ytr, ntr, NULL, NULL, &r, why, sizeof(why));
        if (!err) {
            err = aas_train_net_evaluate(net, xte, yte, nte, &loss, &acc, why, sizeof(why));
            if (!err)
                printf("aas digits mlp=64-%s-10 seed=%d epochs=%d batch_size=%s "
                       "optimizer=%s n_train=%lld n_test=%lld held_out_accuracy=%.4f "
                       "test_loss=%.4f samples_per_s=%.0f\n",
                       hidden, seed, (int)r.epochs_done, batch, opt, (long long)ntr,
                       (long long)nte, acc, loss, r.samples_per_s);
            aas_train_result_free(&r);
        }
        aas_train_net_destroy(net);
        if (err) {
            fprintf(stderr, "bench_train_digits: %s: %s\n", aas_err_name(err), why);
            return 1;
        }
        sum += acc;
        lo = acc < lo ? acc : lo;
        hi = acc > hi ? acc : hi;
    }
    printf("aas digits summary mlp=64-%s-10 seeds=%d mean_accuracy=%.4f "
           "min_accuracy=%.4f max_accuracy=%.4f\n",
           hidden, seeds, sum / seeds, lo, hi);
    return 0;
}
