/* trainer_text.c - a text classifier's TRAIN job; see trainer_text.h. */
#include "trainer_text.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "model_text2.h"
#include "source.h"
#include "train_text.h"

struct aas_trainer_text_s {
    aas_text_train_params_t p;
    char **classes;          /* class_names, owned */
    size_t n_classes;
    char *lines;             /* the job's own texts as TSV lines, owned */
    aas_src_t *src;
    int csv;                 /* numeric rows (a CSV set or topic), not texts */
    int64_t line;            /* lines read in this pass, for messages */
};

/* The job's tensors "text" + "labels" as "label<TAB>text" lines. */
static aas_err_t aas_tt_job_lines(aas_trainer_text_t *tt, const aas_job_t *job,
                                  char *errstr, size_t errstr_size) {
    const aas_tensor_t *tx = NULL, *yl = NULL;
    for (size_t i = 0; i < job->n_inputs; i++) {
        const char *n = job->inputs[i].name ? job->inputs[i].name : "";
        if (!strcmp(n, "text")) tx = &job->inputs[i];
        if (!strcmp(n, "labels")) yl = &job->inputs[i];
    }
    if (!tx || tx->dtype != AAS_DTYPE_U8 || tx->rank != 1 || !tx->data || tx->nbytes == 0 ||
        (size_t)tx->shape[0] != tx->nbytes)
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "featurizer=text needs tensor \"text\": U8 [bytes], the texts "
                           "joined by '\\n' (or a data set or topic)");
    const char *b = tx->data;
    int64_t n = 1;
    for (size_t i = 0; i < tx->nbytes; i++) n += b[i] == '\n';
    if (!yl || yl->rank != 1 || yl->shape[0] != n ||
        (yl->dtype != AAS_DTYPE_I32 && yl->dtype != AAS_DTYPE_I64))
        return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                           "featurizer=text needs tensor \"labels\": I32 or I64 [%lld], one "
                           "class index per text", (long long)n);
    size_t cap = tx->nbytes + (size_t)n * 8 + 1;
    if (!(tt->lines = malloc(cap)))
        return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    size_t o = 0, start = 0;
    int64_t max = 0;
    for (int64_t r = 0; r < n; r++) {
        int64_t k;
        if (yl->dtype == AAS_DTYPE_I32) {
            int32_t v;
            memcpy(&v, (const char *)yl->data + r * 4, 4);
            k = v;
        } else {
            memcpy(&k, (const char *)yl->data + r * 8, 8);
        }
        if (k < 0 || (tt->classes && k >= (int64_t)tt->n_classes) || k > 65535)
            return aas_err_set(errstr, errstr_size, AAS_ERR_SHAPE,
                               "label %lld is %lld: not a class index%s", (long long)r,
                               (long long)k, tt->classes ? " of class_names" : "");
        max = k > max ? k : max;
        const char *nl = memchr(b + start, '\n', tx->nbytes - start);
        size_t end = nl ? (size_t)(nl - b) : tx->nbytes;
        o += (size_t)snprintf(tt->lines + o, cap - o, "%lld\t", (long long)k);
        memcpy(tt->lines + o, b + start, end - start);
        o += end - start;
        tt->lines[o++] = '\n';
        start = end + 1;
    }
    if (!tt->classes) {
        /* no names: classes "0".."max", in that order (not strcmp's) */
        if (!(tt->classes = calloc((size_t)max + 1, sizeof(char *))))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        for (int64_t k = 0; k <= max; k++) {
            char num[24];
            snprintf(num, sizeof(num), "%lld", (long long)k);
            if (!(tt->classes[k] = strdup(num)))
                return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
            tt->n_classes++;
        }
        return aas_src_open_memory(tt->lines, o, AAS_SRC_TSV, &tt->src, errstr, errstr_size);
    }
    /* named: the lines carry the names, so the reader needs no mapping */
    char *named = malloc(o + (size_t)n * 260 + 1);
    if (!named) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    size_t q = 0;
    for (size_t i = 0; i < o;) {
        char *tab = memchr(tt->lines + i, '\t', o - i);
        const char *nl = memchr(tab, '\n', o - (size_t)(tab - tt->lines));
        const char *name = tt->classes[strtoll(tt->lines + i, NULL, 10)];
        size_t nn = strlen(name), tn = (size_t)(nl - tab);
        memcpy(named + q, name, nn);
        memcpy(named + q + nn, tab, tn + 1);
        q += nn + tn + 1;
        i = (size_t)(nl - tt->lines) + 1;
    }
    free(tt->lines);
    tt->lines = named;
    return aas_src_open_memory(tt->lines, q, AAS_SRC_TSV, &tt->src, errstr, errstr_size);
}

