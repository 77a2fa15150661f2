/*
 * aas-producer - publish jobs, wait for results, manage models.
 *
 *   aas-producer [global options] submit --model NAME (--values LIST | --input FILE) ...
 *   aas-producer [global options] status ID...
 *   aas-producer [global options] wait [--timeout S] ID...
 *   aas-producer [global options] model register NAME FILE [serving options]
 *   aas-producer [global options] model set NAME serving options...
 *
 * Exit codes: 0 success (every waited job SUCCEEDED), 1 runtime failure,
 * 2 usage error, 3 a job ended FAILED/EXPIRED/CANCELLED, 4 timed out.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "input.h"
#include "log.h"
#include "model.h"
#include "print.h"

#define EXIT_USAGE 2
#define EXIT_JOB_FAILED 3
#define EXIT_TIMEOUT 4

static void usage(FILE *fp, const aas_conf_t *conf) {
    fprintf(fp,
"Usage: aas-producer [global options] COMMAND [options] [args]\n"
"Publish aas jobs to Kafka and read their results from Redis.\n\n"
"Commands:\n"
"  submit --model NAME [input] [options]  publish job(s); print their ids\n"
"  train --model NAME --input FILE [--param K=V]...\n"
"                                         train NAME's next version on rows of\n"
"                                         features + class label (last column);\n"
"                                         params: docs/training.md\n"
"  train --model NAME --dataset SET ...   the same on an uploaded data set\n"
"  train --model NAME --text-input TSV    a text classifier from lines of\n"
"                                         label<TAB>text (docs/text.md)\n"
"  dataset put SET --input FILE           upload rows (label last) to Redis\n"
"  dataset delete SET                     delete an uploaded data set\n"
"  status ID...                           print each job's status\n"
"  wait [--timeout S] ID...               wait for jobs, print results\n"
"  cancel ID...                           cancel queued or running jobs\n"
"  model register NAME FILE [--meta JSON] [serving options]\n"
"                                         add FILE as NAME's next version\n"
"  model set NAME serving options...      change how workers serve NAME (all\n"
"                                         versions, no re-upload; workers apply\n"
"                                         it within their model.refresh.ms)\n"
"  model list                             models and their latest versions\n"
"  model versions NAME                    NAME's versions\n"
"  model show NAME [VERSION]              metadata of a version and NAME's\n"
"                                         serving options (JSON)\n"
"  model delete NAME VERSION              delete one version\n\n"
"submit input (one of):\n"
"  --values LIST          one row, e.g. 0.1,0.2,0.3\n"
"  --text TEXT            text, for a text classifier\n"
"  --input FILE           CSV or JSON rows ('-' = stdin)\n"
"  --format csv|json      input format (default: by extension, else csv)\n"
"  --drop-last-column     ignore each CSV row's last value (e.g. a label)\n"
"submit options:\n"
"  --model NAME           model to run (required)\n"
"  --model-version V      version number (default: latest)\n"
"  --rows-per-job N       split the rows into jobs of N rows (default: all\n"
"                         rows in one job)\n"
"  --id ID                job id (one job only; default: random)\n"
"  --priority N           higher runs first (default 0)\n"
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
"4 timed out.\n\n"
"Keys (environment: AAS_ + key upper-cased, '.' -> '_'):\n");
    if (conf) aas_conf_print_help(conf, fp);
}

typedef struct {
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
} opts_t;

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* --precision ('p') / --max-batch ('b') / --max-delay-us ('d') VALUE into
 * opts ('default' unsets), checked by the store's own rules so the message
 * names the allowed range.  0 or -1 with why. */
