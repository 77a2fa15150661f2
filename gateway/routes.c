/*
 * routes.c - the gateway's endpoints (docs/http.md): path matching, one
 * aas job per inference request, or its rows in one shared with concurrent
 * requests (submit, confirm publication, wait), and the status codes.
 * JSON shapes are oip.c's; HTTP is http.c's.
 */
#include "routes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "jobs.h"
#include "merge.h"
#include "oip.h"

/* Elements of one FP32 request; the body limit binds first in practice. */
#define AAS_GW_MAX_ELEMS ((uint64_t)1 << 24)
#define AAS_GW_MAX_SEGS 8
#define AAS_GW_PATH_MAX 1024
/* How long readiness waits for Kafka's metadata. */
#define AAS_GW_READY_TIMEOUT_MS 2000
/* Beyond gateway.timeout.ms, how long a publication may take to be
 * reported (librdkafka scans for timed-out messages once a second). */
#define AAS_GW_SETTLE_SLACK_MS 3000

static void set_json(aas_gw_resp_t *resp, unsigned status, json_t *obj) {
    resp->status = status;
    resp->body = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    if (!resp->body) resp->status = 500;
    json_decref(obj);
}

/* {"error": msg} (and "id" when a job exists). */
static void set_error(aas_gw_resp_t *resp, unsigned status, const char *job_id,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_error(aas_gw_resp_t *resp, unsigned status, const char *job_id,
                      const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A reason may end inside a UTF-8 sequence after truncation: jansson
     * refuses that, so fall back to a fixed text. */
    json_t *o = json_object();
    json_t *m = json_string(msg);
    if (!m) m = json_string("error (reason not printable)");
    if (!o) json_decref(m);
    else if (json_object_set_new(o, "error", m) == 0 && job_id)
        json_object_set_new(o, "id", json_string(job_id));
    set_json(resp, status, o);
}

/* The HTTP status of an error from the client, the store or the parsers. */
static unsigned http_status_of(aas_err_t err) {
    switch (err) {
    case AAS_ERR_INVAL:
    case AAS_ERR_SHAPE:
    case AAS_ERR_NONFINITE:
    case AAS_ERR_DECODE: return 400;
    case AAS_ERR_TOO_LARGE: return 413;
    case AAS_ERR_UNKNOWN_MODEL:
    case AAS_ERR_NOT_FOUND: return 404;
    case AAS_ERR_CONFLICT: return 409;
    case AAS_ERR_QUOTA: return 429;
    case AAS_ERR_REDIS:
    case AAS_ERR_KAFKA:
    case AAS_ERR_AUTH: /* the gateway's own credentials to Kafka: not the caller's fault */
    case AAS_ERR_IO: return 503;
    case AAS_ERR_TIMEOUT: return 504;
    default: return 500;
    }
}

static int parse_version(const char *s, int64_t *out) {
    if (!s[0] || s[0] < '1' || s[0] > '9' || strlen(s) > 15) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 1) return -1;
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- jobs */

/* A job's end as an answer, for a job that is terminal (not SUCCEEDED). */
static void set_job_failure(aas_gw_resp_t *resp, const char *id, aas_status_t st,
                            const char *why) {
    why = why ? why : "";
    switch (st) {
    case AAS_STATUS_FAILED: set_error(resp, 400, id, "job failed: %s", why); break;
    case AAS_STATUS_CANCELLED: set_error(resp, 409, id, "job cancelled: %s", why); break;
    case AAS_STATUS_EXPIRED: set_error(resp, 504, id, "job expired: %s", why); break;
    default: set_error(resp, 500, id, "job ended %s", aas_status_name(st)); break;
    }
}

/* The model described, as an answer on failure (returns -1). */
static int describe(aas_gw_t *gw, aas_client_t *c, const char *name, int64_t version,
                    const aas_gw_model_t **md, aas_gw_resp_t *resp) {
    char why[512];
    aas_err_t err =
        aas_gw_models_get(gw->models, aas_client_store(c), name, version, md, why, sizeof(why));
    if (!err) return 0;
    if (err == AAS_ERR_UNKNOWN_MODEL)
        set_error(resp, 404, NULL, "unknown model %.200s%s", name,
                  version ? " or version" : "");
    else
        set_error(resp, err == AAS_ERR_MODEL_FORMAT ? 500 : http_status_of(err), NULL,
                  "model %.200s: %s", name, why);
    return -1;
}

/* Does the request fit the model's input? (answers on mismatch, -1) */
static int check_input(const aas_gw_model_t *md, const aas_gw_request_t *in,
                       aas_gw_resp_t *resp) {
    if (md->text != !!in->text) {
        set_error(resp, 400, NULL, "model %.200s takes %s", md->name,
                  md->text ? "a text (BYTES input / \"text\")" : "FP32 rows, not text");
        return -1;
    }
    if (md->text || md->in_dim <= 0) return 0;
    const aas_tensor_t *t = &in->tensor;
    int64_t per_row = 1;
    for (int i = 1; i < t->rank; i++) per_row *= t->shape[i];
    if (t->rank == 1 ? t->shape[0] == md->in_dim : per_row == md->in_dim) return 0;
    set_error(resp, 400, NULL,
              "model %.200s wants rows of %" PRId64 " values (shape [rows, %" PRId64 "])",
              md->name, md->in_dim, md->in_dim);
    return -1;
}

/* Which kind of answer a finished job gets. */
typedef enum { AAS_GW_OIP, AAS_GW_PREDICT } aas_gw_style_t;

/* Render a SUCCEEDED result. */
static void set_result(aas_gw_resp_t *resp, aas_gw_style_t style, const aas_result_t *res,
                       const char *name, const aas_gw_model_t *md, const char *req_id) {
    char why[256];
    if (style == AAS_GW_OIP) {
        json_t *o = aas_gw_oip_response(res, name, md, req_id, why, sizeof(why));
        if (!o) set_error(resp, 500, res->job_id, "%s", why);
        else set_json(resp, 200, o);
        return;
    }
    json_t *o = json_pack("{s:s, s:I, s:s}", "model", name, "version",
                          (json_int_t)(md ? md->version : 0), "id", res->job_id);
    if (!o || aas_gw_predict_fill(o, res, md, why, sizeof(why))) {
        json_decref(o);
        set_error(resp, 500, res->job_id, "%s", o ? why : "out of memory");
        return;
    }
    set_json(resp, 200, o);
}

/* Publish job (its id is set) and wait for the broker's acknowledgement:
 * a 202 then means the job is on the topic, and a broker away is a 503
 * now, not a 504 later.  sync: the caller waits for the result (o->batch
 * on success).  Answers on failure (-1). */
static int publish(aas_gw_t *gw, const aas_job_t *job, const aas_jobsig_key_t *key, int sync,
                   aas_gw_pub_outcome_t *o, aas_gw_resp_t *resp) {
    /* The producer times the message out within gateway.timeout.ms
     * (main.c keeps client.timeout.ms within it) and reports it failed: the
     * margin covers its once-a-second timeout scan. */
    aas_err_t err = aas_gw_pool_publish(gw->pool, job, key, sync,
                                        (int)gw->c.timeout_ms + AAS_GW_SETTLE_SLACK_MS, o);
    if (!err) return 0;
    if (o->stage == AAS_GW_PUB_UNSETTLED) {
        set_error(resp, 503, job->id,
                  "Kafka did not acknowledge the job within %" PRId64 " ms, and its "
                  "publication is still unsettled: it may run (GET /v1/jobs/%s)",
                  gw->c.timeout_ms, job->id);
    } else if (o->stage == AAS_GW_PUB_FAILED) {
        /* Timed out or refused: the job was withdrawn, so a retrying
         * caller runs it once (had the broker received it already, it
         * runs: the answer names it). */
        set_error(resp, 503, job->id,
                  "job not published: Kafka did not acknowledge it within %" PRId64
                  " ms or refused it; it was withdrawn (had the broker received it already, "
                  "it runs: GET /v1/jobs/%s)",
                  gw->c.timeout_ms, job->id);
    } else {
        set_error(resp, http_status_of(err), NULL, "%s", o->why);
        if (err == AAS_ERR_QUOTA) /* whole seconds, rounded up, at least 1 */
            resp->retry_after_s = o->retry_ms > 1000 ? (int)((o->retry_ms + 999) / 1000) : 1;
    }
    return -1;
}

/* Read a job's result by deadline_us (aas_gw_batch_read_fn): on the
 * waiter's ticket while it is live (one thread hears every finished job,
 * waiter.h), else, and for the time left, on the job's own done token. */
static aas_err_t read_result(void *ctx, const char *id, aas_gw_ticket_t *tk,
                             int64_t deadline_us, aas_result_t *res, char *why,
                             size_t why_size) {
    aas_gw_t *gw = ((void **)ctx)[0];
    aas_client_t *c = ((void **)ctx)[1];
    for (;;) {
        int64_t left = (deadline_us - aas_mono_us()) / 1000;
        if (!tk || left <= 0 || !aas_gw_waiter_sleep(gw->waiter, tk, (int)left))
            return aas_client_wait_fresh(c, id, left > 0 ? (int)left : 0, res, why, why_size);
        /* One look: a fresh wait of 0 ms skips the plain wait's first
         * read (one round trip when the job is done, two when not). */
        aas_err_t err = aas_client_wait_fresh(c, id, 0, res, why, why_size);
        if (err != AAS_ERR_TIMEOUT) return err;
    }
}

/* One inference request as one job, or as rows of one shared with
 * concurrent requests (merge.h): submit, confirm, wait, answer. */
static void run_job(aas_gw_t *gw, const aas_gw_req_t *req, aas_gw_style_t style,
                    const char *name, int64_t version, aas_gw_request_t *in,
                    const char *tenant, const aas_jobsig_key_t *key, aas_gw_resp_t *resp) {
    char why[1024], id[64], vbuf[24], rows_note[96] = "";
    aas_client_t *c = NULL;
    const aas_gw_model_t *md = NULL;
    aas_gw_pub_outcome_t o = {0};
    aas_result_t res = {0};
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) {
        set_error(resp, 503, NULL, "not connected: %s", why);
        return;
    }
    if (describe(gw, c, name, version, &md, resp) || check_input(md, in, resp)) goto out;
    if (aas_client_job_id(id, sizeof(id))) {
        set_error(resp, 500, NULL, "no job id");
        goto out;
    }
    snprintf(vbuf, sizeof(vbuf), "%" PRId64, md->version);
    /* The job runs the version described, so labels match the outputs. */
    aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = md->name,
                     .model_version = vbuf, .text = in->text,
                     .inputs = in->text ? NULL : &in->tensor, .n_inputs = in->text ? 0 : 1,
                     .tenant = tenant[0] ? (char *)tenant : NULL};
    if (publish(gw, &job, key, !req->prefer_async, &o, resp)) goto out;
    if (req->prefer_async) {
        snprintf(resp->location, sizeof(resp->location), "/v1/jobs/%s", id);
        set_json(resp, 202, json_pack("{s:s, s:s}", "id", id, "status", "QUEUED"));
        goto out;
    }
    if (!o.batch) { /* every synchronous publication gets one: never here */
        set_error(resp, 500, id, "published without a result handle");
        goto out;
    }
    int64_t deadline_us = aas_mono_us() + gw->c.timeout_ms * 1000;
    /* From here the job may be another request's, with this one's rows in it. */
    const char *jid = aas_gw_batch_id(o.batch);
    if (strcmp(jid, id))
        snprintf(rows_note, sizeof(rows_note), " (rows %" PRId64 "-%" PRId64 " of it are this "
                 "request's)", o.row_off, o.row_off + o.rows - 1);
    void *ctx[2] = {gw, c};
    err = aas_gw_batch_result(o.batch, read_result, ctx, deadline_us, o.row_off, o.rows, &res,
                              why, sizeof(why));
    if (err == AAS_ERR_TIMEOUT) {
        set_error(resp, 504, jid, "no result within %" PRId64 " ms; the job goes on: GET "
                  "/v1/jobs/%s%s", gw->c.timeout_ms, jid, rows_note);
    } else if (err == AAS_ERR_NOT_FOUND) {
        /* Terminal without a result record: the reason is in the hash. */
        aas_job_info_t info = {0};
        if (aas_client_status(c, jid, &info, why, sizeof(why)))
            set_error(resp, 503, jid, "job finished, its status unreadable: %s", why);
        else set_job_failure(resp, jid, info.status, info.error);
        aas_job_info_clear(&info);
    } else if (err) {
        set_error(resp, http_status_of(err) == 400 ? 500 : http_status_of(err), jid, "%s", why);
    } else if (res.status != AAS_STATUS_SUCCEEDED) {
        set_job_failure(resp, jid, res.status, res.error);
    } else {
        set_result(resp, style, &res, md->name, md, in->req_id);
    }
