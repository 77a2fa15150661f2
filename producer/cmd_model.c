/* cmd_model.c - aas-producer model: register, set, list, versions, show,
 * delete (cmd.h), and the serving options' parsing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "input.h"
#include "model.h"
#include "print.h"

/* --precision ('p') / --max-batch ('b') / --max-delay-us ('d') VALUE into
 * opts ('default' unsets), checked by the store's own rules so the message
 * names the allowed range.  0 or -1 with why. */
int aas_cmd_parse_serving(aas_store_model_opts_t *opts, int opt, const char *value,
                         unsigned *field, char *why, size_t why_size) {
    const char *flag = opt == 'p' ? "--precision" : opt == 'b' ? "--max-batch"
                                                               : "--max-delay-us";
    int is_default = strcmp(value, "default") == 0;
    int64_t v = -1;
    if (opt == 'p') {
        *field = AAS_STORE_OPT_PRECISION;
        if (strlen(value) >= sizeof(opts->precision)) {
            snprintf(why, why_size, "%s: '%s' is not one of f32, bf16 or int8", flag,
                     value);
            return -1;
        }
        snprintf(opts->precision, sizeof(opts->precision), "%s",
                 is_default ? "" : value);
    } else {
        *field = opt == 'b' ? AAS_STORE_OPT_BATCH_ROWS : AAS_STORE_OPT_BATCH_DELAY;
        if (!is_default && aas_cmd_parse_i64(value, INT32_MIN, INT32_MAX, &v)) {
            snprintf(why, why_size, "%s: '%s' is not an integer or 'default'", flag,
                     value);
            return -1;
        }
        if (!is_default && v < 0) { /* -1 would read as "not set" */
            snprintf(why, why_size, "%s: %lld is out of range (%s..%d)", flag,
                     (long long)v, opt == 'b' ? "1" : "0",
                     opt == 'b' ? AAS_STORE_BATCH_ROWS_MAX
                                : AAS_STORE_BATCH_DELAY_US_MAX);
            return -1;
        }
        if (opt == 'b') opts->batch_max_rows = (int32_t)v;
        else opts->batch_max_delay_us = (int32_t)v;
    }
    char check[200];
    if (aas_store_model_opts_check(opts, *field, check, sizeof(check))) {
        snprintf(why, why_size, "%s: %s", flag, check);
        return -1;
    }
    return 0;
}

/* Write the serving options given on the command line; exit code. */
static int set_serving(aas_client_t *c, const char *name, const aas_cmd_opts_t *o) {
    char why[512];
    aas_err_t err = aas_store_model_opts_set(aas_client_store(c), name,
                                             &o->serving, o->serving_fields,
                                             why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : AAS_EXIT_USAGE;
    }
    return 0;
}

static int cmd_model_register(aas_client_t *c, const char *name,
                              const char *path, const aas_cmd_opts_t *o) {
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    if (!fp || fstat(fileno(fp), &sb) != 0) {
        fprintf(stderr, "aas-producer: cannot open %s: %s\n", path, strerror(errno));
        if (fp) fclose(fp);
        return 1;
    }
    size_t len = (size_t)sb.st_size;
    void *blob = malloc(len ? len : 1);
    int ok = blob && fread(blob, 1, len, fp) == len;
    fclose(fp);
    if (!ok) {
        fprintf(stderr, "aas-producer: cannot read %s\n", path);
        free(blob);
        return 1;
    }
    char why[512];
    int64_t version;
    aas_err_t err = AAS_ERR_OK;
    if (o->serving_fields) {
        /* Options first, so no worker serves the new version without
         * them; and only for a blob a worker can load, so a refused file
         * changes nothing. */
        aas_model_t *m = NULL;
        char load_why[256];
        if ((err = aas_model_load(blob, len, &m, load_why, sizeof(load_why)))) {
            snprintf(why, sizeof(why), "model %s: %s", name, load_why);
        } else {
            aas_model_destroy(m);
            int rc = set_serving(c, name, o);
            if (rc) {
                free(blob);
                return rc;
            }
        }
    }
    if (!err)
        err = aas_client_model_register(c, name, blob, len, o->meta, &version,
                                        why, sizeof(why));
    free(blob);
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : AAS_EXIT_USAGE;
    }
    printf("%s %lld\n", name, (long long)version);
    return 0;
}

static int parse_version(const char *s, int64_t *v) {
    if (strcmp(s, "latest") == 0) {
        *v = 0;
        return 0;
    }
    return aas_cmd_parse_i64(s, 1, INT64_MAX, v);
}

