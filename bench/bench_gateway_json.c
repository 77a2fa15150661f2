/*
 * bench_gateway_json.c - what parsing a request body costs the gateway:
 * aas_gw_oip_parse and aas_gw_predict_parse (gateway/oip.c) on the typical
 * request, one row of 784 FP32 numbers (random floats, printed with %.9g,
 * enough to round-trip a float; --digits 17 prints them as Python's json
 * does the doubles of numpy float32 values, e.g. tritonclient's JSON).  Not
 * a test; it prints microseconds per parse (the median of several
 * repeats, each timing many parses).
 *
 *   bench_gateway_json [--dim D] [--digits 1..17] [--iters N] [--repeats R]
 *
 * It does not measure HTTP or anything after the parse (the job's
 * encoding, Kafka): bench_gateway and run_gateway_bench.sh do.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oip.h"

#define GJB_MAX_REPEATS 64

static uint64_t gjb_rng = 0x9E3779B97F4A7C15ULL;

/* xorshift64*: the same body on every run and machine. */
static double gjb_uniform(void) {
    gjb_rng ^= gjb_rng >> 12;
    gjb_rng ^= gjb_rng << 25;
    gjb_rng ^= gjb_rng >> 27;
    return (double)((gjb_rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* prefix, dim floats in [-1, 1) as %.<digits>g, suffix; NULL on NOMEM. */
static char *gjb_body(const char *prefix, int dim, int digits, const char *suffix,
                      size_t *len) {
    size_t cap = strlen(prefix) + strlen(suffix) + (size_t)dim * 24 + 1;
    char *b = malloc(cap);
    if (!b) return NULL;
    size_t n = (size_t)snprintf(b, cap, "%s", prefix);
    for (int i = 0; i < dim; i++)
        n += (size_t)snprintf(b + n, cap - n, "%s%.*g", i ? "," : "", digits,
                              (double)(float)(gjb_uniform() * 2 - 1));
    n += (size_t)snprintf(b + n, cap - n, "%s", suffix);
    *len = n;
    return b;
}

static double gjb_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int gjb_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef aas_err_t (*gjb_parse_fn)(const char *, size_t, uint64_t, aas_gw_request_t *, char *,
                                  size_t);

/* Median over repeats of the mean µs per parse; -1 when a parse fails. */
static double gjb_time(gjb_parse_fn parse, const char *body, size_t len, int iters,
                       int repeats) {
    double per[GJB_MAX_REPEATS];
    char why[256];
    for (int r = 0; r < repeats; r++) {
        double t0 = gjb_now_us();
        for (int i = 0; i < iters; i++) {
            aas_gw_request_t req;
            if (parse(body, len, 1u << 24 /* the gateway's default */, &req, why,
                      sizeof(why))) {
                fprintf(stderr, "parse failed: %s\n", why);
                return -1;
            }
            aas_gw_request_clear(&req);
        }
        per[r] = (gjb_now_us() - t0) / iters;
    }
    qsort(per, (size_t)repeats, sizeof(per[0]), gjb_cmp);
    return per[repeats / 2];
}

int main(int argc, char **argv) {
    int dim = 784, digits = 9, iters = 2000, repeats = 7;
    static const struct option opts[] = {{"dim", required_argument, NULL, 'd'},
                                         {"digits", required_argument, NULL, 'g'},
                                         {"iters", required_argument, NULL, 'n'},
                                         {"repeats", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:g:n:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dim = atoi(optarg); break;
        case 'g': digits = atoi(optarg); break;
        case 'n': iters = atoi(optarg); break;
        case 'r': repeats = atoi(optarg); break;
        case 'h':
            printf("usage: bench_gateway_json [options]\n"
                   "  --dim D       numbers in the row        (default 784)\n"
                   "  --digits G    printed as %%.Gg           (default 9)\n"
                   "  --iters N     parses per repeat         (default 2000)\n"
                   "  --repeats R   repeats, median reported  (default 7, at most %d)\n",
                   GJB_MAX_REPEATS);
            return 0;
        default: return 2;
        }
    }
    if (dim < 1 || dim > 1 << 20 || digits < 1 || digits > 17 || iters < 1 || repeats < 1 ||
        repeats > GJB_MAX_REPEATS) {
        fprintf(stderr, "bench_gateway_json: --dim 1..1048576, --digits 1..17, --iters >= 1, "
                        "--repeats 1..%d\n",
                GJB_MAX_REPEATS);
        return 2;
    }
    char prefix[128];
    snprintf(prefix, sizeof(prefix),
             "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,%d],\"datatype\":\"FP32\","
             "\"data\":[",
             dim);
    size_t oip_len, pred_len;
    char *oip = gjb_body(prefix, dim, digits, "]}]}", &oip_len);
    char *pred = gjb_body("{\"instances\":[[", dim, digits, "]]}", &pred_len);
    if (!oip || !pred) {
        fprintf(stderr, "bench_gateway_json: out of memory\n");
        free(oip);
        free(pred);
        return 1;
    }
    double t_oip = gjb_time(aas_gw_oip_parse, oip, oip_len, iters, repeats);
    double t_pred = gjb_time(aas_gw_predict_parse, pred, pred_len, iters, repeats);
    free(oip);
    free(pred);
    if (t_oip < 0 || t_pred < 0) return 1;
    printf("body: %d numbers as %%.%dg (%zu bytes OIP, %zu bytes predict), %d parses x %d "
           "repeats\n",
           dim, digits, oip_len, pred_len, iters, repeats);
    printf("aas_gw_oip_parse      %8.2f us/parse  %7.1f MB/s\n", t_oip, oip_len / t_oip);
    printf("aas_gw_predict_parse  %8.2f us/parse  %7.1f MB/s\n", t_pred, pred_len / t_pred);
    return 0;
}
