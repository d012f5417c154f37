/*
 * cmd_export.c: `ndtpipe export`: the dataset CSV (the contract's raw
 * telemetry columns, FEAT_RAW_HEADER) rebuilt from what the pipeline
 * stored in the UDR, one row per observed instant.
 *
 * Flags and exit codes only: which entity attribute feeds which column is
 * features/feat_udr.c's business (docs/DATA-MODEL.md, "The dataset read
 * back").  Times are RFC 3339, Unix milliseconds, `now`, or a duration
 * relative to now (`-1h`, `-90s`); both ends are inclusive, as in a
 * Prometheus range query.  Values are written in the shortest form that
 * reads back as the same double, so export -> features sees exactly what
 * the UDR holds.  The CSV goes to FILE.tmp and is renamed into place: a
 * failed export never leaves a truncated file under the real name.
 * Exit 2 for bad flags, a bad UDR URL or an ambiguous service; 1 when the
 * UDR cannot be read.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "features/features.h"
#include "udr/udr.h"

static const char cli_export_help[] =
    "usage: ndtpipe export --udr URL --from T --to T --out FILE.csv [--service ID]\n\n"
    "The dataset CSV (the paper's raw telemetry: users, pods and the per-pod averages)\n"
    "rebuilt from the twin's entities in the UDR, one row per instant at which the\n"
    "service's pods were observed (docs/DATA-MODEL.md, \"The dataset read back\").\n\n"
    "options:\n"
    "  --udr URL        sqlite:PATH, influx:http://HOST:PORT/DB (required)\n"
    "  --from T         first instant, inclusive (required)\n"
    "  --to T           last instant, inclusive (required)\n"
    "                   T: RFC 3339 (2026-01-02T03:04:05.678Z, or with +02:00), Unix\n"
    "                   milliseconds, 'now', or relative to now like -1h, -15m, -90s\n"
    "  --out FILE       the dataset CSV, - for stdout (required)\n"
    "  --service ID     the Service entity (urn:ngsi-ld:Service:ndt.x or ndt.x);\n"
    "                   default: the only one in the UDR\n" CLI_COMMON_HELP;

/* ---- times --------------------------------------------------------------- */

static int two_digits(const char *p, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return NDT_ERROR;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return NDT_OK;
}

/* RFC 3339 through strptime for the date and time and by hand for what
 * strptime cannot say strictly (fraction, Z or numeric offset). */
static int parse_rfc3339(const char *s, int64_t *out_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p || strlen(s) < 19 || s[4] != '-' || s[10] != 'T')
        return NDT_ERROR;
    int64_t ms = 0;
    if (*p == '.') {
        const char *f = ++p;
        int64_t scale = 100;
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += (*p - '0') * scale;
        if (p == f)
            return NDT_ERROR;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int h, m;
        if (two_digits(p + 1, &h) || p[3] != ':' || two_digits(p + 4, &m) || h > 23 || m > 59)
            return NDT_ERROR;
        offset_min = (h * 60 + m) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return NDT_ERROR;
    }
    if (*p)
        return NDT_ERROR;
    int mday = tm.tm_mday, mon = tm.tm_mon;
    time_t secs = timegm(&tm);
    if (tm.tm_mday != mday || tm.tm_mon != mon) /* 2026-02-30 normalised away */
        return NDT_ERROR;
    *out_ms = ((int64_t)secs - (int64_t)offset_min * 60) * 1000 + ms;
    return NDT_OK;
}

static int parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return NDT_OK;
    }
    if (s[0] == '-' && s[1] && (s[1] < '0' || s[1] > '9' || strpbrk(s + 1, "smhdwy"))) {
        int64_t ns;
        if (ndt_duration_parse(s + 1, &ns) != NDT_OK)
            return NDT_ERROR;
        *out_ms = now_ms - ns / 1000000;
        return NDT_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && !*end && !errno) {
        *out_ms = v;
        return NDT_OK;
    }
    return parse_rfc3339(s, out_ms);
}

/* ---- the CSV ------------------------------------------------------------- */

static int append_row(ndt_buf *b, const feat_raw *r)
{
    const double v[] = { r->depth,      r->backlog_s,  r->cpu_process,
                         r->cpu_system, r->mem_system, r->infer_ms };
    int rc = ndt_buf_printf(b, "%" PRId64 ",%d,%d", r->timestamp_ms, r->users, r->pods);
    for (size_t i = 0; i < NDT_ARRAY_LEN(v); i++) {
        rc |= ndt_buf_append_char(b, ',');
        rc |= ndt_buf_append_double(b, v[i]);
    }
    rc |= ndt_buf_append_char(b, '\n');
    return rc;
}

