/*
 * featurize.c - hashed unigram + bigram features of a text; see
 * featurize.h.  It tokenizes and hashes in one pass: FNV-1a is a stream
 * hash, so the bigram "w1 w2" is hashed by continuing from hash("w1 ")
 * while w2's bytes arrive, and no token is ever copied or cut.
 */
#include "featurize.h"

#include <math.h>
#include <string.h>

#define AAS_FNV_PRIME 16777619u

int aas_featurize_dim_valid(int64_t dim) {
    return dim >= AAS_FEATURIZE_MIN_DIM && dim <= AAS_FEATURIZE_MAX_DIM &&
           (dim & (dim - 1)) == 0;
}

uint32_t aas_featurize_fnv1a(uint32_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= AAS_FNV_PRIME;
    }
    return h;
}

/* Token bytes after lower-casing: [a-z0-9'] and all non-ASCII bytes. */
static int aas_featurize_token_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'' || c >= 0x80;
}

aas_err_t aas_featurize_text(const char *text, size_t len, float *out,
                             int64_t dim) {
    if (!out || !aas_featurize_dim_valid(dim) || (!text && len > 0)) return AAS_ERR_INVAL;
    memset(out, 0, (size_t)dim * sizeof(float));
    const uint32_t mask = (uint32_t)dim - 1;
    const unsigned char space = ' ';
    uint32_t uni = 0, bi = 0;   /* hashes of the current token, of "prev cur" */
    uint32_t prev_space = 0;    /* hash("prev ") when there is a previous token */
    int in_token = 0, have_prev = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : (unsigned char)' ';
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (aas_featurize_token_byte(c)) {
            if (!in_token) {
                in_token = 1;
                uni = AAS_FEATURIZE_FNV_OFFSET;
                bi = prev_space;
            }
            uni = aas_featurize_fnv1a(uni, &c, 1);
            bi = aas_featurize_fnv1a(bi, &c, 1);
            continue;
        }
        if (!in_token) continue;
        in_token = 0;
        out[uni & mask] += 1.0f;
        if (have_prev) out[bi & mask] += 1.0f;
        prev_space = aas_featurize_fnv1a(uni, &space, 1);
        have_prev = 1;
    }
    double sum = 0;
    for (int64_t k = 0; k < dim; k++) sum += (double)out[k] * out[k];
    if (sum > 0) {
        float inv = (float)(1.0 / sqrt(sum));
        for (int64_t k = 0; k < dim; k++) out[k] *= inv;
    }
    return AAS_ERR_OK;
}
