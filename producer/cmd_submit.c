/* cmd_submit.c - aas-producer submit: rows or text in, inference jobs out
 * (cmd.h); --wait prints their results through cmd_jobs.c.  A text comes
 * from --text or from a file (--text-file PATH, '-' = stdin), read with a
 * bound (client.text.max.bytes) and checked here (UTF-8, no NUL) so that
 * a bad byte is named by its offset before anything is sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "input.h"

/* Offset of the first byte of s[0..n) that is not part of valid UTF-8
 * (no overlongs, no surrogates, at most U+10FFFF) or is NUL; n if none. */
static size_t text_bad_offset(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b == 0) return i;
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t k = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2
                 : b >= 0xf0 && b <= 0xf4 ? 3 : 0;
        if (k == 0 || n - i <= k) return i;
        unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (b == 0xe0) lo = 0xa0;
        else if (b == 0xed) hi = 0x9f;
        else if (b == 0xf0) lo = 0x90;
        else if (b == 0xf4) hi = 0x8f;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return i;
        i += k + 1;
    }
    return n;
}

/* 0 if text[0..n) can be a job's text, else AAS_EXIT_USAGE having said
 * which byte is wrong; `what` names where the text came from. */
static int text_check(const char *what, const char *text, size_t n) {
    size_t bad = text_bad_offset((const unsigned char *)text, n);
    if (bad == n) return 0;
    fprintf(stderr, "aas-producer: %s: %s at byte offset %zu (0-based; a job's text is "
            "UTF-8 without NUL bytes)\n", what, text[bad] ? "invalid UTF-8" : "a NUL byte",
            bad);
    return AAS_EXIT_USAGE;
}

/* Read --text-file PATH ('-' = stdin) into *out (NUL-terminated, caller
 * frees): its bytes, a final "\n" or "\r\n" dropped, at most max bytes
 * after that.  Exit code, having said why: AAS_EXIT_USAGE for a file that
 * cannot be read or is empty, 1 for one over the limit. */
static int text_file_read(const char *path, size_t max, char **out) {
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "- (stdin)" : path;
    FILE *fp = is_stdin ? stdin : fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "aas-producer: --text-file %s: %s\n", name, strerror(errno));
        return AAS_EXIT_USAGE;
    }
    struct stat st;
    int stat_ok = fstat(fileno(fp), &st) == 0;
    if (stat_ok && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "aas-producer: --text-file %s: is a directory\n", name);
        if (!is_stdin) fclose(fp);
        return AAS_EXIT_USAGE;
    }
    /* Room for max bytes, the "\r\n" that may follow, one byte more to
     * see that there is more, and the terminator. */
    size_t bound = max + 3, cap = bound < 65536 ? bound + 1 : 65536, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf && len < bound) {
        if (len == cap - 1) {
            size_t ncap = cap * 2 > bound + 1 ? bound + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, fp);
        len += got;
        if (got == 0) break;
    }
    if (!buf) {
        fprintf(stderr, "aas-producer: --text-file %s: out of memory\n", name);
        rc = 1;
    } else if (ferror(fp)) {
        fprintf(stderr, "aas-producer: --text-file %s: read failed: %s\n", name,
                strerror(errno));
        rc = AAS_EXIT_USAGE;
    }
    if (!rc) {
        if (len > 0 && buf[len - 1] == '\n') { /* one "\n" or "\r\n" */
            len--;
            if (len > 0 && buf[len - 1] == '\r') len--;
        }
        if (len > max) {
            char size[64];
            snprintf(size, sizeof(size), "more than %zu bytes", max);
            if (stat_ok && S_ISREG(st.st_mode))
                snprintf(size, sizeof(size), "%lld bytes", (long long)st.st_size);
            fprintf(stderr, "aas-producer: --text-file %s: %s, over client.text.max.bytes="
                    "%zu; the workers FAIL texts over their job.max.text.bytes (default "
                    "1048576): raise both, or send a shorter text\n", name, size, max);
            rc = 1;
        } else if (len == 0) {
            fprintf(stderr, "aas-producer: --text-file %s: empty (no text)\n", name);
            rc = AAS_EXIT_USAGE;
        }
    }
    if (!is_stdin) fclose(fp);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    if ((rc = text_check(is_stdin ? "--text-file -" : path, buf, len))) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

static void on_delivery(void *opaque, const char *job_id, aas_err_t err,
                        const char *why) {
    if (err) fprintf(stderr, "aas-producer: job %s: %s\n", job_id, why);
}

/* Hand one job to the client; exit code, having said why.  An id in use
 * and a quota refusal have exit codes of their own, so a script can tell
 * them from a failure. */
static int publish(aas_client_t *c, const aas_job_t *job) {
    char why[2048]; /* a size refusal names every limit */
    aas_err_t err = aas_client_submit(c, job, why, sizeof(why));
    if (!err) return 0;
    fprintf(stderr, "aas-producer: %s\n", why);
    if (err == AAS_ERR_QUOTA) return AAS_EXIT_QUOTA; /* a script retries after a while */
    return err == AAS_ERR_CONFLICT ? AAS_EXIT_ID_IN_USE : 1;
}

