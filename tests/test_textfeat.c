/* test_textfeat.c - featurizer version 2 (docs/text.md): the vectors of an
 * independent Python implementation of the specification
 * (tools/textfeat_reference.py -> tests/data/textfeat-vectors.json),
 * Unicode normalisation, scripts, errors, and the AASTXT2 model and its
 * training on a small set. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "model_text2.h"
#include "textfeat.h"
#include "train_text.h"

static aas_textfeat_t *tf_new(int64_t dim, int word_max) {
    aas_textfeat_conf_t c;
    aas_textfeat_conf_default(&c);
    c.dim = dim;
    c.word_max = word_max;
    aas_textfeat_t *f = NULL;
    char why[256];
    assert_int_equal(aas_textfeat_new(&c, NULL, &f, why, sizeof(why)), AAS_ERR_OK);
    return f;
}

/* Features as a dense vector (for comparisons). */
static float *dense(aas_textfeat_t *f, const char *s, size_t len, int raw, int64_t dim) {
    const uint32_t *idx;
    const float *val;
    size_t nnz;
    char why[256];
    aas_err_t err = aas_textfeat_run(f, s, len, raw, &idx, &val, &nnz, why, sizeof(why));
    if (err) fail_msg("featurize '%s': %s", s, why);
    float *d = calloc((size_t)dim, sizeof(float));
    assert_non_null(d);
    for (size_t k = 0; k < nnz; k++) {
        assert_true(idx[k] < (uint32_t)dim);
        assert_true(d[idx[k]] == 0.0f); /* distinct buckets */
        d[idx[k]] = val[k];
    }
    return d;
}

static void matches_the_python_reference(void **state) {
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(AAS_SOURCE_DIR "/tests/data/textfeat-vectors.json", 0, &jerr);
    if (!root) fail_msg("vectors: %s", jerr.text);
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(root, "hashes"), key, v) {
        assert_int_equal(aas_textfeat_hash(key[0], key + 2, strlen(key + 2)),
                         (uint32_t)json_integer_value(v));
    }
    json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) >= 30);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        int64_t dim = json_integer_value(json_object_get(c, "dim"));
        aas_textfeat_t *f = tf_new(dim, 2);
        for (int raw = 1; raw >= 0; raw--) {
            float *d = dense(f, text, strlen(text), raw, dim);
            json_t *want = json_object_get(c, raw ? "raw" : "tf");
            size_t n = 0, k;
            json_t *e;
            json_array_foreach(want, k, e) {
                int64_t b = json_integer_value(json_array_get(e, 0));
                double x = json_number_value(json_array_get(e, 1));
                if (fabs(d[b] - x) > 1e-6)
                    fail_msg("'%s' dim %lld %s: bucket %lld is %g, reference %g", text,
                             (long long)dim, raw ? "raw" : "tf", (long long)b, d[b], x);
                n++;
            }
            size_t nz = 0;
            for (int64_t b = 0; b < dim; b++) nz += d[b] != 0;
            if (nz != n) fail_msg("'%s': %zu features, reference %zu", text, nz, n);
            free(d);
        }
        aas_textfeat_destroy(f);
    }
    json_decref(root);
}

static void same(const char *a, const char *b) {
    int64_t dim = 1 << 20;
    aas_textfeat_t *f = tf_new(dim, 2);
    float *x = dense(f, a, strlen(a), 1, dim), *y = dense(f, b, strlen(b), 1, dim);
    if (memcmp(x, y, (size_t)dim * sizeof(float))) fail_msg("'%s' and '%s' differ", a, b);
    free(x);
    free(y);
    aas_textfeat_destroy(f);
}

static void normalisation_folds_case_width_and_forms(void **state) {
    (void)state;
    same("ＡＢＣ１２３", "abc123");              /* full width (NFKC) */
    same("ﬁ", "fi");                            /* ligature */
    same("Straße", "STRASSE");                  /* full case folding */
    same("e\xcc\x81t\xc3\xa9", "\xc3\xa9t\xc3\xa9"); /* decomposed = composed */
    same("ÉTÉ", "été");
    same("soft\xc2\xadhyphen", "softhyphen");    /* default ignorable dropped */
    same("  a \t\n b  ", "a b");                 /* whitespace runs, trimmed */
}

