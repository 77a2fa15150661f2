/* client_dataset.c - streaming a text file into a data set
 * (aas_client_dataset_put_stream); see client.h. */
#include "client.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- streamed data sets (aas.dataset.v2) ----
 * The file's own lines, checked one by one, cut into chunks of whole lines
 * and stored as they fill.  One buffer of two chunks: [0, done) holds
 * checked lines of the chunk being filled, [done, len) bytes read after
 * them; a chunk goes out when the next line would not fit. */

#define AAS_DS_CHUNK AAS_STORE_DATASET_CHUNK_MAX
#define AAS_DS_BUF (2 * AAS_DS_CHUNK)
#define AAS_DS_READ ((size_t)256 << 10)
#define AAS_DS_MAX_LABEL 256
#define AAS_DS_MAX_CLASSES 65536

typedef struct {
    const aas_client_dataset_opts_t *o;
    const char *name;
    aas_store_dataset_up_t *up;
    char *buf;
    size_t len, done;
    uint64_t base_off;        /* file offset of buf[0] */
    int64_t lineno;           /* lines seen (1-based for messages) */
    int64_t rows, cols;
    int header_seen;
    json_t *header;           /* CSV --header: column names */
    char **classes;           /* TSV: open-addressing set of labels */
    size_t n_classes, cap_classes;
} aas_ds_t;

/* Offset of the first byte that is not valid UTF-8 (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF), or n if all are. */
static size_t aas_ds_utf8_bad(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else
            return i;
        if (n - i <= k) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return i;
        i += k + 1;
    }
    return n;
}

static uint64_t aas_ds_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static aas_err_t aas_ds_class_add(aas_ds_t *d, const char *label, size_t n, char *errstr,
                                  size_t errstr_size) {
    if (d->cap_classes == 0 || 2 * (d->n_classes + 1) > d->cap_classes) {
        size_t cap = d->cap_classes ? 2 * d->cap_classes : 1024;
        char **t = calloc(cap, sizeof(char *));
        if (!t) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < d->cap_classes; i++) {
            char *s = d->classes[i];
            if (!s) continue;
            size_t j = aas_ds_hash(s, strlen(s)) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = s;
        }
        free(d->classes);
        d->classes = t;
        d->cap_classes = cap;
    }
    size_t j = aas_ds_hash(label, n) & (d->cap_classes - 1);
    for (; d->classes[j]; j = (j + 1) & (d->cap_classes - 1))
        if (strlen(d->classes[j]) == n && memcmp(d->classes[j], label, n) == 0)
            return AAS_ERR_OK;
    if (d->n_classes == AAS_DS_MAX_CLASSES)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "line %lld: more than %d distinct labels", (long long)d->lineno,
                           AAS_DS_MAX_CLASSES);
    char *s = malloc(n + 1);
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    memcpy(s, label, n);
    s[n] = '\0';
    d->classes[j] = s;
    d->n_classes++;
    return AAS_ERR_OK;
}

