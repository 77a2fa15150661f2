/*
 * fuzz_onnx_load.c - libFuzzer target for what aas-producer does at
 * `model register` and a worker does when it loads a model: parse, check
 * and optimise an ONNX graph from untrusted bytes (aas_onnx_load).  What
 * loads is described (every accessor, every string touched) and, when it
 * has exactly one float input, run on zeros of the declared shape:
 * symbolic dims taken as 1 twice (a plan, then the cached plan), then as 3
 * (a second plan), at most FUZZ_MAX_ELEMS elements.  Refusals must come
 * with a message.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DAAS_FUZZ=ON
 * Run:   build-fuzz/tests/fuzz/fuzz_onnx_load tests/fuzz/corpus-onnx -max_total_time=60 \
 *          -dict=tests/fuzz/onnx.dict   (op, attribute and domain names)
 * The seed corpus (tests/fuzz/corpus-onnx) holds small models from
 * Debian's libonnx-testdata, two small exports from data/onnx,
 * gemm_relu.onnx (test_onnx_load writes it when AAS_ONNX_SEED_DIR is set)
 * and the crash inputs found (crash-*.onnx), kept once fixed so that a
 * regression fails at once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"

#define FUZZ_MAX_ELEMS (1 << 16)

static volatile size_t sink; /* keeps the touches below from being optimised out */

static void touch_io(const aas_onnx_io_t *io) {
    if (!io->name) abort();
    sink += strlen(io->name) + (size_t)io->dtype;
    if (io->rank < -1 || io->rank > AAS_ONNX_MAX_RANK) abort();
    for (int i = 0; i < io->rank; i++) {
        sink += (size_t)io->dims[i];
        if (io->dim_params[i]) sink += strlen(io->dim_params[i]);
    }
}

/* Run g once on zeros of io's shape with symbolic dims = sym; 1 when it
 * refused (or the input is not one to feed), 0 when it ran. */
static int run_once(aas_onnx_t *g, const aas_onnx_io_t *io, int64_t sym, size_t n_out) {
    aas_onnx_tensor_t in = {.dtype = AAS_ONNX_FLOAT, .rank = io->rank};
    int64_t numel = 1;
    int symbolic = 0;
    for (int i = 0; i < io->rank && numel <= FUZZ_MAX_ELEMS; i++) {
        symbolic |= io->dims[i] < 0;
        in.dims[i] = io->dims[i] < 0 ? sym : io->dims[i];
        numel *= in.dims[i];
    }
    if (io->dtype != AAS_ONNX_FLOAT || io->rank < 0 || numel > FUZZ_MAX_ELEMS ||
        (sym != 1 && !symbolic))
        return 1;
    in.nbytes = (size_t)numel * sizeof(float);
    if (!(in.data = calloc(1, in.nbytes ? in.nbytes : 1))) return 1;
    const aas_onnx_tensor_t *out[16];
    char why[512] = "";
    aas_err_t err = aas_onnx_run(g, &in, 1, out, n_out, why, sizeof(why));
    if (err) {
        free(in.data);
        if (!why[0]) abort(); /* a refusal says why */
        return 1;
    }
    for (size_t k = 0; k < n_out; k++) {
        if (!out[k] || out[k]->rank < 0 || out[k]->rank > AAS_ONNX_MAX_RANK) abort();
        size_t es = aas_onnx_dtype_size(out[k]->dtype);
        if (es && out[k]->nbytes != (size_t)aas_onnx_numel(out[k]) * es) abort();
        /* The first and last byte: ASan checks the buffer. */
        if (out[k]->nbytes)
            sink += ((const uint8_t *)out[k]->data)[0] +
                    ((const uint8_t *)out[k]->data)[out[k]->nbytes - 1];
    }
    free(in.data); /* only now: an output may be the input (a graph output x) */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[512] = "";
    aas_onnx_t *g = NULL;
    if (aas_onnx_load(data, size, &g, why, sizeof(why)) != AAS_ERR_OK) {
        if (!why[0] || g) abort(); /* a refusal says why and writes nothing */
        return 0;
    }
    sink += strlen(aas_onnx_producer(g)) + (size_t)aas_onnx_ir_version(g) +
            (size_t)aas_onnx_opset(g, "") + (size_t)aas_onnx_opset(g, "ai.onnx.ml") +
            aas_onnx_n_nodes(g) + aas_onnx_footprint(g);
    size_t n_in = aas_onnx_n_inputs(g), n_out = aas_onnx_n_outputs(g);
    aas_onnx_io_t io;
    for (size_t i = 0; i < n_in; i++) {
        aas_onnx_input(g, i, &io);
        touch_io(&io);
    }
    for (size_t i = 0; i < n_out; i++) {
        aas_onnx_output(g, i, &io);
        touch_io(&io);
    }
    if (n_in == 1 && n_out >= 1 && n_out <= 16) {
        aas_onnx_input(g, 0, &io);
        static const int64_t sym[] = {1, 1, 3};
        for (size_t round = 0; round < sizeof(sym) / sizeof(*sym); round++)
            if (run_once(g, &io, sym[round], n_out)) break;
        sink += aas_onnx_footprint(g); /* now with the plans' buffers */
    }
    aas_onnx_destroy(g);
    return 0;
}
