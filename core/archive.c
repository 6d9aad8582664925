/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming tar.gz of one spool file. See archive.h. */
#include "archive.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK 512
#define CHUNK (128 * 1024)

/* Octal field, NUL-terminated, zero-padded (POSIX ustar). */
static void octal(char *field, size_t width, uint64_t v)
{
        /* width - 1 digits, most significant first; callers keep @v within them */
        field[width - 1] = '\0';
        for (size_t i = width - 1; i > 0; i--) {
                field[i - 1] = (char)('0' + (v & 7));
                v >>= 3;
        }
}

static void checksum(unsigned char *h)
{
        unsigned sum = 0;

        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < BLOCK; i++)
                sum += h[i];
        snprintf((char *)h + 148, 8, "%06o", sum);
        h[155] = ' ';
}

static void ustar_block(unsigned char *h, const char *name, char type, uint64_t size,
                        const struct af_tar_entry *e)
{
        memset(h, 0, BLOCK);
        memcpy(h, name, strnlen(name, 100));
        octal((char *)h + 100, 8, (uint64_t)(e->mode & 07777));
        octal((char *)h + 108, 8, (uint64_t)e->uid & 07777777);
        octal((char *)h + 116, 8, (uint64_t)e->gid & 07777777);
        octal((char *)h + 124, 12, size);
        octal((char *)h + 136, 12, e->mtime > 0 ? (uint64_t)e->mtime : 0);
        h[156] = (unsigned char)type;
        memcpy(h + 257, "ustar", 6); /* magic "ustar\0", version "00" */
        memcpy(h + 263, "00", 2);
        checksum(h);
}

/* One PAX record: "<len> <key>=<value>\n", where <len> counts itself. */
static int pax_record(struct af_buf *b, const char *key, const char *value)
{
        size_t body = strlen(key) + strlen(value) + 3, len = body + 1;

        while (snprintf(NULL, 0, "%zu", len) + body != len)
                len++;
        return af_buf_addf(b, "%zu %s=%s\n", len, key, value);
}

int af_tar_header(const struct af_tar_entry *e, struct af_buf *out)
{
        unsigned char h[BLOCK];
        size_t start = out->len;
        bool long_name = strlen(e->name) > 100;
        bool big = e->size > 077777777777ull;
        int r = 0;

        if (long_name || big) {
                struct af_buf pax;
                char num[24];

                af_buf_init(&pax, 64 * 1024);
                if (long_name)
                        r = pax_record(&pax, "path", e->name);
                snprintf(num, sizeof(num), "%llu", (unsigned long long)e->size);
                if (r == 0 && big)
                        r = pax_record(&pax, "size", num);
                if (r == 0) {
                        ustar_block(h, "PaxHeader", 'x', pax.len, e);
                        r = af_buf_add(out, h, BLOCK);
                }
                if (r == 0)
                        r = af_buf_add(out, pax.ptr, pax.len);
                while (r == 0 && (out->len - start) % BLOCK)
                        r = af_buf_addc(out, '\0');
                af_buf_done(&pax);
        }
        if (r == 0) {
                ustar_block(h, e->name, '0', big ? 0 : e->size, e);
                r = af_buf_add(out, h, BLOCK);
        }
        if (r < 0)
                af_buf_truncate(out, start);
        return r;
}

struct gz {
        z_stream zs;
        unsigned char out[CHUNK];
        af_sink_fn sink;
        void *ctx;
};

/* Compresses @n bytes (flush = Z_FINISH at the end) and hands the output to the sink. */
static int gz_write(struct gz *g, const void *data, size_t n, int flush)
{
        g->zs.next_in = (Bytef *)(uintptr_t)data;
        g->zs.avail_in = (uInt)n;
        do {
                int zr, r;
                size_t have;

                g->zs.next_out = g->out;
                g->zs.avail_out = sizeof(g->out);
                zr = deflate(&g->zs, flush);
                if (zr == Z_STREAM_ERROR)
                        return -EIO;
                have = sizeof(g->out) - g->zs.avail_out;
                if (have) {
                        r = g->sink(g->ctx, g->out, have);
                        if (r < 0)
                                return r;
                }
        } while (g->zs.avail_out == 0 || (flush == Z_FINISH && g->zs.avail_in));
        return 0;
}

int af_tgz_stream(int fd, const struct af_tar_entry *e, int level, af_sink_fn sink, void *ctx)
{
        static const unsigned char zeros[2 * BLOCK];
        struct gz *g = calloc(1, sizeof(*g));
        unsigned char *buf = malloc(CHUNK);
        struct af_buf hdr;
        uint64_t off = 0;
        int r;

        af_buf_init(&hdr, 64 * 1024);
        if (!g || !buf) {
                r = -ENOMEM;
                goto out_free;
        }
        g->sink = sink;
        g->ctx = ctx;
        /* windowBits 15 + 16: a gzip wrapper, as Go's compress/gzip writes. */
        if (deflateInit2(&g->zs, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16,
                         8, Z_DEFAULT_STRATEGY) != Z_OK) {
                r = -EIO;
                goto out_free;
        }
        r = af_tar_header(e, &hdr);
        if (r == 0)
                r = gz_write(g, hdr.ptr, hdr.len, Z_NO_FLUSH);
        while (r == 0 && off < e->size) {
                size_t want = e->size - off < CHUNK ? (size_t)(e->size - off) : CHUNK;
                ssize_t n = pread(fd, buf, want, (off_t)off);

                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        r = -ESTALE; /* shorter than its header says: it changed */
                        break;
                }
                off += (uint64_t)n;
                r = gz_write(g, buf, (size_t)n, Z_NO_FLUSH);
        }
        /* Pad the member to a whole block, then the two zero blocks that end the archive. */
        if (r == 0 && e->size % BLOCK)
                r = gz_write(g, zeros, BLOCK - e->size % BLOCK, Z_NO_FLUSH);
        if (r == 0)
                r = gz_write(g, zeros, sizeof(zeros), Z_FINISH);
        deflateEnd(&g->zs);
out_free:
        af_buf_done(&hdr);
        free(buf);
        free(g);
        return r;
}
