/*
 * trainer_rows.h - the tabular training data of a job read from a source
 * (worker/source.h): CSV lines of numbers with the class label last, into
 * the F32 features and I32 labels trainer.c trains on.  It only parses and
 * checks; parameters and training stay in trainer.c.  Thread-safe (no
 * state); one source is one thread's.
 */
#ifndef AAS_TRAINER_ROWS_H
#define AAS_TRAINER_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "source.h"
#include "tensor.h"

/**
 * @brief Read every CSV line of src into features F32 [n, dim] and labels
 *        I32 [n]; n and dim come from the data.  Blank lines and lines
 *        starting with '#' are skipped; every other line is dim + 1 numbers
 *        (dim >= 1, the same count on every line), finite as f32, the last
 *        an integer class label 0..65535.  Anything else is AAS_ERR_INVAL
 *        (AAS_ERR_SHAPE for a wrong count, AAS_ERR_NONFINITE for NaN/Inf)
 *        naming the source and the line (lines as the source yields them,
 *        1-based: a CSV header is not one of them).
 *
 *        Two passes over src, both from aas_src_rewind(src, 0): the first
 *        counts and checks, then n <= max_rows and n * (dim + 1) * 4 <=
 *        max_bytes are checked (AAS_ERR_TOO_LARGE) before anything is
 *        allocated, the second parses into the tensors.  Memory: the parsed
 *        rows (n * (dim + 1) * 4 bytes) plus what the source holds (one
 *        chunk, aas_src_footprint()) plus one line.  A source whose lines
 *        changed between the passes is an error (AAS_ERR_CONFLICT).
 * @param src an AAS_SRC_CSV source (AAS_ERR_INVAL otherwise), borrowed;
 *        left at its end.
 * @param features, labels filled on success only; each owns its data
 *        (aas_tensor_clear()).
 */
aas_err_t aas_trainer_rows_load(aas_src_t *src, int64_t max_rows, size_t max_bytes,
                                aas_tensor_t *features, aas_tensor_t *labels,
                                char *errstr, size_t errstr_size);

#endif
