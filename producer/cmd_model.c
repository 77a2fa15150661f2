/* cmd_model.c - aas-producer model: register, set, list, versions, show,
 * describe, delete (cmd.h), and the serving options' parsing.  Register
 * refuses, before storing anything, a file no worker could serve (native
 * AASMLP1/AASTXT1 or ONNX, told apart by aas_model_load from the bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "input.h"
#include "model.h"
#include "onnx.h"
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

/* Read a whole file (at most AAS_STORE_BLOB_MAX bytes): *blob malloc'ed.
 * 0, or 1 having said why. */
static int read_file(const char *path, void **blob, size_t *len) {
    FILE *fp = fopen(path, "rb");
    struct stat sb;
    if (!fp || fstat(fileno(fp), &sb) != 0) {
        fprintf(stderr, "aas-producer: cannot open %s: %s\n", path, strerror(errno));
        if (fp) fclose(fp);
        return 1;
    }
    if ((uint64_t)sb.st_size > AAS_STORE_BLOB_MAX) {
        fprintf(stderr, "aas-producer: %s: %lld bytes, over the registry's %zu\n", path,
                (long long)sb.st_size, AAS_STORE_BLOB_MAX);
        fclose(fp);
        return 1;
    }
    *len = (size_t)sb.st_size;
    *blob = malloc(*len ? *len : 1);
    int ok = *blob && fread(*blob, 1, *len, fp) == *len;
    fclose(fp);
    if (!ok) {
        fprintf(stderr, "aas-producer: cannot read %s\n", path);
        free(*blob);
        return 1;
    }
    return 0;
}

/* Whether a worker could serve these bytes: they load (the loader's reason
 * names the first unsupported op with its opset, or the bad field), and a
 * forward pass of one row of zeros runs, which finds what only planning
 * sees (an ONNX graph whose shapes disagree at some node). */
static aas_err_t model_check_servable(const void *blob, size_t len, char *why,
                                      size_t why_size) {
    aas_model_t *m = NULL;
    aas_err_t err = aas_model_load(blob, len, &m, why, why_size);
    if (err) return err;
    int64_t in_dim = aas_model_input_dim(m), out_dim = aas_model_output_dim(m);
    float *in = NULL, *out = NULL;
    /* The loaders bound both dims (AAS_MLP_MAX_DIM, AAS_ONNX_MAX_TENSOR_BYTES). */
    if (!(in = calloc(in_dim > 0 ? (size_t)in_dim : 1, sizeof(float))) ||
        !(out = calloc(out_dim > 0 ? (size_t)out_dim : 1, sizeof(float)))) {
        err = aas_err_set(why, why_size, AAS_ERR_NOMEM, "out of memory");
    } else if (aas_model_takes_text(m)) {
        const char *text = "";
        size_t text_len = 0;
        err = aas_model_infer_text(m, &text, &text_len, 1, out, why, why_size);
    } else {
        err = aas_model_infer(m, in, 1, out, why, why_size);
    }
    free(in);
    free(out);
    aas_model_destroy(m);
    return err;
}