static int parse_serving(aas_store_model_opts_t *opts, int opt, const char *value,
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
        if (!is_default && parse_i64(value, INT32_MIN, INT32_MAX, &v)) {
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

/* One line on stderr redrawn in place: "[#####.....] epoch 3/20 loss ..". */
static void draw_progress(const char *job_id, const char *progress_json) {
    json_error_t jerr;
    json_t *p = json_loads(progress_json, 0, &jerr);
    if (!p) return;
    double epoch = json_number_value(json_object_get(p, "epoch"));
    double epochs = json_number_value(json_object_get(p, "epochs"));
    double frac = epochs > 0 ? epoch / epochs : 0;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%.12s [%s] epoch %.0f/%.0f loss %.4f val_acc %.3f eta %.0fs ",
            job_id, bar, epoch, epochs,
            json_number_value(json_object_get(p, "train_loss")),
            json_number_value(json_object_get(p, "val_accuracy")),
            json_number_value(json_object_get(p, "eta_s")));
    fflush(stderr);
    json_decref(p);
}

/* Wait for one job; on a terminal, show its progress while it runs. */
static aas_err_t wait_one(aas_client_t *c, const char *id, int64_t deadline_us,
                          int show_progress, aas_result_t *res, char *why,
                          size_t why_size) {
    int drawn = 0;
    for (;;) {
        int64_t left_ms = (deadline_us - aas_mono_us()) / 1000;
        if (left_ms < 0) left_ms = 0;
        int slice = show_progress && left_ms > 500 ? 500 : (int)left_ms;
        aas_err_t err = aas_client_wait(c, id, slice, res, why, why_size);
        if (err != AAS_ERR_TIMEOUT || slice == left_ms) {
            if (drawn) fputc('\n', stderr);
            return err;
        }
        aas_job_info_t info = {0};
        if (aas_client_status(c, id, &info, NULL, 0) == AAS_ERR_OK && info.progress) {
            draw_progress(id, info.progress);
            drawn = 1;
        }
        aas_job_info_clear(&info);
    }
}

/* Wait for each id in turn within one overall deadline; print results. */
static int cmd_wait(aas_client_t *c, char **ids, size_t n, const opts_t *o) {
    int rc = 0;
    int64_t deadline = aas_mono_us() + (int64_t)(o->timeout_s * 1e6);
    int show_progress = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    for (size_t i = 0; i < n; i++) {
        char why[512];
        aas_result_t res = {0};
        aas_err_t err = wait_one(c, ids[i], deadline, show_progress, &res, why,
                                 sizeof(why));
        if (err == AAS_ERR_TIMEOUT) {
            fprintf(stderr, "aas-producer: job %s: not finished within %.0f s\n",
                    ids[i], o->timeout_s);
            rc = rc ? rc : EXIT_TIMEOUT;
            continue;
        }
        if (err) {
            fprintf(stderr, "aas-producer: job %s: %s\n", ids[i], why);
            return 1;
        }
        aas_print_result(stdout, &res, o->json);
        if (res.status != AAS_STATUS_SUCCEEDED) rc = EXIT_JOB_FAILED;
        aas_result_clear(&res);
    }
    return rc;
}

static int cmd_status(aas_client_t *c, char **ids, size_t n, int json) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char why[512];
        aas_job_info_t info = {0};
        aas_err_t err = aas_client_status(c, ids[i], &info, why, sizeof(why));
        if (err == AAS_ERR_NOT_FOUND) {
            fprintf(stderr, "aas-producer: job %s: unknown (never published, or "
                    "expired)\n", ids[i]);
            rc = EXIT_JOB_FAILED;
            continue;
        }
        if (err) {
            fprintf(stderr, "aas-producer: job %s: %s\n", ids[i], why);
            return 1;
        }
        aas_print_status(stdout, ids[i], &info, json);
        aas_job_info_clear(&info);
    }
    return rc;
}

static void on_delivery(void *opaque, const char *job_id, aas_err_t err,
                        const char *why) {
    if (err) fprintf(stderr, "aas-producer: job %s: %s\n", job_id, why);
}