/* Wait until the broker has every job handed over; exit code.  A job the
 * broker refused was reported by on_delivery. */
static int settle(aas_client_t *c) {
    char why[512];
    size_t failed = 0;
    if (aas_client_flush(c, 60000, &failed, why, sizeof(why))) {
        fprintf(stderr, "aas-producer: %s\n", why);
        return 1;
    }
    if (failed) {
        fprintf(stderr, "aas-producer: %zu job(s) were not published\n", failed);
        return 1;
    }
    return 0;
}

/* Publish one job and wait until the broker has it; print its id, or with
 * --wait its result. */
int aas_cmd_submit_one(aas_client_t *c, const aas_cmd_opts_t *o, const aas_job_t *job) {
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    int rc = publish(c, job);
    if (!rc) rc = settle(c);
    if (rc) return rc;
    if (!o->wait) {
        printf("%s\n", job->id);
        return 0;
    }
    char *ids[1] = {job->id};
    return aas_cmd_wait(c, o, ids, 1);
}

/* --input FILE --format lines|tsv: one text job per line (tsv: the text
 * after the first TAB, e.g. a labeled test set), published in file order;
 * blank lines and, for tsv, '#' lines are skipped.  Exit code. */
static int submit_lines(aas_client_t *c, const aas_cmd_opts_t *o, int tsv) {
    int is_stdin = strcmp(o->input, "-") == 0;
    FILE *fp = is_stdin ? stdin : fopen(o->input, "rb");
    if (!fp) {
        fprintf(stderr, "aas-producer: --input %s: %s\n", o->input, strerror(errno));
        return AAS_EXIT_USAGE;
    }
    char *line = NULL, **ids = NULL;
    size_t cap = 0, n_ids = 0, ids_cap = 0, max = aas_client_text_max_bytes(c);
    ssize_t got;
    int rc = 0;
    long lineno = 0;
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    while (!rc && (got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        char *text = line;
        if (tsv) {
            char *tab = memchr(line, '\t', n);
            if (n == 0 || line[0] == '#') continue;
            if (!tab) {
                fprintf(stderr, "aas-producer: %s line %ld: no TAB (want label<TAB>text)\n",
                        o->input, lineno);
                rc = AAS_EXIT_USAGE;
                break;
            }
            text = tab + 1;
            n -= (size_t)(text - line);
        }
        if (n == 0) continue;
        char what[600];
        snprintf(what, sizeof(what), "%s line %ld", o->input, lineno);
        if ((rc = text_check(what, text, n))) break;
        if (n > max) {
            fprintf(stderr, "aas-producer: %s: %zu bytes, over client.text.max.bytes=%zu\n",
                    what, n, max);
            rc = 1;
            break;
        }
        if (n_ids == ids_cap) {
            ids_cap = ids_cap ? ids_cap * 2 : 256;
            char **t = realloc(ids, ids_cap * sizeof(char *));
            if (!t) {
                rc = 1;
                break;
            }
            ids = t;
        }
        char id[AAS_ID_MAX + 1];
        if (aas_client_job_id(id, sizeof(id)) || !(ids[n_ids] = strdup(id))) {
            rc = 1;
            break;
        }
        n_ids++;
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version, .text = text,
                         .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority, .tenant = (char *)o->tenant};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        rc = publish(c, &job);
    }
    free(line);
    if (!is_stdin) fclose(fp);
    int settled = settle(c);
    if (!rc) rc = settled;
    if (!rc && n_ids == 0) {
        fprintf(stderr, "aas-producer: --input %s has no text\n", o->input);
        rc = AAS_EXIT_USAGE;
    }
    if (!rc && !o->wait)
        for (size_t j = 0; j < n_ids; j++) printf("%s\n", ids[j]);
    if (!rc && o->wait) rc = aas_cmd_wait(c, o, ids, n_ids);
    for (size_t j = 0; j < n_ids; j++) free(ids[j]);
    free(ids);
    return rc;
}

