/* batch.c - a window of inference messages as batched passes; see batch.h. */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer.h"
#include "log.h"

/* Everything a window needs, sized once for max_slots messages, so that a
 * window allocates nothing but its encoded results. */
struct aas_batch_s {
    aas_batch_conf_t conf;
    aas_outcome_t *outcome;
    aas_model_cache_t *models;
    aas_store_t *store;
    aas_codec_t *codec;
    aas_outcome_item_t *items;      /* one per message */
    int64_t *item_rows;             /* rows of items[i], once checked */
    size_t *order, *gstart, *glen, *pass;
    int *gdone;
    const aas_job_t **jobs;
    int64_t *rows;
    aas_result_t *res;
    aas_infer_batch_t *infer;
    aas_metric_t *m_batch_rows, *m_queue_s, *m_compute_s, *m_inflight, *m_window_jobs;
    aas_stages_t *st; /* the running window's timer (borrowed), or NULL */
    int64_t last_record_us; /* monotonic: the window's start or its last write */
};

aas_err_t aas_batch_new(const aas_batch_conf_t *conf, aas_outcome_t *outcome,
                        aas_model_cache_t *models, aas_store_t *store,
                        aas_codec_t *codec, aas_metrics_t *metrics, aas_batch_t **out,
                        char *errstr, size_t errstr_size) {
    size_t n = conf->max_slots;
    aas_batch_t *b = calloc(1, sizeof(*b));
    if (!b || !(b->items = calloc(n, sizeof(*b->items))) ||
        !(b->item_rows = calloc(n, sizeof(int64_t))) ||
        !(b->order = calloc(n, sizeof(size_t))) || !(b->gstart = calloc(n, sizeof(size_t))) ||
        !(b->glen = calloc(n, sizeof(size_t))) || !(b->pass = calloc(n, sizeof(size_t))) ||
        !(b->gdone = calloc(n, sizeof(int))) || !(b->jobs = calloc(n, sizeof(*b->jobs))) ||
        !(b->rows = calloc(n, sizeof(int64_t))) || !(b->res = calloc(n, sizeof(*b->res)))) {
        aas_batch_destroy(b);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                           "out of memory for a window of %zu messages", n);
    }
    b->conf = *conf;
    b->outcome = outcome;
    b->models = models;
    b->store = store;
    b->codec = codec;
    aas_err_t err = aas_infer_batch_new(&b->infer, errstr, errstr_size);
    if (err) {
        aas_batch_destroy(b);
        return err;
    }
    static const double rows_b[] = AAS_METRICS_ROWS_BOUNDS;
    static const double secs_b[] = AAS_METRICS_SECONDS_BOUNDS;
    /* A forward pass of a small model takes microseconds. */
    static const double comp_b[] = {1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                    2.5e-3, 5e-3, 0.01, 0.025, 0.1, 1, 10};
    b->m_batch_rows = aas_metrics_histogram(metrics, "aas_worker_batch_rows",
                                            "Rows per batched forward pass", NULL, rows_b,
                                            sizeof(rows_b) / sizeof(rows_b[0]));
    b->m_queue_s = aas_metrics_histogram(
        metrics, "aas_worker_queue_seconds",
        "From the job's submission (client clock) until a worker took it", NULL, secs_b,
        sizeof(secs_b) / sizeof(secs_b[0]));
    b->m_compute_s = aas_metrics_histogram(metrics, "aas_worker_compute_seconds",
                                           "Time of one batched forward pass", NULL, comp_b,
                                           sizeof(comp_b) / sizeof(comp_b[0]));
    b->m_inflight = aas_metrics_gauge(metrics, "aas_worker_inflight",
                                      "Jobs taken but not yet finished", NULL);
    b->m_window_jobs = aas_metrics_histogram(
        metrics, "aas_worker_window_jobs",
        "Jobs per window (one admit round trip and one offset store each)", NULL, rows_b,
        sizeof(rows_b) / sizeof(rows_b[0]));
    *out = b;
    return AAS_ERR_OK;
}

void aas_batch_destroy(aas_batch_t *b) {
    if (!b) return;
    free(b->items);
    free(b->item_rows);
    free(b->order);
    free(b->gstart);
    free(b->glen);
    free(b->pass);
    free(b->gdone);
    free(b->jobs);
    free(b->rows);
    free(b->res);
    aas_infer_batch_destroy(b->infer);
    free(b);
}

