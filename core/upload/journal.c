/* SPDX-License-Identifier: Apache-2.0 */
/* Durable pending-upload records. See journal.h. */
#include "upload/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"

#define MAGIC "artifuse-journal 1"

void af_journal_rec_done(struct af_journal_rec *rec)
{
        free(rec->path);
        free(rec->bucket);
        free(rec->key);
        free(rec->endpoint);
        free(rec->region);
        free(rec->member);
        free(rec->zip_file_member);
        free(rec->upload_id);
        free(rec->parts);
        free(rec->error);
        free(rec->etag);
        memset(rec, 0, sizeof(*rec));
}

/* Values are percent-encoded: every byte outside printable ASCII, and ' ' '%' '"'. */
static int add_value(struct af_buf *out, const char *v)
{
        static const char hex[] = "0123456789ABCDEF";
        int r = 0;

        for (const unsigned char *p = (const unsigned char *)v; r == 0 && *p; p++) {
                if (*p <= ' ' || *p >= 0x7f || *p == '%' || *p == '"') {
                        char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

                        r = af_buf_add(out, e, 3);
                } else {
                        r = af_buf_addc(out, (char)*p);
                }
        }
        return r;
}

static int field(struct af_buf *out, const char *name, const char *v)
{
        int r;

        if (!v)
                return 0;
        r = af_buf_addf(out, "%s ", name);
        if (r == 0)
                r = add_value(out, v);
        if (r == 0)
                r = af_buf_addc(out, '\n');
        return r;
}

int af_journal_encode(const struct af_journal_rec *rec, struct af_buf *out)
{
        size_t start = out->len;
        int r;

        r = af_buf_addf(out, MAGIC "\n");
        if (r == 0 && rec->op == AF_JOURNAL_DELETE)
                r = field(out, "op", "delete");
        if (r == 0)
                r = field(out, "path", rec->path);
        if (r == 0)
                r = field(out, "bucket", rec->bucket);
        if (r == 0)
                r = field(out, "key", rec->key);
        if (r == 0)
                r = field(out, "endpoint", rec->endpoint);
        if (r == 0)
                r = field(out, "region", rec->region);
        if (r == 0)
                r = field(out, "archive", af_archive_name(rec->archive));
        if (r == 0)
                r = field(out, "member", rec->member);
        if (r == 0)
                r = field(out, "zipmember", rec->zip_file_member);
        if (r == 0)
                r = af_buf_addf(out, "level %d\nstate %s\nsize %" PRIu64 "\nmtime %" PRId64
                                     "\nupdated %lld\n",
                                rec->level, rec->state == AF_JOURNAL_FAILED ? "failed" : "pending",
                                rec->size, rec->mtime_ns, (long long)rec->updated);
        if (r == 0 && rec->upload_id) {
                r = field(out, "upload", rec->upload_id);
                if (r == 0)
                        r = af_buf_addf(out, "partsize %" PRIu64 "\n", rec->part_size);
                if (r == 0 && rec->stream)
                        r = af_buf_adds(out, "stream 1\n");
                for (size_t i = 0; r == 0 && i < rec->nparts; i++) {
                        r = af_buf_addf(out, "part %u ", rec->parts[i].number);
                        if (r == 0)
                                r = add_value(out, rec->parts[i].etag);
                        if (r == 0)
                                r = af_buf_addc(out, '\n');
                        if (r == 0 && rec->parts[i].has_sum)
                                r = af_buf_addf(out, "partsum %u %08" PRIx32 "\n",
                                                rec->parts[i].number, rec->parts[i].sum);
                }
        }
        if (r == 0)
                r = field(out, "error", rec->error);
        if (r == 0)
                r = field(out, "etag", rec->etag);
        if (r == 0)
                r = af_buf_adds(out, "end\n");
        if (r < 0)
                af_buf_truncate(out, start);
        return r;
}

/* Decodes the value [s, s+n) into a new string. */
static char *value(const char *s, size_t n)
{
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%') {
                        if (i + 2 >= n || af_unhex_digit(s[i + 1]) < 0 ||
                            af_unhex_digit(s[i + 2]) < 0) {
                                free(out);
                                return NULL;
                        }
                        *o++ = (char)(af_unhex_digit(s[i + 1]) << 4 | af_unhex_digit(s[i + 2]));
                        i += 2;
                } else {
                        *o++ = s[i];
                }
        }
        *o = '\0';
        return out;
}

static int parse_u64(const char *s, size_t n, uint64_t *ret)
{
        char buf[32], *end;

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (buf[0] == '-')
                return -EINVAL;
        errno = 0;
        *ret = strtoull(buf, &end, 10);
        return errno || *end ? -EINVAL : 0;
}

