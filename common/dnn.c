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
