/*
 * print.h - results and statuses as text lines or JSON lines on stdout.
 */
#ifndef AAS_PRINT_H
#define AAS_PRINT_H

#include <stdio.h>

#include "job.h"
#include "store.h"

/** @brief One result: a summary line, then one line per row (text), or
 *         one JSON object per line (json != 0). */
void aas_print_result(FILE *fp, const aas_result_t *res, int json);

/** @brief One status record. */
void aas_print_status(FILE *fp, const char *job_id, const aas_job_info_t *info,
                      int json);

#endif
