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

#endif
