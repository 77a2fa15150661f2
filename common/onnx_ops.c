/* onnx_ops.c - being written. */
#include <stddef.h>