void aas_batch_limits(const aas_batch_t *b, const rd_kafka_message_t *msg,
                      int64_t *max_rows, int64_t *max_delay_us) {
    char model[AAS_ID_MAX + 1];
    aas_model_serving_t sv;
    *max_rows = b->conf.max_rows;
    *max_delay_us = b->conf.max_delay_us;
    if (aas_codec_job_peek_model(b->codec, msg->payload, msg->len, model) ||
        aas_model_cache_serving_known(b->models, model, &sv))
        return;
    if (sv.batch_max_rows > 0) *max_rows = sv.batch_max_rows;
    if (sv.batch_max_delay_us >= 0) *max_delay_us = sv.batch_max_delay_us;
}

/* Order of the forward-pass candidates: by model and requested version
 * (one group each), then priority (higher first), then arrival. */
static int aas_batch_cmp(const aas_outcome_item_t *items, size_t ia, size_t ib) {
    const aas_job_t *a = &items[ia].job, *b = &items[ib].job;
    int c = strcmp(a->model, b->model);
    if (!c) c = strcmp(a->model_version ? a->model_version : "",
                       b->model_version ? b->model_version : "");
    if (!c) c = (a->priority < b->priority) - (a->priority > b->priority);
    if (!c) c = (ia > ib) - (ia < ib);
    return c;
}

/* Insertion sort: a window is at most a few hundred jobs, mostly in order. */
static void aas_batch_sort(const aas_outcome_item_t *items, size_t *order, size_t m) {
    for (size_t i = 1; i < m; i++) {
        size_t v = order[i], j = i;
        for (; j > 0 && aas_batch_cmp(items, order[j - 1], v) > 0; j--) order[j] = order[j - 1];
        order[j] = v;
    }
}

static int aas_batch_same_group(const aas_job_t *a, const aas_job_t *b) {
    return strcmp(a->model, b->model) == 0 &&
           strcmp(a->model_version ? a->model_version : "",
                  b->model_version ? b->model_version : "") == 0;
}

/* One pass over jobs p[0..np) (rows total): compute, report each outcome. */
static void aas_batch_pass(aas_batch_t *b, aas_model_t *model, int64_t version,
                           const size_t *p, size_t np, int64_t total) {
    char why[512];
    memset(b->res, 0, sizeof(b->res[0]) * np);
    aas_err_t err = aas_infer_batch_run(b->infer, model, b->jobs, b->rows, np, b->res, why,
                                        sizeof(why));
    aas_stages_mark(b->st, AAS_STAGE_FORWARD);
    if (err && np > 1 && !aas_err_is_retriable(err)) {
        /* One job's input can fail a whole pass (a text model refuses a
         * text without letters only when it featurizes it): run each job
         * alone, so only that one fails. */
        for (size_t j = 0; j < np; j++) {
            b->jobs[0] = &b->items[p[j]].job;
            b->rows[0] = b->item_rows[p[j]];
            aas_batch_pass(b, model, version, p + j, 1, b->rows[0]);
        }
        return;
    }
    aas_metric_observe(b->m_batch_rows, (double)total);
    if (!err) aas_metric_observe(b->m_compute_s, (double)b->res[0].timings.compute_us / 1e6);
    int64_t now = aas_now_ms();
    /* Metering: each job's share of the pass's compute by its rows; the
     * last job takes the rounding, so the shares sum to the pass. */
    int64_t pass_us = err ? 0 : b->res[0].timings.compute_us, given = 0, rows_seen = 0;
    for (size_t j = 0; j < np; j++) {
        aas_outcome_item_t *it = &b->items[p[j]];
        int64_t rows = b->item_rows[p[j]];
        rows_seen += rows;
        it->usage.rows = rows;
        it->usage.compute_us = j + 1 == np ? pass_us - given
                                           : total > 0 ? pass_us * rows_seen / (int64_t)total - given
                                                       : 0;
        given += it->usage.compute_us;
    }
    for (size_t j = 0; j < np; j++) {
        aas_outcome_item_t *it = &b->items[p[j]];
        aas_result_t *r = &b->res[j];
        if (err) {
            aas_outcome_fail(it, AAS_STATUS_FAILED, why);
            continue;
        }
        if (aas_infer_result_check(r, why, sizeof(why))) {
            aas_outcome_fail(it, AAS_STATUS_FAILED, why);
            continue;
        }
        r->timings.queue_ms = it->job.submit_ms > 0 ? now - it->job.submit_ms : 0;
        aas_metric_observe(b->m_queue_s, (double)r->timings.queue_ms / 1e3);
        aas_outcome_succeed(b->outcome, it, r, version);
    }
    aas_stages_mark(b->st, AAS_STAGE_RESULT);
}

