/*
 * fuzz_gateway_json.c - libFuzzer target for what aas-gateway does with an
 * HTTP body before anything reaches Kafka: the OIP infer parser (JSON, and
 * the binary data extension), the plain predict parser, and, for a body
 * that parses, the job built from it as gateway/routes.c builds it and
 * encoded by the codec (aas_client_submit encodes it so), then decoded
 * again: the round trip must keep the text and the tensor.  A synthetic
 * result (the input echoed as output rows, with predictions) is then
 * rendered as an OIP response and a predict answer, with and without a
 * model description.  A refusal must carry a reason and leave the request
 * untouched (oip.h: written on success only).  It does not run HTTP
 * (http.c) or the client.
 *
 * Differential check of the request reader's numbers (gateway/json_read.c)
 * against strtod: the input as one number (if the reader takes it, strtod
 * must read all of it to the same double), and a number of JSON's grammar
 * built from the input's bytes (the reader must take it, and agree with
 * strtod bit for bit, or refuse it only as out of the double range).
 *
 * Input: the whole of it is an OIP body and a predict body; for the binary
 * extension, its first two bytes (little-endian) modulo (size - 2 + 2)
 * give the JSON length (one past the end is kept: it must be refused), the
 * rest is the body.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DAAS_FUZZ=ON
 * Run:   build-fuzz/tests/fuzz/fuzz_gateway_json tests/fuzz/corpus-gateway \
 *          -dict=tests/fuzz/gateway.dict -max_total_time=30
 * Seeds: tests/fuzz/corpus-gateway (the binary ones begin with their
 * two length bytes).
 */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "json_read.h"
#include "oip.h"

/* Elements of one request: small, so an input cannot ask for much memory
 * (the gateway's own limit, 16 Mi, is the same code with a larger number). */
#define FZ_MAX_ELEMS ((uint64_t)1 << 14)

static aas_codec_t *codec;

/* A model description as models.c makes one: a classifier of out_dim
 * classes, the first few named. */
static char fz_label_names[3][8] = {"neg", "pos", "\xe5\xa5\xbd"};
static char *fz_labels[3] = {fz_label_names[0], fz_label_names[1], fz_label_names[2]};
static aas_gw_model_t fz_md = {.name = "m", .version = 3, .kind = "AASMLP1",
                               .classifier = 1, .in_dim = 0, .out_dim = 3,
                               .labels = fz_labels};

/* Refusals must say why; what is accepted must be one text or one F32
 * tensor the codec would accept. */
static void fz_check_request(aas_err_t err, const char *why, const aas_gw_request_t *r) {
    if (err) {
        if (!why[0]) abort();
        return;
    }
    if (r->text) {
        if (r->tensor.data || r->tensor.rank) abort();
        json_t *s = json_string(r->text); /* NULL unless valid UTF-8, no NUL */
        if (!s) abort();
        json_decref(s);
        return;
    }
    char w[256];
    if (r->tensor.dtype != AAS_DTYPE_F32 ||
        aas_tensor_check(&r->tensor, FZ_MAX_ELEMS, NULL, w, sizeof(w)) ||
        aas_tensor_check_finite(&r->tensor, w, sizeof(w)))
        abort();
}

/* The synthetic result: the input's values as rows x cols (a text gives
 * one row of three), a prediction per row when the first value says so. */