static int write_csv(const feat_dataset *ds, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    int to_stdout = strcmp(path, "-") == 0;
    FILE *out = stdout;
    if (!to_stdout) {
        if (strlen(path) + 5 > sizeof(tmp)) {
            snprintf(err, errlen, "--out: the path is longer than %zu bytes", sizeof(tmp) - 5);
            return NDT_ERROR;
        }
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if (!(out = fopen(tmp, "w"))) {
            snprintf(err, errlen, "%.256s: %s", tmp, strerror(errno));
            return NDT_ERROR;
        }
    }
    ndt_buf b;
    ndt_buf_init(&b, 0);
    int rc = ndt_buf_append_str(&b, FEAT_RAW_HEADER "\n");
    for (size_t i = 0; rc == NDT_OK && i < ds->n; i++) {
        rc = append_row(&b, &ds->rows[i]);
        if (rc == NDT_OK && b.len >= 1 << 16) {
            if (fwrite(b.data, 1, b.len, out) != b.len)
                rc = NDT_ERROR;
            ndt_buf_reset(&b);
        }
    }
    if (rc == NDT_OK && b.len && fwrite(b.data, 1, b.len, out) != b.len)
        rc = NDT_ERROR;
    if (fflush(out) != 0)
        rc = NDT_ERROR;
    if (rc != NDT_OK)
        snprintf(err, errlen, "writing %.256s: %s", to_stdout ? "stdout" : tmp, strerror(errno));
    ndt_buf_free(&b);
    if (to_stdout)
        return rc;
    if (fclose(out) != 0 && rc == NDT_OK) {
        snprintf(err, errlen, "closing %.256s: %s", tmp, strerror(errno));
        rc = NDT_ERROR;
    }
    if (rc == NDT_OK && rename(tmp, path) != 0) {
        snprintf(err, errlen, "renaming %.256s into place: %s", tmp, strerror(errno));
        rc = NDT_ERROR;
    }
    if (rc != NDT_OK)
        remove(tmp);
    return rc;
}

/* ---- the command ------------------------------------------------------------ */

/* parse_args' answer when --help was shown: exit 0 without exporting. */
#define EXPORT_HELP_SHOWN (-1)

typedef struct export_args {
    const char *udr_url, *from, *to, *out, *service;
} export_args;

static int parse_args(int argc, char **argv, export_args *a, int64_t *from_ms, int64_t *to_ms)
{
    static const struct option opts[] = {
        { "udr", required_argument, NULL, 'u' },
        { "from", required_argument, NULL, 'f' },
        { "to", required_argument, NULL, 't' },
        { "out", required_argument, NULL, 'o' },
        { "service", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "export";
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': a->udr_url = optarg; break;
        case 'f': a->from = optarg; break;
        case 't': a->to = optarg; break;
        case 'o': a->out = optarg; break;
        case 's': a->service = optarg; break;
        case 'h': fputs(cli_export_help, stdout); return EXPORT_HELP_SHOWN;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!a->udr_url)
        return cli_usage_error(cmd, "--udr: the UDR URL is required (sqlite:PATH, influx:http://HOST:PORT/DB)");
    if (!a->from || !a->to)
        return cli_usage_error(cmd, "--from and --to are required (RFC 3339, Unix ms, now, or -1h)");
    if (!a->out)
        return cli_usage_error(cmd, "--out: the dataset CSV is required (- for stdout)");
    int64_t now = ndt_clock_real_ms();
    if (parse_time(a->from, now, from_ms) != NDT_OK)
        return cli_usage_error(cmd, "--from: expected RFC 3339, Unix milliseconds, 'now' or -DURATION, got '%s'", a->from);
    if (parse_time(a->to, now, to_ms) != NDT_OK)
        return cli_usage_error(cmd, "--to: expected RFC 3339, Unix milliseconds, 'now' or -DURATION, got '%s'", a->to);
    if (*from_ms > *to_ms)
        return cli_usage_error(cmd, "--from (%" PRId64 ") is after --to (%" PRId64 ")", *from_ms, *to_ms);
    if (*to_ms == INT64_MAX)
        return cli_usage_error(cmd, "--to: out of range");
    return NDT_EXIT_OK;
}

int cli_cmd_export(int argc, char **argv)
{
    const char *cmd = "export";
    export_args a = { 0 };
    int64_t from_ms, to_ms;
    int code = parse_args(argc, argv, &a, &from_ms, &to_ms);
    if (code != NDT_EXIT_OK)
        return code == EXPORT_HELP_SHOWN ? NDT_EXIT_OK : code;

    char err[NDT_ERRBUF_SIZE];
    /* Opening a SQLite UDR creates it: a typo in the path would export an
     * empty dataset from a fresh file instead of saying what is wrong. */
    if (strncmp(a.udr_url, "sqlite:", 7) == 0 && a.udr_url[7] && access(a.udr_url + 7, F_OK) != 0)
        return cli_usage_error(cmd, "--udr: no UDR at %s (%s)", a.udr_url + 7, strerror(errno));
    if (strncmp(a.udr_url, "influx2:", 8) == 0)
        return cli_usage_error(cmd, "--udr: the InfluxDB 2.x backend only writes; export reads "
                                    "sqlite: or influx: (1.x) UDRs");
    udr *u;
    int rc = udr_open(&u, a.udr_url, NULL, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    feat_dataset ds;
    rc = feat_udr_read(u, a.service, from_ms, to_ms + 1, &ds, err, sizeof(err));
    udr_close(u);
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        return rc == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    rc = write_csv(&ds, a.out, err, sizeof(err));
    if (rc != NDT_OK) {
        fprintf(stderr, "ndtpipe %s: %s\n", cmd, err);
        feat_dataset_free(&ds);
        return NDT_EXIT_FAILURE;
    }
    ndt_log(ds.n ? NDT_LOG_INFO : NDT_LOG_WARN, "export",
            ds.n ? "written" : "no row in the range (header only)", NDT_KV_STR("file", a.out),
            NDT_KV_UINT("rows", ds.n), NDT_KV_INT("from_ms", from_ms), NDT_KV_INT("to_ms", to_ms));
    feat_dataset_free(&ds);
    return NDT_EXIT_OK;
}
