/* cmd_train.c - aas-producer train: a training job from rows, an uploaded
 * data set or labelled text (cmd.h); published by cmd_submit.c. */
#include <stdint.h>
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
                     .n_params = o->n_params, .priority = (int32_t)o->priority, .tenant = (char *)o->tenant};
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

/* train --data-topic T: a Kafka topic slice as training data
 * (docs/training.md#data-sources): params data_topic, data_partitions,
 * data_start, data_end; no tensors.  Checked by cmd_train_check(). */
static int cmd_train_topic(aas_client_t *c, const aas_cmd_opts_t *o) {
    aas_kv_t *params = calloc(o->n_params + 4, sizeof(*params));
    if (!params) {
        fprintf(stderr, "aas-producer: out of memory\n");
        return 1;
    }
    aas_cmd_opts_t with = *o;
    memcpy(params, o->params, o->n_params * sizeof(*params));
    with.params = params;
    const char *keys[4] = {"data_topic", "data_partitions", "data_start", "data_end"};
    const char *vals[4] = {o->data_topic, o->data_partitions, o->data_start, o->data_end};
    for (int i = 0; i < 4; i++) {
        if (!vals[i]) continue;
        params[with.n_params].key = (char *)keys[i];
        params[with.n_params++].value = (char *)vals[i];
    }
    int rc = cmd_train_submit(c, &with, NULL, 0);
    free(params);
    return rc;
}

/* A training job: rows of the input are features + a label (last column). */
static int cmd_train(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    char why[512];
    aas_rows_t rows = {0};
    if (o->data_topic) return cmd_train_topic(c, o);
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

/* The --data-* values, by the rules the worker applies to the params
 * (aas_src_kafka_from_params() in worker/source_kafka.c), so a bad one is
 * a usage error here instead of a FAILED job. */
static int cmd_train_topic_ok(const char *t) {
    size_t n = strlen(t);
    if (n < 1 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) return 0;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int cmd_train_partitions_ok(const char *v) {
    int32_t seen[1024];
    size_t n = 0;
    for (const char *c = v;;) {
        const char *comma = strchr(c, ',');
        size_t len = comma ? (size_t)(comma - c) : strlen(c);
        char num[16];
        int64_t id;
        if (len == 0 || len >= sizeof(num) || strspn(c, "0123456789") < len || n >= 1024)
            return 0;
        memcpy(num, c, len);
        num[len] = '\0';
        if (aas_cmd_parse_i64(num, 0, INT32_MAX, &id)) return 0;
        for (size_t j = 0; j < n; j++)
            if (seen[j] == (int32_t)id) return 0;
        seen[n++] = (int32_t)id;
        if (!comma) return 1;
        c = comma + 1;
    }
}

/* `word`, an offset N >= 0 or time:<unix ms>. */
static int cmd_train_bound_ok(const char *v, const char *word) {
    int64_t x;
    if (strcmp(v, word) == 0) return 1;
    if (strncmp(v, "time:", 5) == 0) v += 5;
    return *v && strspn(v, "0123456789") == strlen(v) &&
           aas_cmd_parse_i64(v, 0, INT64_MAX, &x) == 0;
}

static int cmd_train_topic_check(const aas_cmd_opts_t *o) {
    if (!o->data_topic) {
        if (o->data_partitions || o->data_start || o->data_end) {
            fprintf(stderr, "aas-producer: --data-partitions, --data-start and --data-end "
                            "need --data-topic\n");
            return AAS_EXIT_USAGE;
        }
        return 0;
    }
    if (o->input || o->dataset || o->text_input) {
        fprintf(stderr, "aas-producer: train takes one of --input, --dataset, --text-input "
                        "or --data-topic\n");
        return AAS_EXIT_USAGE;
    }
    if (!cmd_train_topic_ok(o->data_topic)) {
        fprintf(stderr, "aas-producer: --data-topic '%s' is not a Kafka topic name "
                        "([A-Za-z0-9._-], 1 to 249 characters, not . or ..)\n",
                o->data_topic);
        return AAS_EXIT_USAGE;
    }
    if (o->data_partitions && !cmd_train_partitions_ok(o->data_partitions)) {
        fprintf(stderr, "aas-producer: --data-partitions '%s' is not a comma-separated list "
                        "of distinct partition numbers (e.g. 0,2)\n",
                o->data_partitions);
        return AAS_EXIT_USAGE;
    }
    if (o->data_start && !cmd_train_bound_ok(o->data_start, "beginning")) {
        fprintf(stderr, "aas-producer: --data-start '%s' is not 'beginning', an offset N or "
                        "'time:<unix ms>'\n",
                o->data_start);
        return AAS_EXIT_USAGE;
    }
    if (o->data_end && !cmd_train_bound_ok(o->data_end, "end")) {
        fprintf(stderr, "aas-producer: --data-end '%s' is not 'end' (the high watermark when "
                        "the job starts), an offset N (exclusive) or 'time:<unix ms>'\n",
                o->data_end);
        return AAS_EXIT_USAGE;
    }
    for (size_t i = 0; i < o->n_params; i++) {
        const char *k = o->params[i].key, *v = o->params[i].value;
        if (strcmp(k, "data_topic") == 0 || strcmp(k, "data_partitions") == 0 ||
            strcmp(k, "data_start") == 0 || strcmp(k, "data_end") == 0) {
            fprintf(stderr, "aas-producer: give %s with its --data-* option, not --param\n", k);
            return AAS_EXIT_USAGE;
        }
        if (strcmp(k, "data_format") == 0 && strcmp(v, "tsv") != 0 && strcmp(v, "csv") != 0) {
            fprintf(stderr, "aas-producer: --param data_format='%s' is not tsv (label<TAB>text) "
                            "or csv (numbers, the label last)\n",
                    v);
            return AAS_EXIT_USAGE;
        }
    }
    return 0;
}

static int cmd_train_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    int rc = cmd_train_topic_check(o);
    if (rc) return rc;
    if (o->data_topic) {
        if (n > 0 || !o->model || !aas_id_valid(o->model) || o->values) {
            fprintf(stderr, "aas-producer: train --data-topic T needs --model NAME and no "
                            "other input\n");
            return AAS_EXIT_USAGE;
        }
        if (o->id && !aas_cmd_id_ok("--id", o->id)) return AAS_EXIT_USAGE;
        return 0;
    }
    if (n > 0 || !o->model || !aas_id_valid(o->model) || o->values ||
        (!o->text_input && !!o->input == !!o->dataset) ||
        (o->text_input && (o->input || o->dataset))) {
        fprintf(stderr, "aas-producer: train needs --model NAME and one of --input FILE "
                        "(rows of features with the class label last), --dataset NAME "
                        "(uploaded with 'dataset put'), --text-input TSV or --data-topic T\n");
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
    {"train --model NAME --data-topic T ...",
     "the same on a Kafka topic slice, one\nexample a record; --data-partitions\n"
     "0,1 (default all), --data-start\nbeginning|N|time:MS (default beginning),\n"
     "--data-end end|N|time:MS (default end:\nthe high watermark at job start);\n"
     "--param data_format=tsv|csv (tsv)"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_train_def = {"train", cmd_train_check, cmd_train, train_help};
