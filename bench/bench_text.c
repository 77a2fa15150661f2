/*
 * bench_text.c - text classifiers (issue 14, docs/text.md#measured): train
 * an AASTXT2 model on a TSV (label<TAB>text) with aas_text_train, then
 * report held-out accuracy on a second TSV, the training time, and the
 * serving cost of featurize + forward at batch 1 for a text of about N
 * characters (median of many runs, one thread).
 *
 *   bench_text TRAIN.tsv TEST.tsv [--param KEY=VALUE]... [--chars 200]
 *              [--parallelism N] [--save MODEL] [--json]
 *
 * --parallelism N trains as a data-parallel job of N shards computes it
 * (aas_text_dp_new + aas_train_dp_run_all, in one process: the same bytes
 * N workers produce; docs/training.md#data-parallel-training).
 *
 * bench/run_text_bench.sh runs it beside the scikit-learn reference
 * (bench/peers/sklearn_text.py) on the same split and cores.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#include "train_text.h"

typedef struct {
    char *buf;
    size_t len;
    char **text, **label;
    size_t *tlen, *llen, n, pos;
} rows_t;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int read_tsv(const char *path, rows_t *r) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    r->buf = malloc((size_t)n + 1);
    if (!r->buf || fread(r->buf, 1, (size_t)n, f) != (size_t)n) return -1;
    fclose(f);
    r->len = (size_t)n;
    size_t cap = 1024;
    r->text = malloc(cap * sizeof(char *));
    r->label = malloc(cap * sizeof(char *));
    r->tlen = malloc(cap * sizeof(size_t));
    r->llen = malloc(cap * sizeof(size_t));
    for (char *p = r->buf, *end = r->buf + n; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl : end;
        char *tab = memchr(p, '\t', (size_t)(e - p));
        if (tab && p[0] != '#') {
            if (r->n == cap) {
                cap *= 2;
                r->text = realloc(r->text, cap * sizeof(char *));
                r->label = realloc(r->label, cap * sizeof(char *));
                r->tlen = realloc(r->tlen, cap * sizeof(size_t));
                r->llen = realloc(r->llen, cap * sizeof(size_t));
            }
            r->label[r->n] = p;
            r->llen[r->n] = (size_t)(tab - p);
            r->text[r->n] = tab + 1;
            r->tlen[r->n] = (size_t)(e - tab - 1) - (e > tab + 1 && e[-1] == '\r');
            r->n++;
        }
        p = e + 1;
    }
    return 0;
}

static aas_err_t rd_rewind(void *o, uint64_t seed, char *e, size_t es) {
    (void)seed, (void)e, (void)es;
    ((rows_t *)o)->pos = 0;
    return AAS_ERR_OK;
}

static aas_err_t rd_next(void *o, const char **t, size_t *tl, const char **l, size_t *ll,
                         int *eof, char *e, size_t es) {
    (void)e, (void)es;
    rows_t *r = o;
    if (r->pos == r->n) {
        *eof = 1;
        return AAS_ERR_OK;
    }
    *eof = 0;
    *t = r->text[r->pos];
    *tl = r->tlen[r->pos];
    *l = r->label[r->pos];
    *ll = r->llen[r->pos];
    r->pos++;
    return AAS_ERR_OK;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_text TRAIN.tsv TEST.tsv [--param K=V]... [--chars N] "
                        "[--parallelism N] [--save FILE] [--json]\n");
        return 2;
    }
    rows_t tr = {0}, te = {0};
    if (read_tsv(argv[1], &tr) || read_tsv(argv[2], &te)) {
        fprintf(stderr, "bench_text: cannot read %s or %s\n", argv[1], argv[2]);
        return 1;
    }
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.validation_fraction = 0;
    int json = 0, chars = 200, shards = 0;
    const char *save = NULL;
    char why[512];
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--chars") && i + 1 < argc) chars = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--save") && i + 1 < argc) save = argv[++i];
        else if (!strcmp(argv[i], "--parallelism") && i + 1 < argc) shards = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--param") && i + 1 < argc) {
            char *kv = argv[++i], *eq = strchr(kv, '=');
            if (!eq) return 2;
            *eq = '\0';
            if (aas_text_train_params_set(&p, kv, eq + 1, why, sizeof(why))) {
                fprintf(stderr, "bench_text: %s\n", why);
                return 2;
            }
        } else {
            fprintf(stderr, "bench_text: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    aas_text_reader_t rd = {rd_rewind, rd_next, &tr};
    aas_train_result_t res;
    double t0 = now_ms();
    aas_train_dp_engine_t *dp = NULL;
    if (shards > 0 ? aas_text_dp_new(&p, &rd, shards, -1, &dp, why, sizeof(why)) ||
                         aas_train_dp_run_all(dp, p.epochs, &res, why, sizeof(why))
                   : aas_text_train(&p, &rd, NULL, NULL, &res, why, sizeof(why))) {
        fprintf(stderr, "bench_text: training: %s\n", why);
        return 1;
    }
    double train_ms = now_ms() - t0;
    aas_train_dp_engine_destroy(dp);
    if (save) {
        FILE *f = fopen(save, "wb");
        if (!f || fwrite(res.blob, 1, res.blob_len, f) != res.blob_len || fclose(f)) {
            fprintf(stderr, "bench_text: cannot write %s\n", save);
            return 1;
        }
    }
    aas_model_t *m = NULL;
    if (aas_model_load(res.blob, res.blob_len, &m, why, sizeof(why))) {
        fprintf(stderr, "bench_text: load: %s\n", why);
        return 1;
    }
    int64_t c = aas_model_output_dim(m), right = 0, failed = 0;
    float *out = malloc((size_t)c * sizeof(float));
    for (size_t i = 0; i < te.n; i++) {
        const char *t = te.text[i];
        if (aas_model_infer_text(m, &t, &te.tlen[i], 1, out, why, sizeof(why))) {
            failed++;
            continue;
        }
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++) best = out[k] > out[best] ? k : best;
        const char *name = aas_model_label_name(m, best);
        right += name && strlen(name) == te.llen[i] && !memcmp(name, te.label[i], te.llen[i]);
    }
    /* Serving cost: the test text nearest `chars` code points, many times. */
    size_t pick = 0, best_d = (size_t)-1;
    for (size_t i = 0; i < te.n; i++) {
        size_t cp = 0;
        for (size_t k = 0; k < te.tlen[i]; k++) cp += (te.text[i][k] & 0xC0) != 0x80;
        size_t d = cp > (size_t)chars ? cp - (size_t)chars : (size_t)chars - cp;
        if (d < best_d) best_d = d, pick = i;
    }
    size_t pick_cp = 0;
    for (size_t k = 0; k < te.tlen[pick]; k++) pick_cp += (te.text[pick][k] & 0xC0) != 0x80;
    enum { REPS = 2000 };
    static double us[REPS];
    const char *t = te.text[pick];
    for (int i = 0; i < REPS; i++) {
        double a = now_ms();
        aas_model_infer_text(m, &t, &te.tlen[pick], 1, out, why, sizeof(why));
        us[i] = (now_ms() - a) * 1e3;
    }
    qsort(us, REPS, sizeof(double), cmp_d);
    double acc = te.n ? (double)right / (double)te.n : 0;
    if (json)
        printf("{\"train_rows\":%zu,\"test_rows\":%zu,\"accuracy\":%.4f,\"train_s\":%.3f,"
               "\"model_bytes\":%zu,\"infer_us_p50\":%.2f,\"infer_us_p99\":%.2f,"
               "\"infer_chars\":%zu,\"failed\":%lld}\n",
               tr.n, te.n, acc, train_ms / 1e3, res.blob_len, us[REPS / 2],
               us[REPS * 99 / 100], pick_cp, (long long)failed);
    else
        printf("train %zu rows in %.2f s (%.0f rows/s/epoch, %d epochs), model %.1f MiB\n"
               "held-out accuracy %.4f on %zu rows (%lld failed)\n"
               "featurize+forward, batch 1, %zu chars: p50 %.1f us, p99 %.1f us\n",
               tr.n, train_ms / 1e3, res.samples_per_s, (int)res.epochs_done,
               (double)res.blob_len / 1048576.0, acc, te.n, (long long)failed, pick_cp,
               us[REPS / 2], us[REPS * 99 / 100]);
    aas_model_destroy(m);
    aas_train_result_free(&res);
    free(out);
    return 0;
}
