/*
 * input.h - numeric rows for jobs, from CSV, JSON or a command-line list.
 *
 * CSV: one row per line, comma-separated numbers; a first line that is not
 * numeric is a header and skipped; blank lines and '#' lines ignored.
 * JSON: [[...], ...], [...] (one row) or {"inputs": [[...], ...]}.
 * Every row must have the same number of values, all finite.
 *
 * Ownership: aas_rows_t owns `values`; free with aas_rows_clear().
 */
#ifndef AAS_INPUT_H
#define AAS_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct {
    float *values;   /* rows x cols, row-major */
    int64_t rows, cols;
} aas_rows_t;

/** @brief Parse "1,2,3" (one row). */
aas_err_t aas_input_parse_list(const char *list, aas_rows_t *out, char *errstr,
                               size_t errstr_size);
/**
 * @brief Read a CSV or JSON file ("-" = stdin); format "csv", "json" or NULL
 *        (by extension, else CSV).  max_bytes bounds the file.
 * @param drop_last_column 1 to ignore each CSV row's last value (a label).
 */
aas_err_t aas_input_read_file(const char *path, const char *format,
                              int drop_last_column, size_t max_bytes,
                              aas_rows_t *out, char *errstr,
                              size_t errstr_size);
void aas_rows_clear(aas_rows_t *r);

#endif