static aas_err_t aas_tt_class_names(aas_trainer_text_t *tt, const char *names, char *errstr,
                                    size_t errstr_size) {
    size_t n = 1;
    for (const char *s = names; *s; s++) n += *s == ',';
    if (n > 65536 || !(tt->classes = calloc(n, sizeof(char *))))
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "class_names: too many");
    for (const char *s = names;; s++) {
        size_t k = strcspn(s, ",");
        if (k == 0 || k > 256 || memchr(s, '\t', k))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "class_names: name %zu is empty, longer than 256 bytes or "
                               "has a TAB", tt->n_classes + 1);
        if (!(tt->classes[tt->n_classes] = strndup(s, k)))
            return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        tt->n_classes++;
        s += k;
        if (!*s) break;
    }
    return AAS_ERR_OK;
}

aas_err_t aas_trainer_text_new(const aas_conf_t *conf, aas_store_t *st,
                               const aas_job_t *job, int64_t max_rows,
                               aas_trainer_text_t **out, char *errstr, size_t errstr_size) {
    aas_trainer_text_t *tt = calloc(1, sizeof(*tt));
    if (!tt) return aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
    aas_text_train_params_default(&tt->p);
    tt->p.max_rows = max_rows;
    aas_err_t err = AAS_ERR_OK;
    const char *dataset = NULL, *names = NULL;
    int topic = 0, epochs_given = 0;
    for (size_t i = 0; !err && i < job->n_params; i++) {
        epochs_given |= !strcmp(job->params[i].key, "epochs");
        const char *k = job->params[i].key, *v = job->params[i].value;
        /* parallelism and dp.*: the trainer's (trainer.c, trainer_dp.h) */
        if (!strcmp(k, "parallelism") || !strncmp(k, "dp.", 3)) continue;
        if (!strcmp(k, "featurizer") || !strncmp(k, "data_", 5)) {
            topic |= !strcmp(k, "data_topic");
            continue;
        }
        if (!strcmp(k, "dataset")) dataset = v;
        else if (!strcmp(k, "class_names")) names = v;
        else err = aas_text_train_params_set(&tt->p, k, v, errstr, errstr_size);
        if (err == AAS_ERR_NOT_FOUND)
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "unknown parameter '%s' for a text model (docs/text.md)", k);
    }
    if (!err && names) err = aas_tt_class_names(tt, names, errstr, errstr_size);
    if (!err && (!!dataset + topic + (job->n_inputs > 0)) > 1)
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "a training job takes its data from one place: its tensors, a "
                          "data set or a topic");
    if (!err && dataset) {
        err = aas_src_open_dataset(st, dataset, &tt->src, errstr, errstr_size);
    } else if (!err && topic) {
        aas_src_kafka_t spec;
        int32_t parts[256];
        int present = 0;
        err = aas_src_kafka_from_params(job, &spec, parts, 256, &present, errstr, errstr_size);
        spec.stall_ms = aas_conf_get_int(conf, "train.source.stall.ms");
        if (!err) err = aas_src_open_kafka(conf, &spec, &tt->src, errstr, errstr_size);
    } else if (!err) {
        err = aas_tt_job_lines(tt, job, errstr, errstr_size);
    }
    if (!err) {
        aas_src_info_t info;
        aas_src_info(tt->src, &info);
        tt->csv = info.format == AAS_SRC_CSV;
        if (tt->csv && aas_job_param(job, "featurizer"))
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "%s is CSV: a text model (featurizer=text) trains on TSV "
                              "(label<TAB>text)", info.name);
    }
    if (!err && tt->csv) {
        /* numeric rows: the MLP of training.md, its defaults */
        tt->p.head = AAS_TEXT2_HEAD_MLP;
        if (!epochs_given) tt->p.epochs = tt->p.mlp.epochs;
    }
    if (!err && tt->classes) {
        tt->p.classes = (const char *const *)tt->classes;
        tt->p.n_classes = tt->n_classes;
    }
    if (err) {
        aas_trainer_text_destroy(tt);
        return err;
    }
    *out = tt;
    return AAS_ERR_OK;
}

static aas_err_t aas_tt_rewind(void *o, uint64_t seed, char *errstr, size_t errstr_size) {
    aas_trainer_text_t *tt = o;
    tt->line = 0;
    return aas_src_rewind(tt->src, seed, errstr, errstr_size);
}

