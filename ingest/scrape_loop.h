/*
 * scrape_loop.h: the scraper's event loop (internal to ingest/).
 *
 * One thread, one epoll set holding every socket libcurl's multi interface
 * wants watched (curl's socket API, not curl_multi_poll, because
 * curl_multi_poll takes a timeout in whole milliseconds and a 20 ms
 * schedule needs sub-millisecond wake-ups).  The loop sleeps in
 * epoll_pwait2 (nanosecond timeout) until the earlier of the caller's next
 * scrape tick and curl's own timeout, both CLOCK_MONOTONIC; without
 * epoll_pwait2 it arms a timerfd in the epoll set with that deadline.
 */
#ifndef INGEST_SCRAPE_LOOP_H
#define INGEST_SCRAPE_LOOP_H

#include <stdint.h>

#include <curl/curl.h>

typedef struct ingest_loop ingest_loop;

/* Called for every finished transfer, from inside ingest_loop_wait. */
typedef void (*ingest_loop_done_fn)(void *ctx, CURL *easy, CURLcode result);

int ingest_loop_new(ingest_loop **out, ingest_loop_done_fn done, void *ctx, char *err,
                    size_t errlen);
void ingest_loop_destroy(ingest_loop *loop);

/* Starts a transfer; NDT_ERROR if curl refuses the handle. */
int ingest_loop_start(ingest_loop *loop, CURL *easy);
/* Aborts a transfer that has not finished (no done callback for it). */
void ingest_loop_abort(ingest_loop *loop, CURL *easy);
/* Number of transfers in flight. */
int ingest_loop_running(const ingest_loop *loop);
/* How many idle connections curl keeps open.  curl's default (four per
 * handle currently added) counts only transfers in flight, so between 20 ms
 * scrapes it would close most kept-alive connections; the scraper sets it
 * to cover every target. */
void ingest_loop_set_connection_cache(ingest_loop *loop, size_t connections);

/* Times the waits with a timerfd instead of epoll_pwait2's timeout: what
 * the loop does by itself when epoll_pwait2 answers ENOSYS; public so the
 * tests keep that path correct. */
int ingest_loop_use_timerfd(ingest_loop *loop);

/* Waits for I/O and timers until deadline_ns (CLOCK_MONOTONIC) has
 * passed, a signal arrives, or (when deadline_ns is 0) one batch of
 * events has been handled.  Drives curl and reports finished transfers. */
int ingest_loop_wait(ingest_loop *loop, int64_t deadline_ns);

#endif
