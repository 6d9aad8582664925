/* SPDX-License-Identifier: Apache-2.0 */
/* The retry policy (upload/retry.h): what is retryable, when to give up, and the backoff
 * with full jitter (af_backoff_ms), all pure. */
#include <errno.h>

#include "upload/queue.h"
#include "upload/retry.h"
#include "test.h"

static const struct af_retry_policy job = {
        .max_attempts = 3, .retry_for_ms = 0, .base_ms = 200, .max_ms = 20000, .stale = true
};

static void test_backoff_grows_and_caps(void)
{
        /* rnd just below 1: the cap itself (less the rounding of the product). */
        CHECK_INT_EQ(af_backoff_ms(0, 200, 20000, 0.0), 0);
        CHECK_INT_EQ(af_backoff_ms(0, 200, 20000, 0.5), 100);
        CHECK_INT_EQ(af_backoff_ms(1, 200, 20000, 0.5), 200);
        CHECK_INT_EQ(af_backoff_ms(3, 200, 20000, 0.5), 800);
        CHECK_INT_EQ(af_backoff_ms(6, 200, 20000, 0.5), 6400);
        CHECK_INT_EQ(af_backoff_ms(7, 200, 20000, 0.5), 10000); /* 25600 capped at 20000 */
        CHECK_INT_EQ(af_backoff_ms(1000, 200, 20000, 0.5), 10000);
        CHECK_INT_EQ(af_backoff_ms(1000, 200, 20000, 0.999999), 19999);
        /* No overflow when the cap is far away: the doubling stops at max_ms. */
        CHECK_INT_EQ(af_backoff_ms(4000000000u, 1, 4000000000u, 0.5), 2000000000u);
}

static void test_backoff_full_jitter_range(void)
{
        /* Full jitter: anywhere in [0, cap], never above. */
        for (unsigned a = 0; a < 20; a++) {
                unsigned cap = af_backoff_ms(a, 200, 20000, 1.0);

                CHECK(cap <= 20000);
                for (double rnd = 0; rnd < 1.0; rnd += 0.125)
                        CHECK(af_backoff_ms(a, 200, 20000, rnd) <= cap);
        }
        CHECK_INT_EQ(af_retry_delay_ms(&job, 2, 0.5), af_backoff_ms(2, 200, 20000, 0.5));
}

static void test_jitter_is_uniform_ish(void)
{
        double lo = 1, hi = 0, sum = 0;

        for (int i = 0; i < 10000; i++) {
                double r = af_retry_jitter();

                CHECK(r >= 0 && r < 1);
                lo = r < lo ? r : lo;
                hi = r > hi ? r : hi;
                sum += r;
        }
        CHECK(lo < 0.01 && hi > 0.99);
        CHECK(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}

static void test_retryable(void)
{
        const struct af_retry_policy del = { .max_attempts = 3, .stale = false };

        CHECK(af_retry_retryable(&job, -EAGAIN));     /* 5xx, SlowDown */
        CHECK(af_retry_retryable(&job, -ETIMEDOUT));  /* transport */
        CHECK(af_retry_retryable(&job, -ECONNRESET)); /* transport */
        CHECK(af_retry_retryable(&job, -EBADMSG));    /* BadDigest: read the file again */
        CHECK(!af_retry_retryable(&job, -EACCES));    /* 403 */
        CHECK(!af_retry_retryable(&job, -ENOENT));    /* NoSuchBucket */
        CHECK(!af_retry_retryable(&job, -ENOMEM));
        /* -ESTALE only where the policy says so (an upload, not a delete). */
        CHECK(af_retry_retryable(&job, -ESTALE));
        CHECK(!af_retry_retryable(&del, -ESTALE));
}

static void test_give_up_by_attempts(void)
{
        CHECK(!af_retry_give_up(&job, 1, 0));
        CHECK(!af_retry_give_up(&job, 2, 0));
        CHECK(af_retry_give_up(&job, 3, 0));
        CHECK(af_retry_give_up(&job, 4, 1000000));
        CHECK(af_retry_again(&job, -EAGAIN, 2, 0));
        CHECK(!af_retry_again(&job, -EAGAIN, 3, 0));
        CHECK(!af_retry_again(&job, -EACCES, 1, 0)); /* permanent: at once */
        CHECK(!af_retry_again(&job, 0, 1, 0));       /* success */
}

static void test_give_up_after_window(void)
{
        struct af_retry_policy p = job;

        /* Attempts spent, but the first failure is younger than retry_for_ms: go on. */
        p.retry_for_ms = 60000;
        CHECK(!af_retry_give_up(&p, 3, 0));
        CHECK(!af_retry_give_up(&p, 100, 59999));
        CHECK(af_retry_give_up(&p, 100, 60000));
        CHECK(af_retry_again(&p, -EAGAIN, 100, 59999));
        /* Within the window but attempts left: go on too. */
        CHECK(!af_retry_give_up(&p, 1, 60000));
}

static void test_in_place(void)
{
        const struct af_retry_policy part = { .max_attempts = AF_RETRY_IN_PLACE,
                                              .base_ms = 200,
                                              .max_ms = 20000 };

        /* AF_RETRY_IN_PLACE attempts in all, the first one included. */
        for (unsigned failed = 1; failed < AF_RETRY_IN_PLACE; failed++)
                CHECK(af_retry_again(&part, -EAGAIN, failed, 0));
        CHECK(!af_retry_again(&part, -EAGAIN, AF_RETRY_IN_PLACE, 0));
        CHECK(!af_retry_again(&part, -ESTALE, 1, 0));
}

int main(void)
{
        RUN(test_backoff_grows_and_caps);
        RUN(test_backoff_full_jitter_range);
        RUN(test_jitter_is_uniform_ish);
        RUN(test_retryable);
        RUN(test_give_up_by_attempts);
        RUN(test_give_up_after_window);
        RUN(test_in_place);
        return test_summary();
}
