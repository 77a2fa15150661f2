/*
 * train_text.c - AASTXT2 training; see train_text.h.
 *
 * Rows live in arenas of packed records {i32 label, u32 nnz, u32 idx[nnz],
 * f32 val[nnz]}: the cache (every row, when it fits) or the shuffle buffer
 * (streaming).  Labels are strings in the data; a small open-addressing
 * table maps them to class indices.
 */
#include "train_text.h"
#include "train_text_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_text2.h"


void aas_text_train_params_default(aas_text_train_params_t *p) {
    memset(p, 0, sizeof(*p));
    aas_textfeat_conf_default(&p->feat);
    p->head = AAS_TEXT2_HEAD_LINEAR;
    p->idf = 1;
    p->epochs = 10;
    p->learning_rate = 0.1;
    p->l2 = 1e-6;
    p->seed = 1;
    p->validation_fraction = 0.1;
    p->cache_bytes = (size_t)256 << 20;
    p->shuffle_bytes = (size_t)32 << 20;
    aas_train_params_default(&p->mlp);
}

static aas_err_t aas_tt_int(const char *key, const char *v, long long lo, long long hi,
                            long long *out, char *errstr, size_t errstr_size) {
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "%s: '%s' is not an integer in %lld..%lld", key, v, lo, hi);
    *out = x;
    return AAS_ERR_OK;
}

aas_err_t aas_text_train_params_set(aas_text_train_params_t *p, const char *key,
                                    const char *v, char *errstr, size_t errstr_size) {
    long long x = 0;
    aas_err_t err;
    if (!strcmp(key, "text_dim")) {
        if ((err = aas_tt_int(key, v, AAS_TEXTFEAT_MIN_DIM, AAS_TEXTFEAT_MAX_DIM, &x, errstr,
                              errstr_size)))
            return err;
        if (x & (x - 1))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "text_dim: %lld is not a power of two", x);
        p->feat.dim = x;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "char_ngrams")) {
        int a, b, n = 0;
        if (!strcmp(v, "0")) {
            p->feat.char_min = p->feat.char_max = 0;
            return AAS_ERR_OK;
        }
        if (sscanf(v, "%d-%d%n", &a, &b, &n) != 2 || v[n] || a < 1 || b < a ||
            b > AAS_TEXTFEAT_MAX_ORDER)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "char_ngrams: '%s' is not MIN-MAX with 1 <= MIN <= MAX <= %d "
                               "(or 0 for none)", v, AAS_TEXTFEAT_MAX_ORDER);
        p->feat.char_min = a;
        p->feat.char_max = b;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "word_ngrams")) {
        if ((err = aas_tt_int(key, v, 0, AAS_TEXTFEAT_MAX_ORDER, &x, errstr, errstr_size)))
            return err;
        p->feat.word_max = (int32_t)x;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "sublinear_tf") || !strcmp(key, "idf")) {
        if ((err = aas_tt_int(key, v, 0, 1, &x, errstr, errstr_size))) return err;
        *(key[0] == 's' ? &p->feat.sublinear_tf : &p->idf) = (int)x;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "head")) {
        if (strcmp(v, "linear") && strcmp(v, "mlp"))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "head: '%s' is not linear or mlp", v);
        p->head = v[0] == 'l' ? AAS_TEXT2_HEAD_LINEAR : AAS_TEXT2_HEAD_MLP;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "classes")) {
        if ((err = aas_tt_int(key, v, 2, 65536, &x, errstr, errstr_size))) return err;
        p->min_classes = (int32_t)x;
        return AAS_ERR_OK;
    }
    if (!strcmp(key, "text_cache_mb")) {
        if ((err = aas_tt_int(key, v, 0, 1 << 20, &x, errstr, errstr_size))) return err;
        p->cache_bytes = (size_t)x << 20;
        return AAS_ERR_OK;
    }
    /* The rest are train.h's keys: validated there, then mirrored. */
    aas_train_params_t m = p->mlp;
    err = aas_train_params_set(&m, key, v, errstr, errstr_size);
    if (err) {
        if (strstr(errstr ? errstr : "", "unknown"))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOT_FOUND,
                               "unknown training parameter '%s'", key);
        return err;
    }
    p->mlp = m;
    if (!strcmp(key, "epochs")) p->epochs = m.epochs;
    else if (!strcmp(key, "learning_rate")) p->learning_rate = m.learning_rate;
    else if (!strcmp(key, "weight_decay")) p->l2 = m.weight_decay;
    else if (!strcmp(key, "seed")) p->seed = m.seed;
    else if (!strcmp(key, "validation_fraction")) p->validation_fraction = m.validation_fraction;
    return AAS_ERR_OK;
}

