/*
 * train_params.c - training hyper-parameters: defaults, the key table that
 * validates a job's params map, and the cross-parameter check.
 *
 * One table (aas_train_keys) drives aas_train_params_set() and
 * aas_train_param_info() (the reference in docs/training.md).  Values are
 * parsed strictly: the whole string, in range, finite.  It does not train.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

#define AAS_TRAIN_LR_ADAM 0.001
#define AAS_TRAIN_LR_SGD 0.01
#define AAS_TRAIN_MAX_SCALE 1e6
#define AAS_TRAIN_MAX_LR 10.0

void aas_train_params_default(aas_train_params_t *p) {
    memset(p, 0, sizeof(*p));
    p->n_hidden = 1;
    p->hidden[0] = 64;
    p->activation = AAS_ACT_RELU;
    p->epochs = 20;
    p->batch_size = 32;
    p->learning_rate = 0; /* by optimiser */
    p->optimizer = AAS_TRAIN_ADAM;
    p->momentum = 0.9;
    p->beta1 = 0.9;
    p->beta2 = 0.999;
    p->epsilon = 1e-8;
    p->weight_decay = 0;
    p->init = AAS_TRAIN_INIT_AUTO;
    p->seed = 1;
    p->validation_fraction = 0.1;
    p->scale = 1.0;
    p->threads = 0;
}

double aas_train_params_learning_rate(const aas_train_params_t *p) {
    if (p->learning_rate > 0) return p->learning_rate;
    return p->optimizer == AAS_TRAIN_SGD ? AAS_TRAIN_LR_SGD : AAS_TRAIN_LR_ADAM;
}

/* ---- strict parsers ---- */

static int aas_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *v) {
    char *end;
    if (!*s || *s == ' ' || *s == '+') return -1;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}

/* lo_open/hi_open: exclusive bounds. */
static int aas_parse_f64(const char *s, double lo, int lo_open, double hi,
                         int hi_open, double *v) {
    char *end;
    if (!*s || *s == ' ') return -1;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !isfinite(x)) return -1;
    if (lo_open ? !(x > lo) : !(x >= lo)) return -1;
    if (hi_open ? !(x < hi) : !(x <= hi)) return -1;
    *v = x;
    return 0;
}

/* ---- the key table ---- */

typedef int (*aas_train_setter)(aas_train_params_t *p, const char *v);

static int aas_set_hidden(aas_train_params_t *p, const char *v) {
    int64_t h[AAS_TRAIN_MAX_HIDDEN];
    size_t n = 0;
    if (strcmp(v, "") != 0 && strcmp(v, "none") != 0) {
        const char *s = v;
        for (;;) {
            const char *comma = strchr(s, ',');
            size_t len = comma ? (size_t)(comma - s) : strlen(s);
            char num[24];
            if (n == AAS_TRAIN_MAX_HIDDEN || len == 0 || len >= sizeof(num))
                return -1;
            memcpy(num, s, len);
            num[len] = '\0';
            if (aas_parse_i64(num, 1, AAS_MLP_MAX_DIM, &h[n])) return -1;
            n++;
            if (!comma) break;
            s = comma + 1;
        }
    }
    memcpy(p->hidden, h, n * sizeof(h[0]));
    p->n_hidden = n;
    return 0;
}

static int aas_set_activation(aas_train_params_t *p, const char *v) {
    if (!strcmp(v, "relu")) p->activation = AAS_ACT_RELU;
    else if (!strcmp(v, "tanh")) p->activation = AAS_ACT_TANH;
    else if (!strcmp(v, "sigmoid")) p->activation = AAS_ACT_SIGMOID;
    else return -1;
    return 0;
}

static int aas_set_optimizer(aas_train_params_t *p, const char *v) {
    if (!strcmp(v, "adam")) p->optimizer = AAS_TRAIN_ADAM;
    else if (!strcmp(v, "sgd")) p->optimizer = AAS_TRAIN_SGD;
    else return -1;
    return 0;
}

static int aas_set_init(aas_train_params_t *p, const char *v) {
    if (!strcmp(v, "auto")) p->init = AAS_TRAIN_INIT_AUTO;
    else if (!strcmp(v, "he")) p->init = AAS_TRAIN_INIT_HE;
    else if (!strcmp(v, "xavier")) p->init = AAS_TRAIN_INIT_XAVIER;
    else return -1;
    return 0;
}

static int aas_set_epochs(aas_train_params_t *p, const char *v) {
    int64_t x;
    if (aas_parse_i64(v, 1, AAS_TRAIN_MAX_EPOCHS, &x)) return -1;
    p->epochs = (int32_t)x;
    return 0;
}

