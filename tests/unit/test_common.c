/*
 * test_common.c: the arena, the bounded buffer and the log writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"
#include "common/metrics.h"

static void arena_reuses_blocks_after_reset(void **state)
{
    (void)state;
    ndt_arena a;
    ndt_arena_init(&a, 128, 0);
    void *first = ndt_arena_alloc(&a, 100);
    assert_non_null(first);
    assert_non_null(ndt_arena_alloc(&a, 100)); /* spills into a second block */
    size_t allocated = a.allocated;
    ndt_arena_reset(&a);
    assert_ptr_equal(ndt_arena_alloc(&a, 100), first);
    assert_non_null(ndt_arena_alloc(&a, 100));
    assert_int_equal(a.allocated, allocated); /* nothing new from malloc */
    ndt_arena_free(&a);
}

static void arena_cap_refuses_growth(void **state)
{
    (void)state;
    ndt_arena a;
    ndt_arena_init(&a, 64, 256);
    int ok = 0;
    while (ndt_arena_alloc(&a, 48))
        ok++;
    assert_true(ok >= 4 && ok <= 6);
    assert_true(a.allocated <= 256);
    /* 16 bytes stay free in each block: a 20-byte string fits nowhere. */
    char *s = ndt_arena_strndup(&a, "0123456789abcdefghi", 19);
    assert_null(s);
    ndt_arena_free(&a);
}

static void arena_large_allocation_gets_its_own_block(void **state)
{
    (void)state;
    ndt_arena a;
    ndt_arena_init(&a, 64, 0);
    char *p = ndt_arena_alloc(&a, 10000);
    assert_non_null(p);
    memset(p, 'x', 10000);
    char *s = ndt_arena_strndup(&a, "hello", 5);
    assert_string_equal(s, "hello");
    assert_int_equal((uintptr_t)ndt_arena_alloc(&a, 1) % _Alignof(max_align_t), 0);
    ndt_arena_free(&a);
}

static void buf_respects_limit(void **state)
{
    (void)state;
    ndt_buf b;
    ndt_buf_init(&b, 10);
    assert_int_equal(ndt_buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(ndt_buf_append(&b, "x", 1), -1);
    assert_int_equal(b.len, 10);
    assert_int_equal(ndt_buf_terminate(&b), 0);
    assert_string_equal(b.data, "0123456789");
    ndt_buf_free(&b);
}

static void buf_doubles_round_trip(void **state)
{
    (void)state;
    const double values[] = { 0.1, 1.5, -2, 1e300, 5e-324, 123456789.123, 1.0 / 3, 1e20 };
    ndt_buf b;
    ndt_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        ndt_buf_reset(&b);
        ndt_buf_append_double(&b, values[i]);
        ndt_buf_terminate(&b);
        assert_true(strtod(b.data, NULL) == values[i]);
    }
    ndt_buf_reset(&b);
    ndt_buf_append_double(&b, NAN);
    ndt_buf_append_char(&b, ' ');
    ndt_buf_append_double(&b, -INFINITY);
    ndt_buf_append_char(&b, ' ');
    ndt_buf_append_double(&b, 42);
    ndt_buf_terminate(&b);
    assert_string_equal(b.data, "NaN -Inf 42");
    ndt_buf_free(&b);
}

