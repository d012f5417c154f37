/*
 * scrape_loop.c: epoll + libcurl multi socket API, see scrape_loop.h for
 * why it is built this way.
 *
 * curl tells us which sockets to watch (socket callback) and when it
 * wants to be called back (timer callback); we translate both into epoll
 * registrations and a deadline.  ingest_loop_wait sleeps in epoll_pwait2
 * until the earliest deadline (its timeout has nanosecond resolution), and
 * hands every ready socket and every expired curl timeout back to
 * curl_multi_socket_action.  A curl timeout that is already due (every new
 * transfer asks for one of 0 ms) is served before sleeping.
 *
 * Why not a timerfd: arming it (timerfd_settime) and draining it (read)
 * are two system calls per wake-up, and programming a timer is a VM exit
 * on a virtual machine (2.2 % of the scraper's CPU at 20 ms, see
 * docs/PERFORMANCE.md); epoll_pwait2 sleeps on the same hrtimer for free.
 * Where epoll_pwait2 is missing (kernel < 5.11, or a seccomp filter that
 * answers ENOSYS) the loop falls back to the timerfd once, for good.
 */
#include "ingest/scrape_loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ndt.h"

#define LOOP_MAX_EVENTS 64
#define NO_DEADLINE INT64_MAX
/* The longest sleep: it only bounds how long a missed signal goes unseen. */
#define WAIT_CAP_NS 1000000000LL

struct ingest_loop {
    CURLM *multi;
    int epfd;
    int timerfd;              /* -1 unless epoll_pwait2 is unavailable */
    int64_t curl_deadline_ns; /* NO_DEADLINE when curl wants no timeout */
    int64_t armed_ns;         /* what the timerfd is set to, to skip re-arming it */
    int running;              /* transfers curl reports as still running */
    int in_flight;            /* transfers we started and were not reported */
    ingest_loop_done_fn done;
    void *done_ctx;
};

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    ingest_loop *loop = userp;
    NDT_UNUSED(easy);
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.data.fd = fd;

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(loop->multi, fd, NULL);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    /* socketp marks sockets already in the epoll set. */
    int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, fd, &ev) != 0) {
        /* curl may reuse a descriptor number behind our back. */
        if (errno == ENOENT)
            epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
        else if (errno == EEXIST)
            epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
    if (!socketp)
        curl_multi_assign(loop->multi, fd, loop);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ingest_loop *loop = userp;
    NDT_UNUSED(multi);
    if (timeout_ms < 0)
        loop->curl_deadline_ns = NO_DEADLINE;
    else
        loop->curl_deadline_ns = ndt_clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

int ingest_loop_new(ingest_loop **out, ingest_loop_done_fn done, void *ctx, char *err,
                    size_t errlen)
{
    ingest_loop *loop = calloc(1, sizeof(*loop));
    if (!loop) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    loop->epfd = -1;
    loop->timerfd = -1;
    loop->curl_deadline_ns = NO_DEADLINE;
    loop->armed_ns = 0;
    loop->done = done;
    loop->done_ctx = ctx;

    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        goto fail;
    }
    loop->multi = curl_multi_init();
    if (!loop->multi) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    /* One keep-alive connection per target is what a scraper needs; never
     * let curl open a second one to the same host while one is busy. */
    curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    *out = loop;
    return NDT_OK;

fail:
    ingest_loop_destroy(loop);
    return NDT_ERROR;
}

void ingest_loop_destroy(ingest_loop *loop)
{
    if (!loop)
        return;
    if (loop->multi)
        curl_multi_cleanup(loop->multi);
    if (loop->timerfd >= 0)
        close(loop->timerfd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    free(loop);
}

static void report_finished(ingest_loop *loop)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(loop->multi, easy);
        loop->in_flight--;
        loop->done(loop->done_ctx, easy, result);
    }
}

int ingest_loop_start(ingest_loop *loop, CURL *easy)
{
    if (curl_multi_add_handle(loop->multi, easy) != CURLM_OK)
        return NDT_ERROR;
    loop->in_flight++;
    /* Adding the handle makes curl ask for a zero timeout, so the request
     * leaves at the next ingest_loop_wait, microseconds away.  Kicking curl
     * here instead would run its timeout processing once per started
     * transfer, which is quadratic when hundreds of targets share a tick. */
    return NDT_OK;
}