static int cmd_submit(aas_client_t *c, const opts_t *o) {
    char why[512];
    aas_rows_t rows = {0};
    aas_err_t err;
    if (!o->model || !aas_id_valid(o->model)) {
        fprintf(stderr, "aas-producer: submit needs --model NAME ([A-Za-z0-9_.-])\n");
        return EXIT_USAGE;
    }
    if (o->text) {
        if (o->values || o->input) {
            fprintf(stderr, "aas-producer: --text goes without --values/--input\n");
            return EXIT_USAGE;
        }
        char id[AAS_ID_MAX + 1];
        if (o->id) snprintf(id, sizeof(id), "%s", o->id);
        else if (aas_client_job_id(id, sizeof(id))) return 1;
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version, .text = (char *)o->text,
                         .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        aas_client_set_delivery_cb(c, on_delivery, NULL);
        if (aas_client_submit(c, &job, why, sizeof(why)) ||
            aas_client_flush(c, 60000, NULL, why, sizeof(why))) {
            fprintf(stderr, "aas-producer: %s\n", why);
            return 1;
        }
        if (!o->wait) {
            printf("%s\n", id);
            return 0;
        }
        char *ids[1] = {id};
        return cmd_wait(c, ids, 1, o);
    }
    if (!!o->values == !!o->input) {
        fprintf(stderr, "aas-producer: submit needs exactly one of --values or --input\n");
        return EXIT_USAGE;
    }
    err = o->values ? aas_input_parse_list(o->values, &rows, why, sizeof(why))
                    : aas_input_read_file(o->input, o->format, o->drop_last,
                                          (size_t)1 << 30, &rows, why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: input: %s\n", why);
        return EXIT_USAGE;
    }
    int64_t per = o->rows_per_job > 0 ? o->rows_per_job : rows.rows;
    size_t n_jobs = (size_t)((rows.rows + per - 1) / per);
    if (o->id && n_jobs > 1) {
        fprintf(stderr, "aas-producer: --id names one job, but the input makes %zu\n",
                n_jobs);
        aas_rows_clear(&rows);
        return EXIT_USAGE;
    }
    char **ids = calloc(n_jobs, sizeof(*ids));
    int rc = 0;
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    for (size_t j = 0; ids && j < n_jobs && !rc; j++) {
        char id[AAS_ID_MAX + 1];
        if (o->id)
            snprintf(id, sizeof(id), "%s", o->id);
        else if (aas_client_job_id(id, sizeof(id))) {
            rc = 1;
            break;
        }
        int64_t r0 = (int64_t)j * per;
        int64_t nr = rows.rows - r0 < per ? rows.rows - r0 : per;
        aas_tensor_t t;
        int64_t shape[2] = {nr, rows.cols};
        if (aas_tensor_set_f32(&t, "input", rows.values + r0 * rows.cols, 2, shape)) {
            rc = 1;
            break;
        }
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version, .inputs = &t,
                         .n_inputs = 1, .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        err = aas_client_submit(c, &job, why, sizeof(why));
        aas_tensor_clear(&t);
        if (err) {
            fprintf(stderr, "aas-producer: %s\n", why);
            rc = 1;
            break;
        }
        ids[j] = strdup(id);
        if (!ids[j]) rc = 1;
    }
    aas_rows_clear(&rows);
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        rc = 1;
    } else if (failed) {
        fprintf(stderr, "aas-producer: %zu job(s) were not published\n", failed);
        rc = 1;
    }
    if (!rc && !o->wait)
        for (size_t j = 0; j < n_jobs; j++) printf("%s\n", ids[j]);
    if (!rc && o->wait) rc = cmd_wait(c, ids, n_jobs, o);
    for (size_t j = 0; ids && j < n_jobs; j++) free(ids[j]);
    free(ids);
    return rc ? rc : (ids ? 0 : 1);
}

