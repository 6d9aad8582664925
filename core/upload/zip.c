/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming zip (PKWARE APPNOTE 6.3: local headers with data descriptors, central directory,
 * ZIP64 when needed), the layout Go's archive/zip writes for Argo's zip strategy.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "base/dir.h"
#include "upload/archive.h"

#define CHUNK (128 * 1024)
#define U32_MAX_ 0xffffffffu

struct zentry {
        uint32_t crc;
        uint64_t csize, usize, offset;
        uint16_t time, date;
        uint32_t mode;
        bool zip64;
        char *name;
};

struct zw {
        af_sink_fn sink;
        void *ctx;
        int level;
        uint64_t off; /* bytes written so far */
        struct zentry *e;
        size_t n, a;
        unsigned char *in, *out;
};

static void le16(unsigned char *p, uint16_t v)
{
        p[0] = (unsigned char)v;
        p[1] = (unsigned char)(v >> 8);
}

static void le32(unsigned char *p, uint32_t v)
{
        le16(p, (uint16_t)v);
        le16(p + 2, (uint16_t)(v >> 16));
}

static void le64(unsigned char *p, uint64_t v)
{
        le32(p, (uint32_t)v);
        le32(p + 4, (uint32_t)(v >> 32));
}

static int put(struct zw *z, const void *p, size_t n)
{
        int r = z->sink(z->ctx, p, n);

        if (r == 0)
                z->off += n;
        return r;
}

