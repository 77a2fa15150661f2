/*
 * textfeat.c - featurizer version 2; see textfeat.h and docs/text.md.
 *
 * One pass each: validate, normalise (utf8proc), collapse whitespace,
 * encode back to UTF-8 once (so every n-gram hashes bytes the docs can
 * state), then hash n-grams incrementally: FNV-1a is a stream hash, so the
 * n-gram of n+1 code points continues from the one of n.  Counts go into a
 * dim-sized accumulator; a touched list lets the output and the reset cost
 * O(features), not O(dim).
 */
#include "textfeat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define AAS_TF_FNV_OFFSET 2166136261u
#define AAS_TF_FNV_PRIME 16777619u
/* utf8proc's longest full decomposition is 18 code points per input
 * code point; bound the buffer by it rather than trust a size. */
#define AAS_TF_MAX_EXPANSION 18

struct aas_textfeat_s {
    aas_textfeat_conf_t conf;
    const float *idf;       /* borrowed, dim or NULL */
    int32_t *acc;           /* dim signed counts, all 0 between calls */
    uint8_t *seen;          /* dim flags: bucket already in the touched list */
    uint32_t *idx;          /* touched buckets, then the output */
    float *val;
    size_t cap_nnz, cap_val;
    int32_t *cps;           /* normalised code points */
    size_t cap_cps;
    int32_t *seq;           /* with whitespace collapsed and padded */
    uint32_t *off;          /* byte offset of seq[i] in u8; off[len] = end */
    uint32_t *words;        /* word i spans seq[words[2i], words[2i+1]) */
    size_t cap_seq;
    unsigned char *u8;
    size_t cap_u8;
};

void aas_textfeat_conf_default(aas_textfeat_conf_t *c) {
    *c = (aas_textfeat_conf_t){.char_min = 1, .char_max = 3, .word_max = 2,
                               .dim = AAS_TEXTFEAT_DEFAULT_DIM, .sublinear_tf = 1};
}

aas_err_t aas_textfeat_conf_check(const aas_textfeat_conf_t *c, char *errstr,
                                  size_t errstr_size) {
    if (c->dim < AAS_TEXTFEAT_MIN_DIM || c->dim > AAS_TEXTFEAT_MAX_DIM ||
        (c->dim & (c->dim - 1)) != 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text_dim %lld is not a power of two in %d..%d",
                           (long long)c->dim, AAS_TEXTFEAT_MIN_DIM, AAS_TEXTFEAT_MAX_DIM);
    int no_chars = c->char_min == 0 && c->char_max == 0;
    if (!no_chars && (c->char_min < 1 || c->char_max < c->char_min ||
                      c->char_max > AAS_TEXTFEAT_MAX_ORDER))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "char n-grams %d..%d: want 1 <= min <= max <= %d, or 0..0 "
                           "for none", (int)c->char_min, (int)c->char_max,
                           AAS_TEXTFEAT_MAX_ORDER);
    if (c->word_max < 0 || c->word_max > AAS_TEXTFEAT_MAX_ORDER)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "word n-grams up to %d: want 0..%d", (int)c->word_max,
                           AAS_TEXTFEAT_MAX_ORDER);
    if (no_chars && c->word_max == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "no char n-grams and no word n-grams: nothing to count");
    if (c->sublinear_tf != 0 && c->sublinear_tf != 1)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "sublinear_tf: 0 or 1");
    return AAS_ERR_OK;
}

static uint32_t aas_tf_fnv(uint32_t h, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= AAS_TF_FNV_PRIME;
    }
    return h;
}

/* murmur3's finaliser: FNV's low bits mix poorly, the bucket needs them. */
static uint32_t aas_tf_fmix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t aas_textfeat_hash(char kind, const char *s, size_t n) {
    unsigned char k = (unsigned char)kind;
    return aas_tf_fmix(aas_tf_fnv(aas_tf_fnv(AAS_TF_FNV_OFFSET, &k, 1),
                                  (const unsigned char *)s, n));
}