/* ---- labels ---- */


static uint32_t aas_tt_hash(const char *s, size_t n, uint32_t h) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void aas_tt_labels_free(aas_tt_labels_t *l) {
    for (size_t i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
    free(l->slots);
    free(l->order);
}

/* Index of label s (insertion order) or, with add, a new one; -1 absent,
 * -2 out of memory or too many. */
static int32_t aas_tt_label(aas_tt_labels_t *l, const char *s, size_t n, int add) {
    if (l->cap == 0 || (add && l->n * 2 >= l->cap)) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int32_t *slots = malloc(cap * sizeof(int32_t));
        char **names = realloc(l->names, cap / 2 * sizeof(char *));
        if (!slots || !names) {
            free(slots);
            if (names) l->names = names;
            return -2;
        }
        l->names = names;
        for (size_t i = 0; i < cap; i++) slots[i] = -1;
        for (size_t i = 0; i < l->n; i++) {
            size_t h = aas_tt_hash(names[i], strlen(names[i]), 2166136261u) & (cap - 1);
            while (slots[h] >= 0) h = (h + 1) & (cap - 1);
            slots[h] = (int32_t)i;
        }
        free(l->slots);
        l->slots = slots;
        l->cap = cap;
    }
    size_t h = aas_tt_hash(s, n, 2166136261u) & (l->cap - 1);
    for (; l->slots[h] >= 0; h = (h + 1) & (l->cap - 1)) {
        const char *t = l->names[l->slots[h]];
        if (strlen(t) == n && memcmp(t, s, n) == 0) return l->slots[h];
    }
    if (!add) return -1;
    if (l->n >= AAS_TT_MAX_CLASSES || !(l->names[l->n] = malloc(n + 1))) return -2;
    memcpy(l->names[l->n], s, n);
    l->names[l->n][n] = '\0';
    l->slots[h] = (int32_t)l->n;
    return (int32_t)l->n++;
}

static int aas_tt_cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- row arenas ---- */


static void aas_tt_arena_free(aas_tt_arena_t *a) {
    free(a->buf);
    free(a->off);
    memset(a, 0, sizeof(*a));
}

/* Append a row; 1 if it does not fit a->limit, -1 out of memory. */
static int aas_tt_arena_push(aas_tt_arena_t *a, int32_t label, const uint32_t *idx,
                             const float *val, size_t nnz) {
    size_t need = 8 + nnz * 8;
    if (a->len + need + (a->n + 1) * sizeof(int64_t) > a->limit) return 1;
    if (a->len + need > a->cap) {
        size_t cap = a->cap ? a->cap : (size_t)1 << 20;
        while (cap < a->len + need) cap *= 2;
        if (cap > a->limit) cap = a->limit;
        unsigned char *b = realloc(a->buf, cap);
        if (!b) return -1;
        a->buf = b;
        a->cap = cap;
    }
    if (a->n == a->off_cap) {
        size_t c = a->off_cap ? a->off_cap * 2 : 4096;
        int64_t *o = realloc(a->off, c * sizeof(int64_t));
        if (!o) return -1;
        a->off = o;
        a->off_cap = c;
    }
    unsigned char *p = a->buf + a->len;
    uint32_t n32 = (uint32_t)nnz;
    memcpy(p, &label, 4);
    memcpy(p + 4, &n32, 4);
    memcpy(p + 8, idx, nnz * 4);
    memcpy(p + 8 + nnz * 4, val, nnz * 4);
    a->off[a->n++] = (int64_t)a->len;
    a->len += need;
    return 0;
}

/* Row i: its label, nnz, and pointers into the arena (4-byte aligned). */
void aas_tt_arena_row(const aas_tt_arena_t *a, size_t i, int32_t *label,
                             uint32_t **idx, float **val, size_t *nnz) {
    unsigned char *p = a->buf + a->off[i];
    uint32_t n;
    memcpy(label, p, 4);
    memcpy(&n, p + 4, 4);
    *nnz = n;
    *idx = (uint32_t *)(void *)(p + 8);
    *val = (float *)(void *)(p + 8 + (size_t)n * 4);
}

/* ---- the job ---- */


static double aas_tt_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