void ingest_loop_abort(ingest_loop *loop, CURL *easy)
{
    if (curl_multi_remove_handle(loop->multi, easy) == CURLM_OK)
        loop->in_flight--;
}

int ingest_loop_running(const ingest_loop *loop) { return loop->in_flight; }

void ingest_loop_set_connection_cache(ingest_loop *loop, size_t connections)
{
    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, (long)connections);
}

int ingest_loop_use_timerfd(ingest_loop *loop)
{
    if (loop->timerfd >= 0)
        return NDT_OK;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return NDT_ERROR;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return NDT_ERROR;
    }
    loop->timerfd = fd;
    loop->armed_ns = 0;
    return NDT_OK;
}

static void arm_timer(ingest_loop *loop, int64_t deadline_ns)
{
    /* The deadline rarely changes between two waits of one scrape: save the
     * syscall.  A fired timer is re-armed (armed_ns reset when it fires). */
    if (deadline_ns == loop->armed_ns)
        return;
    loop->armed_ns = deadline_ns;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (deadline_ns != NO_DEADLINE) {
        if (deadline_ns <= 0)
            deadline_ns = 1; /* an all-zero value would disarm the timer */
        its.it_value.tv_sec = deadline_ns / 1000000000;
        its.it_value.tv_nsec = deadline_ns % 1000000000;
    }
    timerfd_settime(loop->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void drive_curl_timeout_if_due(ingest_loop *loop)
{
    if (loop->curl_deadline_ns != NO_DEADLINE && ndt_clock_mono_ns() >= loop->curl_deadline_ns) {
        loop->curl_deadline_ns = NO_DEADLINE;
        curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &loop->running);
    }
}

/* Sleeps until wake (CLOCK_MONOTONIC ns, NO_DEADLINE for none) or an
 * event; *capped tells the caller the sleep was cut at WAIT_CAP_NS. */
static int wait_events(ingest_loop *loop, int64_t wake, struct epoll_event *events, int *capped)
{
    if (loop->timerfd < 0) {
        int64_t left = WAIT_CAP_NS;
        if (wake != NO_DEADLINE) {
            int64_t now = ndt_clock_mono_ns();
            left = wake > now ? wake - now : 0;
        }
        *capped = left >= WAIT_CAP_NS;
        if (*capped)
            left = WAIT_CAP_NS;
        struct timespec ts = {.tv_sec = left / 1000000000, .tv_nsec = left % 1000000000};
        int n = epoll_pwait2(loop->epfd, events, LOOP_MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        ndt_log(NDT_LOG_INFO, "ingest", "epoll_pwait2 unavailable, timing scrapes with a timerfd");
        if (ingest_loop_use_timerfd(loop) != NDT_OK)
            return -1;
    }
    arm_timer(loop, wake);
    *capped = 1; /* with the timerfd armed, a bare timeout is the cap */
    return epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, (int)(WAIT_CAP_NS / 1000000));
}

int ingest_loop_wait(ingest_loop *loop, int64_t deadline_ns)
{
    struct epoll_event events[LOOP_MAX_EVENTS];

    for (;;) {
        /* A timeout curl wants now (every started transfer asks for one)
         * is served here, without a sleep of zero. */
        drive_curl_timeout_if_due(loop);
        report_finished(loop);
        int64_t wake = loop->curl_deadline_ns;
        if (deadline_ns && deadline_ns < wake)
            wake = deadline_ns;
        int capped;
        int n = wait_events(loop, wake, events, &capped);
        if (n < 0) {
            if (errno == EINTR)
                return NDT_OK;
            return NDT_ERROR;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == loop->timerfd && fd >= 0) {
                uint64_t expirations;
                loop->armed_ns = 0;
                if (read(loop->timerfd, &expirations, sizeof(expirations)) < 0) {
                    /* EAGAIN: already consumed; nothing to do. */
                }
                continue;
            }
            int mask = 0;
            if (events[i].events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (events[i].events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(loop->multi, fd, mask, &loop->running);
        }
        drive_curl_timeout_if_due(loop);
        report_finished(loop);

        if (!deadline_ns || ndt_clock_mono_ns() >= deadline_ns || (n == 0 && capped))
            return NDT_OK;
    }
}
