/* print.c - human and JSON renderings of results; see print.h. */
#include "print.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *aas_print_tensor_json(const aas_tensor_t *t) {
    json_t *o = json_object(), *shape = json_array(), *vals = json_array();
    for (int i = 0; i < t->rank; i++)
        json_array_append_new(shape, json_integer(t->shape[i]));
    if (t->dtype == AAS_DTYPE_F32) {
        const float *f = t->data;
        for (size_t i = 0; i < t->nbytes / 4; i++)
            json_array_append_new(vals, json_real(f[i]));
    }
    json_object_set_new(o, "name", t->name ? json_string(t->name) : json_null());
    json_object_set_new(o, "dtype", json_string(aas_dtype_name(t->dtype)));
    json_object_set_new(o, "shape", shape);
    json_object_set_new(o, "values", vals);
    return o;
}

/* A training result's "metrics" output, in the order the trainer writes
 * it (worker/trainer.c); -1 = not measured (no validation rows). */
static const char *const aas_print_metric_names[] = {
    "train_loss", "val_loss", "val_accuracy", "samples_per_s", "epochs", "elapsed_ms"};
#define AAS_PRINT_N_METRICS 6

static int aas_print_is_metrics(const aas_tensor_t *t) {
    return t->name && strcmp(t->name, "metrics") == 0 && t->dtype == AAS_DTYPE_F32 &&
           t->rank == 1 && t->shape[0] == AAS_PRINT_N_METRICS;
}

static int aas_print_is_curve(const aas_tensor_t *t) {
    size_t n = t->name ? strlen(t->name) : 0;
    return n > 6 && strcmp(t->name + n - 6, "_curve") == 0;
}

static void aas_print_result_json(FILE *fp, const aas_result_t *r, int curves) {
    json_t *o = json_object(), *preds = json_array(), *outs = json_array();
    json_object_set_new(o, "id", json_string(r->job_id));
    json_object_set_new(o, "status", json_string(aas_status_name(r->status)));
    json_object_set_new(o, "model", r->model ? json_string(r->model) : json_null());
    json_object_set_new(o, "version", r->model_version ? json_string(r->model_version)
                                                      : json_null());
    json_object_set_new(o, "error", r->error ? json_string(r->error) : json_null());
    for (size_t i = 0; i < r->n_predictions; i++) {
        const aas_prediction_t *p = &r->predictions[i];
        json_t *po = json_object();
        json_object_set_new(po, "label", json_integer(p->label));
        json_object_set_new(po, "name", p->name ? json_string(p->name) : json_null());
        json_object_set_new(po, "probability", json_real(p->probability));
        json_array_append_new(preds, po);
    }
    for (size_t i = 0; i < r->n_outputs; i++) {
        const aas_tensor_t *t = &r->outputs[i];
        if (aas_print_is_metrics(t)) {
            json_t *m = json_object();
            const float *f = t->data;
            for (int k = 0; k < AAS_PRINT_N_METRICS; k++)
                json_object_set_new(m, aas_print_metric_names[k],
                                    f[k] < 0 ? json_null() : json_real(f[k]));
            json_object_set_new(o, "metrics", m);
            continue;
        }
        if (aas_print_is_curve(t) && !curves) continue;
        json_array_append_new(outs, aas_print_tensor_json(t));
    }
    json_object_set_new(o, "predictions", preds);
    json_object_set_new(o, "outputs", outs);
    json_object_set_new(o, "worker", r->worker_id ? json_string(r->worker_id)
                                                  : json_null());
    json_t *t = json_object();
    json_object_set_new(t, "queue_ms", json_integer(r->timings.queue_ms));
    json_object_set_new(t, "decode_us", json_integer(r->timings.decode_us));
    json_object_set_new(t, "compute_us", json_integer(r->timings.compute_us));
    json_object_set_new(t, "total_us", json_integer(r->timings.total_us));
    json_object_set_new(o, "timings", t);
    /* Every real here is a float32: 9 significant digits read back to the
     * same float (7 did not); a double added here would need 17. */
    char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (s) fprintf(fp, "%s\n", s);
    free(s);
    json_decref(o);
}

