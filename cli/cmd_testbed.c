/*
 * cmd_testbed.c: `ndtpipe testbed` (the live emulated cluster) and
 * `ndtpipe testbed campaign` (the measurement campaign to a dataset CSV).
 *
 * Flag parsing and exit codes only; the model lives in testbed/.  Every
 * value is validated before anything starts, so bad usage exits 2 with the
 * flag named and nothing written.  The campaign writes FILE.tmp and renames
 * it, so a failed run never leaves a truncated dataset under the real name;
 * an output that exists and is not a regular file (/dev/null, a FIFO, a
 * terminal) is written in place, since renaming over it would replace the
 * device or pipe with a file (as root, /dev/null itself).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "common/log.h"
#include "testbed/testbed.h"

#define CLI_TESTBED_OPT_INTERVAL 2000
#define CLI_TESTBED_OPT_PLOT 2001
#define CLI_TESTBED_OPT_MAX_QUEUE 2002
#define CLI_TESTBED_OPT_AVG_WINDOW 2003

static const char cli_testbed_help[] =
    "usage: ndtpipe testbed [--listen ADDR] [--users N] [--pods N] [--seed S] [--max-queue N]\n"
    "       ndtpipe testbed campaign --dwell DUR --out FILE.csv [options]\n\n"
    "The emulated Kubernetes inference cluster (docs/TESTBED.md), live:\n"
    "GET /metrics (service, cAdvisor, kube-state-metrics, node-exporter series),\n"
    "GET /control, POST /control {\"users\":U,\"pods\":N}.\n\n"
    "options:\n"
    "  --listen ADDR    HOST:PORT to serve on (default " TESTBED_DEFAULT_LISTEN ")\n"
    "  --users N        concurrent users at start, 0..20000 (default 200)\n"
    "  --pods N         replicas at start, 1..32 (default 1)\n"
    "  --seed S         seed of the simulation (default 1)\n"
    "  --max-queue N    requests a pod queues beyond the one in service; more get\n"
    "                   503 and retry after thinking; 0 unbounded (default 16)\n"
    "  --avg-window DUR the avg_* gauges average the requests of the last DUR;\n"
    "                   0 = the last 20 ms window only (default 5s)\n" CLI_COMMON_HELP;

static const char cli_campaign_help[] =
    "usage: ndtpipe testbed campaign --dwell DUR --out FILE.csv [options]\n\n"
    "The paper's measurement campaign on a simulated clock: for each users value,\n"
    "the pods range in order, each regime held for DUR, one CSV row per interval.\n"
    "The same seed writes the same file, byte for byte.\n\n"
    "options:\n"
    "  --users LIST     users values (default 200,400,600)\n"
    "  --pods RANGE     pods range, e.g. 1-6 (default 1-6)\n"
    "  --dwell DUR      time per regime, e.g. 30s, 5m (required)\n"
    "  --interval DUR   sampling interval (default 20ms)\n"
    "  --seed S         seed of the simulation (default 1)\n"
    "  --out FILE       the dataset CSV, - for stdout (required)\n"
    "  --plot FILE      also write an SVG of mean latency against pods\n"
    "  --max-queue N    per-pod admission bound, 0 unbounded (default 16)\n"
    "  --avg-window DUR averaging window of the avg_* columns, 0 = one interval\n"
    "                   (default 5s)\n" CLI_COMMON_HELP;

/* The averaging window: 0 (one telemetry window) up to the 4096 windows
 * of history a pod keeps at `interval_s`. */
static int cli_testbed_parse_avg_window(const char *cmd, const char *arg, double interval_s,
                                        double *out)
{
    char err[NDT_ERRBUF_SIZE];
    if (testbed_parse_duration(arg, out, err, sizeof(err)) != NDT_OK)
        return cli_usage_error(cmd, "--avg-window: %s", err);
    if (*out < 0 || *out / interval_s > TESTBED_MAX_AVG_TICKS)
        return cli_usage_error(cmd, "--avg-window: must be 0..%d intervals (%gs at %gs), got '%s'",
                               TESTBED_MAX_AVG_TICKS, TESTBED_MAX_AVG_TICKS * interval_s,
                               interval_s, arg);
    return NDT_EXIT_OK;
}

static int cli_testbed_parse_seed(const char *cmd, const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-')
        return cli_usage_error(cmd, "--seed: expected a non-negative integer, got '%s'", arg);
    *out = v;
    return NDT_EXIT_OK;
}

static int cli_testbed_parse_count(const char *cmd, const char *flag, const char *arg, int min,
                                   int max, int *out)
{
    char err[NDT_ERRBUF_SIZE];
    int lo, hi;
    if (testbed_parse_range(arg, &lo, &hi, min, max, err, sizeof(err)) != NDT_OK || lo != hi ||
        strchr(arg, '-'))
        return cli_usage_error(cmd, "%s: expected an integer %d..%d, got '%s'", flag, min, max,
                               arg);
    *out = lo;
    return NDT_EXIT_OK;
}

