/* cmd_dataset.c - aas-producer dataset: put (a TSV or CSV file streamed to
 * Redis as format aas.dataset.v2), list, describe and delete (cmd.h).  The
 * checks of the lines and the upload itself are the client library's
 * (client.h aas_client_dataset_put_stream); this file picks the format and
 * header from the options, draws the progress bar and prints. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

#define DATASET_USAGE                                                               \
    "aas-producer: usage: dataset put NAME FILE|- [--format tsv|csv] "              \
    "[--header|--no-header] [--no-progress] | dataset list [--json] | "            \
    "dataset describe NAME | dataset delete NAME\n"

/* The file of `dataset put`: FILE, or --input FILE as before. */
static const char *dataset_file(const aas_cmd_opts_t *o, char **args, size_t n) {
    return n == 3 ? args[2] : o->input;
}

/* tsv or csv from --format, else from the extension; NULL if neither. */
static const char *dataset_type(const aas_cmd_opts_t *o, const char *file) {
    if (o->format) return o->format;
    const char *dot = strrchr(file, '.');
    if (!dot || strchr(dot, '/')) return NULL;
    if (!strcmp(dot, ".tsv") || !strcmp(dot, ".txt")) return "tsv";
    if (!strcmp(dot, ".csv")) return "csv";
    return NULL;
}

static int cmd_dataset_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    const char *sub = n > 0 ? args[0] : "";
    int put = !strcmp(sub, "put") &&
              ((n == 2 && o->input) || (n == 3 && !o->input));
    int list = !strcmp(sub, "list") && n == 1;
    int one = (!strcmp(sub, "delete") || !strcmp(sub, "describe")) && n == 2;
    if (!put && !list && !one) {
        fputs(DATASET_USAGE, stderr);
        return AAS_EXIT_USAGE;
    }
    if (n >= 2 && !aas_id_valid(args[1])) {
        fprintf(stderr, "aas-producer: data set name '%s' is not valid ([A-Za-z0-9_.-])\n",
                args[1]);
        return AAS_EXIT_USAGE;
    }
    if (!put) return 0;
    const char *file = dataset_file(o, args, n);
    const char *type = dataset_type(o, file);
    if (!type) {
        fprintf(stderr, "aas-producer: dataset put: cannot tell the format of '%s' from its "
                        "name: say --format tsv or --format csv\n", file);
        return AAS_EXIT_USAGE;
    }
    if (strcmp(type, "tsv") && strcmp(type, "csv")) {
        fprintf(stderr, "aas-producer: dataset put: --format %s: want tsv or csv\n", type);
        return AAS_EXIT_USAGE;
    }
    if (!strcmp(type, "csv") && o->header < 0) {
        fprintf(stderr, "aas-producer: dataset put: a CSV data set needs --header (its "
                        "first line names the columns) or --no-header (it has none); "
                        "headers are never guessed\n");
        return AAS_EXIT_USAGE;
    }
    if (!strcmp(type, "tsv") && o->header == 1) {
        fprintf(stderr, "aas-producer: dataset put: a TSV data set has no header line "
                        "(lines starting with '#' are comments); drop --header\n");
        return AAS_EXIT_USAGE;
    }
    return 0;
}

/* The progress bar on stderr: bytes done (of the total when known), MB/s,
 * at most ten times a second. */
typedef struct {
    int64_t t0_us, last_us;
} dataset_bar_t;

static void dataset_bar_draw(void *opaque, uint64_t done, uint64_t total) {
    dataset_bar_t *b = opaque;
    int64_t now = aas_mono_us();
    if (now - b->last_us < 100000 && done != total) return;
    b->last_us = now;
    double s = (double)(now - b->t0_us) / 1e6;
    double rate = s > 0 ? (double)done / 1e6 / s : 0;
    if (total > 0) {
        int width = 30, fill = (int)((double)width * (double)done / (double)total);
        if (fill > width) fill = width;
        fprintf(stderr, "\r[%.*s%*s] %.1f/%.1f MB %.1f MB/s", fill,
                "##############################", width - fill, "", (double)done / 1e6,
                (double)total / 1e6, rate);
    } else {
        fprintf(stderr, "\r%.1f MB %.1f MB/s", (double)done / 1e6, rate);
    }
    fflush(stderr);
}

