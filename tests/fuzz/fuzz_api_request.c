/*
 * fuzz_api_request.c: the bodies of POST /v1/whatif and POST /v1/predict
 * (api/api_request.c), the only API code that reads client bytes beyond
 * the URL.  The input is given without a terminating NUL, as MHD hands it
 * over.  Invariants checked: an error always comes with a code and a
 * message; an accepted what-if changes something, its values are in
 * bounds, and resolving it against a state never yields pods or users
 * outside [1, max]; accepted predict state values are finite and in
 * bounds; the time parser agrees with its own formatter.
 *
 * fuzz-sources: api/api_request.c
 * fuzz-seeds: tests/fuzz/seeds-api
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(int rc, const char *code, const char *err)
{
    if (rc != NDT_OK && (rc != NDT_EBADCONF || !code || !err[0]))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > API_DEFAULT_MAX_BODY)
        return 0;
    /* A copy of exactly size bytes: ASan catches a read past the body. */
    char *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    char err[NDT_ERRBUF_SIZE] = "";
    const char *code = NULL;

    api_whatif_request w;
    int rc = api_parse_whatif(body, size, &w, &code, err, sizeof(err));
    check_error(rc, code, err);
    if (rc == NDT_OK) {
        if (!w.pods.kind && !w.users.kind)
            abort();
        if (w.users.kind == API_CHANGE_RELATIVE)
            abort();
        if (strlen(w.service) >= API_ID_MAX || strlen(w.model) >= API_ID_MAX)
            abort();
        feat_raw cur = { .users = 400, .pods = 3 };
        model_change c;
        if (api_whatif_change(&w, &cur, &c, err, sizeof(err)) == NDT_OK &&
            ((c.has_pods && (c.pods < 1 || c.pods > API_MAX_PODS)) ||
             (c.has_users && (c.users < 1 || c.users > API_MAX_USERS))))
            abort();
    }

    api_predict_request p;
    err[0] = '\0';
    code = NULL;
    rc = api_parse_predict(body, size, &p, &code, err, sizeof(err));
    check_error(rc, code, err);
    if (rc == NDT_OK) {
        if (((p.present & API_STATE_PODS) && (p.state.pods < 1 || p.state.pods > API_MAX_PODS)) ||
            ((p.present & API_STATE_USERS) && (p.state.users < 1 || p.state.users > API_MAX_USERS)))
            abort();
        const double v[] = { p.state.depth, p.state.backlog_s, p.state.cpu_process, p.state.cpu_system,
                             p.state.mem_system };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            if (!isfinite(v[i]) || v[i] < 0)
                abort();
    }

    /* The time parser on a NUL-terminated copy of the first bytes. */
    char text[64];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    int64_t ms, back;
    if (api_parse_rfc3339(text, &ms) == NDT_OK && ms > -62135596800000LL && ms < 253402300799000LL) {
        char out[40];
        api_format_rfc3339(ms, out, sizeof(out));
        if (api_parse_rfc3339(out, &back) != NDT_OK || back != ms)
            abort();
    }
    free(body);
    return 0;
}