aas_err_t aas_textfeat_new(const aas_textfeat_conf_t *conf, const float *idf,
                           aas_textfeat_t **out, char *errstr, size_t errstr_size) {
    aas_err_t err = aas_textfeat_conf_check(conf, errstr, errstr_size);
    if (err) return err;
    aas_textfeat_t *f = calloc(1, sizeof(*f));
    if (f) {
        f->conf = *conf;
        f->idf = idf;
        f->acc = calloc((size_t)conf->dim, sizeof(int32_t));
        f->seen = calloc((size_t)conf->dim, 1);
    }
    if (!f || !f->acc || !f->seen) {
        aas_textfeat_destroy(f);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for a featurizer of dim %lld",
                           (long long)conf->dim);
    }
    *out = f;
    return AAS_ERR_OK;
}

void aas_textfeat_destroy(aas_textfeat_t *f) {
    if (!f) return;
    free(f->acc);
    free(f->seen);
    free(f->idx);
    free(f->val);
    free(f->cps);
    free(f->seq);
    free(f->off);
    free(f->words);
    free(f->u8);
    free(f);
}

size_t aas_textfeat_footprint(const aas_textfeat_t *f) {
    return sizeof(*f) + (size_t)f->conf.dim * 5 + (f->cap_nnz + f->cap_val) * 4 + f->cap_cps * 4 +
           f->cap_seq * 16 + f->cap_u8;
}

/* Grow *p to hold n elements of size sz; 0 or -1. */
static int aas_tf_grow(void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < n) c *= 2;
    void *q = realloc(*p, c * sz);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int aas_tf_space(utf8proc_int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL ||
           k == UTF8PROC_CATEGORY_ZP || k == UTF8PROC_CATEGORY_CC;
}

/* Letters, digits and symbols carry meaning; punctuation alone does not. */
static int aas_tf_content(utf8proc_int32_t cp) {
    utf8proc_category_t k = utf8proc_category(cp);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO) ||
           (k >= UTF8PROC_CATEGORY_SM && k <= UTF8PROC_CATEGORY_SO);
}

/* Scripts written without spaces between words: their characters are in
 * no word (char n-grams cover them). */
static int aas_tf_unspaced(utf8proc_int32_t cp) {
    return (cp >= 0x0E00 && cp <= 0x0EFF) ||   /* Thai, Lao */
           (cp >= 0x0F00 && cp <= 0x0FFF) ||   /* Tibetan */
           (cp >= 0x1000 && cp <= 0x109F) ||   /* Myanmar */
           (cp >= 0x1780 && cp <= 0x17FF) ||   /* Khmer */
           (cp >= 0x3040 && cp <= 0x30FF) ||   /* Hiragana, Katakana */
           (cp >= 0x31F0 && cp <= 0x31FF) ||   /* Katakana extensions */
           (cp >= 0x3400 && cp <= 0x4DBF) ||   /* CJK extension A */
           (cp >= 0x4E00 && cp <= 0x9FFF) ||   /* CJK unified */
           (cp >= 0xF900 && cp <= 0xFAFF) ||   /* CJK compatibility */
           (cp >= 0x20000 && cp <= 0x3134F);   /* CJK extensions B-G */
}

static int aas_tf_word_char(utf8proc_int32_t cp) {
    if (cp == '\'' || cp == 0x2019) return 1; /* don't, don’t */
    utf8proc_category_t k = utf8proc_category(cp);
    return ((k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO) ||
            k == UTF8PROC_CATEGORY_PC) && !aas_tf_unspaced(cp);
}

