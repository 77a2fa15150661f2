/* input.c - rows of numbers from CSV/JSON/argument; see input.h. */
#include "input.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float *v;
    size_t n, cap;
    int64_t rows, cols;
} aas_rowbuf_t;

static aas_err_t aas_rowbuf_push(aas_rowbuf_t *b, float x) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        float *nv = realloc(b->v, cap * sizeof(float));
        if (!nv) return AAS_ERR_NOMEM;
        b->v = nv;
        b->cap = cap;
    }
    b->v[b->n++] = x;
    return AAS_ERR_OK;
}

/* Close a row of `got` values: all rows must be as wide as the first. */
static aas_err_t aas_rowbuf_end_row(aas_rowbuf_t *b, int64_t got, long line,
                                    char *errstr, size_t errstr_size) {
    if (got == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "row %ld is empty", line);
    if (b->rows == 0) b->cols = got;
    if (got != b->cols)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "row %ld has %lld values, the first row has %lld",
                           line, (long long)got, (long long)b->cols);
    b->rows++;
    return AAS_ERR_OK;
}

static aas_err_t aas_rowbuf_finish(aas_rowbuf_t *b, aas_rows_t *out,
                                   char *errstr, size_t errstr_size) {
    if (b->rows == 0) {
        free(b->v);
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "no input rows");
    }
    out->values = b->v;
    out->rows = b->rows;
    out->cols = b->cols;
    return AAS_ERR_OK;
}

/* Parse one CSV line into b; returns count of values via *got. */
static aas_err_t aas_parse_csv_line(aas_rowbuf_t *b, char *line, long lineno,
                                    int drop_last, int64_t *got, char *errstr,
                                    size_t errstr_size) {
    int64_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *end;
        errno = 0;
        double d = strtod(p, &end);
        if (end == p || errno == ERANGE)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "line %ld, value %lld: not a number", lineno,
                               (long long)n + 1);
        if (!isfinite(d) || fabs(d) > 3.0e38)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                               "line %ld, value %lld: not a finite float",
                               lineno, (long long)n + 1);
        aas_err_t err = aas_rowbuf_push(b, (float)d);
        if (err) return err;
        n++;
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == '\0') break;
        if (*p != ',')
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "line %ld: expected ',' after value %lld", lineno,
                               (long long)n);
        p++;
    }
    if (drop_last) {
        if (n < 2)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "line %ld: no values left after dropping the "
                               "label column", lineno);
        b->n--;
        n--;
    }
    *got = n;
    return AAS_ERR_OK;
}

aas_err_t aas_input_parse_list(const char *list, aas_rows_t *out, char *errstr,
                               size_t errstr_size) {
    aas_rowbuf_t b = {0};
    char *copy = strdup(list);
    if (!copy) return AAS_ERR_NOMEM;
    int64_t got;
    aas_err_t err = aas_parse_csv_line(&b, copy, 1, 0, &got, errstr, errstr_size);
    free(copy);
    if (!err) err = aas_rowbuf_end_row(&b, got, 1, errstr, errstr_size);
    if (err) {
        free(b.v);
        return err;
    }
    return aas_rowbuf_finish(&b, out, errstr, errstr_size);
}

static aas_err_t aas_input_csv(FILE *fp, int drop_last, size_t max_bytes,
                               aas_rows_t *out, char *errstr,
                               size_t errstr_size) {
    aas_rowbuf_t b = {0};
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    long lineno = 0;
    aas_err_t err = AAS_ERR_OK;
    while (!err && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        total += (size_t)len;
        if (total > max_bytes) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                              "input larger than %zu bytes", max_bytes);
            break;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#') continue;
        size_t before = b.n;
        int64_t got = 0;
        char why[256];
        err = aas_parse_csv_line(&b, s, lineno, drop_last, &got, why, sizeof(why));
        if (err && b.rows == 0 && lineno == 1 && err == AAS_ERR_INVAL) {
            b.n = before; /* a header line */
            err = AAS_ERR_OK;
            continue;
        }
        if (err) {
            aas_err_set(errstr, errstr_size, err, "%s", why);
            break;
        }
        err = aas_rowbuf_end_row(&b, got, lineno, errstr, errstr_size);
    }
    free(line);
    if (err) {
        free(b.v);
        return err;
    }
    return aas_rowbuf_finish(&b, out, errstr, errstr_size);
}

static aas_err_t aas_input_json_row(aas_rowbuf_t *b, json_t *row, long idx,
                                    char *errstr, size_t errstr_size) {
    size_t i;
    json_t *v;
    if (!json_is_array(row))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "row %ld is not an array of numbers", idx);
    json_array_foreach(row, i, v) {
        if (!json_is_number(v))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "row %ld, value %zu is not a number", idx, i + 1);
        double d = json_number_value(v);
        if (!isfinite(d) || fabs(d) > 3.0e38)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NONFINITE,
                               "row %ld, value %zu is not a finite float", idx,
                               i + 1);
        aas_err_t err = aas_rowbuf_push(b, (float)d);
        if (err) return err;
    }
    return aas_rowbuf_end_row(b, (int64_t)json_array_size(row), idx, errstr,
                              errstr_size);
}

static aas_err_t aas_input_json(FILE *fp, size_t max_bytes, aas_rows_t *out,
                                char *errstr, size_t errstr_size) {
    char *text = malloc(max_bytes + 1);
    if (!text) return AAS_ERR_NOMEM;
    size_t n = fread(text, 1, max_bytes + 1, fp);
    if (n > max_bytes) {
        free(text);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "input larger than %zu bytes", max_bytes);
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, n, 0, &jerr);
    free(text);
    if (!root)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "JSON line %d: %s", jerr.line, jerr.text);
    json_t *rows = json_is_object(root) ? json_object_get(root, "inputs") : root;
    aas_rowbuf_t b = {0};
    aas_err_t err = AAS_ERR_OK;
    if (!json_is_array(rows)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "expected [[...],...], [...] or {\"inputs\": [[...]]}");
    } else if (json_array_size(rows) > 0 &&
               json_is_number(json_array_get(rows, 0))) {
        err = aas_input_json_row(&b, rows, 1, errstr, errstr_size);
    } else {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            if ((err = aas_input_json_row(&b, row, (long)i + 1, errstr,
                                          errstr_size)))
                break;
        }
    }
    json_decref(root);
    if (err) {
        free(b.v);
        return err;
    }
    return aas_rowbuf_finish(&b, out, errstr, errstr_size);
}

aas_err_t aas_input_read_file(const char *path, const char *format,
                              int drop_last_column, size_t max_bytes,
                              aas_rows_t *out, char *errstr,
                              size_t errstr_size) {
    int json;
    if (format) {
        if (strcmp(format, "json") && strcmp(format, "csv"))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "format '%s' is not csv or json", format);
        json = strcmp(format, "json") == 0;
    } else {
        size_t n = strlen(path);
        json = n > 5 && strcmp(path + n - 5, ".json") == 0;
    }
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "cannot open %s: %s",
                           path, strerror(errno));
    aas_err_t err =
        json ? aas_input_json(fp, max_bytes, out, errstr, errstr_size)
             : aas_input_csv(fp, drop_last_column, max_bytes, out, errstr,
                             errstr_size);
    if (fp != stdin) fclose(fp);
    return err;
}

void aas_rows_clear(aas_rows_t *r) {
    if (!r) return;
    free(r->values);
    memset(r, 0, sizeof(*r));
}
