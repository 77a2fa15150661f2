/*
 * aas-producer - publish jobs, wait for results, manage models.
 *
 *   aas-producer [global options] submit --model NAME (--values LIST | --input FILE) ...
 *   aas-producer [global options] status ID...
 *   aas-producer [global options] wait [--timeout S] ID...
 *   aas-producer [global options] model register NAME FILE [serving options]
 *   aas-producer [global options] model set NAME serving options...
 *
 * This file parses the options, checks the command's usage before anything
 * connects, and dispatches through the table of commands (cmd.h; one file
 * per command group), which also writes --help's list of commands.
 *
 * Exit codes: 0 success (every waited job SUCCEEDED), 1 runtime failure,
 * 2 usage error, 3 a job ended FAILED/EXPIRED/CANCELLED, 4 timed out,
 * 5 the job id given with --id is in use (another job, or the same one
 * without --idempotent), 6 the job's tenant is over its quota (nothing
 * published: retry later, docs/sharing.md#quotas).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "cmd.h"

int aas_cmd_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* The commands (cmd.h), in the order --help lists them. */
static const aas_cmd_t *const commands[] = {
    &aas_cmd_submit_def, &aas_cmd_train_def,  &aas_cmd_dataset_def, &aas_cmd_status_def,
    &aas_cmd_wait_def,   &aas_cmd_cancel_def, &aas_cmd_model_def,  &aas_cmd_apikey_def,
    &aas_cmd_usage_def,  &aas_cmd_quota_def,  &aas_cmd_sweep_def,
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* One form of a command in --help's two columns; a usage wider than the
 * first column puts its summary on the lines below. */
static void print_form(FILE *fp, const aas_cmd_help_t *h) {
    enum { USAGE_COLS = 38 };
    int wide = strlen(h->usage) > USAGE_COLS;
    if (wide) fprintf(fp, "  %s\n", h->usage);
    else fprintf(fp, "  %-*s ", USAGE_COLS, h->usage);
    for (const char *s = h->summary; *s;) {
        size_t n = strcspn(s, "\n");
        if (wide) fprintf(fp, "%*s", USAGE_COLS + 3, "");
        fprintf(fp, "%.*s\n", (int)n, s);
        wide = 1;
        s += n + (s[n] == '\n');
    }
}

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
"Usage: aas-producer [global options] COMMAND [options] [args]\n"
"Publish aas jobs to Kafka and read their results from Redis.\n\n"
"Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        for (const aas_cmd_help_t *h = commands[i]->help; h->usage; h++) print_form(fp, h);
    fprintf(fp,
"\n"
"submit input (one of):\n"
"  --values LIST          one row, e.g. 0.1,0.2,0.3\n"
"  --text TEXT            text, for a text classifier\n"
"  --text-file PATH       the text from a file ('-' = stdin), one final line\n"
"                         break dropped; at most client.text.max.bytes\n"
"  --input FILE           CSV or JSON rows ('-' = stdin)\n"
"  --format csv|json      input format (default: by extension, else csv)\n"
"  --format lines|tsv     text jobs, one per line of --input (tsv: the text\n"
"                         after the first TAB, e.g. a labeled test set)\n"
"  --drop-last-column     ignore each CSV row's last value (e.g. a label)\n"
"  --header, --no-header  CSV: the first line is (not) a header; never guessed\n"
"submit options:\n"
"  --model NAME           model to run (required)\n"
"  --model-version V      version number (default: latest)\n"
"  --rows-per-job N       split the rows into jobs of N rows (default: all\n"
"                         rows in one job)\n"
"  --id ID                job id (one job only; default: random); ids follow\n"
"                         [A-Za-z0-9_.-]{1,128}, and an id in use is refused\n"
"  --idempotent           with --id: resubmitting the same payload under its\n"
"                         id is fine (a retry); another payload is refused\n"
"  --priority N           higher runs first (default 0)\n"
"  --tenant T             the job's tenant, for metering (default:\n"
"                         client.tenant, else none)\n"
"  --deadline-ms MS       expire unless started within MS (default: none)\n"
"  --param KEY=VALUE      job parameter (repeatable)\n"
"  --wait                 wait for the results and print them\n"
"serving options (model register / model set; 'default' unsets one):\n"
"  --precision P          f32, bf16 or int8 (default f32); bf16 and int8 need\n"
"                         CPU support, else the model's jobs FAIL saying why\n"
"  --max-batch N          most rows in one batched forward, 1..4096 (default:\n"
"                         the worker's batch.max.rows)\n"
"  --max-delay-us US      longest wait for a batch to fill, 0..1000000\n"
"                         (default: the worker's batch.max.delay.us)\n"
"wait / submit --wait options:\n"
"  --curves               a training result's loss and accuracy per epoch\n"
"                         too (default: its summary)\n"
"  --timeout S            give up after S seconds in total (default 60)\n"
"  --json                 one JSON object per line instead of text\n\n"
"Global options:\n"
"  -c, --config FILE      read key = value settings from FILE\n"
"  -X, --set KEY=VALUE    set one key (repeatable; not for secrets)\n"
"  -b, --brokers LIST     same as -X kafka.bootstrap.servers=LIST\n"
"  -h, --help             this text\n"
"      --version          program and library versions\n"
"      --config-reference the keys below as a Markdown table\n\n"
"Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 a job did not succeed,\n"
"4 timed out, 5 the --id is in use, 6 the tenant is over its quota (nothing\n"
"published; retry later).\n\n"
"Keys (environment: AAS_ + key upper-cased, '.' -> '_'):\n");
    if (conf) aas_conf_print_help(conf, fp);
}

