/*
 * bench_onnx.c - forward-pass speed of models loaded with aas_model_load,
 * ONNX and native alike (issue 13, "Performance"; bench/run_onnx_bench.sh
 * runs it beside ONNX Runtime on the same files and prints the comparison).
 *
 *     bench_onnx [options] NAME=PATH ...
 *
 * Each PATH is a model file of any kind aas_model_load knows (model.onnx,
 * an AASMLP1 blob); the kind is detected from the bytes.  For each model and
 * each batch size: a warm-up of at least --warmup-ms and 5 calls, then
 * aas_model_infer timed call by call until at least --min-ms and --min-runs
 * have passed; the figure is the median call (us per batch, rows/s).  The
 * warm-up builds the batch bucket's primitives, so the timed calls are the
 * steady state the worker sees.  Threads: oneDNN's OpenMP pool, set with
 * OMP_NUM_THREADS as for the worker.
 *
 * Inputs: a model 64 values wide gets the rows of --digits (raw pixels
 * 0..16; the digits fixtures and the scikit-learn models take them), any
 * other width x[k] = ((k * 7919) % 2001) / 1000 - 1 over the flat batch.
 * bench/peers/ort_bench.py feeds ONNX Runtime the same values.
 *
 * --same A,B runs models A and B on the largest batch and prints the
 * largest |difference| of their outputs (the ONNX MLP against the same
 * weights in AASMLP1).  Prints one line per point:
 *
 *   RESULT bench=onnx model=mlp-onnx batch=64 threads=1 us_per_batch=123.4 rows_per_s=518650 runs=2431
 *
 * then a table.  A model that does not load is reported (SKIP line, stderr)
 * and the others still run; the exit status is 1 then.  Not a test: figures
 * are worth quoting only from an otherwise idle machine.
 */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digits.h"
#include "model.h"

#define MAX_MODELS 32
#define MAX_BATCHES 16
#define MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct {
    const char *name, *path;
    aas_model_t *model;
    int64_t in_dim, out_dim;
    double us[MAX_BATCHES];
    int runs[MAX_BATCHES];
} entry_t;

typedef struct {
    int64_t batches[MAX_BATCHES];
    int n_batches;
    double min_s, warmup_s;
    int min_runs;
    const char *digits, *same;
} opts_t;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The whole file, malloc'ed; NULL with a reason in why. */
static void *read_file(const char *path, size_t *len, char *why, size_t why_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_size, "cannot open %s", path);
        return NULL;
    }
    void *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || (size_t)n > MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(why, why_size, "%s: not a regular file of at most 1 GiB", path);
    } else if (!(buf = malloc(n ? (size_t)n : 1))) {
        snprintf(why, why_size, "%s: out of memory", path);
    } else if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(why, why_size, "%s: short read", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

static int load_entry(entry_t *e) {
    char why[512] = "";
    size_t len = 0;
    void *blob = read_file(e->path, &len, why, sizeof(why));
    if (blob && aas_model_load(blob, len, &e->model, why, sizeof(why)) != AAS_ERR_OK)
        e->model = NULL;
    free(blob);
    if (!e->model) {
        fprintf(stderr, "bench_onnx: %s (%s): %s\n", e->name, e->path, why);
        printf("SKIP bench=onnx model=%s reason=load_failed\n", e->name);
        return -1;
    }
    e->in_dim = aas_model_input_dim(e->model);
    e->out_dim = aas_model_output_dim(e->model);
    return 0;
}

/* Inputs for rows x dim, as the file header says (ort_bench.py matches). */
static void fill_input(float *x, int64_t rows, int64_t dim, const float *digits,
                       int n_digits) {
    if (dim == DIGITS_DIM && n_digits > 0) {
        for (int64_t r = 0; r < rows; r++)
            memcpy(x + r * dim, digits + (r % n_digits) * DIGITS_DIM, DIGITS_DIM * sizeof(float));
        return;
    }
    for (int64_t k = 0; k < rows * dim; k++)
        x[k] = (float)((k * 7919) % 2001) / 1000.0f - 1.0f;
}

static int infer(entry_t *e, const float *x, int64_t rows, float *y) {
    char why[512] = "";
    if (aas_model_infer(e->model, x, rows, y, why, sizeof(why)) == AAS_ERR_OK) return 0;
    fprintf(stderr, "bench_onnx: %s: aas_model_infer at batch %lld: %s\n", e->name,
            (long long)rows, why);
    return -1;
}

/* Median call of e at `rows`, in us; -1 on a failed call. */
static double time_point(entry_t *e, const float *x, int64_t rows, float *y, const opts_t *o,
                         double **samples, size_t *cap, int *runs) {
    double start = now_s();
    for (int i = 0; i < 5 || now_s() - start < o->warmup_s; i++)
        if (infer(e, x, rows, y)) return -1;
    size_t n = 0;
    start = now_s();
    for (;;) {
        double t0 = now_s();
        if (infer(e, x, rows, y)) return -1;
        double t1 = now_s();
        if (n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 4096;
            double *p = realloc(*samples, ncap * sizeof(double));
            if (!p) return -1;
            *samples = p;
            *cap = ncap;
        }
        (*samples)[n++] = t1 - t0;
        if ((int)n >= o->min_runs && t1 - start >= o->min_s) break;
    }
    qsort(*samples, n, sizeof(double), cmp_double);
    *runs = (int)n;
    double med = n % 2 ? (*samples)[n / 2] : 0.5 * ((*samples)[n / 2 - 1] + (*samples)[n / 2]);
    return med * 1e6;
}

static entry_t *find_entry(entry_t *es, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(es[i].name) == len && !strncmp(es[i].name, name, len)) return &es[i];
    return NULL;
}

