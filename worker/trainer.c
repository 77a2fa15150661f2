/* trainer.c - a TRAIN job on its own thread; see trainer.h. */
#include "trainer.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "codec.h"
#include "heartbeat.h"
#include "log.h"
#include "train.h"
#include "model.h"
#include "source.h"
#include "trainer_dp.h"
#include "trainer_text.h"
#include "train_dp.h"

struct aas_trainer_s {
    aas_job_t job;                /* owned */
    aas_train_params_t params;
    float *x;                     /* borrowed from job (aligned copy if needed) */
    float *x_copy;
    int32_t *y;
    int64_t n, dim;
    int32_t n_classes;
    char **names;                 /* n_names class names, owned */
    size_t n_names;
    aas_store_t *store;           /* the thread's own connection */
    pthread_t thread;
    int started;
    atomic_int done, stop;
    aas_train_result_t result;
    aas_err_t err;
    char why[512];
    char reason[600];             /* the FAILED/CANCELLED reason */
    aas_tensor_t *outputs;        /* the SUCCEEDED result's, owned */
    size_t n_outputs;
    int64_t version;              /* registered model version, 0 = not yet */
    aas_tensor_t dataset[2];      /* features, labels from Redis (owned) */
    aas_trainer_text_t *text;     /* a text classifier's job (docs/text.md) */
    int64_t t0_us;
    /* Data-parallel (trainer_dp.h): shards > 1; shard 0 coordinates. */
    const aas_conf_t *conf;
    int shards, shard;
    char dp_job[AAS_ID_MAX + 1];
    int32_t partition;
    int auto_shards;              /* parallelism=auto: shards chosen on the thread */
    char group[AAS_HEARTBEAT_GROUP_MAX], worker_id[AAS_ID_MAX + 1];
    int64_t floor;
    int32_t shard_rounds;         /* a shard task's rounds run */
    int64_t shard_rows;           /* this shard's training rows (the engine's) */
    int shard_cancelled;
};

static const aas_tensor_t *aas_trainer_tensor(const aas_job_t *job,
                                              const char *name, size_t pos) {
    for (size_t i = 0; i < job->n_inputs; i++)
        if (job->inputs[i].name && strcmp(job->inputs[i].name, name) == 0)
            return &job->inputs[i];
    return pos < job->n_inputs ? &job->inputs[pos] : NULL;
}

/* A data set uploaded to Redis (param dataset=<name>): features and labels
 * as aas_client_dataset_put() wrote them, checksum verified. */
static aas_err_t aas_trainer_dataset(aas_trainer_t *t, const char *name,
                                     size_t max_bytes, aas_tensor_t *xf,
                                     aas_tensor_t *yl, char *errstr,
                                     size_t errstr_size) {
    char *meta = NULL;
    void *data = NULL;
    size_t len = 0;
    aas_err_t err = aas_store_dataset_get(t->store, name, max_bytes, &meta, &data, &len,
                                          errstr, errstr_size);
    if (err) return err;
    json_error_t jerr;
    json_t *m = json_loads(meta, 0, &jerr);
    free(meta);
    json_int_t rows = m ? json_integer_value(json_object_get(m, "rows")) : 0;
    json_int_t dim = m ? json_integer_value(json_object_get(m, "dim")) : 0;
    const char *crc = m ? json_string_value(json_object_get(m, "crc64")) : NULL;
    char want[24];
    snprintf(want, sizeof(want), "%016llx",
             (unsigned long long)aas_codec_crc64_avro(data, len));
    if (!m || rows < 1 || dim < 1 || (uint64_t)rows > len / 4 ||
        (size_t)rows * ((size_t)dim + 1) * 4 != len)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                          "data set %s: meta does not match its %zu bytes", name, len);
    else if (!crc || strcmp(crc, want) != 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_DECODE,
                          "data set %s: checksum mismatch (stored %s, computed %s)",
                          name, crc ? crc : "none", want);
    json_decref(m);
    if (err) {
        free(data);
        return err;
    }
    /* Hand the bytes to two tensors the job owns from now on. */
    size_t fbytes = (size_t)rows * (size_t)dim * 4;
    float *labels = malloc((size_t)rows * 4);
    if (!labels) {
        free(data);
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    }
    memcpy(labels, (char *)data + fbytes, (size_t)rows * 4);
    *xf = (aas_tensor_t){.dtype = AAS_DTYPE_F32, .rank = 2, .shape = {rows, dim},
                         .data = data, .nbytes = fbytes};
    *yl = (aas_tensor_t){.dtype = AAS_DTYPE_I32, .rank = 1, .shape = {rows},
                         .data = labels, .nbytes = (size_t)rows * 4};
    return AAS_ERR_OK;
}

