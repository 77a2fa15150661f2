/* dnn.c - oneDNN status to aas_err_t; see dnn.h. */
#include "dnn.h"

#include <dnnl_debug.h>
#include <string.h>

aas_err_t aas_dnn_status(dnnl_status_t st, const char *call, const char *file,
                         int line, char *errstr, size_t errstr_size) {
    if (st == dnnl_success) return AAS_ERR_OK;
    const char *paren = strchr(call, '('); /* the name only, not the arguments */
    const char *base = strrchr(file, '/');
    return aas_err_set(errstr, errstr_size, AAS_ERR_DNN,
                       "oneDNN %.*s: %s (status %d) at %s:%d",
                       paren ? (int)(paren - call) : (int)strlen(call), call,
                       dnnl_status2str(st), (int)st, base ? base + 1 : file, line);
}

aas_err_t aas_dnn_inner_product_pd(dnnl_primitive_desc_t *pd, const dnnl_memory_desc_t *src,
                                   int64_t n, int64_t k, dnnl_data_type_t wdt,
                                   const dnnl_memory_desc_t *bias,
                                   const dnnl_memory_desc_t *dst,
                                   const_dnnl_primitive_attr_t attr, dnnl_engine_t engine,
                                   int prefer_oi, char *errstr, size_t errstr_size) {
    dnnl_dims_t wd = {n, k};
    dnnl_memory_desc_t w_md;
    dnnl_inner_product_desc_t ipd;
    dnnl_primitive_desc_t p = NULL;
    aas_err_t err;
    for (int pass = 0; pass < 2; pass++) {
        dnnl_format_tag_t tag = pass ? dnnl_oi : dnnl_format_tag_any;
        if ((err = AAS_DNN_CHECK(dnnl_memory_desc_init_by_tag(&w_md, 2, wd, wdt, tag))) ||
            (err = AAS_DNN_CHECK(dnnl_inner_product_forward_desc_init(
                 &ipd, dnnl_forward_inference, src, &w_md, bias, dst))) ||
            (err = AAS_DNN_CHECK(dnnl_primitive_desc_create(&p, &ipd, attr, engine, NULL))))
            return err;
        /* "brgemm:avx512_core" also contains "gemm": matching it sent
         * AVX-512 CPUs to the gemm path with "oi" weights, 17 % slower at
         * batch 64 than the brgemm oneDNN picked (Zen 4, 2026-12-05). */
        const char *impl = "";
        if (pass || !prefer_oi ||
            dnnl_primitive_desc_query(p, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
            !strstr(impl, "gemm") || strstr(impl, "brgemm"))
            break;
        dnnl_primitive_desc_destroy(p);   /* the gemm path: again with "oi" */
        p = NULL;
    }
    *pd = p;
    return AAS_ERR_OK;
}
