/*
 * cmd_check.c: `ndtpipe check metrics [--openmetrics|--protobuf] [--dump] [FILE|-]`
 * and `ndtpipe check config FILE...`.
 *
 * Validates an exposition the way `promtool check metrics` does (exit 0
 * valid, 1 invalid with `FILE:line:col: reason` on stderr, 2 bad usage),
 * using the scraper's own parser (ingest/expo.c), so what this command
 * accepts is exactly what `ndtpipe scrape` accepts.  `--dump` prints every
 * sample as one JSON line (see docs/FORMATS.md).
 *
 * Memory stays flat whatever the input size: a file (or a stdin that is a
 * regular file) is mmap'ed rather than read, the arena is reset after
 * every sample (nothing is retained), and pages already parsed are handed
 * back to the kernel as the parse moves on.  Only a pipe on stdin is read
 * into memory, up to CHECK_STDIN_LIMIT bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/arena.h"
#include "common/buf.h"
#include "ingest/expo.h"
#include "ingest/ingest.h"

#define CHECK_STDIN_LIMIT ((size_t)1 << 30)  /* 1 GiB from a pipe */
#define CHECK_ARENA_CAP ((size_t)64 << 20)   /* one sample never needs more */
#define CHECK_RELEASE_STEP ((size_t)8 << 20) /* give back parsed pages every 8 MiB */

static const char cli_check_usage[] =
    "usage: ndtpipe check metrics [--openmetrics|--protobuf] [--dump] [FILE|-]\n"
    "       ndtpipe check config FILE...\n"
    "\n"
    "check config validates scrape configurations (Prometheus's format) and the\n"
    "targets they yield, like `promtool check config`: exit 0 if every file is\n"
    "valid, 2 with FILE:line:col: key: reason otherwise.\n"
    "\n"
    "Validates a Prometheus exposition like `promtool check metrics`: exit 0 if\n"
    "valid, 1 if not (with FILE:line:col: reason on stderr), 2 on bad usage.\n"
    "Reads FILE, or stdin when FILE is - or missing.\n"
    "\n"
    "  --openmetrics    the input is OpenMetrics 1.0 text (default: text 0.0.4)\n"
    "  --protobuf       the input is the protobuf exposition (length-delimited\n"
    "                   io.prometheus.client.MetricFamily messages); errors say\n"
    "                   FILE:byte N: reason\n"
    "  --dump           print every parsed sample as one JSON line on stdout\n" CLI_COMMON_HELP;

typedef struct cli_check_input {
    const char *data;
    size_t len;
    void *map; /* mmap'ed region, or NULL */
    size_t map_len;
    ndt_buf buf; /* stdin pipe contents */
} cli_check_input;

typedef struct cli_check_ctx {
    ndt_arena *arena;
    int dump;
    size_t samples;
    ndt_buf out;
    const char *map; /* for releasing parsed pages */
    size_t released; /* bytes of map already given back */
} cli_check_ctx;

/* ---- input ---------------------------------------------------------- */

static int cli_check_map_fd(int fd, cli_check_input *in, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "stat: %s", strerror(errno));
        return NDT_ERROR;
    }
    if (!S_ISREG(st.st_mode))
        return NDT_AGAIN;
    in->len = (size_t)st.st_size;
    if (in->len == 0) {
        in->data = "";
        return NDT_OK;
    }
    void *m = mmap(NULL, in->len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "mmap: %s", strerror(errno));
        return NDT_ERROR;
    }
    madvise(m, in->len, MADV_SEQUENTIAL);
    in->map = m;
    in->map_len = in->len;
    in->data = m;
    return NDT_OK;
}

static int cli_check_read_fd(int fd, cli_check_input *in, char *err, size_t errlen)
{
    ndt_buf_init(&in->buf, CHECK_STDIN_LIMIT);
    for (;;) {
        if (ndt_buf_reserve(&in->buf, 1 << 20) != NDT_OK) {
            snprintf(err, errlen, "input larger than %zu bytes", CHECK_STDIN_LIMIT);
            return NDT_ERROR;
        }
        size_t room = in->buf.cap - in->buf.len;
        if (in->buf.limit && room > in->buf.limit - in->buf.len)
            room = in->buf.limit - in->buf.len;
        ssize_t n = read(fd, in->buf.data + in->buf.len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            return NDT_ERROR;
        }
        if (n == 0)
            break;
        in->buf.len += (size_t)n;
    }
    in->data = in->buf.data ? in->buf.data : "";
    in->len = in->buf.len;
    return NDT_OK;
}

static int cli_check_open(const char *path, cli_check_input *in, char *err, size_t errlen)
{
    int fd = 0, rc;
    memset(in, 0, sizeof(*in));
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            return NDT_ERROR;
        }
    }
    rc = cli_check_map_fd(fd, in, err, errlen);
    if (rc == NDT_AGAIN)
        rc = cli_check_read_fd(fd, in, err, errlen);
    if (fd != 0)
        close(fd);
    return rc;
}

