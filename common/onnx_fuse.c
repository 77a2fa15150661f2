/* onnx_fuse.c - being written. */
#include <stddef.h>