/* "label<TAB>text": the rules of train --text-input (docs/text.md). */
static aas_err_t aas_ds_tsv_line(aas_ds_t *d, const char *l, size_t n, uint64_t off,
                                 char *errstr, size_t errstr_size) {
    if (n == 0 || l[0] == '#') return AAS_ERR_OK;
    size_t bad = aas_ds_utf8_bad((const unsigned char *)l, n);
    const char *nul = memchr(l, '\0', n);
    if (nul && (size_t)(nul - l) < bad) bad = (size_t)(nul - l);
    if (bad < n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "line %lld, byte %zu (offset %llu in the file): %s",
                           (long long)d->lineno, bad + 1, (unsigned long long)(off + bad),
                           l[bad] ? "invalid UTF-8" : "a NUL byte");
    const char *tab = memchr(l, '\t', n);
    if (!tab || tab == l || tab - l > AAS_DS_MAX_LABEL || memchr(l, ',', (size_t)(tab - l)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "line %lld: want label<TAB>text, the label 1..%d bytes "
                           "without ','", (long long)d->lineno, AAS_DS_MAX_LABEL);
    d->rows++;
    return aas_ds_class_add(d, l, (size_t)(tab - l), errstr, errstr_size);
}

/* CSV header: the column names, split at ',', trimmed, quotes dropped. */
static aas_err_t aas_ds_csv_header(aas_ds_t *d, const char *l, size_t n, char *errstr,
                                   size_t errstr_size) {
    if (aas_ds_utf8_bad((const unsigned char *)l, n) < n || memchr(l, '\0', n))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "line %lld: the header is not valid UTF-8", (long long)d->lineno);
    if (!(d->header = json_array()))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (;;) {
        const char *comma = memchr(l + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - l) : n, b = i;
        while (b < e && (l[b] == ' ' || l[b] == '\t')) b++;
        while (e > b && (l[e - 1] == ' ' || l[e - 1] == '\t')) e--;
        if (e - b >= 2 && l[b] == '"' && l[e - 1] == '"') b++, e--;
        json_t *s = json_stringn(l + b, e - b);
        if (!s || json_array_append_new(d->header, s))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        if (!comma) break;
        i = (size_t)(comma - l) + 1;
    }
    d->header_seen = 1;
    return AAS_ERR_OK;
}

/* One CSV line; l[n] is writable scratch (a '\n' or spare room). */
static aas_err_t aas_ds_csv_line(aas_ds_t *d, char *l, size_t n, char *errstr,
                                 size_t errstr_size) {
    size_t s = 0;
    while (s < n && (l[s] == ' ' || l[s] == '\t')) s++;
    if (s == n || l[s] == '#') return AAS_ERR_OK;
    if (d->o->header && !d->header_seen) {
        if (d->base_off > 0) /* a chunk went out already */
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "line %lld: the header must lie in the first %zu bytes",
                               (long long)d->lineno, AAS_DS_CHUNK);
        return aas_ds_csv_header(d, l, n, errstr, errstr_size);
    }
    char saved = l[n];
    l[n] = '\0';
    aas_err_t err = AAS_ERR_OK;
    int64_t k = 0;
    double last = 0;
    const char *why = NULL;
    if (memchr(l, '\0', n)) why = "a NUL byte";
    for (char *p = l + s; !why;) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        k++;
        if (end == p) why = "not a number";
        else if (!isfinite(v) || fabs(v) > FLT_MAX || errno == ERANGE)
            why = "not a finite float";
        if (why) break;
        last = v;
        p = end;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p == '\0') break;
        if (*p != ',') {
            why = "expected ',' after it";
            break;
        }
        p++;
    }
    if (why)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "line %lld, value %lld: %s%s",
                          (long long)d->lineno, (long long)k, why,
                          d->rows == 0 && !d->o->header && strcmp(why, "a NUL byte")
                              ? " (if this line is a header, say --header)" : "");
    else if (k < 2)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "line %lld: a row needs features and a label (2+ values)",
                          (long long)d->lineno);
    else if (d->rows > 0 && k != d->cols)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "line %lld has %lld values, the first row has %lld",
                          (long long)d->lineno, (long long)k, (long long)d->cols);
    else if (d->header && (size_t)k != json_array_size(d->header))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "line %lld has %lld values, the header names %zu columns",
                          (long long)d->lineno, (long long)k, json_array_size(d->header));
    else if (last < 0 || last > 65535 || last != floor(last))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "line %lld: label %g is not a class index (an integer 0..65535)",
                          (long long)d->lineno, last);
    l[n] = saved;
    if (err) return err;
    d->cols = k;
    d->rows++;
    return AAS_ERR_OK;
}

