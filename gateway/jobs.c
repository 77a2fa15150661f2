/* jobs.c - POST /v1/jobs training bodies; see jobs.h. */
#include "jobs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aas_gw_train_clear(aas_gw_train_t *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_params; i++) {
        free(t->params[i].key);
        free(t->params[i].value);
    }
    free(t->params);
    free(t->model);
    memset(t, 0, sizeof(*t));
}

/* A param value as text into buf; -1 for a type a param cannot have. */
static int value_text(const json_t *v, char *buf, size_t size) {
    if (json_is_string(v)) {
        if (json_string_length(v) >= size) return -1;
        memcpy(buf, json_string_value(v), json_string_length(v) + 1);
        /* A NUL inside would cut the value silently. */
        return strlen(buf) == json_string_length(v) ? 0 : -1;
    }
    if (json_is_integer(v)) snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, size, "%.17g", json_real_value(v));
    else if (json_is_boolean(v)) snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
    else return -1;
    return 0;
}

aas_err_t aas_gw_train_parse(const char *body, size_t len, aas_gw_train_t *out, char *errstr,
                             size_t errstr_size) {
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "malformed JSON: %.200s",
                           je.text);
    aas_gw_train_t t = {0};
    aas_err_t err = AAS_ERR_OK;
    const char *k;
    json_t *v;
    if (!json_is_object(root)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(root, k, v) {
        if (strcmp(k, "kind") && strcmp(k, "model") && strcmp(k, "params") &&
            strcmp(k, "priority")) {
            err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                              "unknown field \"%.64s\" (kind, model, params, priority)", k);
            goto out;
        }
    }
    const json_t *model = json_object_get(root, "model");
    const json_t *params = json_object_get(root, "params");
    const json_t *prio = json_object_get(root, "priority");
    if (!json_is_string(model) || !aas_id_valid(json_string_value(model))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"model\" must be a model name ([A-Za-z0-9_.-], at most %d)",
                          AAS_ID_MAX);
        goto out;
    }
    if (params && !json_is_object(params)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "\"params\" must be an object");
        goto out;
    }
    if (prio && (!json_is_integer(prio) || json_integer_value(prio) < -1000000 ||
                 json_integer_value(prio) > 1000000)) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                          "\"priority\" must be an integer in [-1000000, 1000000]");
        goto out;
    }
    size_t n = params ? json_object_size(params) : 0;
    if (n > AAS_GW_TRAIN_MAX_PARAMS) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL, "more than %d params",
                          AAS_GW_TRAIN_MAX_PARAMS);
        goto out;
    }
    if (!(t.model = strdup(json_string_value(model))) ||
        !(t.params = calloc(n + 1, sizeof(*t.params)))) {
        err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
        goto out;
    }
    t.priority = prio ? (int32_t)json_integer_value(prio) : 0;
    if (params) {
        json_object_foreach((json_t *)params, k, v) {
            char buf[AAS_GW_TRAIN_MAX_VALUE + 1];
            if (!aas_id_valid(k) || !strcmp(k, "tenant")) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                  "param name \"%.64s\" is not allowed", k);
                goto out;
            }
            if (value_text(v, buf, sizeof(buf))) {
                err = aas_err_set(errstr, errstr_size, AAS_ERR_INVAL,
                                  "param \"%.64s\": a string (at most %d bytes, no NUL), number "
                                  "or boolean", k, AAS_GW_TRAIN_MAX_VALUE);
                goto out;
            }
            aas_kv_t *p = &t.params[t.n_params];
            if (!(p->key = strdup(k)) || !(p->value = strdup(buf))) {
                free(p->key);
                p->key = NULL;
                err = aas_err_set(errstr, errstr_size, AAS_ERR_NOMEM, "out of memory");
                goto out;
            }
            t.n_params++;
        }
    }
out:
    json_decref(root);
    if (err) aas_gw_train_clear(&t);
    else *out = t;
    return err;
}