/* Whether the job's data streams (trainer_text.c: a v2 data set, text or
 * CSV, or a topic slice) or is in memory (the job's tensors, a v1 data set). */
static aas_err_t aas_trainer_data_kind(aas_trainer_t *t, const char *dataset, int *stream,
                                       char *errstr, size_t errstr_size) {
    *stream = aas_job_param(&t->job, "featurizer") || aas_job_param(&t->job, "data_topic");
    if (*stream || !dataset) return AAS_ERR_OK;
    if (!dataset) return AAS_ERR_OK;
    char *meta = NULL;
    aas_store_dataset_info_t info;
    aas_err_t err = aas_store_dataset_meta(t->store, dataset, &meta, &info, errstr,
                                           errstr_size);
    if (err) return err;
    *stream = info.version == 2;
    free(meta);
    return err;
}

/* Features, labels, class count and names from the job. */
static aas_err_t aas_trainer_data(aas_trainer_t *t, int64_t max_rows, char *errstr,
                                  size_t errstr_size) {
    const aas_tensor_t *xf = aas_trainer_tensor(&t->job, "features", 0);
    const aas_tensor_t *yl = aas_trainer_tensor(&t->job, "labels", 1);
    if (t->dataset[0].data) {
        xf = &t->dataset[0];
        yl = &t->dataset[1];
    }
    if (!xf || !yl || xf == yl)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "a training job needs two tensors: features [n, dim] "
                           "and labels [n]");
    if (xf->dtype != AAS_DTYPE_F32 || xf->rank != 2)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "features must be F32 [n, dim], got %s rank %d",
                           aas_dtype_name(xf->dtype), xf->rank);
    t->n = xf->shape[0];
    t->dim = xf->shape[1];
    if (t->n > max_rows)
        return aas_err_set(errstr, errstr_size, AAS_ERR_TOO_LARGE,
                           "%lld rows, limit is %lld", (long long)t->n,
                           (long long)max_rows);
    if (!(yl->rank == 1 || (yl->rank == 2 && yl->shape[1] == 1)) ||
        yl->shape[0] != t->n)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "labels must be [n] with n = %lld", (long long)t->n);
    aas_err_t err = aas_tensor_check_finite(xf, errstr, errstr_size);
    if (err) return err;
    if ((uintptr_t)xf->data % sizeof(float)) {
        if (!(t->x_copy = malloc(xf->nbytes))) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        memcpy(t->x_copy, xf->data, xf->nbytes);
        t->x = t->x_copy;
    } else {
        t->x = xf->data;
    }
    if (!(t->y = malloc((size_t)t->n * sizeof(int32_t)))) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    int64_t max_label = -1;
    for (int64_t i = 0; i < t->n; i++) {
        double v;
        const char *p = (const char *)yl->data;
        switch (yl->dtype) {
        case AAS_DTYPE_I32: { int32_t u; memcpy(&u, p + i * 4, 4); v = u; break; }
        case AAS_DTYPE_I64: { int64_t u; memcpy(&u, p + i * 8, 8); v = (double)u; break; }
        case AAS_DTYPE_F32: { float u; memcpy(&u, p + i * 4, 4); v = u; break; }
        default:
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "labels must be I32, I64 or F32, got %s",
                               aas_dtype_name(yl->dtype));
        }
        if (!(v >= 0 && v < 65536 && v == floor(v)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "label %lld is %g: labels are class indices "
                               "0..65535", (long long)i, v);
        t->y[i] = (int32_t)v;
        if (t->y[i] > max_label) max_label = t->y[i];
    }
    t->n_classes = (int32_t)(max_label + 1);
    const char *classes = aas_job_param(&t->job, "classes");
    if (classes) {
        char *end;
        long c = strtol(classes, &end, 10);
        if (*end || c < 2 || c > 65536 || c <= max_label)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "classes: '%s' must be 2..65536 and above every "
                               "label (max %lld)", classes, (long long)max_label);
        t->n_classes = (int32_t)c;
    }
    if (t->n_classes < 2)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "labels name only one class; set `classes`");
    const char *names = aas_job_param(&t->job, "class_names");
    if (names) {
        if (!(t->names = calloc((size_t)t->n_classes, sizeof(char *)))) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        char *copy = strdup(names), *save = NULL;
        if (!copy) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            if (t->n_names == (size_t)t->n_classes || !(t->names[t->n_names] = strdup(s))) {
                free(copy);
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                   "class_names: more names than the %d classes",
                                   (int)t->n_classes);
            }
            t->n_names++;
        }
        free(copy);
        if (t->n_names != (size_t)t->n_classes)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "class_names: %zu names for %d classes", t->n_names,
                               (int)t->n_classes);
        t->params.labels = (const char *const *)t->names;
        t->params.n_labels = t->n_names;
    }
    return AAS_ERR_OK;
}

