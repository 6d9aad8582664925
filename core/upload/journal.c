/* SPDX-License-Identifier: Apache-2.0 */
/* Durable pending-upload records. See journal.h. */
#include "upload/journal.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crypto.h"
#include "base/dir.h"
#include "base/mem.h"

#define MAGIC "artifuse-journal 1"

void af_journal_rec_done(struct af_journal_rec *rec)
{
        AF_FREE_ALL(rec->path, rec->bucket, rec->key, rec->endpoint, rec->region, rec->member,
                    rec->zip_file_member, rec->upload_id, rec->parts, rec->error, rec->etag);
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

/* The "op" line's values, by enum af_journal_op (an upload's record has none). */
static const char *const op_names[] = {
        [AF_JOURNAL_UPLOAD] = "upload",
        [AF_JOURNAL_DELETE] = "delete",
        [AF_JOURNAL_ABORT] = "abort",
};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

int af_journal_encode(const struct af_journal_rec *rec, struct af_buf *out)
{
        /* The leading fields, in the order records have always had them; NULL: left out. */
        const char *const head[][2] = {
                { "op", rec->op == AF_JOURNAL_UPLOAD ? NULL : op_names[rec->op] },
                { "path", rec->path },
                { "bucket", rec->bucket },
                { "key", rec->key },
                { "endpoint", rec->endpoint },
                { "region", rec->region },
                { "archive", af_archive_name(rec->archive) },
                { "member", rec->member },
                { "zipmember", rec->zip_file_member },
        };
        size_t start = out->len;
        int r;

        r = af_buf_addf(out, MAGIC "\n");
        for (size_t i = 0; r == 0 && i < sizeof(head) / sizeof(head[0]); i++)
                r = field(out, head[i][0], head[i][1]);
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

/* Copies @s[0..n) into @buf as a C string; false if it is too long or empty for a number. */
static bool number_text(const char *s, size_t n, char buf[32])
{
        if (n == 0 || n >= 32)
                return false;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return true;
}

static int parse_u64(const char *s, size_t n, uint64_t *ret)
{
        char buf[32], *end;

        if (!number_text(s, n, buf) || buf[0] == '-')
                return -EINVAL;
        errno = 0;
        *ret = strtoull(buf, &end, 10);
        return errno || *end ? -EINVAL : 0;
}

static int parse_i64(const char *s, size_t n, int64_t *ret)
{
        char buf[32], *end;

        if (!number_text(s, n, buf))
                return -EINVAL;
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

/* Whether @s[0..n) is the word @w. */
static bool is(const char *s, size_t n, const char *w)
{
        return n == strlen(w) && memcmp(s, w, n) == 0;
}

/* The fields whose value is a string, each where it goes in a record. */
static const struct {
        const char *name;
        size_t off;
} string_fields[] = {
        { "path", offsetof(struct af_journal_rec, path) },
        { "bucket", offsetof(struct af_journal_rec, bucket) },
        { "key", offsetof(struct af_journal_rec, key) },
        { "endpoint", offsetof(struct af_journal_rec, endpoint) },
        { "region", offsetof(struct af_journal_rec, region) },
        { "member", offsetof(struct af_journal_rec, member) },
        { "zipmember", offsetof(struct af_journal_rec, zip_file_member) },
        { "upload", offsetof(struct af_journal_rec, upload_id) },
        { "error", offsetof(struct af_journal_rec, error) },
        { "etag", offsetof(struct af_journal_rec, etag) },
};

/* Sets the field @k[0..kl) of @rec from @v[0..vl). Unknown fields are skipped: a newer
 * writer may add some. -EINVAL for a bad value. */
static int decode_field(struct af_journal_rec *rec, const char *k, size_t kl, const char *v,
                        size_t vl)
{
        int64_t x = 0;
        int r;

        for (size_t i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++) {
                char **dst = (char **)((char *)rec + string_fields[i].off);

                if (!is(k, kl, string_fields[i].name))
                        continue;
                free(*dst);
                *dst = value(v, vl);
                return *dst ? 0 : -EINVAL;
        }
        if (is(k, kl, "op")) {
                size_t i = 0;

                while (i < NOPS && !is(v, vl, op_names[i]))
                        i++;
                if (i == NOPS)
                        return -EINVAL;
                rec->op = (enum af_journal_op)i;
        } else if (is(k, kl, "archive")) {
                if (is(v, vl, "none") || is(v, vl, "default"))
                        rec->archive = AF_ARCHIVE_NONE;
                else if (is(v, vl, "tar"))
                        rec->archive = AF_ARCHIVE_TAR;
                else if (is(v, vl, "zip"))
                        rec->archive = AF_ARCHIVE_ZIP;
                else
                        return -EINVAL;
        } else if (is(k, kl, "state")) {
                if (!is(v, vl, "pending") && !is(v, vl, "failed"))
                        return -EINVAL;
                rec->state = is(v, vl, "failed") ? AF_JOURNAL_FAILED : AF_JOURNAL_PENDING;
        } else if (is(k, kl, "level")) {
                r = parse_i64(v, vl, &x);
                if (r == 0 && (x < -1 || x > 9))
                        r = -EINVAL;
                rec->level = (int)x;
                return r;
        } else if (is(k, kl, "size")) {
                return parse_u64(v, vl, &rec->size);
        } else if (is(k, kl, "partsize")) {
                return parse_u64(v, vl, &rec->part_size);
        } else if (is(k, kl, "mtime")) {
                return parse_i64(v, vl, &rec->mtime_ns);
        } else if (is(k, kl, "updated")) {
                r = parse_i64(v, vl, &x);
                rec->updated = (time_t)x;
                return r;
        } else if (is(k, kl, "part")) {
                return add_part(rec, v, vl);
        } else if (is(k, kl, "partsum")) {
                return add_part_sum(rec, v, vl);
        } else if (is(k, kl, "stream")) {
                rec->stream = vl == 1 && v[0] == '1';
        }
        return 0;
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
                r = decode_field(&rec, p, kl, sp, vl);
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
        if (r == 0 && rec.op == AF_JOURNAL_ABORT && !rec.upload_id) {
                r = -EINVAL;
                (void)af_buf_addf(err, "abort record lacks its upload id");
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
 * upload of the same name (rm out; echo new > out keeps both until each is done); an
 * abort's after its multipart upload (@upload_id non-NULL), so several can wait at once. */
static void object_name(const char *what, const char *bucket, const char *key,
                        const char *upload_id, char out[40])
{
        struct af_buf id;

        af_buf_init(&id, 0);
        if (af_buf_addf(&id, "%s\n%s\n%s", what, bucket, key) < 0 ||
            (upload_id && af_buf_addf(&id, "\n%s", upload_id) < 0))
                af_journal_name(upload_id ? upload_id : key, out); /* OOM: a stable name */
        else
                af_journal_name(af_buf_str(&id), out);
        af_buf_done(&id);
}

static void delete_name(const char *bucket, const char *key, char out[40])
{
        object_name("delete", bucket, key, NULL, out);
}

void af_journal_rec_name(const struct af_journal_rec *rec, char out[40])
{
        if (rec->op == AF_JOURNAL_DELETE)
                delete_name(rec->bucket, rec->key, out);
        else if (rec->op == AF_JOURNAL_ABORT)
                object_name("abort", rec->bucket, rec->key, rec->upload_id, out);
        else
                af_journal_name(rec->path, out);
}

int af_journal_remove_delete(int dirfd, const char *bucket, const char *key)
{
        char name[40];

        delete_name(bucket, key, name);
        return af_journal_unlink(dirfd, name);
}

int af_journal_store(int dirfd, const char *name, const void *data, size_t len)
{
        char tmp[48];
        size_t off = 0;
        int fd, r = 0;

        snprintf(tmp, sizeof(tmp), "%s.tmp", name);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t n = write(fd, (const char *)data + off, len - off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                off += (size_t)n;
        }
        return af_journal_commit(dirfd, fd, tmp, name, r);
}

int af_journal_commit(int dirfd, int fd, const char *tmp, const char *name, int r)
{
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
        return r;
}

/* All of @len bytes of @data to @fd from offset 0. */
static int write_all(int fd, const void *data, size_t len)
{
        size_t off = 0;

        while (off < len) {
                ssize_t n = pwrite(fd, (const char *)data + off, len - off, (off_t)off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                off += (size_t)n;
        }
        return 0;
}

int af_journal_store_spare(int dirfd, const char *spare, const char *name, const void *data,
                           size_t len)
{
        int fd = openat(dirfd, spare, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        int r;

        if (fd < 0)
                return af_journal_store(dirfd, name, data, len);
        r = write_all(fd, data, len);
        if (r == 0 && ftruncate(fd, (off_t)len) < 0)
                r = -errno;
        /* On failure the spare is gone: the record is then written the usual way. */
        if (af_journal_commit(dirfd, fd, spare, name, r) == 0)
                return 0;
        return af_journal_store(dirfd, name, data, len);
}

int af_journal_retire(int dirfd, const char *name, const char *spare)
{
        if (renameat(dirfd, name, dirfd, spare) == 0)
                return 1;
        return errno == ENOENT ? 0 : -errno;
}

void af_journal_spare_name(unsigned i, char *out)
{
        snprintf(out, 40, "spare-%u", i);
}

int af_journal_write(int dirfd, const struct af_journal_rec *rec)
{
        char name[40];
        struct af_buf b;
        int r;

        af_buf_init(&b, AF_JOURNAL_MAX);
        r = af_journal_encode(rec, &b);
        if (r == 0) {
                af_journal_rec_name(rec, name);
                r = af_journal_store(dirfd, name, b.ptr, b.len);
        }
        af_buf_done(&b);
        return r;
}

int af_journal_unlink(int dirfd, const char *name)
{
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int af_journal_remove(int dirfd, const char *path)
{
        char name[40];

        af_journal_name(path, name);
        return af_journal_unlink(dirfd, name);
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

/* A record whose writer died between writing X.rec.tmp and renaming it to X.rec: complete
 * (it decodes) it is the newest state and takes its place, torn it is dropped. */
static void settle_tmp(int dirfd, const char *tmp)
{
        struct af_journal_rec rec;
        struct af_buf data, err;
        char name[300];
        size_t l = strlen(tmp) - 4;

        if (l >= sizeof(name))
                return;
        memcpy(name, tmp, l);
        name[l] = '\0';
        af_buf_init(&data, AF_JOURNAL_MAX);
        af_buf_init(&err, 512);
        if (read_all(dirfd, tmp, &data) == 0 &&
            af_journal_decode(data.ptr ? data.ptr : "", data.len, &rec, &err) == 0) {
                af_journal_rec_done(&rec);
                (void)renameat(dirfd, tmp, dirfd, name);
        } else {
                (void)unlinkat(dirfd, tmp, 0);
        }
        af_buf_done(&data);
        af_buf_done(&err);
}

static void settle_tmps(int dirfd)
{
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        struct dirent *de;

        if (!d) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);

                if (l > 8 && strcmp(de->d_name + l - 8, ".rec.tmp") == 0)
                        settle_tmp(dirfd, de->d_name);
        }
        closedir(d);
}

/* A record's file name: "<name>.rec". */
static bool is_record(const char *name)
{
        size_t l = strlen(name);

        return l >= 5 && strcmp(name + l - 4, ".rec") == 0;
}

int af_journal_scan(int dirfd, bool quarantine, void (*fn)(void *ctx, struct af_journal_rec *rec),
                    void (*bad)(void *ctx, const char *name, const char *why), void *ctx)
{
        char **names = NULL;
        size_t n = 0;
        int count = 0, r;

        if (quarantine) /* a mount or drain owns the journal: finish what a crash left */
                settle_tmps(dirfd);
        r = af_dir_sorted_names(dirfd, is_record, &names, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                struct af_journal_rec rec;
                struct af_buf data, err;

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
        }
        af_dir_names_free(names, n);
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

int af_journal_encode_value(struct af_buf *out, const char *v)
{
        return add_value(out, v);
}

char *af_journal_decode_value(const char *s, size_t n)
{
        return value(s, n);
}
