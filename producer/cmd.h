/*
 * cmd.h - aas-producer's commands, one table row each: its name, a check of
 * its arguments that needs no server (usage errors exit 2 before anything
 * connects), the command, and its lines of --help.  Internal to the
 * aas-producer program: main.c parses the options and dispatches; each
 * command lives in its own file (cmd_submit.c, cmd_train.c, cmd_jobs.c:
 * status, wait, cancel; cmd_model.c, cmd_dataset.c, cmd_apikey.c, cmd_usage.c, cmd_quota.c).  Each prints its data
 * on stdout and its diagnostics on stderr, and returns the exit code.
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
#define AAS_EXIT_ID_IN_USE 5   /* submit --id: the id names another job */
#define AAS_EXIT_QUOTA 6       /* submit/train: the tenant is over its quota */

/* The options of every command, as parsed from the command line. */
typedef struct {
    int idempotent, curves;
    const char *model, *model_version, *values, *input, *format, *id;
    const char *meta;
    const char *file;                 /* model describe --file */
    const char *dataset;
    const char *scopes, *tenant;      /* apikey --scopes; --tenant (jobs, revoke, usage) */
    const char *since, *until;        /* usage: time range */
    int csv, hourly;                  /* usage: CSV output, a row per hour */
    const char *rate, *burst, *inflight; /* quota set: the limits given, or NULL */
    const char *grid;                 /* sweep run --grid SPEC */
    int halving;                      /* sweep run --halving */
    int64_t eta, epochs;              /* sweep run --eta (2), --epochs (10) */
    int64_t random, seed;             /* sweep run --random N (0: the grid), --seed (1) */
    const char *text, *text_input;
    const char *text_file;            /* submit --text-file PATH|- */
    int header;                       /* --header 1, --no-header 0, unset -1 */
    int no_progress;                  /* --no-progress */
    /* train --data-topic ...: a Kafka topic slice as training data */
    const char *data_topic, *data_partitions, *data_start, *data_end;
    int drop_last, wait, json;
    int64_t rows_per_job, priority, deadline_ms;
    double timeout_s;
    aas_kv_t *params;
    size_t n_params;
    aas_store_model_opts_t serving;   /* --precision, --max-batch, ... */
    unsigned serving_fields;          /* which of them were given */
} aas_cmd_opts_t;

/* One line of --help: a form of a command and what it does. */
typedef struct {
    const char *usage;    /* e.g. "status ID..." */
    const char *summary;  /* lines of at most 38 columns, separated by '\n' */
} aas_cmd_help_t;

/* A command: the table in main.c dispatches on name and prints help. */
typedef struct {
    const char *name;
    /** Usage check before connecting: 0, or AAS_EXIT_USAGE having said why. */
    int (*check)(const aas_cmd_opts_t *o, char **args, size_t n);
    /** The command, connected; its exit code. */
    int (*run)(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n);
    const aas_cmd_help_t *help;  /* its forms, ending with {NULL, NULL} */
    /** NULL, or a form that needs no server (model describe --file): its
     *  exit code, or -1 when this invocation needs to connect. */
    int (*run_local)(const aas_cmd_opts_t *o, char **args, size_t n);
} aas_cmd_t;

/* The commands, one file each. */
extern const aas_cmd_t aas_cmd_submit_def;   /* cmd_submit.c */
extern const aas_cmd_t aas_cmd_train_def;    /* cmd_train.c */
extern const aas_cmd_t aas_cmd_dataset_def;  /* cmd_dataset.c */
extern const aas_cmd_t aas_cmd_status_def;   /* cmd_jobs.c */
extern const aas_cmd_t aas_cmd_wait_def;     /* cmd_jobs.c */
extern const aas_cmd_t aas_cmd_cancel_def;   /* cmd_jobs.c */
extern const aas_cmd_t aas_cmd_model_def;    /* cmd_model.c */
extern const aas_cmd_t aas_cmd_apikey_def;   /* cmd_apikey.c */
extern const aas_cmd_t aas_cmd_usage_def;    /* cmd_usage.c */
extern const aas_cmd_t aas_cmd_quota_def;    /* cmd_quota.c */
extern const aas_cmd_t aas_cmd_sweep_def;    /* cmd_sweep.c */

/** @brief Parse a decimal integer in [lo, hi]; 0 or -1 (main.c). */
int aas_cmd_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/** @brief 1 if id follows the id rule, else 0 having said why on stderr,
 *         naming it as `what` (cmd_jobs.c). */
int aas_cmd_id_ok(const char *what, const char *id);

/** @brief Wait for the jobs ids[0..n) within o->timeout_s in total and
 *         print their results; exit code (cmd_jobs.c). */
int aas_cmd_wait(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n);

/** @brief Publish one job, wait for the broker's ack, print its id (or
 *         with --wait its result); exit code (cmd_submit.c). */
int aas_cmd_submit_one(aas_client_t *c, const aas_cmd_opts_t *o, const aas_job_t *job);

/**
 * @brief --precision ('p'), --max-batch ('b') or --max-delay-us ('d')
 *        VALUE into opts ('default' unsets), checked by the store's rules;
 *        *field says which (cmd_model.c).
 * @return 0, or -1 with why.
 */
int aas_cmd_parse_serving(aas_store_model_opts_t *opts, int opt, const char *value,
                          unsigned *field, char *why, size_t why_size);

#endif
