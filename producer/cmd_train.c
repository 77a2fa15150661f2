/* cmd_train.c - aas-producer train: a training job from rows, an uploaded
 * data set or labelled text (cmd.h); published by cmd_submit.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "input.h"

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
    return aas_cmd_submit_one(c, o, &job);
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
static int cmd_train(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    char why[512];
    aas_rows_t rows = {0};
    if (o->text_input) return cmd_train_text(c, o);
    if (o->dataset) {
        aas_cmd_opts_t with = *o;
        with.params[with.n_params].key = "dataset";
        with.params[with.n_params++].value = (char *)o->dataset;
        return cmd_train_submit(c, &with, NULL, 0);
    }
    aas_err_t err = aas_input_read_file_hdr(o->input, o->format, 0, o->header,
                                            (size_t)1 << 30, &rows, why, sizeof(why));
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

static int cmd_train_check(const aas_cmd_opts_t *o, char **args, size_t n) {
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

static const aas_cmd_help_t train_help[] = {
    {"train --model NAME --input FILE [--param K=V]...",
     "train NAME's next version on rows of\nfeatures + class label (last column);\n"
     "params: docs/training.md"},
    {"train --model NAME --dataset SET ...", "the same on an uploaded data set"},
    {"train --model NAME --text-input TSV",
     "a text classifier from lines of\nlabel<TAB>text (docs/text.md)"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_train_def = {"train", cmd_train_check, cmd_train, train_help};
