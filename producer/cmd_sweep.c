/*
 * cmd_sweep.c - aas-producer sweep: a hyper-parameter search run as
 * training jobs on the fleet (docs/training.md#sweeps).
 *
 * This process is the coordinator: it publishes each trial as a TRAIN job
 * (its model a scratch name, so trials register nothing under MODEL),
 * waits for the results, and with --halving keeps the best 1/eta of each
 * rung for the next, at eta times the epochs (synchronous successive
 * halving, the synchronous form of ASHA).  The best trial of the last
 * rung is copied to MODEL as its next version, once; the scratch models
 * are deleted.  Every trial is recorded in Redis (store.h, sweeps), so
 * `sweep status ID` prints them, and trial job ids are derived from the
 * sweep id, so running the same sweep again (--id) after the coordinator
 * died finds the trials that ran and publishes only the rest.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "job.h"

#define SWEEP_MAX_KEYS 8
#define SWEEP_MAX_VALUES 16
#define SWEEP_MAX_CONFIGS 256

typedef struct {
    char *keys[SWEEP_MAX_KEYS];
    char *values[SWEEP_MAX_KEYS][SWEEP_MAX_VALUES];
    size_t n_keys, n_values[SWEEP_MAX_KEYS];
    size_t n_configs;
    char *buf; /* the spec, cut in place */
} grid_t;

typedef struct {
    size_t config;          /* index into the grid's product */
    int rung;
    int64_t epochs;
    char job_id[AAS_ID_MAX + 1];
    aas_status_t status;
    double val_acc, val_loss, elapsed_ms;
    int64_t version;        /* of the scratch model */
    char error[256];
} trial_t;

/* "lr=0.01|0.001;hidden=64|128,64": keys split by ';', values by '|' (a
 * value may hold commas: hidden widths).  0, or -1 having said why. */
static int grid_parse(const char *spec, grid_t *g) {
    memset(g, 0, sizeof(*g));
    if (!(g->buf = strdup(spec))) return -1;
    g->n_configs = 1;
    for (char *save = NULL, *part = strtok_r(g->buf, ";", &save); part;
         part = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(part, '=');
        if (!eq || eq == part || !eq[1]) {
            fprintf(stderr, "aas-producer: --grid: '%s' is not KEY=V1|V2|...\n", part);
            return -1;
        }
        if (g->n_keys == SWEEP_MAX_KEYS) {
            fprintf(stderr, "aas-producer: --grid: at most %d keys\n", SWEEP_MAX_KEYS);
            return -1;
        }
        *eq = '\0';
        size_t k = g->n_keys++;
        g->keys[k] = part;
        for (char *s2 = NULL, *v = strtok_r(eq + 1, "|", &s2); v; v = strtok_r(NULL, "|", &s2)) {
            if (g->n_values[k] == SWEEP_MAX_VALUES) {
                fprintf(stderr, "aas-producer: --grid: at most %d values a key\n",
                        SWEEP_MAX_VALUES);
                return -1;
            }
            g->values[k][g->n_values[k]++] = v;
        }
        if (!g->n_values[k]) {
            fprintf(stderr, "aas-producer: --grid: %s has no value\n", part);
            return -1;
        }
        g->n_configs *= g->n_values[k];
        if (g->n_configs > SWEEP_MAX_CONFIGS) {
            fprintf(stderr, "aas-producer: --grid: more than %d configurations\n",
                    SWEEP_MAX_CONFIGS);
            return -1;
        }
    }
    if (!g->n_keys) {
        fprintf(stderr, "aas-producer: --grid: no KEY=V1|V2\n");
        return -1;
    }
    return 0;
}

/* Value of key k in configuration c (mixed radix, first key slowest). */
static const char *grid_value(const grid_t *g, size_t c, size_t k) {
    size_t stride = 1;
    for (size_t j = g->n_keys; j-- > k + 1;) stride *= g->n_values[j];
    return g->values[k][(c / stride) % g->n_values[k]];
}

/* "lr=0.01 hidden=64" of configuration c into buf. */
static void grid_describe(const grid_t *g, size_t c, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < g->n_keys && n < size; k++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", k ? " " : "", g->keys[k],
                              grid_value(g, c, k));
}

static void scratch_name(const char *model, const char *sweep, size_t config, char *buf,
                         size_t size) {
    snprintf(buf, size, "%.64s.sw-%.40s.c%zu", model, sweep, config);
}

