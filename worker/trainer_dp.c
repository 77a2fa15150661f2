/* trainer_dp.c - a data-parallel training job's coordinator and shards; see
 * trainer_dp.h. */
#include "trainer_dp.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "log.h"
#include "train_dp.h"

/* How often a waiting side looks at Redis again. */
#define AAS_DP_POLL_US 10000
/* A shard not back within max(this, 3 x the coordinator's own round) is
 * redone by the coordinator. */
#define AAS_DP_STEAL_MIN_US 2000000
/* The coordinator's lease: at least this, and 3 x its own round. */
#define AAS_DP_LEASE_MIN_MS 15000
/* A shard task gives up on a coordinator that wrote no round this long. */
#define AAS_DP_SILENT_US (120LL * 1000000)

static void dp_sleep_us(int64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Publish the shard tasks (best effort: a shard nobody runs is redone by
 * the coordinator, so a failure here slows the job, it does not fail it).
 * out[i] = 1 for each shard task the broker acknowledged. */
static void dp_publish_shards(const aas_trainer_dp_t *d, int *out) {
    const aas_job_t *job = d->job;
    char why[1024];
    aas_client_t *c = NULL;
    if (strlen(job->id) + 4 > AAS_ID_MAX) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s id too long for shard task ids: the "
                "coordinator runs every shard", job->id);
        return;
    }
    if (aas_client_new(d->conf, &c, why, sizeof(why))) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s shard tasks not published (%s): the "
                "coordinator runs every shard", job->id, why);
        return;
    }
    /* A replacement coordinator publishes the same tasks again: the same
     * payload under the same id is accepted and not sent twice. */
    aas_client_set_idempotent(c, 1);
    int32_t parts = 0;
    if (d->partition >= 0 && aas_client_partitions(c, 1, &parts, why, sizeof(why)))
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s: %s; shard tasks placed by id", job->id, why);
    size_t np = job->n_params + 3;
    aas_kv_t *kv = calloc(np, sizeof(*kv));
    char shard_s[16], shards_s[16], id[AAS_ID_MAX + 1];
    snprintf(shards_s, sizeof(shards_s), "%d", d->shards);
    for (int i = 1; kv && i < d->shards; i++) {
        size_t k = 0;
        for (size_t j = 0; j < job->n_params; j++)
            if (strcmp(job->params[j].key, "parallelism")) kv[k++] = job->params[j];
        snprintf(shard_s, sizeof(shard_s), "%d", i);
        kv[k++] = (aas_kv_t){"dp.job", job->id};
        kv[k++] = (aas_kv_t){"dp.shard", shard_s};
        kv[k++] = (aas_kv_t){"dp.shards", shards_s};
        snprintf(id, sizeof(id), "%s.s%d", job->id, i);
        aas_job_t t = *job;
        t.id = id;
        t.params = kv;
        t.n_params = k;
        t.deadline_ms = 0;
        int32_t part = parts > 1 ? (d->partition + i) % parts : 0;
        aas_client_submission_t sb = {.job = &t, .partition = parts > 1 ? &part : NULL};
        if (aas_client_submit_many(c, &sb, 1, NULL, 0))
            AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s shard task %s not published: %s",
                    job->id, id, sb.why);
        else
            out[i] = 1;
    }
    if (!kv) AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s: out of memory for shard tasks", job->id);
    size_t failed = 0;
    if (aas_client_flush(c, 10000, &failed, why, sizeof(why)) || failed) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s shard tasks: %zu not acknowledged %s",
                job->id, failed, why);
        /* Which ones is not said: wait for none of them (a shard that runs
         * anyway still finds its rounds redone and skips them). */
        for (int i = 1; i < d->shards; i++) out[i] = 0;
    }
    free(kv);
    aas_client_destroy(c);
}

