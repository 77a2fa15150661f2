/*
 * cli.h - what every aas command-line program does the same way.
 *
 * Configuration precedence (file, then environment, then -X), the
 * --version text with the linked library versions, and log-level set-up.
 * Option parsing itself stays in each main() (getopt_long).
 */
#ifndef AAS_CLI_H
#define AAS_CLI_H

#include <stdio.h>

#include "conf.h"
#include "err.h"
#include "store.h"

/**
 * @brief Apply config_file (may be NULL), then AAS_* environment variables,
 *        then each "key=value" in xargs (from -X), then set the log level.
 */
aas_err_t aas_cli_conf_load(aas_conf_t *conf, const char *config_file,
                            char *const *xargs, size_t n_xargs, char *errstr,
                            size_t errstr_size);

/** @brief "<program> <version>" and the linked library versions. */
void aas_cli_print_version(FILE *fp, const char *program);

/**
 * @brief Connect to Redis with the redis.* keys of conf.
 * @param out owned handle on success.
 */
aas_err_t aas_cli_store_new(const aas_conf_t *conf, aas_store_t **out,
                            char *errstr, size_t errstr_size);

#endif