static aas_err_t aas_trainer_params(aas_trainer_t *t, char *errstr,
                                    size_t errstr_size) {
    aas_train_params_default(&t->params);
    for (size_t i = 0; i < t->job.n_params; i++) {
        const char *k = t->job.params[i].key;
        if (!strcmp(k, "classes") || !strcmp(k, "class_names") || !strcmp(k, "dataset") ||
            !strncmp(k, "data_", 5) || !strcmp(k, "parallelism") || !strncmp(k, "dp.", 3))
            continue;
        aas_err_t err = aas_train_params_set(&t->params, k, t->job.params[i].value,
                                             errstr, errstr_size);
        if (err) return err;
    }
    return aas_train_params_check(&t->params, errstr, errstr_size);
}

static int aas_trainer_progress(void *opaque, const aas_train_progress_t *p) {
    aas_trainer_t *t = opaque;
    double total = (double)p->epochs * (double)(p->batches > 0 ? p->batches : 1);
    double done = (double)(p->end_of_epoch ? p->epoch : p->epoch) *
                      (double)(p->batches > 0 ? p->batches : 1) +
                  (p->end_of_epoch ? 0 : (double)p->batch);
    double eta = done > 0 ? p->elapsed_ms / 1000.0 * (total - done) / done : 0;
    char json[512];
    snprintf(json, sizeof(json),
             "{\"epoch\":%d,\"epochs\":%d,\"batch\":%lld,\"batches\":%lld,"
             "\"train_loss\":%.6g,\"val_loss\":%.6g,\"val_accuracy\":%.6g,"
             "\"elapsed_s\":%.3f,\"eta_s\":%.1f}",
             (int)p->epoch, (int)p->epochs, (long long)p->batch,
             (long long)p->batches, p->train_loss,
             isnan(p->val_loss) ? -1.0 : p->val_loss,
             isnan(p->val_accuracy) ? -1.0 : p->val_accuracy, p->elapsed_ms / 1000.0,
             eta);
    int cancel = 0;
    char why[256];
    if (aas_store_job_progress(t->store, t->job.id, json, &cancel, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s progress not recorded: %s",
                t->job.id, why);
    if (p->end_of_epoch)
        AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s epoch=%d/%d train_loss=%.4f "
                "val_accuracy=%.4f", t->job.id, (int)p->epoch, (int)p->epochs,
                p->train_loss, p->val_accuracy);
    return cancel || atomic_load(&t->stop);
}

/* parallelism = N (a coordinator) or dp.job/dp.shard/dp.shards (a shard
 * task of another job): the data-parallel role, checked. */