static void cli_check_close(cli_check_input *in)
{
    if (in->map)
        munmap(in->map, in->map_len);
    ndt_buf_free(&in->buf);
}

/* ---- --dump --------------------------------------------------------- */

static void json_string(ndt_buf *b, ndt_str s)
{
    static const char hex[] = "0123456789abcdef";
    ndt_buf_append_char(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') {
            ndt_buf_append_char(b, '\\');
            ndt_buf_append_char(b, (char)c);
        } else if (c == '\n') {
            ndt_buf_append(b, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            ndt_buf_append(b, u, 6);
        } else {
            ndt_buf_append_char(b, (char)c);
        }
    }
    ndt_buf_append_char(b, '"');
}

/* Numbers as JSON numbers; NaN and the infinities (not JSON) as strings. */
static void json_value(ndt_buf *b, double v)
{
    if (isnan(v) || isinf(v)) {
        ndt_buf_append_char(b, '"');
        ndt_buf_append_double(b, v);
        ndt_buf_append_char(b, '"');
        return;
    }
    ndt_buf_append_double(b, v);
}

static void json_labels(ndt_buf *b, const ingest_label *labels, size_t n)
{
    ndt_buf_append_char(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            ndt_buf_append_char(b, ',');
        json_string(b, labels[i].name);
        ndt_buf_append_char(b, ':');
        json_string(b, labels[i].value);
    }
    ndt_buf_append_char(b, '}');
}

static void dump_native_side(ndt_buf *b, const char *key, const ingest_native_buckets *nb)
{
    ndt_buf_append_str(b, key);
    ndt_buf_append_char(b, '[');
    for (size_t i = 0; i < nb->n; i++) {
        if (i)
            ndt_buf_append_char(b, ',');
        ndt_buf_append_char(b, '[');
        ndt_buf_append_int(b, nb->index[i]);
        ndt_buf_append_char(b, ',');
        json_value(b, nb->count[i]);
        ndt_buf_append_char(b, ']');
    }
    ndt_buf_append_char(b, ']');
}

/* A native histogram: buckets as [index, count] pairs (docs/FORMATS.md). */
static void dump_native(ndt_buf *b, const ingest_native_histogram *h)
{
    ndt_buf_append_str(b, ",\"native_histogram\":{\"schema\":");
    ndt_buf_append_int(b, h->schema);
    ndt_buf_append_str(b, ",\"zero_threshold\":");
    json_value(b, h->zero_threshold);
    ndt_buf_append_str(b, ",\"zero_count\":");
    json_value(b, h->zero_count);
    ndt_buf_append_str(b, ",\"count\":");
    json_value(b, h->count);
    ndt_buf_append_str(b, ",\"sum\":");
    json_value(b, h->sum);
    dump_native_side(b, ",\"positive\":", &h->positive);
    dump_native_side(b, ",\"negative\":", &h->negative);
    ndt_buf_append_char(b, '}');
}

static void cli_check_dump_sample(ndt_buf *b, const ingest_sample *s)
{
    ndt_buf_append_str(b, "{\"name\":");
    json_string(b, s->name);
    ndt_buf_append_str(b, ",\"labels\":");
    json_labels(b, s->labels, s->nlabels);
    ndt_buf_append_str(b, ",\"value\":");
    json_value(b, s->value);
    if (s->timestamp_ms != INGEST_NO_TIMESTAMP) {
        ndt_buf_append_str(b, ",\"timestamp_ms\":");
        ndt_buf_append_int(b, s->timestamp_ms);
    }
    ndt_buf_append_str(b, ",\"type\":\"");
    ndt_buf_append_str(b, ingest_metric_type_name(s->type));
    ndt_buf_append_str(b, "\",\"family\":");
    json_string(b, s->family);
    if (s->unit.len) {
        ndt_buf_append_str(b, ",\"unit\":");
        json_string(b, s->unit);
    }
    if (s->exemplar) {
        ndt_buf_append_str(b, ",\"exemplar\":{\"labels\":");
        json_labels(b, s->exemplar->labels, s->exemplar->nlabels);
        ndt_buf_append_str(b, ",\"value\":");
        json_value(b, s->exemplar->value);
        if (s->exemplar->timestamp_ms != INGEST_NO_TIMESTAMP) {
            ndt_buf_append_str(b, ",\"timestamp_ms\":");
            ndt_buf_append_int(b, s->exemplar->timestamp_ms);
        }
        ndt_buf_append_char(b, '}');
    }
    if (s->native)
        dump_native(b, s->native);
    ndt_buf_append_str(b, ",\"line\":");
    ndt_buf_append_int(b, s->line);
    ndt_buf_append_str(b, "}\n");
}

/* ---- parse ---------------------------------------------------------- */

/* Gives the pages before this sample back to the kernel: they are clean
 * file pages, so if the parser looks at one again (a family name) it is
 * simply read back from the page cache. */
