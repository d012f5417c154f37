/*
 * cmd_run.c: `ndtpipe run`, every stage in one process on embedded
 * defaults.
 *
 * The stages still talk only through Kafka (the embedded broker) and the
 * UDR, exactly as they would as separate processes, so `run` is a
 * deployment shortcut, not a different code path:
 *
 *   testbed (--demo) -> scrape -> ndt.telemetry.raw -> harmonize -> UDR
 *                                                   -> ndt.sdm.entities -> features -> ndt.features
 *   UDR + model registry -> the what-if API (http://127.0.0.1:8080)
 *
 * Threads: the scraper runs on the main thread, harmonize and the
 * streaming features on one thread each, the API on libmicrohttpd's.  One
 * stop flag (SIGINT/SIGTERM) stops them all; each flushes and commits what
 * it holds.  A stage that fails stops the others, and `run` exits 1.
 *
 * The model: when the registry holds no model the API may serve, a small
 * one is bootstrapped first (run_bootstrap.c: campaign, train, validate),
 * so that a newcomer's `make run` answers what-ifs within a minute.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "common/kafka.h"
#include "common/log.h"
#include "features/features.h"
#include "harmonize/harmonize.h"
#include "ingest/ingest.h"
#include "testbed/testbed.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ndtpipe run [--demo] [--config FILE] [options]\n\n"
            "Runs the whole pipeline in one process on an embedded Kafka broker: scrape,\n"
            "harmonize (into the UDR and ndt.sdm.entities), streaming features\n"
            "(ndt.features) and the what-if API.  --demo adds the emulated testbed (an\n"
            "inference service on N pods loaded by U users) and scrapes it every 20 ms;\n"
            "--config scrapes the targets of a Prometheus-style file instead.  When the\n"
            "model registry has no model graded for deployment, a small one is trained\n"
            "and validated first (a campaign on the testbed's simulated clock).\n\n"
            "options:\n"
            "  --demo            start and scrape the emulated testbed\n"
            "  --config FILE     scrape configuration (scrape_configs of prometheus.yml)\n"
            "  --users N         demo: concurrent users (default 400)\n"
            "  --pods N          demo: pods (default 3)\n"
            "  --seed S          demo: simulation seed (default 1)\n"
            "  --data-dir DIR    where the UDR, the registry and the spool live\n"
            "                    (default data)\n"
            "  --udr URL         the UDR (default sqlite:DIR/udr.db)\n"
            "  --registry DIR    the model registry (default DIR/registry)\n"
            "  --listen ADDR     the what-if API (default 127.0.0.1:8080; port 0: any)\n"
            "  --mapping FILE    harmonize's rules (default sdm-schemas/mapping/testbed.yaml)\n"
            "  --bootstrap-dwell D  dwell per regime of the bootstrap campaign (default 30s)\n"
            "  --bootstrap-rounds N boosting rounds of the bootstrap model (default 300)\n"
            "  --no-bootstrap    never train a model here (the API answers 503 until one\n"
            "                    is registered and validated)\n"
            CLI_ACTUATION_HELP
            "  (with --demo, --objective-ms defaults to 100)\n"
            "Kafka (here --brokers defaults to 'embedded'):\n" CLI_KAFKA_HELP
            "  --web.listen-address HOST:PORT\n"
            "                    also serve every stage's /metrics there (the API's /metrics\n"
            "                    has them too)\n" CLI_COMMON_HELP);
}

typedef struct run_options {
    int demo;
    const char *config_path;
    int users;
    int pods;
    uint64_t seed;
    const char *format;
    const char *metrics_listen;
    const char *data_dir;
    const char *udr;
    const char *registry;
    const char *listen;
    const char *mapping;
    const char *dwell;
    const char *rounds;
    int bootstrap;
} run_options;

/* What the stage threads report back. */
typedef struct run_stage {
    const char *name;
    pthread_t thread;
    int started;
    int rc;
    char err[NDT_ERRBUF_SIZE];
} run_stage;

static hdl_stage *run_harmonizer;
static feat_stage_options run_features_opts;

