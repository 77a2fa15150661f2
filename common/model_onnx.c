/* model_onnx.c - being written. */
#include <stddef.h>