int main(int argc, char **argv) {
    enum { O_MODEL = 256, O_MVER, O_VALUES, O_INPUT, O_FORMAT, O_DROP, O_ROWS,
           O_ID, O_IDEMPOTENT, O_CURVES, O_PRIO, O_DEADLINE, O_PARAM, O_WAIT, O_TIMEOUT, O_JSON,
           O_META, O_FILE, O_VERSION, O_CONFREF, O_DATASET, O_TEXT, O_TEXTIN, O_PRECISION,
           O_MAXBATCH, O_MAXDELAY, O_TEXTFILE, O_HEADER, O_NOHEADER, O_DTOPIC, O_DPARTS,
           O_DSTART, O_DEND, O_NOPROGRESS, O_SCOPES, O_TENANT, O_SINCE, O_UNTIL, O_CSV, O_HOURLY,
           O_RATE, O_BURST, O_INFLIGHT, O_GRID, O_HALVING, O_ETA, O_EPOCHS, O_RANDOM, O_SEED };
    static const struct option lopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 'X'},
        {"brokers", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {"config-reference", no_argument, NULL, O_CONFREF},
        {"model", required_argument, NULL, O_MODEL},
        {"model-version", required_argument, NULL, O_MVER},
        {"values", required_argument, NULL, O_VALUES},
        {"input", required_argument, NULL, O_INPUT},
        {"format", required_argument, NULL, O_FORMAT},
        {"drop-last-column", no_argument, NULL, O_DROP},
        {"rows-per-job", required_argument, NULL, O_ROWS},
        {"id", required_argument, NULL, O_ID},
        {"idempotent", no_argument, NULL, O_IDEMPOTENT},
        {"curves", no_argument, NULL, O_CURVES},
        {"priority", required_argument, NULL, O_PRIO},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {"param", required_argument, NULL, O_PARAM},
        {"wait", no_argument, NULL, O_WAIT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"meta", required_argument, NULL, O_META},
        {"file", required_argument, NULL, O_FILE},
        {"dataset", required_argument, NULL, O_DATASET},
        {"text", required_argument, NULL, O_TEXT},
        {"text-input", required_argument, NULL, O_TEXTIN},
        {"precision", required_argument, NULL, O_PRECISION},
        {"max-batch", required_argument, NULL, O_MAXBATCH},
        {"max-delay-us", required_argument, NULL, O_MAXDELAY},
        {"text-file", required_argument, NULL, O_TEXTFILE},
        {"header", no_argument, NULL, O_HEADER},
        {"no-header", no_argument, NULL, O_NOHEADER},
        {"data-topic", required_argument, NULL, O_DTOPIC},
        {"data-partitions", required_argument, NULL, O_DPARTS},
        {"data-start", required_argument, NULL, O_DSTART},
        {"data-end", required_argument, NULL, O_DEND},
        {"no-progress", no_argument, NULL, O_NOPROGRESS},
        {"scopes", required_argument, NULL, O_SCOPES},
        {"tenant", required_argument, NULL, O_TENANT},
        {"since", required_argument, NULL, O_SINCE},
        {"until", required_argument, NULL, O_UNTIL},
        {"csv", no_argument, NULL, O_CSV},
        {"hourly", no_argument, NULL, O_HOURLY},
        {"rate", required_argument, NULL, O_RATE},
        {"burst", required_argument, NULL, O_BURST},
        {"inflight", required_argument, NULL, O_INFLIGHT},
        {"grid", required_argument, NULL, O_GRID},
        {"halving", no_argument, NULL, O_HALVING},
        {"eta", required_argument, NULL, O_ETA},
        {"epochs", required_argument, NULL, O_EPOCHS},
        {"random", required_argument, NULL, O_RANDOM},
        {"seed", required_argument, NULL, O_SEED},
        {NULL, 0, NULL, 0}};
    aas_conf_t *conf = NULL;
    if (aas_conf_new(aas_client_conf_defs, &conf)) return 1;
    aas_cmd_opts_t o = {.timeout_s = 60, .header = -1, .eta = 2, .epochs = 10, .seed = 1};
    aas_store_model_opts_init(&o.serving);
    const char *config_file = NULL;
    char **xargs = calloc((size_t)argc + 1, sizeof(*xargs));
    char **brokers = calloc((size_t)argc + 1, sizeof(*brokers));
    o.params = calloc((size_t)argc + 1, sizeof(*o.params));
    size_t nx = 0, nb = 0;
    int c, rc = 0;
    aas_client_t *client = NULL;
    if (!xargs || !brokers || !o.params) {
        rc = 1;
        goto out;
    }
    while ((c = getopt_long(argc, argv, "+c:X:b:h", lopts, NULL)) != -1) {
        switch (c) {
        case 'c': config_file = optarg; break;
        case 'X': xargs[nx++] = optarg; break;
        case 'b':
            if (!(brokers[nb] = malloc(strlen(optarg) + 32))) { rc = 1; goto out; }
            sprintf(brokers[nb], "kafka.bootstrap.servers=%s", optarg);
            xargs[nx++] = brokers[nb++];
            break;
        case 'h': usage(stdout, conf); goto out;
        case O_VERSION: aas_cli_print_version(stdout, "aas-producer"); goto out;
        case O_CONFREF: aas_conf_print_markdown(conf, stdout); goto out;
        default: usage(stderr, NULL); rc = AAS_EXIT_USAGE; goto out;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "aas-producer: missing COMMAND (see --help)\n");
        rc = AAS_EXIT_USAGE;
        goto out;
    }
    const char *cmd = argv[optind++];
    /* Command options may come before or after the positional args. */
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    size_t nargs = 0;
    if (!args) { rc = 1; goto out; }
    while (optind < argc) {
        c = getopt_long(argc, argv, "+c:X:b:h", lopts, NULL);
        if (c == -1) {
            args[nargs++] = argv[optind++];
            continue;
        }
        int64_t v;
        switch (c) {
        case O_MODEL: o.model = optarg; break;
        case O_MVER: o.model_version = optarg; break;
        case O_VALUES: o.values = optarg; break;
        case O_INPUT: o.input = optarg; break;
        case O_FORMAT: o.format = optarg; break;
        case O_DROP: o.drop_last = 1; break;
        case O_ID: o.id = optarg; break;
        case O_IDEMPOTENT: o.idempotent = 1; break;
        case O_CURVES: o.curves = 1; break;
        case O_WAIT: o.wait = 1; break;
        case O_JSON: o.json = 1; break;
        case O_META: o.meta = optarg; break;
        case O_FILE: o.file = optarg; break;
        case O_DATASET: o.dataset = optarg; break;
        case O_TEXT: o.text = optarg; break;
        case O_TEXTIN: o.text_input = optarg; break;
        case O_TEXTFILE: o.text_file = optarg; break;
        case O_HEADER: o.header = 1; break;
        case O_NOHEADER: o.header = 0; break;
        case O_DTOPIC: o.data_topic = optarg; break;
        case O_DPARTS: o.data_partitions = optarg; break;
        case O_DSTART: o.data_start = optarg; break;
        case O_DEND: o.data_end = optarg; break;
        case O_NOPROGRESS: o.no_progress = 1; break;
        case O_SCOPES: o.scopes = optarg; break;
        case O_TENANT: o.tenant = optarg; break;
        case O_SINCE: o.since = optarg; break;
        case O_UNTIL: o.until = optarg; break;
        case O_CSV: o.csv = 1; break;
        case O_HOURLY: o.hourly = 1; break;
        case O_RATE: o.rate = optarg; break;     /* checked by quota's check */
        case O_BURST: o.burst = optarg; break;
        case O_INFLIGHT: o.inflight = optarg; break;
        case O_GRID: o.grid = optarg; break;
        case O_HALVING: o.halving = 1; break;
        case O_ETA:
            if (aas_cmd_parse_i64(optarg, 2, 16, &o.eta)) goto bad;
            break;
        case O_EPOCHS:
            if (aas_cmd_parse_i64(optarg, 1, 100000, &o.epochs)) goto bad;
            break;
        case O_RANDOM:
            if (aas_cmd_parse_i64(optarg, 1, 256, &o.random)) goto bad;
            break;
        case O_SEED:
            if (aas_cmd_parse_i64(optarg, 0, INT64_MAX, &o.seed)) goto bad;
            break;
        case O_ROWS:
            if (aas_cmd_parse_i64(optarg, 1, 1 << 30, &o.rows_per_job)) goto bad;
            break;
        case O_PRIO:
            if (aas_cmd_parse_i64(optarg, -1000000, 1000000, &o.priority)) goto bad;
            break;
        case O_DEADLINE:
            if (aas_cmd_parse_i64(optarg, 1, 1LL << 40, &o.deadline_ms)) goto bad;
            break;
        case O_TIMEOUT:
            if (aas_cmd_parse_i64(optarg, 0, 1 << 24, &v)) goto bad;
            o.timeout_s = (double)v;
            break;
        case O_PRECISION:
        case O_MAXBATCH:
        case O_MAXDELAY: {
            char why[512];
            unsigned field;
            int which = c == O_PRECISION ? 'p' : c == O_MAXBATCH ? 'b' : 'd';
            if (aas_cmd_parse_serving(&o.serving, which, optarg, &field, why, sizeof(why))) {
                fprintf(stderr, "aas-producer: %s\n", why);
                rc = AAS_EXIT_USAGE;
                free(args);
                goto out;
            }
            o.serving_fields |= field;
            break;
        }
        case O_PARAM: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) goto bad;
            *eq = '\0';
            o.params[o.n_params].key = optarg;
            o.params[o.n_params++].value = eq + 1;
            break;
        }
        case 'h': usage(stdout, conf); free(args); goto out;
        default: usage(stderr, NULL); rc = AAS_EXIT_USAGE; free(args); goto out;
        }
        continue;
    bad:
        fprintf(stderr, "aas-producer: bad value '%s' for an option (see --help)\n",
                optarg);
        rc = AAS_EXIT_USAGE;
        free(args);
        goto out;
    }
    const aas_cmd_t *command = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(cmd, commands[i]->name)) command = commands[i];
    if (!command) {
        fprintf(stderr, "aas-producer: unknown command '%s' (see --help)\n", cmd);
        rc = AAS_EXIT_USAGE;
        free(args);
        goto out;
    }
    /* Usage errors before anything connects. */
    if ((rc = command->check(&o, args, nargs))) {
        free(args);
        goto out;
    }
    if (command->run_local && (rc = command->run_local(&o, args, nargs)) >= 0) {
        free(args);
        goto out;
    }
    rc = 0;
    char why[512];
    signal(SIGPIPE, SIG_IGN); /* a dead Redis gives EPIPE, not death */
    if (aas_cli_conf_load(conf, config_file, xargs, nx, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        rc = AAS_EXIT_USAGE;
        free(args);
        goto out;
    }
    if (aas_client_new(conf, &client, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        rc = 1;
        free(args);
        goto out;
    }
    aas_client_set_idempotent(client, o.idempotent);
    rc = command->run(client, &o, args, nargs);
    free(args);
out:
    aas_client_destroy(client);
    for (size_t i = 0; brokers && i < nb; i++) free(brokers[i]);
    free(brokers);
    free(xargs);
    free(o.params);
    aas_conf_destroy(conf);
    return rc;
}
