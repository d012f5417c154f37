/*
 * clock.h: the two clocks ndtpipe uses.
 *
 * Schedules run on CLOCK_MONOTONIC (an NTP step must not make a 20 ms
 * schedule skip or burst); sample timestamps are CLOCK_REALTIME in
 * milliseconds, as Prometheus and Kafka expect.
 */
#ifndef NDT_CLOCK_H
#define NDT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t ndt_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t ndt_clock_mono_ms(void)
{
    return ndt_clock_mono_ns() / 1000000;
}

/* Seconds as a double, for measuring durations. */
static inline double ndt_clock_mono_s(void)
{
    return (double)ndt_clock_mono_ns() / 1e9;
}

static inline int64_t ndt_clock_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
