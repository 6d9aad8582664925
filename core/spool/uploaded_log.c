/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The registry's log: line codec, replay, and the rewrite a compaction does. See
 * uploaded_log.h.
 */
#include "spool/uploaded_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/hex.h"
#include "upload/journal.h"

#define PUT_FIELDS 10 /* P name bucket key etag archive dev ino size mtime_ns */
#define CHUNK ((size_t)1 << 16)

/* A record starts with room for its checksum, which seal() fills in. */
static int begin(struct af_buf *out, const char *op)
{
        return af_buf_addf(out, "%08x %s", 0u, op);
}

/* Fills in the checksum of the record appended at @start and ends it with a newline. */
static int seal(struct af_buf *out, size_t start, int r)
{
        char crc[9];

        if (r == 0) {
                snprintf(crc, sizeof(crc), "%08" PRIx32,
                         af_crc32c(0, out->ptr + start + 9, out->len - start - 9));
                memcpy(out->ptr + start, crc, 8);
                r = af_buf_addc(out, '\n');
        }
        if (r < 0)
                af_buf_truncate(out, start);
        return r;
}

static int value(struct af_buf *out, const char *v)
{
        int r = af_buf_addc(out, ' ');

        return r ? r : af_journal_encode_value(out, v ? v : "");
}

int af_uploaded_log_put(struct af_buf *out, const struct af_uploaded_entry *e)
{
        size_t start = out->len;
        int r;

        r = begin(out, "P");
        if (r == 0)
                r = value(out, e->relpath);
        if (r == 0)
                r = value(out, e->bucket);
        if (r == 0)
                r = value(out, e->key);
        if (r == 0)
                r = value(out, e->etag);
        if (r == 0)
                r = af_buf_addf(out, " %s %llu %llu %" PRIu64 " %" PRId64,
                                af_archive_name(e->archive), (unsigned long long)e->dev,
                                (unsigned long long)e->ino, e->size, e->mtime_ns);
        return seal(out, start, r);
}

int af_uploaded_log_take(struct af_buf *out, const char *relpath)
{
        size_t start = out->len;
        int r;

        r = begin(out, "T");
        if (r == 0)
                r = value(out, relpath);
        return seal(out, start, r);
}

/* ---- replay ----------------------------------------------------------------------------- */

struct field {
        const char *s;
        size_t n;
};

/* Splits [s, s+n) at every space into at most @max fields; the count, or max + 1 if more. */
static size_t split(const char *s, size_t n, struct field *f, size_t max)
{
        size_t k = 0;
        const char *end = s + n;

        for (;;) {
                const char *sp = memchr(s, ' ', (size_t)(end - s));
                const char *e = sp ? sp : end;

                if (k == max)
                        return max + 1;
                f[k++] = (struct field){ s, (size_t)(e - s) };
                if (!sp)
                        return k;
                s = sp + 1;
        }
}

static bool number(const struct field *f, bool sign, long long *ret)
{
        char buf[24], *end;

        if (f->n == 0 || f->n >= sizeof(buf) || (!sign && f->s[0] == '-'))
                return false;
        memcpy(buf, f->s, f->n);
        buf[f->n] = '\0';
        errno = 0;
        *ret = sign ? strtoll(buf, &end, 10) : (long long)strtoull(buf, &end, 10);
        return errno == 0 && *end == '\0';
}

static bool archive_of(const struct field *f, enum af_archive *ret)
{
        static const enum af_archive all[] = { AF_ARCHIVE_NONE, AF_ARCHIVE_TAR, AF_ARCHIVE_ZIP };

        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
                const char *name = af_archive_name(all[i]);

                if (strlen(name) == f->n && memcmp(name, f->s, f->n) == 0) {
                        *ret = all[i];
                        return true;
                }
        }
        return false;
}