static void fz_render(const aas_gw_request_t *in, const char *job_id) {
    static const float text_row[3] = {0.25f, 0.5f, 0.25f};
    aas_tensor_t out = {0};
    int64_t shape[2];
    const float *vals;
    if (in->text) {
        shape[0] = 1;
        shape[1] = 3;
        vals = text_row;
    } else {
        const aas_tensor_t *t = &in->tensor;
        shape[0] = t->rank == 1 ? 1 : t->shape[0];
        shape[1] = (int64_t)(t->nbytes / sizeof(float)) / shape[0];
        vals = t->data;
    }
    if (aas_tensor_set_f32(&out, "output", vals, 2, shape)) return; /* NOMEM */
    aas_prediction_t preds[4];
    char names[4][16];
    size_t n_preds = 0;
    if (vals[0] > 0) {
        n_preds = shape[0] < 4 ? (size_t)shape[0] : 4;
        for (size_t i = 0; i < n_preds; i++) {
            preds[i].label = (int32_t)(i % (size_t)shape[1]);
            preds[i].probability = vals[0];
            memcpy(names[i], "class", 6);
            preds[i].name = i % 2 ? names[i] : NULL;
        }
    }
    aas_result_t res = {.job_id = (char *)job_id, .status = AAS_STATUS_SUCCEEDED,
                        .model = "m", .model_version = "3", .outputs = &out, .n_outputs = 1,
                        .predictions = n_preds ? preds : NULL, .n_predictions = n_preds};
    char why[256] = "";
    for (int with_md = 0; with_md < 2; with_md++) {
        const aas_gw_model_t *md = with_md ? &fz_md : NULL;
        json_t *o = aas_gw_oip_response(&res, "m", md, in->req_id, why, sizeof(why));
        if (o) {
            char *s = json_dumps(o, JSON_COMPACT);
            free(s);
            json_decref(o);
        } else if (!why[0]) {
            abort();
        }
        o = json_object();
        if (!o) break;
        why[0] = '\0';
        if (aas_gw_predict_fill(o, &res, md, why, sizeof(why)) && !why[0]) abort();
        json_decref(o);
    }
    /* The worker's side of the same result: encode and decode it back. */
    void *buf;
    size_t len;
    if (aas_codec_result_encode(codec, &res, &buf, &len, why, sizeof(why)) == AAS_ERR_OK) {
        aas_result_t back;
        if (aas_codec_result_decode(codec, buf, len, &back, why, sizeof(why)) != AAS_ERR_OK ||
            back.n_outputs != 1 || back.outputs[0].nbytes != out.nbytes ||
            memcmp(back.outputs[0].data, out.data, out.nbytes) != 0)
            abort();
        aas_result_clear(&back);
        free(buf);
    } else if (!why[0]) {
        abort();
    }
    aas_tensor_clear(&out);
}

/* The job routes.c's run_job() builds from a parsed request, encoded and
 * decoded again. */
static void fz_job(aas_gw_request_t *in) {
    static const char id[] = "0123456789abcdef0123456789abcdef"; /* aas_client_job_id's form */
    char why[256] = "";
    /* routes.c answers 404 to a name that is not a valid id. */
    const char *model = in->model && aas_id_valid(in->model) ? in->model : "m";
    aas_job_t job = {.id = (char *)id, .kind = AAS_JOB_INFER, .model = (char *)model,
                     .model_version = "3", .text = in->text,
                     .inputs = in->text ? NULL : &in->tensor, .n_inputs = in->text ? 0 : 1,
                     .submit_ms = 1};
    void *buf;
    size_t len;
    if (aas_codec_job_encode(codec, &job, &buf, &len, why, sizeof(why)) != AAS_ERR_OK)
        abort(); /* whatever the gateway accepts must encode */
    aas_codec_limits_t limits;
    aas_codec_limits_default(&limits);
    aas_job_t back;
    char back_id[AAS_ID_MAX + 1];
    if (aas_codec_job_decode(codec, buf, len, &limits, &back, back_id, why, sizeof(why)) !=
        AAS_ERR_OK)
        abort(); /* ... and a worker must decode it */
    if (strcmp(back.id, id) || strcmp(back.model, model)) abort();
    if (in->text) {
        if (!back.text || strcmp(back.text, in->text) || back.n_inputs) abort();
    } else {
        const aas_tensor_t *a = &in->tensor, *b = back.inputs;
        if (back.text || back.n_inputs != 1 || b->dtype != a->dtype || b->rank != a->rank ||
            memcmp(b->shape, a->shape, (size_t)a->rank * sizeof(a->shape[0])) ||
            b->nbytes != a->nbytes || memcmp(b->data, a->data, a->nbytes))
            abort();
    }
    aas_job_clear(&back);
    free(buf);
    fz_render(in, id);
}