/* MS-DOS time and date, in UTC (as Go writes them for a UTC time). */
static void dos_time(time_t t, uint16_t *ret_time, uint16_t *ret_date)
{
        struct tm tm;

        if (!gmtime_r(&t, &tm) || tm.tm_year < 80) {
                *ret_time = 0;
                *ret_date = (1 << 5) | 1; /* 1980-01-01 */
                return;
        }
        *ret_time = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
        *ret_date = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

/* One entry: local header, deflated data of @size bytes of @fd (-1: empty), descriptor. */
/* The local file header of @e (sizes follow in a data descriptor). */
static int local_header(struct zw *z, const struct zentry *e, const char *name, size_t nl)
{
        unsigned char h[30];
        int r;

        memset(h, 0, sizeof(h));
        le32(h, 0x04034b50);
        le16(h + 4, e->zip64 ? 45 : 20);
        le16(h + 6, 0x0008 | 0x0800); /* sizes in a data descriptor; UTF-8 name */
        le16(h + 8, 8);               /* deflate */
        le16(h + 10, e->time);
        le16(h + 12, e->date);
        if (e->zip64) {
                le32(h + 18, U32_MAX_);
                le32(h + 22, U32_MAX_);
        }
        le16(h + 26, (uint16_t)nl);
        le16(h + 28, e->zip64 ? 20 : 0);
        r = put(z, h, 30);
        if (r == 0)
                r = put(z, name, nl);
        if (r == 0 && e->zip64) {
                unsigned char x[20] = { 0 };

                le16(x, 0x0001); /* ZIP64 extra: sizes follow in the descriptor */
                le16(x + 2, 16);
                r = put(z, x, 20);
        }
        return r;
}

/* Deflates @size bytes of @fd into the archive, counting @e's CRC and compressed size. */
static int deflate_body(struct zw *z, struct zentry *e, int fd, uint64_t size)
{
        uint64_t off = 0;
        z_stream zs;
        int r = 0, zr;

        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, z->level < 0 ? Z_DEFAULT_COMPRESSION : z->level, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                return -EIO;
        e->crc = (uint32_t)crc32(0L, Z_NULL, 0);
        for (;;) {
                size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
                ssize_t got = 0;
                int flush = Z_NO_FLUSH;

                if (want) {
                        got = pread(fd, z->in, want, (off_t)off);
                        if (got < 0) {
                                r = -errno;
                                break;
                        }
                        if (got == 0) {
                                r = -ESTALE;
                                break;
                        }
                        off += (uint64_t)got;
                        e->crc = (uint32_t)crc32(e->crc, z->in, (uInt)got);
                }
                if (off == size)
                        flush = Z_FINISH;
                zs.next_in = z->in;
                zs.avail_in = (uInt)got;
                do {
                        zs.next_out = z->out;
                        zs.avail_out = CHUNK;
                        zr = deflate(&zs, flush);
                        if (zr == Z_STREAM_ERROR) {
                                r = -EIO;
                                break;
                        }
                        if (CHUNK - zs.avail_out) {
                                r = put(z, z->out, CHUNK - zs.avail_out);
                                if (r < 0)
                                        break;
                                e->csize += CHUNK - zs.avail_out;
                        }
                } while (zs.avail_out == 0);
                if (r < 0 || flush == Z_FINISH)
                        break;
        }
        deflateEnd(&zs);
        return r;
}

/* The data descriptor after @e's body: its CRC and sizes. */
static int descriptor(struct zw *z, const struct zentry *e)
{
        unsigned char h[24];

        if (!e->zip64 && (e->csize >= U32_MAX_ || z->off >= U32_MAX_))
                return -EFBIG; /* needs the ZIP64 we did not announce: the margin rules it out */
        memset(h, 0, sizeof(h));
        le32(h, 0x08074b50);
        le32(h + 4, e->crc);
        if (e->zip64) {
                le64(h + 8, e->csize);
                le64(h + 16, e->usize);
                return put(z, h, 24);
        }
        le32(h + 8, (uint32_t)e->csize);
        le32(h + 12, (uint32_t)e->usize);
        return put(z, h, 16);
}

static int zip_entry(struct zw *z, const char *name, int fd, const struct stat *st)
{
        struct zentry *e;
        uint64_t size = fd >= 0 ? (uint64_t)st->st_size : 0;
        size_t nl = strlen(name);
        int r;

        if (nl > 0xffff)
                return -ENAMETOOLONG;
        if (z->n == z->a) {
                size_t a = z->a ? z->a * 2 : 64;
                struct zentry *p = realloc(z->e, a * sizeof(*p));

                if (!p)
                        return -ENOMEM;
                z->e = p;
                z->a = a;
        }
        e = &z->e[z->n];
        memset(e, 0, sizeof(*e));
        e->name = strdup(name);
        if (!e->name)
                return -ENOMEM;
        z->n++;
        e->offset = z->off;
        e->mode = (uint32_t)(st->st_mode & 07777) | S_IFREG;
        /* Deflate can grow incompressible data slightly: decide ZIP64 with room to spare. */
        e->zip64 = size >= U32_MAX_ - (U32_MAX_ >> 8) || z->off >= U32_MAX_;
        dos_time(st->st_mtime, &e->time, &e->date);
        r = local_header(z, e, name, nl);
        if (r == 0)
                r = deflate_body(z, e, fd, size);
        if (r < 0)
                return r;
        e->usize = size;
        return descriptor(z, e);
}

static int zip_central(struct zw *z)
{
        uint64_t cd_start = z->off, cd_size;
        bool z64 = z->n > 0xffff || cd_start >= U32_MAX_;
        unsigned char h[56];
        int r = 0;

        for (size_t i = 0; r == 0 && i < z->n; i++) {
                struct zentry *e = &z->e[i];
                size_t nl = strlen(e->name);
                bool big = e->zip64 || e->offset >= U32_MAX_;
                unsigned char x[28];

                memset(h, 0, sizeof(h));
                le32(h, 0x02014b50);
                le16(h + 4, (3 << 8) | (big ? 45 : 20)); /* made by: unix */
                le16(h + 6, big ? 45 : 20);
                le16(h + 8, 0x0008 | 0x0800);
                le16(h + 10, 8);
                le16(h + 12, e->time);
                le16(h + 14, e->date);
                le32(h + 16, e->crc);
                le32(h + 20, big ? U32_MAX_ : (uint32_t)e->csize);
                le32(h + 24, big ? U32_MAX_ : (uint32_t)e->usize);
                le16(h + 28, (uint16_t)nl);
                le16(h + 30, big ? 28 : 0);
                le32(h + 38, e->mode << 16);
                le32(h + 42, big ? U32_MAX_ : (uint32_t)e->offset);
                r = put(z, h, 46);
                if (r == 0)
                        r = put(z, e->name, nl);
                if (r == 0 && big) {
                        le16(x, 0x0001);
                        le16(x + 2, 24);
                        le64(x + 4, e->usize);
                        le64(x + 12, e->csize);
                        le64(x + 20, e->offset);
                        r = put(z, x, 28);
                }
        }
        if (r < 0)
                return r;
        cd_size = z->off - cd_start;
        z64 = z64 || cd_size >= U32_MAX_;
        if (z64) {
                uint64_t eocd64 = z->off;

                memset(h, 0, sizeof(h));
                le32(h, 0x06064b50);
                le64(h + 4, 44);
                le16(h + 12, (3 << 8) | 45);
                le16(h + 14, 45);
                le64(h + 24, z->n);
                le64(h + 32, z->n);
                le64(h + 40, cd_size);
                le64(h + 48, cd_start);
                r = put(z, h, 56);
                if (r < 0)
                        return r;
                memset(h, 0, 20);
                le32(h, 0x07064b50);
                le64(h + 8, eocd64);
                le32(h + 16, 1);
                r = put(z, h, 20);
                if (r < 0)
                        return r;
        }
        memset(h, 0, 22);
        le32(h, 0x06054b50);
        le16(h + 8, z64 ? 0xffff : (uint16_t)z->n);
        le16(h + 10, z64 ? 0xffff : (uint16_t)z->n);
        le32(h + 12, z64 ? U32_MAX_ : (uint32_t)cd_size);
        le32(h + 16, z64 ? U32_MAX_ : (uint32_t)cd_start);
        return put(z, h, 22);
}

static int zip_tree(struct zw *z, int dirfd, const char *prefix, int depth)
{
        char **names = NULL;
        size_t n = 0;
        int r;

        if (depth > 256)
                return -ELOOP;
        r = af_dir_sorted_names(dirfd, NULL, &names, &n);
        for (size_t i = 0; r == 0 && i < n; i++) {
                size_t len = strlen(prefix) + strlen(names[i]) + 2;
                char *child = malloc(len);
                struct stat st;

                if (!child) {
                        r = -ENOMEM;
                        break;
                }
                snprintf(child, len, "%s/%s", prefix, names[i]);
                if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = errno == ENOENT ? 0 : -errno; /* removed meanwhile: skip it */
                } else if (S_ISDIR(st.st_mode)) {
                        int cfd = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                                  O_CLOEXEC);

                        r = cfd < 0 ? -errno : zip_tree(z, cfd, child, depth + 1);
                        if (cfd >= 0)
                                close(cfd);
                } else if (S_ISREG(st.st_mode)) {
                        int ffd = openat(dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

                        r = ffd < 0 ? -errno : zip_entry(z, child, ffd, &st);
                        if (ffd >= 0)
                                close(ffd);
                } else {
                        r = zip_entry(z, child, -1, &st); /* Argo: an empty entry */
                }
                free(child);
        }
        af_dir_names_free(names, n);
        return r;
}

int af_zip_stream(int fd, const char *name, int level, af_sink_fn sink, void *ctx)
{
        struct zw z = { .sink = sink, .ctx = ctx, .level = level };
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        z.in = malloc(CHUNK);
        z.out = malloc(CHUNK);
        if (!z.in || !z.out) {
                r = -ENOMEM;
                goto out;
        }
        r = S_ISDIR(st.st_mode) ? zip_tree(&z, fd, name, 0) : zip_entry(&z, name, fd, &st);
        if (r == 0)
                r = zip_central(&z);
out:
        for (size_t i = 0; i < z.n; i++)
                free(z.e[i].name);
        free(z.e);
        free(z.in);
        free(z.out);
        return r;
}