static int cli_testbed_live(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' }, { "users", required_argument, NULL, 'u' },
        { "pods", required_argument, NULL, 'p' },   { "seed", required_argument, NULL, 's' },
        { "max-queue", required_argument, NULL, CLI_TESTBED_OPT_MAX_QUEUE },
        { "avg-window", required_argument, NULL, CLI_TESTBED_OPT_AVG_WINDOW },
        { "help", no_argument, NULL, 'h' },         CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "testbed", *listen = TESTBED_DEFAULT_LISTEN;
    testbed_params p;
    testbed_params_default(&p);
    int opt, rc;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        rc = NDT_EXIT_OK;
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'u': rc = cli_testbed_parse_count(cmd, "--users", optarg, 0, TESTBED_MAX_USERS, &p.users); break;
        case 'p': rc = cli_testbed_parse_count(cmd, "--pods", optarg, 1, TESTBED_MAX_PODS, &p.pods); break;
        case 's': rc = cli_testbed_parse_seed(cmd, optarg, &p.seed); break;
        case CLI_TESTBED_OPT_MAX_QUEUE:
            rc = cli_testbed_parse_count(cmd, "--max-queue", optarg, 0, TESTBED_MAX_USERS, &p.max_queue);
            break;
        case CLI_TESTBED_OPT_AVG_WINDOW:
            rc = cli_testbed_parse_avg_window(cmd, optarg, p.sample_interval_s, &p.avg_window_s);
            break;
        case 'h': fputs(cli_testbed_help, stdout); return NDT_EXIT_OK;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
        if (rc != NDT_EXIT_OK)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

    char err[NDT_ERRBUF_SIZE];
    testbed_server *srv;
    cli_install_signal_handlers();
    if (testbed_server_start(&p, listen, &srv, err, sizeof(err)) != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "testbed", "cannot start", NDT_KV_STR("error", err));
        return strstr(err, "--listen") ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
    }
    ndt_log(NDT_LOG_INFO, "testbed", "serving", NDT_KV_STR("listen", listen),
            NDT_KV_INT("port", testbed_server_port(srv)), NDT_KV_INT("users", p.users),
            NDT_KV_INT("pods", p.pods), NDT_KV_UINT("seed", p.seed),
            NDT_KV_INT("max_queue", p.max_queue), NDT_KV_DOUBLE("avg_window_s", p.avg_window_s));
    struct timespec pause = { 0, 50 * 1000000L };
    while (!cli_stop_requested())
        nanosleep(&pause, NULL);
    testbed_server_stop(srv);
    ndt_log(NDT_LOG_INFO, "testbed", "stopped");
    return NDT_EXIT_OK;
}

/* Runs the campaign into out_path (or stdout) and the optional plot. */
static int cli_campaign_write(const testbed_campaign *c, const char *out_path,
                              const char *plot_path)
{
    char err[NDT_ERRBUF_SIZE], tmp[4096];
    size_t nres = c->nusers * (size_t)(c->pods_max - c->pods_min + 1);
    testbed_regime_result *res = calloc(nres, sizeof(*res));
    int to_stdout = strcmp(out_path, "-") == 0, rc = NDT_EXIT_FAILURE;
    int in_place = 0;
    struct stat st;
    FILE *out = stdout;
    if (!res) {
        ndt_log(NDT_LOG_ERROR, "testbed", "out of memory");
        return NDT_EXIT_FAILURE;
    }
    if (!to_stdout && stat(out_path, &st) == 0 && !S_ISREG(st.st_mode)) {
        in_place = 1;
        out = fopen(out_path, "w");
        if (!out) {
            ndt_log(NDT_LOG_ERROR, "testbed", "cannot write the dataset",
                    NDT_KV_STR("file", out_path), NDT_KV_STR("error", strerror(errno)));
            goto done;
        }
    } else if (!to_stdout) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
        out = fopen(tmp, "w");
        if (!out) {
            ndt_log(NDT_LOG_ERROR, "testbed", "cannot write the dataset", NDT_KV_STR("file", tmp),
                    NDT_KV_STR("error", strerror(errno)));
            goto done;
        }
    }
    int run = testbed_campaign_run(c, out, res, err, sizeof(err));
    if (!to_stdout && fclose(out) != 0 && run == NDT_OK) {
        snprintf(err, sizeof(err), "closing the dataset: %s", strerror(errno));
        run = NDT_ERROR;
    }
    if (run == NDT_OK && !to_stdout && !in_place && rename(tmp, out_path) != 0) {
        snprintf(err, sizeof(err), "renaming the dataset into place: %s", strerror(errno));
        run = NDT_ERROR;
    }
    if (run != NDT_OK) {
        if (!to_stdout && !in_place)
            remove(tmp);
        ndt_log(NDT_LOG_ERROR, "testbed", "campaign failed", NDT_KV_STR("error", err));
        goto done;
    }
    if (plot_path) {
        FILE *plot = fopen(plot_path, "w");
        int ok = plot && testbed_plot_svg(res, nres, plot, err, sizeof(err)) == NDT_OK;
        if (plot && fclose(plot) != 0)
            ok = 0;
        if (!ok) {
            ndt_log(NDT_LOG_ERROR, "testbed", "cannot write the plot", NDT_KV_STR("file", plot_path));
            goto done;
        }
    }
    for (size_t i = 0; i < nres; i++)
        ndt_log(NDT_LOG_INFO, "testbed", "regime", NDT_KV_INT("users", res[i].users),
                NDT_KV_INT("pods", res[i].pods), NDT_KV_DOUBLE("mean_infer_ms", res[i].mean_infer_ms));
    rc = NDT_EXIT_OK;
