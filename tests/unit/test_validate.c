/*
 * test_validate.c: matched-pairs validation (models/model_validate.c).
 * Pairing skips each regime's transient and matches phases; the delta
 * statistics and the grade rule cut where docs/MODELS.md says; on a real
 * testbed campaign a physically sound predictor is graded Reliable or
 * better, a constant one and a pods-blind one Unreliable; the registry
 * entry is rewritten whole, with the rest of model.json kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "models/model_validate.h"
#include "testbed/testbed.h"

static char err[512];

static void add_rows(feat_dataset *ds, int users, int pods, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        feat_raw *r = &ds->rows[ds->n++];
        *r = (feat_raw){ .timestamp_ms = (int64_t)ds->n * 20, .users = users, .pods = pods,
                         .depth = 1, .backlog_s = 0.035, .cpu_process = 100, .cpu_system = 50,
                         .mem_system = 20, .infer_ms = 50 };
    }
}

static void pairs_skip_transients_and_match_phases(void **state)
{
    (void)state;
    feat_dataset ds = { .rows = calloc(400, sizeof(feat_raw)), .cap = 400 };
    add_rows(&ds, 600, 4, 100); /* rows 0..99 */
    add_rows(&ds, 600, 5, 60);  /* rows 100..159 */
    add_rows(&ds, 600, 6, 4);   /* too few for a steady part */
    size_t *before, *after, n;
    assert_int_equal(model_validate_pairs(&ds, 600, 4, 600, 5, 1000, &before, &after, &n, err,
                                          sizeof err), NDT_OK);
    /* 75 steady rows of 4 pods (25 skipped), 45 of 5 pods (15 skipped). */
    assert_int_equal(n, 75);
    assert_int_equal(before[0], 25);
    assert_int_equal(after[0], 115);
    assert_int_equal(before[74], 99);
    assert_int_equal(after[74], 100 + 15 + (size_t)(74.0 * 45 / 75));
    for (size_t i = 1; i < n; i++)
        assert_true(after[i] >= after[i - 1] && before[i] == before[i - 1] + 1);
    free(before);
    free(after);
    /* A cap keeps evenly spaced phases. */
    assert_int_equal(model_validate_pairs(&ds, 600, 4, 600, 5, 10, &before, &after, &n, err,
                                          sizeof err), NDT_OK);
    assert_int_equal(n, 10);
    assert_int_equal(before[1] - before[0], 7);
    free(before);
    free(after);
    /* Too few rows: no pairs, not an error. */
    assert_int_equal(model_validate_pairs(&ds, 600, 5, 600, 6, 1000, &before, &after, &n, err,
                                          sizeof err), NDT_OK);
    assert_int_equal(n, 0);
    assert_null(before);
    feat_dataset_free(&ds);
}

static void delta_statistics_by_hand(void **state)
{
    (void)state;
    model_transition t[2] = {
        { .n_pairs = 4, .mean_observed = -20, .direction = -1 },
        { .n_pairs = 2, .mean_observed = -2, .direction = 0 }, /* no direction: not in SA */
    };
    double predicted[6] = { -10, -30, 5, 0, -1, -3 };
    model_delta_stats s;
    model_delta_stats_compute(t, 2, predicted, &s);
    assert_int_equal(s.n_pairs, 4);
    assert_true(fabs(s.sign_agreement - 0.5) < 1e-12); /* -10, -30 agree; 5 and 0 do not */
    /* |(-10+20)| + |(-30+20)| + |5+20| + |0+20| + |-1+2| + |-3+2| = 67 over 6 pairs. */
    assert_true(fabs(s.mae_delta - 67.0 / 6) < 1e-12);
    assert_true(fabs(s.mean_predicted - (-39.0 / 6)) < 1e-12);
    assert_true(fabs(s.mean_observed - (-84.0 / 6)) < 1e-12);
    /* Slope through the origin: (4 * -8.75 * -20 + 2 * -2 * -2) / (4 * 400 + 2 * 4). */
    assert_true(fabs(s.sensitivity - (700.0 + 8.0) / 1608.0) < 1e-12);
    assert_int_equal(s.category, MODEL_SENSITIVITY_LOW);
}

