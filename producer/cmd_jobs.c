/* cmd_jobs.c - aas-producer's job commands: submit, train, status, wait,
 * cancel (cmd.h).  Publishing and reading go through the client library. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "input.h"
#include "print.h"

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
int aas_cmd_wait(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n) {
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
            rc = rc ? rc : AAS_EXIT_TIMEOUT;
            continue;
        }
        if (err) {
            fprintf(stderr, "aas-producer: job %s: %s\n", ids[i], why);
            return 1;
        }
        aas_print_result(stdout, &res, o->json, o->curves);
        if (res.status != AAS_STATUS_SUCCEEDED) rc = AAS_EXIT_JOB_FAILED;
        aas_result_clear(&res);
    }
    return rc;
}

int aas_cmd_status(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n) {
    int json = o->json;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char why[512];
        aas_job_info_t info = {0};
        aas_err_t err = aas_client_status(c, ids[i], &info, why, sizeof(why));
        if (err == AAS_ERR_NOT_FOUND) {
            fprintf(stderr, "aas-producer: job %s: unknown (never published, or "
                    "expired)\n", ids[i]);
            rc = AAS_EXIT_JOB_FAILED;
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

/* Publish one job and wait until the broker has it; print its id, or with
 * --wait its result. */
static int submit_one(aas_client_t *c, const aas_cmd_opts_t *o, const aas_job_t *job) {
    char why[512];
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    if (aas_client_submit(c, job, why, sizeof(why)) ||
        aas_client_flush(c, 60000, NULL, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    if (!o->wait) {
        printf("%s\n", job->id);
        return 0;
    }
    char *ids[1] = {job->id};
    return aas_cmd_wait(c, o, ids, 1);
}

int aas_cmd_submit(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    char why[512];
    aas_rows_t rows = {0};
    aas_err_t err;
    if (o->text) {
        char id[AAS_ID_MAX + 1];
        if (o->id) snprintf(id, sizeof(id), "%s", o->id);
        else if (aas_client_job_id(id, sizeof(id))) return 1;
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version, .text = (char *)o->text,
                         .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        return submit_one(c, o, &job);
    }
    err = o->values ? aas_input_parse_list(o->values, &rows, why, sizeof(why))
                    : aas_input_read_file(o->input, o->format, o->drop_last,
                                          (size_t)1 << 30, &rows, why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: input: %s\n", why);
        return AAS_EXIT_USAGE;
    }
    int64_t per = o->rows_per_job > 0 ? o->rows_per_job : rows.rows;
    size_t n_jobs = (size_t)((rows.rows + per - 1) / per);
    if (o->id && n_jobs > 1) {
        fprintf(stderr, "aas-producer: --id names one job, but the input makes %zu\n",
                n_jobs);
        aas_rows_clear(&rows);
        return AAS_EXIT_USAGE;
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
    if (!rc && o->wait) rc = aas_cmd_wait(c, o, ids, n_jobs);
    for (size_t j = 0; ids && j < n_jobs; j++) free(ids[j]);
    free(ids);
    return rc ? rc : (ids ? 0 : 1);
}

/* Publish a TRAIN job carrying `tensors` (or none, with param dataset). */
static int cmd_train_submit(aas_client_t *c, const aas_cmd_opts_t *o, aas_tensor_t *tensors,
                            size_t n) {
    char id[AAS_ID_MAX + 1];
    if (o->id)
        snprintf(id, sizeof(id), "%s", o->id);
    else if (aas_client_job_id(id, sizeof(id)))
        return 1;
    aas_job_t job = {.id = id, .kind = AAS_JOB_TRAIN, .model = (char *)o->model,
                     .inputs = tensors, .n_inputs = n, .params = o->params,
                     .n_params = o->n_params, .priority = (int32_t)o->priority};
    return submit_one(c, o, &job);
}

/* train --text-input FILE: lines "label<TAB>text" (input.h) -> a text
 * classifier job: featurizer=text, class_names = the sorted labels. */
static int cmd_train_text(aas_client_t *c, const aas_cmd_opts_t *o) {
    char why[512], class_names[4096] = "";
    aas_labeled_text_t lt = {0};
    if (aas_input_read_labeled_text(o->text_input, (size_t)1 << 30, &lt, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return AAS_EXIT_USAGE;
    }
    size_t cn = 0;
    for (size_t i = 0; i < lt.n_names; i++) {
        int w = snprintf(class_names + cn, sizeof(class_names) - cn, "%s%s", i ? "," : "",
                         lt.names[i]);
        if (w < 0 || (size_t)w >= sizeof(class_names) - cn) {
            fprintf(stderr, "aas-producer: class names over %zu bytes\n",
                    sizeof(class_names) - 1);
            aas_labeled_text_clear(&lt);
            return AAS_EXIT_USAGE;
        }
        cn += (size_t)w;
    }
    aas_tensor_t t[2] = {{.name = "text", .dtype = AAS_DTYPE_U8, .rank = 1,
                          .shape = {(int64_t)lt.bytes}, .data = lt.texts,
                          .nbytes = lt.bytes},
                         {.name = "labels", .dtype = AAS_DTYPE_I32, .rank = 1,
                          .shape = {lt.n}, .data = lt.labels,
                          .nbytes = (size_t)lt.n * sizeof(int32_t)}};
    aas_cmd_opts_t with = *o; /* params has room: argc + 1 entries */
    with.params[with.n_params].key = "featurizer";
    with.params[with.n_params++].value = "text";
    with.params[with.n_params].key = "class_names";
    with.params[with.n_params++].value = class_names;
    int rc = cmd_train_submit(c, &with, t, 2);
    aas_labeled_text_clear(&lt);
    return rc;
}

/* A training job: rows of the input are features + a label (last column). */
int aas_cmd_train(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    char why[512];
    aas_rows_t rows = {0};
    if (o->text_input) return cmd_train_text(c, o);
    if (o->dataset) {
        aas_cmd_opts_t with = *o;
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
        return AAS_EXIT_USAGE;
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

int aas_cmd_cancel(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n) {
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char why[512];
        aas_status_t st;
        aas_err_t err = aas_client_cancel(c, ids[i], &st, why, sizeof(why));
        if (err) {
            fprintf(stderr, "aas-producer: job %s: %s\n", ids[i], why);
            rc = err == AAS_ERR_NOT_FOUND ? AAS_EXIT_JOB_FAILED : 1;
            continue;
        }
        printf("%s %s\n", ids[i],
               st == AAS_STATUS_CANCELLED ? "CANCELLED"
               : st == AAS_STATUS_RUNNING ? "RUNNING (stop requested)"
                                          : aas_status_name(st));
    }
    return rc;
}

/* A job id given by the user, checked before anything connects: an id
 * that breaks the id rule is refused, never cut to fit. */
static int aas_cmd_id_ok(const char *what, const char *id) {
    if (aas_id_valid(id)) return 1;
    fprintf(stderr, "aas-producer: %s '%.40s%s' is not a valid id ([A-Za-z0-9_.-], 1..%d "
            "characters, not starting with '.' or '-'; this one has %zu)\n", what, id,
            strlen(id) > 40 ? "..." : "", AAS_ID_MAX, strlen(id));
    return 0;
}

int aas_cmd_submit_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n > 0) {
        fprintf(stderr, "aas-producer: submit takes no arguments ('%s'; see --help)\n",
                args[0]);
        return AAS_EXIT_USAGE;
    }
    if (!o->model || !aas_id_valid(o->model)) {
        fprintf(stderr, "aas-producer: submit needs --model NAME ([A-Za-z0-9_.-])\n");
        return AAS_EXIT_USAGE;
    }
    if (o->text && (o->values || o->input)) {
        fprintf(stderr, "aas-producer: --text goes without --values/--input\n");
        return AAS_EXIT_USAGE;
    }
    if (!o->text && !!o->values == !!o->input) {
        fprintf(stderr, "aas-producer: submit needs exactly one of --values, --input or "
                        "--text\n");
        return AAS_EXIT_USAGE;
    }
    if (o->id && !aas_cmd_id_ok("--id", o->id)) return AAS_EXIT_USAGE;
    return 0;
}

int aas_cmd_train_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n > 0 || !o->model || !aas_id_valid(o->model) || o->values ||
        (!o->text_input && !!o->input == !!o->dataset) ||
        (o->text_input && (o->input || o->dataset))) {
        fprintf(stderr, "aas-producer: train needs --model NAME and one of --input FILE "
                        "(rows of features with the class label last), --dataset NAME "
                        "(uploaded with 'dataset put') or --text-input TSV\n");
        return AAS_EXIT_USAGE;
    }
    if (o->dataset && !aas_id_valid(o->dataset)) {
        fprintf(stderr, "aas-producer: invalid data set name '%s'\n", o->dataset);
        return AAS_EXIT_USAGE;
    }
    if (o->id && !aas_cmd_id_ok("--id", o->id)) return AAS_EXIT_USAGE;
    return 0;
}

int aas_cmd_ids_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n == 0) {
        fprintf(stderr, "aas-producer: give one or more job ids (see --help)\n");
        return AAS_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++)
        if (!aas_cmd_id_ok("job id", args[i])) return AAS_EXIT_USAGE;
    return 0;
}
