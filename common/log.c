/* log.c - stderr logger: "2026-11-28T12:00:00.123Z level=info comp=worker msg".
 * Control bytes in the component and the message are escaped, so one event
 * is one line. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The only process-wide state outside main(): written once before threads
 * start, then read-only. */
static aas_log_level_t aas_log_threshold = AAS_LOG_INFO;

aas_log_level_t aas_log_level_get(void) { return aas_log_threshold; }

void aas_log_level_set(aas_log_level_t level) { aas_log_threshold = level; }

int aas_log_level_parse(const char *s) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) return i;
    return -1;
}

/* Copy src to dst (size > 0) with control bytes and backslash escaped
 * (\n, \r, \t, \\, else \xNN), cut at a whole escape: a newline in a job
 * id, model name or reason can never start a forged log line. */
static void aas_log_escape(char *dst, size_t size, const char *src) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char e[4];
        size_t k = 0;
        if (*p == '\n') e[k++] = '\\', e[k++] = 'n';
        else if (*p == '\r') e[k++] = '\\', e[k++] = 'r';
        else if (*p == '\t') e[k++] = '\\', e[k++] = 't';
        else if (*p == '\\') e[k++] = '\\', e[k++] = '\\';
        else if (*p < 0x20 || *p == 0x7f)
            e[k++] = '\\', e[k++] = 'x', e[k++] = hex[*p >> 4], e[k++] = hex[*p & 15];
        else e[k++] = (char)*p;
        if (n + k >= size) break;
        memcpy(dst + n, e, k);
        n += k;
    }
    dst[n] = '\0';
}

void aas_log_write(aas_log_level_t level, const char *component,
                   const char *fmt, ...) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[1024], msg[1024], comp[64];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    aas_log_escape(comp, sizeof(comp), component ? component : "-");
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                     names[level & 3], comp);
    if (n < 0) return;
    /* The prefix fits (64 + 64 bytes at most); the message is escaped into
     * what is left less one byte, so the newline never cuts an escape. */
    size_t len = (size_t)n < sizeof(line) - 1 ? (size_t)n : sizeof(line) - 2;
    if (len + 2 < sizeof(line)) {
        /* Fields carry outside text (ids, names, reasons, librdkafka's
         * messages): escape the whole message in one place. */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        aas_log_escape(line + len, sizeof(line) - 1 - len, msg);
        len += strlen(line + len);
    }
    /* One fputs per line so concurrent writers do not interleave mid-line. */
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
}