static void sensitivity_and_grade_bounds(void **state)
{
    (void)state;
    assert_int_equal(model_sensitivity_of(0.5), MODEL_SENSITIVITY_HIGH);
    assert_int_equal(model_sensitivity_of(3.0), MODEL_SENSITIVITY_HIGH);
    assert_int_equal(model_sensitivity_of(0.4999), MODEL_SENSITIVITY_LOW);
    assert_int_equal(model_sensitivity_of(0.1), MODEL_SENSITIVITY_LOW);
    assert_int_equal(model_sensitivity_of(0.0999), MODEL_SENSITIVITY_NEGLIGIBLE);
    assert_int_equal(model_sensitivity_of(-1.0), MODEL_SENSITIVITY_NEGLIGIBLE);
    assert_int_equal(model_sensitivity_of(NAN), MODEL_SENSITIVITY_NEGLIGIBLE);

    model_scenario s[2] = { 0 };
    for (int i = 0; i < 2; i++)
        s[i].counterfactual = s[i].matched =
            (model_delta_stats){ .sign_agreement = 0.95, .category = MODEL_SENSITIVITY_HIGH };
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_EXCELLENT);
    s[1].counterfactual.sign_agreement = 0.90; /* inclusive */
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_EXCELLENT);
    s[1].counterfactual.sign_agreement = 0.8999;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_RELIABLE);
    assert_int_equal(model_deploy_grade_of(s, 2, 0), MODEL_DEPLOY_EXCELLENT); /* matched side */
    s[1].counterfactual.sign_agreement = 0.95;
    s[0].counterfactual.category = MODEL_SENSITIVITY_LOW;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_RELIABLE);
    s[1].counterfactual.sign_agreement = 0.75;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_RELIABLE);
    s[1].counterfactual.sign_agreement = 0.7499;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_UNRELIABLE);
    s[1].counterfactual.sign_agreement = 0.99;
    s[0].counterfactual.category = MODEL_SENSITIVITY_NEGLIGIBLE;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_UNRELIABLE);
    s[0].counterfactual.category = MODEL_SENSITIVITY_HIGH;
    s[0].counterfactual.sign_agreement = NAN;
    assert_int_equal(model_deploy_grade_of(s, 2, 1), MODEL_DEPLOY_UNRELIABLE);
    assert_int_equal(model_deploy_grade_of(s, 0, 1), MODEL_DEPLOY_UNRELIABLE);
    assert_string_equal(model_deploy_grade_name(MODEL_DEPLOY_RELIABLE), "Reliable");
}

/* ---- on a testbed campaign ------------------------------------------------ */

static feat_dataset campaign;

static int campaign_setup(void **state)
{
    (void)state;
    testbed_campaign c = { .users = { 200, 600 }, .nusers = 2, .pods_min = 3, .pods_max = 6,
                           .dwell_s = 40.0, .interval_s = 0.02, .epoch_ms = 1767225600000.0 };
    testbed_params_default(&c.params);
    c.params.seed = 5;
    char *data = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&data, &len);
    if (!out || testbed_campaign_run(&c, out, NULL, err, sizeof err) != NDT_OK)
        return -1;
    fclose(out);
    FILE *in = fmemopen(data, len, "r");
    int rc = feat_csv_read_stream(in, "campaign", 0, &campaign, err, sizeof err);
    fclose(in);
    free(data);
    return rc == NDT_OK ? 0 : -1;
}

static int campaign_teardown(void **state)
{
    (void)state;
    feat_dataset_free(&campaign);
    return 0;
}

/* A physically sound "model": the service's own backlog estimate plus the
 * work of the request itself. */
static int predict_backlog(void *ctx, const feat_raw *rows, size_t n, double *ms, char *e,
                           size_t elen)
{
    (void)ctx; (void)e; (void)elen;
    for (size_t i = 0; i < n; i++)
        ms[i] = 1000.0 * rows[i].backlog_s + 35.0;
    return NDT_OK;
}

static int predict_constant(void *ctx, const feat_raw *rows, size_t n, double *ms, char *e,
                            size_t elen)
{
    (void)ctx; (void)rows; (void)e; (void)elen;
    for (size_t i = 0; i < n; i++)
        ms[i] = 60.0;
    return NDT_OK;
}

/* Blind to pods: latency from the users alone (what a model learns when
 * the pods effect is shuffled away). */
static int predict_users_only(void *ctx, const feat_raw *rows, size_t n, double *ms, char *e,
                              size_t elen)
{
    (void)ctx; (void)e; (void)elen;
    for (size_t i = 0; i < n; i++)
        ms[i] = 30.0 + 0.05 * rows[i].users;
    return NDT_OK;
}

static const model_scenario *find(const model_validation *v, const char *name)
{
    for (size_t i = 0; i < v->nscenarios; i++)
        if (strcmp(v->scenarios[i].name, name) == 0)
            return &v->scenarios[i];
    fail_msg("no scenario %s", name);
    return NULL;
}

static void sound_model_is_graded_reliable(void **state)
{
    (void)state;
    model_validation v;
    assert_int_equal(model_validate(&campaign, 0, predict_backlog, NULL, &v, err, sizeof err),
                     NDT_OK);
    assert_int_equal(v.users, 600);
    assert_int_equal(v.nscenarios, 3);
    const model_scenario *plus = find(&v, "pods+1"), *minus = find(&v, "pods-1");
    const model_scenario *users = find(&v, "users 600->200");
    assert_int_equal(plus->ntransitions, 3);
    assert_int_equal(minus->ntransitions, 3);
    assert_int_equal(users->ntransitions, 4);
    /* The data's own directions: fewer pods or more users, slower. */
    /* 5 -> 6 pods (-10 ms) is within the noise of 30 s of steady
     * samples: it gets no direction and does not count in the agreement. */
    int directed = 0;
    for (size_t i = 0; i < plus->ntransitions; i++) {
        assert_true(plus->transitions[i].direction <= 0);
        directed += plus->transitions[i].direction != 0;
    }
    assert_true(directed >= 2);
    assert_true(users->matched.mean_observed < 0 && minus->matched.mean_observed > 0);
    assert_true(v.grade <= MODEL_DEPLOY_RELIABLE);
    for (size_t i = 0; i < v.nscenarios; i++) {
        assert_true(v.scenarios[i].counterfactual.sign_agreement >= 0.75);
        assert_int_equal(v.scenarios[i].counterfactual.category, MODEL_SENSITIVITY_HIGH);
    }
    model_validation_free(&v);
}