uint64_t aas_tt_rand(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int aas_tt_is_val(const aas_tt_t *t, const char *text, size_t n) {
    if (t->p->validation_fraction <= 0) return 0;
    uint64_t s = aas_tt_hash(text, n, 2166136261u) ^ (t->p->seed * 0x9e3779b97f4a7c15ull);
    double u = (double)(aas_tt_rand(&s) >> 11) / 9007199254740992.0;
    return u < t->p->validation_fraction;
}

/* A numeric row: dense_dim comma-separated finite numbers, as the non-zero
 * (index, value) pairs the arenas keep. */
static aas_err_t aas_tt_parse_numbers(aas_tt_t *t, const char *s, size_t n,
                                      const uint32_t **idx, const float **val, size_t *nnz) {
    char buf[64];
    size_t k = 0, pos = 0;
    int64_t col = 0;
    for (; pos <= n; col++) {
        size_t end = pos;
        while (end < n && s[end] != ',') end++;
        size_t len = end - pos;
        while (len > 0 && (s[pos] == ' ' || s[pos] == '\t')) pos++, len--;
        while (len > 0 && (s[pos + len - 1] == ' ' || s[pos + len - 1] == '\t')) len--;
        char *e = NULL;
        float v = 0;
        if (len > 0 && len < sizeof(buf)) {
            memcpy(buf, s + pos, len);
            buf[len] = '\0';
            v = strtof(buf, &e);
        }
        if (col >= t->dim || len == 0 || len >= sizeof(buf) || *e || !isfinite(v))
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                               "row %lld: value %lld is not a finite number, or more than "
                               "%lld values before the label", (long long)t->seen + 1,
                               (long long)col + 1, (long long)t->dim);
        if (v != 0) {
            t->didx[k] = (uint32_t)col;
            t->dval[k++] = v;
        }
        pos = end + 1;
    }
    if (col != t->dim)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_SHAPE,
                           "row %lld: %lld values before the label, the first row had %lld",
                           (long long)t->seen + 1, (long long)col, (long long)t->dim);
    *idx = t->didx;
    *val = t->dval;
    *nnz = k;
    return AAS_ERR_OK;
}

/* The next row of the reader as features: *eof at the end; *skip for a
 * row with no features (counted, not trained on). */
static aas_err_t aas_tt_read(aas_tt_t *t, int raw, int want, int32_t *label,
                             const uint32_t **idx, const float **val, size_t *nnz,
                             int *is_val, int *eof, int *skip) {
    const char *text, *lab;
    size_t tn, ln;
    *skip = 0;
    *eof = 0;
    aas_err_t err = t->r->next(t->r->opaque, &text, &tn, &lab, &ln, eof, t->errstr,
                               t->errstr_size);
    if (err || *eof) return err;
    if (ln == 0 || ln > AAS_TT_MAX_LABEL)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "row %lld: a label is 1..%d bytes", (long long)t->seen + 1,
                           AAS_TT_MAX_LABEL);
    *is_val = aas_tt_is_val(t, text, tn);
    int32_t k = aas_tt_label(&t->labels, lab, ln, !t->fixed_classes && raw);
    if (k == -2) return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_TOO_LARGE,
                                    "more than %d classes (or out of memory)",
                                    AAS_TT_MAX_CLASSES);
    if (k < 0)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "row %lld: label '%.*s' is not one of the classes",
                           (long long)t->seen + 1, (int)ln, lab);
    *label = t->labels.order ? t->labels.order[k] : k;
    if (want >= 0 && want != *is_val) {
        *skip = 1;
        return AAS_ERR_OK;
    }
    if (!t->tf) return aas_tt_parse_numbers(t, text, tn, idx, val, nnz);
    char why[256];
    err = aas_textfeat_run(t->tf, text, tn, raw, idx, val, nnz, why, sizeof(why));
    if (err == AAS_ERR_INVAL && strstr(why, "no letter")) {
        *skip = 2;
        return AAS_ERR_OK;
    }
    if (err)
        return aas_err_set(t->errstr, t->errstr_size, err, "row %lld: %s",
                           (long long)t->seen + 1, why);
    return AAS_ERR_OK;
}

