/* fmt.c - see fmt.h. */
#include "fmt.h"

#include <string.h>

size_t aas_fmt_ll(char *buf, long long v) {
    char tmp[AAS_FMT_LL_MAX];
    /* In unsigned arithmetic, so LLONG_MIN negates without overflow. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    size_t n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) buf[len++] = '-';
    while (n) buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

size_t aas_fmt_copy(char *dst, size_t size, const char *src) {
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}
