/*
 * print.h - results, statuses and model serving options as text lines or
 * JSON lines on stdout.
 */
#ifndef AAS_PRINT_H
#define AAS_PRINT_H

#include <stdio.h>

#include "job.h"
#include "store.h"

/** @brief One result: a summary line, then one line per row (text), or
 *         one JSON object per line (json != 0).  A training result shows
 *         its final metrics by name; its per-epoch curves only with
 *         curves != 0.  JSON floats carry 9 significant digits, which
 *         round-trip a float32. */
void aas_print_result(FILE *fp, const aas_result_t *res, int json, int curves);

/** @brief One status record. */
void aas_print_status(FILE *fp, const char *job_id, const aas_job_info_t *info,
                      int json);

/**
 * @brief A model's serving options: "NAME precision=bf16 batch_max_rows=32
 *        batch_max_delay_us=default" (default = the worker's setting), or
 *        the same as one JSON object (unset numbers are null).
 */
void aas_print_model_serving(FILE *fp, const char *name,
                             const aas_store_model_opts_t *opts, int json);

/**
 * @brief `model show`: one JSON line with the version's metadata (meta_json
 *        is embedded as stored; NULL prints null) and "serving": the
 *        name's options, or {"error": serving_error} when they are corrupt.
 */
void aas_print_model_show(FILE *fp, const char *name, int64_t version,
                          int64_t created_ms, const char *meta_json,
                          const aas_store_model_opts_t *opts,
                          const char *serving_error);

#endif
