/* err.c - tables behind err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const struct {
    const char *name;
    const char *msg;
    int retriable;
} aas_err_tab[] = {
#define AAS_ERR_ROW_(name, msg, retry) {"AAS_ERR_" #name, msg, retry},
    AAS_ERR_MAP(AAS_ERR_ROW_)
#undef AAS_ERR_ROW_
};

static int aas_err_valid(aas_err_t err) {
    return (int)err >= 0 && err < AAS_ERR__COUNT;
}

const char *aas_err_name(aas_err_t err) {
    return aas_err_valid(err) ? aas_err_tab[err].name : "AAS_ERR_?";
}

const char *aas_err_str(aas_err_t err) {
    return aas_err_valid(err) ? aas_err_tab[err].msg : "unknown error";
}

int aas_err_is_retriable(aas_err_t err) {
    return aas_err_valid(err) ? aas_err_tab[err].retriable : 0;
}

aas_err_t aas_err_set(char *errstr, size_t errstr_size, aas_err_t err,
                      const char *fmt, ...) {
    if (errstr && errstr_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
