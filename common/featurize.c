/* featurize.c - hashed unigram + bigram features; see featurize.h. */
#include "featurize.h"

#include <math.h>
#include <string.h>

#define AAS_FNV_OFFSET 2166136261u
#define AAS_FNV_PRIME 16777619u

uint32_t aas_featurize_fnv1a(uint32_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= AAS_FNV_PRIME;
    }
    return h;
}

static int aas_token_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '\'';
}

aas_err_t aas_featurize_text(const char *text, size_t len, float *out,
                             int64_t dim) {
    if (dim < AAS_FEATURIZE_MIN_DIM || dim > AAS_FEATURIZE_MAX_DIM || (dim & (dim - 1)))
        return AAS_ERR_INVAL;
    memset(out, 0, (size_t)dim * sizeof(float));
    uint32_t mask = (uint32_t)dim - 1;
    char prev[AAS_FEATURIZE_MAX_TOKEN], cur[AAS_FEATURIZE_MAX_TOKEN];
    size_t prev_n = 0, cur_n = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : ' ';
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        if (aas_token_char(c)) {
            if (cur_n < sizeof(cur)) cur[cur_n++] = (char)c;
            continue;
        }
        if (cur_n == 0) continue;
        out[aas_featurize_fnv1a(AAS_FNV_OFFSET, cur, cur_n) & mask] += 1.0f;
        if (prev_n > 0) {
            uint32_t h = aas_featurize_fnv1a(AAS_FNV_OFFSET, prev, prev_n);
            h = aas_featurize_fnv1a(h, " ", 1);
            out[aas_featurize_fnv1a(h, cur, cur_n) & mask] += 1.0f;
        }
        memcpy(prev, cur, cur_n);
        prev_n = cur_n;
        cur_n = 0;
    }
    double norm = 0;
    for (int64_t k = 0; k < dim; k++) norm += (double)out[k] * out[k];
    if (norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (int64_t k = 0; k < dim; k++) out[k] *= inv;
    }
    return AAS_ERR_OK;
}
