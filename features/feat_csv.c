/*
 * feat_csv.c: the dataset CSV in (raw telemetry) and the features CSV out.
 *
 * The reader is strict because a model trained on a silently misread file
 * is worse than no model: the header must start with the contract's nine
 * columns, every row needs all nine fields as finite numbers, users and
 * pods are integers (pods >= 1, since every feature divides by it), and
 * the latency is non-negative (its log is the target).  The first bad line
 * is reported as "FILE:LINE: reason" and nothing is kept.  Memory is
 * bounded by max_rows and FEAT_MAX_LINE.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "features/features.h"

#define FEAT_MAX_VALUE 1e15

static int feat_grow(feat_dataset *ds, size_t max_rows)
{
    if (ds->n < ds->cap)
        return NDT_OK;
    if (ds->cap >= max_rows)
        return NDT_ERROR;
    size_t cap = ds->cap ? ds->cap * 2 : 4096;
    if (cap > max_rows)
        cap = max_rows;
    feat_raw *rows = realloc(ds->rows, cap * sizeof(*rows));
    if (!rows)
        return NDT_ERROR;
    ds->rows = rows;
    ds->cap = cap;
    return NDT_OK;
}

static int feat_parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v))
        return NDT_ERROR;
    *out = v;
    return NDT_OK;
}

static int feat_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max)
        return NDT_ERROR;
    *out = v;
    return NDT_OK;
}

/* Splits line in place on commas into at most FEAT_RAW_COLUMNS fields. */
static size_t feat_split(char *line, char *fields[FEAT_RAW_COLUMNS])
{
    size_t n = 0;
    char *p = line;
    while (n < FEAT_RAW_COLUMNS) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

static const char *const feat_raw_names[FEAT_RAW_COLUMNS] = {
    "timestamp_ms",        "users",          "pods",
    "avg_depth_on_enqueue", "avg_backlog_sec_est", "avg_cpu_process_pct",
    "avg_cpu_system_pct",  "avg_mem_system_pct", "avg_total_infer_ms",
};

/* Parses one data line into r; on error writes the reason (without position). */
static int feat_parse_row(char *line, feat_raw *r, char *err, size_t errlen)
{
    char *f[FEAT_RAW_COLUMNS];
    size_t n = feat_split(line, f);
    if (n < FEAT_RAW_COLUMNS) {
        snprintf(err, errlen, "%zu fields, expected at least %d (missing %s)", n,
                 FEAT_RAW_COLUMNS, feat_raw_names[n]);
        return NDT_ERROR;
    }
    /* Extra columns: the last field may still carry ",rest"; cut it. */
    char *extra = strchr(f[FEAT_RAW_COLUMNS - 1], ',');
    if (extra)
        *extra = '\0';
    long long ts, users, pods;
    double d[6];
    if (feat_parse_int(f[0], 0, INT64_MAX, &ts) != NDT_OK) {
        snprintf(err, errlen, "timestamp_ms: expected a non-negative integer, got '%s'", f[0]);
        return NDT_ERROR;
    }
    if (feat_parse_int(f[1], 0, 1000000000, &users) != NDT_OK) {
        snprintf(err, errlen, "users: expected a non-negative integer, got '%s'", f[1]);
        return NDT_ERROR;
    }
    if (feat_parse_int(f[2], 1, 1000000, &pods) != NDT_OK) {
        snprintf(err, errlen, "pods: expected an integer >= 1, got '%s'", f[2]);
        return NDT_ERROR;
    }
    for (int i = 0; i < 6; i++) {
        /* The bound keeps sums and scalings of features finite (1e308 + 1e308
         * is inf); no telemetry value of the contract comes near it. */
        if (feat_parse_double(f[3 + i], &d[i]) != NDT_OK || fabs(d[i]) > FEAT_MAX_VALUE) {
            snprintf(err, errlen, "%s: expected a finite number within +/-1e15, got '%s'",
                     feat_raw_names[3 + i], f[3 + i]);
            return NDT_ERROR;
        }
    }
    if (d[5] < 0) {
        snprintf(err, errlen, "avg_total_infer_ms: negative latency %s", f[8]);
        return NDT_ERROR;
    }
    *r = (feat_raw){ .timestamp_ms = ts, .users = (int)users, .pods = (int)pods,
                     .depth = d[0], .backlog_s = d[1], .cpu_process = d[2],
                     .cpu_system = d[3], .mem_system = d[4], .infer_ms = d[5] };
    return NDT_OK;
}

/* Reads one line into buf; NDT_AGAIN at EOF, NDT_ERROR if too long. */
static int feat_read_line(FILE *in, char *buf, size_t size)
{
    if (!fgets(buf, (int)size, in))
        return NDT_AGAIN;
    size_t len = strlen(buf);
    if (len == size - 1 && buf[len - 1] != '\n' && !feof(in))
        return NDT_ERROR;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    return NDT_OK;
}

int feat_csv_read_stream(FILE *in, const char *name, size_t max_rows, feat_dataset *out, char *err,
                         size_t errlen)
{
    char line[FEAT_MAX_LINE], why[NDT_ERRBUF_SIZE / 2];
    size_t lineno = 1;
    feat_dataset ds = { 0 };
    int rc;
    if (max_rows == 0)
        max_rows = FEAT_MAX_ROWS_DEFAULT;
    rc = feat_read_line(in, line, sizeof(line));
    if (rc != NDT_OK) {
        snprintf(err, errlen, "%s:1: %s", name, rc == NDT_AGAIN ? "empty file, expected the header " FEAT_RAW_HEADER : "line too long");
        return NDT_EBADCONF;
    }
    size_t hlen = strlen(FEAT_RAW_HEADER);
    if (strncmp(line, FEAT_RAW_HEADER, hlen) != 0 || (line[hlen] != '\0' && line[hlen] != ',')) {
        snprintf(err, errlen, "%s:1: header must start with " FEAT_RAW_HEADER, name);
        return NDT_EBADCONF;
    }
    while ((rc = feat_read_line(in, line, sizeof(line))) != NDT_AGAIN) {
        lineno++;
        if (rc != NDT_OK) {
            snprintf(err, errlen, "%s:%zu: line longer than %d bytes", name, lineno, FEAT_MAX_LINE);
            goto bad;
        }
        if (line[0] == '\0')
            continue;
        if (feat_grow(&ds, max_rows) != NDT_OK) {
            if (ds.cap >= max_rows)
                snprintf(err, errlen, "%s:%zu: more than %zu rows (the dataset cap); "
                         "split the dataset or raise --max-rows", name, lineno, max_rows);
            else
                snprintf(err, errlen, "%s:%zu: out of memory", name, lineno);
            goto bad;
        }
        if (feat_parse_row(line, &ds.rows[ds.n], why, sizeof(why)) != NDT_OK) {
            snprintf(err, errlen, "%s:%zu: %s", name, lineno, why);
            goto bad;
        }
        ds.n++;
    }
    if (ferror(in)) {
        snprintf(err, errlen, "%s: read error: %s", name, strerror(errno));
        free(ds.rows);
        return NDT_ERROR;
    }
    if (ds.n == 0) {
        snprintf(err, errlen, "%s: no data rows after the header", name);
        goto bad;
    }
    *out = ds;
    return NDT_OK;
bad:
    free(ds.rows);
    return NDT_EBADCONF;
}

int feat_csv_read(const char *path, size_t max_rows, feat_dataset *out, char *err, size_t errlen)
{
    if (strcmp(path, "-") == 0)
        return feat_csv_read_stream(stdin, "stdin", max_rows, out, err, errlen);
    FILE *in = fopen(path, "r");
    if (!in) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NDT_EBADCONF;
    }
    int rc = feat_csv_read_stream(in, path, max_rows, out, err, errlen);
    fclose(in);
    return rc;
}

void feat_dataset_free(feat_dataset *ds)
{
    free(ds->rows);
    *ds = (feat_dataset){ 0 };
}

int feat_csv_write(const feat_dataset *ds, FILE *out, char *err, size_t errlen)
{
    fputs("timestamp_ms", out);
    for (int j = 0; j < FEAT_DIM; j++)
        fprintf(out, ",%s", feat_names[j]);
    fputs(",log_latency,avg_total_infer_ms\n", out);
    for (size_t i = 0; i < ds->n; i++) {
        double x[FEAT_DIM];
        const feat_raw *r = &ds->rows[i];
        feat_compute(r, x);
        fprintf(out, "%lld", (long long)r->timestamp_ms);
        /* %.17g: the file reads back as the same doubles. */
        for (int j = 0; j < FEAT_DIM; j++)
            fprintf(out, ",%.17g", x[j]);
        fprintf(out, ",%.17g,%.17g\n", feat_target(r->infer_ms), r->infer_ms);
    }
    if (ferror(out)) {
        snprintf(err, errlen, "writing the features: %s", strerror(errno));
        return NDT_ERROR;
    }
    return NDT_OK;
}