/* A trial's JSON record. */
static char *trial_json(const grid_t *g, const trial_t *t) {
    char params[512];
    grid_describe(g, t->config, params, sizeof(params));
    json_t *o = json_pack("{s:s, s:i, s:I, s:s, s:I, s:s}", "job", t->job_id, "rung", t->rung,
                          "config", (json_int_t)t->config, "params", params, "epochs",
                          (json_int_t)t->epochs, "status", aas_status_name(t->status));
    if (!o) return NULL;
    if (t->status == AAS_STATUS_SUCCEEDED) {
        json_object_set_new(o, "val_accuracy", json_real(t->val_acc));
        json_object_set_new(o, "val_loss", json_real(t->val_loss));
        json_object_set_new(o, "train_ms", json_real(t->elapsed_ms));
    } else if (t->error[0]) {
        json_object_set_new(o, "error", json_string(t->error));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static void record(aas_client_t *c, const char *sweep, const char *field, char *json) {
    char why[512];
    if (json && aas_store_sweep_put(aas_client_store(c), sweep, field, json, why, sizeof(why)))
        fprintf(stderr, "aas-producer: sweep %s: not recorded: %s\n", sweep, why);
    free(json);
}

/* The trial's outcome from its result (metrics: docs/training.md#results). */
static void trial_read(trial_t *t, const aas_result_t *res) {
    t->status = res->status;
    if (res->error) snprintf(t->error, sizeof(t->error), "%s", res->error);
    if (res->model_version) t->version = strtoll(res->model_version, NULL, 10);
    for (size_t i = 0; i < res->n_outputs; i++) {
        const aas_tensor_t *m = &res->outputs[i];
        if (!m->name || strcmp(m->name, "metrics") || m->dtype != AAS_DTYPE_F32 ||
            m->nbytes < 6 * sizeof(float))
            continue;
        const float *v = (const float *)m->data;
        t->val_loss = v[1];
        t->val_acc = v[2];
        t->elapsed_ms = v[5];
    }
    if (t->status == AAS_STATUS_SUCCEEDED && !isfinite(t->val_acc)) {
        t->status = AAS_STATUS_FAILED;
        snprintf(t->error, sizeof(t->error), "no validation accuracy (validation_fraction 0?)");
    }
}

/* Publish the rung's trials (idempotently: a sweep run again finds the
 * ones published before) and wait for each.  0, or an exit code. */
static int run_rung(aas_client_t *c, const aas_cmd_opts_t *o, const char *sweep,
                    const grid_t *g, trial_t *tr, size_t n) {
    aas_client_set_idempotent(c, 1);
    for (size_t i = 0; i < n; i++) {
        trial_t *t = &tr[i];
        char scratch[AAS_ID_MAX + 1], epochs[24];
        scratch_name(o->model, sweep, t->config, scratch, sizeof(scratch));
        snprintf(epochs, sizeof(epochs), "%" PRId64, t->epochs);
        /* The fixed params, the configuration's, then the data and epochs. */
        aas_kv_t *p = calloc(o->n_params + g->n_keys + 2, sizeof(*p));
        if (!p) {
            fprintf(stderr, "aas-producer: out of memory\n");
            return 1;
        }
        size_t np = 0;
        for (size_t k = 0; k < o->n_params; k++) p[np++] = o->params[k];
        for (size_t k = 0; k < g->n_keys; k++)
            p[np++] = (aas_kv_t){g->keys[k], (char *)grid_value(g, t->config, k)};
        p[np++] = (aas_kv_t){"dataset", (char *)o->dataset};
        p[np++] = (aas_kv_t){"epochs", epochs};
        aas_job_t job = {.id = t->job_id, .kind = AAS_JOB_TRAIN, .model = scratch,
                         .params = p, .n_params = np, .priority = (int32_t)o->priority,
                         .tenant = (char *)o->tenant};
        char why[2048];
        aas_err_t err = aas_client_submit(c, &job, why, sizeof(why));
        free(p);
        if (err) {
            fprintf(stderr, "aas-producer: sweep %s: trial %s: %s\n", sweep, t->job_id, why);
            return 1;
        }
    }
    char why[512];
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, why, sizeof(why)) || failed) {
        fprintf(stderr, "aas-producer: sweep %s: trials not published: %s\n", sweep,
                failed ? "the broker refused some" : why);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        trial_t *t = &tr[i];
        aas_result_t res = {0};
        aas_err_t err = aas_client_wait(c, t->job_id, (int)(o->timeout_s * 1000), &res, why,
                                        sizeof(why));
        if (err) {
            fprintf(stderr, "aas-producer: sweep %s: trial %s: %s\n", sweep, t->job_id, why);
            return err == AAS_ERR_TIMEOUT ? AAS_EXIT_TIMEOUT : 1;
        }
        trial_read(t, &res);
        aas_result_clear(&res);
        char field[64];
        snprintf(field, sizeof(field), "trial:%d:%zu", t->rung, t->config);
        record(c, sweep, field, trial_json(g, t));
        char params[512];
        grid_describe(g, t->config, params, sizeof(params));
        if (t->status == AAS_STATUS_SUCCEEDED)
            printf("rung %d  %-40s epochs %-4" PRId64 " val_accuracy %.4f\n", t->rung, params,
                   t->epochs, t->val_acc);
        else
            printf("rung %d  %-40s epochs %-4" PRId64 " %s: %s\n", t->rung, params, t->epochs,
                   aas_status_name(t->status), t->error);
        fflush(stdout);
    }
    return 0;
}

