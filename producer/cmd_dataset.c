/* cmd_dataset.c - aas-producer dataset: put (rows with the label last, to
 * Redis) and delete (cmd.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "input.h"

static int cmd_dataset_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    int put = n == 2 && !strcmp(args[0], "put") && o->input;
    int del = n == 2 && !strcmp(args[0], "delete");
    if (!put && !del) {
        fprintf(stderr, "aas-producer: usage: dataset put NAME --input FILE | "
                        "dataset delete NAME\n");
        return AAS_EXIT_USAGE;
    }
    if (!aas_id_valid(args[1])) {
        fprintf(stderr, "aas-producer: data set name '%s' is not valid ([A-Za-z0-9_.-])\n",
                args[1]);
        return AAS_EXIT_USAGE;
    }
    return 0;
}

/* dataset put NAME --input FILE | dataset delete NAME */
static int cmd_dataset(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    char why[512];
    if (!strcmp(args[0], "delete")) {
        aas_err_t err = aas_store_dataset_delete(aas_client_store(c), args[1], why,
                                                 sizeof(why));
        if (err) {
            fprintf(stderr, "aas-producer: %s\n", why);
            return 1;
        }
        printf("%s deleted\n", args[1]);
        return 0;
    }
    aas_rows_t rows = {0};
    aas_err_t err = aas_input_read_file(o->input, o->format, 0, (size_t)4 << 30, &rows,
                                        why, sizeof(why));
    if (!err && rows.cols < 2)
        err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                          "each row needs features and a label");
    int64_t dim = rows.cols - 1;
    float *x = err ? NULL : malloc((size_t)(rows.rows * dim) * sizeof(float));
    int32_t *y = err ? NULL : malloc((size_t)rows.rows * sizeof(int32_t));
    if (!err && (!x || !y)) err = aas_err_set(why, sizeof(why), AAS_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; !err && r < rows.rows; r++) {
        float l = rows.values[r * rows.cols + dim];
        if (l < 0 || l > 65535 || l != (float)(int32_t)l)
            err = aas_err_set(why, sizeof(why), AAS_ERR_SHAPE,
                              "row %lld: label %g is not a class index", (long long)r + 1,
                              (double)l);
        y[r] = (int32_t)l;
        memcpy(x + r * dim, rows.values + r * rows.cols, (size_t)dim * sizeof(float));
    }
    if (!err) err = aas_client_dataset_put(c, args[1], x, y, rows.rows, dim, why, sizeof(why));
    if (!err) printf("%s rows=%lld dim=%lld\n", args[1], (long long)rows.rows, (long long)dim);
    else fprintf(stderr, "aas-producer: %s\n", why);
    free(x);
    free(y);
    aas_rows_clear(&rows);
    return err ? (aas_err_is_retriable(err) ? 1 : AAS_EXIT_USAGE) : 0;
}

static const aas_cmd_help_t dataset_help[] = {
    {"dataset put SET --input FILE", "upload rows (label last) to Redis"},
    {"dataset delete SET", "delete an uploaded data set"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_dataset_def = {"dataset", cmd_dataset_check, cmd_dataset,
                                       dataset_help};
