/* onnx_ops_shape.c - placeholder until its kernels land (see onnx_int.h). */
#include "onnx_int.h"

const aas_onnx_op_t aas_onnx_ops_shape[] = {{NULL}};
const size_t aas_onnx_ops_shape_n = 0;