/* Best first: succeeded, higher accuracy, lower loss, lower config. */
static int trial_cmp(const void *a, const void *b) {
    const trial_t *x = a, *y = b;
    int ox = x->status == AAS_STATUS_SUCCEEDED, oy = y->status == AAS_STATUS_SUCCEEDED;
    if (ox != oy) return oy - ox;
    if (x->val_acc != y->val_acc) return x->val_acc < y->val_acc ? 1 : -1;
    if (x->val_loss != y->val_loss) return x->val_loss > y->val_loss ? 1 : -1;
    return x->config < y->config ? -1 : x->config > y->config;
}

/* Copy the best trial's model to MODEL as its next version, once: a
 * sweep run again after it was registered says so and registers nothing. */
static int register_best(aas_client_t *c, const aas_cmd_opts_t *o, const char *sweep,
                         const grid_t *g, const trial_t *best, int64_t *version) {
    aas_kv_t *rec = NULL;
    size_t nrec = 0;
    char why[512];
    if (!aas_store_sweep_read(aas_client_store(c), sweep, &rec, &nrec, why, sizeof(why))) {
        for (size_t i = 0; i < nrec; i++)
            if (!strcmp(rec[i].key, "registered")) {
                *version = strtoll(rec[i].value, NULL, 10);
                printf("sweep %s: the best trial was registered before, as %s version %" PRId64
                       "\n", sweep, o->model, *version);
                aas_store_sweep_free(rec, nrec);
                return 0;
            }
        aas_store_sweep_free(rec, nrec);
    }
    char scratch[AAS_ID_MAX + 1];
    scratch_name(o->model, sweep, best->config, scratch, sizeof(scratch));
    void *blob = NULL;
    size_t len = 0;
    int64_t got = 0;
    if (aas_store_model_get(aas_client_store(c), scratch, best->version, AAS_STORE_BLOB_MAX,
                            &blob, &len, &got, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: sweep %s: the best trial's model: %s\n", sweep, why);
        return 1;
    }
    char params[512];
    grid_describe(g, best->config, params, sizeof(params));
    json_t *m = json_pack("{s:s, s:s, s:s, s:I, s:f}", "sweep", sweep, "trial", best->job_id,
                          "params", params, "epochs", (json_int_t)best->epochs,
                          "val_accuracy", best->val_acc);
    char *meta = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    aas_err_t err = aas_client_model_register(c, o->model, blob, len, meta, version, why,
                                              sizeof(why));
    free(blob);
    free(meta);
    if (err) {
        fprintf(stderr, "aas-producer: sweep %s: register %s: %s\n", sweep, o->model, why);
        return 1;
    }
    char v[24];
    snprintf(v, sizeof(v), "%" PRId64, *version);
    record(c, sweep, "registered", strdup(v));
    return 0;
}

/* Delete every version of the trials' scratch models. */
static void drop_scratch(aas_client_t *c, const aas_cmd_opts_t *o, const char *sweep,
                         size_t n_configs) {
    for (size_t k = 0; k < n_configs; k++) {
        char scratch[AAS_ID_MAX + 1], why[256];
        scratch_name(o->model, sweep, k, scratch, sizeof(scratch));
        int64_t *vs = NULL;
        size_t nv = 0;
        if (aas_store_model_versions(aas_client_store(c), scratch, &vs, &nv, why, sizeof(why)))
            continue;
        for (size_t i = 0; i < nv; i++)
            aas_store_model_delete(aas_client_store(c), scratch, vs[i], why, sizeof(why));
        free(vs);
    }
}

static int cmd_sweep_run(aas_client_t *c, const aas_cmd_opts_t *o) {
    grid_t g;
    int rc = 0;
    trial_t *tr = NULL;
    if (grid_parse(o->grid, &g)) {
        free(g.buf);
        return AAS_EXIT_USAGE;
    }
    char sweep[AAS_ID_MAX + 1];
    if (o->id) snprintf(sweep, sizeof(sweep), "%s", o->id);
    else if (aas_client_job_id(sweep, sizeof(sweep))) {
        free(g.buf);
        return 1;
    }
    size_t n = g.n_configs;
    if (o->random > 0 && (size_t)o->random < n) n = (size_t)o->random;
    int64_t eta = o->eta, max_epochs = o->epochs;
    /* Rungs: n configurations at the fewest epochs, the best 1/eta at eta
     * times as many, ..., one (or a few) at max_epochs. */
    int rungs = 1;
    if (o->halving)
        for (size_t left = n; left > 1 && max_epochs / (int64_t)pow((double)eta, rungs) >= 1;
             left = (left + (size_t)eta - 1) / (size_t)eta)
            rungs++;
    if (!(tr = calloc(n, sizeof(*tr)))) {
        free(g.buf);
        return 1;
    }
    json_t *mj = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:i, s:I, s:I, s:I}", "model",
                           o->model, "dataset", o->dataset, "grid", o->grid, "halving",
                           o->halving, "eta", (json_int_t)eta, "max_epochs",
                           (json_int_t)max_epochs, "rungs", rungs, "configs", (json_int_t)n,
                           "random", (json_int_t)o->random, "seed", (json_int_t)o->seed);
    record(c, sweep, "meta", mj ? json_dumps(mj, JSON_COMPACT) : NULL);
    json_decref(mj);
    printf("sweep %s: %zu configuration(s)%s, %d rung(s)%s\n", sweep, n,
           n < g.n_configs ? " drawn at random from the grid" : "", rungs,
           o->halving ? " of successive halving" : "");
    fflush(stdout);
    size_t alive = n;
    /* Random search: n configurations of the grid, drawn without
     * replacement by a seeded shuffle (the same seed, the same draw, so a
     * sweep run again draws the same trials). */
    size_t *order = malloc(g.n_configs * sizeof(*order));
    if (!order) {
        rc = 1;
        goto out;
    }
    for (size_t k = 0; k < g.n_configs; k++) order[k] = k;
    uint64_t x = (uint64_t)o->seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    for (size_t k = g.n_configs; n < g.n_configs && k > 1; k--) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        size_t j = (size_t)(x % k), t = order[k - 1];
        order[k - 1] = order[j];
        order[j] = t;
    }
    for (size_t k = 0; k < n; k++) tr[k].config = order[g.n_configs - n + k];
    free(order);
    double epochs_total = 0, train_ms_total = 0;
    for (int r = 0; r < rungs; r++) {
        int64_t e = max_epochs / (int64_t)pow((double)eta, rungs - 1 - r);
        if (e < 1) e = 1;
        for (size_t i = 0; i < alive; i++) {
            trial_t *t = &tr[i];
            t->rung = r;
            t->epochs = e;
            t->status = AAS_STATUS_QUEUED;
            t->error[0] = '\0';
            snprintf(t->job_id, sizeof(t->job_id), "sw-%.40s-r%d-c%zu", sweep, r, t->config);
        }
        if ((rc = run_rung(c, o, sweep, &g, tr, alive))) goto out;
        for (size_t i = 0; i < alive; i++) {
            epochs_total += (double)tr[i].epochs;
            train_ms_total += tr[i].elapsed_ms;
        }
        qsort(tr, alive, sizeof(*tr), trial_cmp);
        if (tr[0].status != AAS_STATUS_SUCCEEDED) {
            fprintf(stderr, "aas-producer: sweep %s: no trial of rung %d succeeded\n", sweep, r);
            rc = AAS_EXIT_JOB_FAILED;
            goto out;
        }
        if (r + 1 < rungs) {
            alive = (alive + (size_t)eta - 1) / (size_t)eta;
            while (alive > 1 && tr[alive - 1].status != AAS_STATUS_SUCCEEDED) alive--;
        }
    }
    int64_t version = 0;
    if ((rc = register_best(c, o, sweep, &g, &tr[0], &version))) goto out;
    char params[512];
    grid_describe(&g, tr[0].config, params, sizeof(params));
    json_t *rj = json_pack("{s:s, s:s, s:I, s:f, s:I, s:f, s:f}", "best", tr[0].job_id,
                           "params", params, "epochs", (json_int_t)tr[0].epochs,
                           "val_accuracy", tr[0].val_acc, "version", (json_int_t)version,
                           "epochs_total", epochs_total, "train_ms_total", train_ms_total);
    record(c, sweep, "result", rj ? json_dumps(rj, JSON_COMPACT) : NULL);
    json_decref(rj);
    printf("best: %s (epochs %" PRId64 ", val_accuracy %.4f) -> %s version %" PRId64 "\n",
           params, tr[0].epochs, tr[0].val_acc, o->model, version);
    printf("compute: %.0f trial-epochs, %.1f s of training\n", epochs_total,
           train_ms_total / 1000.0);
    drop_scratch(c, o, sweep, n);