static int aas_tf_add(aas_textfeat_t *f, uint32_t h, size_t *nnz) {
    uint32_t b = h & (uint32_t)(f->conf.dim - 1);
    f->acc[b] += (h >> 31) ? -1 : 1;
    if (!f->seen[b]) {
        if (aas_tf_grow((void **)&f->idx, &f->cap_nnz, *nnz + 1, sizeof(uint32_t)))
            return -1;
        f->seen[b] = 1;
        f->idx[(*nnz)++] = b;
    }
    return 0;
}

/* Steps 1-3 of textfeat.h: validated, normalised, spaced code points in
 * f->seq[0..*n), their UTF-8 in f->u8 at f->off. */
static aas_err_t aas_tf_prepare(aas_textfeat_t *f, const char *text, size_t len,
                                size_t *n, char *errstr, size_t errstr_size) {
    const utf8proc_uint8_t *s = (const utf8proc_uint8_t *)text;
    size_t ncp = 0;
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "text is not valid UTF-8 at byte %zu", i);
        if (cp == 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "text has a NUL at byte %zu (NUL is not allowed in text)",
                               i);
        i += (size_t)k;
        ncp++;
    }
    /* COMPOSE in the decomposition options too, as utf8proc_map() passes
     * them: without it a case-folded character is not decomposed again
     * (U+FF21 would fold to U+FF41 and stay full width). */
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                  UTF8PROC_IGNORE | UTF8PROC_COMPOSE;
    if (ncp > (size_t)INT32_MAX / AAS_TF_MAX_EXPANSION)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE, "text too long");
    utf8proc_ssize_t m = 0;
    for (int pass = 0; pass < 2; pass++) {
        m = utf8proc_decompose(s, (utf8proc_ssize_t)len, (utf8proc_int32_t *)f->cps,
                               (utf8proc_ssize_t)f->cap_cps, opt);
        if (m < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "text: %s",
                               utf8proc_errmsg(m));
        if ((size_t)m <= f->cap_cps) break;
        if ((size_t)m > ncp * AAS_TF_MAX_EXPANSION + 16 ||
            aas_tf_grow((void **)&f->cps, &f->cap_cps, (size_t)m, sizeof(int32_t)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory normalising a text of %zu bytes", len);
    }
    if (m > 0) {
        m = utf8proc_normalize_utf32((utf8proc_int32_t *)f->cps, m, opt);
        if (m < 0)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "text: %s",
                               utf8proc_errmsg(m));
    }
    size_t need = (size_t)m + 2;
    if (need > f->cap_seq) {
        size_t c = f->cap_seq ? f->cap_seq : 256;
        while (c < need) c *= 2;
        int32_t *a = realloc(f->seq, c * sizeof(int32_t));
        if (a) f->seq = a;
        uint32_t *b = a ? realloc(f->off, (c + 1) * sizeof(uint32_t)) : NULL;
        if (b) f->off = b;
        uint32_t *w = b ? realloc(f->words, 2 * c * sizeof(uint32_t)) : NULL;
        if (w) f->words = w;
        if (!w) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        f->cap_seq = c;
    }
    size_t L = 0;
    int content = 0;
    f->seq[L++] = ' ';
    for (utf8proc_ssize_t i = 0; i < m; i++) {
        utf8proc_int32_t cp = f->cps[i];
        if (aas_tf_space(cp)) {
            if (f->seq[L - 1] != ' ') f->seq[L++] = ' ';
            continue;
        }
        content |= aas_tf_content(cp);
        f->seq[L++] = cp;
    }
    if (f->seq[L - 1] != ' ') f->seq[L++] = ' ';
    if (!content)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text has no letter, digit or symbol (empty, spaces or "
                           "punctuation only): nothing to classify");
    if (aas_tf_grow((void **)&f->u8, &f->cap_u8, L * 4, 1))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    uint32_t o = 0;
    for (size_t i = 0; i < L; i++) {
        f->off[i] = o;
        o += (uint32_t)utf8proc_encode_char(f->seq[i], f->u8 + o);
    }
    f->off[L] = o;
    *n = L;
    return AAS_ERR_OK;
}

