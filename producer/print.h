/*
 * print.h - results, statuses, model serving options and model
 * descriptions as text lines or JSON lines on stdout.
 */
#ifndef AAS_PRINT_H
#define AAS_PRINT_H

#include <stdio.h>

#include "job.h"
#include "model.h"
#include "onnx.h"
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

/**
 * @brief `model describe`.  Text: a first line "NAME@VERSION kind=KIND"
 *        (just NAME for version 0), for ONNX followed by ir_version=,
 *        opsets=ai.onnx:13,... producer="..." nodes=N, then one line per
 *        graph input and output ("input  NAME DTYPE [batch,64]": symbolic
 *        dims by their dim_param, '?' for an unknown one, an undeclared
 *        shape or a value that is not a tensor), then "serving input_dim=.. output_dim=.. classifier=yes|no
 *        labels=N", what workers feed and return per row, or "serving
 *        refused: WHY".  json != 0: the same as one JSON object (shape
 *        entries are numbers, dim_param strings or null).
 * @param g the graph for kind ONNX, else NULL.
 * @param m the model as workers load it, or NULL with serving_error.
 */
void aas_print_model_describe(FILE *fp, const char *name, int64_t version,
                              const char *kind, const aas_onnx_t *g,
                              const aas_model_t *m, const char *serving_error,
                              int json);

#endif