out:
    free(tr);
    free(g.buf);
    return rc;
}

/* ---- sweep status ---- */

typedef struct {
    int rung;
    long config;
    json_t *o;
} row_t;

static int row_cmp(const void *a, const void *b) {
    const row_t *x = a, *y = b;
    if (x->rung != y->rung) return x->rung - y->rung;
    return (x->config > y->config) - (x->config < y->config);
}

static int cmd_sweep_status(aas_client_t *c, const aas_cmd_opts_t *o, const char *sweep) {
    aas_kv_t *rec = NULL;
    size_t n = 0;
    char why[512];
    aas_err_t err = aas_store_sweep_read(aas_client_store(c), sweep, &rec, &n, why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return err == AAS_ERR_NOT_FOUND ? AAS_EXIT_JOB_FAILED : 1;
    }
    row_t *rows = calloc(n, sizeof(*rows));
    size_t nr = 0;
    const char *meta = NULL, *result = NULL, *registered = NULL;
    for (size_t i = 0; rows && i < n; i++) {
        int rung;
        long config;
        if (!strcmp(rec[i].key, "meta")) meta = rec[i].value;
        else if (!strcmp(rec[i].key, "result")) result = rec[i].value;
        else if (!strcmp(rec[i].key, "registered")) registered = rec[i].value;
        else if (sscanf(rec[i].key, "trial:%d:%ld", &rung, &config) == 2) {
            json_t *j = json_loads(rec[i].value, 0, NULL);
            if (j) rows[nr++] = (row_t){rung, config, j};
        }
    }
    qsort(rows, nr, sizeof(*rows), row_cmp);
    if (!o->csv && meta) printf("sweep %s: %s\n", sweep, meta);
    printf(o->csv ? "rung,config,epochs,status,val_accuracy,val_loss,train_s,params,job\n"
                  : "%-4s %-6s %-6s %-9s %-12s %-9s %-8s %s\n",
           "RUNG", "CONFIG", "EPOCHS", "STATUS", "VAL_ACCURACY", "VAL_LOSS", "TRAIN_S",
           "PARAMS");
    for (size_t i = 0; i < nr; i++) {
        json_t *j = rows[i].o;
        const char *st = json_string_value(json_object_get(j, "status"));
        const char *params = json_string_value(json_object_get(j, "params"));
        const char *job = json_string_value(json_object_get(j, "job"));
        json_int_t ep = json_integer_value(json_object_get(j, "epochs"));
        json_t *acc = json_object_get(j, "val_accuracy"), *loss = json_object_get(j, "val_loss");
        double ms = json_number_value(json_object_get(j, "train_ms"));
        char a[32] = "-", l[32] = "-", s[32] = "-";
        if (acc) snprintf(a, sizeof(a), "%.4f", json_number_value(acc));
        if (loss) snprintf(l, sizeof(l), "%.4f", json_number_value(loss));
        if (acc) snprintf(s, sizeof(s), "%.2f", ms / 1000.0);
        if (o->csv)
            printf("%d,%ld,%lld,%s,%s,%s,%s,\"%s\",%s\n", rows[i].rung, rows[i].config,
                   (long long)ep, st ? st : "", acc ? a : "", loss ? l : "", acc ? s : "",
                   params ? params : "", job ? job : "");
        else
            printf("%-4d %-6ld %-6lld %-9s %-12s %-9s %-8s %s\n", rows[i].rung, rows[i].config,
                   (long long)ep, st ? st : "?", a, l, s, params ? params : "");
        json_decref(j);
    }
    if (!o->csv) {
        if (result) printf("result: %s\n", result);
        else if (registered) printf("registered: version %s\n", registered);
        else printf("result: none yet (running, or its coordinator stopped: run it again "
                    "with --id %s)\n", sweep);
    }
    free(rows);
    aas_store_sweep_free(rec, n);
    return 0;
}

