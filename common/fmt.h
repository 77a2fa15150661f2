/*
 * fmt.h - numbers and strings into caller buffers without printf.
 *
 * For the worker's per-job paths (Redis keys and arguments, usage figures,
 * job sources), where snprintf's format parsing was a measurable share of
 * the CPU a job costs (docs/performance.md, "Cost per job").  Everything
 * else keeps snprintf.  Pure functions: thread-safe.
 */
#ifndef AAS_FMT_H
#define AAS_FMT_H

#include <stddef.h>

/* Room for any long long in decimal, sign and NUL included. */
#define AAS_FMT_LL_MAX 21

/** @brief v in decimal at buf (AAS_FMT_LL_MAX bytes), NUL-terminated;
 *         returns its length. */
size_t aas_fmt_ll(char *buf, long long v);

/** @brief Copy src into dst (size > 0 bytes), cut to size - 1 bytes,
 *         NUL-terminated; returns the length copied. */
size_t aas_fmt_copy(char *dst, size_t size, const char *src);

/** @brief b[0..n) as lowercase hex into out (2n + 1 bytes, NUL-terminated). */
void aas_fmt_hex(const unsigned char *b, size_t n, char *out);

/** @brief 2n lowercase hex digits at s into out[0..n); -1 at any other
 *         character (s need not be NUL-terminated). */
int aas_fmt_unhex(const char *s, size_t n, unsigned char *out);

#endif