static void unspaced_scripts_have_no_words(void **state) {
    (void)state;
    int64_t dim = 1 << 20;
    aas_textfeat_t *w = tf_new(dim, 2), *nw = tf_new(dim, 0);
    const char *zh = "这是一个正面的评论";
    float *a = dense(w, zh, strlen(zh), 1, dim), *b = dense(nw, zh, strlen(zh), 1, dim);
    assert_memory_equal(a, b, (size_t)dim * sizeof(float)); /* chars only */
    float total = 0;
    for (int64_t k = 0; k < dim; k++) total += fabsf(a[k]);
    /* 9 chars + 2 pads: 9 unigrams, 10 bigrams, 9 trigrams (collisions
     * at 2^20 buckets would only lower the sum) */
    assert_true(total <= 28.0f && total >= 26.0f);
    free(a);
    free(b);
    const char *en = "good product";
    a = dense(w, en, strlen(en), 1, dim);
    b = dense(nw, en, strlen(en), 1, dim);
    assert_memory_not_equal(a, b, (size_t)dim * sizeof(float)); /* words count */
    free(a);
    free(b);
    aas_textfeat_destroy(w);
    aas_textfeat_destroy(nw);
}

static void bad_and_featureless_texts_are_refused(void **state) {
    (void)state;
    aas_textfeat_t *f = tf_new(4096, 2);
    const uint32_t *idx;
    const float *val;
    size_t nnz;
    char why[256];
    struct { const char *s; size_t n; const char *msg; } bad[] = {
        {"ok \xff here", 9, "not valid UTF-8 at byte 3"},
        {"abc\xe4\xb8", 5, "not valid UTF-8 at byte 3"},     /* truncated */
        {"\xed\xa0\x80", 3, "not valid UTF-8 at byte 0"},    /* a surrogate */
        {"ab\0cd", 5, "NUL at byte 2"},
        {"", 0, "no letter, digit or symbol"},
        {"   \t\n ", 6, "no letter, digit or symbol"},
        {"!?.,;:", 6, "no letter, digit or symbol"},
        {"，。！？", 12, "no letter, digit or symbol"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(aas_textfeat_run(f, bad[i].s, bad[i].n, 0, &idx, &val, &nnz, why,
                                          sizeof(why)), AAS_ERR_INVAL);
        if (!strstr(why, bad[i].msg)) fail_msg("case %zu: '%s'", i, why);
    }
    /* a symbol alone is content: emoji carry sentiment */
    assert_int_equal(aas_textfeat_run(f, "\xf0\x9f\x91\x8d", 4, 0, &idx, &val, &nnz, why,
                                      sizeof(why)), AAS_ERR_OK);
    double s = 0;
    for (size_t k = 0; k < nnz; k++) s += (double)val[k] * val[k];
    assert_true(fabs(s - 1.0) < 1e-5);
    aas_textfeat_destroy(f);
}

static void conf_is_checked(void **state) {
    (void)state;
    aas_textfeat_conf_t c;
    char why[256];
    aas_textfeat_conf_default(&c);
    assert_int_equal(c.dim, 1 << 18);
    assert_int_equal(aas_textfeat_conf_check(&c, why, sizeof(why)), AAS_ERR_OK);
    c.dim = 1000;
    assert_int_equal(aas_textfeat_conf_check(&c, why, sizeof(why)), AAS_ERR_INVAL);
    aas_textfeat_conf_default(&c);
    c.char_min = 3;
    c.char_max = 2;
    assert_int_equal(aas_textfeat_conf_check(&c, why, sizeof(why)), AAS_ERR_INVAL);
    c.char_min = c.char_max = 0;
    c.word_max = 0;
    assert_int_equal(aas_textfeat_conf_check(&c, why, sizeof(why)), AAS_ERR_INVAL);
}

/* ---- training and the AASTXT2 model ---- */

typedef struct {
    const char *const *rows; /* "label\ttext" */
    size_t n, pos;
} mem_t;

static aas_err_t mem_rewind(void *o, uint64_t seed, char *e, size_t es) {
    (void)seed, (void)e, (void)es;
    ((mem_t *)o)->pos = 0;
    return AAS_ERR_OK;
}

static aas_err_t mem_next(void *o, const char **t, size_t *tl, const char **l, size_t *ll,
                          int *eof, char *e, size_t es) {
    (void)e, (void)es;
    mem_t *m = o;
    if (m->pos == m->n) {
        *eof = 1;
        return AAS_ERR_OK;
    }
    const char *r = m->rows[m->pos++], *tab = strchr(r, '\t');
    *l = r;
    *ll = (size_t)(tab - r);
    *t = tab + 1;
    *tl = strlen(tab + 1);
    return AAS_ERR_OK;
}

static const char *const reviews[] = {
    "负面\t质量很差，非常失望", "正面\t质量很好，非常满意", "负面\t太差了，不推荐",
    "正面\t很好，推荐购买", "负面\t失望，退货了", "正面\t满意，会再买",
    "负面\t包装破损，很差", "正面\t包装完好，很好", "负面\t不好用，失望",
    "正面\t好用，满意", "负面\t差评，质量差", "正面\t好评，质量好",
};

static aas_model_t *train(aas_text_train_params_t *p, aas_train_result_t *res) {
    mem_t m = {reviews, sizeof(reviews) / sizeof(*reviews), 0};
    aas_text_reader_t r = {mem_rewind, mem_next, &m};
    char why[512];
    if (aas_text_train(p, &r, NULL, NULL, res, why, sizeof(why))) fail_msg("train: %s", why);
    aas_model_t *model = NULL;
    if (aas_model_load(res->blob, res->blob_len, &model, why, sizeof(why)))
        fail_msg("load: %s", why);
    return model;
}

static const char *predict(aas_model_t *m, const char *text) {
    float out[2];
    size_t len = strlen(text);
    char why[256];
    if (aas_model_infer_text(m, &text, &len, 1, out, why, sizeof(why)))
        fail_msg("infer: %s", why);
    assert_true(fabsf(out[0] + out[1] - 1.0f) < 1e-5f);
    return aas_model_label_name(m, out[1] > out[0]);
}

static void linear_and_mlp_heads_learn_chinese_reviews(void **state) {
    (void)state;
    for (int head = AAS_TEXT2_HEAD_LINEAR; head <= AAS_TEXT2_HEAD_MLP; head++) {
        aas_text_train_params_t p;
        aas_text_train_params_default(&p);
        p.validation_fraction = 0;
        p.head = head;
        p.feat.dim = 1 << 12;
        p.epochs = head == AAS_TEXT2_HEAD_MLP ? 60 : 20;
        if (head == AAS_TEXT2_HEAD_MLP) p.learning_rate = p.mlp.learning_rate = 0.01;
        aas_train_result_t res;
        aas_model_t *m = train(&p, &res);
        assert_string_equal(aas_model_kind(m), "AASTXT2");
        assert_int_equal(aas_model_output_dim(m), 2);
        /* classes in strcmp order: 正 (E6 AD A3) after 负 (E8 B4 9F)? no: before */
        assert_string_equal(aas_model_label_name(m, 0), "正面");
        assert_string_equal(aas_model_label_name(m, 1), "负面");
        assert_string_equal(predict(m, "质量很好，满意"), "正面");
        assert_string_equal(predict(m, "质量很差，失望"), "负面");
        assert_int_equal(res.n_train, 12);
        assert_int_equal(res.epochs_done, p.epochs);
        /* a featureless text fails, it gets no confident label */
        const char *t = "！！！";
        size_t len = strlen(t);
        float out[2];
        char why[256];
        assert_int_equal(aas_model_infer_text(m, &t, &len, 1, out, why, sizeof(why)),
                         AAS_ERR_INVAL);
        assert_non_null(strstr(why, "no letter, digit or symbol"));
        aas_model_destroy(m);
        aas_train_result_free(&res);
    }
}

static void training_refuses_bad_data(void **state) {
    (void)state;
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.validation_fraction = 0;
    char why[512];
    aas_train_result_t res;
    const char *one_class[] = {"a\tgood", "a\tfine"};
    mem_t m = {one_class, 2, 0};
    aas_text_reader_t r = {mem_rewind, mem_next, &m};
    assert_int_equal(aas_text_train(&p, &r, NULL, NULL, &res, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "1 class"));
    const char *bad_utf8[] = {"a\tgood", "b\tba\xff" "d"};
    m = (mem_t){bad_utf8, 2, 0};
    assert_int_equal(aas_text_train(&p, &r, NULL, NULL, &res, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "row 2: text is not valid UTF-8 at byte 2"));
    const char *fixed[] = {"yes", "no"};
    p.classes = fixed;
    p.n_classes = 2;
    const char *unknown[] = {"yes\tgood", "maybe\tso so"};
    m = (mem_t){unknown, 2, 0};
    assert_int_equal(aas_text_train(&p, &r, NULL, NULL, &res, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "label 'maybe' is not one of the classes"));
    assert_int_equal(aas_text_train_params_set(&p, "char_ngrams", "2-1", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_text_train_params_set(&p, "text_dim", "1000", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_text_train_params_set(&p, "head", "tree", why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_text_train_params_set(&p, "no_such_key", "1", why, sizeof(why)),
                     AAS_ERR_NOT_FOUND);
}

/* A cache too small to hold the rows: the same model from streaming. */
static void streaming_equals_cached_when_the_order_is_the_same(void **state) {
    (void)state;
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.validation_fraction = 0;
    p.feat.dim = 1 << 12;
    p.epochs = 1;
    aas_train_result_t a, b;
    aas_model_t *ma = train(&p, &a);
    p.cache_bytes = 64; /* nothing fits: every epoch re-reads the stream */
    aas_model_t *mb = train(&p, &b);
    /* one epoch over the same rows: shuffles differ (arena vs buffer) but
     * both must classify the training rows alike */
    assert_string_equal(predict(ma, "质量很好"), predict(mb, "质量很好"));
    assert_int_equal(a.n_train, b.n_train);
    aas_model_destroy(ma);
    aas_model_destroy(mb);
    aas_train_result_free(&a);
    aas_train_result_free(&b);
}

static void corrupt_blobs_are_refused(void **state) {
    (void)state;
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.validation_fraction = 0;
    p.feat.dim = 1 << 10;
    aas_train_result_t res;
    aas_model_t *m = train(&p, &res);
    aas_model_destroy(m);
    unsigned char *b = res.blob;
    char why[256];
    const char *seed_dir = getenv("AAS_TEXT_SEED_DIR"); /* the fuzzer's corpus */
    if (seed_dir) {
        char path[512];
        snprintf(path, sizeof(path), "%s/model-linear.aas", seed_dir);
        FILE *fp = fopen(path, "wb");
        assert_non_null(fp);
        fputc(1, fp); /* fuzz_text: odd first byte = a model */
        assert_int_equal(fwrite(b, 1, res.blob_len, fp), res.blob_len);
        assert_int_equal(fclose(fp), 0);
    }
    for (size_t cut = 0; cut < res.blob_len; cut += res.blob_len / 7 + 1)
        assert_int_not_equal(aas_model_load(b, cut, &m, why, sizeof(why)), AAS_ERR_OK);
    b[19] |= 0x80; /* an unknown flag */
    assert_int_equal(aas_model_load(b, res.blob_len, &m, why, sizeof(why)),
                     AAS_ERR_MODEL_FORMAT);
    b[19] &= 0x7f;
    float nan = NAN;
    memcpy(b + 48 + 4 * 5, &nan, 4); /* an IDF weight */
    assert_int_equal(aas_model_load(b, res.blob_len, &m, why, sizeof(why)),
                     AAS_ERR_MODEL_FORMAT);
    assert_non_null(strstr(why, "NaN"));
    aas_train_result_free(&res);
}

/* ---- numeric rows (a CSV data set): the same trainer, an MLP ---- */

/* "values...,label" lines as the worker's reader gives them. */
static aas_err_t csv_next(void *o, const char **t, size_t *tl, const char **l, size_t *ll,
                          int *eof, char *e, size_t es) {
    (void)e, (void)es;
    mem_t *m = o;
    if (m->pos == m->n) {
        *eof = 1;
        return AAS_ERR_OK;
    }
    const char *r = m->rows[m->pos++], *comma = strrchr(r, ',');
    *t = r;
    *tl = (size_t)(comma - r);
    *l = comma + 1;
    *ll = strlen(comma + 1);
    return AAS_ERR_OK;
}

static aas_err_t csv_train(const char *const *rows, size_t n, int64_t dim,
                           aas_train_result_t *res, char *why, size_t why_size) {
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.head = AAS_TEXT2_HEAD_MLP;
    p.dense_dim = dim;
    p.validation_fraction = 0;
    p.epochs = 200;
    p.mlp.hidden[0] = 8;
    p.mlp.n_hidden = 1;
    p.mlp.batch_size = 4;
    p.mlp.learning_rate = 0.05;
    mem_t m = {rows, n, 0};
    aas_text_reader_t r = {mem_rewind, csv_next, &m};
    return aas_text_train(&p, &r, NULL, NULL, res, why, why_size);
}

static void numeric_rows_train_an_mlp(void **state) {
    (void)state;
    /* class = which of the two values is larger; labels 0 and 2 (no 1) */
    const char *rows[] = {"1,0,0", "0,1,2", "0.9,0.1,0", "0.2,0.8,2", "3,1,0", "1,3,2",
                          "0.5,0,0", "0,0.5,2"};
    aas_train_result_t res;
    char why[512];
    if (csv_train(rows, 8, 2, &res, why, sizeof(why))) fail_msg("train: %s", why);
    aas_model_t *m = NULL;
    assert_int_equal(aas_model_load(res.blob, res.blob_len, &m, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(aas_model_kind(m), "AASMLP1");
    assert_int_equal(aas_model_input_dim(m), 2);
    assert_int_equal(aas_model_output_dim(m), 3); /* classes 0..max */
    float x[4] = {2, 0.5f, 0.1f, 1.5f}, out[6];
    assert_int_equal(aas_model_infer(m, x, 2, out, why, sizeof(why)), AAS_ERR_OK);
    assert_true(out[0] > out[2] && out[5] > out[3]);
    aas_model_destroy(m);
    aas_train_result_free(&res);
}

static void bad_numeric_rows_are_named(void **state) {
    (void)state;
    struct { const char *rows[2]; const char *msg; } bad[] = {
        {{"1,2,0", "1,x,1"}, "row 2: value 2 is not a finite number"},
        {{"1,2,0", "1,nan,1"}, "row 2: value 2 is not a finite number"},
        {{"1,2,0", "1,2,3,1"}, "row 2: value 3 is not a finite number, or more than 2"},
        {{"1,2,0", "1,1"}, "row 2: 1 values before the label, the first row had 2"},
        {{"1,2,0", "1,,1"}, "row 2: value 2 is not a finite number"},
        {{"1,2,0", "1,2,-1"}, "label '-1' is not a class index"},
        {{"1,2,0", "1,2,0"}, "1 class: a classifier needs 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        aas_train_result_t res;
        char why[512];
        assert_int_not_equal(csv_train(bad[i].rows, 2, 2, &res, why, sizeof(why)), AAS_ERR_OK);
        if (!strstr(why, bad[i].msg)) fail_msg("case %zu: '%s'", i, why);
    }
}

/* ---- data-parallel rounds (aas_text_dp_new, train_dp.h) ---- */

static aas_train_dp_engine_t *dp_engine(aas_text_train_params_t *p, int head, int shards,
                                        int only) {
    aas_text_train_params_default(p);
    p->validation_fraction = 0;
    p->head = head;
    p->feat.dim = 1 << 12;
    p->epochs = head == AAS_TEXT2_HEAD_MLP ? 60 : 20;
    if (head == AAS_TEXT2_HEAD_MLP) p->learning_rate = p->mlp.learning_rate = 0.01;
    mem_t m = {reviews, sizeof(reviews) / sizeof(*reviews), 0};
    aas_text_reader_t r = {mem_rewind, mem_next, &m};
    aas_train_dp_engine_t *e = NULL;
    char why[512];
    if (aas_text_dp_new(p, &r, shards, only, &e, why, sizeof(why))) fail_msg("dp: %s", why);
    return e;
}

static void dp_text_rounds_are_pure_and_learn(void **state) {
    (void)state;
    char why[512];
    for (int head = AAS_TEXT2_HEAD_LINEAR; head <= AAS_TEXT2_HEAD_MLP; head++) {
        aas_text_train_params_t p;
        aas_train_dp_engine_t *all = dp_engine(&p, head, 2, -1);
        aas_train_dp_engine_t *one = dp_engine(&p, head, 2, 1); /* a shard worker's view */
        const aas_train_dp_info_t *in = aas_train_dp_engine_info(all);
        assert_int_equal(in->n_train, 12);
        assert_int_equal(in->shard_rows[0] + in->shard_rows[1], 12);
        assert_true(aas_train_dp_engine_info(one)->have[1]);
        assert_false(aas_train_dp_engine_info(one)->have[0]);
        size_t sb = in->state_bytes;
        assert_int_equal(sb, aas_train_dp_engine_info(one)->state_bytes);
        unsigned char *g = malloc(sb), *a = malloc(sb), *b = malloc(sb), *c = malloc(sb);
        assert_int_equal(aas_train_dp_engine_get(all, g, why, sizeof(why)), AAS_ERR_OK);
        double la = 0, lb = 0;
        /* round 3 of shard 1 after another round ran: the same bytes as on
         * a worker holding only shard 1, and again on the same engine */
        assert_int_equal(aas_train_dp_engine_round(all, g, 0, 0, c, &la, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(aas_train_dp_engine_round(all, g, 3, 1, a, &la, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(aas_train_dp_engine_round(one, g, 3, 1, b, &lb, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_memory_equal(a, b, sb);
        assert_int_equal(aas_train_dp_engine_round(all, g, 3, 1, b, &lb, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_memory_equal(a, b, sb);
        assert_memory_not_equal(a, g, sb);
        /* a shard the engine does not hold, a state of another shape */
        assert_int_equal(aas_train_dp_engine_round(one, g, 0, 0, b, &lb, why, sizeof(why)),
                         AAS_ERR_INVAL);
        memcpy(b, g, sb);
        b[0] ^= 1; /* the magic */
        assert_int_equal(aas_train_dp_engine_set(all, b, why, sizeof(why)), AAS_ERR_DECODE);
        /* the whole scheme in one process learns the reviews */
        aas_train_result_t res;
        assert_int_equal(aas_train_dp_run_all(all, p.epochs, &res, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_int_equal(res.epochs_done, p.epochs);
        aas_model_t *m = NULL;
        assert_int_equal(aas_model_load(res.blob, res.blob_len, &m, why, sizeof(why)),
                         AAS_ERR_OK);
        assert_string_equal(aas_model_kind(m), "AASTXT2");
        assert_string_equal(predict(m, "质量很好，满意"), "正面");
        assert_string_equal(predict(m, "质量很差，失望"), "负面");
        aas_model_destroy(m);
        aas_train_result_free(&res);
        free(g), free(a), free(b), free(c);
        aas_train_dp_engine_destroy(all);
        aas_train_dp_engine_destroy(one);
    }
}

static void dp_text_needs_the_rows_in_memory(void **state) {
    (void)state;
    aas_text_train_params_t p;
    aas_text_train_params_default(&p);
    p.feat.dim = 1 << 12;
    p.cache_bytes = 256; /* not even one row */
    mem_t m = {reviews, sizeof(reviews) / sizeof(*reviews), 0};
    aas_text_reader_t r = {mem_rewind, mem_next, &m};
    aas_train_dp_engine_t *e = NULL;
    char why[512];
    assert_int_equal(aas_text_dp_new(&p, &r, 2, -1, &e, why, sizeof(why)), AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "text_cache_mb"));
    assert_null(e);
    aas_text_train_params_default(&p);
    p.validation_fraction = 0;
    m.pos = 0;
    assert_int_equal(aas_text_dp_new(&p, &r, 13, -1, &e, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "cannot make 13 shards"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_the_python_reference),
        cmocka_unit_test(normalisation_folds_case_width_and_forms),
        cmocka_unit_test(unspaced_scripts_have_no_words),
        cmocka_unit_test(bad_and_featureless_texts_are_refused),
        cmocka_unit_test(conf_is_checked),
        cmocka_unit_test(linear_and_mlp_heads_learn_chinese_reviews),
        cmocka_unit_test(training_refuses_bad_data),
        cmocka_unit_test(streaming_equals_cached_when_the_order_is_the_same),
        cmocka_unit_test(corrupt_blobs_are_refused),
        cmocka_unit_test(numeric_rows_train_an_mlp),
        cmocka_unit_test(bad_numeric_rows_are_named),
        cmocka_unit_test(dp_text_rounds_are_pure_and_learn),
        cmocka_unit_test(dp_text_needs_the_rows_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