static int cmd_submit(aas_client_t *c, const aas_cmd_opts_t *o, char **args, size_t nargs) {
    char why[512];
    aas_rows_t rows = {0};
    aas_err_t err;
    if (o->input && o->format && (!strcmp(o->format, "lines") || !strcmp(o->format, "tsv")))
        return submit_lines(c, o, !strcmp(o->format, "tsv"));
    if (o->text || o->text_file) {
        char id[AAS_ID_MAX + 1];
        char *text = NULL; /* --text-file's bytes */
        int rc = o->text_file
                     ? text_file_read(o->text_file, aas_client_text_max_bytes(c), &text)
                     : text_check("--text", o->text, strlen(o->text));
        if (rc) return rc;
        if (o->id) snprintf(id, sizeof(id), "%s", o->id);
        else if (aas_client_job_id(id, sizeof(id))) {
            free(text);
            return 1;
        }
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version,
                         .text = text ? text : (char *)o->text,
                         .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority, .tenant = (char *)o->tenant};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        rc = aas_cmd_submit_one(c, o, &job);
        free(text);
        return rc;
    }
    err = o->values ? aas_input_parse_list(o->values, &rows, why, sizeof(why))
                    : aas_input_read_file_hdr(o->input, o->format, o->drop_last, o->header,
                                              (size_t)1 << 30, &rows, why, sizeof(why));
    if (err) {
        fprintf(stderr, "aas-producer: input: %s\n", why);
        return AAS_EXIT_USAGE;
    }
    int64_t per = o->rows_per_job > 0 ? o->rows_per_job : rows.rows;
    size_t n_jobs = (size_t)((rows.rows + per - 1) / per);
    if (o->id && n_jobs > 1) {
        fprintf(stderr, "aas-producer: --id names one job, but the input makes %zu\n",
                n_jobs);
        aas_rows_clear(&rows);
        return AAS_EXIT_USAGE;
    }
    char **ids = calloc(n_jobs, sizeof(*ids));
    int rc = 0;
    aas_client_set_delivery_cb(c, on_delivery, NULL);
    for (size_t j = 0; ids && j < n_jobs && !rc; j++) {
        char id[AAS_ID_MAX + 1];
        if (o->id)
            snprintf(id, sizeof(id), "%s", o->id);
        else if (aas_client_job_id(id, sizeof(id))) {
            rc = 1;
            break;
        }
        int64_t r0 = (int64_t)j * per;
        int64_t nr = rows.rows - r0 < per ? rows.rows - r0 : per;
        aas_tensor_t t;
        int64_t shape[2] = {nr, rows.cols};
        if (aas_tensor_set_f32(&t, "input", rows.values + r0 * rows.cols, 2, shape)) {
            rc = 1;
            break;
        }
        aas_job_t job = {.id = id, .kind = AAS_JOB_INFER, .model = (char *)o->model,
                         .model_version = (char *)o->model_version, .inputs = &t,
                         .n_inputs = 1, .params = o->params, .n_params = o->n_params,
                         .priority = (int32_t)o->priority, .tenant = (char *)o->tenant};
        if (o->deadline_ms > 0) job.deadline_ms = aas_now_ms() + o->deadline_ms;
        rc = publish(c, &job);
        aas_tensor_clear(&t);
        if (rc) break;
        ids[j] = strdup(id);
        if (!ids[j]) rc = 1;
    }
    aas_rows_clear(&rows);
    int settled = settle(c); /* what was handed over, even after a failure */
    if (!rc) rc = settled;
    if (!rc && !o->wait)
        for (size_t j = 0; j < n_jobs; j++) printf("%s\n", ids[j]);
    if (!rc && o->wait) rc = aas_cmd_wait(c, o, ids, n_jobs);
    for (size_t j = 0; ids && j < n_jobs; j++) free(ids[j]);
    free(ids);
    return rc ? rc : (ids ? 0 : 1);
}

static int cmd_submit_check(const aas_cmd_opts_t *o, char **args, size_t n) {
    if (n > 0) {
        fprintf(stderr, "aas-producer: submit takes no arguments ('%s'; see --help)\n",
                args[0]);
        return AAS_EXIT_USAGE;
    }
    if (!o->model || !aas_id_valid(o->model)) {
        fprintf(stderr, "aas-producer: submit needs --model NAME ([A-Za-z0-9_.-])\n");
        return AAS_EXIT_USAGE;
    }
    if (o->text && o->text_file) {
        fprintf(stderr, "aas-producer: --text and --text-file exclude each other (one "
                        "text per job)\n");
        return AAS_EXIT_USAGE;
    }
    if ((o->text || o->text_file) && (o->values || o->input)) {
        fprintf(stderr, "aas-producer: --%s goes without --values/--input\n",
                o->text ? "text" : "text-file");
        return AAS_EXIT_USAGE;
    }
    if (o->text_file && !o->text_file[0]) {
        fprintf(stderr, "aas-producer: --text-file needs a path ('-' = stdin)\n");
        return AAS_EXIT_USAGE;
    }
    if (!o->text && !o->text_file && !!o->values == !!o->input) {
        fprintf(stderr, "aas-producer: submit needs exactly one of --values, --input, "
                        "--text or --text-file\n");
        return AAS_EXIT_USAGE;
    }
    if (o->id && o->input && o->format &&
        (!strcmp(o->format, "lines") || !strcmp(o->format, "tsv"))) {
        fprintf(stderr, "aas-producer: --id names one job; --format %s makes one per line\n",
                o->format);
        return AAS_EXIT_USAGE;
    }
    if (o->id && !aas_cmd_id_ok("--id", o->id)) return AAS_EXIT_USAGE;
    if (o->model_version && !aas_cmd_id_ok("--model-version", o->model_version))
        return AAS_EXIT_USAGE;
    return 0;
}

static const aas_cmd_help_t submit_help[] = {
    {"submit --model NAME [input] [options]", "publish job(s); print their ids"},
    {NULL, NULL}};
const aas_cmd_t aas_cmd_submit_def = {"submit", cmd_submit_check, cmd_submit, submit_help};