static aas_err_t aas_trainer_dp_params(aas_trainer_t *t, char *errstr, size_t errstr_size) {
    const char *par = aas_job_param(&t->job, "parallelism");
    const char *dj = aas_job_param(&t->job, "dp.job");
    const char *ds = aas_job_param(&t->job, "dp.shard"), *dn = aas_job_param(&t->job, "dp.shards");
    char *end;
    t->shards = 1;
    if (par && (dj || ds || dn))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "parallelism and dp.* cannot be combined");
    if (par) {
        t->auto_shards = !strcmp(par, "auto"); /* resolved on the training thread */
        if (!t->auto_shards) {
            long v = strtol(par, &end, 10);
            if (*end || end == par || v < 1 || v > AAS_TRAIN_DP_MAX_SHARDS)
                return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                   "parallelism: '%.32s' (want 1..%d or auto)", par,
                                   AAS_TRAIN_DP_MAX_SHARDS);
            t->shards = (int)v;
        }
        snprintf(t->dp_job, sizeof(t->dp_job), "%s", t->job.id);
    } else if (dj || ds || dn) {
        long n = dn ? strtol(dn, &end, 10) : 0;
        if (!dn || *end || n < 2 || n > AAS_TRAIN_DP_MAX_SHARDS)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "dp.shards: want 2..%d",
                               AAS_TRAIN_DP_MAX_SHARDS);
        long i = ds ? strtol(ds, &end, 10) : 0;
        if (!ds || *end || i < 1 || i >= n)
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "dp.shard: want 1..%ld",
                               n - 1);
        if (!dj || !aas_id_valid(dj))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "dp.job: not a job id");
        t->shards = (int)n;
        t->shard = (int)i;
        snprintf(t->dp_job, sizeof(t->dp_job), "%s", dj);
    }
    return AAS_ERR_OK;
}

/* trainer_dp.h's engine_new: the dense MLP over the rows in memory, or
 * the text trainer's (which reads its data set here, on the training
 * thread). */
static aas_err_t aas_trainer_dp_engine(void *arg, int only, aas_train_dp_engine_t **out,
                                       char *errstr, size_t errstr_size) {
    aas_trainer_t *t = arg;
    aas_err_t err = t->text ? aas_trainer_text_dp(t->text, t->shards, only, out, errstr,
                                                  errstr_size)
                            : aas_train_dp_dense_new(&t->params, t->x, t->y, t->n, t->dim,
                                                     t->n_classes, t->shards, only, out,
                                                     errstr, errstr_size);
    if (!err) t->shard_rows = aas_train_dp_engine_info(*out)->shard_rows[t->shard];
    return err;
}

/* parallelism=auto: this worker plus the idle workers of its group that
 * hold a partition of the training topic (a shard task lands on one),
 * less the inference floor; 1..AAS_TRAIN_DP_MAX_SHARDS.  Recorded in Redis
 * on first use, so a replacement coordinator keeps the first choice. */
static int aas_trainer_auto_shards(aas_trainer_t *t) {
    char why[256], **js = NULL;
    size_t n = 0;
    int64_t live = 0, idle = 0;
    const char *topic = aas_conf_get(t->conf, "topic.train");
    aas_err_t err = aas_store_heartbeats(t->store, &js, &n, why, sizeof(why));
    for (size_t i = 0; !err && i < n; i++) {
        aas_heartbeat_t hb;
        int32_t part;
        if (aas_heartbeat_parse(js[i], &hb, NULL, 0) || !aas_heartbeat_in_group(&hb, t->group) ||
            !strcmp(hb.id, t->worker_id))
            continue;
        live++;
        idle += !hb.training[0] && aas_heartbeat_partitions(&hb, topic, &part, 1) > 0;
    }
    aas_store_list_free(js, n);
    int64_t want = 1 + idle - t->floor;
    int shards = want < 1 ? 1 : want > AAS_TRAIN_DP_MAX_SHARDS ? AAS_TRAIN_DP_MAX_SHARDS
                                                                : (int)want;
    if (err)
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s parallelism=auto: heartbeats not read (%s)",
                t->job.id, why);
    if (aas_job_param(&t->job, "data_topic")) shards = 1; /* a topic slice: one worker */
    int chosen = shards;
    if (aas_store_dp_shards(t->store, t->job.id, &chosen, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s parallelism=auto: %s; one worker", t->job.id,
                why);
        return 1;
    }
    AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s parallelism=auto: %d shard%s (other live "
            "workers=%lld, idle with a training partition=%lld, floor=%lld%s)", t->job.id,
            chosen, chosen == 1 ? "" : "s", (long long)live, (long long)idle,
            (long long)t->floor, chosen != shards ? ", as first chosen" : "");
    return chosen;
}