/* --same A,B: the largest |difference| between A's and B's outputs. */
static int compare_pair(entry_t *es, int n, const opts_t *o, const float *digits, int n_digits) {
    const char *comma = strchr(o->same, ',');
    entry_t *a = comma ? find_entry(es, n, o->same, (size_t)(comma - o->same)) : NULL;
    entry_t *b = comma ? find_entry(es, n, comma + 1, strlen(comma + 1)) : NULL;
    if (!a || !b) {
        fprintf(stderr, "bench_onnx: --same %s: want two model names given as NAME=PATH\n",
                o->same);
        return -1;
    }
    if (!a->model || !b->model) return -1;
    if (a->in_dim != b->in_dim || a->out_dim != b->out_dim) {
        fprintf(stderr, "bench_onnx: --same: %s and %s differ in shape\n", a->name, b->name);
        return -1;
    }
    int64_t rows = o->batches[o->n_batches - 1];
    float *x = malloc((size_t)(rows * a->in_dim) * sizeof(float));
    float *ya = malloc((size_t)(rows * a->out_dim) * sizeof(float));
    float *yb = malloc((size_t)(rows * a->out_dim) * sizeof(float));
    int rc = -1;
    if (x && ya && yb) {
        fill_input(x, rows, a->in_dim, digits, n_digits);
        if (!infer(a, x, rows, ya) && !infer(b, x, rows, yb)) {
            double d = 0;
            for (int64_t k = 0; k < rows * a->out_dim; k++) d = fmax(d, fabs(ya[k] - yb[k]));
            printf("SAME bench=onnx a=%s b=%s batch=%lld max_abs_diff=%.3g\n", a->name,
                   b->name, (long long)rows, d);
            rc = 0;
        }
    }
    free(x);
    free(ya);
    free(yb);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bench_onnx [options] NAME=PATH ...\n"
            "  --batch LIST      batch sizes                   (default 1,8,64,256)\n"
            "  --min-ms N        timed ms per point            (default 300)\n"
            "  --min-runs N      timed calls per point, at least (default 20)\n"
            "  --warmup-ms N     warm-up ms per point          (default 100)\n"
            "  --digits PATH     rows for 64-wide models       (default data/digits.csv.gz)\n"
            "  --same A,B        print max |diff| of models A and B (default none)\n"
            "  --help            this text\n"
            "Threads: OMP_NUM_THREADS (oneDNN's OpenMP pool).\n");
}