/* Pass 1: rows, classes, document frequencies, and the cache of raw rows. */
static aas_err_t aas_tt_count(aas_tt_t *t) {
    const aas_text_train_params_t *p = t->p;
    aas_err_t err = t->r->rewind(t->r->opaque, 0, t->errstr, t->errstr_size);
    if (err) return err;
    t->cached = 1;
    t->train.limit = t->val.limit = p->cache_bytes;
    for (t->seen = 0;; t->seen++) {
        int32_t label;
        const uint32_t *idx;
        const float *val;
        size_t nnz;
        int is_val, eof, skip;
        if ((err = aas_tt_read(t, 1, -1, &label, &idx, &val, &nnz, &is_val, &eof, &skip)))
            return err;
        if (eof) break;
        if (p->max_rows > 0 && t->seen >= p->max_rows)
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_TOO_LARGE,
                               "more than %lld rows (the worker's limit)",
                               (long long)p->max_rows);
        if (skip) {
            t->n_skipped++;
            continue;
        }
        t->n_rows++;
        if (is_val) {
            t->n_val++;
        } else {
            t->n_train++;
            for (size_t k = 0; k < nnz; k++) t->df[idx[k]]++;
        }
        if (!t->cached) continue;
        aas_tt_arena_t *a = is_val ? &t->val : &t->train;
        /* the two caches share one budget */
        a->limit = p->cache_bytes - (is_val ? t->train.len : t->val.len);
        int rc = aas_tt_arena_push(a, label, idx, val, nnz);
        if (rc) {
            t->cached = 0;
            aas_tt_arena_free(&t->train);
            aas_tt_arena_free(&t->val);
        }
    }
    if (t->n_train == 0)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "no training rows (%lld rows read, %lld without features, "
                           "%lld held out)", (long long)t->seen, (long long)t->n_skipped,
                           (long long)t->n_val);
    return AAS_ERR_OK;
}

/* Classes in strcmp order (unless fixed); cached labels renumbered. */
static aas_err_t aas_tt_classes(aas_tt_t *t) {
    aas_tt_labels_t *l = &t->labels;
    if (l->n < 2)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "the rows name %zu class%s: a classifier needs 2 or more",
                           l->n, l->n == 1 ? "" : "es");
    t->classes = (int32_t)l->n;
    if (t->fixed_classes) return AAS_ERR_OK;
    if (!t->tf) {
        /* numeric rows: a label is a class index 0..65535, "0".."max" */
        if (!(l->order = malloc(l->n * sizeof(int32_t))))
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
        int32_t max = 0;
        for (size_t i = 0; i < l->n; i++) {
            char *e;
            long v = strtol(l->names[i], &e, 10);
            if (*e || v < 0 || v > 65535 || e == l->names[i])
                return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                                   "label '%s' is not a class index 0..65535", l->names[i]);
            l->order[i] = (int32_t)v;
            max = (int32_t)v > max ? (int32_t)v : max;
        }
        t->classes = max + 1 > t->p->min_classes ? max + 1 : t->p->min_classes;
        if (t->classes < 2)
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                               "labels name only class 0: a classifier needs 2 or more");
        goto renumber;
    }
    char **sorted = malloc(l->n * sizeof(char *));
    if (!(l->order = malloc(l->n * sizeof(int32_t))) || !sorted) {
        free(sorted);
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    memcpy(sorted, l->names, l->n * sizeof(char *));
    qsort(sorted, l->n, sizeof(char *), aas_tt_cmp_name);
    for (size_t i = 0; i < l->n; i++) {
        size_t j = 0;
        while (strcmp(l->names[i], sorted[j])) j++; /* classes are few */
        l->order[i] = (int32_t)j;
    }
    free(sorted);
renumber:;
    aas_tt_arena_t *as[2] = {&t->train, &t->val};
    for (int a = 0; a < 2 && t->cached; a++)
        for (size_t i = 0; i < as[a]->n; i++) {
            unsigned char *q = as[a]->buf + as[a]->off[i];
            int32_t k;
            memcpy(&k, q, 4);
            k = l->order[k];
            memcpy(q, &k, 4);
        }
    return AAS_ERR_OK;
}

/* IDF as scikit-learn's smooth_idf, then the cached rows weighed. */
static void aas_tt_idf(aas_tt_t *t) {
    int64_t dim = t->dim;
    if (!t->tf) return; /* numeric rows are used as they are */
    if (t->p->idf)
        for (int64_t i = 0; i < dim; i++)
            t->idf[i] = (float)(log((1.0 + (double)t->n_train) / (1.0 + t->df[i])) + 1.0);
    aas_tt_arena_t *as[2] = {&t->train, &t->val};
    for (int a = 0; a < 2 && t->cached; a++)
        for (size_t i = 0; i < as[a]->n; i++) {
            int32_t label;
            uint32_t *idx;
            float *val;
            size_t nnz;
            aas_tt_arena_row(as[a], i, &label, &idx, &val, &nnz);
            aas_textfeat_weigh(&t->p->feat, t->p->idf ? t->idf : NULL, idx, val, nnz);
        }
}

/* ---- linear head ---- */