/* Run passes over the group's jobs g[0..ng) (sorted by priority). */
static void aas_batch_group(aas_batch_t *b, size_t n, const size_t *g, size_t ng) {
    char why[512];
    aas_model_t *model;
    int64_t version;
    aas_model_serving_t sv;
    const aas_job_t *first = &b->items[g[0]].job;
    aas_err_t err = aas_model_cache_get_serving(b->models, b->store, first->model,
                                                first->model_version, &model, &version,
                                                &sv, why, sizeof(why));
    aas_stages_mark(b->st, AAS_STAGE_MODEL);
    if (err) {
        for (size_t i = 0; i < ng; i++) {
            if (aas_err_is_retriable(err)) aas_outcome_retry(&b->items[g[i]]);
            else aas_outcome_fail(&b->items[g[i]], AAS_STATUS_FAILED, why);
        }
        return;
    }
    for (size_t i = 0; i < ng; i++) aas_outcome_resolved(&b->items[g[i]], version);
    int64_t max_rows = sv.batch_max_rows > 0 ? sv.batch_max_rows : b->conf.max_rows;
    /* Inputs first: a job that cannot run fails alone. */
    size_t nv = 0;
    for (size_t i = 0; i < ng; i++) {
        aas_outcome_item_t *it = &b->items[g[i]];
        if (aas_infer_check(model, &it->job, b->conf.job_max_rows, &b->item_rows[g[i]], why,
                            sizeof(why)))
            aas_outcome_fail(it, AAS_STATUS_FAILED, why);
        else
            b->pass[nv++] = g[i];
    }
    for (size_t i = 0; i < nv;) {
        /* A pass holds at most max_rows rows (the model's serving option,
         * else batch.max.rows), except a single job larger than that,
         * which runs alone. */
        size_t np = 0;
        int64_t total = 0;
        const size_t *p = b->pass + i;
        for (; i < nv; i++) {
            int64_t rows = b->item_rows[b->pass[i]];
            if (np > 0 && total + rows > max_rows) break;
            b->jobs[np] = &b->items[b->pass[i]].job;
            b->rows[np++] = rows;
            total += rows;
        }
        aas_batch_pass(b, model, version, p, np, total);
        /* The results so far (failures too) go out after the group's last
         * pass, or once batch.record.us passed since the last write. */
        int64_t now = aas_mono_us();
        if (i == nv || now - b->last_record_us >= b->conf.record_us) {
            aas_outcome_record(b->outcome, b->items, n);
            aas_stages_mark(b->st, AAS_STAGE_RECORD);
            b->last_record_us = aas_mono_us();
        }
    }
}

void aas_batch_run(aas_batch_t *b, rd_kafka_message_t *const *msgs, size_t n,
                   aas_msg_outcome_t *out, int64_t *compute_us, aas_stages_t *st) {
    b->st = st;
    b->last_record_us = aas_mono_us();
    aas_outcome_item_t *items = b->items;
    if (n > b->conf.max_slots) n = b->conf.max_slots; /* a caller bug: the rest retries */
    for (size_t i = 0; i < n; i++) {
        memset(&items[i], 0, sizeof(items[i]));
        items[i].msg = msgs[i];
    }
    aas_metric_set(b->m_inflight, (double)n);
    aas_metric_observe(b->m_window_jobs, (double)n);
    aas_outcome_admit(b->outcome, items, n);
    aas_stages_mark(st, AAS_STAGE_ADMIT);

    size_t *order = b->order, m = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].decoded && !items[i].settled && !items[i].pending) order[m++] = i;
    aas_batch_sort(items, order, m);
    /* Groups with the highest-priority job first: pick the best group
     * still waiting each time (few groups per window). */
    size_t ng = 0;
    for (size_t i = 0; i < m; i++) {
        if (i == 0 || !aas_batch_same_group(&items[order[i - 1]].job, &items[order[i]].job)) {
            b->gstart[ng] = i;
            b->glen[ng] = 0;
            b->gdone[ng++] = 0;
        }
        b->glen[ng - 1]++;
    }
    for (size_t round = 0; round < ng; round++) {
        size_t best = ng;
        for (size_t gi = 0; gi < ng; gi++)
            if (!b->gdone[gi] &&
                (best == ng || items[order[b->gstart[gi]]].job.priority >
                                   items[order[b->gstart[best]]].job.priority))
                best = gi;
        b->gdone[best] = 1;
        aas_batch_group(b, n, order + b->gstart[best], b->glen[best]);
    }
    aas_outcome_record(b->outcome, items, n); /* failures of a window without passes */
    aas_stages_mark(st, AAS_STAGE_RECORD);
    aas_metric_set(b->m_inflight, 0);

    for (size_t i = 0; i < n; i++) {
        /* Every item is settled by now; one left unsettled would be a bug,
         * and retrying is the answer that loses nothing. */
        out[i] = items[i].settled ? items[i].outcome : AAS_MSG_RETRY;
        if (compute_us) compute_us[i] = items[i].usage.compute_us;
        aas_outcome_item_clear(&items[i]);
    }
    b->st = NULL;
}