static int parse_i64(const char *s, size_t n, int64_t *ret)
{
        char buf[32], *end;

        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = '\0';
        errno = 0;
        *ret = strtoll(buf, &end, 10);
        return errno || *end ? -EINVAL : 0;
}

static int add_part(struct af_journal_rec *rec, const char *v, size_t n)
{
        const char *sp = memchr(v, ' ', n);
        struct af_s3_part *p;
        uint64_t num;
        char *etag;

        if (!sp || parse_u64(v, (size_t)(sp - v), &num) < 0 || num < 1 || num > AF_S3_MAX_PARTS)
                return -EINVAL;
        etag = value(sp + 1, n - (size_t)(sp + 1 - v));
        if (!etag || strlen(etag) >= sizeof(p->etag)) {
                free(etag);
                return -EINVAL;
        }
        p = realloc(rec->parts, (rec->nparts + 1) * sizeof(*p));
        if (!p) {
                free(etag);
                return -ENOMEM;
        }
        rec->parts = p;
        memset(&p[rec->nparts], 0, sizeof(*p));
        p[rec->nparts].number = (unsigned)num;
        memcpy(p[rec->nparts].etag, etag, strlen(etag) + 1);
        rec->nparts++;
        free(etag);
        return 0;
}

/* "partsum N HEX": the CRC-32C of part N, which a "part N" line before it named. */
static int add_part_sum(struct af_journal_rec *rec, const char *v, size_t n)
{
        const char *sp = memchr(v, ' ', n);
        char hex[9], *end;
        uint64_t num;
        size_t hl;

        if (!sp || parse_u64(v, (size_t)(sp - v), &num) < 0)
                return -EINVAL;
        hl = n - (size_t)(sp + 1 - v);
        if (hl == 0 || hl > 8)
                return -EINVAL;
        memcpy(hex, sp + 1, hl);
        hex[hl] = '\0';
        for (size_t i = rec->nparts; i-- > 0;) {
                if (rec->parts[i].number == num) {
                        unsigned long x = strtoul(hex, &end, 16);

                        if (*end)
                                return -EINVAL;
                        rec->parts[i].sum = (uint32_t)x;
                        rec->parts[i].has_sum = true;
                        return 0;
                }
        }
        return -EINVAL;
}

int af_journal_decode(const char *data, size_t len, struct af_journal_rec *ret,
                      struct af_buf *err)
{
        struct af_journal_rec rec;
        const char *p = data, *end = data + len;
        bool magic = false, ended = false;
        int r = 0, line = 0;

        memset(&rec, 0, sizeof(rec));
        rec.level = -1;
        while (r == 0 && p < end && !ended) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *sp;
                size_t n, kl, vl;
                char **dst = NULL;

