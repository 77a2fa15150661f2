/*
 * fuzz_text.c - libFuzzer target for the text path a worker runs on
 * untrusted input: featurizer version 2 on any bytes (aas_textfeat_run,
 * raw and weighed, two settings), and the AASTXT2 loader on any blob
 * (aas_model_load), whose models, when they load, classify a few texts.
 * The first byte picks the path.  Refusals must come with a message; an
 * accepted text must give a finite, unit-norm vector.
 *
 * Build: cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DAAS_FUZZ=ON
 * Run:   build-fuzz/tests/fuzz/fuzz_text tests/fuzz/corpus-text -max_total_time=30
 * The seed corpus: texts in several scripts, broken UTF-8, and two small
 * AASTXT2 models (linear and MLP heads) written by tests/test_textfeat.c
 * when AAS_TEXT_SEED_DIR is set.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "textfeat.h"

static aas_textfeat_t *fz_tf[2];

static void fz_featurize(const uint8_t *d, size_t n) {
    if (!fz_tf[0]) {
        aas_textfeat_conf_t c;
        char why[128];
        aas_textfeat_conf_default(&c);
        c.dim = 1 << 10;
        if (aas_textfeat_new(&c, NULL, &fz_tf[0], why, sizeof(why))) abort();
        c.char_min = 2;
        c.char_max = 5;
        c.word_max = 3;
        c.dim = 16;
        c.sublinear_tf = 0;
        if (aas_textfeat_new(&c, NULL, &fz_tf[1], why, sizeof(why))) abort();
    }
    for (int k = 0; k < 2; k++)
        for (int raw = 0; raw < 2; raw++) {
            const uint32_t *idx;
            const float *val;
            size_t nnz;
            char why[256] = "";
            aas_err_t err = aas_textfeat_run(fz_tf[k], (const char *)d, n, raw, &idx, &val,
                                             &nnz, why, sizeof(why));
            if (err) {
                if (!why[0]) abort();
                continue;
            }
            double s = 0;
            for (size_t i = 0; i < nnz; i++) {
                if (!isfinite(val[i]) || idx[i] >= (k ? 16u : 1024u)) abort();
                s += (double)val[i] * val[i];
            }
            if (!raw && fabs(s - 1.0) > 1e-3) abort();
        }
}

static void fz_model(const uint8_t *d, size_t n) {
    aas_model_t *m = NULL;
    char why[256] = "";
    if (n > ((size_t)8 << 20)) return;
    if (aas_model_load(d, n, &m, why, sizeof(why))) {
        if (!why[0]) abort();
        return;
    }
    if (aas_model_takes_text(m) && aas_model_output_dim(m) <= 4096) {
        const char *texts[3] = {"好评，质量很好", "bad product", "!!"};
        size_t lens[3] = {strlen(texts[0]), strlen(texts[1]), strlen(texts[2])};
        float *out = malloc(3 * (size_t)aas_model_output_dim(m) * sizeof(float));
        if (out) {
            aas_model_infer_text(m, texts, lens, 2, out, why, sizeof(why));
            aas_model_infer_text(m, texts + 2, lens + 2, 1, out, why, sizeof(why));
        }
        free(out);
    }
    aas_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) fz_model(data + 1, size - 1);
    else fz_featurize(data + 1, size - 1);
    return 0;
}
