/* cmd_jobs.c - aas-producer's commands on jobs already submitted: status,
 * wait, cancel (cmd.h); and the job-id check the other commands share. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
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

static int cmd_status(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n) {
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

static int cmd_cancel(aas_client_t *c, const aas_cmd_opts_t *o, char **ids, size_t n) {
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
int aas_cmd_id_ok(const char *what, const char *id) {
    if (aas_id_valid(id)) return 1;
    fprintf(stderr, "aas-producer: %s '%.40s%s' is not a valid id ([A-Za-z0-9_.-], 1..%d "
            "characters, not starting with '.' or '-'; this one has %zu)\n", what, id,
            strlen(id) > 40 ? "..." : "", AAS_ID_MAX, strlen(id));
    return 0;
}

static int cmd_ids_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n == 0) {
        fprintf(stderr, "aas-producer: give one or more job ids (see --help)\n");
        return AAS_EXIT_USAGE;
    }
    for (size_t i = 0; i < n; i++)
        if (!aas_cmd_id_ok("job id", args[i])) return AAS_EXIT_USAGE;
    return 0;
}

static const aas_cmd_help_t status_help[] = {
    {"status ID...", "print each job's status"}, {NULL, NULL}};
static const aas_cmd_help_t wait_help[] = {
    {"wait [--timeout S] ID...", "wait for jobs, print results"}, {NULL, NULL}};
static const aas_cmd_help_t cancel_help[] = {
    {"cancel ID...", "cancel queued or running jobs"}, {NULL, NULL}};
const aas_cmd_t aas_cmd_status_def = {"status", cmd_ids_check, cmd_status, status_help};
const aas_cmd_t aas_cmd_wait_def = {"wait", cmd_ids_check, aas_cmd_wait, wait_help};
const aas_cmd_t aas_cmd_cancel_def = {"cancel", cmd_ids_check, cmd_cancel, cancel_help};