/* Publish a TRAIN job carrying `tensors` (or none, with param dataset). */
static int cmd_train_submit(aas_client_t *c, const opts_t *o, aas_tensor_t *tensors,
                            size_t n) {
    char id[AAS_ID_MAX + 1], why[512];
    if (o->id)
        snprintf(id, sizeof(id), "%s", o->id);
    else if (aas_client_job_id(id, sizeof(id)))
        return 1;
    aas_job_t job = {.id = id, .kind = AAS_JOB_TRAIN, .model = (char *)o->model,
                     .inputs = tensors, .n_inputs = n, .params = o->params,
                     .n_params = o->n_params, .priority = (int32_t)o->priority};
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    if (aas_client_submit(c, &job, why, sizeof(why)) ||
        aas_client_flush(c, 60000, NULL, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    if (!o->wait) {
        printf("%s\n", id);
        return 0;
    }
    char *ids[1] = {id};
    return cmd_wait(c, ids, 1, o);
}

/* dataset put NAME --input FILE | dataset delete NAME */
static int cmd_dataset(aas_client_t *c, char **args, size_t n, const opts_t *o) {
    char why[512];
    if (n == 2 && !strcmp(args[0], "delete") && aas_id_valid(args[1])) {
        if (aas_store_dataset_delete(aas_client_store(c), args[1], why, sizeof(why))) {
            fprintf(stderr, "aas-producer: %s\n", why);
            return 1;
        }
        printf("%s deleted\n", args[1]);
        return 0;
    }
    if (n != 2 || strcmp(args[0], "put") || !aas_id_valid(args[1]) || !o->input) {
        fprintf(stderr, "aas-producer: usage: dataset put NAME --input FILE | "
                        "dataset delete NAME\n");
        return EXIT_USAGE;
    }
    aas_rows_t rows = {0};
    aas_err_t err = aas_input_read_file(o->input, o->format, 0, (size_t)4 << 30, &rows,
                                        why, sizeof(why));
    if (!err && rows.cols < 2)
        err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                          "each row needs features and a label");
    int64_t dim = rows.cols - 1;
    float *x = err ? NULL : malloc((size_t)(rows.rows * dim) * sizeof(float));
    int32_t *y = err ? NULL : malloc((size_t)rows.rows * sizeof(int32_t));
    if (!err && (!x || !y)) err = aas_err_set(why, sizeof(why), AAS_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; !err && r < rows.rows; r++) {
        float l = rows.values[r * rows.cols + dim];
        if (l < 0 || l > 65535 || l != (float)(int32_t)l)
            err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                              "row %lld: label %g is not a class index", (long long)r + 1,
                              (double)l);
        y[r] = (int32_t)l;
        memcpy(x + r * dim, rows.values + r * rows.cols, (size_t)dim * sizeof(float));
    }
    if (!err) err = aas_client_dataset_put(c, args[1], x, y, rows.rows, dim, why, sizeof(why));
    if (!err) printf("%s rows=%lld dim=%lld\n", args[1], (long long)rows.rows, (long long)dim);
    else fprintf(stderr, "aas-producer: %s\n", why);
    free(x);
    free(y);
    aas_rows_clear(&rows);
    return err ? (aas_err_is_retriable(err) ? 1 : EXIT_USAGE) : 0;
}

/* train --text-input FILE: lines "label<TAB>text" (input.h) -> a text
 * classifier job: featurizer=text, class_names = the sorted labels. */