out:
    aas_gw_merge_view_clear(&res); /* before the handle that owns its data */
    aas_gw_batch_release(o.batch);
    aas_gw_model_release(gw->models, md);
    aas_gw_pool_put(gw->pool, c);
}

/* A training job's result (worker/trainer.c: three curves and a metrics
 * vector) as {"train_loss_curve": [..], ..., "metrics": {..}}; NULL when
 * res is not one (an inference result). */
static json_t *training_result(const aas_result_t *res) {
    static const char *const metric_names[] = {"train_loss", "val_loss", "val_accuracy",
                                               "samples_per_s", "epochs", "elapsed_ms"};
    const aas_tensor_t *metrics = NULL;
    for (size_t i = 0; i < res->n_outputs; i++)
        if (res->outputs[i].name && !strcmp(res->outputs[i].name, "metrics"))
            metrics = &res->outputs[i];
    if (!metrics || metrics->dtype != AAS_DTYPE_F32 || metrics->nbytes != 6 * sizeof(float)) return NULL;
    json_t *o = json_object(), *m = json_object();
    if (!o || !m) {
        json_decref(o);
        json_decref(m);
        return NULL;
    }
    const float *mv = (const float *)metrics->data;
    for (int k = 0; k < 6; k++) json_object_set_new(m, metric_names[k], json_real(mv[k]));
    json_object_set_new(o, "metrics", m);
    for (size_t i = 0; i < res->n_outputs; i++) {
        const aas_tensor_t *t = &res->outputs[i];
        if (t == metrics || !t->name || t->dtype != AAS_DTYPE_F32) continue;
        json_t *a = json_array();
        const float *v = (const float *)t->data;
        for (int64_t k = 0; a && (size_t)k < t->nbytes / sizeof(float); k++)
            json_array_append_new(a, json_real(v[k]));
        json_object_set_new(o, t->name, a);
    }
    return o;
}

