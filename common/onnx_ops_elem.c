/* onnx_ops_elem.c - placeholder until its kernels land (see onnx_int.h). */
#include "onnx_int.h"

const aas_onnx_op_t aas_onnx_ops_elem[] = {{NULL}};
const size_t aas_onnx_ops_elem_n = 0;