/* A byte pattern out-params start with: a refusal must leave it (oip.h:
 * "written on success only"). */
#define FZ_UNTOUCHED 0xA5

static void fz_one(aas_err_t err, const char *why, aas_gw_request_t *r) {
    fz_check_request(err, why, r);
    if (err) {
        const unsigned char *b = (const unsigned char *)r;
        for (size_t i = 0; i < sizeof(*r); i++)
            if (b[i] != FZ_UNTOUCHED) abort();
        return;
    }
    fz_job(r);
    aas_gw_request_clear(r);
}

/* The reader's double for s (len bytes, NUL-terminated) against strtod's;
 * must_parse: s is a number of JSON's grammar. */
static void fz_number_vs_strtod(const char *s, size_t len, int must_parse) {
    double got, want;
    char *end;
    aas_err_t err = aas_gw_jr_number(s, len, &got);
    want = strtod(s, &end);
    if (err == AAS_ERR_NOMEM) return;
    if (err) {
        /* Refused: not a number, or out of the double range. */
        if (must_parse && !isinf(want)) abort();
        return;
    }
    if (end != s + len || isinf(want) || memcmp(&got, &want, sizeof(got))) abort();
}

static void fz_numbers(const uint8_t *data, size_t size) {
    char buf[160];
    if (size < 64) {
        memcpy(buf, data, size);
        buf[size] = '\0';
        if (strlen(buf) == size) fz_number_vs_strtod(buf, size, 0);
    }
    if (size < 4) return;
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from the bytes. */
    size_t n = 0, at = 4, int_digits = data[1] % 24, frac_digits = data[2] % 24;
    int e = (int)(data[3] % 128) - 64;
#define FZ_DIGIT() (char)('0' + (at < size ? data[at++] : 7) % 10)
    if (data[0] & 1) buf[n++] = '-';
    if (!int_digits) {
        buf[n++] = '0';
    } else {
        buf[n] = FZ_DIGIT();
        if (buf[n] == '0') buf[n] = '1';
        n++;
        for (size_t i = 1; i < int_digits; i++) buf[n++] = FZ_DIGIT();
    }
    if (frac_digits) {
        buf[n++] = '.';
        for (size_t i = 0; i < frac_digits; i++) buf[n++] = FZ_DIGIT();
    }
#undef FZ_DIGIT
    if (data[0] & 2) n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%d",
                                           data[0] & 4 ? "E" : "e", (data[0] & 8) ? e * 5 : e);
    buf[n] = '\0';
    fz_number_vs_strtod(buf, n, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[512];
    if (!codec && aas_codec_new(&codec, why, sizeof(why)) != AAS_ERR_OK) abort();
    const char *body = (const char *)data;
    aas_gw_request_t r;
    aas_err_t err;

    fz_numbers(data, size);

    memset(&r, FZ_UNTOUCHED, sizeof(r));
    why[0] = '\0';
    err = aas_gw_oip_parse(body, size, FZ_MAX_ELEMS, &r, why, sizeof(why));
    fz_one(err, why, &r);

    memset(&r, FZ_UNTOUCHED, sizeof(r));
    why[0] = '\0';
    err = aas_gw_predict_parse(body, size, FZ_MAX_ELEMS, &r, why, sizeof(why));
    fz_one(err, why, &r);

    if (size >= 2) {
        size_t rest = size - 2;
        size_t json_len = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 2);
        memset(&r, FZ_UNTOUCHED, sizeof(r));
        why[0] = '\0';
        err = aas_gw_oip_parse_binary(body + 2, rest, json_len, FZ_MAX_ELEMS, &r, why,
                                      sizeof(why));
        if (json_len > rest && !err) abort(); /* a JSON length past the body */
        fz_one(err, why, &r);
    }
    return 0;
}
