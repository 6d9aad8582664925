/* SPDX-License-Identifier: Apache-2.0 */
/* Leveled logfmt logger; the only code that knows where log lines go. */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = AF_LOG_INFO;
static atomic_int log_fd = 2;

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

void af_log(enum af_log_level level, const char *fmt, ...)
{
        char line[4096];
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