void aas_print_result(FILE *fp, const aas_result_t *r, int json, int curves) {
    if (json) {
        aas_print_result_json(fp, r, curves);
        return;
    }
    fprintf(fp, "%s %s", r->job_id, aas_status_name(r->status));
    if (r->model)
        fprintf(fp, " model=%s@%s", r->model,
                r->model_version ? r->model_version : "?");
    if (r->worker_id) fprintf(fp, " worker=%s", r->worker_id);
    if (r->status == AAS_STATUS_SUCCEEDED)
        fprintf(fp, " queue_ms=%lld compute_us=%lld", (long long)r->timings.queue_ms,
                (long long)r->timings.compute_us);
    if (r->error) fprintf(fp, " error=\"%s\"", r->error);
    fputc('\n', fp);
    if (r->n_predictions > 0) {
        for (size_t i = 0; i < r->n_predictions; i++) {
            const aas_prediction_t *p = &r->predictions[i];
            fprintf(fp, "  row %zu: label=%d", i, (int)p->label);
            if (p->name) fprintf(fp, " name=%s", p->name);
            fprintf(fp, " p=%.4f\n", (double)p->probability);
        }
        return;
    }
    for (size_t i = 0; i < r->n_outputs; i++) {
        const aas_tensor_t *t = &r->outputs[i];
        if (aas_print_is_metrics(t)) {
            const float *f = t->data;
            fprintf(fp, " ");
            if (r->model_version) fprintf(fp, " version=%s", r->model_version);
            for (int k = 0; k < AAS_PRINT_N_METRICS; k++)
                if (f[k] >= 0) fprintf(fp, " %s=%.6g", aas_print_metric_names[k], (double)f[k]);
            fputc('\n', fp);
            continue;
        }
        if (aas_print_is_curve(t) && !curves) continue;
        if (t->dtype == AAS_DTYPE_F32 && t->rank == 1) { /* curves */
            const float *f = t->data;
            fprintf(fp, "  %s:", t->name ? t->name : "output");
            for (int64_t k = 0; k < t->shape[0]; k++)
                fprintf(fp, "%s%.4g", k ? "," : " ", (double)f[k]);
            fputc('\n', fp);
            continue;
        }
        if (t->dtype != AAS_DTYPE_F32 || t->rank != 2) continue;
        const float *f = t->data;
        for (int64_t row = 0; row < t->shape[0]; row++) {
            fprintf(fp, "  row %lld:", (long long)row);
            for (int64_t k = 0; k < t->shape[1]; k++)
                fprintf(fp, "%s%.6g", k ? "," : " ", (double)f[row * t->shape[1] + k]);
            fputc('\n', fp);
        }
    }
}

void aas_print_status(FILE *fp, const char *job_id, const aas_job_info_t *info,
                      int json) {
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "id", job_id, "status", aas_status_name(info->status),
                              "model", info->model, "version", info->version,
                              "worker", info->worker, "error", info->error,
                              "attempts", (json_int_t)info->attempts,
                              "submit_ms", (json_int_t)info->submit_ms,
                              "started_ms", (json_int_t)info->started_ms,
                              "finished_ms", (json_int_t)info->finished_ms,
                              "result_writes", (json_int_t)info->result_writes,
                              "skips", (json_int_t)info->skips);
        if (o && info->tenant) json_object_set_new(o, "tenant", json_string(info->tenant));
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s) fprintf(fp, "%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    fprintf(fp, "%s %s model=%s attempts=%lld", job_id,
            aas_status_name(info->status), info->model ? info->model : "-",
            (long long)info->attempts);
    if (info->worker) fprintf(fp, " worker=%s", info->worker);
    if (info->tenant) fprintf(fp, " tenant=%s", info->tenant);
    if (info->finished_ms && info->submit_ms)
        fprintf(fp, " latency_ms=%lld",
                (long long)(info->finished_ms - info->submit_ms));
    if (info->error) fprintf(fp, " error=\"%s\"", info->error);
    fputc('\n', fp);
}

/* The options as a JSON object: unset precision is f32 (what it means),
 * unset batch limits are null (the worker's own setting). */
static json_t *aas_print_serving_json(const aas_store_model_opts_t *o) {
    json_t *s = json_object();
    json_object_set_new(s, "precision",
                        json_string(o->precision[0] ? o->precision : "f32"));
    json_object_set_new(s, "batch_max_rows", o->batch_max_rows < 0
                                                 ? json_null()
                                                 : json_integer(o->batch_max_rows));
    json_object_set_new(s, "batch_max_delay_us",
                        o->batch_max_delay_us < 0 ? json_null()
                                                  : json_integer(o->batch_max_delay_us));
    return s;
}