/* Captures what ndt_log writes to stderr. */
static char *capture_log(void (*fn)(void))
{
    char path[] = "/tmp/ndt-test-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    static char out[4096];
    ssize_t n = read(fd, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return out;
}

static void log_logfmt_line(void)
{
    ndt_log_set_format(NDT_LOG_LOGFMT);
    ndt_log(NDT_LOG_WARN, "ingest", "scrape failed", NDT_KV_STR("target", "http://h:1/metrics"),
            NDT_KV_STR("error", "connection refused \"x\""), NDT_KV_INT("n", -3));
}

static void log_json_line(void)
{
    ndt_log_set_format(NDT_LOG_JSON);
    ndt_log(NDT_LOG_INFO, "ingest", "ok", NDT_KV_DOUBLE("v", 0.5), NDT_KV_BOOL("up", 1));
    ndt_log_set_format(NDT_LOG_LOGFMT);
}

static void log_below_level(void)
{
    ndt_log(NDT_LOG_DEBUG, "ingest", "hidden");
}

static void log_formats(void **state)
{
    (void)state;
    char *line = capture_log(log_logfmt_line);
    assert_non_null(strstr(line, " level=warn stage=ingest msg=\"scrape failed\" target=http://h:1/metrics "
                                 "error=\"connection refused \\\"x\\\"\" n=-3\n"));
    assert_memory_equal(line, "ts=", 3);
    line = capture_log(log_json_line);
    assert_non_null(strstr(line, "\"level\":\"info\",\"stage\":\"ingest\",\"msg\":\"ok\",\"v\":0.5,\"up\":true}\n"));
    assert_memory_equal(line, "{\"ts\":\"", 7);
    line = capture_log(log_below_level);
    assert_string_equal(line, "");
}

static void log_redacts_credentials(void **state)
{
    (void)state;
    char buf[128];
    ndt_log_redact_url("https://user:secret@host:9100/metrics?x=1", buf, sizeof(buf));
    assert_string_equal(buf, "https://xxx@host:9100/metrics?x=1");
    ndt_log_redact_url("http://host/a@b", buf, sizeof(buf));
    assert_string_equal(buf, "http://host/a@b");
}

static int source_a(void *ctx, ndt_buf *out)
{
    (void)ctx;
    return ndt_buf_append_str(out, "a_total 1\n");
}

static int source_b(void *ctx, ndt_buf *out)
{
    return ndt_buf_append_str(out, (const char *)ctx);
}

/* The process families come first, then the sources in registration
 * order; an unregistered source is gone; the bound is enforced. */
static void metrics_registry(void **state)
{
    (void)state;
    static int key_a;
    static char b_text[] = "b_total 2\n";
    assert_int_equal(ndt_metrics_register(source_a, &key_a), NDT_OK);
    assert_int_equal(ndt_metrics_register(source_b, b_text), NDT_OK);
    ndt_buf out;
    ndt_buf_init(&out, 0);
    assert_int_equal(ndt_metrics_render(&out), NDT_OK);
    assert_int_equal(ndt_buf_terminate(&out), NDT_OK);
    const char *cpu = strstr(out.data, "\nprocess_cpu_seconds_total ");
    const char *a = strstr(out.data, "a_total 1\n"), *b = strstr(out.data, "b_total 2\n");
    assert_non_null(cpu);
    assert_non_null(strstr(out.data, "\nprocess_open_fds "));
    assert_non_null(a);
    assert_non_null(b);
    assert_true(cpu < a && a < b);
    ndt_metrics_unregister(&key_a);
    ndt_buf_reset(&out);
    assert_int_equal(ndt_metrics_render(&out), NDT_OK);
    assert_int_equal(ndt_buf_terminate(&out), NDT_OK);
    assert_null(strstr(out.data, "a_total"));
    assert_non_null(strstr(out.data, "b_total 2"));
    ndt_metrics_unregister(b_text);
    int keys[NDT_METRICS_MAX_SOURCES + 1];
    for (int i = 0; i < NDT_METRICS_MAX_SOURCES; i++)
        assert_int_equal(ndt_metrics_register(source_a, &keys[i]), NDT_OK);
    assert_int_equal(ndt_metrics_register(source_a, &keys[NDT_METRICS_MAX_SOURCES]), NDT_ERROR);
    for (int i = 0; i < NDT_METRICS_MAX_SOURCES; i++)
        ndt_metrics_unregister(&keys[i]);
    ndt_buf_free(&out);
}

/* Whole files with a bound: exact size, one byte over, missing, empty,
 * and files that do not say their size (/proc, a character device). */
static void file_read_bounded(void **state)
{
    (void)state;
    char path[] = "/tmp/ndt-file.XXXXXX", err[NDT_ERRBUF_SIZE];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char text[10000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, text, sizeof(text)), (ssize_t)sizeof(text));
    close(fd);

    char *out = NULL;
    size_t len = 0;
    assert_int_equal(ndt_file_read(path, sizeof(text), &out, &len, err, sizeof(err)), NDT_OK);
    assert_int_equal(len, sizeof(text));
    assert_memory_equal(out, text, sizeof(text));
    assert_int_equal(out[len], '\0');
    free(out);
    out = NULL;
    assert_int_equal(ndt_file_read(path, sizeof(text) - 1, &out, &len, err, sizeof(err)), NDT_ERROR);
    assert_null(out);
    assert_non_null(strstr(err, ": larger than 9999 bytes"));

    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(ndt_file_read(path, 10, &out, &len, err, sizeof(err)), NDT_OK);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    free(out);
    unlink(path);
    out = NULL;
    assert_int_equal(ndt_file_read(path, 10, &out, &len, err, sizeof(err)), NDT_ERROR);
    assert_null(out);
    assert_non_null(strstr(err, ": cannot open: No such file"));

    /* st_size 0 although it has content: read by growing the buffer. */
    assert_int_equal(ndt_file_read("/proc/self/status", 1 << 20, &out, &len, err, sizeof(err)), NDT_OK);
    assert_true(len > 0 && strlen(out) == len);
    assert_non_null(strstr(out, "Name:"));
    free(out);
    out = NULL;
    /* Endless: stops at the bound, across several doublings. */
    assert_int_equal(ndt_file_read("/dev/zero", 50000, &out, &len, err, sizeof(err)), NDT_ERROR);
    assert_null(out);
    assert_non_null(strstr(err, "/dev/zero: larger than 50000 bytes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_reuses_blocks_after_reset),
        cmocka_unit_test(arena_cap_refuses_growth),
        cmocka_unit_test(arena_large_allocation_gets_its_own_block),
        cmocka_unit_test(buf_respects_limit),
        cmocka_unit_test(buf_doubles_round_trip),
        cmocka_unit_test(log_formats),
        cmocka_unit_test(log_redacts_credentials),
        cmocka_unit_test(metrics_registry),
        cmocka_unit_test(file_read_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
