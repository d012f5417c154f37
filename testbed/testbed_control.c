/*
 * testbed_control.c: the /control body, {"users":U,"pods":N} (either field).
 *
 * Validate everything, then apply: a body with an unknown field, a value
 * that is not a whole number, or one out of range is refused with a reason
 * and changes nothing, so a client never leaves the testbed half-changed.
 * Ranges are the simulation's bounds (TESTBED_MAX_USERS, TESTBED_MAX_PODS),
 * which are also what keeps its memory bounded.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "common/ndt.h"
#include "testbed/testbed.h"

#define TESTBED_CONTROL_MAX_BODY 4096

static int testbed_control_int(const cJSON *item, int min, int max, int *out, char *err,
                               size_t errlen)
{
    if (!cJSON_IsNumber(item)) {
        snprintf(err, errlen, "%s must be a number", item->string);
        return NDT_ERROR;
    }
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v)) {
        snprintf(err, errlen, "%s must be a whole number", item->string);
        return NDT_ERROR;
    }
    if (v < min || v > max) {
        snprintf(err, errlen, "%s must be %d..%d, got %.0f", item->string, min, max, v);
        return NDT_ERROR;
    }
    *out = (int)v;
    return NDT_OK;
}

int testbed_control_apply(testbed_sim *sim, const char *body, size_t len, char *err,
                          size_t errlen)
{
    int users = -1, pods = -1, rc = NDT_ERROR;
    if (len == 0 || len > TESTBED_CONTROL_MAX_BODY) {
        snprintf(err, errlen, "expected a JSON object of at most %d bytes like {\"users\":400,\"pods\":3}",
                 TESTBED_CONTROL_MAX_BODY);
        return NDT_ERROR;
    }
    /* cJSON refuses trailing bytes only when it sees the terminating NUL. */
    char text[TESTBED_CONTROL_MAX_BODY + 1];
    memcpy(text, body, len);
    text[len] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!root || !cJSON_IsObject(root)) {
        snprintf(err, errlen, "expected a JSON object like {\"users\":400,\"pods\":3}");
        goto done;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "users") == 0 && users < 0) {
            if (testbed_control_int(item, 0, TESTBED_MAX_USERS, &users, err, errlen) != NDT_OK)
                goto done;
        } else if (strcmp(item->string, "pods") == 0 && pods < 0) {
            if (testbed_control_int(item, 1, TESTBED_MAX_PODS, &pods, err, errlen) != NDT_OK)
                goto done;
        } else {
            snprintf(err, errlen, "unknown or repeated field '%.64s' (expected users, pods)",
                     item->string);
            goto done;
        }
    }
    if (users < 0 && pods < 0) {
        snprintf(err, errlen, "nothing to change: give users, pods or both");
        goto done;
    }
    /* Both values were checked against the same bounds the setters use. */
    if (users >= 0 && testbed_sim_set_users(sim, users, err, errlen) != NDT_OK)
        goto done;
    if (pods >= 0 && testbed_sim_set_pods(sim, pods, err, errlen) != NDT_OK)
        goto done;
    rc = NDT_OK;
done:
    cJSON_Delete(root);
    return rc;
}
