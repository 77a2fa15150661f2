/* onnx_ops_ml.c - placeholder until its kernels land (see onnx_int.h). */
#include "onnx_int.h"

const aas_onnx_op_t aas_onnx_ops_ml[] = {{NULL}};
const size_t aas_onnx_ops_ml_n = 0;