static aas_err_t aas_ds_line(aas_ds_t *d, char *l, size_t n, char *errstr,
                             size_t errstr_size) {
    d->lineno++;
    if (n > 0 && l[n - 1] == '\r') n--;
    uint64_t off = d->base_off + (uint64_t)(l - d->buf);
    return d->o->type == AAS_CLIENT_DATASET_TSV
               ? aas_ds_tsv_line(d, l, n, off, errstr, errstr_size)
               : aas_ds_csv_line(d, l, n, errstr, errstr_size);
}

/* Store [0, done) as the next chunk and move the rest to the front. */
static aas_err_t aas_ds_flush(aas_ds_t *d, char *errstr, size_t errstr_size) {
    if (d->done == 0) return AAS_ERR_OK;
    aas_err_t err = aas_store_dataset_append(d->up, d->buf, d->done, errstr, errstr_size);
    if (err) return err;
    memmove(d->buf, d->buf + d->done, d->len - d->done);
    d->len -= d->done;
    d->base_off += d->done;
    d->done = 0;
    if (d->o->progress) d->o->progress(d->o->opaque, d->base_off, d->o->total_bytes);
    return AAS_ERR_OK;
}

/* Check the complete lines in [done, len) and add them to the chunk. */
static aas_err_t aas_ds_scan(aas_ds_t *d, int eof, char *errstr, size_t errstr_size) {
    aas_err_t err;
    for (;;) {
        char *start = d->buf + d->done;
        size_t avail = d->len - d->done;
        char *nl = memchr(start, '\n', avail);
        size_t n = nl ? (size_t)(nl - start) + 1 : avail;
        if (!nl && (!eof || avail == 0)) {
            if (avail > AAS_DS_CHUNK)
                return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                                   "line %lld is longer than %zu bytes",
                                   (long long)d->lineno + 1, AAS_DS_CHUNK);
            return AAS_ERR_OK; /* wait for the rest of the line */
        }
        if (n > AAS_DS_CHUNK)
            return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                               "line %lld is longer than %zu bytes", (long long)d->lineno + 1,
                               AAS_DS_CHUNK);
        if (d->done + n > AAS_DS_CHUNK) {
            if ((err = aas_ds_flush(d, errstr, errstr_size))) return err;
            start = d->buf;
        }
        /* The last line without '\n' has room after it: len < AAS_DS_BUF. */
        if ((err = aas_ds_line(d, start, nl ? n - 1 : n, errstr, errstr_size))) return err;
        d->done += n;
        if (!nl) return AAS_ERR_OK;
    }
}

static int aas_ds_cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static aas_err_t aas_ds_meta(aas_ds_t *d, char **out, char *errstr, size_t errstr_size) {
    uint64_t bytes, crc;
    int64_t chunks;
    aas_store_dataset_up_stats(d->up, &bytes, &chunks, &crc, NULL);
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)crc);
    const char *file = d->o->file ? d->o->file : "-";
    const char *slash = strrchr(file, '/');
    if (slash && slash[1]) file = slash + 1;
    json_t *m = json_object();
    int bad = !m;
    int tsv = d->o->type == AAS_CLIENT_DATASET_TSV;
    bad = bad || json_object_set_new(m, "format", json_string("aas.dataset.v2"));
    bad = bad || json_object_set_new(m, "type", json_string(tsv ? "tsv" : "csv"));
    bad = bad || json_object_set_new(m, "rows", json_integer(d->rows));
    bad = bad || json_object_set_new(m, "bytes", json_integer((json_int_t)bytes));
    bad = bad || json_object_set_new(m, "chunks", json_integer(chunks));
    bad = bad || json_object_set_new(m, "crc64", json_string(hex));
    bad = bad || json_object_set_new(m, "header",
                                     d->header ? json_incref(d->header) : json_null());
    if (tsv) {
        /* Class order: labels sorted by strcmp, as train --text-input. */
        char **names = malloc((d->n_classes ? d->n_classes : 1) * sizeof(char *));
        json_t *arr = names ? json_array() : NULL;
        size_t k = 0;
        if (!arr) bad = 1;
        for (size_t i = 0; !bad && i < d->cap_classes; i++)
            if (d->classes[i]) names[k++] = d->classes[i];
        if (!bad) qsort(names, k, sizeof(char *), aas_ds_cmp_name);
        for (size_t i = 0; !bad && i < k; i++)
            bad = json_array_append_new(arr, json_string(names[i])) != 0;
        free(names);
        if (arr) bad = json_object_set_new(m, "classes", arr) || bad;
    } else {
        bad = bad || json_object_set_new(m, "cols", json_integer(d->cols));
    }
    bad = bad || json_object_set_new(m, "created_ms", json_integer(aas_now_ms()));
    bad = bad || json_object_set_new(m, "file", json_string(file));
    char *text = bad ? NULL : json_dumps(m, JSON_COMPACT);
    json_decref(m);
    if (!text)
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "data set %s: cannot build its meta (out of memory, or a "
                           "file name that is not UTF-8)", d->name);
    *out = text;
    return AAS_ERR_OK;
}