static int parse_batches(const char *s, opts_t *o) {
    o->n_batches = 0;
    for (const char *p = s; *p;) {
        char *end;
        long long b = strtoll(p, &end, 10);
        if (end == p || b < 1 || b > 65536 || o->n_batches == MAX_BATCHES) return -1;
        if (o->n_batches && b <= o->batches[o->n_batches - 1]) return -1; /* ascending */
        o->batches[o->n_batches++] = b;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return o->n_batches ? 0 : -1;
}

int main(int argc, char **argv) {
    static const struct option lopts[] = {{"batch", required_argument, NULL, 'b'},
                                          {"min-ms", required_argument, NULL, 'm'},
                                          {"min-runs", required_argument, NULL, 'n'},
                                          {"warmup-ms", required_argument, NULL, 'w'},
                                          {"digits", required_argument, NULL, 'D'},
                                          {"same", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    opts_t o = {.min_s = 0.3, .warmup_s = 0.1, .min_runs = 20,
                .digits = "data/digits.csv.gz", .same = NULL};
    const char *batch_list = "1,8,64,256";
    int c;
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'b': batch_list = optarg; break;
        case 'm': o.min_s = atof(optarg) / 1000.0; break;
        case 'n': o.min_runs = atoi(optarg); break;
        case 'w': o.warmup_s = atof(optarg) / 1000.0; break;
        case 'D': o.digits = optarg; break;
        case 's': o.same = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (parse_batches(batch_list, &o)) {
        fprintf(stderr, "bench_onnx: --batch %s: want ascending sizes 1..65536, e.g. 1,8,64\n",
                batch_list);
        return 2;
    }
    if (!(o.min_s > 0) || o.min_runs < 1 || !(o.warmup_s >= 0)) {
        fprintf(stderr, "bench_onnx: --min-ms and --min-runs must be positive\n");
        return 2;
    }
    int n = argc - optind;
    if (n < 1 || n > MAX_MODELS) {
        fprintf(stderr, "bench_onnx: give 1..%d models as NAME=PATH (see --help)\n", MAX_MODELS);
        return 2;
    }
    entry_t es[MAX_MODELS];
    memset(es, 0, sizeof(es));
    for (int i = 0; i < n; i++) {
        char *arg = argv[optind + i], *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1]) {
            fprintf(stderr, "bench_onnx: %s: want NAME=PATH\n", arg);
            return 2;
        }
        *eq = '\0';
        es[i].name = arg;
        es[i].path = eq + 1;
    }

    static float digits[DIGITS_ROWS * DIGITS_DIM];
    static int32_t labels[DIGITS_ROWS];
    int n_digits = bench_digits_load(o.digits, digits, labels);
    if (n_digits <= 0) {
        fprintf(stderr, "bench_onnx: %s: cannot read the digits; 64-wide models get the "
                        "generated inputs\n", o.digits);
        n_digits = 0;
    }

    int failed = 0, threads = omp_get_max_threads();
    for (int i = 0; i < n; i++) failed |= load_entry(&es[i]) != 0;
    if (o.same && compare_pair(es, n, &o, digits, n_digits)) failed = 1;

    int64_t max_rows = o.batches[o.n_batches - 1];
    double *samples = NULL;
    size_t cap = 0;
    for (int i = 0; i < n; i++) {
        entry_t *e = &es[i];
        for (int j = 0; j < o.n_batches; j++) e->us[j] = -1;
        if (!e->model) continue;
        float *x = malloc((size_t)(max_rows * e->in_dim) * sizeof(float));
        float *y = malloc((size_t)(max_rows * e->out_dim) * sizeof(float));
        if (!x || !y) {
            fprintf(stderr, "bench_onnx: %s: out of memory\n", e->name);
            failed = 1;
        } else {
            fill_input(x, max_rows, e->in_dim, digits, n_digits);
            for (int j = 0; j < o.n_batches; j++) {
                int64_t b = o.batches[j];
                e->us[j] = time_point(e, x, b, y, &o, &samples, &cap, &e->runs[j]);
                if (e->us[j] < 0) {
                    failed = 1;
                    break;
                }
                printf("RESULT bench=onnx model=%s batch=%lld threads=%d us_per_batch=%.2f "
                       "rows_per_s=%.0f runs=%d\n",
                       e->name, (long long)b, threads, e->us[j], (double)b / (e->us[j] * 1e-6),
                       e->runs[j]);
                fflush(stdout);
            }
        }
        free(x);
        free(y);
    }
    free(samples);

    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    printf("\naas_model_infer, median call of >= %.0f ms per point, %d OpenMP thread%s, "
           "load %.2f\n",
           o.min_s * 1e3, threads, threads == 1 ? "" : "s", load[0]);
    printf("%-20s %10s %6s %12s %12s %7s\n", "model", "in x out", "batch", "us/batch",
           "rows/s", "runs");
    for (int i = 0; i < n; i++) {
        entry_t *e = &es[i];
        if (!e->model) {
            printf("%-20s %10s  (did not load)\n", e->name, "-");
            continue;
        }
        char shape[32];
        snprintf(shape, sizeof(shape), "%lldx%lld", (long long)e->in_dim, (long long)e->out_dim);
        for (int j = 0; j < o.n_batches && e->us[j] >= 0; j++)
            printf("%-20s %10s %6lld %12.2f %12.0f %7d\n", e->name, shape,
                   (long long)o.batches[j], e->us[j],
                   (double)o.batches[j] / (e->us[j] * 1e-6), e->runs[j]);
    }
    for (int i = 0; i < n; i++) aas_model_destroy(es[i].model);
    return failed;
}