void aas_print_model_serving(FILE *fp, const char *name,
                             const aas_store_model_opts_t *o, int json) {
    if (json) {
        json_t *s = aas_print_serving_json(o);
        json_object_set_new(s, "model", json_string(name));
        char *txt = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
        if (txt) fprintf(fp, "%s\n", txt);
        free(txt);
        json_decref(s);
        return;
    }
    fprintf(fp, "%s precision=%s", name, o->precision[0] ? o->precision : "f32");
    if (o->batch_max_rows < 0) fprintf(fp, " batch_max_rows=default");
    else fprintf(fp, " batch_max_rows=%ld", (long)o->batch_max_rows);
    if (o->batch_max_delay_us < 0) fprintf(fp, " batch_max_delay_us=default\n");
    else fprintf(fp, " batch_max_delay_us=%ld\n", (long)o->batch_max_delay_us);
}

void aas_print_model_show(FILE *fp, const char *name, int64_t version,
                          int64_t created_ms, const char *meta_json,
                          const aas_store_model_opts_t *opts,
                          const char *serving_error) {
    json_t *s;
    if (serving_error) {
        s = json_object();
        json_object_set_new(s, "error", json_string(serving_error));
    } else {
        s = aas_print_serving_json(opts);
    }
    char *serving = json_dumps(s, JSON_COMPACT);
    json_decref(s);
    /* meta is printed as stored (the registry keeps it as given). */
    fprintf(fp, "{\"model\":\"%s\",\"version\":%lld,\"created_ms\":%lld,"
                "\"meta\":%s,\"serving\":%s}\n",
            name, (long long)version, (long long)created_ms,
            meta_json ? meta_json : "null", serving ? serving : "null");
    free(serving);
}

/* ---- model describe ---- */

/* ONNX element types as numpy names them (the names users export with);
 * "?" for a value that is not a tensor (a ZipMap's sequence of maps) or
 * whose type is not declared; NULL for numbers ONNX does not define. */
static const char *aas_print_onnx_dtype(aas_onnx_dtype_t t) {
    static const char *const names[] = {
        [AAS_ONNX_UNDEFINED] = "?",         [AAS_ONNX_FLOAT] = "float32",
        [AAS_ONNX_UINT8] = "uint8",         [AAS_ONNX_INT8] = "int8",
        [AAS_ONNX_UINT16] = "uint16",       [AAS_ONNX_INT16] = "int16",
        [AAS_ONNX_INT32] = "int32",         [AAS_ONNX_INT64] = "int64",
        [AAS_ONNX_STRING] = "string",       [AAS_ONNX_BOOL] = "bool",
        [AAS_ONNX_FLOAT16] = "float16",     [AAS_ONNX_DOUBLE] = "float64",
        [AAS_ONNX_UINT32] = "uint32",       [AAS_ONNX_UINT64] = "uint64",
        [AAS_ONNX_COMPLEX64] = "complex64", [AAS_ONNX_COMPLEX128] = "complex128",
        [AAS_ONNX_BFLOAT16] = "bfloat16"};
    return (unsigned)t < sizeof(names) / sizeof(*names) ? names[t] : NULL;
}

/* The domains aas_onnx_load accepts; a model importing another is refused. */
static const char *const aas_print_onnx_domains[] = {"ai.onnx", "ai.onnx.ml"};
#define AAS_PRINT_N_DOMAINS 2

static int64_t aas_print_n_labels(const aas_model_t *m) {
    int64_t n = 0;
    for (int64_t i = 0; i < aas_model_output_dim(m); i++)
        n += aas_model_label_name(m, i) != NULL;
    return n;
}

static json_t *aas_print_io_json(const aas_onnx_io_t *io) {
    json_t *o = json_object(), *shape = io->rank < 0 ? json_null() : json_array();
    const char *dt = aas_print_onnx_dtype(io->dtype);
    json_object_set_new(o, "name", json_string(io->name));
    json_object_set_new(o, "dtype", io->dtype == AAS_ONNX_UNDEFINED ? json_null()
                                    : dt ? json_string(dt) : json_integer(io->dtype));
    for (int i = 0; i < io->rank; i++)
        json_array_append_new(shape, io->dims[i] >= 0 ? json_integer(io->dims[i])
                                     : io->dim_params[i] ? json_string(io->dim_params[i])
                                                         : json_null());
    json_object_set_new(o, "shape", shape);
    return o;
}

static void aas_print_io_text(FILE *fp, const char *what, const aas_onnx_io_t *io) {
    const char *dt = aas_print_onnx_dtype(io->dtype);
    fprintf(fp, "%-6s %s ", what, io->name);
    if (dt) fprintf(fp, "%s ", dt);
    else fprintf(fp, "dtype(%d) ", (int)io->dtype);
    if (io->rank < 0) {
        fputs("?\n", fp);
        return;
    }
    fputc('[', fp);
    for (int i = 0; i < io->rank; i++) {
        if (i) fputc(',', fp);
        if (io->dims[i] >= 0) fprintf(fp, "%lld", (long long)io->dims[i]);
        else fputs(io->dim_params[i] ? io->dim_params[i] : "?", fp);
    }
    fputs("]\n", fp);
}

