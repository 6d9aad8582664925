/* SPDX-License-Identifier: Apache-2.0 */
/* Capped growable buffer; see buf.h for the invariants. */
#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void af_buf_init(struct af_buf *b, size_t cap)
{
        b->ptr = NULL;
        b->len = 0;
        b->alloc = 0;
        b->cap = cap ? cap : AF_BUF_DEFAULT_CAP;
}

void af_buf_done(struct af_buf *b)
{
        free(b->ptr);
        b->ptr = NULL;
        b->len = 0;
        b->alloc = 0;
}

void af_buf_reset(struct af_buf *b)
{
        af_buf_truncate(b, 0);
}

void af_buf_truncate(struct af_buf *b, size_t len)
{
        if (b->ptr && len < b->len) {
                b->len = len;
                b->ptr[len] = '\0';
        }
}

/* Makes room for @n more bytes plus the terminator. */
static int grow(struct af_buf *b, size_t n)
{
        size_t need, a;
        char *p;

        if (n > b->cap || b->len > b->cap - n)
                return -E2BIG;
        need = b->len + n + 1;
        if (need <= b->alloc)
                return 0;
        a = b->alloc ? b->alloc : 64;
        while (a < need)
                a *= 2;
        p = realloc(b->ptr, a);
        if (!p)
                return -ENOMEM;
        b->ptr = p;
        b->alloc = a;
        return 0;
}

int af_buf_add(struct af_buf *b, const void *p, size_t n)
{
        int r = grow(b, n);

        if (r < 0)
                return r;
        if (n)
                memcpy(b->ptr + b->len, p, n);
        b->len += n;
        b->ptr[b->len] = '\0';
        return 0;
}

int af_buf_adds(struct af_buf *b, const char *s)
{
        return af_buf_add(b, s, strlen(s));
}

int af_buf_addc(struct af_buf *b, char c)
{
        return af_buf_add(b, &c, 1);
}

int af_buf_sets(struct af_buf *b, const char *s)
{
        af_buf_reset(b);
        return af_buf_adds(b, s);
}

int af_buf_vaddf(struct af_buf *b, const char *fmt, va_list ap)
{
        va_list ap2;
        int n, r;

        va_copy(ap2, ap);
        n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0)
                return -EINVAL;
        r = grow(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int af_buf_addf(struct af_buf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = af_buf_vaddf(b, fmt, ap);
        va_end(ap);
        return r;
}

const char *af_buf_str(const struct af_buf *b)
{
        return b->ptr ? b->ptr : "";
}

char *af_buf_take(struct af_buf *b)
{
        char *p = b->ptr;

        if (!p)
                p = strdup("");
        b->ptr = NULL;
        b->len = 0;
        b->alloc = 0;
        return p;
}

int af_buf_read_fd(struct af_buf *b, int fd)
{
        char chunk[65536];
        ssize_t n;
        int r = 0;

        while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                r = af_buf_add(b, chunk, (size_t)n);
                if (r < 0)
                        return r;
        }
        return 0;
}