static int cmd_train_text(aas_client_t *c, const opts_t *o) {
    char why[512], class_names[4096] = "";
    aas_labeled_text_t lt = {0};
    if (aas_input_read_labeled_text(o->text_input, (size_t)1 << 30, &lt, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return EXIT_USAGE;
    }
    size_t cn = 0;
    for (size_t i = 0; i < lt.n_names; i++) {
        int w = snprintf(class_names + cn, sizeof(class_names) - cn, "%s%s", i ? "," : "",
                         lt.names[i]);
        if (w < 0 || (size_t)w >= sizeof(class_names) - cn) {
            fprintf(stderr, "aas-producer: class names over %zu bytes\n",
                    sizeof(class_names) - 1);
            aas_labeled_text_clear(&lt);
            return EXIT_USAGE;
        }
        cn += (size_t)w;
    }
    aas_tensor_t t[2] = {{.name = "text", .dtype = AAS_DTYPE_U8, .rank = 1,
                          .shape = {(int64_t)lt.bytes}, .data = lt.texts,
                          .nbytes = lt.bytes},
                         {.name = "labels", .dtype = AAS_DTYPE_I32, .rank = 1,
                          .shape = {lt.n}, .data = lt.labels,
                          .nbytes = (size_t)lt.n * sizeof(int32_t)}};
    opts_t with = *o; /* params has room: argc + 1 entries */
    with.params[with.n_params].key = "featurizer";
    with.params[with.n_params++].value = "text";
    with.params[with.n_params].key = "class_names";
    with.params[with.n_params++].value = class_names;
    int rc = cmd_train_submit(c, &with, t, 2);
    aas_labeled_text_clear(&lt);
    return rc;
}

/* A training job: rows of the input are features + a label (last column). */
static int cmd_train(aas_client_t *c, const opts_t *o) {
    char why[512];
    aas_rows_t rows = {0};
    if (!o->model || !aas_id_valid(o->model) ||
        (!o->text_input && !!o->input == !!o->dataset) || o->values) {
        fprintf(stderr, "aas-producer: train needs --model NAME and either --input FILE "
                        "(rows of features with the class label last) or --dataset "
                        "NAME (uploaded with 'dataset put')\n");
        return EXIT_USAGE;
    }
    if (o->text_input) return cmd_train_text(c, o);
    if (o->dataset) {
        if (!aas_id_valid(o->dataset)) {
            fprintf(stderr, "aas-producer: invalid data set name '%s'\n", o->dataset);
            return EXIT_USAGE;
        }
        opts_t with = *o;
        with.params[with.n_params].key = "dataset";
        with.params[with.n_params++].value = (char *)o->dataset;
        return cmd_train_submit(c, &with, NULL, 0);
    }
    aas_err_t err = aas_input_read_file(o->input, o->format, 0, (size_t)1 << 30,
                                        &rows, why, sizeof(why));
    if (!err && rows.cols < 2)
        err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                          "each row needs features and a label");
    int32_t *labels = err ? NULL : malloc((size_t)rows.rows * sizeof(int32_t));
    float *feats = err ? NULL : malloc((size_t)(rows.rows * (rows.cols - 1)) * sizeof(float));
    if (!err && (!labels || !feats)) err = aas_err_set(why, sizeof(why), AAS_ERR_NOMEM,
                                                       "out of memory");
    for (int64_t r = 0; !err && r < rows.rows; r++) {
        float l = rows.values[r * rows.cols + rows.cols - 1];
        if (l < 0 || l > 65535 || l != (float)(int32_t)l)
            err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                              "row %lld: label %g is not a class index 0..65535",
                              (long long)r + 1, (double)l);
        labels[r] = (int32_t)l;
        memcpy(feats + r * (rows.cols - 1), rows.values + r * rows.cols,
               (size_t)(rows.cols - 1) * sizeof(float));
    }
    if (err) {
        fprintf(stderr, "aas-producer: input: %s\n", why);
        free(labels);
        free(feats);
        aas_rows_clear(&rows);
        return EXIT_USAGE;
    }
    aas_tensor_t t[2] = {0};
    int64_t fshape[2] = {rows.rows, rows.cols - 1};
    int rc = aas_tensor_set_f32(&t[0], "features", feats, 2, fshape) ? 1 : 0;
    t[1].name = strdup("labels");
    t[1].dtype = AAS_DTYPE_I32;
    t[1].rank = 1;
    t[1].shape[0] = rows.rows;
    t[1].data = labels;
    t[1].nbytes = (size_t)rows.rows * sizeof(int32_t);
    free(feats);
    aas_rows_clear(&rows);
    if (!rc) rc = cmd_train_submit(c, o, t, 2);
    aas_tensor_clear(&t[0]);
    aas_tensor_clear(&t[1]);
    return rc;
}

/* Write the serving options given on the command line; exit code. */
static int set_serving(aas_client_t *c, const char *name, const opts_t *o) {
    char why[512];
    aas_err_t err = aas_store_model_opts_set(aas_client_store(c), name,
                                             &o->serving, o->serving_fields,
                                             why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : EXIT_USAGE;
    }
    return 0;
}

static int cmd_model_register(aas_client_t *c, const char *name,
                              const char *path, const opts_t *o) {
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
        return aas_err_is_retriable(err) ? 1 : EXIT_USAGE;
    }
    printf("%s %lld\n", name, (long long)version);
    return 0;
}

