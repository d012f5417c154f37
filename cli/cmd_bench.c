/*
 * cmd_bench.c: `ndtpipe bench [--list] [NAME...]`, the benchmarks behind
 * `make bench`.
 *
 * The benchmarks compare ndtpipe with peers run side by side (Prometheus,
 * vmagent, promtool, influxd, XGBoost's own predictor), so they are shell
 * harnesses in the source tree's bench/ that start those peers, not code
 * inside the binary.  This command finds that tree from the binary's own
 * location (build/ndtpipe -> bench/) and runs bench/run.sh with BENCH set
 * to each NAME; a binary installed without its source tree says so.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

static const char cli_bench_usage[] =
    "usage: ndtpipe bench [--list] [NAME...]\n"
    "\n"
    "Runs the benchmarks of the source tree's bench/ directory (what `make bench`\n"
    "runs) and prints their Markdown tables. NAME picks the harnesses whose file\n"
    "name contains it (scrape, receive, udr, encode, testbed, ...); without NAME\n"
    "every one runs. Each compares ndtpipe with a peer in the same run; the\n"
    "peers are Debian packages that `make deps` installs.\n"
    "\n"
    "  --list    print the available benchmark names and exit\n" CLI_COMMON_HELP;

/* bench/ of the source tree the binary was built in: build/ndtpipe or
 * build/asan/ndtpipe. */
static int cli_bench_dir(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NDT_ERROR;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            return NDT_ERROR;
        *slash = '\0';
        if (snprintf(out, size, "%s/bench/run.sh", exe) >= (int)size)
            return NDT_ERROR;
        if (access(out, X_OK) == 0) {
            out[strlen(out) - strlen("/run.sh")] = '\0';
            return NDT_OK;
        }
    }
    return NDT_ERROR;
}

static int cli_bench_is_harness(const char *name)
{
    size_t n = strlen(name);
    return n > 3 && strcmp(name + n - 3, ".sh") == 0 && strcmp(name, "lib.sh") != 0 &&
           strcmp(name, "run.sh") != 0 && strncmp(name, "gen_", 4) != 0;
}

static int cli_bench_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The harness names (file names without .sh), sorted; *n of them. */
static char **cli_bench_names(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!cli_bench_is_harness(e->d_name))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, cap * sizeof(*names));
            if (!grown)
                break;
            names = grown;
        }
        names[(*n)++] = strndup(e->d_name, strlen(e->d_name) - 3);
    }
    closedir(d);
    if (names)
        qsort(names, *n, sizeof(*names), cli_bench_cmp);
    return names;
}

static void cli_bench_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cli_bench_run(const char *dir, const char *name)
{
    char script[PATH_MAX + 16];
    snprintf(script, sizeof(script), "%s/run.sh", dir);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "ndtpipe bench: fork: %s\n", strerror(errno));
        return NDT_EXIT_FAILURE;
    }
    if (pid == 0) {
        if (name)
            setenv("BENCH", name, 1);
        execl("/bin/bash", "bash", script, (char *)NULL);
        fprintf(stderr, "ndtpipe bench: cannot run %s: %s\n", script, strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return NDT_EXIT_FAILURE;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? NDT_EXIT_OK : NDT_EXIT_FAILURE;
}

int cli_cmd_bench(int argc, char **argv)
{
    enum { OPT_LIST = 2000 };
    static const struct option options[] = {
        { "list", no_argument, NULL, OPT_LIST },
        { "help", no_argument, NULL, 'h' },
        CLI_COMMON_LONG_OPTIONS,
        { NULL, 0, NULL, 0 },
    };
    int list = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(cli_bench_usage, stdout);
            return NDT_EXIT_OK;
        case OPT_LIST:
            list = 1;
            break;
        default: {
            int rc = cli_common_option("bench", opt, optarg);
            if (rc == NDT_OK)
                break;
            if (rc == NDT_AGAIN)
                return cli_usage_error("bench", "unknown option");
            return NDT_EXIT_USAGE;
        }
        }
    }
    char dir[PATH_MAX];
    if (cli_bench_dir(dir, sizeof(dir)) != NDT_OK) {
        fprintf(stderr, "ndtpipe bench: no bench/ directory next to this binary: the benchmarks "
                        "run from a source tree (make bench)\n");
        return NDT_EXIT_FAILURE;
    }
    size_t n;
    char **names = cli_bench_names(dir, &n);
    int rc = NDT_EXIT_OK;
    if (list) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", names[i]);
        cli_bench_free_names(names, n);
        return rc;
    }
    /* A name that picks nothing is a typo, not an empty success. */
    for (int i = optind; i < argc && rc == NDT_EXIT_OK; i++) {
        size_t hits = 0;
        for (size_t k = 0; k < n; k++)
            hits += strstr(names[k], argv[i]) != NULL;
        if (!hits)
            rc = cli_usage_error("bench", "no benchmark matches '%s' (see --list)", argv[i]);
    }
    cli_bench_free_names(names, n);
    if (rc != NDT_EXIT_OK)
        return rc;
    if (optind >= argc)
        return cli_bench_run(dir, NULL);
    for (int i = optind; i < argc; i++) {
        if (cli_bench_run(dir, argv[i]) != NDT_EXIT_OK)
            rc = NDT_EXIT_FAILURE;
    }
    return rc;
}
