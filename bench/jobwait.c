/* jobwait.c - see jobwait.h. */
#include "jobwait.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int bench_wait_job(aas_client_t *c, const char *prog, const char *id, aas_job_info_t *info) {
    char why[256];
    for (int i = 0; i < 600000; i++) {
        aas_err_t err = aas_client_status(c, id, info, why, sizeof(why));
        if (err && err != AAS_ERR_NOT_FOUND) {
            fprintf(stderr, "%s: status %s: %s\n", prog, id, why);
            memset(info, 0, sizeof(*info));
            return -1;
        }
        if (!err && aas_status_is_terminal(info->status)) {
            if (info->status == AAS_STATUS_SUCCEEDED) return 0;
            fprintf(stderr, "%s: job %s %s: %s\n", prog, id, aas_status_name(info->status),
                    info->error ? info->error : "");
            return -1;
        }
        if (!err) aas_job_info_clear(info);
        struct timespec ts = {0, 200000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
    memset(info, 0, sizeof(*info));
    fprintf(stderr, "%s: job %s not done in 120 s\n", prog, id);
    return -1;
}
