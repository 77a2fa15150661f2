/* onnx_plan.c - being written. */
#include <stddef.h>