static void cli_check_release_behind(cli_check_ctx *c, const char *pos)
{
    if (!c->map || pos < c->map)
        return;
    size_t done = (size_t)(pos - c->map);
    if (done < c->released + CHECK_RELEASE_STEP)
        return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t upto = (done - CHECK_RELEASE_STEP / 2) & ~(page - 1);
    if (upto > c->released) {
        madvise((void *)(c->map + c->released), upto - c->released, MADV_DONTNEED);
        c->released = upto;
    }
}

static int cli_check_on_sample(void *ctx, const ingest_sample *s)
{
    cli_check_ctx *c = ctx;
    c->samples++;
    if (c->dump) {
        ndt_buf_reset(&c->out);
        cli_check_dump_sample(&c->out, s);
        fwrite(c->out.data, 1, c->out.len, stdout);
    }
    cli_check_release_behind(c, s->name.ptr);
    ndt_arena_reset(c->arena); /* nothing is kept: see expo.h */
    return NDT_OK;
}

static int cli_check_metrics(const char *path, ingest_expo_format format, int dump)
{
    const char *shown = strcmp(path, "-") == 0 ? "stdin" : path;
    char err[NDT_ERRBUF_SIZE];
    cli_check_input in;
    ndt_arena arena;
    ingest_expo_error perr;
    cli_check_ctx ctx = { 0 };
    int exit_code = NDT_EXIT_OK;

    if (cli_check_open(path, &in, err, sizeof(err)) != NDT_OK) {
        fprintf(stderr, "ndtpipe check metrics: %s: %s\n", shown, err);
        cli_check_close(&in);
        return NDT_EXIT_FAILURE;
    }
    ndt_arena_init(&arena, 64 * 1024, CHECK_ARENA_CAP);
    ndt_buf_init(&ctx.out, 0);
    ctx.arena = &arena;
    ctx.dump = dump;
    /* Only the text parsers hand out pointers into the input, which is
     * what tells how far the parse has got. */
    ctx.map = format == INGEST_EXPO_PROTOBUF ? NULL : in.map;

    if (ingest_expo_parse(in.data, in.len, format, &arena, cli_check_on_sample, &ctx, &perr) !=
        NDT_OK) {
        char where[sizeof(perr.reason) + 64];
        ingest_expo_error_format(&perr, where, sizeof(where));
        fprintf(stderr, "%s:%s\n", shown, where);
        exit_code = NDT_EXIT_FAILURE;
    }
    if (fflush(stdout) != 0 && exit_code == NDT_EXIT_OK) {
        fprintf(stderr, "ndtpipe check metrics: writing the dump: %s\n", strerror(errno));
        exit_code = NDT_EXIT_FAILURE;
    }
    ndt_buf_free(&ctx.out);
    ndt_arena_free(&arena);
    cli_check_close(&in);
    return exit_code;
}

/* check config FILE...: every file, each reported, like promtool. */
static int cli_check_config(int nfiles, char **files)
{
    char err[NDT_ERRBUF_SIZE];
    int rc = NDT_EXIT_OK;
    if (nfiles < 1)
        return cli_usage_error("check", "check config needs at least one FILE");
    for (int i = 0; i < nfiles; i++) {
        if (ingest_scrape_config_check(files[i], err, sizeof(err)) != NDT_OK) {
            fprintf(stderr, "%s\n", err);
            rc = NDT_EXIT_USAGE;
        } else {
            printf("%s: ok\n", files[i]);
        }
    }
    return rc;
}

int cli_cmd_check(int argc, char **argv)
{
    enum { OPT_OPENMETRICS = 2000, OPT_PROTOBUF, OPT_DUMP };
    static const struct option options[] = {
        { "openmetrics", no_argument, NULL, OPT_OPENMETRICS },
        { "protobuf", no_argument, NULL, OPT_PROTOBUF },
        { "dump", no_argument, NULL, OPT_DUMP },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    ingest_expo_format format = INGEST_EXPO_TEXT;
    int dump = 0, opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(cli_check_usage, stdout);
            return NDT_EXIT_OK;
        case OPT_OPENMETRICS:
            format = INGEST_EXPO_OPENMETRICS;
            break;
        case OPT_PROTOBUF:
            format = INGEST_EXPO_PROTOBUF;
            break;
        case OPT_DUMP:
            dump = 1;
            break;
        default: {
            int rc = cli_common_option("check", opt, optarg);
            if (rc == NDT_OK)
                break;
            if (rc == NDT_AGAIN)
                return cli_usage_error("check", "unknown option");
            return NDT_EXIT_USAGE;
        }
        }
    }
    if (optind >= argc)
        return cli_usage_error("check", "missing what to check: metrics or config");
    if (strcmp(argv[optind], "config") == 0)
        return cli_check_config(argc - optind - 1, argv + optind + 1);
    if (strcmp(argv[optind], "metrics") != 0)
        return cli_usage_error("check", "unknown check '%s' (metrics or config)", argv[optind]);
    optind++;
    if (argc - optind > 1)
        return cli_usage_error("check", "expected at most one FILE");
    return cli_check_metrics(optind < argc ? argv[optind] : "-", format, dump);
}
