/*
 * run_bootstrap.c: the first model of `ndtpipe run` when the registry has
 * none the API may serve.
 *
 * The same three steps an operator runs by hand (and the compose stack's
 * deploy/ndtpipe/bootstrap-model.sh runs): a campaign on the testbed's
 * simulated clock, XGBoost trained on 200/400 users and tested on the
 * unseen 600, then matched-pairs validation, which writes the deployment
 * grade.  They run as child processes of this same binary, so `run` adds
 * no second code path to what the commands do, and each step's progress
 * shows on the terminal as it would by hand.  The sizes are small (a short
 * dwell, few boosting rounds) so that a newcomer's `make run` is ready in
 * well under a minute; `ndtpipe train` with the paper's configuration is
 * one command away.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/log.h"
#include "features/features.h"

/* Reads DIR/ID/model.json; 1 if its deployment_grade is Excellent or
 * Reliable and it was trained on this build's feature spec.  A model of an
 * older spec (a registry kept from before docs/FEATURES.md's v2) cannot be
 * loaded, so it must not stop the bootstrap: a new model is trained beside
 * it and, being the newest servable one, is the one the API serves. */
static int model_is_gated(const char *registry, const char *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/model.json", registry, id);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *doc = cJSON_Parse(buf);
    const cJSON *grade = cJSON_GetObjectItemCaseSensitive(doc, "deployment_grade");
    const cJSON *features = cJSON_GetObjectItemCaseSensitive(doc, "features");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(features, "spec");
    int ok = cJSON_IsString(grade) && (strcmp(grade->valuestring, "Excellent") == 0 ||
                                      strcmp(grade->valuestring, "Reliable") == 0) &&
             cJSON_IsString(spec) && strcmp(spec->valuestring, feat_spec) == 0;
    cJSON_Delete(doc);
    return ok;
}

int cli_run_find_gated_model(const char *registry, char *id, size_t size)
{
    DIR *d = opendir(registry);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    id[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !model_is_gated(registry, e->d_name))
            continue;
        /* Ids start with a sortable time: the newest wins. */
        if (!found || strcmp(e->d_name, id) > 0)
            snprintf(id, size, "%s", e->d_name);
        found = 1;
    }
    closedir(d);
    return found;
}

/* Runs this binary with argv; stdout to out_path when given.  NDT_OK when
 * it exited 0. */
static int run_child(char *const argv[], const char *out_path, char *err, size_t errlen)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return NDT_ERROR;
    }
    if (pid == 0) {
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                _exit(126);
            close(fd);
        } else {
            /* The steps' own stdout (a campaign's CSV path, validation
             * tables) would clutter the banner: to stderr with the logs. */
            dup2(STDERR_FILENO, STDOUT_FILENO);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "waitpid: %s", strerror(errno));
            return NDT_ERROR;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "`ndtpipe %s` failed (status %d)", argv[1],
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return NDT_ERROR;
    }
    return NDT_OK;
}

static int read_model_id(const char *path, char *id, size_t size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NDT_ERROR;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *doc = cJSON_Parse(buf);
    const cJSON *mid = cJSON_GetObjectItemCaseSensitive(doc, "model_id");
    int rc = NDT_ERROR;
    if (cJSON_IsString(mid)) {
        snprintf(id, size, "%s", mid->valuestring);
        rc = NDT_OK;
    } else {
        snprintf(err, errlen, "%s: no model_id in train --json's output", path);
    }
    cJSON_Delete(doc);
    return rc;
}

int cli_run_bootstrap(const char *registry, const char *data_dir, const char *dwell,
                      const char *rounds, char *id, size_t size, char *err, size_t errlen)
{
    if (cli_run_find_gated_model(registry, id, size)) {
        ndt_log(NDT_LOG_INFO, "run", "serving the newest gated model of the registry",
                NDT_KV_STR("registry", registry), NDT_KV_STR("model", id));
        return NDT_OK;
    }
    char csv[PATH_MAX], train_json[PATH_MAX];
    snprintf(csv, sizeof(csv), "%s/bootstrap-campaign.csv", data_dir);
    snprintf(train_json, sizeof(train_json), "%s/bootstrap-train.json", data_dir);
    if (mkdir(registry, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", registry, strerror(errno));
        return NDT_ERROR;
    }

    ndt_log(NDT_LOG_INFO, "run", "no gated model yet: bootstrap 1/3, a campaign on the "
            "testbed's simulated clock", NDT_KV_STR("dwell", dwell), NDT_KV_STR("out", csv));
    char *campaign[] = { "ndtpipe", "testbed", "campaign", "--users", "200,400,600", "--pods",
                         "1-6", "--dwell", (char *)dwell, "--seed", "1", "--out", csv, NULL };
    if (run_child(campaign, NULL, err, errlen) != NDT_OK)
        return NDT_ERROR;

    ndt_log(NDT_LOG_INFO, "run", "bootstrap 2/3: XGBoost on users=200,400, tested on the "
            "unseen users=600", NDT_KV_STR("rounds", rounds));
    char *train[] = { "ndtpipe", "train", "--data", csv, "--model", "xgboost", "--train",
                      "users=200,400", "--test", "users=600", "--registry", (char *)registry,
                      "--rounds", (char *)rounds, "--json", NULL };
    if (run_child(train, train_json, err, errlen) != NDT_OK ||
        read_model_id(train_json, id, size, err, errlen) != NDT_OK)
        return NDT_ERROR;

    ndt_log(NDT_LOG_INFO, "run", "bootstrap 3/3: matched-pairs validation (the deployment gate)",
            NDT_KV_STR("model", id));
    char *validate[] = { "ndtpipe", "validate", "--registry", (char *)registry, "--model", id,
                         "--data", csv, NULL };
    if (run_child(validate, NULL, err, errlen) != NDT_OK)
        return NDT_ERROR;
    if (!model_is_gated(registry, id)) {
        snprintf(err, errlen, "the bootstrap model %s was graded Unreliable: the API will "
                 "answer what-ifs with 503 until a gated model is registered", id);
        return NDT_AGAIN;
    }
    return NDT_OK;
}
