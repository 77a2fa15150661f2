/*
 * test_dataset.c - data sets of format aas.dataset.v2 on a real
 * redis-server: the streamed upload (producer/client.h
 * aas_client_dataset_put_stream), the store's v2 calls (store.h) and the
 * worker's reader (worker/source.h aas_src_open_dataset), end to end.
 * The command line is tested in test_dataset_cli.sh.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client.h"
#include "codec.h"
#include "harness_redis.h"
#include "source.h"
#include "store.h"

typedef struct {
    aas_test_redis_t redis;
    aas_store_t *st;
    char why[512];
} fixture_t;

static int group_setup(void **state) {
    signal(SIGPIPE, SIG_IGN);
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    if (aas_test_redis_start(&f->redis, NULL) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state) {
    fixture_t *f = *state;
    aas_test_redis_stop(&f->redis);
    free(f);
    return 0;
}

static int setup(void **state) {
    fixture_t *f = *state;
    aas_store_conf_t c;
    aas_store_conf_init(&c);
    c.port = f->redis.port;
    c.timeout_ms = 5000;
    if (aas_test_redis_cmd(&f->redis, NULL, 0, "FLUSHALL", NULL) != 0) return -1;
    return aas_store_new(&c, &f->st, f->why, sizeof(f->why)) ? -1 : 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    aas_store_destroy(f->st);
    f->st = NULL;
    return 0;
}

/* Upload len bytes of text as set `name`. */
static aas_err_t put(fixture_t *f, const char *name, const char *text, size_t len,
                     aas_client_dataset_type_t type, int header,
                     aas_client_dataset_stats_t *stats) {
    FILE *fp = tmpfile();
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    rewind(fp);
    aas_client_dataset_opts_t o = {.type = type, .header = header, .file = "/tmp/x/in.txt"};
    aas_err_t err = aas_client_dataset_put_stream(f->st, name, fp, &o, stats, f->why,
                                                  sizeof(f->why));
    fclose(fp);
    return err;
}

