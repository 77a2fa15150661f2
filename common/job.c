/* job.c - id rules, status state machine, and destructors; see job.h. */
#include "job.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *aas_status_names[AAS_STATUS__COUNT] = {
    "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"};

/* [A-Za-z0-9_.-]: a table, as every job id, model and tenant is checked
 * several times on the worker's path. */
static const unsigned char aas_id_chars[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1};

int aas_id_valid(const char *s) {
    if (!s || !*s || *s == '.' || *s == '-') return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t n = 0; p[n]; n++)
        if (!aas_id_chars[p[n]] || n >= AAS_ID_MAX) return 0;
    return 1;
}

const char *aas_status_name(aas_status_t s) {
    return (int)s >= 0 && s < AAS_STATUS__COUNT ? aas_status_names[s] : "?";
}

aas_err_t aas_status_parse(const char *s, aas_status_t *out) {
    for (int i = 0; s && i < AAS_STATUS__COUNT; i++)
        if (strcmp(s, aas_status_names[i]) == 0) {
            *out = (aas_status_t)i;
            return AAS_ERR_OK;
        }
    return AAS_ERR_INVAL;
}

int aas_status_is_terminal(aas_status_t s) {
    return s == AAS_STATUS_SUCCEEDED || s == AAS_STATUS_FAILED ||
           s == AAS_STATUS_EXPIRED || s == AAS_STATUS_CANCELLED;
}

int aas_status_transition_ok(aas_status_t from, aas_status_t to) {
    if ((int)from < 0 || from >= AAS_STATUS__COUNT || (int)to < 0 ||
        to >= AAS_STATUS__COUNT)
        return 0;
    if (aas_status_is_terminal(from)) return 0;
    if (from == AAS_STATUS_RUNNING && to == AAS_STATUS_QUEUED) return 0;
    return 1;
}

const char *aas_job_param(const aas_job_t *job, const char *key) {
    for (size_t i = 0; i < job->n_params; i++)
        if (strcmp(job->params[i].key, key) == 0) return job->params[i].value;
    return NULL;
}

void aas_job_clear(aas_job_t *job) {
    if (!job) return;
    free(job->id);
    free(job->model);
    free(job->model_version);
    free(job->tenant);
    for (size_t i = 0; i < job->n_inputs; i++) aas_tensor_clear(&job->inputs[i]);
    free(job->inputs);
    free(job->text);
    for (size_t i = 0; i < job->n_params; i++) {
        free(job->params[i].key);
        free(job->params[i].value);
    }
    free(job->params);
    memset(job, 0, sizeof(*job));
}

void aas_result_clear(aas_result_t *res) {
    if (!res) return;
    free(res->job_id);
    free(res->model);
    free(res->model_version);
    for (size_t i = 0; i < res->n_outputs; i++)
        aas_tensor_clear(&res->outputs[i]);
    free(res->outputs);
    for (size_t i = 0; i < res->n_predictions; i++)
        free(res->predictions[i].name);
    free(res->predictions);
    free(res->error);
    free(res->worker_id);
    memset(res, 0, sizeof(*res));
}

int64_t aas_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t aas_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec aas_mono_deadline(int64_t ms) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}