/* Shard i's state of round r from Redis into out: 1 found, 0 not yet. */
static int dp_fetch(const aas_trainer_dp_t *d, int global, int64_t r, int i, size_t sb,
                    void *out) {
    void *v = NULL;
    size_t len = 0;
    char why[256];
    aas_err_t err = aas_store_dp_get(d->store, d->dp_job, global, r, i, sb, &v, &len, why,
                                     sizeof(why));
    int ok = !err && len == sb;
    if (ok) memcpy(out, v, sb);
    else if (!err || (err != AAS_ERR_NOT_FOUND && !aas_err_is_retriable(err)))
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s %s state r=%lld: %s", d->dp_job,
                global ? "global" : "shard", (long long)r, err ? why : "wrong size");
    free(v);
    return ok;
}

typedef struct {
    aas_train_dp_engine_t *e;
    void *g, *st[AAS_TRAIN_DP_MAX_SHARDS];
    size_t sb;
    int64_t nrows0;               /* shard 0's rows */
} dp_work_t;

static void dp_work_free(dp_work_t *w, int shards) {
    for (int i = 0; i < shards; i++) free(w->st[i]);
    free(w->g);
    aas_train_dp_engine_destroy(w->e);
}

/* The engine (every shard's rows, only `only`'s when >= 0) and buffers. */
static aas_err_t dp_work_new(const aas_trainer_dp_t *d, int only, dp_work_t *w, char *errstr,
                             size_t errstr_size) {
    memset(w, 0, sizeof(*w));
    aas_err_t err = d->engine_new(d->engine_arg, only, &w->e, errstr, errstr_size);
    if (err) return err;
    const aas_train_dp_info_t *in = aas_train_dp_engine_info(w->e);
    w->sb = in->state_bytes;
    w->nrows0 = in->shard_rows[0];
    if (!(w->g = malloc(w->sb)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < d->shards; i++)
        if (in->have[i] && !(w->st[i] = malloc(w->sb)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    return AAS_ERR_OK;
}

/* The coordinator's lease (dp:{job}:lease): a second coordinator of the
 * same job (redelivered while the first still runs, after a rebalance)
 * waits for it rather than computing the same rounds twice.  It saves
 * work; it is not what keeps the result right: rounds are pure and the
 * job's terminal write counts once, so two coordinators at once give the
 * same model.  Returns 0 when the worker stops while waiting. */
static int dp_lease_take(const aas_trainer_dp_t *d) {
    int said = 0;
    while (!atomic_load(d->stop)) {
        int held = 0;
        int64_t left = 0;
        char holder[128], why[256];
        if (aas_store_dp_lease(d->store, d->dp_job, d->owner, AAS_DP_LEASE_MIN_MS, &held,
                               holder, sizeof(holder), &left, why, sizeof(why))) {
            AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s coordinator lease not taken (%s): "
                    "coordinating without it", d->dp_job, why);
            return 1;
        }
        if (held) return 1;
        if (!said++)
            AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s waits for coordinator %s (lease, %lld ms "
                    "left)", d->dp_job, holder, (long long)left);
        dp_sleep_us(left > 0 && left < 1000 ? left * 1000 : 1000000);
    }
    return 0;
}

/* Renew it for ttl_ms (0 releases it); said: warned already. */
static void dp_lease_renew(const aas_trainer_dp_t *d, int64_t ttl_ms, int *said) {
    int held = 0;
    char holder[128], why[256];
    if (aas_store_dp_lease(d->store, d->dp_job, d->owner, ttl_ms, &held, holder,
                           sizeof(holder), NULL, why, sizeof(why))) {
        if (!(*said)++)
            AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s coordinator lease not renewed: %s",
                    d->dp_job, why);
    } else if (ttl_ms > 0 && !held && !(*said)++) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s coordinator lease held by %s: both compute "
                "the same rounds", d->dp_job, holder);
    }
}