/* Softmax probabilities of one row into t->lg; returns -log p[label]. */
static double aas_tt_lin_forward(aas_tt_t *t, int32_t label, const uint32_t *idx,
                                 const float *val, size_t nnz) {
    int32_t c = t->classes;
    double *lg = t->lg;
    for (int32_t k = 0; k < c; k++) lg[k] = t->b[k];
    for (size_t j = 0; j < nnz; j++) {
        const float *w = t->w + (size_t)idx[j] * (size_t)c;
        for (int32_t k = 0; k < c; k++) lg[k] += (double)val[j] * w[k];
    }
    double mx = lg[0], sum = 0;
    for (int32_t k = 1; k < c; k++) mx = lg[k] > mx ? lg[k] : mx;
    for (int32_t k = 0; k < c; k++) sum += (lg[k] = exp(lg[k] - mx));
    for (int32_t k = 0; k < c; k++) lg[k] /= sum;
    double pl = lg[label] > 1e-300 ? lg[label] : 1e-300;
    return -log(pl);
}

static void aas_tt_lin_step(aas_tt_t *t, int32_t label, const uint32_t *idx,
                            const float *val, size_t nnz) {
    int32_t c = t->classes;
    double lr = t->p->learning_rate, l2 = t->p->l2;
    t->loss_sum += aas_tt_lin_forward(t, label, idx, val, nnz);
    t->loss_n++;
    for (int32_t k = 0; k < c; k++) {
        double g = t->lg[k] - (k == label);
        t->gb[k] += (float)(g * g);
        t->b[k] -= (float)(lr * g / (sqrt(t->gb[k]) + 1e-8));
        t->lg[k] = g;
    }
    for (size_t j = 0; j < nnz; j++) {
        size_t o = (size_t)idx[j] * (size_t)c;
        for (int32_t k = 0; k < c; k++) {
            double g = t->lg[k] * val[j] + l2 * t->w[o + k];
            t->gw[o + k] += (float)(g * g);
            t->w[o + k] -= (float)(lr * g / (sqrt(t->gw[o + k]) + 1e-8));
        }
    }
}

/* ---- MLP head ---- */

aas_err_t aas_tt_mlp_flush(aas_tt_t *t) {
    if (t->nb == 0) return AAS_ERR_OK;
    double loss;
    aas_err_t err = aas_train_net_loss_and_grads(t->net, t->xb, t->yb, t->nb, NULL, &loss,
                                                 t->errstr, t->errstr_size);
    if (!err) err = aas_train_net_step(t->net, t->errstr, t->errstr_size);
    if (!err && !isfinite(loss))
        err = aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NONFINITE,
                          "training diverged (loss %g): lower learning_rate", loss);
    t->loss_sum += loss * (double)t->nb;
    t->loss_n += t->nb;
    memset(t->xb, 0, (size_t)(t->nb * t->dim) * sizeof(float));
    t->nb = 0;
    return err;
}

static aas_err_t aas_tt_mlp_add(aas_tt_t *t, int32_t label, const uint32_t *idx,
                                const float *val, size_t nnz) {
    float *x = t->xb + t->nb * t->dim;
    for (size_t j = 0; j < nnz; j++) x[idx[j]] = val[j];
    t->yb[t->nb++] = label;
    return t->nb == t->p->mlp.batch_size ? aas_tt_mlp_flush(t) : AAS_ERR_OK;
}

/* ---- epochs ---- */

static aas_err_t aas_tt_progress(aas_tt_t *t, int end, double vl, double va) {
    double now = aas_tt_now_ms();
    if (!t->cb || (!end && now - t->last_cb < AAS_TRAIN_PROGRESS_MS)) return AAS_ERR_OK;
    t->last_cb = now;
    aas_train_progress_t pr = {.end_of_epoch = end, .epoch = t->epoch + end,
                               .epochs = t->p->epochs, .batch = t->batch,
                               .batches = t->batches,
                               .train_loss = t->loss_n ? t->loss_sum / (double)t->loss_n : NAN,
                               .val_loss = vl, .val_accuracy = va,
                               .elapsed_ms = now - t->t0};
    if (t->cb(t->opaque, &pr)) t->cancel = 1;
    return AAS_ERR_OK;
}

aas_err_t aas_tt_train_row(aas_tt_t *t, int32_t label, const uint32_t *idx,
                                  const float *val, size_t nnz) {
    aas_err_t err = AAS_ERR_OK;
    if (t->net) err = aas_tt_mlp_add(t, label, idx, val, nnz);
    else aas_tt_lin_step(t, label, idx, val, nnz);
    t->batch++;
    if ((t->batch & 255) == 0) aas_tt_progress(t, 0, NAN, NAN);
    return err;
}

