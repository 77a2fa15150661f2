/* test_gateway_json.c - the gateway's JSON <-> job translation (gateway/oip.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jobs.h"
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