/* model list | versions NAME | show NAME [VERSION] | delete NAME VERSION */
static int cmd_model_query(aas_client_t *c, char **args, size_t n) {
    aas_store_t *st = aas_client_store(c);
    char why[512];
    aas_err_t err;
    if (!strcmp(args[0], "list") && n == 1) {
        char **names;
        size_t count;
        if ((err = aas_store_model_list(st, &names, &count, why, sizeof(why)))) goto fail;
        for (size_t i = 0; i < count; i++) {
            int64_t latest = 0;
            aas_store_model_latest(st, names[i], &latest, NULL, 0);
            printf("%s latest=%lld\n", names[i], (long long)latest);
        }
        aas_store_model_list_free(names, count);
        return 0;
    }
    if (!strcmp(args[0], "versions") && n == 2) {
        int64_t *v;
        size_t count;
        if ((err = aas_store_model_versions(st, args[1], &v, &count, why, sizeof(why))))
            goto fail;
        for (size_t i = 0; i < count; i++) printf("%s %lld\n", args[1], (long long)v[i]);
        free(v);
        return 0;
    }
    int64_t version = 0;
    if (n == 3) parse_version(args[2], &version); /* checked by aas_cmd_model_check */
    if (!strcmp(args[0], "show") && (n == 2 || n == 3)) {
        char *meta = NULL, opts_why[512];
        int64_t created = 0, resolved = version;
        aas_store_model_opts_t opts;
        if (version == 0 &&
            (err = aas_store_model_latest(st, args[1], &resolved, why, sizeof(why))))
            goto fail;
        if ((err = aas_store_model_meta(st, args[1], resolved, &meta, &created, why,
                                        sizeof(why))))
            goto fail;
        /* A corrupt option is shown, not fatal: this is how one finds it. */
        err = aas_store_model_opts_get(st, args[1], &opts, opts_why, sizeof(opts_why));
        if (err && err != AAS_ERR_DECODE) {
            free(meta);
            snprintf(why, sizeof(why), "%s", opts_why);
            goto fail;
        }
        if (err) fprintf(stderr, "aas-producer: warning: %s\n", opts_why);
        aas_print_model_show(stdout, args[1], resolved, created, meta, &opts,
                             err ? opts_why : NULL);
        free(meta);
        return 0;
    }
    if (!strcmp(args[0], "delete") && n == 3 && version > 0) {
        if ((err = aas_store_model_delete(st, args[1], version, why, sizeof(why))))
            goto fail;
        printf("%s %lld deleted\n", args[1], (long long)version);
        return 0;
    }
    return AAS_EXIT_USAGE; /* not reached: aas_cmd_model_check knows the forms */
fail:
    fprintf(stderr, "aas-producer: %s\n", why);
    return aas_err_is_retriable(err) ? 1 : AAS_EXIT_JOB_FAILED;
}

/* model set NAME --precision P --max-batch N --max-delay-us US */
static int cmd_model_set(aas_client_t *c, char **args, size_t n, const aas_cmd_opts_t *o) {
    int rc = set_serving(c, args[1], o);
    if (rc) return rc;
    /* Print what is stored now, all fields, as workers will read it. */
    char why[512];
    aas_store_model_opts_t now;
    aas_err_t err = aas_store_model_opts_get(aas_client_store(c), args[1], &now, why,
                                             sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : AAS_EXIT_JOB_FAILED;
    }
    aas_print_model_serving(stdout, args[1], &now, o->json);
    return 0;
}

static int cmd_model(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    if (strcmp(args[0], "register") == 0) return cmd_model_register(c, args[1], args[2], o);
    if (strcmp(args[0], "set") == 0) return cmd_model_set(c, args, n, o);
    return cmd_model_query(c, args, n);
}

static int cmd_model_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    static const struct {
        const char *sub;
        size_t min, max;   /* arguments, the subcommand included */
    } forms[] = {{"register", 3, 3}, {"set", 2, 2}, {"list", 1, 1}, {"versions", 2, 2},
                 {"show", 2, 3}, {"delete", 3, 3}};
    size_t f = sizeof(forms) / sizeof(forms[0]), i = 0;
    while (n > 0 && i < f && strcmp(args[0], forms[i].sub) != 0) i++;
    int64_t v = 0;
    if (n == 0 || i == f || n < forms[i].min || n > forms[i].max ||
        (n == 3 && i >= 4 && parse_version(args[2], &v)) || (i == 5 && v == 0)) {
        fprintf(stderr, "aas-producer: usage: model register NAME FILE | set NAME "
                        "OPTIONS | list | versions NAME | show NAME [VERSION] | "
                        "delete NAME VERSION\n");
        return AAS_EXIT_USAGE;
    }
    if (n >= 2 && !aas_id_valid(args[1])) {
        fprintf(stderr, "aas-producer: model name '%s' is not valid ([A-Za-z0-9_.-])\n",
                args[1]);
        return AAS_EXIT_USAGE;
    }
    if (i == 1 && !o->serving_fields) {
        fprintf(stderr, "aas-producer: usage: model set NAME [--precision P] "
                        "[--max-batch N] [--max-delay-us US] (at least one)\n");
        return AAS_EXIT_USAGE;
    }
    if (i > 1 && o->serving_fields) {
        fprintf(stderr, "aas-producer: --precision, --max-batch and --max-delay-us "
                        "go with model register or model set\n");
        return AAS_EXIT_USAGE;
    }
    return 0;
}

static const aas_cmd_help_t model_help[] = {
    {"model register NAME FILE [--meta JSON] [serving options]",
     "add FILE as NAME's next version"},
    {"model set NAME serving options...",
     "change how workers serve NAME (all\nversions, no re-upload; workers apply\n"
     "it within their model.refresh.ms)"},
    {"model list", "models and their latest versions"},
    {"model versions NAME", "NAME's versions"},
    {"model show NAME [VERSION]", "metadata of a version and NAME's\nserving options (JSON)"},
    {"model delete NAME VERSION", "delete one version"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_model_def = {"model", cmd_model_check, cmd_model, model_help};