void aas_tt_shuffle(int64_t *v, size_t n, uint64_t *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(aas_tt_rand(rng) % i);
        int64_t tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

aas_err_t aas_tt_train_rows(aas_tt_t *t, const aas_tt_arena_t *a, const int64_t *order,
                            size_t n) {
    for (size_t i = 0; i < n && !t->cancel; i++) {
        int32_t label;
        uint32_t *idx;
        float *val;
        size_t nnz;
        aas_tt_arena_row(a, order ? (size_t)order[i] : i, &label, &idx, &val, &nnz);
        aas_err_t err = aas_tt_train_row(t, label, idx, val, nnz);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

/* Train on the rows of arena a in a random order. */
static aas_err_t aas_tt_arena_epoch(aas_tt_t *t, aas_tt_arena_t *a) {
    aas_tt_shuffle(a->off, a->n, &t->rng);
    return aas_tt_train_rows(t, a, NULL, a->n);
}

/* One epoch read from the stream: rows go through the shuffle buffer. */
static aas_err_t aas_tt_stream_epoch(aas_tt_t *t) {
    aas_err_t err = t->r->rewind(t->r->opaque, t->p->seed + (uint64_t)t->epoch + 1,
                                 t->errstr, t->errstr_size);
    for (t->seen = 0; !err && !t->cancel; t->seen++) {
        int32_t label;
        const uint32_t *idx;
        const float *val;
        size_t nnz;
        int is_val, eof, skip;
        if ((err = aas_tt_read(t, 0, 0, &label, &idx, &val, &nnz, &is_val, &eof, &skip)) ||
            eof)
            break;
        if (skip) continue;
        int rc = aas_tt_arena_push(&t->buffer, label, idx, val, nnz);
        if (rc == 1) {
            err = aas_tt_arena_epoch(t, &t->buffer);
            t->buffer.len = t->buffer.n = 0;
            rc = aas_tt_arena_push(&t->buffer, label, idx, val, nnz);
        }
        if (rc)
            err = aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM,
                              "row %lld does not fit the shuffle buffer", (long long)t->seen + 1);
    }
    if (!err && !t->cancel) err = aas_tt_arena_epoch(t, &t->buffer);
    t->buffer.len = t->buffer.n = 0;
    return err;
}

/* Mean loss and accuracy on the validation rows. */
aas_err_t aas_tt_evaluate(aas_tt_t *t, double *loss, double *acc) {
    double ls = 0;
    int64_t right = 0, n = 0;
    aas_err_t err = AAS_ERR_OK;
    float *probs = NULL;
    if (t->net && !(probs = malloc((size_t)t->classes * sizeof(float))))
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!t->cached) err = t->r->rewind(t->r->opaque, 0, t->errstr, t->errstr_size);
    for (size_t i = 0; !err; i++) {
        int32_t label;
        const uint32_t *idx;
        const float *val;
        size_t nnz;
        if (t->cached) {
            if (i >= t->val.n) break;
            uint32_t *ii;
            float *vv;
            aas_tt_arena_row(&t->val, i, &label, &ii, &vv, &nnz);
            idx = ii;
            val = vv;
        } else {
            int is_val, eof, skip;
            if ((err = aas_tt_read(t, 0, 1, &label, &idx, &val, &nnz, &is_val, &eof,
                                   &skip)) || eof)
                break;
            if (skip) continue;
        }
        const double *pr = t->lg;
        if (t->net) {
            for (size_t j = 0; j < nnz; j++) t->xb[idx[j]] = val[j];
            err = aas_train_net_predict(t->net, t->xb, 1, probs, t->errstr, t->errstr_size);
            for (size_t j = 0; j < nnz; j++) t->xb[idx[j]] = 0;
            for (int32_t k = 0; k < t->classes; k++) t->lg[k] = probs[k];
        } else {
            aas_tt_lin_forward(t, label, idx, val, nnz);
        }
        int32_t best = 0;
        for (int32_t k = 1; k < t->classes; k++) best = pr[k] > pr[best] ? k : best;
        right += best == label;
        ls += -log(pr[label] > 1e-300 ? pr[label] : 1e-300);
        n++;
    }
    free(probs);
    *loss = n ? ls / (double)n : NAN;
    *acc = n ? (double)right / (double)n : NAN;
    return err;
}

aas_err_t aas_tt_export(aas_tt_t *t, aas_train_result_t *res) {
    if (!t->tf)
        return aas_train_net_export(t->net, &res->blob, &res->blob_len, t->errstr,
                                    t->errstr_size);
    aas_text2_spec_t s = {.feat = t->p->feat, .idf = t->p->idf ? t->idf : NULL,
                          .classes = t->classes, .head = t->p->head,
                          .n_docs = (uint64_t)t->n_train};
    s.labels = t->names;
    void *mlp = NULL;
    aas_err_t err = AAS_ERR_OK;
    if (t->net) {
        err = aas_train_net_export(t->net, &mlp, &s.mlp_len, t->errstr, t->errstr_size);
        s.mlp = mlp;
    } else {
        s.w = t->w;
        s.b = t->b;
    }
    if (!err) err = aas_text2_serialize(&s, &res->blob, &res->blob_len, t->errstr,
                                        t->errstr_size);
    free(mlp);
    return err;
}

static aas_err_t aas_tt_setup(aas_tt_t *t) {
    const aas_text_train_params_t *p = t->p;
    int64_t dim = t->dim = p->dense_dim > 0 ? p->dense_dim : p->feat.dim;
    aas_err_t err = AAS_ERR_OK;
    if (p->dense_dim > 0) {
        if (p->head != AAS_TEXT2_HEAD_MLP || p->dense_dim > (1 << 20))
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                               "numeric rows: an MLP of at most %d inputs", 1 << 20);
        if (!(t->didx = malloc((size_t)dim * sizeof(uint32_t))) ||
            !(t->dval = malloc((size_t)dim * sizeof(float))))
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
    } else if ((err = aas_textfeat_new(&p->feat, NULL, &t->tf, t->errstr, t->errstr_size))) {
        return err;
    }
    if (p->head == AAS_TEXT2_HEAD_MLP && !p->dense_dim && dim > AAS_TEXT2_MLP_MAX_DIM)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "head=mlp takes text_dim up to %d (dense rows), got %lld",
                           AAS_TEXT2_MLP_MAX_DIM, (long long)dim);
    if (p->epochs < 1 || p->epochs > AAS_TRAIN_MAX_EPOCHS || !(p->learning_rate > 0) ||
        !(p->l2 >= 0) || !(p->validation_fraction >= 0 && p->validation_fraction <= 0.5))
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                           "bad epochs, learning_rate, weight_decay or validation_fraction");
    t->fixed_classes = p->classes != NULL && p->dense_dim == 0; /* numeric: names only */
    for (size_t i = 0; t->fixed_classes && i < p->n_classes; i++) {
        size_t n = strlen(p->classes[i]);
        if (aas_tt_label(&t->labels, p->classes[i], n, 1) != (int32_t)i)
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_INVAL,
                               "class_names: '%s' is repeated (or out of memory)",
                               p->classes[i]);
    }
    if (!(t->df = calloc((size_t)dim, sizeof(uint32_t))) ||
        !(t->idf = malloc((size_t)dim * sizeof(float))))
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
    t->buffer.limit = p->shuffle_bytes;
    t->rng = p->seed ^ 0x5851f42d4c957f2dull;
    return AAS_ERR_OK;
}