static void *aas_trainer_main(void *arg) {
    aas_trainer_t *t = arg;
    if (t->auto_shards) t->shards = aas_trainer_auto_shards(t);
    if (t->shards > 1) {
        const aas_train_params_t *mp = t->text ? aas_trainer_text_mlp_params(t->text)
                                               : &t->params;
        char owner[AAS_ID_MAX + 24];
        snprintf(owner, sizeof(owner), "%s/%ld", t->worker_id[0] ? t->worker_id : "worker",
                 (long)getpid());
        aas_trainer_dp_t d = {.conf = t->conf, .store = t->store, .job = &t->job, .owner = owner,
                              .partition = t->partition, .dp_job = t->dp_job,
                              .shard = t->shard, .shards = t->shards,
                              .engine_new = aas_trainer_dp_engine, .engine_arg = t,
                              .epochs = t->text ? aas_trainer_text_epochs(t->text) : mp->epochs,
                              .threads = mp->threads, .cb = aas_trainer_progress,
                              .opaque = t, .stop = &t->stop};
        if (t->shard == 0)
            t->err = aas_trainer_dp_coordinate(&d, &t->result, t->why, sizeof(t->why));
        else
            t->err = aas_trainer_dp_shard(&d, &t->shard_rounds, &t->shard_cancelled, t->why,
                                          sizeof(t->why));
    } else if (t->text)
        t->err = aas_trainer_text_run(t->text, aas_trainer_progress, t, &t->result, t->why,
                                      sizeof(t->why));
    else
        t->err = aas_train_run(&t->params, t->x, t->y, t->n, t->dim, t->n_classes,
                               aas_trainer_progress, t, &t->result, t->why,
                               sizeof(t->why));
    atomic_store(&t->done, 1);
    return NULL;
}

aas_err_t aas_trainer_start(const aas_conf_t *conf, aas_job_t *job,
                            const aas_trainer_where_t *where, int64_t max_rows,
                            size_t dataset_max_bytes, aas_trainer_t **out, char *errstr,
                            size_t errstr_size) {
    aas_trainer_t *t = calloc(1, sizeof(*t));
    if (!t) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    t->job = *job; /* borrowed until success */
    t->conf = conf;
    t->partition = where->partition;
    snprintf(t->group, sizeof(t->group), "%s", where->group ? where->group : "");
    snprintf(t->worker_id, sizeof(t->worker_id), "%s", where->worker_id ? where->worker_id : "");
    t->floor = where->floor;
    aas_err_t err = aas_trainer_dp_params(t, errstr, errstr_size);
    if (!err) err = aas_cli_store_new(conf, &t->store, errstr, errstr_size);
    const char *featurizer = aas_job_param(&t->job, "featurizer");
    const char *dataset = aas_job_param(&t->job, "dataset");
    int stream = 0;
    if (!err) err = aas_trainer_data_kind(t, dataset, &stream, errstr, errstr_size);
    if (!err && featurizer && strcmp(featurizer, "text") != 0)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "featurizer: '%s' is not 'text'", featurizer);
    if (!err && t->shards > 1 && aas_job_param(&t->job, "data_topic"))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "parallelism: a topic slice trains on one worker (every shard "
                          "would read the topic); store the rows as a data set "
                          "(docs/training.md#data-parallel-training)");
    if (!err && stream) {
        /* Texts, or rows read as they go (trainer_text.c). */
        err = aas_trainer_text_new(conf, t->store, &t->job, max_rows, &t->text, errstr,
                                   errstr_size);
    } else if (!err) {
        err = aas_trainer_params(t, errstr, errstr_size);
        if (!err && dataset && t->job.n_inputs > 0)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "a training job carries its data or names a data set, "
                              "not both");
        if (!err && dataset)
            err = aas_trainer_dataset(t, dataset, dataset_max_bytes, &t->dataset[0],
                                      &t->dataset[1], errstr, errstr_size);
        if (!err) err = aas_trainer_data(t, max_rows, errstr, errstr_size);
    }
    if (!err) {
        t->t0_us = aas_mono_us();
        if (pthread_create(&t->thread, NULL, aas_trainer_main, t) != 0)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                              "cannot start the training thread");
        else
            t->started = 1;
    }
    if (err) {
        if (err == AAS_ERR_NOMEM && errstr && !errstr[0])
            aas_err_set(errstr, errstr_size, err, "out of memory");
        memset(&t->job, 0, sizeof(t->job)); /* still the caller's */
        aas_trainer_destroy(t);
        return err;
    }
    memset(job, 0, sizeof(*job));
    *out = t;
    return AAS_ERR_OK;
}

int aas_trainer_done(aas_trainer_t *t) { return atomic_load(&t->done); }