/* With API keys, a tenant sees only its own jobs: another's is "unknown"
 * (not 403: that would tell the id exists). */
static int job_hidden(aas_gw_t *gw, const aas_job_info_t *info, const char *tenant) {
    return aas_gw_auth_enabled(gw->auth) && (!info->tenant || strcmp(info->tenant, tenant));
}

/* GET /v1/jobs/{id}: the status, and the result or error once done. */
static void job_get(aas_gw_t *gw, const char *id, const char *tenant, aas_gw_resp_t *resp) {
    char why[1024];
    aas_client_t *c = NULL;
    aas_job_info_t info = {0};
    aas_result_t res = {0};
    const aas_gw_model_t *md = NULL;
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) {
        set_error(resp, 503, NULL, "not connected: %s", why);
        return;
    }
    if ((err = aas_client_status(c, id, &info, why, sizeof(why))) ||
        job_hidden(gw, &info, tenant)) {
        if (!err || err == AAS_ERR_NOT_FOUND) set_error(resp, 404, id, "unknown job");
        else set_error(resp, http_status_of(err), id, "%s", why);
        goto out;
    }
    json_t *o = json_pack("{s:s, s:s}", "id", id, "status", aas_status_name(info.status));
    if (o && info.model) json_object_set_new(o, "model", json_string(info.model));
    if (o && info.tenant) json_object_set_new(o, "tenant", json_string(info.tenant));
    if (o && info.progress) {
        json_t *p = json_loads(info.progress, 0, NULL);
        if (p) json_object_set_new(o, "progress", p);
    }
    int terminal = info.status >= AAS_STATUS_SUCCEEDED;
    if (o && terminal && info.error) json_object_set_new(o, "error", json_string(info.error));
    if (o && info.status == AAS_STATUS_SUCCEEDED &&
        !(err = aas_client_wait(c, id, 0, &res, why, sizeof(why)))) {
        int64_t v = 0;
        if (info.model && info.version && !parse_version(info.version, &v) &&
            aas_gw_models_get(gw->models, aas_client_store(c), info.model, v, &md, why,
                              sizeof(why)))
            md = NULL; /* labels fall back to the result's or the index */
        json_object_set_new(o, "version", json_integer(v));
        json_t *tr = training_result(&res);
        if (tr) json_object_set_new(o, "training", tr);
        else if (res.n_outputs > 0 && aas_gw_predict_fill(o, &res, md, why, sizeof(why)))
            json_object_set_new(o, "error", json_string(why));
    } else if (o && info.status == AAS_STATUS_SUCCEEDED) {
        json_object_set_new(o, "error", json_string(why));
    }
    set_json(resp, 200, o);