static aas_err_t aas_tt_head(aas_tt_t *t) {
    const aas_text_train_params_t *p = t->p;
    int64_t dim = t->dim, c = t->classes;
    if (!(t->lg = calloc((size_t)c, sizeof(double))) ||
        !(t->names = malloc((size_t)c * sizeof(char *))))
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < t->labels.n && (t->tf || t->fixed_classes); k++)
        t->names[t->fixed_classes ? (int32_t)k : t->labels.order[k]] = t->labels.names[k];
    if (p->head == AAS_TEXT2_HEAD_MLP) {
        aas_train_params_t m = p->mlp;
        m.epochs = p->epochs;
        m.seed = p->seed;
        m.validation_fraction = 0;
        if (t->tf) m.scale = 1; /* features are unit vectors; numeric rows keep `scale` */
        m.labels = t->tf ? t->names : p->classes; /* numeric: class_names, or "0".."n-1" */
        m.n_labels = t->tf ? (size_t)c : p->n_classes;
        aas_err_t err = aas_train_net_new(&m, dim, (int32_t)c, &t->net, t->errstr,
                                          t->errstr_size);
        if (err) return err;
        if (!(t->xb = calloc((size_t)(m.batch_size * dim), sizeof(float))) ||
            !(t->yb = malloc((size_t)m.batch_size * sizeof(int32_t))))
            return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM, "out of memory");
        return AAS_ERR_OK;
    }
    if (dim * c > AAS_TEXT2_LINEAR_MAX_WEIGHTS)
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_TOO_LARGE,
                           "text_dim %lld x %lld classes is over %lld weights: lower text_dim",
                           (long long)dim, (long long)c, (long long)AAS_TEXT2_LINEAR_MAX_WEIGHTS);
    /* b right after w, gb after gw: the state data-parallel rounds
     * exchange is two arrays (train_text_dp.c). */
    if (!(t->w = calloc((size_t)(dim * c + c), sizeof(float))) ||
        !(t->gw = calloc((size_t)(dim * c + c), sizeof(float))))
        return aas_err_set(t->errstr, t->errstr_size, AAS_ERR_NOMEM,
                           "out of memory for %lld x %lld weights", (long long)dim, (long long)c);
    t->b = t->w + dim * c;
    t->gb = t->gw + dim * c;
    return AAS_ERR_OK;
}

