/*
 * udr_tool.c: drives the UDR library from a script, for the integration
 * tests against real InfluxDB and VictoriaMetrics servers.
 *
 *   udr_tool [--input FILE] [--spool DIR] [--retries N] [--batch-bytes N]
 *            [--spool-max N] URL
 *
 * Reads one command per line from FILE (a fifo, so a test can interleave
 * commands with killing and restarting the server) or stdin:
 *
 *   p TYPE ID TS NAME=VALUE...   write a point (VALUE a number, or s:TEXT)
 *   r SUBJECT PREDICATE OBJECT FROM [TO]   write a relationship change
 *   flush                        udr_flush, then "flushed rc=N <stats>"
 *   start                        udr_flush_start, then "started rc=N ticket=T"
 *   done T                       udr_flush_done(T, wait), then "done rc=N <stats>"
 *   range TYPE FROM TO           "point ID TS NAME=VALUE..." lines, then "end rc=N"
 *   latest TYPE                  the same for the latest state
 *   relations AT                 "rel S P O FROM TO" lines, then "end rc=N"
 *   quit                         (or end of input) flush, print "closed rc=N <stats>", close
 *
 * Output is line-buffered on stdout, so a test can wait for a line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "udr/udr.h"

#define TOOL_MAX_FIELDS 64

static void tool_print_stats(const char *what, int rc, const udr *u)
{
    udr_stats s;
    udr_get_stats(u, &s);
    printf("%s rc=%d written=%" PRIu64 " sent=%" PRIu64 " spooled=%" PRIu64 " replayed=%" PRIu64
           " dropped=%" PRIu64 " requests=%" PRIu64 " retries=%" PRIu64 "\n",
           what, rc, s.points_written, s.points_sent, s.points_spooled, s.points_replayed,
           s.points_dropped, s.requests, s.retries);
}

static int tool_print_point(void *ctx, const udr_point *p)
{
    (void)ctx;
    printf("point %s %" PRId64, p->id, p->ts_ms);
    for (size_t i = 0; i < p->nfields; i++) {
        if (p->fields[i].kind == UDR_FIELD_STRING)
            printf(" %s=s:%s", p->fields[i].name, p->fields[i].text);
        else
            printf(" %s=%.17g", p->fields[i].name, p->fields[i].number);
    }
    printf("\n");
    return 0;
}

static int tool_print_relation(void *ctx, const udr_relation *r)
{
    (void)ctx;
    printf("rel %s %s %s %" PRId64 " %" PRId64 "\n", r->subject, r->predicate, r->object,
           r->valid_from_ms, r->valid_to_ms);
    return 0;
}

static int tool_point(udr *u, char *args, char *err, size_t errlen)
{
    char *save = NULL;
    char *type = strtok_r(args, " ", &save), *id = strtok_r(NULL, " ", &save);
    char *ts = strtok_r(NULL, " ", &save);
    if (!type || !id || !ts) {
        snprintf(err, errlen, "usage: p TYPE ID TS NAME=VALUE...");
        return -1;
    }
    udr_field fields[TOOL_MAX_FIELDS];
    size_t n = 0;
    for (char *kv; n < TOOL_MAX_FIELDS && (kv = strtok_r(NULL, " ", &save));) {
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = '\0';
        fields[n] = (udr_field){ .name = kv };
        if (strncmp(eq + 1, "s:", 2) == 0) {
            fields[n].kind = UDR_FIELD_STRING;
            fields[n].text = eq + 3;
        } else {
            fields[n].number = strtod(eq + 1, NULL);
        }
        n++;
    }
    udr_point p = { .type = type, .id = id, .ts_ms = strtoll(ts, NULL, 10),
                    .fields = fields, .nfields = n };
    return udr_write_points(u, &p, 1, err, errlen);
}

static int tool_relation(udr *u, char *args, char *err, size_t errlen)
{
    char *save = NULL;
    udr_relation r = { 0 };
    r.subject = strtok_r(args, " ", &save);
    r.predicate = strtok_r(NULL, " ", &save);
    r.object = strtok_r(NULL, " ", &save);
    char *from = strtok_r(NULL, " ", &save), *to = strtok_r(NULL, " ", &save);
    if (!r.object || !from) {
        snprintf(err, errlen, "usage: r SUBJECT PREDICATE OBJECT FROM [TO]");
        return -1;
    }
    r.valid_from_ms = strtoll(from, NULL, 10);
    r.valid_to_ms = to ? strtoll(to, NULL, 10) : UDR_OPEN;
    return udr_write_relation(u, &r, err, errlen);
}

static int tool_command(udr *u, char *line, char *err, size_t errlen)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " ", &save);
    char *rest = save ? save : (char *)"";
    if (!cmd)
        return 0;
    if (strcmp(cmd, "p") == 0)
        return tool_point(u, rest, err, errlen);
    if (strcmp(cmd, "r") == 0)
        return tool_relation(u, rest, err, errlen);
    if (strcmp(cmd, "flush") == 0) {
        int rc = udr_flush(u, err, errlen);
        tool_print_stats("flushed", rc, u);
        return rc;
    }
    if (strcmp(cmd, "start") == 0) {
        uint64_t ticket = 0;
        int rc = udr_flush_start(u, &ticket, err, errlen);
        printf("started rc=%d ticket=%" PRIu64 "\n", rc, ticket);
        return rc;
    }
    if (strcmp(cmd, "done") == 0) {
        char *t = strtok_r(NULL, " ", &save);
        int rc = udr_flush_done(u, t ? strtoull(t, NULL, 10) : 0, 1, err, errlen);
        tool_print_stats("done", rc, u);
        return rc;
    }
    if (strcmp(cmd, "range") == 0 || strcmp(cmd, "latest") == 0) {
        char *type = strtok_r(NULL, " ", &save), *from = strtok_r(NULL, " ", &save);
        char *to = strtok_r(NULL, " ", &save);
        int rc = cmd[0] == 'r'
                     ? udr_read_range(u, type ? type : "", from ? strtoll(from, NULL, 10) : 0,
                                      to ? strtoll(to, NULL, 10) : INT64_MAX, tool_print_point,
                                      NULL, err, errlen)
                     : udr_read_latest(u, type ? type : "", tool_print_point, NULL, err, errlen);
        printf("end rc=%d\n", rc);
        return rc;
    }
    if (strcmp(cmd, "relations") == 0) {
        char *at = strtok_r(NULL, " ", &save);
        int rc = udr_read_relations(u, at ? strtoll(at, NULL, 10) : 0, tool_print_relation, NULL,
                                    err, errlen);
        printf("end rc=%d\n", rc);
        return rc;
    }
    snprintf(err, errlen, "unknown command %s", cmd);
    return -1;
}

int main(int argc, char **argv)
{
    udr_options opts = { .spool_dir = NULL };
    const char *input = NULL, *url = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--input") == 0 && v)
            input = argv[++i];
        else if (strcmp(a, "--spool") == 0 && v)
            opts.spool_dir = argv[++i];
        else if (strcmp(a, "--retries") == 0 && v)
            opts.max_retries = atoi(argv[++i]) > 0 ? atoi(argv[i]) : -1;
        else if (strcmp(a, "--batch-bytes") == 0 && v)
            opts.batch_max_bytes = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--spool-max") == 0 && v)
            opts.spool_max_bytes = strtoull(argv[++i], NULL, 10);
        else
            url = a;
    }
    if (!url) {
        fprintf(stderr, "usage: udr_tool [--input FILE] [--spool DIR] [--retries N] URL\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char err[NDT_ERRBUF_SIZE] = "";
    udr *u = NULL;
    int rc = udr_open(&u, url, &opts, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "udr_tool: %s\n", err);
        return rc == NDT_EBADCONF ? 2 : 1;
    }
    FILE *in = input ? fopen(input, "r") : stdin;
    if (!in) {
        perror(input);
        udr_close(u);
        return 1;
    }
    int failures = 0;
    char line[8192];
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "quit") == 0)
            break;
        err[0] = '\0';
        if (tool_command(u, line, err, sizeof(err)) != 0) {
            printf("error %s\n", err);
            failures++;
        }
    }
    if (in != stdin)
        fclose(in);
    err[0] = '\0';
    rc = udr_flush(u, err, sizeof(err));
    tool_print_stats("closed", rc, u);
    udr_close(u);
    return failures ? 1 : 0;
}
