/* test_gateway_json.c - the gateway's JSON <-> job translation (gateway/oip.c)
 * and its request JSON reader (gateway/json_read.c). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs.h"
#include "json_read.h"
#include "oip.h"

#define MAX_ELEMS 1000

static aas_err_t oip(const char *body, aas_gw_request_t *r, char *why, size_t n) {
    return aas_gw_oip_parse(body, strlen(body), MAX_ELEMS, r, why, n);
}

static void oip_parses_flat_and_nested_fp32(void **state) {
    char why[256];
    aas_gw_request_t r = {0};
    assert_int_equal(oip("{\"id\":\"q\",\"extra\":1,\"inputs\":[{\"name\":\"input\",\"shape\":[2,2],"
                         "\"datatype\":\"FP32\",\"data\":[[1,2],[3,4.5]]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_null(r.text);
    assert_string_equal(r.req_id, "q");
    assert_int_equal(r.tensor.rank, 2);
    assert_int_equal(r.tensor.shape[0], 2);
    assert_int_equal(r.tensor.nbytes, 4 * sizeof(float));
    assert_true(((float *)r.tensor.data)[3] == 4.5f);
    aas_gw_request_clear(&r);
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"input\",\"shape\":[4],\"datatype\":\"FP32\","
                         "\"data\":[1,2,3,4]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_OK);
    aas_gw_request_clear(&r);
}

static void oip_refuses_client_mistakes(void **state) {
    char why[256];
    aas_gw_request_t r = {0};
    const char *bad[] = {
        "{bad",
        "[]",
        "{\"id\":3,\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}",
        "{\"inputs\":[]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[3],\"datatype\":\"FP32\",\"data\":[1,2]}]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"INT8\",\"data\":[1]}]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"x\"]}]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1e39]}]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[2000],\"datatype\":\"FP32\",\"data\":[]}]}",
        "{\"inputs\":[{\"name\":\"i\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"a\",\"b\"]}]}",
        NULL};
    for (int i = 0; bad[i]; i++) {
        aas_err_t err = oip(bad[i], &r, why, sizeof(why));
        assert_int_not_equal(err, AAS_ERR_OK);
        assert_int_not_equal(err, AAS_ERR_NOMEM);
        assert_true(why[0] != '\0');
    }
    /* Invalid UTF-8 never becomes a job's text. */
    const char nonutf8[] = "{\"inputs\":[{\"name\":\"t\",\"shape\":[1],\"datatype\":\"BYTES\","
                           "\"data\":[\"\xff\"]}]}";
    assert_int_equal(oip(nonutf8, &r, why, sizeof(why)), AAS_ERR_INVAL);
}

static void oip_takes_one_text(void **state) {
    char why[256];
    aas_gw_request_t r = {0};
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                         "\"data\":[\"\xe5\xa5\xbd\"]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(r.text, "\xe5\xa5\xbd");
    aas_gw_request_clear(&r);
}

