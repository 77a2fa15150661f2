/*
 * digits.h - the UCI digits data (data/digits.csv.gz: 1,797 rows of 64
 * pixel values 0..16 and a label) for the benchmarks that train on it.
 */
#ifndef AAS_BENCH_DIGITS_H
#define AAS_BENCH_DIGITS_H

#include <stdint.h>

#define DIGITS_ROWS 1797
#define DIGITS_DIM 64

/**
 * @brief Read path (gzip CSV) into x (DIGITS_ROWS x DIGITS_DIM) and y.
 * @return the rows read, or -1 if the file could not be read whole.
 */
int bench_digits_load(const char *path, float *x, int32_t *y);

#endif