static int parse_version(const char *s, int64_t *v) {
    if (strcmp(s, "latest") == 0) {
        *v = 0;
        return 0;
    }
    return parse_i64(s, 1, INT64_MAX, v);
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
    if (n < 2 || !aas_id_valid(args[1])) goto usage;
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
    if (n == 3 && parse_version(args[2], &version)) goto usage;
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
usage:
    fprintf(stderr, "aas-producer: usage: model register NAME FILE | set NAME "
                    "OPTIONS | list | versions NAME | show NAME [VERSION] | "
                    "delete NAME VERSION\n");
    return EXIT_USAGE;
fail:
    fprintf(stderr, "aas-producer: %s\n", why);
    return aas_err_is_retriable(err) ? 1 : EXIT_JOB_FAILED;
}

/* model set NAME --precision P --max-batch N --max-delay-us US */
static int cmd_model_set(aas_client_t *c, char **args, size_t n, const opts_t *o) {
    if (n != 2 || !aas_id_valid(args[1]) || !o->serving_fields) {
        fprintf(stderr, "aas-producer: usage: model set NAME [--precision P] "
                        "[--max-batch N] [--max-delay-us US] (at least one)\n");
        return EXIT_USAGE;
    }
    int rc = set_serving(c, args[1], o);
    if (rc) return rc;
    /* Print what is stored now, all fields, as workers will read it. */
    char why[512];
    aas_store_model_opts_t now;
    aas_err_t err = aas_store_model_opts_get(aas_client_store(c), args[1], &now, why,
                                             sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return aas_err_is_retriable(err) ? 1 : EXIT_JOB_FAILED;
    }
    aas_print_model_serving(stdout, args[1], &now, o->json);
    return 0;
}

static int cmd_model(aas_client_t *c, char **args, size_t n, const opts_t *o) {
    if (n == 3 && strcmp(args[0], "register") == 0) {
        if (!aas_id_valid(args[1])) {
            fprintf(stderr, "aas-producer: model name '%s' is not valid "
                            "([A-Za-z0-9_.-])\n", args[1]);
            return EXIT_USAGE;
        }
        return cmd_model_register(c, args[1], args[2], o);
    }
    if (n == 0) {
        fprintf(stderr, "aas-producer: model needs a subcommand (see --help)\n");
        return EXIT_USAGE;
    }
    if (strcmp(args[0], "set") == 0)
        return cmd_model_set(c, args, n, o);
    if (o->serving_fields) {
        fprintf(stderr, "aas-producer: --precision, --max-batch and --max-delay-us "
                        "go with model register or model set\n");
        return EXIT_USAGE;
    }
    return cmd_model_query(c, args, n);
}

static int cmd_cancel(aas_client_t *c, char **ids, size_t n) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char why[512];
        aas_status_t st;
        aas_err_t err = aas_client_cancel(c, ids[i], &st, why, sizeof(why));
        if (err) {
            fprintf(stderr, "aas-producer: job %s: %s\n", ids[i], why);
            rc = err == AAS_ERR_NOT_FOUND ? EXIT_JOB_FAILED : 1;
            continue;
        }
        printf("%s %s\n", ids[i],
               st == AAS_STATUS_CANCELLED ? "CANCELLED"
               : st == AAS_STATUS_RUNNING ? "RUNNING (stop requested)"
                                          : aas_status_name(st));
    }
    return rc;
}

