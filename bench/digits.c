/* digits.c - see digits.h. */
#include "digits.h"

#include <stdio.h>
#include <string.h>

int bench_digits_load(const char *path, float *x, int32_t *y) {
    char cmd[4200];
    if (strchr(path, '\'') || strlen(path) > 4000) return -1;
    snprintf(cmd, sizeof(cmd), "gzip -dc '%s'", path);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    int rows = 0, v, ok = 1;
    while (ok && rows < DIGITS_ROWS) {
        for (int k = 0; k <= DIGITS_DIM; k++) {
            if (fscanf(f, k ? ",%d" : "%d", &v) != 1) {
                ok = 0;
                break;
            }
            if (k < DIGITS_DIM) x[rows * DIGITS_DIM + k] = (float)v;
            else y[rows] = v;
        }
        if (ok) rows++;
    }
    return pclose(f) == 0 ? rows : -1;
}