static int dataset_put(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    const char *name = args[1], *file = dataset_file(o, args, n);
    int tsv = !strcmp(dataset_type(o, file), "tsv");
    int is_stdin = !strcmp(file, "-");
    FILE *fp = is_stdin ? stdin : fopen(file, "rb");
    if (!fp) {
        fprintf(stderr, "aas-producer: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    struct stat sb;
    dataset_bar_t bar = {.t0_us = aas_mono_us()};
    int show = !o->no_progress && isatty(STDERR_FILENO);
    aas_client_dataset_opts_t opts = {
        .type = tsv ? AAS_CLIENT_DATASET_TSV : AAS_CLIENT_DATASET_CSV,
        .header = o->header == 1,
        .file = file,
        .total_bytes = fstat(fileno(fp), &sb) == 0 && S_ISREG(sb.st_mode)
                           ? (uint64_t)sb.st_size : 0,
        .progress = show ? dataset_bar_draw : NULL,
        .opaque = &bar};
    aas_client_dataset_stats_t st;
    char why[512];
    aas_err_t err = aas_client_dataset_put_stream(aas_client_store(c), name, fp, &opts, &st,
                                                  why, sizeof(why));
    if (!is_stdin) fclose(fp);
    if (show) fputs("\r\033[K", stderr);
    if (err) {
        fprintf(stderr, "aas-producer: dataset put %s: %s\n", name, why);
        return 1;
    }
    printf("%s rows=%lld bytes=%llu chunks=%lld format=%s crc64=%016llx", name,
           (long long)st.rows, (unsigned long long)st.bytes, (long long)st.chunks,
           tsv ? "tsv" : "csv", (unsigned long long)st.crc64);
    if (tsv) printf(" classes=%lld", (long long)st.classes);
    else printf(" cols=%lld", (long long)st.cols);
    printf("\n");
    return 0;
}

/* A set's meta as JSON, with "type" "v1 binary" and the counts for v1 sets
 * (their meta predates both).  NULL (having said why) on failure. */
static json_t *dataset_meta(aas_client_t *c, const char *name, aas_err_t *err_out) {
    char *text = NULL, why[512];
    aas_store_dataset_info_t info;
    aas_err_t err = aas_store_dataset_meta(aas_client_store(c), name, &text, &info, why,
                                           sizeof(why));
    *err_out = err;
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return NULL;
    }
    json_error_t jerr;
    json_t *m = json_loads(text, 0, &jerr);
    free(text);
    if (!json_is_object(m)) {
        json_decref(m);
        *err_out = AAS_ERR_DECODE;
        fprintf(stderr, "aas-producer: data set %s: its meta is not a JSON object\n", name);
        return NULL;
    }
    if (info.version == 1 &&
        (json_object_set_new(m, "type", json_string("v1 binary")) ||
         json_object_set_new(m, "bytes", json_integer((json_int_t)info.bytes)) ||
         json_object_set_new(m, "chunks", json_integer(info.chunks)))) {
        json_decref(m);
        *err_out = AAS_ERR_NOMEM;
        fprintf(stderr, "aas-producer: out of memory\n");
        return NULL;
    }
    return m;
}

static int dataset_describe(aas_client_t *c, const char *name) {
    aas_err_t err;
    json_t *m = dataset_meta(c, name, &err);
    if (!m) return 1;
    char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(m);
    if (!text) {
        fprintf(stderr, "aas-producer: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int dataset_list(aas_client_t *c, const aas_cmd_opts_t *o) {
    char **names = NULL, why[512];
    size_t n = 0;
    if (aas_store_dataset_list(aas_client_store(c), &names, &n, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    int rc = 0;
    if (!o->json) printf("%-32s %-10s %12s %14s %s\n", "NAME", "TYPE", "ROWS", "BYTES",
                         "CREATED");
    for (size_t i = 0; i < n; i++) {
        aas_err_t err;
        json_t *m = dataset_meta(c, names[i], &err);
        if (!m) {
            if (err != AAS_ERR_NOT_FOUND) rc = 1; /* deleted meanwhile: not listed */
            continue;
        }
        const char *type = json_string_value(json_object_get(m, "type"));
        json_int_t rows = json_integer_value(json_object_get(m, "rows"));
        json_int_t bytes = json_integer_value(json_object_get(m, "bytes"));
        json_t *created = json_object_get(m, "created_ms");
        if (o->json) {
            json_t *line = json_pack("{s:s, s:s, s:I, s:I, s:O}", "name", names[i], "type",
                                     type ? type : "?", "rows", rows, "bytes", bytes,
                                     "created_ms", created ? created : json_null());
            char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(line);
            if (!text) {
                fprintf(stderr, "aas-producer: out of memory\n");
                rc = 1;
            } else {
                printf("%s\n", text);
                free(text);
            }
        } else {
            char when[32] = "-";
            if (json_is_integer(created)) {
                time_t t = (time_t)(json_integer_value(created) / 1000);
                struct tm tm;
                if (gmtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
            }
            printf("%-32s %-10s %12lld %14lld %s\n", names[i], type ? type : "?",
                   (long long)rows, (long long)bytes, when);
        }
        json_decref(m);
    }
    aas_store_dataset_names_free(names, n);
    return rc;
}

/* dataset put|list|describe|delete (cmd_dataset_check has vetted args). */
static int cmd_dataset(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    if (!strcmp(args[0], "put")) return dataset_put(c, o, args, n);
    if (!strcmp(args[0], "list")) return dataset_list(c, o);
    if (!strcmp(args[0], "describe")) return dataset_describe(c, args[1]);
    char why[512];
    /* delete: a set that is not there is an error (exit 1), so a typo in a
     * clean-up script does not pass silently. */
    if (aas_store_dataset_delete(aas_client_store(c), args[1], why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    printf("%s deleted\n", args[1]);
    return 0;
}

static const aas_cmd_help_t dataset_help[] = {
    {"dataset put SET FILE|- [--format tsv|csv]",
     "stream FILE to Redis (aas.dataset.v2):\n"
     "tsv label<TAB>text lines, or csv\nnumbers with the label last; format\n"
     "from --format, else .tsv/.txt/.csv;\n--input FILE works too"},
    {"  --header | --no-header",
     "csv: the first line names the columns,\nor there is none (one is required:\n"
     "headers are never guessed)"},
    {"  --no-progress", "no progress bar (drawn on stderr only\nwhen it is a terminal)"},
    {"dataset list [--json]", "data sets: name, type, rows, bytes,\ncreated (--json: JSON lines)"},
    {"dataset describe SET", "a data set's meta (JSON)"},
    {"dataset delete SET", "delete a data set (exit 1 if none)"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_dataset_def = {"dataset", cmd_dataset_check, cmd_dataset,
                                       dataset_help, NULL};