static json_t *meta_of(fixture_t *f, const char *name, aas_store_dataset_info_t *info) {
    char *text = NULL;
    assert_int_equal(aas_store_dataset_meta(f->st, name, &text, info, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    json_error_t jerr;
    json_t *m = json_loads(text, 0, &jerr);
    free(text);
    assert_true(json_is_object(m));
    return m;
}

static long long keys_matching(fixture_t *f, const char *pattern) {
    char out[4096];
    assert_int_equal(aas_test_redis_cmd(&f->redis, out, sizeof(out), "KEYS", pattern, NULL), 0);
    long long n = 0;
    for (char *p = out; *p; p++) n += *p == '\n';
    return out[0] ? n + 1 : 0;
}

/* Text of rows CSV rows of 8 values + a label, about 40 bytes a row. */
static char *make_csv(long rows, int header, size_t *len) {
    size_t cap = (size_t)rows * 64 + 64, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    if (header) n += (size_t)snprintf(s, cap, "# made by test_dataset\nf0,f1,f2,f3,f4,f5,f6,f7,label\n");
    for (long r = 0; r < rows; r++)
        n += (size_t)snprintf(s + n, cap - n, "%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld\n", r, r % 7,
                              r % 13, r % 17, r % 19, r % 23, r % 29, r % 31, r % 10);
    *len = n;
    return s;
}

static void tsv_put_describe_list_delete_round_trip(void **state) {
    fixture_t *f = *state;
    const char text[] = "# intents\ngreeting\thello there\n\nweather\tis it raining?\r\n"
                        "greeting\tgood morning\nbooking\ta table for two\n";
    aas_client_dataset_stats_t s;
    assert_int_equal(put(f, "intents", text, sizeof(text) - 1, AAS_CLIENT_DATASET_TSV, 0, &s),
                     AAS_ERR_OK);
    assert_int_equal(s.rows, 4);
    assert_int_equal(s.bytes, sizeof(text) - 1);
    assert_int_equal(s.chunks, 1);
    assert_int_equal(s.classes, 3);
    assert_true(s.crc64 == aas_codec_crc64_avro(text, sizeof(text) - 1));
    aas_store_dataset_info_t info;
    json_t *m = meta_of(f, "intents", &info);
    assert_int_equal(info.version, 2);
    assert_string_equal(json_string_value(json_object_get(m, "format")), "aas.dataset.v2");
    assert_string_equal(json_string_value(json_object_get(m, "type")), "tsv");
    assert_int_equal(json_integer_value(json_object_get(m, "rows")), 4);
    assert_int_equal(json_integer_value(json_object_get(m, "bytes")), sizeof(text) - 1);
    assert_string_equal(json_string_value(json_object_get(m, "file")), "in.txt");
    assert_true(json_is_null(json_object_get(m, "header")));
    assert_true(json_integer_value(json_object_get(m, "created_ms")) > 0);
    char hex[17];
    snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)s.crc64);
    assert_string_equal(json_string_value(json_object_get(m, "crc64")), hex);
    /* Classes sorted by strcmp: the order train --text-input uses. */
    json_t *cl = json_object_get(m, "classes");
    assert_int_equal(json_array_size(cl), 3);
    assert_string_equal(json_string_value(json_array_get(cl, 0)), "booking");
    assert_string_equal(json_string_value(json_array_get(cl, 1)), "greeting");
    assert_string_equal(json_string_value(json_array_get(cl, 2)), "weather");
    json_decref(m);
    char **names;
    size_t n;
    assert_int_equal(aas_store_dataset_list(f->st, &names, &n, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "intents");
    aas_store_dataset_names_free(names, n);
    /* The source gives the file's lines, comments and blanks included. */
    aas_src_t *src;
    assert_int_equal(aas_src_open_dataset(f->st, "intents", &src, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    aas_src_info_t si;
    aas_src_info(src, &si);
    assert_int_equal(si.format, AAS_SRC_TSV);
    assert_int_equal(si.rows, 4);
    assert_int_equal(si.bytes, sizeof(text) - 1);
    const char *want[] = {"# intents", "greeting\thello there", "", "weather\tis it raining?",
                          "greeting\tgood morning", "booking\ta table for two"};
    for (int i = 0; i < 6; i++) {
        const char *l;
        size_t len;
        int eof;
        assert_int_equal(aas_src_next(src, &l, &len, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
        assert_int_equal(eof, 0);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(l, want[i], len);
    }
    const char *l;
    size_t len;
    int eof;
    assert_int_equal(aas_src_next(src, &l, &len, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
    assert_int_equal(eof, 1);
    aas_src_destroy(src);
    /* Delete: gone from Redis and from the list; a second delete is an error. */
    assert_int_equal(aas_store_dataset_delete(f->st, "intents", f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(keys_matching(f, "*"), 0);
    assert_int_equal(aas_store_dataset_delete(f->st, "intents", f->why, sizeof(f->why)),
                     AAS_ERR_NOT_FOUND);
    assert_non_null(strstr(f->why, "data set intents not found"));
}

/* > 3 MiB with a header: several chunks of whole lines, each at most
 * 1 MiB, read back line by line equal to the file; the whole-set checksum
 * (combined from the chunks') equals the file's; trainer rows load it. */
static void multi_chunk_csv_reads_back_equal_to_the_file(void **state) {
    fixture_t *f = *state;
    size_t len;
    long rows = 160000;
    char *text = make_csv(rows, 1, &len);
    assert_true(len > ((size_t)3 << 20));
    aas_client_dataset_stats_t s;
    assert_int_equal(put(f, "big", text, len, AAS_CLIENT_DATASET_CSV, 1, &s), AAS_ERR_OK);
    assert_int_equal(s.rows, rows);
    assert_int_equal(s.cols, 9);
    assert_int_equal(s.bytes, len);
    assert_true(s.chunks >= 4);
    assert_true(s.crc64 == aas_codec_crc64_avro(text, len));
    aas_store_dataset_info_t info;
    json_t *m = meta_of(f, "big", &info);
    json_t *h = json_object_get(m, "header");
    assert_int_equal(json_array_size(h), 9);
    assert_string_equal(json_string_value(json_array_get(h, 8)), "label");
    assert_int_equal(json_integer_value(json_object_get(m, "cols")), 9);
    json_decref(m);
    assert_int_equal(info.chunks, s.chunks);
    assert_true(info.crc64 == s.crc64);
    /* Chunks: whole lines, at most 1 MiB, together the file. */
    size_t off = 0;
    for (int64_t i = 0; i < info.chunks; i++) {
        char *c;
        size_t n;
        assert_int_equal(aas_store_dataset_chunk(f->st, "big", &info, i, &c, &n, f->why,
                                                 sizeof(f->why)),
                         AAS_ERR_OK);
        assert_true(n <= AAS_STORE_DATASET_CHUNK_MAX);
        assert_int_equal(c[n - 1], '\n');
        assert_memory_equal(c, text + off, n);
        off += n;
        free(c);
    }
    assert_int_equal(off, len);
    /* The source: the lines of the file, the header skipped. */
    aas_src_t *src;
    assert_int_equal(aas_src_open_dataset(f->st, "big", &src, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    const char *p = text;
    p = strchr(p, '\n') + 1; /* the comment stays a line */
    const char *header_end = strchr(p, '\n') + 1;
    long lines = 0;
    const char *expect = text;
    for (;;) {
        const char *l;
        size_t n;
        int eof;
        assert_int_equal(aas_src_next(src, &l, &n, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
        assert_true(aas_src_footprint(src) <= AAS_STORE_DATASET_CHUNK_MAX + 4096);
        if (eof) break;
        if (expect == p) expect = header_end; /* the header is not yielded */
        const char *nl = strchr(expect, '\n');
        assert_int_equal(n, (size_t)(nl - expect));
        assert_memory_equal(l, expect, n);
        expect = nl + 1;
        lines++;
    }
    assert_int_equal(lines, rows + 1); /* + the comment line */
    assert_true(expect == text + len);
    /* A seeded pass: the same lines, chunk order permuted. */
    assert_int_equal(aas_src_rewind(src, 42, f->why, sizeof(f->why)), AAS_ERR_OK);
    const char *first;
    size_t n;
    int eof;
    assert_int_equal(aas_src_next(src, &first, &n, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
    long seeded = 1;
    int natural = n >= 2 && first[0] == '#';
    for (;;) {
        const char *l;
        assert_int_equal(aas_src_next(src, &l, &n, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
        if (eof) break;
        seeded++;
    }
    assert_int_equal(seeded, rows + 1);
    (void)natural; /* seed 42 may still start at chunk 0 */
    aas_src_destroy(src);
    free(text);
}

/* Lines of random lengths (up to 400 kB), with and without a final '\n':
 * the chunks are whole lines of at most 1 MiB and together the file. */
static void random_line_lengths_cut_at_line_ends(void **state) {
    fixture_t *f = *state;
    uint64_t rng = 12345;
    for (int round = 0; round < 4; round++) {
        size_t cap = (size_t)6 << 20, len = 0;
        char *text = malloc(cap);
        assert_non_null(text);
        while (len < ((size_t)5 << 20)) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t n = (size_t)(rng >> 33) % (rng & 1 ? 400000 : 200);
            memcpy(text + len, "c\t", 2);
            memset(text + len + 2, 'a' + (int)(n % 26), n);
            len += 2 + n;
            text[len++] = '\n';
        }
        if (round & 1) len--; /* no '\n' after the last line */
        aas_client_dataset_stats_t s;
        assert_int_equal(put(f, "rnd", text, len, AAS_CLIENT_DATASET_TSV, 0, &s), AAS_ERR_OK);
        assert_true(s.crc64 == aas_codec_crc64_avro(text, len));
        aas_store_dataset_info_t info;
        json_decref(meta_of(f, "rnd", &info));
        size_t off = 0;
        for (int64_t i = 0; i < info.chunks; i++) {
            char *c;
            size_t n;
            assert_int_equal(aas_store_dataset_chunk(f->st, "rnd", &info, i, &c, &n, f->why,
                                                     sizeof(f->why)),
                             AAS_ERR_OK);
            assert_true(n <= AAS_STORE_DATASET_CHUNK_MAX);
            if (i + 1 < info.chunks) assert_int_equal(c[n - 1], '\n');
            assert_memory_equal(c, text + off, n);
            off += n;
            free(c);
        }
        assert_int_equal(off, len);
        free(text);
    }
}

/* One changed byte in a stored chunk: the reader says which chunk. */
static void corrupt_chunk_is_detected(void **state) {
    fixture_t *f = *state;
    size_t len;
    char *text = make_csv(60000, 0, &len); /* ~2 MiB: 2+ chunks */
    assert_int_equal(put(f, "c", text, len, AAS_CLIENT_DATASET_CSV, 0, NULL), AAS_ERR_OK);
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "EVAL",
                                        "local v = redis.call('HGET', KEYS[1], 'c:1') "
                                        "return redis.call('HSET', KEYS[1], 'c:1', "
                                        "string.sub(v, 1, 100) .. '7' .. string.sub(v, 102))",
                                        "1", "aas:dataset:{c}", NULL),
                     0);
    aas_src_t *src;
    assert_int_equal(aas_src_open_dataset(f->st, "c", &src, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    aas_err_t err;
    const char *l;
    size_t n;
    int eof = 0;
    while ((err = aas_src_next(src, &l, &n, &eof, f->why, sizeof(f->why))) == AAS_ERR_OK &&
           !eof) {
    }
    assert_int_equal(err, AAS_ERR_DECODE);
    assert_non_null(strstr(f->why, "checksum mismatch in chunk 1"));
    aas_src_destroy(src);
    free(text);
}

static void missing_set_is_not_found(void **state) {
    fixture_t *f = *state;
    aas_src_t *src = NULL;
    assert_int_equal(aas_src_open_dataset(f->st, "nosuch", &src, f->why, sizeof(f->why)),
                     AAS_ERR_NOT_FOUND);
    assert_non_null(strstr(f->why, "data set nosuch not found"));
    assert_null(src);
    char *meta = NULL;
    assert_int_equal(aas_store_dataset_meta(f->st, "nosuch", &meta, NULL, f->why,
                                            sizeof(f->why)),
                     AAS_ERR_NOT_FOUND);
    assert_int_equal(aas_store_dataset_delete(f->st, "nosuch", f->why, sizeof(f->why)),
                     AAS_ERR_NOT_FOUND);
    /* Names that are not ids never become keys. */
    assert_int_equal(aas_src_open_dataset(f->st, "a}b", &src, f->why, sizeof(f->why)),
                     AAS_ERR_INVAL);
    aas_store_dataset_up_t *up = NULL;
    assert_int_equal(aas_store_dataset_begin(f->st, "x y", &up, f->why, sizeof(f->why)),
                     AAS_ERR_INVAL);
}

/* A failed upload (a bad line after two chunks went to the temporary
 * key) leaves the old set as it was and no temporary key. */
static void failed_upload_leaves_the_old_set_intact(void **state) {
    fixture_t *f = *state;
    size_t len;
    char *text = make_csv(1000, 0, &len);
    aas_client_dataset_stats_t s;
    assert_int_equal(put(f, "keep", text, len, AAS_CLIENT_DATASET_CSV, 0, &s), AAS_ERR_OK);
    aas_store_dataset_info_t before;
    json_decref(meta_of(f, "keep", &before));
    free(text);
    text = make_csv(90000, 0, &len); /* ~3 MiB, then a bad line */
    text = realloc(text, len + 32);
    assert_non_null(text);
    memcpy(text + len, "1,2,3,4,5,6,7,8,nan\n", 20);
    len += 20;
    assert_int_equal(put(f, "keep", text, len, AAS_CLIENT_DATASET_CSV, 0, NULL),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(f->why, "line 90001, value 9: not a finite float"));
    aas_store_dataset_info_t after;
    json_t *m = meta_of(f, "keep", &after);
    assert_int_equal(json_integer_value(json_object_get(m, "rows")), 1000);
    json_decref(m);
    assert_string_equal(after.upload, before.upload);
    assert_true(after.crc64 == before.crc64);
    assert_int_equal(keys_matching(f, "*:up:*"), 0);
    /* And a good re-upload replaces it whole. */
    len -= 20;
    assert_int_equal(put(f, "keep", text, len, AAS_CLIENT_DATASET_CSV, 0, &s), AAS_ERR_OK);
    m = meta_of(f, "keep", &after);
    assert_int_equal(json_integer_value(json_object_get(m, "rows")), 90000);
    json_decref(m);
    assert_string_not_equal(after.upload, before.upload);
    free(text);
}

/* A set replaced while a reader is in it: an error, not a mix of two. */
static void set_replaced_mid_read_is_a_conflict(void **state) {
    fixture_t *f = *state;
    size_t len;
    char *text = make_csv(60000, 0, &len);
    assert_int_equal(put(f, "moving", text, len, AAS_CLIENT_DATASET_CSV, 0, NULL), AAS_ERR_OK);
    aas_src_t *src;
    assert_int_equal(aas_src_open_dataset(f->st, "moving", &src, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    const char *l;
    size_t n;
    int eof;
    assert_int_equal(aas_src_next(src, &l, &n, &eof, f->why, sizeof(f->why)), AAS_ERR_OK);
    assert_int_equal(put(f, "moving", text, len, AAS_CLIENT_DATASET_CSV, 0, NULL), AAS_ERR_OK);
    aas_err_t err;
    while ((err = aas_src_next(src, &l, &n, &eof, f->why, sizeof(f->why))) == AAS_ERR_OK &&
           !eof) {
    }
    assert_int_equal(err, AAS_ERR_CONFLICT);
    assert_non_null(strstr(f->why, "replaced or deleted while being read"));
    aas_src_destroy(src);
    free(text);
}

/* Lines the uploader refuses, each naming its line. */
static void bad_lines_are_refused_naming_the_line(void **state) {
    fixture_t *f = *state;
    struct {
        const char *text;
        aas_client_dataset_type_t type;
        int header;
        const char *words;
    } cases[] = {
        {"a\thello\nb\tbad \xc3\x28 byte\n", AAS_CLIENT_DATASET_TSV, 0,
         "line 2, byte 7 (offset 14 in the file): invalid UTF-8"},
        {"a\thello\n\xed\xa0\x80\tsurrogate\n", AAS_CLIENT_DATASET_TSV, 0,
         "line 2, byte 1"},
        {"a\thello\nno tab here\n", AAS_CLIENT_DATASET_TSV, 0, "line 2: want label<TAB>text"},
        {"a,b\thello\n", AAS_CLIENT_DATASET_TSV, 0, "line 1: want label<TAB>text"},
        {"x,y,label\n1,2,0\n", AAS_CLIENT_DATASET_CSV, 0,
         "line 1, value 1: not a number (if this line is a header, say --header)"},
        {"1,2,0\n1,2\n", AAS_CLIENT_DATASET_CSV, 0, "line 2 has 2 values, the first row has 3"},
        {"1,2,0.5\n", AAS_CLIENT_DATASET_CSV, 0, "line 1: label 0.5 is not a class index"},
        {"x,y\n1,2,0\n", AAS_CLIENT_DATASET_CSV, 1, "the header names 2 columns"},
        {"# nothing\n", AAS_CLIENT_DATASET_CSV, 0, "no data rows"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->why[0] = '\0';
        aas_err_t err = put(f, "bad", cases[i].text, strlen(cases[i].text), cases[i].type,
                            cases[i].header, NULL);
        if (err == AAS_ERR_OK || !strstr(f->why, cases[i].words))
            fail_msg("case %zu: got %s \"%s\", want \"%s\"", i, aas_err_name(err), f->why,
                     cases[i].words);
    }
    /* A line over 1 MiB. */
    size_t big = ((size_t)1 << 20) + 10;
    char *text = malloc(big + 32);
    assert_non_null(text);
    memcpy(text, "a\tok\nb\t", 7);
    memset(text + 7, 'x', big);
    text[7 + big] = '\n';
    assert_int_equal(put(f, "bad", text, big + 8, AAS_CLIENT_DATASET_TSV, 0, NULL),
                     AAS_ERR_TOO_LARGE);
    assert_non_null(strstr(f->why, "line 2 is longer than 1048576 bytes"));
    free(text);
    assert_int_equal(keys_matching(f, "*"), 0); /* nothing stored, nothing left */
}

/* A v1 (binary) set: listed and described, refused by the v2 reader. */
static void v1_set_is_listed_and_refused_by_the_line_reader(void **state) {
    fixture_t *f = *state;
    float blob[6] = {1, 2, 3, 4, 0, 0};
    assert_int_equal(aas_store_dataset_put(f->st, "old", "{\"format\":\"aas.dataset.v1\","
                                           "\"rows\":2,\"dim\":2}",
                                           blob, sizeof(blob), 16, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    aas_store_dataset_info_t info;
    json_decref(meta_of(f, "old", &info));
    assert_int_equal(info.version, 1);
    assert_int_equal(info.bytes, sizeof(blob));
    assert_int_equal(info.chunks, 2);
    char **names;
    size_t n;
    assert_int_equal(aas_store_dataset_list(f->st, &names, &n, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "old");
    aas_store_dataset_names_free(names, n);
    aas_src_t *src;
    assert_int_equal(aas_src_open_dataset(f->st, "old", &src, f->why, sizeof(f->why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(f->why, "aas.dataset.v1"));
    /* And the v1 reader refuses a v2 set. */
    const char text[] = "1,2,0\n";
    assert_int_equal(put(f, "new", text, 6, AAS_CLIENT_DATASET_CSV, 0, NULL), AAS_ERR_OK);
    char *meta;
    void *data;
    size_t len;
    assert_int_equal(aas_store_dataset_get(f->st, "new", 1 << 20, &meta, &data, &len, f->why,
                                           sizeof(f->why)),
                     AAS_ERR_INVAL);
    assert_non_null(strstr(f->why, "aas.dataset.v2"));
    /* A name whose key went away behind the list's back is dropped. */
    assert_int_equal(aas_test_redis_cmd(&f->redis, NULL, 0, "DEL", "aas:dataset:{old}", NULL),
                     0);
    assert_int_equal(aas_store_dataset_list(f->st, &names, &n, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "new");
    aas_store_dataset_names_free(names, n);
    assert_int_equal(aas_test_redis_int(&f->redis, "SISMEMBER", "aas:datasets", "old", NULL), 0);
}

/* The store's own checks: empty chunk, commit without chunks, abort. */
static void store_upload_edges(void **state) {
    fixture_t *f = *state;
    aas_store_dataset_up_t *up;
    assert_int_equal(aas_store_dataset_begin(f->st, "e", &up, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_dataset_append(up, "", 0, f->why, sizeof(f->why)),
                     AAS_ERR_INVAL);
    assert_int_equal(aas_store_dataset_commit(up, "{}", f->why, sizeof(f->why)),
                     AAS_ERR_INVAL); /* consumed */
    assert_int_equal(aas_store_dataset_begin(f->st, "e", &up, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_dataset_append(up, "1,0\n", 4, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(keys_matching(f, "*:up:*"), 1);
    assert_true(aas_test_redis_int(&f->redis, "TTL", "aas:dataset:{e}", NULL) == -2);
    aas_store_dataset_abort(up);
    assert_int_equal(keys_matching(f, "*"), 0);
    aas_store_dataset_abort(NULL);
    /* Committed: no TTL left on the set. */
    assert_int_equal(aas_store_dataset_begin(f->st, "e", &up, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_dataset_append(up, "1,0\n", 4, f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_store_dataset_commit(up, "{\"type\":\"csv\"}", f->why, sizeof(f->why)),
                     AAS_ERR_OK);
    assert_int_equal(aas_test_redis_int(&f->redis, "TTL", "aas:dataset:{e}", NULL), -1);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(tsv_put_describe_list_delete_round_trip),
        T(multi_chunk_csv_reads_back_equal_to_the_file),
        T(random_line_lengths_cut_at_line_ends),
        T(corrupt_chunk_is_detected),
        T(missing_set_is_not_found),
        T(failed_upload_leaves_the_old_set_intact),
        T(set_replaced_mid_read_is_a_conflict),
        T(bad_lines_are_refused_naming_the_line),
        T(v1_set_is_listed_and_refused_by_the_line_reader),
        T(store_upload_edges),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
#undef T
}