/* Curves and metrics as result tensors (the Result schema carries tensors). */
/* The result's outputs (curves and metrics), kept in t->outputs. */
static aas_err_t aas_trainer_outputs(aas_trainer_t *t) {
    const aas_train_result_t *r = &t->result;
    int64_t e = r->epochs_done > 0 ? r->epochs_done : 0;
    const char *names[] = {"train_loss_curve", "val_loss_curve", "val_accuracy_curve",
                           "metrics"};
    const double *src[] = {r->curve_train_loss, r->curve_val_loss,
                           r->curve_val_accuracy, NULL};
    double metrics[6] = {r->train_loss, r->val_loss, r->val_accuracy, r->samples_per_s,
                         (double)e, r->elapsed_ms};
    t->outputs = calloc(4, sizeof(aas_tensor_t));
    if (!t->outputs) return AAS_ERR_NOMEM;
    t->n_outputs = 4;
    for (int i = 0; i < 4; i++) {
        int64_t len = i < 3 ? e : 6;
        float *v = malloc((size_t)(len > 0 ? len : 1) * sizeof(float));
        if (!v) return AAS_ERR_NOMEM;
        for (int64_t k = 0; k < len; k++) {
            double d = i < 3 ? src[i][k] : metrics[k];
            v[k] = isnan(d) ? -1.0f : (float)d;
        }
        int64_t shape[1] = {len > 0 ? len : 1};
        if (len == 0) v[0] = -1.0f;
        aas_err_t err = aas_tensor_set_f32(&t->outputs[i], names[i], v, 1, shape);
        free(v);
        if (err) return err;
    }
    return AAS_ERR_OK;
}