void aas_tt_free(aas_tt_t *t) {
    aas_textfeat_destroy(t->tf);
    free(t->didx);
    free(t->dval);
    aas_tt_labels_free(&t->labels);
    free(t->idf);
    free(t->df);
    aas_tt_arena_free(&t->train);
    aas_tt_arena_free(&t->val);
    aas_tt_arena_free(&t->buffer);
    free(t->w); /* and b */
    free(t->gw); /* and gb */
    free(t->lg);
    free(t->names);
    aas_train_net_destroy(t->net);
    free(t->xb);
    free(t->yb);
}

/* Everything before the first epoch: the counting pass (and cache), the
 * classes, the IDF weights and the head. */
aas_err_t aas_tt_prepare(aas_tt_t *t) {
    aas_err_t err = aas_tt_setup(t);
    if (!err) err = aas_tt_count(t);
    if (!err) err = aas_tt_classes(t);
    if (!err) {
        aas_tt_idf(t);
        if (t->tf) {
            aas_textfeat_destroy(t->tf);
            t->tf = NULL;
            err = aas_textfeat_new(&t->p->feat, t->p->idf ? t->idf : NULL, &t->tf, t->errstr,
                                   t->errstr_size);
        }
    }
    if (!err) err = aas_tt_head(t);
    return err;
}

aas_err_t aas_text_train(const aas_text_train_params_t *p, const aas_text_reader_t *r,
                         aas_train_progress_cb *cb, void *opaque, aas_train_result_t *res,
                         char *errstr, size_t errstr_size) {
    aas_tt_t t = {.p = p, .r = r, .cb = cb, .opaque = opaque, .errstr = errstr,
                  .errstr_size = errstr_size};
    memset(res, 0, sizeof(*res));
    t.t0 = t.last_cb = aas_tt_now_ms();
    int32_t E = p->epochs;
    res->curve_train_loss = calloc((size_t)(E > 0 ? E : 1), sizeof(double));
    res->curve_val_loss = calloc((size_t)(E > 0 ? E : 1), sizeof(double));
    res->curve_val_accuracy = calloc((size_t)(E > 0 ? E : 1), sizeof(double));
    aas_err_t err = !res->curve_train_loss || !res->curve_val_loss || !res->curve_val_accuracy
                        ? aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory")
                        : aas_tt_prepare(&t);
    double train_ms = 0;
    t.batches = t.n_train;
    for (t.epoch = 0; !err && t.epoch < E && !t.cancel; t.epoch++) {
        double e0 = aas_tt_now_ms();
        t.loss_sum = 0;
        t.loss_n = 0;
        t.batch = 0;
        err = t.cached ? aas_tt_arena_epoch(&t, &t.train) : aas_tt_stream_epoch(&t);
        if (!err && t.net) err = aas_tt_mlp_flush(&t);
        train_ms += aas_tt_now_ms() - e0;
        if (err || t.cancel) break;
        double vl = NAN, va = NAN;
        if (t.n_val > 0) err = aas_tt_evaluate(&t, &vl, &va);
        res->curve_train_loss[t.epoch] = t.loss_n ? t.loss_sum / (double)t.loss_n : NAN;
        res->curve_val_loss[t.epoch] = vl;
        res->curve_val_accuracy[t.epoch] = va;
        res->epochs_done = t.epoch + 1;
        res->train_loss = res->curve_train_loss[t.epoch];
        res->val_loss = vl;
        res->val_accuracy = va;
        aas_tt_progress(&t, 1, vl, va);
    }
    if (!err && res->epochs_done == 0) {
        res->val_loss = res->val_accuracy = res->train_loss = NAN;
    }
    if (!err) err = aas_tt_export(&t, res);
    res->cancelled = t.cancel;
    res->n_train = t.n_train;
    res->n_val = t.n_val;
    res->samples_per_s = train_ms > 0 ? (double)t.n_train * res->epochs_done / (train_ms / 1e3)
                                      : 0;
    res->elapsed_ms = aas_tt_now_ms() - t.t0;
    aas_tt_free(&t);
    if (err) aas_train_result_free(res);
    return err;
}