static void aas_print_describe_json(FILE *fp, const char *name, int64_t version,
                                    const char *kind, const aas_onnx_t *g,
                                    const aas_model_t *m, const char *serving_error) {
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(name));
    json_object_set_new(o, "version", version > 0 ? json_integer(version) : json_null());
    json_object_set_new(o, "kind", json_string(kind));
    if (g) {
        json_t *opsets = json_object(), *ins = json_array(), *outs = json_array();
        json_object_set_new(o, "ir_version", json_integer(aas_onnx_ir_version(g)));
        for (int d = 0; d < AAS_PRINT_N_DOMAINS; d++) {
            int64_t v = aas_onnx_opset(g, aas_print_onnx_domains[d]);
            if (v) json_object_set_new(opsets, aas_print_onnx_domains[d], json_integer(v));
        }
        json_object_set_new(o, "opsets", opsets);
        json_object_set_new(o, "producer", json_string(aas_onnx_producer(g)));
        json_object_set_new(o, "nodes", json_integer((json_int_t)aas_onnx_n_nodes(g)));
        aas_onnx_io_t io;
        for (size_t i = 0; i < aas_onnx_n_inputs(g); i++) {
            aas_onnx_input(g, i, &io);
            json_array_append_new(ins, aas_print_io_json(&io));
        }
        for (size_t i = 0; i < aas_onnx_n_outputs(g); i++) {
            aas_onnx_output(g, i, &io);
            json_array_append_new(outs, aas_print_io_json(&io));
        }
        json_object_set_new(o, "inputs", ins);
        json_object_set_new(o, "outputs", outs);
    }
    json_t *sv = json_object();
    if (m) {
        json_object_set_new(sv, "input_dim", json_integer(aas_model_input_dim(m)));
        json_object_set_new(sv, "output_dim", json_integer(aas_model_output_dim(m)));
        json_object_set_new(sv, "classifier", json_boolean(aas_model_is_classifier(m)));
        json_object_set_new(sv, "labels", json_integer(aas_print_n_labels(m)));
        json_object_set_new(sv, "takes_text", json_boolean(aas_model_takes_text(m)));
    } else {
        json_object_set_new(sv, "error", json_string(serving_error ? serving_error : ""));
    }
    json_object_set_new(o, "serving", sv);
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) fprintf(fp, "%s\n", s);
    free(s);
    json_decref(o);
}

void aas_print_model_describe(FILE *fp, const char *name, int64_t version,
                              const char *kind, const aas_onnx_t *g,
                              const aas_model_t *m, const char *serving_error,
                              int json) {
    if (json) {
        aas_print_describe_json(fp, name, version, kind, g, m, serving_error);
        return;
    }
    fprintf(fp, "%s", name);
    if (version > 0) fprintf(fp, "@%lld", (long long)version);
    fprintf(fp, " kind=%s", kind);
    if (g) {
        fprintf(fp, " ir_version=%lld opsets=", (long long)aas_onnx_ir_version(g));
        const char *sep = "";
        for (int d = 0; d < AAS_PRINT_N_DOMAINS; d++) {
            int64_t v = aas_onnx_opset(g, aas_print_onnx_domains[d]);
            if (!v) continue;
            fprintf(fp, "%s%s:%lld", sep, aas_print_onnx_domains[d], (long long)v);
            sep = ",";
        }
        fprintf(fp, " producer=\"%s\" nodes=%zu\n", aas_onnx_producer(g),
                aas_onnx_n_nodes(g));
        aas_onnx_io_t io;
        for (size_t i = 0; i < aas_onnx_n_inputs(g); i++) {
            aas_onnx_input(g, i, &io);
            aas_print_io_text(fp, "input", &io);
        }
        for (size_t i = 0; i < aas_onnx_n_outputs(g); i++) {
            aas_onnx_output(g, i, &io);
            aas_print_io_text(fp, "output", &io);
        }
        fputs("serving", fp);
    }
    if (m)
        fprintf(fp, " input_dim=%lld output_dim=%lld classifier=%s labels=%lld%s\n",
                (long long)aas_model_input_dim(m), (long long)aas_model_output_dim(m),
                aas_model_is_classifier(m) ? "yes" : "no",
                (long long)aas_print_n_labels(m), aas_model_takes_text(m) ? " text=yes" : "");
    else
        fprintf(fp, " refused: %s\n", serving_error ? serving_error : "");
}
