/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled logfmt logger; the only code that knows where log lines go. */
#include "base/log.h"
#include "base/hex.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = AF_LOG_INFO;
static atomic_int log_fd = 2;
static atomic_int log_format = AF_LOG_LOGFMT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void af_log_set_level(enum af_log_level level)
{
        log_level = level;
}

enum af_log_level af_log_get_level(void)
{
        return (enum af_log_level)log_level;
}

void af_log_set_fd(int fd)
{
        log_fd = fd;
}

void af_log_set_format(enum af_log_format format)
{
        log_format = format;
}

/* JSON output: appends with a bound, keeping room for the closing "}\n". */
struct out {
        char *p;
        size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
        if (o->len + n + 3 > o->cap)
                n = o->cap > o->len + 3 ? o->cap - o->len - 3 : 0;
        memcpy(o->p + o->len, s, n);
        o->len += n;
}

static void put_json_char(struct out *o, unsigned char c)
{
        char esc[8];

        if (c == '"' || c == '\\') {
                esc[0] = '\\';
                esc[1] = (char)c;
                put(o, esc, 2);
        } else if (c == '\n') {
                put(o, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(o, esc, 6);
        } else {
                put(o, (const char *)&c, 1);
        }
}

/* A value at @in (quoted as af_q writes it, or bare up to a space) as a JSON value; returns
 * how many bytes of @in it took. */
static size_t put_value(struct out *o, const char *in, size_t n)
{
        size_t i = 0, start;
        bool number;

        if (n && in[0] == '"') {
                put(o, "\"", 1);
                for (i = 1; i < n && in[i] != '"'; i++) {
                        if (in[i] == '\\' && i + 1 < n) {
                                char e = in[++i];

                                if (e == 'n') {
                                        put_json_char(o, '\n');
                                } else if (e == 'x' && i + 2 < n && af_unhex_digit(in[i + 1]) >= 0 &&
                                           af_unhex_digit(in[i + 2]) >= 0) {
                                        put_json_char(o, (unsigned char)(af_unhex_digit(in[i + 1]) * 16 +
                                                                         af_unhex_digit(in[i + 2])));
                                        i += 2;
                                } else {
                                        put_json_char(o, (unsigned char)e);
                                }
                        } else {
                                put_json_char(o, (unsigned char)in[i]);
                        }
                }
                put(o, "\"", 1);
                return i < n ? i + 1 : i;
        }
        start = i;
        number = i < n && in[i] != ' ';
        for (; i < n && in[i] != ' '; i++)
                number = number && in[i] >= '0' && in[i] <= '9';
        /* A leading zero would not be a JSON number ("007"), nor would a huge run of digits
         * stay exact in every reader: those stay strings. */
        if (number && (in[start] != '0' || i - start == 1) && i - start <= 15) {
                put(o, in + start, i - start);
        } else {
                put(o, "\"", 1);
                for (size_t k = start; k < i; k++)
                        put_json_char(o, (unsigned char)in[k]);
                put(o, "\"", 1);
        }
        return i;
}

size_t af_log_logfmt_to_json(const char *in, size_t n, char *outp, size_t cap)
{
        struct out o = { .p = outp, .cap = cap };
        size_t i = 0;
        bool first = true;

        if (cap < 4) {
                if (cap)
                        outp[0] = '\0';
                return 0;
        }
        put(&o, "{", 1);
        while (i < n) {
                size_t k;

                while (i < n && in[i] == ' ')
                        i++;
                if (i >= n)
                        break;
                for (k = i; k < n && in[k] != '=' && in[k] != ' '; k++)
                        ;
                if (!first)
                        put(&o, ",", 1);
                first = false;
                put(&o, "\"", 1);
                if (k < n && in[k] == '=') {
                        put(&o, in + i, k - i);
                        put(&o, "\":", 2);
                        i = k + 1 + put_value(&o, in + k + 1, n - k - 1);
                } else { /* a word with no key: kept, under "text" */
                        put(&o, "text\":", 6);
                        i += put_value(&o, in + i, n - i);
                }
        }
        o.p[o.len++] = '}';
        o.p[o.len] = '\0';
        return o.len;
}

void af_log(enum af_log_level level, const char *fmt, ...)
{
        char line[4096], json[8192];
        struct timeval tv;
        struct tm tm;
        size_t n;
        va_list ap;
        int k;

        if ((int)level > log_level)
                return;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof(line), "time=%Y-%m-%dT%H:%M:%S", &tm);
        k = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s ", (long)(tv.tv_usec / 1000),
                     level_names[level]);
        n += (size_t)k;
        va_start(ap, fmt);
        k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        if (k < 0)
                k = 0;
        n += (size_t)k;
        if (n > sizeof(line) - 2)
                n = sizeof(line) - 2; /* truncated: still one line */
        if (log_format == AF_LOG_JSON) {
                n = af_log_logfmt_to_json(line, n, json, sizeof(json) - 1);
                json[n++] = '\n';
                (void)!write(log_fd, json, n);
                return;
        }
        line[n++] = '\n';
        /* One write per line keeps lines from different threads whole. */
        (void)!write(log_fd, line, n);
}

const char *af_q(const char *s)
{
        static _Thread_local char ring[8][1040];
        static _Thread_local unsigned next;
        char *out = ring[next++ % 8];
        size_t o = 0, i;

        if (!s)
                s = "";
        out[o++] = '"';
        for (i = 0; s[i] && o < 1024; i++) {
                unsigned char c = (unsigned char)s[i];

                if (i >= 512) {
                        memcpy(out + o, "...", 3);
                        o += 3;
                        break;
                }
                if (c == '"' || c == '\\') {
                        out[o++] = '\\';
                        out[o++] = (char)c;
                } else if (c == '\n') {
                        out[o++] = '\\';
                        out[o++] = 'n';
                } else if (c < 0x20 || c == 0x7f) {
                        o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
                } else {
                        out[o++] = (char)c;
                }
        }
        out[o++] = '"';
        out[o] = '\0';
        return out;
}