/* A failing stage stops the others: the pipeline is only useful whole. */
static void run_stage_done(run_stage *st, int rc)
{
    st->rc = rc;
    if (rc != NDT_OK) {
        ndt_log(NDT_LOG_ERROR, "run", "a stage stopped; stopping the others",
                NDT_KV_STR("stage", st->name), NDT_KV_STR("error", st->err));
        cli_stop_flag = 1;
    }
}

static void *harmonize_thread(void *arg)
{
    run_stage *st = arg;
    int rc = hdl_stage_run(run_harmonizer);
    if (rc != NDT_OK)
        snprintf(st->err, sizeof(st->err), "what was consumed could not be made durable");
    run_stage_done(st, rc);
    return NULL;
}

static void *features_thread(void *arg)
{
    run_stage *st = arg;
    run_stage_done(st, feat_stage_run(&run_features_opts, st->err, sizeof(st->err)));
    return NULL;
}

/* Writes the demo's scrape configuration into dir; returns its path. */
static char *write_demo_config(const char *dir, int testbed_port)
{
    char *path = NULL;
    if (asprintf(&path, "%s/scrape.yml", dir) < 0)
        return NULL;
    FILE *f = fopen(path, "w");
    if (!f) {
        free(path);
        return NULL;
    }
    fprintf(f,
            "# Generated by ndtpipe run --demo.\n"
            "global:\n"
            "  scrape_interval: 20ms\n"
            "scrape_configs:\n"
            "  - job_name: testbed\n"
            "    static_configs:\n"
            "      - targets: [\"127.0.0.1:%d\"]\n"
            "        labels: {cluster: demo}\n",
            testbed_port);
    fclose(f);
    return path;
}

static int parse_int(const char *flag, const char *s, int min, int max, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end || v < min || v > max) {
        cli_usage_error("run", "%s: expected an integer in [%d, %d], got '%s'", flag, min, max, s);
        return NDT_ERROR;
    }
    *out = (int)v;
    return NDT_OK;
}

/* A file of the source tree: as given when it exists (relative to the
 * working directory), else next to the binary's tree (build/ndtpipe ->
 * ./FILE), so `run` works from any directory of a checkout. */
static const char *source_file(const char *rel, char *buf, size_t size)
{
    if (access(rel, R_OK) == 0 || rel[0] == '/')
        return rel;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return rel;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (snprintf(buf, size, "%s/%s", exe, rel) < (int)size && access(buf, R_OK) == 0)
            return buf;
    }
    return rel;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return NDT_OK;
    ndt_log(NDT_LOG_ERROR, "run", "cannot create a directory", NDT_KV_STR("path", path),
            NDT_KV_STR("error", strerror(errno)));
    return NDT_ERROR;
}

static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return NDT_ERROR;
    free(*field);
    *field = copy;
    return NDT_OK;
}

static void print_banner(const char *bootstrap, int testbed_port, int api_port,
                         const char *model, const run_options *o)
{
    printf("ndtpipe run: the pipeline is up\n");
    printf("  what-if API      http://127.0.0.1:%d\n", api_port);
    printf("                   curl -s -d '{\"change\":{\"pods\":\"+1\"}}' "
           "http://127.0.0.1:%d/v1/whatif\n", api_port);
    printf("  kafka bootstrap  %s\n", bootstrap);
    printf("                   kcat -C -b %s -t ndt.sdm.entities\n", bootstrap);
    if (testbed_port > 0) {
        printf("  testbed          http://127.0.0.1:%d/metrics (%d users, %d pods)\n", testbed_port,
               o->users, o->pods);
        printf("                   curl -X POST -d '{\"pods\":4}' http://127.0.0.1:%d/control\n",
               testbed_port);
    }
    printf("  stages           scrape -> ndt.telemetry.raw (%s) -> harmonize -> %s\n",
           o->format ? o->format : "avro", o->udr);
    printf("                   -> ndt.sdm.entities -> features -> ndt.features\n");
    printf("  model            %s (registry %s)\n", model[0] ? model : "none servable yet",
           o->registry);
    printf("  metrics          http://127.0.0.1:%d/metrics\n", api_port);
    printf("Ctrl-C stops it.\n");
    fflush(stdout);
}

