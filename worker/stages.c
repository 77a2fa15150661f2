/* stages.c - the loop's time by stage; see stages.h. */
#include "stages.h"

#include <stdio.h>
#include <stdlib.h>

#include "job.h"

static const char *const aas_stage_names[AAS_STAGE_N] = {
    "poll", "collect", "admit", "model", "forward", "result", "record", "settle"};

struct aas_stages_s {
    aas_metric_t *counter[AAS_STAGE_N];
    int64_t us[AAS_STAGE_N];
    int64_t last_us;
};

aas_err_t aas_stages_new(aas_metrics_t *metrics, aas_stages_t **out, char *errstr,
                         size_t errstr_size) {
    aas_stages_t *s = calloc(1, sizeof(*s));
    if (!s) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "stages: out of memory");
    for (int i = 0; i < AAS_STAGE_N; i++) {
        char labels[32];
        snprintf(labels, sizeof(labels), "stage=\"%s\"", aas_stage_names[i]);
        /* NULL (registry full) only loses the figure: inc ignores NULL. */
        s->counter[i] = aas_metrics_counter(
            metrics, "aas_worker_stage_seconds_total",
            "Wall time of the worker loop by stage (docs/performance.md, \"Cost per job\")",
            labels);
    }
    s->last_us = aas_mono_us();
    *out = s;
    return AAS_ERR_OK;
}

void aas_stages_destroy(aas_stages_t *s) { free(s); }

void aas_stages_restart(aas_stages_t *s) {
    if (s) s->last_us = aas_mono_us();
}

void aas_stages_mark(aas_stages_t *s, aas_stage_t stage) {
    if (!s) return;
    int64_t now = aas_mono_us();
    s->us[stage] += now - s->last_us;
    s->last_us = now;
}

void aas_stages_flush(aas_stages_t *s) {
    if (!s) return;
    for (int i = 0; i < AAS_STAGE_N; i++) {
        if (s->us[i] > 0) aas_metric_inc(s->counter[i], (double)s->us[i] / 1e6);
        s->us[i] = 0;
    }
}
