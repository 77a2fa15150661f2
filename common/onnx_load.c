/* onnx_load.c - being written. */
#include <stddef.h>