                if (!nl) {
                        r = -EINVAL;
                        (void)af_buf_addf(err, "line %d is not terminated (torn write?)", line + 1);
                        break;
                }
                n = (size_t)(nl - p);
                line++;
                if (!magic) {
                        magic = n == strlen(MAGIC) && memcmp(p, MAGIC, n) == 0;
                        if (!magic) {
                                r = -EINVAL;
                                (void)af_buf_addf(err, "not an artifuse journal record");
                        }
                        p = nl + 1;
                        continue;
                }
                if (n == 3 && memcmp(p, "end", 3) == 0) {
                        ended = true;
                        break;
                }
                sp = memchr(p, ' ', n);
                kl = sp ? (size_t)(sp - p) : n;
                vl = sp ? n - kl - 1 : 0;
                sp = sp ? sp + 1 : p + n;
#define K(name) (kl == sizeof(name) - 1 && memcmp(p, name, kl) == 0)
                if (K("path"))
                        dst = &rec.path;
                else if (K("bucket"))
                        dst = &rec.bucket;
                else if (K("key"))
                        dst = &rec.key;
                else if (K("endpoint"))
                        dst = &rec.endpoint;
                else if (K("region"))
                        dst = &rec.region;
                else if (K("member"))
                        dst = &rec.member;
                else if (K("zipmember"))
                        dst = &rec.zip_file_member;
                else if (K("upload"))
                        dst = &rec.upload_id;
                else if (K("error"))
                        dst = &rec.error;
                else if (K("etag"))
                        dst = &rec.etag;
                if (dst) {
                        free(*dst);
                        *dst = value(sp, vl);
                        if (!*dst)
                                r = -EINVAL;
                } else if (K("op")) {
                        if (vl == 6 && memcmp(sp, "delete", 6) == 0)
                                rec.op = AF_JOURNAL_DELETE;
                        else if (vl == 6 && memcmp(sp, "upload", 6) == 0)
                                rec.op = AF_JOURNAL_UPLOAD;
                        else
                                r = -EINVAL;
                } else if (K("archive")) {
                        if (vl == 4 && memcmp(sp, "none", 4) == 0)
                                rec.archive = AF_ARCHIVE_NONE;
                        else if (vl == 3 && memcmp(sp, "tar", 3) == 0)
                                rec.archive = AF_ARCHIVE_TAR;
                        else if (vl == 3 && memcmp(sp, "zip", 3) == 0)
                                rec.archive = AF_ARCHIVE_ZIP;
                        else if (vl == 7 && memcmp(sp, "default", 7) == 0)
                                rec.archive = AF_ARCHIVE_NONE;
                        else
                                r = -EINVAL;
                } else if (K("state")) {
                        if (vl == 7 && memcmp(sp, "pending", 7) == 0)
                                rec.state = AF_JOURNAL_PENDING;
                        else if (vl == 6 && memcmp(sp, "failed", 6) == 0)
                                rec.state = AF_JOURNAL_FAILED;
                        else
                                r = -EINVAL;
                } else if (K("level")) {
                        int64_t v = 0;

                        r = parse_i64(sp, vl, &v);
                        if (r == 0 && (v < -1 || v > 9))
                                r = -EINVAL;
                        rec.level = (int)v;
                } else if (K("size")) {
                        r = parse_u64(sp, vl, &rec.size);
                } else if (K("partsize")) {
                        r = parse_u64(sp, vl, &rec.part_size);
                } else if (K("mtime")) {
                        r = parse_i64(sp, vl, &rec.mtime_ns);
                } else if (K("updated")) {
                        int64_t v = 0;

                        r = parse_i64(sp, vl, &v);
                        rec.updated = (time_t)v;
                } else if (K("part")) {
                        r = add_part(&rec, sp, vl);
                } else if (K("partsum")) {
                        r = add_part_sum(&rec, sp, vl);
                } else if (K("stream")) {
                        rec.stream = vl == 1 && sp[0] == '1';
                } /* unknown fields are skipped: a newer writer may add some */
#undef K
                if (r < 0 && !err->len)
                        (void)af_buf_addf(err, "line %d: bad value for '%.*s'", line, (int)kl, p);
                p = nl + 1;
        }
        if (r == 0 && !ended) {
                r = -EINVAL;
                (void)af_buf_addf(err, "record is truncated (no end line)");
        }
        if (r == 0 && (!rec.path || !*rec.path || !rec.bucket || !rec.key)) {
                r = -EINVAL;
                (void)af_buf_addf(err, "record lacks path, bucket or key");
        }
        if (r == 0 && (rec.path[0] == '/' || strstr(rec.path, ".."))) {
                r = -EINVAL;
                (void)af_buf_addf(err, "record path escapes the spool");
        }
        if (r < 0) {
                af_journal_rec_done(&rec);
                return r;
        }
        *ret = rec;
        return 0;
}

void af_journal_name(const char *path, char out[40])
{
        uint8_t d[AF_SHA256_LEN];
        char hex[2 * AF_SHA256_LEN + 1];

        af_sha256(path, strlen(path), d);
        af_hex(d, sizeof(d), hex);
        snprintf(out, 40, "%.32s.rec", hex);
}

/* A delete's record is named after its object, so it never replaces the record of an
 * upload of the same name (rm out; echo new > out keeps both until each is done). */
static void delete_name(const char *bucket, const char *key, char out[40])
{
        struct af_buf id;

        af_buf_init(&id, 0);
        if (af_buf_addf(&id, "delete\n%s\n%s", bucket, key) < 0)
                af_journal_name(key, out); /* OOM: still a stable name */
        else
                af_journal_name(af_buf_str(&id), out);
        af_buf_done(&id);
}

void af_journal_rec_name(const struct af_journal_rec *rec, char out[40])
{
        if (rec->op == AF_JOURNAL_DELETE)
                delete_name(rec->bucket, rec->key, out);
        else
                af_journal_name(rec->path, out);
}

