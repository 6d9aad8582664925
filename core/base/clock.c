// SPDX-License-Identifier: Apache-2.0
/* Clocks and RFC 3339 timestamps (see clock.h). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "base/clock.h"

static uint64_t read_ms(clockid_t id)
{
        struct timespec ts;

        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t af_clock_mono_ms(void)
{
        return read_ms(CLOCK_MONOTONIC);
}

uint64_t af_clock_wall_ms(void)
{
        return read_ms(CLOCK_REALTIME);
}

/* Reads exactly count digits at *p and moves past them. */
static bool digits(const char **p, int count, int *ret)
{
        int v = 0;

        for (int i = 0; i < count; i++) {
                if (!isdigit((unsigned char)(*p)[i]))
                        return false;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += count;
        *ret = v;
        return true;
}

static bool valid_date(int y, int mo, int d)
{
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] + (mo == 2 && leap);
}

/* The zone: "Z", "+hh:mm" or "-hh:mm" (lenient: also "+hhmm", or none at all for UTC). */
static int parse_zone(const char **p, bool lenient, int *ret_off)
{
        int oh, om, sign;

        if (**p == 'Z' || **p == 'z') {
                (*p)++;
                *ret_off = 0;
                return 0;
        }
        if (**p != '+' && **p != '-') {
                *ret_off = 0;
                return lenient ? 0 : -EINVAL;
        }
        sign = *(*p)++ == '+' ? 1 : -1;
        if (!digits(p, 2, &oh))
                return -EINVAL;
        if (**p == ':')
                (*p)++;
        else if (!lenient)
                return -EINVAL;
        if (!digits(p, 2, &om) || oh > 23 || om > 59)
                return -EINVAL;
        *ret_off = sign * (oh * 3600 + om * 60);
        return 0;
}

int af_rfc3339_parse(const char *s, unsigned flags, time_t *ret_t, int *ret_offset_s)
{
        bool lenient = flags & AF_RFC3339_LENIENT;
        struct tm tm = { 0 };
        int y, mo, d, h, mi, se, off;
        const char *p = s;
        time_t t;

        if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
            !digits(&p, 2, &d))
                return -EINVAL;
        if (!(*p == 'T' || *p == 't' || (lenient && *p == ' ')))
                return -EINVAL;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &se))
                return -EINVAL;
        if (*p == '.' || (lenient && *p == ',')) {
                p++;
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                while (isdigit((unsigned char)*p))
                        p++;
        }
        if (parse_zone(&p, lenient, &off) < 0 || *p)
                return -EINVAL;
        /* As Go's time.Parse: impossible dates and leap seconds are errors (AWS's
         * providers have been seen to write second 60: lenient takes it as 59). */
        if (!valid_date(y, mo, d) || h > 23 || mi > 59 || se > (lenient ? 60 : 59))
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = se > 59 ? 59 : se;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_t = t - off;
        if (ret_offset_s)
                *ret_offset_s = off;
        return 0;
}
