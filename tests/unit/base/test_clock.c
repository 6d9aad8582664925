/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for base/clock.c: af_rfc3339_parse, strict (Go's time.RFC3339, for Argo's
 * timestamps) and lenient (what AWS's credential sources return), and af_mtime_ns.
 *
 * The expected values are written by hand from the rules:
 *   - strict: accepts what Go's time.Parse(time.RFC3339, ...) accepts (and lower-case t/z,
 *     which RFC 3339 section 5.6 allows); rejects impossible dates as Go does.
 *   - lenient: also a space for 'T', no zone (UTC), "+hhmm" offsets.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/clock.h"
#include "test.h"

struct rfc_ok {
        const char *in;
        time_t t;
        int off;
};

static const struct rfc_ok rfc_accept[] = {
        { "2026-11-28T04:00:00Z", 1795838400, 0 },
        /* Go accepts a fraction after the seconds even though RFC3339 has none; the
         * timestamp keeps whole seconds (metav1.Time has second precision): floor, not round */
        { "2026-11-28T04:00:00.5Z", 1795838400, 0 },
        { "2026-11-28T04:00:00.999999999Z", 1795838400, 0 },
        { "2026-11-28T04:00:00.123+05:30", 1795838400 - 19800, 19800 },
        /* RFC 3339 §5.6: "T" and "Z" may be lower case (Go's parser is stricter) */
        { "2026-11-28t04:00:00z", 1795838400, 0 },
        { "2026-11-28T09:30:00+05:30", 1795838400, 19800 },
        { "2026-11-27T20:00:00-08:00", 1795838400, -28800 },
        { "2026-11-28T04:00:00+00:00", 1795838400, 0 },
        { "2026-11-28T04:00:00-00:00", 1795838400, 0 },
        { "2026-11-28T03:30:00-00:30", 1795838400, -1800 },
        { "2026-11-28T04:00:00+23:59", 1795838400 - 86340, 86340 },
        { "2024-02-29T00:00:00Z", 1709164800, 0 },
        { "2000-02-29T00:00:00Z", 951782400, 0 },
        { "1970-01-01T00:00:00Z", 0, 0 },
        { "2099-12-31T23:59:59Z", 4102444799, 0 },
};

static const char *const rfc_reject[] = {
        "",
        "2026-11-28",
        "2026-11-28T04:00:00",         /* no zone */
        "2026-11-28T04:00Z",           /* no seconds */
        "2026-11-28 04:00:00Z",        /* space instead of T */
        "2026-13-01T00:00:00Z",        /* month 13 */
        "2026-00-01T00:00:00Z",        /* month 0 */
        "2026-11-00T00:00:00Z",        /* day 0 */
        "2026-11-32T00:00:00Z",        /* day 32 */
        "2026-11-28T24:00:00Z",        /* hour 24 */
        "2026-11-28T04:60:00Z",        /* minute 60 */
        "2026-11-28T04:00:00Zjunk",    /* trailing junk */
        "2026-11-28T04:00:00Z ",       /* trailing space */
        "2026-11-28T04:00:00+05:30x",  /* trailing junk after an offset */
        "2026-11-28T04:00:00+0530",    /* offset without colon */
        "2026-11-28T04:00:00+05",      /* offset without minutes */
        "2026-11-28T04:00:00+24:00",   /* offset hour 24 */
        "2026-11-28T04:00:00+05:60",   /* offset minute 60 */
        "2026-11-28T04:00:00.Z",       /* a dot with no digits */
        "2026-11-28T04:00:00,5Z",      /* comma fraction */
        "26-11-28T04:00:00Z",          /* two-digit year */
        "2026-1-28T04:00:00Z",         /* one-digit month */
        "2026/11/28T04:00:00Z",        /* wrong separators */
        "2026-11-28T04-00-00Z",
        "20a6-11-28T04:00:00Z",        /* not a digit */
        "2026-11-28T04:00:00UTC",      /* a zone name */
        "2026-11-28T04:00:00Z\n",
        " 2026-11-28T04:00:00Z",       /* leading space */
};

static void test_rfc3339_accept(void)
{
        for (size_t i = 0; i < sizeof(rfc_accept) / sizeof(rfc_accept[0]); i++) {
                time_t t = 12345;
                int off = 777;

                if (!CHECK_INT_EQ(af_rfc3339_parse(rfc_accept[i].in, 0, &t, &off), 0)) {
                        fprintf(stderr, "    input \"%s\"\n", rfc_accept[i].in);
                        continue;
                }
                if (!CHECK_INT_EQ(t, rfc_accept[i].t) || !CHECK_INT_EQ(off, rfc_accept[i].off))
                        fprintf(stderr, "    input \"%s\"\n", rfc_accept[i].in);
        }
}

