/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file buf.h
 * A capped, growable byte buffer that is always NUL-terminated.
 *
 * Every string that crosses a module boundary travels as a struct af_buf or as (ptr, len).
 * The cap bounds what untrusted input (a spec, a template, an S3 error body) can make us
 * allocate: an append past the cap fails with -E2BIG and leaves the buffer unchanged.
 *
 * Invariants: ptr is NULL or points at alloc bytes; len < alloc when ptr != NULL;
 * ptr[len] == '\0'. af_buf_str() never returns NULL.
 * Not thread-safe: a buffer belongs to one thread at a time.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

struct af_buf {
        char *ptr;
        size_t len;
        size_t alloc;
        size_t cap; /* maximum len; 0 means the default cap (AF_BUF_DEFAULT_CAP) */
};

#define AF_BUF_DEFAULT_CAP ((size_t)64 << 20)

/** Initialises an empty buffer that may grow to @cap bytes (0: AF_BUF_DEFAULT_CAP). */
void af_buf_init(struct af_buf *b, size_t cap);
/** Frees the contents; the buffer is then empty and reusable. */
void af_buf_done(struct af_buf *b);
/** Empties the buffer, keeping its allocation. */
void af_buf_reset(struct af_buf *b);

/** Appends; -ENOMEM or -E2BIG (past the cap) leave the buffer unchanged. */
int af_buf_add(struct af_buf *b, const void *p, size_t n);
int af_buf_adds(struct af_buf *b, const char *s);
int af_buf_addc(struct af_buf *b, char c);
int af_buf_addf(struct af_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int af_buf_vaddf(struct af_buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));
/** Replaces the contents with @s. */
int af_buf_sets(struct af_buf *b, const char *s);
/** Shortens to @len (no-op if already shorter). */
void af_buf_truncate(struct af_buf *b, size_t len);

/**
 * Appends everything @fd reads until end of file (retrying EINTR). -errno of a failed read,
 * -ENOMEM or -E2BIG (past the cap); what was read before stays. Does not close @fd.
 */
int af_buf_read_fd(struct af_buf *b, int fd);

/** The contents as a C string; "" when empty. Valid until the next change. */
const char *af_buf_str(const struct af_buf *b);
/** Hands the contents to the caller (free() them); NULL only on OOM. Leaves @b empty. */
char *af_buf_take(struct af_buf *b);