int af_journal_remove_delete(int dirfd, const char *bucket, const char *key)
{
        char name[40];

        delete_name(bucket, key, name);
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int af_journal_write(int dirfd, const struct af_journal_rec *rec)
{
        char name[40], tmp[48];
        struct af_buf b;
        size_t off = 0;
        int fd, r;

        af_buf_init(&b, AF_JOURNAL_MAX);
        r = af_journal_encode(rec, &b);
        if (r < 0)
                goto out;
        af_journal_rec_name(rec, name);
        snprintf(tmp, sizeof(tmp), "%s.tmp", name);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = -errno;
                goto out;
        }
        while (off < b.len) {
                ssize_t n = write(fd, b.ptr + off, b.len - off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                off += (size_t)n;
        }
        /* The data must be on disk before the name points at it. */
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                r = -errno;
        if (r == 0 && fsync(dirfd) < 0)
                r = -errno;
        if (r < 0)
                (void)unlinkat(dirfd, tmp, 0);
out:
        af_buf_done(&b);
        return r;
}

int af_journal_remove(int dirfd, const char *path)
{
        char name[40];

        af_journal_name(path, name);
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_all(int dirfd, const char *name, struct af_buf *out)
{
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        int r;

        if (fd < 0)
                return -errno;
        r = af_buf_read_fd(out, fd);
        close(fd);
        return r;
}

int af_journal_scan(int dirfd, bool quarantine, void (*fn)(void *ctx, struct af_journal_rec *rec),
                    void (*bad)(void *ctx, const char *name, const char *why), void *ctx)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        char **names = NULL;
        size_t n = 0, a = 0;
        struct dirent *de;
        int count = 0;

        if (!d) {
                int e = -errno;

                if (fd >= 0)
                        close(fd);
                return e;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);

                if (l < 5 || strcmp(de->d_name + l - 4, ".rec") != 0)
                        continue;
                if (n == a) {
                        char **p = realloc(names, (a = a ? a * 2 : 64) * sizeof(*p));

                        if (!p)
                                break;
                        names = p;
                }
                names[n] = strdup(de->d_name);
                if (names[n])
                        n++;
        }
        closedir(d);
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
                struct af_journal_rec rec;
                struct af_buf data, err;
                int r;

                af_buf_init(&data, AF_JOURNAL_MAX);
                af_buf_init(&err, 512);
                r = read_all(dirfd, names[i], &data);
                if (r < 0)
                        (void)af_buf_addf(&err, "cannot read it: %s", strerror(-r));
                else
                        r = af_journal_decode(data.ptr ? data.ptr : "", data.len, &rec, &err);
                if (r < 0) {
                        char aside[300];

                        /* Kept for a person to look at, out of the way of the next scan. */
                        snprintf(aside, sizeof(aside), "%s.corrupt", names[i]);
                        if (quarantine)
                                (void)renameat(dirfd, names[i], dirfd, aside);
                        if (bad)
                                bad(ctx, names[i], af_buf_str(&err));
                } else {
                        count++;
                        fn(ctx, &rec);
                        af_journal_rec_done(&rec);
                }
                af_buf_done(&data);
                af_buf_done(&err);
                free(names[i]);
        }
        free(names);
        return count;
}

void af_journal_done(int dirfd, const char *path, const char *key, uint64_t size,
                     const char *etag)
{
        struct af_buf line;
        int fd;

        af_buf_init(&line, 16384);
        if (af_buf_addf(&line, "%lld %" PRIu64 " ", (long long)time(NULL), size) < 0 ||
            add_value(&line, etag && *etag ? etag : "-") < 0 || af_buf_addc(&line, ' ') < 0 ||
            add_value(&line, path) < 0 || af_buf_addc(&line, ' ') < 0 ||
            add_value(&line, key) < 0 || af_buf_addc(&line, '\n') < 0)
                goto out;
        fd = openat(dirfd, "done.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                /* One write per line: O_APPEND keeps concurrent lines whole. */
                (void)!write(fd, line.ptr, line.len);
                close(fd);
        }
out:
        af_buf_done(&line);
}

int af_journal_done_count(int dirfd, uint64_t *ret_files, uint64_t *ret_bytes)
{
        struct af_buf data;
        uint64_t files = 0, bytes = 0;
        const char *p, *end;
        int r;

        af_buf_init(&data, (size_t)1 << 30);
        r = read_all(dirfd, "done.log", &data);
        if (r == -ENOENT)
                r = 0;
        for (p = af_buf_str(&data), end = p + data.len; r == 0 && p < end;) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                unsigned long long t, sz;

                if (!nl)
                        break; /* a torn last line */
                if (sscanf(p, "%llu %llu ", &t, &sz) == 2) {
                        files++;
                        bytes += sz;
                }
                p = nl + 1;
        }
        af_buf_done(&data);
        if (r < 0)
                return r;
        *ret_files = files;
        *ret_bytes = bytes;
        return 0;
}