aas_err_t aas_trainer_dp_coordinate(const aas_trainer_dp_t *d, aas_train_result_t *out,
                                    char *errstr, size_t errstr_size) {
    int64_t t0 = aas_mono_us();
    dp_work_t w;
    aas_train_result_t res;
    memset(&res, 0, sizeof(res));
    int32_t epochs = d->epochs;
    /* The job's threads, for this (the training) thread only. */
    if (d->threads > 0) omp_set_num_threads(d->threads);
    aas_err_t err = dp_work_new(d, -1, &w, errstr, errstr_size);
    if (!err && (!(res.curve_train_loss = calloc((size_t)epochs, sizeof(double))) ||
                 !(res.curve_val_loss = calloc((size_t)epochs, sizeof(double))) ||
                 !(res.curve_val_accuracy = calloc((size_t)epochs, sizeof(double)))))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    int64_t r0 = -1, lease_ms = AAS_DP_LEASE_MIN_MS, renewed = aas_mono_us();
    int lease_said = 0;
    if (!err && !dp_lease_take(d)) {
        dp_work_free(&w, d->shards);
        aas_train_result_free(&res);
        return aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT, "the worker is stopping");
    }
    /* A replacement coordinator resumes at the last global round. */
    if (!err) err = aas_store_dp_round(d->store, d->dp_job, &r0, errstr, errstr_size);
    if (!err && r0 >= 0 && (r0 > epochs || !dp_fetch(d, 1, r0, 0, w.sb, w.g))) r0 = -1;
    if (!err && r0 < 0) {
        r0 = 0;
        if (!(err = aas_train_dp_engine_get(w.e, w.g, errstr, errstr_size)) &&
            !(err = aas_store_dp_put(d->store, d->dp_job, 1, 0, 0, w.g, w.sb, errstr,
                                     errstr_size)))
            err = aas_store_dp_set_round(d->store, d->dp_job, 0, errstr, errstr_size);
    } else if (!err) {
        AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s resumes at round %lld of %d", d->dp_job,
                (long long)r0 + 1, (int)epochs);
        /* The net is the global state (all rounds may be done already). */
        err = aas_train_dp_engine_set(w.e, w.g, errstr, errstr_size);
    }
    /* Running (again): shards stop only on what this coordinator says. */
    if (!err) err = aas_store_dp_stop(d->store, d->dp_job, "", errstr, errstr_size);
    /* out_there: published; late: missed a round's deadline, so later
     * rounds take its state if it is there but do not wait for it (a
     * killed shard must not cost every remaining round the wait). */
    int out_there[AAS_TRAIN_DP_MAX_SHARDS] = {0}, late[AAS_TRAIN_DP_MAX_SHARDS] = {0};
    if (!err) dp_publish_shards(d, out_there);
    if (w.e) {
        res.n_val = aas_train_dp_engine_info(w.e)->n_val;
        res.n_train = aas_train_dp_engine_info(w.e)->n_train;
    }
    res.epochs_done = (int32_t)r0;
    int64_t work_us = 0, redone = 0;
    for (int32_t r = (int32_t)r0; !err && r < epochs; r++) {
        double sum = 0, loss = 0;
        int64_t ts = aas_mono_us();
        if ((err = aas_train_dp_engine_round(w.e, w.g, r, 0, w.st[0], &sum, errstr,
                                             errstr_size)))
            break;
        int64_t mine = aas_mono_us() - ts;
        /* The lease outlasts three of this coordinator's rounds. */
        lease_ms = mine * 3 / 1000 > AAS_DP_LEASE_MIN_MS ? mine * 3 / 1000 : AAS_DP_LEASE_MIN_MS;
        dp_lease_renew(d, lease_ms, &lease_said);
        renewed = aas_mono_us();
        int64_t wait = mine * 3 > AAS_DP_STEAL_MIN_US ? mine * 3 : AAS_DP_STEAL_MIN_US;
        int64_t deadline = aas_mono_us() + wait;
        int have[AAS_TRAIN_DP_MAX_SHARDS] = {1}, missing = 0;
        for (int i = 1; i < d->shards; i++) {
            if (!out_there[i]) continue;
            if (late[i] && dp_fetch(d, 0, r, i, w.sb, w.st[i])) {
                have[i] = 1; /* back in step */
                late[i] = 0;
            }
            missing += !have[i] && !late[i];
        }
        while (missing > 0 && aas_mono_us() < deadline && !atomic_load(d->stop)) {
            for (int i = 1; i < d->shards; i++)
                if (!have[i] && !late[i] && out_there[i] && dp_fetch(d, 0, r, i, w.sb, w.st[i])) {
                    have[i] = 1;
                    missing--;
                }
            if (missing) dp_sleep_us(AAS_DP_POLL_US);
            if (aas_mono_us() - renewed > 1000000) {
                dp_lease_renew(d, lease_ms, &lease_said);
                renewed = aas_mono_us();
            }
        }
        for (int i = 1; !err && i < d->shards; i++) {
            if (have[i]) continue;
            if (out_there[i] && !late[i])
                AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s shard %d late in round %d: redone "
                        "here, and not waited for until it is back in step", d->dp_job, i,
                        (int)r + 1);
            late[i] = out_there[i];
            /* Late or lost: the same bytes its worker would have written. */
            if ((err = aas_train_dp_engine_round(w.e, w.g, r, i, w.st[i], &loss, errstr,
                                                 errstr_size)))
                break;
            redone++;
            aas_store_dp_put(d->store, d->dp_job, 0, r, i, w.st[i], w.sb, NULL, 0);
        }
        /* The shards' losses are not sent: the round's loss is shard 0's,
         * scaled to the rows (a sample of the same distribution). */
        sum = sum * (double)res.n_train / (double)w.nrows0;
        if (!err)
            err = aas_train_dp_average((const void *const *)w.st, (size_t)d->shards, w.sb, w.g,
                                       errstr, errstr_size);
        if (!err) err = aas_store_dp_put(d->store, d->dp_job, 1, r + 1, 0, w.g, w.sb, errstr,
                                         errstr_size);
        if (!err) err = aas_store_dp_set_round(d->store, d->dp_job, r + 1, errstr, errstr_size);
        if (err) break;
        aas_store_dp_forget_round(d->store, d->dp_job, r, d->shards, NULL, 0);
        work_us += aas_mono_us() - ts;
        if ((err = aas_train_dp_engine_set(w.e, w.g, errstr, errstr_size)) ||
            (err = aas_train_dp_engine_validate(w.e, &res.val_loss, &res.val_accuracy, errstr,
                                                errstr_size)))
            break;
        res.train_loss = sum / (double)res.n_train;
        res.curve_train_loss[r] = res.train_loss;
        res.curve_val_loss[r] = res.val_loss;
        res.curve_val_accuracy[r] = res.val_accuracy;
        res.epochs_done = r + 1;
        aas_train_progress_t pr = {1, r + 1, epochs, 1, 1, res.train_loss, res.val_loss,
                                   res.val_accuracy, (double)(aas_mono_us() - t0) / 1e3};
        if (d->cb && d->cb(d->opaque, &pr)) {
            res.cancelled = 1;
            break;
        }
    }
    if (!err && res.epochs_done > 0) {
        /* Curves of a resumed job start at its first round here. */
        res.samples_per_s = work_us > 0 ? (double)res.n_train * (res.epochs_done - (int32_t)r0) /
                                              ((double)work_us / 1e6)
                                        : 0;
    }
    dp_lease_renew(d, 0, &lease_said); /* released: a successor need not wait */
    /* The worker stopping is not the job stopping: it is redelivered and
     * its next coordinator resumes, with the shards still running. */
    if (!atomic_load(d->stop))
        aas_store_dp_stop(d->store, d->dp_job,
                          err ? "failed" : res.cancelled ? "cancelled" : "done", NULL, 0);
    if (!err) err = aas_train_dp_engine_export(w.e, &res.blob, &res.blob_len, errstr, errstr_size);
    if (!err)
        AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s data-parallel shards=%d rounds=%d redone=%lld "
                "val_accuracy=%.4f", d->dp_job, d->shards, (int)res.epochs_done,
                (long long)redone, res.val_accuracy);
    dp_work_free(&w, d->shards);
    if (err) {
        aas_train_result_free(&res);
        return err;
    }
    res.elapsed_ms = (double)(aas_mono_us() - t0) / 1e3;
    *out = res;
    return AAS_ERR_OK;
}

