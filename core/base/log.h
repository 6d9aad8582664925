/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file log.h
 * The logger: one logfmt line per event on stderr (what `kubectl logs` shows).
 *
 *     time=2026-11-28T04:00:00.123Z level=info op=upload key="wf/pod/out.txt" bytes=17
 *
 * The caller writes the "key=value ..." body; af_log adds time and level. User-controlled
 * strings go through af_q(), which quotes and escapes them. The level is tested before the
 * body is formatted. Thread-safe: each line is written with one write(2).
 *
 * core/ logs only at debug level; the program layer (fs/, queue workers) logs decisions.
 * Secrets (secret keys, session tokens, Authorization headers, signatures) never reach here.
 */
#pragma once

#include <stddef.h>

enum af_log_level {
        AF_LOG_ERROR = 0,
        AF_LOG_WARN = 1,
        AF_LOG_INFO = 2,
        AF_LOG_DEBUG = 3,
};

/** Sets the most verbose level that is written (default AF_LOG_INFO). */
void af_log_set_level(enum af_log_level level);
enum af_log_level af_log_get_level(void);
/** Sets the file descriptor lines go to (default 2). */
void af_log_set_fd(int fd);

enum af_log_format {
        AF_LOG_LOGFMT = 0, /* key=value ..., user strings double-quoted (the default) */
        /* One JSON object per line, the same fields in the same order: a value that was a
         * bare decimal integer is a JSON number, every other value a string
         * ({"time":"...","level":"info","op":"upload","bytes":17,...}). */
        AF_LOG_JSON = 1,
};

void af_log_set_format(enum af_log_format format);

/**
 * Rewrites one logfmt line (@in, @n bytes, no newline) as a JSON object into @out (@cap
 * bytes, NUL-terminated, cut short rather than overflowed). Returns the length written.
 * Exposed for tests; af_log uses it with AF_LOG_JSON.
 */
size_t af_log_logfmt_to_json(const char *in, size_t n, char *out, size_t cap);

void af_log(enum af_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define af_log_error(...) af_log(AF_LOG_ERROR, __VA_ARGS__)
#define af_log_warn(...) af_log(AF_LOG_WARN, __VA_ARGS__)
#define af_log_info(...) af_log(AF_LOG_INFO, __VA_ARGS__)
#define af_log_debug(...) af_log(AF_LOG_DEBUG, __VA_ARGS__)

/**
 * @s as a logfmt value: always double-quoted, with '"', '\\' and control bytes escaped,
 * cut at 512 bytes ("..." appended). The result lives in a small per-thread ring and stays
 * valid for the next 7 calls in the same thread: enough for one af_log() call.
 */
const char *af_q(const char *s);
