/*
 * cmd.h - aas-producer's commands, one table row each: its name, a check of
 * its arguments that needs no server (usage errors exit 2 before anything
 * connects), and the command.  Internal to the aas-producer program: jobs
 * (cmd_jobs.c: submit, train, status, wait, cancel) and the registry
 * (cmd_registry.c: model, dataset).  Each prints its data on stdout and its
 * diagnostics on stderr, and returns the exit code.
 */
#ifndef AAS_CMD_H
#define AAS_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "store.h"

#define AAS_EXIT_USAGE 2
#define AAS_EXIT_JOB_FAILED 3
#define AAS_EXIT_TIMEOUT 4

/* The options of every command, as parsed from the command line. */
typedef struct {
    int idempotent, curves;
    const char *model, *model_version, *values, *input, *format, *id;
    const char *meta;
    const char *dataset;
    const char *text, *text_input;
    int drop_last, wait, json;
    int64_t rows_per_job, priority, deadline_ms;
    double timeout_s;
    aas_kv_t *params;
    size_t n_params;
    aas_store_model_opts_t serving;   /* --precision, --max-batch, ... */
    unsigned serving_fields;          /* which of them were given */
} aas_cmd_opts_t;

typedef struct {
    const char *name;
    /** Usage check before connecting: 0, or AAS_EXIT_USAGE having said why. */
    int (*check)(const aas_cmd_opts_t *o, char **args, size_t n);
    int (*run)(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
} aas_cmd_t;

/** @brief Parse a decimal integer in [lo, hi]; 0 or -1. */
int aas_cmd_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* cmd_jobs.c */
int aas_cmd_submit_check(const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_submit(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_train_check(const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_train(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
/** status, wait, cancel: one or more valid job ids. */
int aas_cmd_ids_check(const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_status(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_wait(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_cancel(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);

/* cmd_registry.c */
int aas_cmd_model_check(const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_model(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_dataset_check(const aas_cmd_opts_t *o, char **args, size_t n);
int aas_cmd_dataset(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);

#endif
