/*
 * input.h - numeric rows for jobs, from CSV, JSON or a command-line list.
 *
 * CSV: one row per line, comma-separated numbers; blank lines and '#'
 * lines ignored.  Headers are explicit, never guessed: with header = 1 the
 * first line (not blank, not '#') is a header and skipped; otherwise a
 * first line that is not numbers is an error that suggests --header.
 * JSON: [[...], ...], [...] (one row) or {"inputs": [[...], ...]}.
 * Every row must have the same number of values, all finite.
 *
 * Labeled text (a text classifier's training data, docs/text.md): TSV,
 * one "label<TAB>text" per line; blank lines and '#' lines ignored; a
 * trailing '\r' is dropped; the label is non-empty, has no ',' and at most
 * 256 bytes; the text is the rest of the line (it may hold more tabs).
 *
 * Ownership: aas_rows_t owns `values`; free with aas_rows_clear().
 * aas_labeled_text_t owns everything in it; free with aas_labeled_text_clear().
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
 * @param header CSV: 1 the first line is a header (skipped), 0 there is
 *        none, -1 not said (treated as none); aas_cmd_opts_t.header.
 */
aas_err_t aas_input_read_file_hdr(const char *path, const char *format,
                                  int drop_last_column, int header, size_t max_bytes,
                                  aas_rows_t *out, char *errstr, size_t errstr_size);

/** @brief aas_input_read_file_hdr() with header -1 (no header line). */
aas_err_t aas_input_read_file(const char *path, const char *format,
                              int drop_last_column, size_t max_bytes,
                              aas_rows_t *out, char *errstr,
                              size_t errstr_size);
void aas_rows_clear(aas_rows_t *r);

typedef struct {
    char *texts;        /* the n texts joined by '\n' (none after the last) */
    size_t bytes;       /* length of texts */
    int32_t *labels;    /* n class indices into names */
    int64_t n;
    char **names;       /* n_names distinct labels, sorted by strcmp */
    size_t n_names;
} aas_labeled_text_t;

/**
 * @brief Read labeled text lines from path ("-" = stdin); classes are the
 *        distinct labels sorted by strcmp (index = position).  max_bytes
 *        bounds the texts.  On failure errstr names the line.
 */
aas_err_t aas_input_read_labeled_text(const char *path, size_t max_bytes,
                                      aas_labeled_text_t *out, char *errstr,
                                      size_t errstr_size);
void aas_labeled_text_clear(aas_labeled_text_t *t);

#endif
