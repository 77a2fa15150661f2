/*
 * jobwait.h - waiting for one job's status record in the benchmarks that
 * time jobs by their Redis finish time (bench_lanes, bench_tenants).
 */
#ifndef AAS_BENCH_JOBWAIT_H
#define AAS_BENCH_JOBWAIT_H

#include "client.h"

/**
 * @brief Poll job id's status every 0.2 ms, at most 120 s, until it is
 *        terminal; its record in *info (caller clears, also on -1 once
 *        terminal).  -1 (said on stderr, prefixed prog) if the status cannot
 *        be read, the job did not succeed or is not done in time.
 */
int bench_wait_job(aas_client_t *c, const char *prog, const char *id, aas_job_info_t *info);

#endif