out:
    aas_gw_model_release(gw->models, md);
    aas_result_clear(&res);
    aas_job_info_clear(&info);
    aas_gw_pool_put(gw->pool, c);
}

/* DELETE /v1/jobs/{id} */
static void job_cancel(aas_gw_t *gw, const char *id, const char *tenant, aas_gw_resp_t *resp) {
    char why[1024];
    aas_client_t *c = NULL;
    aas_status_t st;
    aas_job_info_t info = {0};
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) {
        set_error(resp, 503, NULL, "not connected: %s", why);
        return;
    }
    if (aas_gw_auth_enabled(gw->auth) &&
        ((err = aas_client_status(c, id, &info, why, sizeof(why))) ||
         job_hidden(gw, &info, tenant))) {
        if (!err || err == AAS_ERR_NOT_FOUND) set_error(resp, 404, id, "unknown job");
        else set_error(resp, http_status_of(err), id, "%s", why);
    } else if ((err = aas_client_cancel(c, id, &st, why, sizeof(why)))) {
        if (err == AAS_ERR_NOT_FOUND) set_error(resp, 404, id, "unknown job");
        else set_error(resp, http_status_of(err), id, "%s", why);
    } else {
        set_json(resp, 200, json_pack("{s:s, s:s}", "id", id, "status", aas_status_name(st)));
    }
    aas_job_info_clear(&info);
    aas_gw_pool_put(gw->pool, c);
}

