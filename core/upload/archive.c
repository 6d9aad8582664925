/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming tar.gz of one spool file. See archive.h. */
#include "upload/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/dir.h"

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
        if (type == '2' && e->linkname)
                memcpy(h + 157, e->linkname, strnlen(e->linkname, 100));
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
        char type = e->type ? e->type : '0';
        bool long_name = strlen(e->name) > 100;
        bool long_link = type == '2' && e->linkname && strlen(e->linkname) > 100;
        bool big = type == '0' && e->size > 077777777777ull;
        int r = 0;

        if (long_name || long_link || big) {
                struct af_buf pax;
                char num[24];

                af_buf_init(&pax, 64 * 1024);
                if (long_name)
                        r = pax_record(&pax, "path", e->name);
                if (r == 0 && long_link)
                        r = pax_record(&pax, "linkpath", e->linkname);
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
                ustar_block(h, e->name, type, type != '0' || big ? 0 : e->size, e);
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

/* A tar.gz being written to a sink. */
struct tgz {
        struct gz *g;
        unsigned char *buf; /* CHUNK bytes for file data */
        struct af_buf hdr;
};

static int tgz_begin(struct tgz *t, int level, af_sink_fn sink, void *ctx)
{
        memset(t, 0, sizeof(*t));
        af_buf_init(&t->hdr, 64 * 1024);
        t->g = calloc(1, sizeof(*t->g));
        t->buf = malloc(CHUNK);
        if (!t->g || !t->buf)
                return -ENOMEM;
        t->g->sink = sink;
        t->g->ctx = ctx;
        /* windowBits 15 + 16: a gzip wrapper, as Go's compress/gzip writes. */
        if (deflateInit2(&t->g->zs, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16,
                         8, Z_DEFAULT_STRATEGY) != Z_OK) {
                free(t->g);
                t->g = NULL;
                return -EIO;
        }
        return 0;
}

static void tgz_end(struct tgz *t)
{
        if (t->g) {
                deflateEnd(&t->g->zs);
                free(t->g);
        }
        free(t->buf);
        af_buf_done(&t->hdr);
}

static int tgz_header(struct tgz *t, const struct af_tar_entry *e)
{
        int r;

        af_buf_reset(&t->hdr);
        r = af_tar_header(e, &t->hdr);
        return r < 0 ? r : gz_write(t->g, t->hdr.ptr, t->hdr.len, Z_NO_FLUSH);
}

/* A regular file member: header, exactly e->size bytes of @fd, padding. */
static int tgz_file(struct tgz *t, int fd, const struct af_tar_entry *e)
{
        static const unsigned char zeros[BLOCK];
        uint64_t off = 0;
        int r = tgz_header(t, e);

        while (r == 0 && off < e->size) {
                size_t want = e->size - off < CHUNK ? (size_t)(e->size - off) : CHUNK;
                ssize_t n = pread(fd, t->buf, want, (off_t)off);

                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        r = -ESTALE; /* shorter than its header says: it changed */
                        break;
                }
                off += (uint64_t)n;
                r = gz_write(t->g, t->buf, (size_t)n, Z_NO_FLUSH);
        }
        if (r == 0 && e->size % BLOCK)
                r = gz_write(t->g, zeros, BLOCK - e->size % BLOCK, Z_NO_FLUSH);
        return r;
}

/* The two zero blocks that end a tar, and the end of the gzip stream. */
static int tgz_finish(struct tgz *t)
{
        static const unsigned char zeros[2 * BLOCK];

        return gz_write(t->g, zeros, sizeof(zeros), Z_FINISH);
}

int af_tgz_stream(int fd, const struct af_tar_entry *e, int level, af_sink_fn sink, void *ctx)
{
        struct tgz t;
        int r = tgz_begin(&t, level, sink, ctx);

        if (r == 0)
                r = tgz_file(&t, fd, e);
        if (r == 0)
                r = tgz_finish(&t);
        tgz_end(&t);
        return r;
}

static int tgz_tree(struct tgz *t, int dirfd, const char *name, const struct stat *st, int depth)
{
        struct af_tar_entry e = { .name = name, .type = '5', .mode = st->st_mode & 07777,
                                  .uid = st->st_uid, .gid = st->st_gid, .mtime = st->st_mtime };
        char **names = NULL;
        size_t n = 0;
        int r;

        if (depth > 256)
                return -ELOOP;
        r = tgz_header(t, &e);
        if (r == 0)
                r = af_dir_sorted_names(dirfd, NULL, &names, &n);
        for (size_t i = 0; r == 0 && i < n; i++) {
                struct stat cst;
                struct af_buf child;
                char target[PATH_MAX];

                af_buf_init(&child, PATH_MAX * 4);
                r = af_buf_addf(&child, "%s/%s", name, names[i]);
                if (r == 0 && fstatat(dirfd, names[i], &cst, AT_SYMLINK_NOFOLLOW) < 0)
                        r = errno == ENOENT ? 1 : -errno; /* removed meanwhile: skip it */
                if (r == 0) {
                        struct af_tar_entry ce = { .name = af_buf_str(&child),
                                                   .mode = cst.st_mode & 07777,
                                                   .uid = cst.st_uid,
                                                   .gid = cst.st_gid,
                                                   .mtime = cst.st_mtime };

                        if (S_ISDIR(cst.st_mode)) {
                                int cfd = openat(dirfd, names[i],
                                                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                                r = cfd < 0 ? -errno : tgz_tree(t, cfd, ce.name, &cst, depth + 1);
                                if (cfd >= 0)
                                        close(cfd);
                        } else if (S_ISREG(cst.st_mode)) {
                                int ffd = openat(dirfd, names[i],
                                                 O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

                                ce.type = '0';
                                ce.size = (uint64_t)cst.st_size;
                                r = ffd < 0 ? -errno : tgz_file(t, ffd, &ce);
                                if (ffd >= 0)
                                        close(ffd);
                        } else if (S_ISLNK(cst.st_mode)) {
                                ssize_t l = readlinkat(dirfd, names[i], target,
                                                       sizeof(target) - 1);

                                if (l < 0) {
                                        r = -errno;
                                } else {
                                        target[l] = '\0';
                                        ce.type = '2';
                                        ce.linkname = target;
                                        r = tgz_header(t, &ce);
                                }
                        } else {
                                /* fifos, sockets, devices: header only, as Go's tar does */
                                ce.type = S_ISFIFO(cst.st_mode) ? '6' : S_ISCHR(cst.st_mode) ? '3'
                                          : S_ISBLK(cst.st_mode)  ? '4'
                                                                  : '0';
                                r = ce.type == '0' ? 0 : tgz_header(t, &ce);
                        }
                }
                if (r == 1)
                        r = 0;
                af_buf_done(&child);
        }
        af_dir_names_free(names, n);
        return r;
}

int af_tgz_stream_dir(int dirfd, const char *base, int level, af_sink_fn sink, void *ctx)
{
        struct stat st;
        struct tgz t;
        int r;

        if (fstat(dirfd, &st) < 0)
                return -errno;
        r = tgz_begin(&t, level, sink, ctx);
        if (r == 0)
                r = tgz_tree(&t, dirfd, base, &st, 0);
        if (r == 0)
                r = tgz_finish(&t);
        tgz_end(&t);
        return r;
}