static int aas_set_batch_size(aas_train_params_t *p, const char *v) {
    int64_t x;
    if (aas_parse_i64(v, 1, AAS_TRAIN_MAX_BATCH, &x)) return -1;
    p->batch_size = (int32_t)x;
    return 0;
}

static int aas_set_threads(aas_train_params_t *p, const char *v) {
    int64_t x;
    if (aas_parse_i64(v, 0, AAS_TRAIN_MAX_THREADS, &x)) return -1;
    p->threads = (int)x;
    return 0;
}

static int aas_set_seed(aas_train_params_t *p, const char *v) {
    char *end;
    if (!*v || *v < '0' || *v > '9') return -1; /* no sign, no space */
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end) return -1;
    p->seed = x;
    return 0;
}

static int aas_set_learning_rate(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 1, AAS_TRAIN_MAX_LR, 0, &p->learning_rate);
}
static int aas_set_momentum(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 0, 1, 1, &p->momentum);
}
static int aas_set_beta1(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 0, 1, 1, &p->beta1);
}
static int aas_set_beta2(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 0, 1, 1, &p->beta2);
}
static int aas_set_epsilon(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 1, 1, 0, &p->epsilon);
}
static int aas_set_weight_decay(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 0, 1, 0, &p->weight_decay);
}
static int aas_set_validation_fraction(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 0, 0.5, 0, &p->validation_fraction);
}
static int aas_set_scale(aas_train_params_t *p, const char *v) {
    return aas_parse_f64(v, 0, 1, AAS_TRAIN_MAX_SCALE, 0, &p->scale);
}

#define AAS_STR_(x) #x
#define AAS_STR(x) AAS_STR_(x)

static const struct {
    aas_train_param_info_t info;
    aas_train_setter set;
} aas_train_keys[] = {
    {{"hidden", "64", "comma-separated widths, each 1..1048576, at most 63; "
                      "\"\" or \"none\" for no hidden layer",
      "hidden layer widths, input side first"},
     aas_set_hidden},
    {{"activation", "relu", "relu | tanh | sigmoid",
      "activation of every hidden layer"},
     aas_set_activation},
    {{"epochs", "20", "1..100000", "passes over the training rows"},
     aas_set_epochs},
    {{"batch_size", "32", "1..65536",
      "rows per mini-batch (clamped to the training rows)"},
     aas_set_batch_size},
    {{"learning_rate", "0.001 (adam), 0.01 (sgd)", "(0, 10]", "step size"},
     aas_set_learning_rate},
    {{"optimizer", "adam", "adam | sgd",
      "adam with bias correction, or SGD with momentum"},
     aas_set_optimizer},
    {{"momentum", "0.9", "[0, 1)", "SGD momentum (0: plain SGD)"},
     aas_set_momentum},
    {{"beta1", "0.9", "[0, 1)", "Adam first-moment decay"}, aas_set_beta1},
    {{"beta2", "0.999", "[0, 1)", "Adam second-moment decay"}, aas_set_beta2},
    {{"epsilon", "1e-8", "(0, 1]", "Adam denominator term"}, aas_set_epsilon},
    {{"weight_decay", "0", "[0, 1]",
      "L2 coefficient: weight_decay * w is added to every weight gradient "
      "(not to biases)"},
     aas_set_weight_decay},
    {{"init", "auto", "auto | he | xavier",
      "hidden-layer weight init; auto: he for relu, xavier otherwise"},
     aas_set_init},
    {{"seed", "1", "0..18446744073709551615",
      "seeds the weight init, the split and every shuffle"},
     aas_set_seed},
    {{"validation_fraction", "0.1", "[0, 0.5]",
      "share of the rows held out for validation (after a seeded shuffle)"},
     aas_set_validation_fraction},
    {{"scale", "1", "(0, 1000000]",
      "inputs are multiplied by it during training; folded into the first "
      "layer of the exported model, which takes raw inputs"},
     aas_set_scale},
    {{"threads", "0", "0.." AAS_STR(AAS_TRAIN_MAX_THREADS),
      "OpenMP threads for oneDNN during the job; 0 leaves the default"},
     aas_set_threads},
};

#define AAS_TRAIN_N_KEYS (sizeof(aas_train_keys) / sizeof(aas_train_keys[0]))

const aas_train_param_info_t *aas_train_param_info(size_t i) {
    return i < AAS_TRAIN_N_KEYS ? &aas_train_keys[i].info : NULL;
}