static int cmd_sweep(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    if (!strcmp(args[0], "status")) return cmd_sweep_status(c, o, args[1]);
    aas_cmd_opts_t with = *o;
    with.model = args[1];
    (void)nargs;
    return cmd_sweep_run(c, &with);
}

static int cmd_sweep_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n < 1 || (strcmp(args[0], "run") && strcmp(args[0], "status"))) {
        fprintf(stderr, "aas-producer: sweep run MODEL ... | sweep status ID (see --help)\n");
        return AAS_EXIT_USAGE;
    }
    if (n != 2) {
        fprintf(stderr, "aas-producer: sweep %s takes one %s\n", args[0],
                strcmp(args[0], "run") ? "ID" : "MODEL");
        return AAS_EXIT_USAGE;
    }
    if (!strcmp(args[0], "status")) return aas_cmd_id_ok("sweep id", args[1]) ? 0 : AAS_EXIT_USAGE;
    if (!aas_cmd_id_ok("model name", args[1])) return AAS_EXIT_USAGE;
    if (strlen(args[1]) > 64) {
        fprintf(stderr, "aas-producer: sweep run: model name over 64 characters (its trials' "
                "scratch names add the sweep id)\n");
        return AAS_EXIT_USAGE;
    }
    if (!o->dataset || !o->grid) {
        fprintf(stderr, "aas-producer: sweep run needs --dataset NAME and --grid SPEC\n");
        return AAS_EXIT_USAGE;
    }
    if (o->id && (!aas_cmd_id_ok("sweep id", o->id) || strlen(o->id) > 40)) {
        if (strlen(o->id) > 40) fprintf(stderr, "aas-producer: --id: at most 40 characters\n");
        return AAS_EXIT_USAGE;
    }
    grid_t g;
    int bad = grid_parse(o->grid, &g);
    free(g.buf);
    if (bad) return AAS_EXIT_USAGE;
    for (size_t i = 0; i < o->n_params; i++)
        if (!strcmp(o->params[i].key, "epochs") || !strcmp(o->params[i].key, "dataset")) {
            fprintf(stderr, "aas-producer: sweep run: give --epochs and --dataset, not "
                    "--param %s\n", o->params[i].key);
            return AAS_EXIT_USAGE;
        }
    return 0;
}

static const aas_cmd_help_t sweep_help[] = {
    {"sweep run MODEL --dataset NAME --grid SPEC",
     "train every configuration of SPEC\n"
     "('lr=0.01|0.001;hidden=64|128,64':\n"
     "keys by ';', values by '|') as\n"
     "training jobs; the best by\n"
     "validation accuracy becomes MODEL's\n"
     "next version. --epochs N (10),\n"
     "--halving [--eta N (2)]: successive\n"
     "halving; --random N [--seed S]: N\n"
     "configurations drawn from the grid;\n"
     "--param K=V fixed params;\n"
     "--id ID to name it (run again to\n"
     "resume); docs/training.md#sweeps"},
    {"sweep status ID [--csv]", "every trial of a sweep, and its result"},
    {NULL, NULL}};

const aas_cmd_t aas_cmd_sweep_def = {"sweep", cmd_sweep_check, cmd_sweep, sweep_help, NULL};
