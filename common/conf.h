/*
 * conf.h - table-driven configuration shared by every aas program.
 *
 * One table per program (plus the common rows below) drives defaults,
 * validation, `--help` and docs/configuration.md.  Values come, in rising
 * precedence, from the defaults, a config file (`key = value` lines), the
 * environment (AAS_ + key upper-cased with '.' -> '_': redis.port ->
 * AAS_REDIS_PORT) and `-X key=value`.  Keys starting with "kafka." pass
 * through to librdkafka with the prefix removed.
 *
 * Secrets (redis.password, kafka.sasl.password, ...) are refused from the
 * command line: they come from the environment, a file (<key>.file = path),
 * or the config file; they are never printed.
 *
 * Threading: build the conf in main(), then treat it as read-only; reads
 * from several threads are then safe.
 */
#ifndef AAS_CONF_H
#define AAS_CONF_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

typedef enum { AAS_CONF_STR, AAS_CONF_INT, AAS_CONF_BOOL } aas_conf_type_t;

typedef struct {
    const char *key;
    aas_conf_type_t type;
    const char *def;        /* default as text; NULL = unset */
    long long min, max;     /* for INT */
    int secret;             /* never from argv, never printed */
    const char *doc;
    size_t field;           /* AAS_CONF_FIELD(struct, member): where
                             * aas_conf_fill() puts the value; 0 = nowhere */
} aas_conf_def_t;

/*
 * A program's typed configuration: each row of its table may name the
 * member of the program's struct that holds the value once parsed (INT ->
 * int64_t, BOOL -> int, STR -> const char *, borrowed from the conf), so
 * the key, its default, range, doc and destination are written once.
 */
#define AAS_CONF_FIELD(type, member) (offsetof(type, member) + 1)

/* Terminates a program's table. */
#define AAS_CONF_END {NULL, AAS_CONF_STR, NULL, 0, 0, 0, NULL}

typedef struct aas_conf_s aas_conf_t;

/**
 * @brief New conf holding the common rows plus `program_defs` (borrowed:
 *        must outlive the conf; static tables), every default filled.
 */
aas_err_t aas_conf_new(const aas_conf_def_t *program_defs, aas_conf_t **out);
/**
 * @brief The same with a library's rows too (e.g. a program that embeds the
 *        client: its own table plus aas_client_conf_defs); both borrowed.
 *        aas_conf_fill() fills from program_defs only; the library fills
 *        its struct with aas_conf_fill_defs(conf, lib_defs, ...).
 */
aas_err_t aas_conf_new_with(const aas_conf_def_t *program_defs,
                            const aas_conf_def_t *lib_defs, aas_conf_t **out);
void aas_conf_destroy(aas_conf_t *conf);

/** Where a value comes from; argv refuses secrets. */
typedef enum { AAS_CONF_SRC_FILE, AAS_CONF_SRC_ENV, AAS_CONF_SRC_ARGV } aas_conf_src_t;

/** @brief Validate and set one key. Unknown keys are AAS_ERR_INVAL. */
aas_err_t aas_conf_set(aas_conf_t *conf, const char *key, const char *value,
                       aas_conf_src_t src, char *errstr, size_t errstr_size);
/** @brief Parse "key=value" (as given to -X). */
aas_err_t aas_conf_set_arg(aas_conf_t *conf, const char *kv, char *errstr,
                           size_t errstr_size);
/** @brief Load a `key = value` file ('#' comments). */
aas_err_t aas_conf_load_file(aas_conf_t *conf, const char *path, char *errstr,
                             size_t errstr_size);
/** @brief Apply AAS_* environment variables for every known key and for
 *        secrets' "<key>.file" forms. */
aas_err_t aas_conf_load_env(aas_conf_t *conf, char *errstr, size_t errstr_size);

/** @brief Value or NULL. Borrowed; valid until the key is set again. */
const char *aas_conf_get(const aas_conf_t *conf, const char *key);
/** @brief Integer value of a validated INT/BOOL key (0 if unset). */
long long aas_conf_get_int(const aas_conf_t *conf, const char *key);

/**
 * @brief Fill the program's typed struct from the program's table (the
 *        rows with a field), once, after every source was applied.
 *        STR members borrow from conf: valid until the key is set again.
 */
void aas_conf_fill(const aas_conf_t *conf, void *out);
/** @brief The same from a given table (a library's rows). */
void aas_conf_fill_defs(const aas_conf_t *conf, const aas_conf_def_t *defs, void *out);

/** @brief Call fn for every kafka.* pair (key without the prefix). */
aas_err_t aas_conf_each_kafka(const aas_conf_t *conf,
                              aas_err_t (*fn)(void *opaque, const char *key,
                                              const char *value, char *errstr,
                                              size_t errstr_size),
                              void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Write, as a config file (`key = value` lines), what another aas
 *        program needs to reach the same servers: every common key that
 *        has a value (redis.*, kafka.*, topic.*, lane.*, log.level),
 *        every kafka.* pass-through pair, and the keys named in extra
 *        (NULL-terminated; may be NULL).  Secrets are written too: the
 *        caller makes the file readable by its owner only.
 */
aas_err_t aas_conf_write_shared(const aas_conf_t *conf, const char *const *extra, FILE *fp,
                                char *errstr, size_t errstr_size);
/** @brief Two-column reference of every key with default and doc. */
void aas_conf_print_help(const aas_conf_t *conf, FILE *fp);
/** @brief The same as a Markdown table (docs/configuration.md). */
void aas_conf_print_markdown(const aas_conf_t *conf, FILE *fp);

#endif