static void aas_ds_clear(aas_ds_t *d) {
    for (size_t i = 0; i < d->cap_classes; i++) free(d->classes[i]);
    free(d->classes);
    json_decref(d->header);
    free(d->buf);
}

aas_err_t aas_client_dataset_put_stream(aas_store_t *st, const char *name, FILE *fp,
                                        const aas_client_dataset_opts_t *o,
                                        aas_client_dataset_stats_t *out, char *errstr,
                                        size_t errstr_size) {
    if (!st || !name || !fp || !o ||
        (o->type != AAS_CLIENT_DATASET_TSV && o->type != AAS_CLIENT_DATASET_CSV) ||
        (o->header != 0 && o->header != 1) ||
        (o->type == AAS_CLIENT_DATASET_TSV && o->header))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "data set upload: bad arguments (type tsv|csv; header 0|1, "
                           "0 for tsv)");
    aas_ds_t d = {.o = o, .name = name};
    aas_err_t err = AAS_ERR_OK;
    if (!(d.buf = malloc(AAS_DS_BUF)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    err = aas_store_dataset_begin(st, name, &d.up, errstr, errstr_size);
    int eof = 0;
    while (!err && !eof) {
        /* Keep one spare byte after the data (a terminator for the last
         * line); a full buffer always has a chunk ready to go. */
        if (d.len >= AAS_DS_BUF - 1 && (err = aas_ds_flush(&d, errstr, errstr_size)))
            break;
        size_t want = AAS_DS_BUF - 1 - d.len;
        if (want > AAS_DS_READ) want = AAS_DS_READ;
        size_t got = fread(d.buf + d.len, 1, want, fp);
        d.len += got;
        if (got == 0) {
            if (ferror(fp)) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_IO,
                                  "reading %s failed: %s", o->file ? o->file : "the input",
                                  strerror(errno));
                break;
            }
            eof = 1;
        }
        err = aas_ds_scan(&d, eof, errstr, errstr_size);
    }
    if (!err && d.rows == 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "data set %s: no data rows in %s", name, o->file ? o->file : "the input");
    if (!err) err = aas_ds_flush(&d, errstr, errstr_size);
    char *meta = NULL;
    if (!err) err = aas_ds_meta(&d, &meta, errstr, errstr_size);
    aas_client_dataset_stats_t stats = {.rows = d.rows, .cols = d.cols,
                                        .classes = (int64_t)d.n_classes};
    if (!err) {
        aas_store_dataset_up_stats(d.up, &stats.bytes, &stats.chunks, &stats.crc64, NULL);
        err = aas_store_dataset_commit(d.up, meta, errstr, errstr_size); /* consumes up */
        d.up = NULL;
    }
    aas_store_dataset_abort(d.up);
    free(meta);
    aas_ds_clear(&d);
    if (!err && out) *out = stats;
    return err;
}