void aas_textfeat_weigh(const aas_textfeat_conf_t *c, const float *idf,
                        const uint32_t *idx, float *val, size_t nnz) {
    double sum = 0;
    for (size_t k = 0; k < nnz; k++) {
        double a = fabs((double)val[k]);
        if (c->sublinear_tf) a = 1.0 + log(a);
        if (idf) a *= idf[idx[k]];
        double v = val[k] < 0 ? -a : a;
        sum += v * v;
        val[k] = (float)v;
    }
    if (sum > 0) {
        float inv = (float)(1.0 / sqrt(sum));
        for (size_t k = 0; k < nnz; k++) val[k] *= inv;
    }
}

aas_err_t aas_textfeat_run(aas_textfeat_t *f, const char *text, size_t len, int raw,
                           const uint32_t **idx_out, const float **val_out,
                           size_t *nnz_out, char *errstr, size_t errstr_size) {
    if (!text && len) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "NULL text");
    size_t L = 0, nnz = 0;
    aas_err_t err = aas_tf_prepare(f, text ? text : "", len, &L, errstr, errstr_size);
    if (err) return err;
    const unsigned char kc = 'c', kw = 'w', sp = ' ';
    int oom = 0;
    const aas_textfeat_conf_t *c = &f->conf;
    for (size_t i = 0; c->char_max > 0 && i < L && !oom; i++) {
        uint32_t h = aas_tf_fnv(AAS_TF_FNV_OFFSET, &kc, 1);
        for (size_t n = 1; n <= (size_t)c->char_max && i + n <= L; n++) {
            size_t j = i + n - 1;
            h = aas_tf_fnv(h, f->u8 + f->off[j], f->off[j + 1] - f->off[j]);
            if (n >= (size_t)c->char_min && !(n == 1 && f->seq[i] == ' '))
                oom |= aas_tf_add(f, aas_tf_fmix(h), &nnz);
        }
    }
    size_t nw = 0;
    for (size_t i = 0; c->word_max > 0 && i < L;) {
        if (!aas_tf_word_char(f->seq[i])) {
            i++;
            continue;
        }
        size_t start = i;
        int letter = 0;
        for (; i < L && aas_tf_word_char(f->seq[i]); i++)
            letter |= f->seq[i] != '\'' && f->seq[i] != 0x2019;
        if (!letter) continue;
        f->words[2 * nw] = (uint32_t)start;
        f->words[2 * nw + 1] = (uint32_t)i;
        nw++;
    }
    for (size_t w = 0; w < nw && !oom; w++) {
        uint32_t h = aas_tf_fnv(AAS_TF_FNV_OFFSET, &kw, 1);
        for (size_t n = 1; n <= (size_t)c->word_max && w + n <= nw; n++) {
            size_t k = w + n - 1;
            if (n > 1) h = aas_tf_fnv(h, &sp, 1);
            uint32_t a = f->off[f->words[2 * k]], b = f->off[f->words[2 * k + 1]];
            h = aas_tf_fnv(h, f->u8 + a, b - a);
            oom |= aas_tf_add(f, aas_tf_fmix(h), &nnz);
        }
    }
    if (!oom && aas_tf_grow((void **)&f->val, &f->cap_val, nnz, sizeof(float))) oom = 1;
    size_t out = 0;
    for (size_t k = 0; k < nnz; k++) {
        uint32_t b = f->idx[k];
        int32_t cnt = f->acc[b];
        f->acc[b] = 0;
        f->seen[b] = 0;
        if (cnt == 0 || oom) continue;
        f->idx[out] = b;
        f->val[out++] = (float)cnt;
    }
    if (oom) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    if (!raw) aas_textfeat_weigh(c, f->idf, f->idx, f->val, out);
    if (out == 0)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "text has no features left (its n-grams cancelled out)");
    *idx_out = f->idx;
    *val_out = f->val;
    *nnz_out = out;
    return AAS_ERR_OK;
}