/* ------------------------------------------------------------- models */

static void model_meta(aas_gw_t *gw, const char *name, int64_t version, int ready_only,
                       aas_gw_resp_t *resp) {
    char why[512];
    aas_client_t *c = NULL;
    const aas_gw_model_t *md = NULL;
    int64_t *versions = NULL;
    size_t nv = 0;
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) {
        set_error(resp, 503, NULL, "not connected: %s", why);
        return;
    }
    if (describe(gw, c, name, version, &md, resp)) goto out;
    if (ready_only) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRId64, md->version);
        set_json(resp, 200, json_pack("{s:s, s:s, s:b}", "name", md->name, "version", v,
                                      "ready", 1));
        goto out;
    }
    if ((err = aas_store_model_versions(aas_client_store(c), name, &versions, &nv, why,
                                        sizeof(why)))) {
        set_error(resp, http_status_of(err), NULL, "%s", why);
        goto out;
    }
    json_t *vs = json_array();
    for (size_t i = 0; vs && i < nv; i++) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRId64, versions[i]);
        json_array_append_new(vs, json_string(v));
    }
    char v[24];
    snprintf(v, sizeof(v), "%" PRId64, md->version);
    json_t *in;
    if (md->text) {
        in = json_pack("[{s:s, s:s, s:[i]}]", "name", "text", "datatype", "BYTES", "shape", -1);
    } else {
        /* [-1, row dims...]: [-1, 64] for an MLP, [-1, 1, 8, 8] for a CNN. */
        json_t *shape = json_pack("[i]", -1);
        if (md->row_rank > 0 && md->row_rank <= 7)
            for (int i = 0; shape && i < md->row_rank; i++)
                json_array_append_new(shape, json_integer(md->row_dims[i]));
        else if (shape)
            json_array_append_new(shape, json_integer(md->in_dim));
        in = json_pack("[{s:s, s:s, s:o}]", "name", md->input_name ? md->input_name : "input",
                       "datatype", "FP32", "shape", shape);
    }
    json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:[{s:s, s:s, s:[i, I]}]}",
                          "name", md->name, "versions", vs, "version", v, "platform", "aas",
                          "kind", md->kind, "inputs", in, "outputs", "name",
                          md->classifier ? "probabilities" : "output", "datatype", "FP32",
                          "shape", -1, (json_int_t)md->out_dim);
    if (o && md->labels) {
        json_t *ls = json_array();
        for (int64_t i = 0; ls && i < md->out_dim; i++)
            json_array_append_new(ls, json_string(md->labels[i]));
        json_object_set_new(o, "labels", ls);
    }
    set_json(resp, 200, o);
out:
    free(versions);
    aas_gw_model_release(gw->models, md);
    aas_gw_pool_put(gw->pool, c);
}

static void health_ready(aas_gw_t *gw, aas_gw_resp_t *resp) {
    char why[512];
    aas_client_t *c = NULL;
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) {
        set_error(resp, 503, NULL, "not ready: %s", why);
        return;
    }
    if (aas_client_ping(c, AAS_GW_READY_TIMEOUT_MS, why, sizeof(why)))
        set_error(resp, 503, NULL, "not ready: %s", why);
    else set_json(resp, 200, json_pack("{s:b}", "ready", 1));
    aas_gw_pool_put(gw->pool, c);
}

/* ------------------------------------------------------------ routing */

static void infer(aas_gw_t *gw, const aas_gw_req_t *req, const char *name, int64_t version,
                  aas_gw_style_t style, const char *tenant, const aas_jobsig_key_t *key,
                  aas_gw_resp_t *resp) {
    char why[512];
    aas_gw_request_t in = {0};
    aas_err_t err =
        style == AAS_GW_OIP
            ? aas_gw_oip_parse_binary(req->body ? req->body : "", req->body_len,
                                      req->json_len < 0 ? req->body_len : (size_t)req->json_len,
                                      AAS_GW_MAX_ELEMS, &in, why, sizeof(why))
            : aas_gw_predict_parse(req->body ? req->body : "", req->body_len,
                                   AAS_GW_MAX_ELEMS, &in, why, sizeof(why));
    if (err) {
        set_error(resp, err == AAS_ERR_NOMEM ? 500 : 400, NULL, "%s", why);
        return;
    }
    if (!name) name = in.model ? in.model : gw->c.default_model;
    if (!version) version = in.version;
    if (!name || !name[0]) set_error(resp, 400, NULL, "no model: name one with \"model\"");
    else if (!aas_id_valid(name)) set_error(resp, 404, NULL, "unknown model (invalid name)");
    else run_job(gw, req, style, name, version, &in, tenant, key, resp);
    aas_gw_request_clear(&in);
}

