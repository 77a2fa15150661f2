/* onnx_ops_dnn.c - being written. */
#include <stddef.h>