aas_err_t aas_trainer_dp_shard(const aas_trainer_dp_t *d, int32_t *rounds, int *cancelled,
                               char *errstr, size_t errstr_size) {
    dp_work_t w;
    *rounds = 0;
    *cancelled = 0;
    if (d->threads > 0) omp_set_num_threads(d->threads);
    /* A shard writes into another job's rounds: only a running job of
     * its own tenant's (a crafted dp.job must not feed another tenant's
     * model). */
    aas_job_info_t info = {0};
    aas_err_t err = aas_store_job_get(d->store, d->dp_job, &info, errstr, errstr_size);
    const char *mine = d->job->tenant ? d->job->tenant : "";
    int ended = !err && aas_status_is_terminal(info.status);
    if (!err && strcmp(info.tenant ? info.tenant : "", mine))
        err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT,
                          "dp.job %s is not a training job of tenant '%s'", d->dp_job, mine);
    if (!err && ended) {
        /* A task redelivered after its job ended: nothing left to do. */
        *cancelled = info.status != AAS_STATUS_SUCCEEDED;
        AAS_LOG(AAS_LOG_INFO, "trainer", "job=%s shard %d: job %s already %s", d->job->id,
                d->shard, d->dp_job, aas_status_name(info.status));
        aas_job_info_clear(&info);
        return AAS_ERR_OK;
    }
    aas_job_info_clear(&info);
    if (err == AAS_ERR_NOT_FOUND)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_CONFLICT, "dp.job %s: no such job",
                          d->dp_job);
    if (err) {
        AAS_LOG(AAS_LOG_WARN, "trainer", "job=%s shard %d: %s", d->job->id, d->shard, errstr);
        return err;
    }
    err = dp_work_new(d, d->shard, &w, errstr, errstr_size);
    int64_t r = 0, heard = aas_mono_us();
    char stop[96];
    while (!err && r < d->epochs) {
        if (atomic_load(d->stop)) {
            *cancelled = 1;
            break;
        }
        int64_t g = -1;
        if ((err = aas_store_dp_stopped(d->store, d->dp_job, stop, sizeof(stop), errstr,
                                        errstr_size)))
            break;
        if (stop[0]) {
            *cancelled = strcmp(stop, "done") != 0;
            break;
        }
        if ((err = aas_store_dp_round(d->store, d->dp_job, &g, errstr, errstr_size))) break;
        if (g > r) { /* rounds done without this shard (redone by the coordinator) */
            r = g;
            heard = aas_mono_us();
        }
        if (g < r || dp_fetch(d, 0, r, d->shard, w.sb, w.st[d->shard]) ||
            !dp_fetch(d, 1, r, 0, w.sb, w.g)) {
            /* Waiting for the next global state (or this round is done). */
            if (aas_mono_us() - heard > AAS_DP_SILENT_US) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_TIMEOUT,
                                  "no round from the coordinator of %s for %lld s", d->dp_job,
                                  (long long)(AAS_DP_SILENT_US / 1000000));
                break;
            }
            dp_sleep_us(AAS_DP_POLL_US);
            continue;
        }
        double loss = 0;
        if ((err = aas_train_dp_engine_round(w.e, w.g, (int32_t)r, d->shard, w.st[d->shard],
                                             &loss, errstr, errstr_size)) ||
            (err = aas_store_dp_put(d->store, d->dp_job, 0, r, d->shard, w.st[d->shard], w.sb,
                                    errstr, errstr_size)))
            break;
        (*rounds)++;
        r++;
        heard = aas_mono_us();
    }
    AAS_LOG(err ? AAS_LOG_WARN : AAS_LOG_INFO, "trainer", "job=%s shard %d of %d of job %s: "
            "rounds=%d%s%s", d->job->id, d->shard, d->shards, d->dp_job, (int)*rounds,
            err ? " error=" : "", err ? errstr : "");
    dp_work_free(&w, d->shards);
    return err;
}