/* ------------------------------------------------- jobs and datasets */

/* POST /v1/jobs {"kind":"train",...}: publish a training job, 202. */
static void train_submit(aas_gw_t *gw, const aas_gw_req_t *req, const char *tenant,
                         const aas_jobsig_key_t *key, aas_gw_resp_t *resp) {
    char why[1024], id[64];
    aas_gw_train_t t = {0};
    aas_client_t *c = NULL;
    aas_err_t err = aas_gw_train_parse(req->body ? req->body : "", req->body_len, &t, why,
                                       sizeof(why));
    if (err) {
        set_error(resp, err == AAS_ERR_NOMEM ? 500 : 400, NULL, "%s", why);
        return;
    }
    if ((err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why)))) {
        set_error(resp, 503, NULL, "not connected: %s", why);
        goto out;
    }
    if (aas_client_job_id(id, sizeof(id))) {
        set_error(resp, 500, NULL, "no job id");
        goto out;
    }
    aas_job_t job = {.id = id, .kind = AAS_JOB_TRAIN, .model = t.model, .params = t.params,
                     .n_params = t.n_params, .priority = t.priority,
                     .tenant = tenant[0] ? (char *)tenant : NULL};
    aas_gw_pub_outcome_t o;
    if (publish(gw, &job, key, 0, &o, resp)) goto out;
    snprintf(resp->location, sizeof(resp->location), "/v1/jobs/%s", id);
    set_json(resp, 202, json_pack("{s:s, s:s, s:s}", "id", id, "status", "QUEUED", "model",
                                  t.model));
out:
    aas_gw_pool_put(gw->pool, c);
    aas_gw_train_clear(&t);
}

/* "kind" of a /v1/jobs body: "infer" (default), "train", or NULL (400 set). */
static const char *job_kind(const aas_gw_req_t *req, aas_gw_resp_t *resp) {
    json_error_t je;
    json_t *root = json_loadb(req->body ? req->body : "", req->body_len, 0, &je);
    const char *kind = NULL;
    if (!root) {
        set_error(resp, 400, NULL, "malformed JSON: %.200s", je.text);
        return NULL;
    }
    const json_t *k = json_object_get(root, "kind");
    if (!k || (json_is_string(k) && !strcmp(json_string_value(k), "infer"))) kind = "infer";
    else if (json_is_string(k) && !strcmp(json_string_value(k), "train")) kind = "train";
    else set_error(resp, 400, NULL, "\"kind\" must be \"infer\" or \"train\"");
    json_decref(root);
    return kind;
}

/* PUT /v1/datasets/{name}: the body (TSV, or CSV with header=present or
 * absent in its Content-Type) becomes a data set, as `dataset put`. */
static void dataset_put(aas_gw_t *gw, const aas_gw_req_t *req, const char *name,
                        aas_gw_resp_t *resp) {
    char why[1024];
    const char *ct = req->content_type ? req->content_type : "";
    aas_client_dataset_opts_t o = {.header = 0, .total_bytes = req->body_len};
    size_t base = strcspn(ct, ";");
    if (base == 25 && !strncasecmp(ct, "text/tab-separated-values", base)) {
        o.type = AAS_CLIENT_DATASET_TSV;
    } else if (base == 8 && !strncasecmp(ct, "text/csv", base)) {
        /* RFC 4180's parameter; a header is never guessed. */
        o.type = AAS_CLIENT_DATASET_CSV;
        if (strstr(ct, "header=present")) o.header = 1;
        else if (!strstr(ct, "header=absent")) {
            set_error(resp, 400, NULL, "CSV: say whether the first line is a header: "
                                       "Content-Type: text/csv; header=present (or absent)");
            return;
        }
    } else {
        set_error(resp, 415, NULL, "Content-Type must be text/tab-separated-values or "
                                   "text/csv; header=present|absent");
        return;
    }
    if (!req->body_len) {
        set_error(resp, 400, NULL, "empty data set");
        return;
    }
    FILE *fp = fmemopen((void *)req->body, req->body_len, "r");
    if (!fp) {
        set_error(resp, 500, NULL, "out of memory");
        return;
    }
    aas_client_t *c = NULL;
    aas_client_dataset_stats_t st = {0};
    aas_err_t err = aas_gw_pool_get(gw->pool, &c, why, sizeof(why));
    if (err) set_error(resp, 503, NULL, "not connected: %s", why);
    else if ((err = aas_client_dataset_put_stream(aas_client_store(c), name, fp, &o, &st, why,
                                                  sizeof(why))))
        set_error(resp, http_status_of(err), NULL, "%s", why);
    else
        set_json(resp, 201, json_pack("{s:s, s:s, s:I, s:I, s:I}", "name", name, "type",
                                      o.type == AAS_CLIENT_DATASET_TSV ? "tsv" : "csv", "rows",
                                      (json_int_t)st.rows, "bytes", (json_int_t)st.bytes,
                                      "classes", (json_int_t)st.classes));
    fclose(fp);
    aas_gw_pool_put(gw->pool, c);
}

