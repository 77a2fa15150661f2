/*
 * log.h - one line per event on stderr, key=value fields.
 *
 * AAS_LOG(level, component, fmt, ...) checks the level before it evaluates
 * its arguments (as Redis's serverLog).  Never log payloads or credentials.
 * Control bytes and backslashes in the formatted message are escaped
 * (\n, \r, \t, \\, \xNN), so text from a job (id, model, reason) cannot
 * start a forged line.
 * The level is process-wide, set once at start-up by main(); reading it from
 * other threads is safe (int store before threads start).
 */
#ifndef AAS_LOG_H
#define AAS_LOG_H

typedef enum {
    AAS_LOG_ERROR = 0,
    AAS_LOG_WARN = 1,
    AAS_LOG_INFO = 2,
    AAS_LOG_DEBUG = 3
} aas_log_level_t;

/** @brief Current threshold; lines above it are not formatted. */
aas_log_level_t aas_log_level_get(void);
/** @brief Set the threshold; call from main() before starting threads. */
void aas_log_level_set(aas_log_level_t level);
/** @brief Parse "error|warn|info|debug"; returns -1 if unknown. */
int aas_log_level_parse(const char *s);

void aas_log_write(aas_log_level_t level, const char *component,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define AAS_LOG(level, component, ...)                                        \
    do {                                                                      \
        if ((level) <= aas_log_level_get())                                   \
            aas_log_write((level), (component), __VA_ARGS__);                 \
    } while (0)

#endif
