/* trainer_rows.c - CSV lines of a source into features and labels; see
 * trainer_rows.h. */
#include "trainer_rows.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AAS_ROWS_MAX_DIM (1 << 20)  /* AAS_MLP_MAX_DIM: the trainer's input limit */
#define AAS_ROWS_MAX_LABEL 65535

typedef struct {
    aas_src_t *src;
    const char *what;     /* "data set X" */
    char *scratch;        /* the current line, NUL-terminated */
    size_t cap;
    int64_t lineno;
} aas_rows_ctx_t;

/* Parse one line (NUL-terminated in c->scratch).  With x == NULL only
 * count (*cols) and check; else write want - 1 features to x and the
 * label to *y, and the line must have exactly want values. */
static aas_err_t aas_rows_parse(aas_rows_ctx_t *c, int64_t want, float *x, int32_t *y,
                                int64_t *cols, char *errstr, size_t errstr_size) {
    int64_t k = 0;
    double v = 0;
    for (char *p = c->scratch;;) {
        char *end;
        errno = 0;
        v = strtod(p, &end);
        k++;
        if (end == p)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s line %lld, value %lld: not a number", c->what,
                               (long long)c->lineno, (long long)k);
        if (!isfinite(v) || fabs(v) > FLT_MAX || errno == ERANGE)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                               "%s line %lld, value %lld: not a finite float", c->what,
                               (long long)c->lineno, (long long)k);
        if (want > 0 && k > want)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "%s line %lld has more than %lld values", c->what,
                               (long long)c->lineno, (long long)want);
        if (x && k < want) x[k - 1] = (float)v;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') break;
        if (*p != ',')
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s line %lld: expected ',' after value %lld", c->what,
                               (long long)c->lineno, (long long)k);
        p++;
    }
    if (k < 2)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "%s line %lld: a row needs features and a label (2+ values)",
                           c->what, (long long)c->lineno);
    if (want > 0 && k != want)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "%s line %lld has %lld values, the first row has %lld", c->what,
                           (long long)c->lineno, (long long)k, (long long)want);
    if (v < 0 || v > AAS_ROWS_MAX_LABEL || v != floor(v))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s line %lld: label %g is not a class index (an integer "
                           "0..%d)", c->what, (long long)c->lineno, v, AAS_ROWS_MAX_LABEL);
    if (y) *y = (int32_t)v;
    *cols = k;
    return AAS_ERR_OK;
}

/* The next data line into c->scratch: *got = 0 at the end. */
static aas_err_t aas_rows_next(aas_rows_ctx_t *c, int *got, char *errstr,
                               size_t errstr_size) {
    for (;;) {
        const char *line;
        size_t len;
        int eof;
        aas_err_t err = aas_src_next(c->src, &line, &len, &eof, errstr, errstr_size);
        if (err) return err;
        if (eof) {
            *got = 0;
            return AAS_ERR_OK;
        }
        c->lineno++;
        size_t s = 0;
        while (s < len && (line[s] == ' ' || line[s] == '\t')) s++;
        if (s == len || line[s] == '#') continue;
        if (memchr(line, '\0', len))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "%s line %lld: a NUL byte", c->what, (long long)c->lineno);
        if (len + 1 > c->cap) {
            size_t cap = len + 1 > 2 * c->cap ? len + 1 : 2 * c->cap;
            char *p = realloc(c->scratch, cap);
            if (!p) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            c->scratch = p;
            c->cap = cap;
        }
        memcpy(c->scratch, line, len);
        c->scratch[len] = '\0';
        *got = 1;
        return AAS_ERR_OK;
    }
}

aas_err_t aas_trainer_rows_load(aas_src_t *src, int64_t max_rows, size_t max_bytes,
                                aas_tensor_t *features, aas_tensor_t *labels,
                                char *errstr, size_t errstr_size) {
    aas_src_info_t info;
    aas_src_info(src, &info);
    if (info.format != AAS_SRC_CSV)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s holds label<TAB>text lines, not CSV rows of numbers",
                           info.name);
    aas_rows_ctx_t c = {.src = src, .what = info.name};
    float *x = NULL;
    int32_t *y = NULL;
    int64_t n = 0, cols = 0, dim = 0;
    int got = 1;
    /* Pass 1: count and check. */
    aas_err_t err = aas_src_rewind(src, 0, errstr, errstr_size);
    while (!err && (err = aas_rows_next(&c, &got, errstr, errstr_size)) == AAS_ERR_OK && got) {
        int64_t k;
        if ((err = aas_rows_parse(&c, cols, NULL, NULL, &k, errstr, errstr_size))) break;
        cols = k;
        if (++n > max_rows)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                              "%s has more than %lld rows (the worker's limit)", info.name,
                              (long long)max_rows);
    }
    if (!err && n == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "%s has no data rows",
                          info.name);
    dim = cols - 1;
    if (!err && dim > AAS_ROWS_MAX_DIM)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "%s has %lld features a row, more than %d", info.name,
                          (long long)dim, AAS_ROWS_MAX_DIM);
    /* n <= max_rows and cols <= 2^20 + 1: the product fits in 64 bits. */
    if (!err && (uint64_t)n * (uint64_t)cols * 4 > (uint64_t)max_bytes)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                          "%s: %lld rows x %lld values need %llu bytes, the limit is %zu",
                          info.name, (long long)n, (long long)cols,
                          (unsigned long long)((uint64_t)n * (uint64_t)cols * 4), max_bytes);
    if (!err && (!(x = malloc((size_t)n * (size_t)dim * sizeof(float))) ||
                 !(y = malloc((size_t)n * sizeof(int32_t)))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    /* Pass 2: the same lines, into the tensors. */
    int64_t r = 0;
    if (!err) {
        c.lineno = 0;
        err = aas_src_rewind(src, 0, errstr, errstr_size);
    }
    while (!err && (err = aas_rows_next(&c, &got, errstr, errstr_size)) == AAS_ERR_OK && got) {
        int64_t k;
        if (r == n) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                              "%s changed while being read (more rows)", info.name);
            break;
        }
        if ((err = aas_rows_parse(&c, cols, x + r * dim, y + r, &k, errstr, errstr_size)))
            break;
        r++;
    }
    if (!err && r != n)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                          "%s changed while being read (%lld rows, then %lld)", info.name,
                          (long long)n, (long long)r);
    free(c.scratch);
    if (err) {
        free(x);
        free(y);
        return err;
    }
    *features = (aas_tensor_t){.dtype = AAS_DTYPE_F32, .rank = 2, .shape = {n, dim},
                               .data = x, .nbytes = (size_t)n * (size_t)dim * sizeof(float)};
    *labels = (aas_tensor_t){.dtype = AAS_DTYPE_I32, .rank = 1, .shape = {n},
                             .data = y, .nbytes = (size_t)n * sizeof(int32_t)};
    return AAS_ERR_OK;
}