done:
    free(res);
    return rc;
}

static int cli_testbed_campaign(int argc, char **argv)
{
    static const struct option opts[] = {
        { "users", required_argument, NULL, 'u' },
        { "pods", required_argument, NULL, 'p' },
        { "dwell", required_argument, NULL, 'd' },
        { "interval", required_argument, NULL, CLI_TESTBED_OPT_INTERVAL },
        { "seed", required_argument, NULL, 's' },
        { "out", required_argument, NULL, 'o' },
        { "plot", required_argument, NULL, CLI_TESTBED_OPT_PLOT },
        { "max-queue", required_argument, NULL, CLI_TESTBED_OPT_MAX_QUEUE },
        { "avg-window", required_argument, NULL, CLI_TESTBED_OPT_AVG_WINDOW },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    const char *cmd = "testbed campaign", *out_path = NULL, *plot_path = NULL;
    const char *avg_window_arg = NULL;
    char err[NDT_ERRBUF_SIZE];
    testbed_campaign c = { .users = { 200, 400, 600 }, .nusers = 3, .pods_min = 1, .pods_max = 6,
                           .interval_s = 0.020, .epoch_ms = 1767225600000.0 };
    testbed_params_default(&c.params);
    int opt, rc = NDT_EXIT_OK;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            if (testbed_parse_int_list(optarg, c.users, NDT_ARRAY_LEN(c.users), &c.nusers, 0,
                                       TESTBED_MAX_USERS, err, sizeof(err)) != NDT_OK)
                return cli_usage_error(cmd, "--users: %s", err);
            break;
        case 'p':
            if (testbed_parse_range(optarg, &c.pods_min, &c.pods_max, 1, TESTBED_MAX_PODS, err,
                                    sizeof(err)) != NDT_OK)
                return cli_usage_error(cmd, "--pods: %s", err);
            break;
        case 'd':
            if (testbed_parse_duration(optarg, &c.dwell_s, err, sizeof(err)) != NDT_OK)
                return cli_usage_error(cmd, "--dwell: %s", err);
            if (!(c.dwell_s > 0) || c.dwell_s > 7 * 86400.0)
                return cli_usage_error(cmd, "--dwell: must be more than 0 and at most 1w, got '%s'", optarg);
            break;
        case CLI_TESTBED_OPT_INTERVAL:
            if (testbed_parse_duration(optarg, &c.interval_s, err, sizeof(err)) != NDT_OK)
                return cli_usage_error(cmd, "--interval: %s", err);
            if (c.interval_s < 0.001 || c.interval_s > 3600)
                return cli_usage_error(cmd, "--interval: must be 1ms..1h, got '%s'", optarg);
            break;
        case 's': rc = cli_testbed_parse_seed(cmd, optarg, &c.params.seed); break;
        case 'o': out_path = optarg; break;
        case CLI_TESTBED_OPT_PLOT: plot_path = optarg; break;
        case CLI_TESTBED_OPT_MAX_QUEUE:
            rc = cli_testbed_parse_count(cmd, "--max-queue", optarg, 0, TESTBED_MAX_USERS,
                                         &c.params.max_queue);
            break;
        case CLI_TESTBED_OPT_AVG_WINDOW: avg_window_arg = optarg; break;
        case 'h': fputs(cli_campaign_help, stdout); return NDT_EXIT_OK;
        default:
            if (cli_common_option(cmd, opt, optarg) == NDT_OK)
                break;
            return opt == '?' ? cli_usage_error(cmd, "unknown option") : NDT_EXIT_USAGE;
        }
        if (rc != NDT_EXIT_OK)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (c.dwell_s <= 0)
        return cli_usage_error(cmd, "--dwell is required (e.g. --dwell 5m)");
    /* After the loop: the window's bound depends on --interval. */
    if (avg_window_arg && (rc = cli_testbed_parse_avg_window(cmd, avg_window_arg, c.interval_s,
                                                             &c.params.avg_window_s)) != NDT_EXIT_OK)
        return rc;
    if (!out_path)
        return cli_usage_error(cmd, "--out is required (a CSV path, or - for stdout)");
    if (c.interval_s > c.dwell_s)
        return cli_usage_error(cmd, "--interval must not exceed --dwell");
    double rows = c.dwell_s / c.interval_s * (double)c.nusers * (c.pods_max - c.pods_min + 1);
    if (rows > 1e9)
        return cli_usage_error(cmd, "the campaign would write %.3g rows; shorten --dwell or "
                                    "lengthen --interval", rows);
    return cli_campaign_write(&c, out_path, plot_path);
}

int cli_cmd_testbed(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "campaign") == 0)
        return cli_testbed_campaign(argc - 1, argv + 1);
    return cli_testbed_live(argc, argv);
}