static int start_stage(run_stage *st, const char *name, void *(*fn)(void *))
{
    st->name = name;
    if (pthread_create(&st->thread, NULL, fn, st) != 0) {
        ndt_log(NDT_LOG_ERROR, "run", "cannot start a thread", NDT_KV_STR("stage", name));
        return NDT_ERROR;
    }
    st->started = 1;
    return NDT_OK;
}

int cli_cmd_run(int argc, char **argv)
{
    enum { OPT_DEMO = 1, OPT_CONFIG, OPT_USERS, OPT_PODS, OPT_SEED, OPT_WEB, OPT_DATA_DIR,
           OPT_UDR, OPT_REGISTRY, OPT_LISTEN, OPT_MAPPING, OPT_DWELL, OPT_ROUNDS,
           OPT_NO_BOOTSTRAP };
    static const struct option longopts[] = {
        { "demo", no_argument, NULL, OPT_DEMO },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "users", required_argument, NULL, OPT_USERS },
        { "pods", required_argument, NULL, OPT_PODS },
        { "seed", required_argument, NULL, OPT_SEED },
        { "web.listen-address", required_argument, NULL, OPT_WEB },
        { "data-dir", required_argument, NULL, OPT_DATA_DIR },
        { "udr", required_argument, NULL, OPT_UDR },
        { "registry", required_argument, NULL, OPT_REGISTRY },
        { "listen", required_argument, NULL, OPT_LISTEN },
        { "mapping", required_argument, NULL, OPT_MAPPING },
        { "bootstrap-dwell", required_argument, NULL, OPT_DWELL },
        { "bootstrap-rounds", required_argument, NULL, OPT_ROUNDS },
        { "no-bootstrap", no_argument, NULL, OPT_NO_BOOTSTRAP },
        CLI_ACTUATION_LONG_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        CLI_KAFKA_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    run_options o = { .users = 400, .pods = 3, .seed = 1, .data_dir = "data",
                      .listen = API_DEFAULT_LISTEN, .mapping = HDL_DEFAULT_MAPPING,
                      .dwell = "30s", .rounds = "300", .bootstrap = 1 };
    cli_kafka_flags kafka;
    char err[NDT_ERRBUF_SIZE], udr_buf[PATH_MAX + 16], registry_buf[PATH_MAX];
    char spool_buf[PATH_MAX], mapping_buf[PATH_MAX], model[256] = "";
    char dir[] = "/tmp/ndtpipe-run-XXXXXX";
    char *config_path = NULL;
    int have_dir = 0, rc = NDT_EXIT_USAGE, c;
    testbed_server *testbed = NULL;
    ingest_scraper *scraper = NULL;
    api_server *api = NULL;
    api_options ao;
    hdl_options ho;
    int have_ho = 0;
    run_stage harmonize = { 0 }, features = { 0 };

    cli_kafka_flags_init(&kafka);
    kafka.brokers = "embedded";
    memset(&ao, 0, sizeof(ao));
    optind = 1;
    while ((c = getopt_long(argc, argv, "hX:", longopts, NULL)) != -1) {
        int k = cli_actuation_flag("run", c, optarg, &ao);
        if (k == NDT_ERROR)
            goto out;
        if (k == NDT_OK)
            continue;
        k = cli_kafka_flag("run", c, optarg, &kafka);
        if (k == NDT_ERROR)
            goto out;
        if (k == NDT_OK)
            continue;
        switch (c) {
        case OPT_DEMO: o.demo = 1; break;
        case OPT_CONFIG: o.config_path = optarg; break;
        case OPT_WEB: o.metrics_listen = optarg; break;
        case OPT_DATA_DIR: o.data_dir = optarg; break;
        case OPT_UDR: o.udr = optarg; break;
        case OPT_REGISTRY: o.registry = optarg; break;
        case OPT_LISTEN: o.listen = optarg; break;
        case OPT_MAPPING: o.mapping = optarg; break;
        case OPT_DWELL: o.dwell = optarg; break;
        case OPT_ROUNDS: o.rounds = optarg; break;
        case OPT_NO_BOOTSTRAP: o.bootstrap = 0; break;
        case OPT_USERS:
            if (parse_int("--users", optarg, 0, TESTBED_MAX_USERS, &o.users) != NDT_OK)
                goto out;
            break;
        case OPT_PODS:
            if (parse_int("--pods", optarg, 1, TESTBED_MAX_PODS, &o.pods) != NDT_OK)
                goto out;
            break;
        case OPT_SEED: {
            char *end;
            o.seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end) {
                rc = cli_usage_error("run", "--seed: expected a non-negative integer, got '%s'", optarg);
                goto out;
            }
            break;
        }
        case 'h': usage(stdout); rc = NDT_EXIT_OK; goto out;
        default:
            if (cli_default_option("run", c, optarg, usage) != NDT_OK)
                goto out;
        }
    }
    if (optind < argc) {
        rc = cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!o.demo && !o.config_path) {
        rc = cli_usage_error("run", "nothing to run: give --demo, --config FILE, or both");
        goto out;
    }
    if (o.demo && o.config_path) {
        rc = cli_usage_error("run", "--demo with --config is not supported yet: scrape the testbed "
                                    "from your own file instead");
        goto out;
    }
    int rounds;
    if (parse_int("--bootstrap-rounds", o.rounds, 1, 100000, &rounds) != NDT_OK)
        goto out;

    rc = NDT_EXIT_FAILURE;
    cli_install_signal_handlers();
    if (make_dir(o.data_dir) != NDT_OK)
        goto out;
    if (!o.udr) {
        snprintf(udr_buf, sizeof(udr_buf), "sqlite:%s/udr.db", o.data_dir);
        o.udr = udr_buf;
    }
    if (!o.registry) {
        snprintf(registry_buf, sizeof(registry_buf), "%s/registry", o.data_dir);
        o.registry = registry_buf;
    }
    snprintf(spool_buf, sizeof(spool_buf), "%s/spool", o.data_dir);
    o.mapping = source_file(o.mapping, mapping_buf, sizeof(mapping_buf));

    const char *bootstrap = ndt_kafka_bootstrap(kafka.brokers, err, sizeof(err));
    if (!bootstrap) {
        ndt_log(NDT_LOG_ERROR, "run", "cannot start the embedded broker", NDT_KV_STR("error", err));
        goto out;
    }
    int testbed_port = 0;
    if (o.demo) {
        testbed_params params;
        testbed_params_default(&params);
        params.users = o.users;
        params.pods = o.pods;
        params.seed = o.seed;
        if (testbed_server_start(&params, "127.0.0.1:0", &testbed, err, sizeof(err)) != NDT_OK) {
            ndt_log(NDT_LOG_ERROR, "run", "cannot start the testbed", NDT_KV_STR("error", err));
            goto out;
        }
        testbed_port = testbed_server_port(testbed);
        if (!mkdtemp(dir)) {
            ndt_log(NDT_LOG_ERROR, "run", "cannot create a temporary directory");
            goto out;
        }
        have_dir = 1;
        config_path = write_demo_config(dir, testbed_port);
        if (!config_path) {
            ndt_log(NDT_LOG_ERROR, "run", "cannot write the demo scrape configuration");
            goto out;
        }
    }

    /* The model first: the API serves what the registry holds at start. */
    if (o.bootstrap) {
        int b = cli_run_bootstrap(o.registry, o.data_dir, o.dwell, o.rounds, model, sizeof(model),
                                  err, sizeof(err));
        if (b == NDT_ERROR) {
            ndt_log(NDT_LOG_ERROR, "run", "the model bootstrap failed", NDT_KV_STR("error", err));
            goto out;
        }
        if (b == NDT_AGAIN) {
            ndt_log(NDT_LOG_WARN, "run", "no servable model", NDT_KV_STR("why", err));
            model[0] = '\0';
        }
    } else {
        cli_run_find_gated_model(o.registry, model, sizeof(model));
    }
    if (cli_stop_flag)
        goto out;

    /* Harmonize: the stage's defaults, with run's brokers, UDR and files,
     * and the format the scraper writes (detecting an unframed Avro record
     * would read every message twice). */
    if (hdl_options_init(&ho, err, sizeof(err)) != NDT_OK)
        goto out;
    have_ho = 1;
    if (set_string(&ho.brokers, bootstrap) || set_string(&ho.udr, o.udr) ||
        set_string(&ho.mapping, o.mapping) || set_string(&ho.spool_dir, spool_buf) ||
        set_string(&ho.format, kafka.format ? kafka.format : "avro")) {
        ndt_log(NDT_LOG_ERROR, "run", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < kafka.xopts.n; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s=%s", kafka.xopts.keys[i], kafka.xopts.values[i]);
        if (ndt_kafka_opts_add(&ho.xopts, kv, err, sizeof(err)) != NDT_OK)
            goto out;
    }
    ho.stop = &cli_stop_flag;
    int status = hdl_stage_new(&ho, &run_harmonizer, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe run: harmonize: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    if (start_stage(&harmonize, "harmonize", harmonize_thread) != NDT_OK)
        goto out;

    run_features_opts = (feat_stage_options){ .brokers = bootstrap, .xopts = &kafka.xopts,
                                              .window_ms = 1000, .lateness_ms = 200,
                                              .stop = &cli_stop_flag };
    if (start_stage(&features, "features", features_thread) != NDT_OK)
        goto out;

    ao.listen = o.listen;
    ao.registry = o.registry;
    ao.udr_url = o.udr;
    ao.model_id = model[0] ? model : NULL;
    ao.stop = &cli_stop_flag;
    ao.actions_brokers = bootstrap; /* recommendations go to the pipeline's broker */
    /* The demo shows actuation too: an objective the default cluster (400
     * users on 3 pods, ~65 ms) meets, and scaling the testbed down breaks. */
    if (o.demo && ao.objective_ms <= 0)
        ao.objective_ms = 100;
    ao.actions_xopts = &kafka.xopts;
    status = api_server_new(&ao, &api, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe run: the what-if API: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }

    ingest_scrape_options so;
    memset(&so, 0, sizeof(so));
    so.config_path = config_path ? config_path : o.config_path;
    so.output.brokers = bootstrap;
    so.output.xopts = &kafka.xopts;
    so.output.format = kafka.format;
    so.output.topic = kafka.topic;
    so.output.schema_id = kafka.schema_id;
    so.output.flush_timeout_ms = kafka.flush_timeout_ms;
    so.stop = &cli_stop_flag;
    so.metrics_listen = o.metrics_listen;
    status = ingest_scraper_new(&so, &scraper, err, sizeof(err));
    if (status != NDT_OK) {
        fprintf(stderr, "ndtpipe run: %s\n", err);
        rc = status == NDT_EBADCONF ? NDT_EXIT_USAGE : NDT_EXIT_FAILURE;
        goto out;
    }
    o.format = kafka.format;
    print_banner(bootstrap, testbed_port, api_server_port(api), model, &o);
    rc = ingest_scraper_run(scraper) == NDT_OK ? NDT_EXIT_OK : NDT_EXIT_FAILURE;

out:
    /* Stop order: the scraper has returned (or never ran); the other
     * stages drain what it published, flush and commit, then exit. */
    cli_stop_flag = 1;
    if (harmonize.started) {
        pthread_join(harmonize.thread, NULL);
        if (harmonize.rc != NDT_OK)
            rc = NDT_EXIT_FAILURE;
    }
    if (features.started) {
        pthread_join(features.thread, NULL);
        if (features.rc != NDT_OK)
            rc = NDT_EXIT_FAILURE;
    }
    api_server_destroy(api);
    ingest_scraper_destroy(scraper);
    if (run_harmonizer)
        hdl_stage_destroy(run_harmonizer);
    run_harmonizer = NULL;
    if (have_ho)
        hdl_options_free(&ho);
    if (testbed)
        testbed_server_stop(testbed);
    if (config_path) {
        unlink(config_path);
        free(config_path);
    }
    if (have_dir)
        rmdir(dir);
    cli_kafka_flags_free(&kafka);
    if (rc == NDT_EXIT_OK)
        ndt_log(NDT_LOG_INFO, "run", "stopped");
    return rc;
}