static void oip_binary_extension(void **state) {
    char why[256];
    aas_gw_request_t r = {0};
    const char *js = "{\"inputs\":[{\"name\":\"i\",\"shape\":[1,2],\"datatype\":\"FP32\","
                     "\"parameters\":{\"binary_data_size\":8}}]}";
    char body[256];
    float v[2] = {1.5f, -2.0f};
    size_t jl = strlen(js);
    memcpy(body, js, jl);
    memcpy(body + jl, v, sizeof(v));
    assert_int_equal(aas_gw_oip_parse_binary(body, jl + 8, jl, MAX_ELEMS, &r, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_true(((float *)r.tensor.data)[1] == -2.0f);
    aas_gw_request_clear(&r);
    /* Fewer bytes than binary_data_size says. */
    assert_int_not_equal(
        aas_gw_oip_parse_binary(body, jl + 4, jl, MAX_ELEMS, &r, why, sizeof(why)), AAS_ERR_OK);
    /* A header length past the body. */
    assert_int_not_equal(
        aas_gw_oip_parse_binary(body, jl, jl + 1, MAX_ELEMS, &r, why, sizeof(why)), AAS_ERR_OK);
}

static void predict_parses_text_and_instances(void **state) {
    char why[256];
    aas_gw_request_t r = {0};
    const char *t = "{\"model\":\"m\",\"version\":\"2\",\"text\":\"hi\"}";
    assert_int_equal(aas_gw_predict_parse(t, strlen(t), MAX_ELEMS, &r, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_string_equal(r.model, "m");
    assert_int_equal(r.version, 2);
    assert_string_equal(r.text, "hi");
    aas_gw_request_clear(&r);
    const char *i = "{\"instances\":[[1,2,3],[4,5,6]]}";
    assert_int_equal(aas_gw_predict_parse(i, strlen(i), MAX_ELEMS, &r, why, sizeof(why)),
                     AAS_ERR_OK);
    assert_int_equal(r.tensor.shape[0], 2);
    assert_int_equal(r.tensor.shape[1], 3);
    aas_gw_request_clear(&r);
    const char *bad[] = {"{\"instances\":[[1,2],[3]]}", "{\"instances\":[]}",
                         "{\"text\":\"a\",\"instances\":[[1]]}", "{}", "{\"text\":1}",
                         "{\"model\":1,\"text\":\"a\"}", "{\"version\":-1,\"text\":\"a\"}", NULL};
    for (int k = 0; bad[k]; k++)
        assert_int_not_equal(
            aas_gw_predict_parse(bad[k], strlen(bad[k]), MAX_ELEMS, &r, why, sizeof(why)),
            AAS_ERR_OK);
}

static void predict_fill_names_labels(void **state) {
    float out[4] = {0.1f, 0.9f, 0.8f, 0.2f};
    int64_t shape[2] = {2, 2};
    aas_tensor_t t = {0};
    assert_int_equal(aas_tensor_set_f32(&t, "probabilities", out, 2, shape), AAS_ERR_OK);
    char *labels[2] = {"neg", "pos"};
    aas_gw_model_t md = {.name = "m", .version = 1, .out_dim = 2, .labels = labels};
    aas_result_t res = {.job_id = "j", .status = AAS_STATUS_SUCCEEDED, .outputs = &t,
                        .n_outputs = 1};
    char why[128];
    json_t *o = json_object();
    assert_int_equal(aas_gw_predict_fill(o, &res, &md, why, sizeof(why)), 0);
    json_t *p = json_object_get(o, "predictions");
    assert_int_equal(json_array_size(p), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "label")), "pos");
    assert_string_equal(json_string_value(json_object_get(json_array_get(p, 1), "label")), "neg");
    json_decref(o);
    /* Without names: the index. */
    md.labels = NULL;
    o = json_object();
    assert_int_equal(aas_gw_predict_fill(o, &res, &md, why, sizeof(why)), 0);
    p = json_object_get(o, "predictions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(p, 0), "label")), "1");
    json_decref(o);
    aas_tensor_clear(&t);
}

static void train_body_parses_params_as_text(void **state) {
    (void)state;
    char why[256];
    aas_gw_train_t t = {0};
    const char *b = "{\"kind\":\"train\",\"model\":\"zh\",\"priority\":3,"
                    "\"params\":{\"dataset\":\"zh-train\",\"epochs\":10,\"lr\":0.5,\"cache\":false}}";
    assert_int_equal(aas_gw_train_parse(b, strlen(b), &t, why, sizeof(why)), AAS_ERR_OK);
    assert_string_equal(t.model, "zh");
    assert_int_equal(t.priority, 3);
    assert_int_equal(t.n_params, 4);
    int seen = 0;
    for (size_t i = 0; i < t.n_params; i++) {
        const char *k = t.params[i].key, *v = t.params[i].value;
        if (!strcmp(k, "dataset")) seen += !strcmp(v, "zh-train");
        if (!strcmp(k, "epochs")) seen += !strcmp(v, "10");
        if (!strcmp(k, "lr")) seen += !strcmp(v, "0.5");
        if (!strcmp(k, "cache")) seen += !strcmp(v, "false");
    }
    assert_int_equal(seen, 4);
    /* Room for the tenant the gateway adds. */
    assert_null(t.params[t.n_params].key);
    aas_gw_train_clear(&t);
}

static void train_body_refuses_mistakes(void **state) {
    (void)state;
    static const char *const bad[] = {
        "", "[]", "{\"model\":\"a b\"}", "{\"kind\":\"train\"}",
        "{\"model\":\"m\",\"params\":[]}", "{\"model\":\"m\",\"param\":{}}",
        "{\"model\":\"m\",\"params\":{\"tenant\":\"eve\"}}",
        "{\"model\":\"m\",\"params\":{\"x\":{\"y\":1}}}",
        "{\"model\":\"m\",\"params\":{\"x\":null}}",
        "{\"model\":\"m\",\"params\":{\"bad key\":1}}",
        "{\"model\":\"m\",\"params\":{\"x\":\"a\\u0000b\"}}",
        "{\"model\":\"m\",\"priority\":1.5}", "{\"model\":\"m\",\"priority\":99999999}",
        "{\"model\":\"m\",\"model\":\"n\"}",
    };
    char why[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aas_gw_train_t t = {0};
        assert_int_equal(aas_gw_train_parse(bad[i], strlen(bad[i]), &t, why, sizeof(why)),
                         AAS_ERR_INVAL);
        assert_null(t.model);
        assert_true(why[0] != '\0');
    }
}


/* ------------------------------------------------------- json_read.c */

/* Parse text (strlen) as a document; the error's text into why. */
static aas_err_t jr(const char *text, aas_gw_jr_doc_t **doc, char *why, size_t n) {
    why[0] = '\0';
    return aas_gw_jr_parse(text, strlen(text), doc, why, n);
}

static int same_double(double a, double b) { return !memcmp(&a, &b, sizeof(a)); }

/* The reader's number, alone and inside a document, is strtod's. */
static void check_number(const char *s) {
    char why[256], doc_text[128];
    double want = strtod(s, NULL), got = 1234.5;
    assert_int_equal(aas_gw_jr_number(s, strlen(s), &got), AAS_ERR_OK);
    if (!same_double(got, want)) fail_msg("%s: got %.17g, strtod %.17g", s, got, want);
    snprintf(doc_text, sizeof(doc_text), "[%s]", s);
    aas_gw_jr_doc_t *doc;
    assert_int_equal(jr(doc_text, &doc, why, sizeof(why)), AAS_ERR_OK);
    const aas_gw_jr_value_t *root = aas_gw_jr_root(doc);
    assert_int_equal(root->type, AAS_GW_JR_ARRAY);
    assert_int_equal(root->n, 1);
    aas_gw_jr_value_t tmp;
    const aas_gw_jr_value_t *v = aas_gw_jr_at(root, 0, &tmp);
    assert_int_equal(v->type, AAS_GW_JR_NUMBER);
    if (!same_double(v->u.num, want)) fail_msg("[%s]: got %.17g, strtod %.17g", s, v->u.num, want);
    aas_gw_jr_doc_destroy(doc);
}

static void jr_numbers_equal_strtod(void **state) {
    (void)state;
    static const char *const tricky[] = {
        "0.1", "1e-7", "3.4028235e38", "1e39", "2.2250738585072014e-308", "4.9e-324",
        "9007199254740993", "-0", "1E+2", "0", "-0.0", "0e999999999", "1e-400",
        "2.2250738585072011e-308", "1.7976931348623157e308", "9007199254740992",
        "9007199254740991.5", "0.30000000000000004", "123456789012345678", "1e22", "1e23",
        "8.98846567431158e307", "0.000001", "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126",
        "7.2057594037927933e16", "4.35679845919e-311", "-5e-324", "2.5e-324",
        "0.12345679104328156", "-0.99999994039535522", "1.4012984643248171e-45",
        "9223372036854775807", "-9223372036854775808", "1e-22", "6.02214076e23",
        NULL};
    for (int i = 0; tricky[i]; i++) check_number(tricky[i]);
    /* Integers past int64: the number alone is strtod's; in a document
     * it is refused, as jansson refuses it. */
    const char *big = "123456789012345678901234567890";
    double d;
    assert_int_equal(aas_gw_jr_number(big, strlen(big), &d), AAS_ERR_OK);
    assert_true(same_double(d, strtod(big, NULL)));
    check_number("123456789012345678901234567890.0");
    check_number("123456789012345678901234567890e0");
    /* Many more: %.17g of doubles over the whole range, %.9g of floats
     * (what clients send), and long digit strings with exponents. */
    uint64_t x = 0x2545F4914F6CDD1DULL;
    char buf[96];
    for (int i = 0; i < 30000; i++) {
        x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
        uint64_t r = x * 0x2545F4914F6CDD1DULL;
        switch (i % 3) {
        case 0: {
            double v;
            uint64_t bits = r & ~((uint64_t)0x7FF << 52);
            bits |= (uint64_t)(r % 2046 + 1) << 52; /* any finite exponent */
            memcpy(&v, &bits, sizeof(v));
            snprintf(buf, sizeof(buf), "%.17g", v);
            break;
        }
        case 1: snprintf(buf, sizeof(buf), "%.9g", (double)(float)((double)r / 1.8e19 - 0.5)); break;
        default: {
            int nd = 1 + (int)(r % 24), e = (int)(r >> 40) % 70 - 35, k = 0;
            for (int j = 0; j < nd; j++) buf[k++] = (char)('1' + (r >> (j % 60)) % 9);
            if (nd > 3) buf[nd / 2] = '.';
            snprintf(buf + k, sizeof(buf) - k, "e%d", e);
        }
        }
        if (strchr(buf, 'n') || strchr(buf, 'i')) continue; /* not JSON */
        check_number(buf);
    }
}

static void jr_fp32_values_as_before(void **state) {
    (void)state;
    char why[256];
    aas_gw_request_t r = {0};
    /* Through the OIP parser: strtod's double, then cast to float. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[8],\"datatype\":\"FP32\","
                         "\"data\":[0.1,1e-7,3.4028235e38,-0,1E+2,9007199254740993,"
                         "2.2250738585072014e-308,4.9e-324]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_OK);
    const float *f = r.tensor.data;
    assert_true(f[0] == (float)0.1);
    assert_true(f[1] == (float)1e-7);
    assert_true(f[2] == FLT_MAX);
    assert_true(f[3] == 0.0f && signbit(f[3])); /* strtod's -0 (jansson's integer 0 was +0) */
    assert_true(f[4] == 100.0f);
    assert_true(f[5] == 9007199254740992.0f);
    assert_true(f[6] == 0.0f && f[7] == 0.0f);
    aas_gw_request_clear(&r);
    /* Past FLT_MAX: a client mistake, with the element's index. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[2],\"datatype\":\"FP32\","
                         "\"data\":[1,1e39]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_NONFINITE);
    assert_non_null(strstr(why, "element 1"));
    /* Past the double range: malformed, as jansson said. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\","
                         "\"data\":[1e309]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "real number overflow"));
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\","
                         "\"data\":[123456789012345678901234567890]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(why, "too big integer"));
    /* Shape dimensions must be integers: 2.0 is not, as before. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[1,2.0],\"datatype\":\"FP32\","
                         "\"data\":[1,2]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    /* A large dimension keeps its exact value in the reason. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[9007199254740993],"
                         "\"datatype\":\"FP32\",\"data\":[1]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    assert_non_null(strstr(why, "9007199254740993"));
}

static void jr_refuses_malformed_numbers(void **state) {
    (void)state;
    static const char *const bad[] = {"01",  "-01", "+1",  ".5",   "1.",   "-",    "1e",
                                      "1e+", "1E-", "0x10", "NaN", "Infinity", "-Infinity",
                                      "--1", "1..2", "1e1.5", "1.5e", "- 1", "1 2", "0.e1",
                                      "1f", "01.5", NULL};
    char why[256], text[64];
    for (int i = 0; bad[i]; i++) {
        double d = 7;
        if (aas_gw_jr_number(bad[i], strlen(bad[i]), &d) != AAS_ERR_INVAL)
            fail_msg("number %s accepted", bad[i]);
        assert_true(d == 7); /* written on success only */
        snprintf(text, sizeof(text), "[%s]", bad[i]);
        aas_gw_jr_doc_t *doc = NULL;
        if (jr(text, &doc, why, sizeof(why)) != AAS_ERR_INVAL)
            fail_msg("document %s accepted", text);
        assert_null(doc);
        assert_memory_equal(why, "malformed JSON at line 1 column ", 32);
    }
    double d;
    assert_int_equal(aas_gw_jr_number("", 0, &d), AAS_ERR_INVAL);
    assert_int_equal(aas_gw_jr_number("1e309", 5, &d), AAS_ERR_INVAL);
    assert_int_equal(aas_gw_jr_number("-1e309", 6, &d), AAS_ERR_INVAL);
    /* The length is honoured: "12" of "123". */
    assert_int_equal(aas_gw_jr_number("123", 2, &d), AAS_ERR_OK);
    assert_true(d == 12);
}

/* The one string of ["..."] (a C literal of the JSON text). */
static aas_err_t jr_string_of(const char *text, size_t len, char *out, size_t out_size,
                              char *why, size_t why_size) {
    aas_gw_jr_doc_t *doc;
    aas_err_t err = aas_gw_jr_parse(text, len, &doc, why, why_size);
    if (err) return err;
    const aas_gw_jr_value_t *root = aas_gw_jr_root(doc);
    assert_int_equal(root->type, AAS_GW_JR_ARRAY);
    assert_int_equal(root->u.items[0].type, AAS_GW_JR_STRING);
    assert_true(root->u.items[0].n < out_size);
    memcpy(out, root->u.items[0].u.str, root->u.items[0].n + 1);
    assert_int_equal(strlen(out), root->u.items[0].n);
    aas_gw_jr_doc_destroy(doc);
    return AAS_ERR_OK;
}

static void jr_strings_escapes_and_utf8(void **state) {
    (void)state;
    char why[256], s[64];
#define JR_STR(lit, out) jr_string_of(lit, sizeof(lit) - 1, out, sizeof(out), why, sizeof(why))
    assert_int_equal(JR_STR("[\"a\\n\\t\\\"\\\\\\/\\b\\f\\r\"]", s), AAS_ERR_OK);
    assert_string_equal(s, "a\n\t\"\\/\b\f\r");
    assert_int_equal(JR_STR("[\"\\u00e9\\u4E2D\\u0041\"]", s), AAS_ERR_OK);
    assert_string_equal(s, "\xc3\xa9\xe4\xb8\xad" "A");
    /* A surrogate pair is one code point, U+1F600. */
    assert_int_equal(JR_STR("[\"\\ud83d\\ude00\"]", s), AAS_ERR_OK);
    assert_string_equal(s, "\xf0\x9f\x98\x80");
    assert_int_equal(JR_STR("[\"\xf0\x9f\x98\x80 \xe5\xa5\xbd \xc3\xa9\"]", s), AAS_ERR_OK);
    assert_string_equal(s, "\xf0\x9f\x98\x80 \xe5\xa5\xbd \xc3\xa9");
    assert_int_equal(JR_STR("[\"\"]", s), AAS_ERR_OK);
    assert_string_equal(s, "");
    static const struct {
        const char *text;
        size_t len;
        const char *what;
    } bad[] = {
#define JR_BAD(lit, what) {lit, sizeof(lit) - 1, what}
        JR_BAD("[\"\\ud83d\"]", "surrogate"),         /* lone high */
        JR_BAD("[\"\\ude00\"]", "surrogate"),         /* lone low */
        JR_BAD("[\"\\ud83d\\u0041\"]", "surrogate"),  /* high, then no low */
        JR_BAD("[\"\\ud83dx\"]", "surrogate"),
        JR_BAD("[\"\\u12\"]", "\\u escape"),
        JR_BAD("[\"\\u12g4\"]", "\\u escape"),
        JR_BAD("[\"\\x41\"]", "invalid escape"),
        JR_BAD("[\"\\'\"]", "invalid escape"),
        JR_BAD("[\"\\u0000\"]", "\\u0000"),           /* NUL, escaped */
        JR_BAD("[\"a\0b\"]", "control character"),    /* NUL, raw */
        JR_BAD("[\"a\nb\"]", "control character"),
        JR_BAD("[\"\xff\"]", "UTF-8"),
        JR_BAD("[\"\xc0\xaf\"]", "UTF-8"),            /* overlong '/' */
        JR_BAD("[\"\xe0\x80\xaf\"]", "UTF-8"),        /* overlong, 3 bytes */
        JR_BAD("[\"\xed\xa0\x80\"]", "UTF-8"),        /* a surrogate, encoded */
        JR_BAD("[\"\xf4\x90\x80\x80\"]", "UTF-8"),    /* past U+10FFFF */
        JR_BAD("[\"\xe5\xa5\"]", "UTF-8"),            /* cut short by the quote */
        JR_BAD("[\"\x80\"]", "UTF-8"),                /* a lone continuation byte */
        JR_BAD("[\"abc", "unterminated"),
        JR_BAD("[\"abc\\\"]", "unterminated"),
        JR_BAD("[\"\\", "unterminated"),
        JR_BAD("[\xff]", "value expected"),           /* outside a string */
#undef JR_BAD
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aas_err_t err = jr_string_of(bad[i].text, bad[i].len, s, sizeof(s), why, sizeof(why));
        if (err != AAS_ERR_INVAL || !strstr(why, bad[i].what))
            fail_msg("bad string %zu: err %d, why '%s'", i, err, why);
    }
#undef JR_STR
}

static void jr_objects_refuse_duplicate_keys(void **state) {
    (void)state;
    char why[256], text[2048];
    aas_gw_jr_doc_t *doc;
    assert_int_equal(jr("{\"a\":1,\"b\":{\"a\":2},\"c\":[{\"a\":3}]}", &doc, why, sizeof(why)),
                     AAS_ERR_OK);
    const aas_gw_jr_value_t *root = aas_gw_jr_root(doc);
    assert_int_equal(aas_gw_jr_get(root, "a")->i, 1);
    assert_int_equal(aas_gw_jr_get(aas_gw_jr_get(root, "b"), "a")->i, 2);
    assert_null(aas_gw_jr_get(root, "d"));
    assert_null(aas_gw_jr_get(aas_gw_jr_get(root, "a"), "a")); /* not an object */
    assert_null(aas_gw_jr_get(NULL, "a"));
    aas_gw_jr_doc_destroy(doc);
    assert_int_equal(jr("{\"a\":1,\"b\":2,\"a\":3}", &doc, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "duplicate object key"));
    assert_non_null(strstr(why, "column 14")); /* at the second "a" */
    /* The same key written two ways is the same key. */
    assert_int_equal(jr("{\"\\u0061\":1,\"a\":2}", &doc, why, sizeof(why)), AAS_ERR_INVAL);
    /* Large objects (sorted, not pairwise): distinct keys pass, one
     * repeat far from its first is found. */
    for (int dup = 0; dup < 2; dup++) {
        size_t n = (size_t)snprintf(text, sizeof(text), "{");
        for (int k = 0; k < 100; k++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"k%d\":%d", k ? "," : "",
                                  dup && k == 99 ? 3 : k, k);
        snprintf(text + n, sizeof(text) - n, "}");
        aas_err_t err = jr(text, &doc, why, sizeof(why));
        if (dup) {
            assert_int_equal(err, AAS_ERR_INVAL);
            assert_non_null(strstr(why, "duplicate object key"));
        } else {
            assert_int_equal(err, AAS_ERR_OK);
            assert_int_equal(aas_gw_jr_root(doc)->n, 100);
            assert_int_equal(aas_gw_jr_get(aas_gw_jr_root(doc), "k77")->i, 77);
            aas_gw_jr_doc_destroy(doc);
        }
    }
}

static void jr_caps_depth(void **state) {
    (void)state;
    char why[256], text[2 * AAS_GW_JR_MAX_DEPTH + 8];
    aas_gw_jr_doc_t *doc;
    for (int extra = 0; extra < 2; extra++) {
        int d = AAS_GW_JR_MAX_DEPTH + extra;
        memset(text, '[', (size_t)d);
        memset(text + d, ']', (size_t)d);
        text[2 * d] = '\0';
        aas_err_t err = jr(text, &doc, why, sizeof(why));
        if (!extra) {
            assert_int_equal(err, AAS_ERR_OK);
            aas_gw_jr_doc_destroy(doc);
        } else {
            assert_int_equal(err, AAS_ERR_INVAL);
            assert_non_null(strstr(why, "nested deeper than 64"));
        }
    }
    /* Far deeper input stops at the cap, not at the C stack; objects
     * count as arrays do. */
    char deep[100001];
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    assert_int_equal(jr(deep, &doc, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "nested deeper"));
    size_t n0 = 0;
    for (int i = 0; i < 1000; i++) n0 += (size_t)snprintf(deep + n0, sizeof(deep) - n0, "{\"a\":");
    assert_int_equal(jr(deep, &doc, why, sizeof(why)), AAS_ERR_INVAL);
    assert_non_null(strstr(why, "nested deeper"));
    /* The OIP parser's own limit on data (32 levels) still holds. */
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"inputs\":[{\"name\":\"i\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":");
    for (int i = 0; i < 40; i++) body[n++] = '[';
    body[n++] = '1';
    for (int i = 0; i < 40; i++) body[n++] = ']';
    snprintf(body + n, sizeof(body) - (size_t)n, "}]}");
    aas_gw_request_t r = {0};
    assert_int_equal(oip(body, &r, why, sizeof(why)), AAS_ERR_SHAPE);
}

static void jr_refuses_trailing_data_and_takes_whitespace(void **state) {
    (void)state;
    static const char *const bad[] = {"{} x", "{}{}", "[1]]", "{},", "[1] 2", "{\"a\":1}}",
                                      "", " ", "[1,]", "{\"a\":1,}", "[,1]", "{,}",
                                      "{\"a\"}", "{\"a\" 1}", "{1:2}", "[1 2]", "tru", "nul",
                                      "[true false]", "\f[]", "[\v1]", "[\xc2\xa0" "1]",
                                      "[1]\x00", NULL};
    char why[256];
    aas_gw_jr_doc_t *doc;
    for (int i = 0; bad[i]; i++) {
        size_t len = strlen(bad[i]) + (i == 22); /* the last one: its NUL too */
        if (aas_gw_jr_parse(bad[i], len, &doc, why, sizeof(why)) != AAS_ERR_INVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_memory_equal(why, "malformed JSON at line ", 23);
    }
    assert_int_equal(jr(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] ,\"b\":[ ],\"c\":true,\"d\":false,"
                        "\"e\":null,\"f\":\"\"} \r\n",
                        &doc, why, sizeof(why)),
                     AAS_ERR_OK);
    const aas_gw_jr_value_t *root = aas_gw_jr_root(doc);
    assert_int_equal(root->n, 6);
    assert_int_equal(aas_gw_jr_get(root, "a")->n, 2);
    assert_int_equal(aas_gw_jr_get(root, "b")->type, AAS_GW_JR_ARRAY);
    assert_int_equal(aas_gw_jr_get(root, "b")->n, 0);
    assert_int_equal(aas_gw_jr_get(root, "c")->type, AAS_GW_JR_TRUE);
    assert_int_equal(aas_gw_jr_get(root, "d")->type, AAS_GW_JR_FALSE);
    assert_int_equal(aas_gw_jr_get(root, "e")->type, AAS_GW_JR_NULL);
    aas_gw_jr_doc_destroy(doc);
    /* Any value at the top is JSON; the parsers want an object. */
    assert_int_equal(jr("  3 ", &doc, why, sizeof(why)), AAS_ERR_OK);
    assert_int_equal(aas_gw_jr_root(doc)->i, 3);
    aas_gw_jr_doc_destroy(doc);
    aas_gw_request_t r = {0};
    assert_int_equal(oip("[1]", &r, why, sizeof(why)), AAS_ERR_INVAL);
    assert_string_equal(why, "the body must be a JSON object");
    /* Where: line and column (in characters) of the offending byte. */
    assert_int_equal(jr("{\n  \"\xc3\xa9\": x}", &doc, why, sizeof(why)), AAS_ERR_INVAL);
    assert_memory_equal(why, "malformed JSON at line 2 column 8: ", 35);
    assert_int_equal(oip("{bad", &r, why, sizeof(why)), AAS_ERR_INVAL);
    assert_memory_equal(why, "malformed JSON at line 1 column 2: ", 35);
}

static void jr_packs_number_arrays(void **state) {
    (void)state;
    char why[256];
    aas_gw_jr_doc_t *doc;
    assert_int_equal(jr("[[1,2.5,-3e0],[4,5],[6,\"x\"],[],[9007199254740993,1],[[1],2]]", &doc,
                        why, sizeof(why)),
                     AAS_ERR_OK);
    const aas_gw_jr_value_t *root = aas_gw_jr_root(doc), *a;
    aas_gw_jr_value_t tmp;
    assert_false(root->packed);
    assert_int_equal(root->n, 6);
    a = &root->u.items[0]; /* numbers: packed, not all integers */
    assert_true(a->packed && !a->is_int && a->n == 3);
    assert_true(a->u.nums[1] == 2.5 && a->u.nums[2] == -3);
    a = &root->u.items[1]; /* integers */
    assert_true(a->packed && a->is_int && a->n == 2);
    assert_int_equal(aas_gw_jr_at(a, 1, &tmp)->i, 5);
    assert_true(aas_gw_jr_at(a, 1, &tmp)->is_int);
    assert_null(aas_gw_jr_at(a, 2, &tmp));
    a = &root->u.items[2]; /* a string among numbers: values */
    assert_true(!a->packed && a->n == 2);
    assert_int_equal(a->u.items[0].i, 6);
    assert_string_equal(a->u.items[1].u.str, "x");
    a = &root->u.items[3]; /* empty */
    assert_true(!a->packed && a->n == 0 && a->type == AAS_GW_JR_ARRAY);
    a = &root->u.items[4]; /* an integer a double cannot hold: values, exact */
    assert_false(a->packed);
    assert_true(a->u.items[0].i == 9007199254740993LL);
    a = &root->u.items[5];
    assert_false(a->packed);
    assert_true(a->u.items[0].packed);
    aas_gw_jr_doc_destroy(doc);
    /* Empty data and empty rows are refused by the parsers, as before. */
    aas_gw_request_t r = {0};
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[0],\"datatype\":\"FP32\","
                         "\"data\":[]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    const char *p = "{\"instances\":[[]]}";
    assert_int_equal(aas_gw_predict_parse(p, strlen(p), MAX_ELEMS, &r, why, sizeof(why)),
                     AAS_ERR_SHAPE);
    /* Mixed nesting flattens in order; too many numbers is TOO_LARGE. */
    assert_int_equal(oip("{\"inputs\":[{\"name\":\"i\",\"shape\":[2,3],\"datatype\":\"FP32\","
                         "\"data\":[[1,[2,3]],[[4],5,6]]}]}",
                         &r, why, sizeof(why)),
                     AAS_ERR_OK);
    for (int i = 0; i < 6; i++) assert_true(((float *)r.tensor.data)[i] == (float)(i + 1));
    aas_gw_request_clear(&r);
    char big[8192];
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"instances\":[[");
    for (int i = 0; i < MAX_ELEMS + 1; i++) n += (size_t)snprintf(big + n, sizeof(big) - n, "%s1", i ? "," : "");
    snprintf(big + n, sizeof(big) - n, "]]}");
    assert_int_equal(aas_gw_predict_parse(big, strlen(big), MAX_ELEMS, &r, why, sizeof(why)),
                     AAS_ERR_TOO_LARGE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oip_parses_flat_and_nested_fp32),
        cmocka_unit_test(oip_refuses_client_mistakes),
        cmocka_unit_test(oip_takes_one_text),
        cmocka_unit_test(oip_binary_extension),
        cmocka_unit_test(predict_parses_text_and_instances),
        cmocka_unit_test(predict_fill_names_labels),
        cmocka_unit_test(train_body_parses_params_as_text),
        cmocka_unit_test(train_body_refuses_mistakes),
        cmocka_unit_test(jr_numbers_equal_strtod),
        cmocka_unit_test(jr_fp32_values_as_before),
        cmocka_unit_test(jr_refuses_malformed_numbers),
        cmocka_unit_test(jr_strings_escapes_and_utf8),
        cmocka_unit_test(jr_objects_refuse_duplicate_keys),
        cmocka_unit_test(jr_caps_depth),
        cmocka_unit_test(jr_refuses_trailing_data_and_takes_whitespace),
        cmocka_unit_test(jr_packs_number_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