static void direction_blind_models_are_unreliable(void **state)
{
    (void)state;
    model_validation v;
    assert_int_equal(model_validate(&campaign, 0, predict_constant, NULL, &v, err, sizeof err),
                     NDT_OK);
    assert_int_equal(v.grade, MODEL_DEPLOY_UNRELIABLE);
    assert_int_equal(v.matched_grade, MODEL_DEPLOY_UNRELIABLE);
    for (size_t i = 0; i < v.nscenarios; i++) {
        assert_true(v.scenarios[i].counterfactual.sign_agreement == 0);
        assert_int_equal(v.scenarios[i].counterfactual.category, MODEL_SENSITIVITY_NEGLIGIBLE);
    }
    model_validation_free(&v);

    assert_int_equal(model_validate(&campaign, 0, predict_users_only, NULL, &v, err, sizeof err),
                     NDT_OK);
    assert_int_equal(v.grade, MODEL_DEPLOY_UNRELIABLE);
    assert_true(find(&v, "pods+1")->counterfactual.sign_agreement == 0);
    assert_true(find(&v, "users 600->200")->counterfactual.sign_agreement == 1);
    model_validation_free(&v);
}

static void data_that_cannot_show_a_scenario_is_refused(void **state)
{
    (void)state;
    model_validation v;
    feat_dataset only600 = { .rows = calloc(campaign.n, sizeof(feat_raw)), .cap = campaign.n };
    for (size_t i = 0; i < campaign.n; i++)
        if (campaign.rows[i].users == 600)
            only600.rows[only600.n++] = campaign.rows[i];
    assert_int_equal(model_validate(&only600, 0, predict_backlog, NULL, &v, err, sizeof err),
                     NDT_EBADCONF);
    assert_non_null(strstr(err, "no users scenario"));
    assert_int_equal(model_validate(&campaign, 400, predict_backlog, NULL, &v, err, sizeof err),
                     NDT_EBADCONF);
    assert_non_null(strstr(err, "400 users"));
    feat_dataset_free(&only600);
}

static void registry_entry_rewritten_whole(void **state)
{
    (void)state;
    char dir[] = "/tmp/ndt-validate-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/xgb-1", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/xgb-1/model.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"model_id\":\"xgb-1\",\"grade\":\"Good\",\"features\":{\"trim\":\"iqr\"},"
          "\"deployment_grade\":\"Excellent\"}", f);
    fclose(f);

    feat_trim_mode trim;
    assert_int_equal(model_registry_trim(dir, "xgb-1", &trim, err, sizeof err), NDT_OK);
    assert_int_equal(trim, FEAT_TRIM_IQR);
    model_validation v;
    assert_int_equal(model_validate(&campaign, 0, predict_constant, NULL, &v, err, sizeof err),
                     NDT_OK);
    assert_int_equal(model_registry_set_validation(dir, "xgb-1", &v, err, sizeof err), NDT_OK);
    assert_int_equal(model_registry_set_validation(dir, "../x", &v, err, sizeof err), NDT_EBADCONF);
    assert_int_equal(model_registry_set_validation(dir, "missing", &v, err, sizeof err), NDT_EBADCONF);
    model_validation_free(&v);

    f = fopen(path, "r");
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *root = cJSON_Parse(buf);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "deployment_grade")->valuestring, "Unreliable");
    assert_string_equal(cJSON_GetObjectItem(root, "grade")->valuestring, "Good");
    const cJSON *val = cJSON_GetObjectItem(root, "validation");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(val, "scenarios")), 3);
    assert_string_equal(cJSON_GetObjectItem(val, "deployment_grade")->valuestring, "Unreliable");
    /* One deployment_grade key, not two. */
    int count = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        count += strcmp(it->string, "deployment_grade") == 0;
    assert_int_equal(count, 1);
    cJSON_Delete(root);
    /* Nothing left beside it. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s/xgb-1)\" = model.json && rm -r %s", dir, dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(pairs_skip_transients_and_match_phases),
        cmocka_unit_test(delta_statistics_by_hand),
        cmocka_unit_test(sensitivity_and_grade_bounds),
    };
    const struct CMUnitTest on_campaign[] = {
        cmocka_unit_test(sound_model_is_graded_reliable),
        cmocka_unit_test(direction_blind_models_are_unreliable),
        cmocka_unit_test(data_that_cannot_show_a_scenario_is_refused),
        cmocka_unit_test(registry_entry_rewritten_whole),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    return failed + cmocka_run_group_tests(on_campaign, campaign_setup, campaign_teardown);
}