/* ------------------------------------------------------------- access */

/* Is the caller allowed `scope`? Sets tenant and, with API keys, *key (the
 * caller's, which signs its jobs: jobsig.h); answers 401/403/503 (-1). */
static int authorize(aas_gw_t *gw, const aas_gw_req_t *req, unsigned scope,
                     char tenant[AAS_ID_MAX + 1], aas_jobsig_key_t *key, int *has_key,
                     aas_gw_resp_t *resp) {
    unsigned have = 0;
    switch (aas_gw_auth_check(gw->auth, req->authorization, tenant, &have, key, has_key)) {
    case AAS_GW_AUTH_OK: break;
    case AAS_GW_AUTH_MISSING:
        resp->auth_challenge = 1;
        set_error(resp, 401, NULL, "an API key is required: Authorization: Bearer <key>");
        return -1;
    case AAS_GW_AUTH_MALFORMED:
        resp->auth_challenge = 1;
        set_error(resp, 401, NULL, "Authorization must be: Bearer <key>");
        return -1;
    case AAS_GW_AUTH_UNKNOWN:
        resp->auth_challenge = 1;
        set_error(resp, 401, NULL, "unknown or revoked API key");
        return -1;
    default:
        set_error(resp, 503, NULL, "API keys not loaded yet (Redis unreachable?)");
        return -1;
    }
    if (have & scope) return 0;
    set_error(resp, 403, NULL, "this key's tenant %s may not %s", tenant,
              scope == AAS_APIKEY_SCOPE_TRAIN ? "train (scope train)" : "infer (scope infer)");
    return -1;
}

