/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file clock.h
 * Time, once: the clocks artifuse reads, a file's mtime as one number, and RFC 3339.
 *
 * - af_clock_mono_ms: CLOCK_MONOTONIC in milliseconds, for deadlines, backoff and rates (never
 *   jumps when the wall clock is set).
 * - af_clock_wall_ms: CLOCK_REALTIME in milliseconds, for what is written down (journal
 *   records, the manifest, condition-variable deadlines that pthread measures on that clock).
 * - af_mtime_ns: a stat's modification time in nanoseconds since the epoch; the identity of a
 *   file's content version throughout (the queue, the registry of uploads, the mount).
 * - af_rfc3339_parse: timestamps as Argo (Go's time.RFC3339) and the AWS credential sources
 *   write them. Go's rules by default; AF_RFC3339_LENIENT also takes what AWS's providers
 *   return in the wild (a space for 'T', ',' before fractions, "+hhmm", a leap second).
 *
 * Pure but for the clock reads; thread-safe.
 */
#pragma once

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

uint64_t af_clock_mono_ms(void);
uint64_t af_clock_wall_ms(void);

static inline int64_t af_mtime_ns(const struct stat *st)
{
        return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

enum {
        AF_RFC3339_LENIENT = 1 << 0,
};

/**
 * Parses "YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)". On success sets *ret_t (seconds since the
 * epoch, UTC) and, if ret_offset_s is not NULL, the zone offset in seconds east of UTC.
 * Impossible dates are errors, as in Go's time.Parse.
 * Returns 0, or -EINVAL.
 */
int af_rfc3339_parse(const char *s, unsigned flags, time_t *ret_t, int *ret_offset_s);