static char *aas_trainer_meta(aas_trainer_t *t) {
    json_t *arch = json_array(), *o;
    json_array_append_new(arch, json_integer(t->dim));
    for (size_t i = 0; i < t->params.n_hidden; i++)
        json_array_append_new(arch, json_integer(t->params.hidden[i]));
    json_array_append_new(arch, json_integer(t->n_classes));
    json_t *params = json_object();
    for (size_t i = 0; i < t->job.n_params; i++)
        json_object_set_new(params, t->job.params[i].key,
                            json_string(t->job.params[i].value));
    int is_text = t->text && !aas_trainer_text_is_rows(t->text);
    if (is_text) {
        char *d = aas_trainer_text_describe(t->text);
        json_t *text = d ? json_loads(d, 0, NULL) : NULL;
        free(d);
        json_decref(arch);
        arch = text ? text : json_object();
    } else if (t->text) {
        /* streamed rows: the layer sizes are the trained model's */
        aas_model_t *m = NULL;
        json_decref(arch);
        arch = json_array();
        if (!aas_model_load(t->result.blob, t->result.blob_len, &m, NULL, 0)) {
            json_array_append_new(arch, json_integer(aas_model_input_dim(m)));
            const aas_train_params_t *mp = aas_trainer_text_mlp_params(t->text);
            for (size_t i = 0; i < mp->n_hidden; i++)
                json_array_append_new(arch, json_integer(mp->hidden[i]));
            json_array_append_new(arch, json_integer(aas_model_output_dim(m)));
            aas_model_destroy(m);
        }
    }
    o = json_pack("{s:o, s:s, s:s, s:o, s:{s:f, s:f, s:f, s:f, s:i}, s:I, s:I}",
                  is_text ? "text" : "architecture", arch, "kind", is_text ? "text" : "mlp",
                  "training_job", t->job.id,
                  "params", params, "metrics", "train_loss", t->result.train_loss,
                  "val_loss", isnan(t->result.val_loss) ? -1.0 : t->result.val_loss,
                  "val_accuracy",
                  isnan(t->result.val_accuracy) ? -1.0 : t->result.val_accuracy,
                  "samples_per_s", t->result.samples_per_s, "epochs",
                  (int)t->result.epochs_done, "train_rows", (json_int_t)t->result.n_train,
                  "val_rows", (json_int_t)t->result.n_val);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

aas_err_t aas_trainer_finish(aas_trainer_t *t, aas_store_t *st, aas_result_t *res,
                             int64_t *version_out, char *errstr, size_t errstr_size) {
    aas_err_t err;
    memset(res, 0, sizeof(*res));
    res->timings.compute_us = aas_mono_us() - t->t0_us;
    if (t->err) {
        snprintf(t->reason, sizeof(t->reason), "training failed: %s", t->why);
        res->status = AAS_STATUS_FAILED;
        res->error = t->reason;
        return AAS_ERR_OK;
    }
    if (t->shards > 1 && t->shard > 0) {
        /* A shard task registers nothing: its rounds are its job's. */
        if (t->shard_cancelled) {
            snprintf(t->reason, sizeof(t->reason), "shard %d of %s stopped after %d rounds: "
                     "the job was cancelled or failed", t->shard, t->dp_job,
                     (int)t->shard_rounds);
            res->status = AAS_STATUS_CANCELLED;
            res->error = t->reason;
        } else {
            res->status = AAS_STATUS_SUCCEEDED;
        }
        *version_out = 0;
        return AAS_ERR_OK;
    }
    if (t->result.cancelled) {
        snprintf(t->reason, sizeof(t->reason), "cancelled by a client after %d epochs",
                 (int)t->result.epochs_done);
        res->status = AAS_STATUS_CANCELLED;
        res->error = t->reason;
        return AAS_ERR_OK;
    }
    if (t->version == 0) {
        /* A redelivered copy may have finished first: then its model
         * stands and this one is not registered (recording finds the job
         * terminal and writes nothing). */
        aas_job_info_t info = {0};
        err = aas_store_job_get(st, t->job.id, &info, errstr, errstr_size);
        int terminal = !err && aas_status_is_terminal(info.status);
        aas_job_info_clear(&info);
        if (err && err != AAS_ERR_NOT_FOUND) return err;
        if (terminal) {
            res->status = AAS_STATUS_SUCCEEDED;
            *version_out = 0;
            return AAS_ERR_OK;
        }
        char *meta = aas_trainer_meta(t);
        void *blob = t->result.blob;
        size_t blob_len = t->result.blob_len;
        if (!meta)
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM,
                               "out of memory for the model's metadata");
        err = aas_store_model_put(st, t->job.model, blob, blob_len, meta, &t->version,
                                  errstr, errstr_size);
        if (blob != t->result.blob) free(blob);
        free(meta);
        if (err) return err;
        AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s registered model=%s version=%lld "
                "val_accuracy=%.4f", t->job.id, t->job.model, (long long)t->version,
                t->result.val_accuracy);
    }
    if (!t->outputs && (err = aas_trainer_outputs(t))) {
        for (size_t i = 0; i < t->n_outputs; i++) aas_tensor_clear(&t->outputs[i]);
        free(t->outputs);
        t->outputs = NULL;
        t->n_outputs = 0;
        return aas_err_set(errstr, errstr_size, err, "training outputs: %s",
                           aas_err_str(err));
    }
    res->status = AAS_STATUS_SUCCEEDED;
    res->outputs = t->outputs;
    res->n_outputs = t->n_outputs;
    *version_out = t->version;
    return AAS_ERR_OK;
}

void aas_trainer_destroy(aas_trainer_t *t) {
    if (!t) return;
    if (t->started) {
        atomic_store(&t->stop, 1);
        pthread_join(t->thread, NULL);
    }
    aas_train_result_free(&t->result);
    for (size_t i = 0; i < t->n_outputs; i++) aas_tensor_clear(&t->outputs[i]);
    free(t->outputs);
    aas_trainer_text_destroy(t->text); /* before the store its source reads */
    aas_store_destroy(t->store);
    for (size_t i = 0; i < t->n_names; i++) free(t->names[i]);
    free(t->names);
    free(t->x_copy);
    free(t->y);
    aas_tensor_clear(&t->dataset[0]);
    aas_tensor_clear(&t->dataset[1]);
    aas_job_clear(&t->job);
    free(t);
}

void aas_trainer_usage(const aas_trainer_t *t, int64_t *rows, int64_t *sample_epochs) {
    if (t->shards > 1) {
        /* Each worker meters its own shard's rows times the rounds it ran
         * (the coordinator: shard 0's, plus any it redid, not counted):
         * every shards-th training row from this one, as the engine dealt. */
        int64_t mine = t->shard_rows;
        *rows = mine;
        *sample_epochs = mine * (t->shard ? t->shard_rounds : t->result.epochs_done);
        return;
    }
    *rows = t->result.n_train + t->result.n_val;
    *sample_epochs = t->result.n_train * (int64_t)t->result.epochs_done;
}