static int cmd_model_register(aas_client_t *c, const char *name,
                              const char *path, const aas_cmd_opts_t *o) {
    void *blob;
    size_t len;
    if (read_file(path, &blob, &len)) return 1;
    char why[1024], load_why[768];
    /* A file that is not a model is a failure (exit 1), as one that cannot
     * be read; and it changes nothing: no option is set, nothing stored. */
    if (model_check_servable(blob, len, load_why, sizeof(load_why))) {
        fprintf(stderr, "aas-producer: model %s: %s: %s\n", name, path, load_why);
        free(blob);
        return 1;
    }
    /* Options first, so no worker serves the new version without them. */
    int rc = o->serving_fields ? set_serving(c, name, o) : 0;
    if (rc) {
        free(blob);
        return rc;
    }
    int64_t version;
    aas_err_t err = aas_client_model_register(c, name, blob, len, o->meta, &version, why,
                                              sizeof(why));
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

/* describe's NAME, NAME@VERSION or NAME VERSION (a number or latest):
 * 0 with name and *version (0 = latest) set; -1 a malformed form; -2 a
 * name that breaks the id rule. */
static int parse_name_version(char **args, size_t n, char name[AAS_ID_MAX + 1],
                              int64_t *version) {
    const char *at = strchr(args[1], '@');
    size_t len = at ? (size_t)(at - args[1]) : strlen(args[1]);
    const char *v = at ? at + 1 : n == 3 ? args[2] : NULL;
    if (at && n == 3) return -1;
    *version = 0;
    if (v && parse_version(v, version)) return -1;
    if (len > AAS_ID_MAX) return -2;
    memcpy(name, args[1], len);
    name[len] = '\0';
    return aas_id_valid(name) ? 0 : -2;
}

/* The kind as aas_model_load tells the bytes apart: the native formats by
 * their magic, anything else is read as ONNX. */
static const char *model_kind(const void *blob, size_t len) {
    if (len >= 7 && memcmp(blob, "AASMLP1", 7) == 0) return "AASMLP1";
    if (len >= 7 && memcmp(blob, "AASTXT1", 7) == 0) return "AASTXT1";
    if (len >= 7 && memcmp(blob, "AASTXT2", 7) == 0) return "AASTXT2";
    return "ONNX";
}

/* Print what a model blob is; exit code (1 for bytes that do not load).
 * An ONNX graph is described even when aas cannot serve it (say, two
 * inputs), with the reason in place of the serving shape. */
static int describe_blob(const char *name, int64_t version, const void *blob, size_t len,
                         int json) {
    const char *kind = model_kind(blob, len);
    char why[768], serving_why[768] = "";
    aas_onnx_t *g = NULL;
    aas_model_t *m = NULL;
    aas_err_t err;
    if (strcmp(kind, "ONNX") == 0) {
        if (!(err = aas_onnx_load(blob, len, &g, why, sizeof(why))) &&
            aas_model_load(blob, len, &m, serving_why, sizeof(serving_why)))
            m = NULL;
    } else {
        err = aas_model_load(blob, len, &m, why, sizeof(why));
    }
    if (err) {
        fprintf(stderr, "aas-producer: model %s@%lld: %s\n", name, (long long)version, why);
        return 1;
    }
    aas_print_model_describe(stdout, name, version, kind, g, m, m ? NULL : serving_why,
                             json);
    aas_onnx_destroy(g);
    aas_model_destroy(m);
    return 0;
}

/* model describe NAME[@VERSION] | NAME VERSION */
static int cmd_model_describe(aas_client_t *c, char **args, size_t n,
                              const aas_cmd_opts_t *o) {
    char name[AAS_ID_MAX + 1], why[512];
    int64_t version = 0;
    if (parse_name_version(args, n, name, &version))
        return AAS_EXIT_USAGE; /* not reached: checked by cmd_model_check */
    void *blob = NULL;
    size_t len = 0;
    aas_err_t err = aas_store_model_get(aas_client_store(c), name, version,
                                        AAS_STORE_BLOB_MAX, &blob, &len, &version, why,
                                        sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : AAS_EXIT_JOB_FAILED;
    }
    int rc = describe_blob(name, version, blob, len, o->json);
    free(blob);
    return rc;
}

static int cmd_model(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    if (strcmp(args[0], "register") == 0) return cmd_model_register(c, args[1], args[2], o);
    if (strcmp(args[0], "set") == 0) return cmd_model_set(c, args, n, o);
    if (strcmp(args[0], "describe") == 0) return cmd_model_describe(c, args, n, o);
    return cmd_model_query(c, args, n);
}

/* model describe --file FILE: a local file, no server (checking an export
 * before registering it).  -1 for every other form: they connect. */
static int cmd_model_local(const aas_cmd_opts_t *o, char **args, size_t n) {
    (void)args;
    (void)n;
    if (!o->file) return -1;
    void *blob = NULL;
    size_t len = 0;
    if (read_file(o->file, &blob, &len)) return 1;
    const char *base = strrchr(o->file, '/');
    int rc = describe_blob(base ? base + 1 : o->file, 0, blob, len, o->json);
    free(blob);
    return rc;
}

static int cmd_model_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    enum { SET = 1, DELETE = 5, DESCRIBE = 6 };
    static const struct {
        const char *sub;
        size_t min, max;   /* arguments, the subcommand included */
    } forms[] = {{"register", 3, 3}, {"set", 2, 2}, {"list", 1, 1}, {"versions", 2, 2},
                 {"show", 2, 3}, {"delete", 3, 3}, {"describe", 2, 3}};
    size_t f = sizeof(forms) / sizeof(forms[0]), i = 0;
    while (n > 0 && i < f && strcmp(args[0], forms[i].sub) != 0) i++;
    int64_t v = 0;
    char name[AAS_ID_MAX + 1];
    int name_rc = 0;
    if (o->file) { /* only describe --file FILE, which takes no NAME */
        if (n == 1 && i == DESCRIBE) return 0;
        fprintf(stderr, "aas-producer: --file goes with 'model describe --file FILE' "
                        "(no NAME: the file is read, not the registry)\n");
        return AAS_EXIT_USAGE;
    }
    int bad = n == 0 || i == f || n < forms[i].min || n > forms[i].max;
    if (!bad && i == DESCRIBE)
        bad = (name_rc = parse_name_version(args, n, name, &v)) == -1;
    else if (!bad)
        bad = (n == 3 && i >= 4 && parse_version(args[2], &v)) || (i == DELETE && v == 0);
    if (bad) {
        fprintf(stderr, "aas-producer: usage: model register NAME FILE | set NAME "
                        "OPTIONS | list | versions NAME | show NAME [VERSION] | "
                        "describe NAME[@VERSION] | delete NAME VERSION\n");
        return AAS_EXIT_USAGE;
    }
    if (n >= 2 && (i == DESCRIBE ? name_rc == -2 : !aas_id_valid(args[1]))) {
        fprintf(stderr, "aas-producer: model name '%.*s' is not valid ([A-Za-z0-9_.-])\n",
                (int)strcspn(args[1], i == DESCRIBE ? "@" : ""), args[1]);
        return AAS_EXIT_USAGE;
    }
    if (i == SET && !o->serving_fields) {
        fprintf(stderr, "aas-producer: usage: model set NAME [--precision P] "
                        "[--max-batch N] [--max-delay-us US] (at least one)\n");
        return AAS_EXIT_USAGE;
    }
    if (i > SET && o->serving_fields) {
        fprintf(stderr, "aas-producer: --precision, --max-batch and --max-delay-us "
                        "go with model register or model set\n");
        return AAS_EXIT_USAGE;
    }
    return 0;
}

static const aas_cmd_help_t model_help[] = {
    {"model register NAME FILE [--meta JSON] [serving options]",
     "add FILE (AASMLP1, AASTXT1 or ONNX,\ntold from its bytes) as NAME's next\n"
     "version; a file no worker could serve\nis refused saying why (exit 1)"},
    {"model set NAME serving options...",
     "change how workers serve NAME (all\nversions, no re-upload; workers apply\n"
     "it within their model.refresh.ms)"},
    {"model list", "models and their latest versions"},
    {"model versions NAME", "NAME's versions"},
    {"model show NAME [VERSION]", "metadata of a version and NAME's\nserving options (JSON)"},
    {"model describe NAME[@VERSION]",
     "what a version is: kind (AASMLP1,\nAASTXT1, ONNX), inputs and outputs\n"
     "(name, dtype, shape), ONNX opsets,\nproducer and node count (--json)"},
    {"model describe --file FILE", "the same for a local file, without\nRedis "
     "(check an export before\nregistering it)"},
    {"model delete NAME VERSION", "delete one version"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_model_def = {"model", cmd_model_check, cmd_model, model_help,
                                     cmd_model_local};
