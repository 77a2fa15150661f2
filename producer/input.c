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
    if (!copy) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
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

static aas_err_t aas_input_csv(FILE *fp, int drop_last, int header, size_t max_bytes,
                               aas_rows_t *out, char *errstr,
                               size_t errstr_size) {
    aas_rowbuf_t b = {0};
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t len;
    long lineno = 0;
    int seen_header = 0;
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
        if (header == 1 && !seen_header) { /* --header: the first line names columns */
            seen_header = 1;
            continue;
        }
        int64_t got = 0;
        char why[256];
        err = aas_parse_csv_line(&b, s, lineno, drop_last, &got, why, sizeof(why));
        if (err) {
            /* Headers are never guessed: a first line that is not numbers
             * is an error, with the option that would skip it. */
            aas_err_set(errstr, errstr_size, err, "%s%s", why,
                        b.rows == 0 && err == AAS_ERR_INVAL && header != 1
                            ? " (if this line is a header, say --header)" : "");
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
    if (!text) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
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
    return aas_input_read_file_hdr(path, format, drop_last_column, -1, max_bytes, out,
                                   errstr, errstr_size);
}

aas_err_t aas_input_read_file_hdr(const char *path, const char *format,
                                  int drop_last_column, int header, size_t max_bytes,
                                  aas_rows_t *out, char *errstr, size_t errstr_size) {
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
             : aas_input_csv(fp, drop_last_column, header, max_bytes, out, errstr,
                             errstr_size);
    if (fp != stdin) fclose(fp);
    return err;
}

void aas_rows_clear(aas_rows_t *r) {
    if (!r) return;
    free(r->values);
    memset(r, 0, sizeof(*r));
}

/* ---- labeled text: "label<TAB>text" lines ---- */

#define AAS_INPUT_MAX_LABEL 256

static int aas_input_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append one line's text to out and its label string to line_labels
 * (turned into class indices once all lines are read). */
static aas_err_t aas_input_text_line(aas_labeled_text_t *out, char ***line_labels,
                                     size_t *cap, char *line, long lineno,
                                     size_t max_bytes, char *errstr,
                                     size_t errstr_size) {
    char *tab = strchr(line, '\t');
    if (!tab || tab == line || memchr(line, ',', (size_t)(tab - line)) ||
        tab - line > AAS_INPUT_MAX_LABEL)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "line %ld: want label<TAB>text, label 1..%d bytes without ','",
                           lineno, AAS_INPUT_MAX_LABEL);
    *tab = '\0';
    size_t tl = strlen(tab + 1);
    if (out->bytes + tl + 1 > max_bytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "line %ld: texts over %zu bytes", lineno, max_bytes);
    if ((size_t)out->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        char **nl = realloc(*line_labels, nc * sizeof(char *));
        if (!nl) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        *line_labels = nl;
        *cap = nc;
    }
    char *nt = realloc(out->texts, out->bytes + tl + 2);
    if (!nt) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    out->texts = nt;
    if (!((*line_labels)[out->n] = strdup(line)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (out->n > 0) out->texts[out->bytes++] = '\n';
    memcpy(out->texts + out->bytes, tab + 1, tl);
    out->bytes += tl;
    out->texts[out->bytes] = '\0';
    out->n++;
    return AAS_ERR_OK;
}

aas_err_t aas_input_read_labeled_text(const char *path, size_t max_bytes,
                                      aas_labeled_text_t *out, char *errstr,
                                      size_t errstr_size) {
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!fp)
        return aas_err_set(errstr, errstr_size, AAS_ERR_IO, "cannot open %s: %s", path,
                           strerror(errno));
    aas_labeled_text_t t = {0};
    char **line_labels = NULL, *line = NULL;
    size_t cap = 0, line_cap = 0;
    long lineno = 0;
    aas_err_t err = AAS_ERR_OK;
    while (!err && getline(&line, &line_cap, fp) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        err = aas_input_text_line(&t, &line_labels, &cap, line, lineno, max_bytes, errstr,
                                  errstr_size);
    }
    if (!err && ferror(fp))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_IO, "reading %s failed", path);
    free(line);
    if (fp != stdin) fclose(fp);
    if (!err && t.n < 2)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "%s: need at least two labeled lines", path);
    /* Classes: distinct labels, sorted; each line's label -> its index. */
    if (!err && (!(t.names = malloc((size_t)t.n * sizeof(char *))) ||
                 !(t.labels = malloc((size_t)t.n * sizeof(int32_t)))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!err) {
        char **sorted = t.names;
        memcpy(sorted, line_labels, (size_t)t.n * sizeof(char *));
        qsort(sorted, (size_t)t.n, sizeof(char *), aas_input_cmp_str);
        for (int64_t i = 0; i < t.n; i++)
            if (t.n_names == 0 || strcmp(sorted[t.n_names - 1], sorted[i]) != 0)
                sorted[t.n_names++] = sorted[i];
        for (int64_t i = 0; i < t.n; i++) {
            char **hit = bsearch(&line_labels[i], sorted, t.n_names, sizeof(char *),
                                 aas_input_cmp_str);
            t.labels[i] = (int32_t)(hit - sorted);
        }
        /* names must own their strings: copy the distinct ones. */
        for (size_t k = 0; k < t.n_names; k++)
            if (!(sorted[k] = strdup(sorted[k]))) {
                for (size_t j = 0; j < k; j++) free(sorted[j]);
                t.n_names = 0;
                err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
                break;
            }
    }
    for (int64_t i = 0; i < t.n; i++) free(line_labels[i]);
    free(line_labels);
    if (err) {
        if (err == AAS_ERR_NOMEM) aas_err_set(errstr, errstr_size, err, "out of memory");
        aas_labeled_text_clear(&t);
        return err;
    }
    *out = t;
    return AAS_ERR_OK;
}

void aas_labeled_text_clear(aas_labeled_text_t *t) {
    if (!t) return;
    for (size_t k = 0; k < t->n_names; k++) free(t->names[k]);
    free(t->names);
    free(t->labels);
    free(t->texts);
    memset(t, 0, sizeof(*t));
}