/* Replays one put record; 1 done, 0 unparsable, -ENOMEM. */
static int replay_put(const struct field *f, struct af_uploaded_log_replay *rp)
{
        char *s[4] = { NULL };
        struct af_uploaded_entry e = { 0 };
        long long dev, ino, size, mtime;
        int r = 0;

        if (!archive_of(&f[5], &e.archive) || !number(&f[6], false, &dev) ||
            !number(&f[7], false, &ino) || !number(&f[8], false, &size) ||
            !number(&f[9], true, &mtime) || f[1].n == 0)
                return 0;
        for (int i = 0; i < 4; i++) {
                s[i] = af_journal_decode_value(f[1 + i].s, f[1 + i].n);
                if (!s[i])
                        goto out; /* a bad escape (or OOM: the record is lost either way) */
        }
        e.relpath = s[0];
        e.bucket = s[1];
        e.key = s[2];
        e.etag = s[3];
        e.dev = (dev_t)dev;
        e.ino = (ino_t)ino;
        e.size = (uint64_t)size;
        e.mtime_ns = mtime;
        rp->put(rp->ctx, &e);
        r = 1;
out:
        for (int i = 0; i < 4; i++)
                free(s[i]);
        return r;
}

/* Replays the record in line[0..n) (no newline); false when it is not a valid one. */
static bool replay_line(const char *line, size_t n, struct af_uploaded_log_replay *rp)
{
        struct field f[PUT_FIELDS];
        uint32_t crc = 0;
        size_t k;

        if (n < 10 || line[8] != ' ')
                return false;
        for (int i = 0; i < 8; i++) {
                int d = af_unhex_digit(line[i]);

                if (d < 0)
                        return false;
                crc = crc << 4 | (uint32_t)d;
        }
        if (af_crc32c(0, line + 9, n - 9) != crc)
                return false;
        k = split(line + 9, n - 9, f, PUT_FIELDS);
        if (k == PUT_FIELDS && f[0].n == 1 && f[0].s[0] == 'P')
                return replay_put(f, rp) == 1;
        if (k == 2 && f[0].n == 1 && f[0].s[0] == 'T' && f[1].n) {
                char *rel = af_journal_decode_value(f[1].s, f[1].n);

                if (!rel)
                        return false;
                rp->take(rp->ctx, rel);
                free(rel);
                return true;
        }
        return false;
}

int af_uploaded_log_replay(const char *data, size_t len, struct af_uploaded_log_replay *rp)
{
        size_t hl = strlen(AF_UPLOADED_LOG_HEADER);
        const char *p = data, *end = data + len;

        rp->records = rp->skipped = 0;
        if (len < hl || memcmp(data, AF_UPLOADED_LOG_HEADER, hl) != 0) {
                rp->skipped = len ? 1 : 0; /* not ours, or a version we do not know */
                return 0;
        }
        for (p += hl; p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));

                if (!nl) { /* the torn last write */
                        rp->skipped++;
                        break;
                }
                if (replay_line(p, (size_t)(nl - p), rp))
                        rp->records++;
                else
                        rp->skipped++;
                p = nl + 1;
        }
        return 0;
}

/* ---- rewrite ---------------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
        while (n) {
                ssize_t w = write(fd, p, n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                p += w;
                n -= (size_t)w;
        }
        return 0;
}

int af_uploaded_log_rewrite(int dirfd, const char *name,
                            int (*next)(void *ctx, struct af_buf *out), void *ctx, size_t n)
{
        char tmp[256];
        struct af_buf b;
        int fd, r;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        af_buf_init(&b, 0);
        r = af_buf_adds(&b, AF_UPLOADED_LOG_HEADER);
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = next(ctx, &b);
                if (r == 0 && b.len >= CHUNK) {
                        r = write_all(fd, b.ptr, b.len);
                        af_buf_reset(&b);
                }
        }
        if (r == 0)
                r = write_all(fd, b.ptr, b.len);
        af_buf_done(&b);
        return af_journal_commit(dirfd, fd, tmp, name, r);
}
