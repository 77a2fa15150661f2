/* cmd_usage.c - aas-producer usage: what each tenant used, from the
 * hourly metering buckets in Redis (store.h "usage metering",
 * docs/sharing.md#metering), summed over a time range per tenant and
 * model (or per hour with --hourly), as a table or CSV (cmd.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"

#define USAGE_USAGE                                                                     \
    "aas-producer: usage: usage [--tenant T] [--since TIME] [--until TIME] [--hourly] " \
    "[--csv]\n  TIME: YYYY-MM-DD, YYYY-MM-DDTHH (UTC), or -Nh / -Nd (N hours/days ago)\n"

#define HOUR_MS 3600000LL

/* TIME as a unix hour number; -1 if it is not one. */
static int64_t parse_hour(const char *s, int64_t now_hour) {
    char *end;
    if (s[0] == '-') {
        long long n = strtoll(s + 1, &end, 10);
        if (end == s + 1 || n < 0 || n > 1000000 || (strcmp(end, "h") && strcmp(end, "d")))
            return -1;
        return now_hour - (end[0] == 'd' ? n * 24 : n);
    }
    struct tm tm = {0};
    int y, mo, d, h = 0, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3) return -1;
    if (s[used] == 'T') {
        int more = 0;
        if (sscanf(s + used, "T%2d%n", &h, &more) != 1) return -1;
        used += more;
    }
    if (s[used] || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || y < 1970) return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t / 3600;
}

static int64_t now_hour(void) { return (int64_t)time(NULL) / 3600; }

static int cmd_usage_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    (void)args;
    if (n != 0) {
        fputs(USAGE_USAGE, stderr);
        return AAS_EXIT_USAGE;
    }
    if (o->tenant && !aas_id_valid(o->tenant)) {
        fprintf(stderr, "aas-producer: tenant '%s' is not valid ([A-Za-z0-9_.-])\n", o->tenant);
        return AAS_EXIT_USAGE;
    }
    int64_t nh = now_hour();
    if ((o->since && parse_hour(o->since, nh) < 0) || (o->until && parse_hour(o->until, nh) < 0)) {
        fputs(USAGE_USAGE, stderr);
        return AAS_EXIT_USAGE;
    }
    return 0;
}

static void hour_str(int64_t hour, char *buf, size_t size) {
    time_t t = (time_t)(hour * 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H", &tm);
}

static void print_row(const aas_cmd_opts_t *o, const aas_usage_row_t *r, const char *when) {
    const aas_usage_t *u = &r->u;
    if (o->csv) {
        printf("%s,%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
               ",%" PRId64 ",%" PRId64 "\n",
               when, r->tenant, r->model, r->jobs, r->failed, u->rows, u->compute_us,
               u->queue_ms, u->bytes_in, u->bytes_out, u->sample_epochs);
        return;
    }
    printf("%-13s %-20s %-20s %9" PRId64 " %7" PRId64 " %10" PRId64 " %12.3f %12.3f %12" PRId64
           " %12" PRId64 " %12" PRId64 "\n",
           when, r->tenant, r->model, r->jobs, r->failed, u->rows, (double)u->compute_us / 1e6,
           (double)u->queue_ms / 1e3, u->bytes_in, u->bytes_out, u->sample_epochs);
}

/* Sum b into a (same tenant and model). */
static void add_row(aas_usage_row_t *a, const aas_usage_row_t *b) {
    a->jobs += b->jobs;
    a->failed += b->failed;
    a->u.rows += b->u.rows;
    a->u.compute_us += b->u.compute_us;
    a->u.queue_ms += b->u.queue_ms;
    a->u.bytes_in += b->u.bytes_in;
    a->u.bytes_out += b->u.bytes_out;
    a->u.sample_epochs += b->u.sample_epochs;
}

static int by_tenant_model(const void *x, const void *y) {
    const aas_usage_row_t *a = x, *b = y;
    int c = strcmp(a->tenant, b->tenant);
    return c ? c : strcmp(a->model, b->model);
}

static int cmd_usage(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t n) {
    (void)args;
    (void)n;
    int64_t nh = now_hour();
    int64_t since = o->since ? parse_hour(o->since, nh) : 0;
    int64_t until = o->until ? parse_hour(o->until, nh) : nh + 1;
    aas_usage_row_t *rows = NULL;
    size_t nr = 0;
    char why[512];
    if (aas_store_usage_read(aas_client_store(c), o->tenant, since, until, &rows, &nr, why,
                             sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    if (!o->hourly && nr > 1) {
        /* One row per tenant and model: sort by them, then fold runs. */
        qsort(rows, nr, sizeof(*rows), by_tenant_model);
        size_t k = 0;
        for (size_t i = 1; i < nr; i++) {
            if (!by_tenant_model(&rows[k], &rows[i])) {
                add_row(&rows[k], &rows[i]);
                free(rows[i].tenant);
                free(rows[i].model);
            } else {
                rows[++k] = rows[i];
            }
        }
        nr = k + 1;
    }
    const char *cols[] = {o->hourly ? "HOUR" : "RANGE", "TENANT", "MODEL", "JOBS", "FAILED",
                          "ROWS", "COMPUTE_S", "QUEUE_S", "BYTES_IN", "BYTES_OUT",
                          "SAMPLE_EPOCHS"};
    if (o->csv)
        printf("%s,tenant,model,jobs,failed,rows,compute_us,queue_ms,bytes_in,bytes_out,"
               "sample_epochs\n", o->hourly ? "hour" : "range");
    else
        printf("%-13s %-20s %-20s %9s %7s %10s %12s %12s %12s %12s %12s\n", cols[0], cols[1],
               cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], cols[10]);
    char when[40], from[20], to[20];
    hour_str(since, from, sizeof(from));
    hour_str(until, to, sizeof(to));
    for (size_t i = 0; i < nr; i++) {
        if (o->hourly) hour_str(rows[i].hour, when, sizeof(when));
        else snprintf(when, sizeof(when), "%s", o->since ? from : "all");
        print_row(o, &rows[i], when);
    }
    if (!o->csv)
        fprintf(stderr, "aas-producer: %zu row(s), hours %s .. %s UTC (end excluded)\n", nr,
                o->since ? from : "first", to);
    aas_usage_rows_free(rows, nr);
    return 0;
}

static const aas_cmd_help_t usage_help[] = {
    {"usage [--tenant T] [--since TIME]", "jobs, rows, compute, bytes per tenant\nand model "
                                          "(--hourly, --csv; TIME:\nYYYY-MM-DD[THH] UTC or -Nh/-Nd)"},
    {NULL, NULL}};

const aas_cmd_t aas_cmd_usage_def = {"usage", cmd_usage_check, cmd_usage, usage_help, NULL};