aas_err_t aas_train_params_set(aas_train_params_t *p, const char *key,
                               const char *value, char *errstr,
                               size_t errstr_size) {
    if (!p || !key || !value)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                           "training parameter: NULL argument");
    for (size_t i = 0; i < AAS_TRAIN_N_KEYS; i++) {
        if (strcmp(key, aas_train_keys[i].info.key) != 0) continue;
        aas_train_params_t tmp = *p; /* p unchanged on failure */
        if (aas_train_keys[i].set(&tmp, value))
            return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                               "training parameter %s: bad value \"%.64s\" "
                               "(want %s)",
                               key, value, aas_train_keys[i].info.range_text);
        *p = tmp;
        return AAS_ERR_OK;
    }
    char known[512]; /* the table's keys, in its order */
    size_t off = 0;
    known[0] = '\0';
    for (size_t i = 0; i < AAS_TRAIN_N_KEYS && off < sizeof(known); i++)
        off += (size_t)snprintf(known + off, sizeof(known) - off, "%s%s",
                                i ? ", " : "", aas_train_keys[i].info.key);
    return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                       "unknown training parameter \"%.64s\" (known: %s)", key,
                       known);
}

#define AAS_BAD(...) aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, __VA_ARGS__)

aas_err_t aas_train_params_check(const aas_train_params_t *p, char *errstr,
                                 size_t errstr_size) {
    if (!p) return AAS_BAD("training parameters: NULL");
    if (p->n_hidden > AAS_TRAIN_MAX_HIDDEN)
        return AAS_BAD("training parameter hidden: %zu layers, at most %d",
                       p->n_hidden, AAS_TRAIN_MAX_HIDDEN);
    for (size_t i = 0; i < p->n_hidden; i++)
        if (p->hidden[i] < 1 || p->hidden[i] > AAS_MLP_MAX_DIM)
            return AAS_BAD("training parameter hidden: layer %zu width %lld, "
                           "must be 1..%d",
                           i, (long long)p->hidden[i], AAS_MLP_MAX_DIM);
    if (p->activation != AAS_ACT_RELU && p->activation != AAS_ACT_TANH &&
        p->activation != AAS_ACT_SIGMOID)
        return AAS_BAD("training parameter activation: must be relu, tanh or "
                       "sigmoid");
    if (p->epochs < 1 || p->epochs > AAS_TRAIN_MAX_EPOCHS)
        return AAS_BAD("training parameter epochs: %d, must be 1..%d",
                       (int)p->epochs, AAS_TRAIN_MAX_EPOCHS);
    if (p->batch_size < 1 || p->batch_size > AAS_TRAIN_MAX_BATCH)
        return AAS_BAD("training parameter batch_size: %d, must be 1..%d",
                       (int)p->batch_size, AAS_TRAIN_MAX_BATCH);
    if (!(p->learning_rate >= 0 && p->learning_rate <= AAS_TRAIN_MAX_LR))
        return AAS_BAD("training parameter learning_rate: must be in (0, %g] "
                       "(0 picks the optimizer's default)",
                       AAS_TRAIN_MAX_LR);
    if (p->optimizer != AAS_TRAIN_ADAM && p->optimizer != AAS_TRAIN_SGD)
        return AAS_BAD("training parameter optimizer: must be adam or sgd");
    if (!(p->momentum >= 0 && p->momentum < 1))
        return AAS_BAD("training parameter momentum: must be in [0, 1)");
    if (!(p->beta1 >= 0 && p->beta1 < 1))
        return AAS_BAD("training parameter beta1: must be in [0, 1)");
    if (!(p->beta2 >= 0 && p->beta2 < 1))
        return AAS_BAD("training parameter beta2: must be in [0, 1)");
    if (!(p->epsilon > 0 && p->epsilon <= 1))
        return AAS_BAD("training parameter epsilon: must be in (0, 1]");
    if (!(p->weight_decay >= 0 && p->weight_decay <= 1))
        return AAS_BAD("training parameter weight_decay: must be in [0, 1]");
    if (p->init != AAS_TRAIN_INIT_AUTO && p->init != AAS_TRAIN_INIT_HE &&
        p->init != AAS_TRAIN_INIT_XAVIER)
        return AAS_BAD("training parameter init: must be auto, he or xavier");
    if (!(p->validation_fraction >= 0 && p->validation_fraction <= 0.5))
        return AAS_BAD("training parameter validation_fraction: must be in "
                       "[0, 0.5]");
    if (!(p->scale > 0 && p->scale <= AAS_TRAIN_MAX_SCALE))
        return AAS_BAD("training parameter scale: must be in (0, %g]",
                       AAS_TRAIN_MAX_SCALE);
    if (p->threads < 0 || p->threads > AAS_TRAIN_MAX_THREADS)
        return AAS_BAD("training parameter threads: %d, must be 0..%d",
                       p->threads, AAS_TRAIN_MAX_THREADS);
    if (p->n_labels && !p->labels)
        return AAS_BAD("training labels: %zu names but a NULL array",
                       p->n_labels);
    return AAS_ERR_OK;
}
