/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file retry.h
 * The one retry policy of the upload queue: which failures are worth another attempt, how
 * long to wait before it, and when to give up.
 *
 * Two loops use it. A job (an upload or a delete) that fails goes back to the queue and is
 * picked again after its backoff, until the policy gives up (the configured max_attempts and
 * retry_for_ms). A request inside a job (a part, CreateMultipartUpload, Complete, an abort)
 * is retried in place a few times first (AF_RETRY_IN_PLACE attempts, no time window), since
 * sending a part again is cheaper than sending the whole file again.
 *
 * All but af_retry_jitter and af_retry_pause are pure: no clock, no randomness, no state.
 * Thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Attempts of a request retried in place (a part, Complete...), the first one included. */
#define AF_RETRY_IN_PLACE 4

struct af_retry_policy {
        unsigned max_attempts; /* give up after this many failed attempts... */
        long retry_for_ms;     /* ...once the first failure is at least this old (0: at once) */
        unsigned base_ms;      /* backoff: af_backoff_ms(@exp, base_ms, max_ms, rnd) */
        unsigned max_ms;
        /* -ESTALE is worth another attempt too: an upload whose copy source or file changed
         * under it reads the file again. */
        bool stale;
};

/** Whether another attempt may cure error @r (< 0): af_s3_retryable(), and -ESTALE if the
 * policy says so. */
bool af_retry_retryable(const struct af_retry_policy *p, int r);

/** Whether to stop after @failed failed attempts (>= 1), the first of them @failing_ms ago:
 * the attempts are spent and the retry window is over. */
bool af_retry_give_up(const struct af_retry_policy *p, unsigned failed, uint64_t failing_ms);

/** Whether a result @r after @failed failed attempts (this one included), the first
 * @failing_ms ago, calls for another attempt: a retryable failure, and no give-up. False
 * for success (r >= 0). */
bool af_retry_again(const struct af_retry_policy *p, int r, unsigned failed,
                    uint64_t failing_ms);

/** The wait before the next attempt: full-jitter exponential backoff at exponent @exp (see
 * af_backoff_ms), picked with @rnd (uniform in [0, 1)). */
unsigned af_retry_delay_ms(const struct af_retry_policy *p, unsigned exp, double rnd);

/** A uniform number in [0, 1) for jitter, from a per-thread generator (not pure). */
double af_retry_jitter(void);

/** Sleeps af_retry_delay_ms(@p, @exp, af_retry_jitter()): a request retried in place. */
void af_retry_pause(const struct af_retry_policy *p, unsigned exp);