int main(int argc, char **argv) {
    enum { O_MODEL = 256, O_MVER, O_VALUES, O_INPUT, O_FORMAT, O_DROP, O_ROWS,
           O_ID, O_PRIO, O_DEADLINE, O_PARAM, O_WAIT, O_TIMEOUT, O_JSON, O_META,
           O_VERSION, O_CONFREF, O_DATASET, O_TEXT, O_TEXTIN, O_PRECISION,
           O_MAXBATCH, O_MAXDELAY };
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
        {"priority", required_argument, NULL, O_PRIO},
        {"deadline-ms", required_argument, NULL, O_DEADLINE},
        {"param", required_argument, NULL, O_PARAM},
        {"wait", no_argument, NULL, O_WAIT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"meta", required_argument, NULL, O_META},
        {"dataset", required_argument, NULL, O_DATASET},
        {"text", required_argument, NULL, O_TEXT},
        {"text-input", required_argument, NULL, O_TEXTIN},
        {"precision", required_argument, NULL, O_PRECISION},
        {"max-batch", required_argument, NULL, O_MAXBATCH},
        {"max-delay-us", required_argument, NULL, O_MAXDELAY},
        {NULL, 0, NULL, 0}};
    aas_conf_t *conf = NULL;
    if (aas_conf_new(aas_client_conf_defs, &conf)) return 1;
    opts_t o = {.timeout_s = 60};
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
        default: usage(stderr, NULL); rc = EXIT_USAGE; goto out;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "aas-producer: missing COMMAND (see --help)\n");
        rc = EXIT_USAGE;
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
        case O_WAIT: o.wait = 1; break;
        case O_JSON: o.json = 1; break;
        case O_META: o.meta = optarg; break;
        case O_DATASET: o.dataset = optarg; break;
        case O_TEXT: o.text = optarg; break;
        case O_TEXTIN: o.text_input = optarg; break;
        case O_ROWS:
            if (parse_i64(optarg, 1, 1 << 30, &o.rows_per_job)) goto bad;
            break;
        case O_PRIO:
            if (parse_i64(optarg, -1000000, 1000000, &o.priority)) goto bad;
            break;
        case O_DEADLINE:
            if (parse_i64(optarg, 1, 1LL << 40, &o.deadline_ms)) goto bad;
            break;
        case O_TIMEOUT:
            if (parse_i64(optarg, 0, 1 << 24, &v)) goto bad;
            o.timeout_s = (double)v;
            break;
        case O_PRECISION:
        case O_MAXBATCH:
        case O_MAXDELAY: {
            char why[512];
            unsigned field;
            int which = c == O_PRECISION ? 'p' : c == O_MAXBATCH ? 'b' : 'd';
            if (parse_serving(&o.serving, which, optarg, &field, why, sizeof(why))) {
                fprintf(stderr, "aas-producer: %s\n", why);
                rc = EXIT_USAGE;
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
        default: usage(stderr, NULL); rc = EXIT_USAGE; free(args); goto out;
        }
        continue;
    bad:
        fprintf(stderr, "aas-producer: bad value '%s' for an option (see --help)\n",
                optarg);
        rc = EXIT_USAGE;
        free(args);
        goto out;
    }
    int known = !strcmp(cmd, "submit") || !strcmp(cmd, "train") ||
                !strcmp(cmd, "status") ||
                !strcmp(cmd, "wait") || !strcmp(cmd, "model") ||
                !strcmp(cmd, "cancel") || !strcmp(cmd, "dataset");
    int takes_ids = strcmp(cmd, "submit") && strcmp(cmd, "train") && strcmp(cmd, "model") &&
                    strcmp(cmd, "dataset");
    int takes_args = takes_ids || !strcmp(cmd, "model") || !strcmp(cmd, "dataset");
    if (!known || (takes_ids && nargs == 0) || (!takes_args && nargs > 0)) {
        fprintf(stderr, known ? "aas-producer: %s: wrong arguments (see --help)\n"
                              : "aas-producer: unknown command '%s' (see --help)\n",
                cmd);
        rc = EXIT_USAGE;
        free(args);
        goto out;
    }
    char why[512];
    signal(SIGPIPE, SIG_IGN); /* a dead Redis gives EPIPE, not death */
    if (aas_cli_conf_load(conf, config_file, xargs, nx, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        rc = EXIT_USAGE;
        free(args);
        goto out;
    }
    if (aas_client_new(conf, &client, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        rc = 1;
        free(args);
        goto out;
    }
    if (!strcmp(cmd, "submit")) rc = cmd_submit(client, &o);
    else if (!strcmp(cmd, "train")) rc = cmd_train(client, &o);
    else if (!strcmp(cmd, "status")) rc = cmd_status(client, args, nargs, o.json);
    else if (!strcmp(cmd, "wait")) rc = cmd_wait(client, args, nargs, &o);
    else if (!strcmp(cmd, "cancel")) rc = cmd_cancel(client, args, nargs);
    else if (!strcmp(cmd, "dataset")) rc = cmd_dataset(client, args, nargs, &o);
    else rc = cmd_model(client, args, nargs, &o);
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
