/*
 * test_target.c: a scrape target whose misbehaviour tests can choose.
 *
 * Real exporters (node-exporter, Prometheus) cover the well-behaved case;
 * this serves a file with a chosen status, content type, delay,
 * compression (including a precompressed "gzip bomb") and required
 * credentials, so that the scraper's failure paths are tested against a
 * real HTTP server rather than a mock.  The body file is re-read on every
 * request: a test changes what is served by renaming a new file over it.
 *
 *   test_target --port P --file F [--content-type CT] [--status N]
 *               [--delay-ms N] [--gzip] [--raw-gzip] [--bearer TOKEN]
 *               [--basic USER:PASS] [--log FILE]
 *
 * --gzip compresses the file per request; --raw-gzip sends the file's
 * bytes as they are with Content-Encoding: gzip.  --log appends one line
 * per request: "<ms-since-epoch> <path> accept=<Accept header>".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

typedef struct target_options {
    int port;
    const char *file;
    const char *content_type;
    int status;
    int delay_ms;
    int gzip;
    int raw_gzip;
    const char *bearer;
    const char *basic;
    const char *log;
} target_options;

static target_options opt = { 0, NULL, "text/plain; version=0.0.4; charset=utf-8", 200, 0, 0, 0,
                              NULL, NULL, NULL };
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            char *g = realloc(buf, cap);
            if (!g) {
                free(buf);
                buf = NULL;
            }
            buf = g;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static char *gzip_bytes(const char *in, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, len) + 64;
    char *out = malloc(cap);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void log_request(struct MHD_Connection *conn, const char *url)
{
    if (!opt.log)
        return;
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    FILE *f = fopen(opt.log, "a");
    if (!f)
        return;
    fprintf(f, "%lld %s accept=%s\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, url,
            accept ? accept : "");
    fclose(f);
}

static int authorized(struct MHD_Connection *conn)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (opt.bearer) {
        char want[512];
        snprintf(want, sizeof(want), "Bearer %s", opt.bearer);
        return auth && strcmp(auth, want) == 0;
    }
    if (opt.basic) {
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(conn, &pass);
        char got[512];
        snprintf(got, sizeof(got), "%s:%s", user ? user : "", pass ? pass : "");
        MHD_free(user);
        MHD_free(pass);
        return strcmp(got, opt.basic) == 0;
    }
    return 1;
}

static enum MHD_Result respond(struct MHD_Connection *conn, int status, char *body, size_t len,
                               int gzipped)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", opt.content_type);
    if (gzipped)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)data;
    (void)data_size;
    if (!*state) {
        *state = conn; /* headers only on the first call */
        return MHD_YES;
    }
    log_request(conn, url);
    if (opt.delay_ms)
        usleep((useconds_t)opt.delay_ms * 1000);
    if (!authorized(conn)) {
        char *msg = strdup("unauthorized\n");
        return respond(conn, 401, msg, strlen(msg), 0);
    }
    size_t len = 0;
    char *body = read_file(opt.file, &len);
    if (!body) {
        char *msg = strdup("no such file\n");
        return respond(conn, 500, msg, strlen(msg), 0);
    }
    const char *enc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding");
    if (opt.raw_gzip)
        return respond(conn, opt.status, body, len, 1);
    if (opt.gzip && enc && strstr(enc, "gzip")) {
        size_t zlen = 0;
        char *z = gzip_bytes(body, len, &zlen);
        free(body);
        return respond(conn, opt.status, z, zlen, 1);
    }
    return respond(conn, opt.status, body, len, 0);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) { opt.port = atoi(v); i++; }
        else if (!strcmp(a, "--file") && v) { opt.file = v; i++; }
        else if (!strcmp(a, "--content-type") && v) { opt.content_type = v; i++; }
        else if (!strcmp(a, "--status") && v) { opt.status = atoi(v); i++; }
        else if (!strcmp(a, "--delay-ms") && v) { opt.delay_ms = atoi(v); i++; }
        else if (!strcmp(a, "--bearer") && v) { opt.bearer = v; i++; }
        else if (!strcmp(a, "--basic") && v) { opt.basic = v; i++; }
        else if (!strcmp(a, "--log") && v) { opt.log = v; i++; }
        else if (!strcmp(a, "--gzip")) opt.gzip = 1;
        else if (!strcmp(a, "--raw-gzip")) opt.raw_gzip = 1;
        else {
            fprintf(stderr, "test_target: bad argument %s\n", a);
            return 2;
        }
    }
    if (!opt.port || !opt.file) {
        fprintf(stderr, "usage: test_target --port P --file F [options]\n");
        return 2;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)opt.port);
    addr.sin_addr.s_addr = htonl(0x7f000001);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                            (uint16_t)opt.port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "test_target: cannot listen on 127.0.0.1:%d\n", opt.port);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    /* Exit at once: MHD_stop_daemon would wait for kept-alive connections
     * of a scraper that may no longer be there to close them. */
    return 0;
}