static aas_err_t aas_tt_next(void *o, const char **text, size_t *text_len,
                             const char **label, size_t *label_len, int *eof, char *errstr,
                             size_t errstr_size) {
    aas_trainer_text_t *tt = o;
    for (;;) {
        const char *line;
        size_t n;
        aas_err_t err = aas_src_next(tt->src, &line, &n, eof, errstr, errstr_size);
        /* Redis or Kafka away: the source gave up after its own wait (a
         * topic: train.source.stall.ms); try again a few times before the
         * job fails. */
        for (int again = 1; err && aas_err_is_retriable(err) && again <= 5; again++) {
            AAS_LOG(AAS_LOG_WARN, "trainer", "reading training data: %s (try %d of 5)",
                    errstr, again);
            sleep(1);
            err = aas_src_next(tt->src, &line, &n, eof, errstr, errstr_size);
        }
        if (err || *eof) return err;
        tt->line++;
        if (n == 0 || line[0] == '#') continue; /* blank lines, comments */
        const char *tab = tt->csv ? NULL : memchr(line, '\t', n);
        for (size_t k = n; tt->csv && k > 0 && !tab; k--) /* the last comma */
            if (line[k - 1] == ',') tab = line + k - 1;
        if (!tab) {
            aas_src_info_t info;
            aas_src_info(tt->src, &info);
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "line %lld of %s has no %s", (long long)tt->line, info.name,
                               tt->csv ? "comma: want values, then the label"
                                       : "TAB between label and text");
        }
        if (tt->csv) { /* values, label last */
            *text = line;
            *text_len = (size_t)(tab - line);
            *label = tab + 1;
            *label_len = n - *text_len - 1;
            while (*label_len > 0 && (*label)[0] == ' ') (*label)++, (*label_len)--;
            while (*label_len > 0 && (*label)[*label_len - 1] == ' ') (*label_len)--;
            return AAS_ERR_OK;
        }
        *label = line;
        *label_len = (size_t)(tab - line);
        *text = tab + 1;
        *text_len = n - *label_len - 1;
        return AAS_ERR_OK;
    }
}

/* CSV rows: the values per row (the first row says, every other must
 * agree). */
static aas_err_t aas_tt_dense_dim(aas_trainer_text_t *tt, char *errstr, size_t errstr_size) {
    if (!tt->csv) return AAS_ERR_OK;
    const char *text, *label;
    size_t tl, ll;
    int eof = 0;
    aas_err_t err = aas_tt_rewind(tt, 0, errstr, errstr_size);
    if (!err) err = aas_tt_next(tt, &text, &tl, &label, &ll, &eof, errstr, errstr_size);
    if (err) return err;
    if (eof) return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "no rows");
    tt->p.dense_dim = 1;
    for (size_t i = 0; i < tl; i++) tt->p.dense_dim += text[i] == ',';
    return AAS_ERR_OK;
}

aas_err_t aas_trainer_text_run(aas_trainer_text_t *tt, aas_train_progress_cb *cb,
                               void *opaque, aas_train_result_t *res, char *errstr,
                               size_t errstr_size) {
    aas_text_reader_t r = {aas_tt_rewind, aas_tt_next, tt};
    aas_err_t err = aas_tt_dense_dim(tt, errstr, errstr_size);
    return err ? err : aas_text_train(&tt->p, &r, cb, opaque, res, errstr, errstr_size);
}

aas_err_t aas_trainer_text_dp(aas_trainer_text_t *tt, int n_shards, int only,
                              aas_train_dp_engine_t **out, char *errstr, size_t errstr_size) {
    aas_text_reader_t r = {aas_tt_rewind, aas_tt_next, tt};
    aas_err_t err = aas_tt_dense_dim(tt, errstr, errstr_size);
    return err ? err : aas_text_dp_new(&tt->p, &r, n_shards, only, out, errstr, errstr_size);
}

int32_t aas_trainer_text_epochs(const aas_trainer_text_t *tt) { return tt->p.epochs; }

const aas_train_params_t *aas_trainer_text_mlp_params(const aas_trainer_text_t *tt) {
    return &tt->p.mlp;
}

int aas_trainer_text_is_rows(const aas_trainer_text_t *tt) { return tt->csv; }

char *aas_trainer_text_describe(const aas_trainer_text_t *tt) {
    const aas_text_train_params_t *p = &tt->p;
    if (tt->csv) return NULL;
    char *s = malloc(512);
    if (s)
        snprintf(s, 512,
                 "{\"featurizer\":%d,\"text_dim\":%lld,\"char_ngrams\":\"%d-%d\","
                 "\"word_ngrams\":%d,\"sublinear_tf\":%d,\"idf\":%d,\"head\":\"%s\"}",
                 AAS_TEXTFEAT_VERSION, (long long)p->feat.dim, (int)p->feat.char_min,
                 (int)p->feat.char_max, (int)p->feat.word_max, p->feat.sublinear_tf, p->idf,
                 p->head == AAS_TEXT2_HEAD_MLP ? "mlp" : "linear");
    return s;
}

void aas_trainer_text_destroy(aas_trainer_text_t *tt) {
    if (!tt) return;
    aas_src_destroy(tt->src);
    for (size_t i = 0; i < tt->n_classes; i++) free(tt->classes[i]);
    free(tt->classes);
    free(tt->lines);
    free(tt);
}