static void metrics_text(aas_gw_t *gw, aas_gw_resp_t *resp) {
    char why[256];
    size_t len;
    if (aas_metrics_render(gw->metrics, &resp->body, &len, why, sizeof(why))) {
        set_error(resp, 500, NULL, "%s", why);
        return;
    }
    resp->status = 200;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void aas_gw_route(aas_gw_t *gw, const aas_gw_req_t *req, aas_gw_resp_t *resp) {
    char path[AAS_GW_PATH_MAX], tenant[AAS_ID_MAX + 1];
    aas_jobsig_key_t sigkey;
    int has_key = 0;
    char *seg[AAS_GW_MAX_SEGS];
    int n = 0;
    resp->status = 500;
    resp->body = NULL;
    resp->location[0] = '\0';
    resp->content_type = NULL;
    resp->auth_challenge = 0;
    resp->route = "unknown";
    if (strlen(req->path) >= sizeof(path) || req->path[0] != '/') {
        set_error(resp, 404, NULL, "unknown route");
        return;
    }
    strcpy(path, req->path);
    size_t len = strlen(path);
    if (len > 1 && path[len - 1] == '/') path[len - 1] = '\0';
    for (char *save = NULL, *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (n == AAS_GW_MAX_SEGS) {
            set_error(resp, 404, NULL, "unknown route");
            return;
        }
        seg[n++] = s;
    }
    int get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    int post = !strcmp(req->method, "POST");
    int del = !strcmp(req->method, "DELETE");
    int put = !strcmp(req->method, "PUT");
#define SEG(i, s) (n > (i) && !strcmp(seg[i], (s)))
#define METHOD(ok)                                                                      \
    do {                                                                                \
        if (!(ok)) {                                                                    \
            set_error(resp, 405, NULL, "method %.16s not allowed here", req->method);    \
            return;                                                                     \
        }                                                                               \
    } while (0)
#define KEY (has_key ? &sigkey : NULL)
/* Health and metrics are open (probes and scrapers carry no key). */
#define ALLOW(scope)                                                                    \
    do {                                                                                \
        if (authorize(gw, req, (scope), tenant, &sigkey, &has_key, resp)) return;      \
    } while (0)
    if (n == 1 && SEG(0, "metrics")) {
        resp->route = "metrics";
        METHOD(get);
        metrics_text(gw, resp);
        return;
    }
    if (SEG(0, "v2")) {
        if (n == 3 && SEG(1, "health") && (SEG(2, "live") || SEG(2, "ready"))) {
            resp->route = "health";
            METHOD(get);
            if (SEG(2, "live")) set_json(resp, 200, json_pack("{s:b}", "live", 1));
            else health_ready(gw, resp);
            return;
        }
        if (n == 1) {
            resp->route = "server_metadata";
            METHOD(get);
            ALLOW(AAS_APIKEY_SCOPE_INFER);
            set_json(resp, 200, json_pack("{s:s, s:s, s:[]}", "name", "aas", "version",
                                          AAS_VERSION, "extensions"));
            return;
        }
        if (n >= 3 && SEG(1, "models")) {
            const char *name = seg[2];
            int64_t version = 0;
            int at = 3;
            resp->route = "model";
            if (SEG(3, "versions")) {
                if (n < 5 || parse_version(seg[4], &version)) {
                    set_error(resp, 404, NULL, "unknown model version");
                    return;
                }
                at = 5;
            }
            if (n == at || (n == at + 1 && (SEG(at, "ready") || SEG(at, "infer")))) {
                int inf = n == at + 1 && SEG(at, "infer");
                resp->route = inf ? "infer" : n == at ? "model_metadata" : "model_ready";
                METHOD(inf ? post : get);
                ALLOW(AAS_APIKEY_SCOPE_INFER);
                if (!aas_id_valid(name)) set_error(resp, 404, NULL, "unknown model (invalid name)");
                else if (inf) infer(gw, req, name, version, AAS_GW_OIP, tenant, KEY, resp);
                else model_meta(gw, name, version, n != at, resp);
                return;
            }
        }
    } else if (SEG(0, "v1")) {
        if (n == 4 && SEG(1, "models") && SEG(3, "predict")) {
            resp->route = "predict";
            METHOD(post);
            ALLOW(AAS_APIKEY_SCOPE_INFER);
            if (!aas_id_valid(seg[2])) set_error(resp, 404, NULL, "unknown model (invalid name)");
            else infer(gw, req, seg[2], 0, AAS_GW_PREDICT, tenant, KEY, resp);
            return;
        }
        if (n == 2 && SEG(1, "jobs")) {
            resp->route = "jobs_submit";
            METHOD(post);
            const char *kind = job_kind(req, resp);
            if (!kind) return;
            int train = !strcmp(kind, "train");
            ALLOW(train ? AAS_APIKEY_SCOPE_TRAIN : AAS_APIKEY_SCOPE_INFER);
            if (train) {
                train_submit(gw, req, tenant, KEY, resp);
            } else {
                /* An inference job by /v1/jobs is always asynchronous. */
                aas_gw_req_t async = *req;
                async.prefer_async = 1;
                infer(gw, &async, NULL, 0, AAS_GW_PREDICT, tenant, KEY, resp);
            }
            return;
        }
        if (n == 3 && SEG(1, "jobs")) {
            resp->route = del ? "jobs_cancel" : "jobs_get";
            METHOD(get || del);
            /* With keys, only the job's own tenant sees it (job_hidden). */
            ALLOW(AAS_APIKEY_SCOPE_ALL);
            if (!aas_id_valid(seg[2])) set_error(resp, 400, NULL, "invalid job id");
            else if (del) job_cancel(gw, seg[2], tenant, resp);
            else job_get(gw, seg[2], tenant, resp);
            return;
        }
        if (n == 3 && SEG(1, "datasets")) {
            resp->route = "datasets_put";
            METHOD(put);
            ALLOW(AAS_APIKEY_SCOPE_TRAIN);
            if (!aas_id_valid(seg[2])) set_error(resp, 400, NULL, "invalid data set name");
            else dataset_put(gw, req, seg[2], resp);
            return;
        }
    } else if (n == 1 && SEG(0, "predict")) {
        resp->route = "predict";
        METHOD(post);
        ALLOW(AAS_APIKEY_SCOPE_INFER);
        infer(gw, req, NULL, 0, AAS_GW_PREDICT, tenant, KEY, resp);
        return;
    }
#undef SEG
#undef METHOD
#undef ALLOW
#undef KEY
    set_error(resp, 404, NULL, "unknown route");
}
