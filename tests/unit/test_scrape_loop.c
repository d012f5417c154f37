/*
 * test_scrape_loop.c: the scraper's event loop, run both ways it can time
 * its sleeps: epoll_pwait2's timeout (the normal path) and the timerfd it
 * falls back to when epoll_pwait2 answers ENOSYS (forced here with
 * ingest_loop_use_timerfd, since this kernel has epoll_pwait2).
 *
 * The peer is a real HTTP/1.1 server on a loopback socket, in a thread:
 * it answers every request on a kept-alive connection with a fixed body,
 * so the loop drives curl through connect, reuse and completion.  The
 * deadline checks are ordering checks (never back before the deadline,
 * a sleep with no I/O really reaches it), not speed assertions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/ndt.h"
#include "ingest/scrape_loop.h"

#define MS 1000000LL
#define BODY "up 1\n"

typedef struct {
    int listen_fd;
    int port;
    pthread_t thread;
} server;

/* Serves one connection: answers each request (ends at a blank line). */
static void serve_connection(int fd)
{
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            return;
        have += (size_t)n;
        buf[have] = '\0';
        char *end;
        while ((end = strstr(buf, "\r\n\r\n"))) {
            static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                        "Content-Length: 5\r\n\r\n" BODY;
            if (write(fd, reply, sizeof(reply) - 1) != (ssize_t)(sizeof(reply) - 1))
                return;
            size_t used = (size_t)(end + 4 - buf);
            memmove(buf, buf + used, have - used);
            have -= used;
            buf[have] = '\0';
        }
    }
}

static void *serve(void *arg)
{
    server *srv = arg;
    for (;;) {
        int fd = accept(srv->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        serve_connection(fd);
        close(fd);
    }
}

static void server_start(server *srv)
{
    srv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(srv->listen_fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(srv->listen_fd, 8), 0);
    socklen_t len = sizeof(addr);
    assert_int_equal(getsockname(srv->listen_fd, (struct sockaddr *)&addr, &len), 0);
    srv->port = ntohs(addr.sin_port);
    assert_int_equal(pthread_create(&srv->thread, NULL, serve, srv), 0);
}

static void server_stop(server *srv)
{
    shutdown(srv->listen_fd, SHUT_RDWR);
    close(srv->listen_fd);
    pthread_join(srv->thread, NULL);
}

typedef struct {
    int done;
    int ok;
    char body[64];
    size_t len;
} transfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t n = size * nmemb;
    if (t->len + n < sizeof(t->body)) {
        memcpy(t->body + t->len, data, n);
        t->len += n;
    }
    return n;
}

static void on_done(void *ctx, CURL *easy, CURLcode result)
{
    NDT_UNUSED(ctx);
    transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    t->done++;
    t->ok = result == CURLE_OK;
}

/* Scrapes the server `rounds` times on one easy handle, as the scraper
 * does, waiting each round with a deadline 2 ms ahead. */
static void scrape_rounds(int timerfd, int rounds)
{
    server srv;
    server_start(&srv);
    char err[256];
    ingest_loop *loop = NULL;
    assert_int_equal(ingest_loop_new(&loop, on_done, NULL, err, sizeof(err)), NDT_OK);
    if (timerfd)
        assert_int_equal(ingest_loop_use_timerfd(loop), NDT_OK);

    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", srv.port);
    CURL *easy = curl_easy_init();
    transfer t;
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 5000L);

    for (int i = 0; i < rounds; i++) {
        memset(&t, 0, sizeof(t));
        assert_int_equal(ingest_loop_start(loop, easy), NDT_OK);
        int64_t give_up = ndt_clock_mono_ns() + 10000 * MS;
        while (ingest_loop_running(loop) > 0 && ndt_clock_mono_ns() < give_up) {
            int64_t deadline = ndt_clock_mono_ns() + 2 * MS;
            assert_int_equal(ingest_loop_wait(loop, deadline), NDT_OK);
            /* Never back before the deadline unless a signal cut it. */
            assert_true(ndt_clock_mono_ns() >= deadline);
        }
        assert_int_equal(t.done, 1);
        assert_true(t.ok);
        assert_int_equal(t.len, strlen(BODY));
        assert_memory_equal(t.body, BODY, strlen(BODY));
    }
    long connects = -1;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0); /* the last round reused the connection */

    curl_easy_cleanup(easy);
    ingest_loop_destroy(loop);
    server_stop(&srv);
}

static void scrapes_with_epoll_pwait2(void **state)
{
    NDT_UNUSED(state);
    scrape_rounds(0, 20);
}

static void scrapes_with_timerfd_fallback(void **state)
{
    NDT_UNUSED(state);
    scrape_rounds(1, 20);
}

/* With nothing to do, a wait sleeps until its deadline and returns; a
 * deadline in the past returns at once; deadline 0 returns after one
 * batch (here: the 1 s cap, so not tested) - both timing paths. */
static void idle_wait_reaches_deadline(int timerfd)
{
    char err[256];
    ingest_loop *loop = NULL;
    assert_int_equal(ingest_loop_new(&loop, on_done, NULL, err, sizeof(err)), NDT_OK);
    if (timerfd)
        assert_int_equal(ingest_loop_use_timerfd(loop), NDT_OK);
    for (int i = 0; i < 5; i++) {
        int64_t deadline = ndt_clock_mono_ns() + 3 * MS;
        assert_int_equal(ingest_loop_wait(loop, deadline), NDT_OK);
        assert_true(ndt_clock_mono_ns() >= deadline);
    }
    assert_int_equal(ingest_loop_wait(loop, 1), NDT_OK);
    ingest_loop_destroy(loop);
}

static void idle_wait_epoll_pwait2(void **state)
{
    NDT_UNUSED(state);
    idle_wait_reaches_deadline(0);
}

static void idle_wait_timerfd(void **state)
{
    NDT_UNUSED(state);
    idle_wait_reaches_deadline(1);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scrapes_with_epoll_pwait2),
        cmocka_unit_test(scrapes_with_timerfd_fallback),
        cmocka_unit_test(idle_wait_epoll_pwait2),
        cmocka_unit_test(idle_wait_timerfd),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
