/* SPDX-License-Identifier: Apache-2.0 */
/* The retry policy of the upload queue (see retry.h). */
#include "upload/retry.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "aws/s3.h"
#include "upload/queue.h"

unsigned af_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, double rnd)
{
        uint64_t cap = base_ms;

        for (unsigned i = 0; i < attempt && cap < max_ms; i++)
                cap *= 2;
        if (cap > max_ms)
                cap = max_ms;
        return (unsigned)((double)cap * rnd);
}

bool af_retry_retryable(const struct af_retry_policy *p, int r)
{
        return af_s3_retryable(r) || (p->stale && r == -ESTALE);
}

bool af_retry_give_up(const struct af_retry_policy *p, unsigned failed, uint64_t failing_ms)
{
        /* A negative window, cast, is "always": as the queue always compared it. */
        return failed >= p->max_attempts && failing_ms >= (uint64_t)p->retry_for_ms;
}

bool af_retry_again(const struct af_retry_policy *p, int r, unsigned failed,
                    uint64_t failing_ms)
{
        return r < 0 && af_retry_retryable(p, r) && !af_retry_give_up(p, failed, failing_ms);
}

unsigned af_retry_delay_ms(const struct af_retry_policy *p, unsigned exp, double rnd)
{
        return af_backoff_ms(exp, p->base_ms, p->max_ms, rnd);
}

/* Each thread seeds its own generator from the clock, the pid and its own address, so
 * daemons that fail together do not retry together. */
double af_retry_jitter(void)
{
        static _Thread_local uint64_t state;
        struct timespec ts;

        if (!state) {
                clock_gettime(CLOCK_REALTIME, &ts);
                state = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
                        ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&state;
                if (!state)
                        state = 0x9e3779b97f4a7c15ull;
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return (double)(state >> 11) / (double)(1ull << 53);
}

void af_retry_pause(const struct af_retry_policy *p, unsigned exp)
{
        usleep(af_retry_delay_ms(p, exp, af_retry_jitter()) * 1000u);
}
