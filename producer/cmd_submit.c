/* cmd_submit.c - aas-producer submit: rows or text in, inference jobs out
 * (cmd.h); --wait prints their results through cmd_jobs.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "input.h"

static void on_delivery(void *opaque, const char *job_id, aas_err_t err,
                        const char *why) {
    if (err) fprintf(stderr, "aas-producer: job %s: %s\n", job_id, why);
}

/* Hand one job to the client; exit code, having said why.  An id in use
 * has an exit code of its own, so a script can tell it from a failure. */
static int publish(aas_client_t *c, const aas_job_t *job) {
    char why[512];
    aas_err_t err = aas_client_submit(c, job, why, sizeof(why));
    if (!err) return 0;
    fprintf(stderr, "aas-producer: %s\n", why);
    return err == AAS_ERR_CONFLICT ? AAS_EXIT_ID_IN_USE : 1;
}

/* Wait until the broker has every job handed over; exit code.  A job the
 * broker refused was reported by on_delivery. */
static int settle(aas_client_t *c) {
    char why[512];
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    if (failed) {
        fprintf(stderr, "aas-producer: %zu job(s) were not published\n", failed);
        return 1;
    }
    return 0;
}

/* Publish one job and wait until the broker has it; print its id, or with
 * --wait its result. */
int aas_cmd_submit_one(aas_client_t *c, const aas_cmd_opts_t *o, const aas_job_t *job) {
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    int rc = publish(c, job);
    if (!rc) rc = settle(c);
    if (rc) return rc;
    if (!o->wait) {
        printf("%s\n", job->id);
        return 0;
    }
    char *ids[1] = {job->id};
    return aas_cmd_wait(c, o, ids, 1);
}

static int cmd_submit(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
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
        return aas_cmd_submit_one(c, o, &job);
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
        rc = publish(c, &job);
        aas_tensor_clear(&t);
        if (rc) break;
        ids[j] = strdup(id);
        if (!ids[j]) rc = 1;
    }
    aas_rows_clear(&rows);
    int settled = settle(c); /* what was handed over, even after a failure */
    if (!rc) rc = settled;
    if (!rc && !o->wait)
        for (size_t j = 0; j < n_jobs; j++) printf("%s\n", ids[j]);
    if (!rc && o->wait) rc = aas_cmd_wait(c, o, ids, n_jobs);
    for (size_t j = 0; ids && j < n_jobs; j++) free(ids[j]);
    free(ids);
    return rc ? rc : (ids ? 0 : 1);
}

static int cmd_submit_check(const aas_cmd_opts_t *o, char **args, size_t n) {
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
    if (o->model_version && !aas_cmd_id_ok("--model-version", o->model_version))
        return AAS_EXIT_USAGE;
    return 0;
}

static const aas_cmd_help_t submit_help[] = {
    {"submit --model NAME [input] [options]", "publish job(s); print their ids"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_submit_def = {"submit", cmd_submit_check, cmd_submit, submit_help};