static void test_rfc3339_reject(void)
{
        for (size_t i = 0; i < sizeof(rfc_reject) / sizeof(rfc_reject[0]); i++) {
                time_t t = 12345;
                int off = 777;

                if (!CHECK_INT_EQ(af_rfc3339_parse(rfc_reject[i], 0, &t, &off), -EINVAL))
                        test_print_escaped("input", rfc_reject[i], strlen(rfc_reject[i]));
                /* outputs are written only on success */
                CHECK_INT_EQ(t, 12345);
                CHECK_INT_EQ(off, 777);
        }
}

/*
 * Go's time.Parse checks the day against the month's length (and seconds against 59): "day
 * out of range" / "second out of range". timegm() would silently move such a date (2026-02-30
 * to 2026-03-02), so every {{workflow.creationTimestamp.*}} would name a day the workflow was
 * not created on.
 */
static void test_impossible_dates(void)
{
        static const char *const impossible[] = {
                "2026-02-30T00:00:00Z", /* no Feb 30 */
                "2026-02-29T00:00:00Z", /* 2026 is no leap year */
                "1900-02-29T00:00:00Z", /* nor is 1900 */
                "2026-04-31T00:00:00Z", /* April has 30 days */
                "2026-11-28T04:00:60Z", /* Go: second out of range */
        };

        for (size_t i = 0; i < sizeof(impossible) / sizeof(impossible[0]); i++) {
                time_t t = 1;
                int off = 1;

                if (!CHECK_INT_EQ(af_rfc3339_parse(impossible[i], 0, &t, &off), -EINVAL))
                        fprintf(stderr, "    input \"%s\" (parsed as %lld)\n", impossible[i],
                                (long long)t);
        }
}

/* What AWS's credential sources write, with AF_RFC3339_LENIENT. */
static void test_lenient(void)
{
        static const struct {
                const char *s;
                long long t;
        } good[] = {
                { "2026-11-28T04:00:00Z", 1795838400LL },
                { "2026-11-28T04:00:00.123456Z", 1795838400LL },
                { "2026-11-28t04:00:00z", 1795838400LL },
                { "2026-11-28 04:00:00", 1795838400LL },
                { "2026-11-28T06:00:00+02:00", 1795838400LL },
                { "2026-11-27T22:30:00-0530", 1795838400LL },
                { "1970-01-01T00:00:00Z", 0 },
                { "2024-02-29T00:00:00Z", 1709164800LL },
        };
        static const char *const bad[] = {
                "", "2026-11-28", "2026-11-28T04:00Z", "2026-13-01T00:00:00Z",
                "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-28T24:00:00Z",
                "2026-11-28T04:00:00ZZ", "2026-11-28T04:00:00.Z", "2026-11-28T04:00:00+2",
                "26-11-28T04:00:00Z", "2026-11-28T04:00:00 ", "1795838400",
        };
        time_t t = 42;

        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                if (!CHECK_INT_EQ(af_rfc3339_parse(good[i].s, AF_RFC3339_LENIENT, &t, NULL), 0) ||
                    !CHECK_INT_EQ(t, good[i].t))
                        fprintf(stderr, "    input: %s\n", good[i].s);
        }
        t = 42;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (!CHECK_INT_EQ(af_rfc3339_parse(bad[i], AF_RFC3339_LENIENT, &t, NULL), -EINVAL))
                        fprintf(stderr, "    input: %s\n", bad[i]);
        }
        CHECK_INT_EQ(t, 42);
}

static void test_mtime_ns(void)
{
        struct stat st;

        memset(&st, 0, sizeof(st));
        st.st_mtim.tv_sec = 1795838400;
        st.st_mtim.tv_nsec = 123456789;
        CHECK_INT_EQ(af_mtime_ns(&st), 1795838400123456789LL);
}

static void test_clocks(void)
{
        uint64_t m0 = af_clock_mono_ms(), m1 = af_clock_mono_ms();
        uint64_t w = af_clock_wall_ms();

        CHECK(m1 >= m0);
        /* the wall clock in ms agrees with time() to within a second or so */
        CHECK(w / 1000 + 2 >= (uint64_t)time(NULL) && w / 1000 <= (uint64_t)time(NULL) + 2);
}

int main(void)
{
        RUN(test_rfc3339_accept);
        RUN(test_rfc3339_reject);
        RUN(test_impossible_dates);
        RUN(test_lenient);
        RUN(test_mtime_ns);
        RUN(test_clocks);
        return test_summary();
}
