/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload of a file, or a directory, as an Argo archive (tar.gz or zip): the archive is
 * built while it is sent, so it is never whole in memory nor on disk; at most one part of it
 * waits in a buffer. Its size is unknown until the end: a PutObject if it fits one part,
 * else a multipart upload whose parts are retried in place (retry.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "upload/archive.h"
#include "upload/queue_int.h"

/* An archive being built and sent, whose length is unknown until it is complete: PutObject
 * if it fits one part, else a multipart upload started when it outgrows one. */
struct archive_up {
        struct af_queue *q;
        struct af_s3_client *s3;
        const char *bucket;
        const char *key;
        uint64_t part;        /* part size */
        struct af_buf buf;    /* at most one part waiting to go */
        char upload_id[1024]; /* "" until the archive outgrows one part */
        struct af_s3_part *parts;
        size_t nparts;
        size_t aparts;
        struct af_s3_error *err;
};

static int flush_part(struct archive_up *u, size_t len)
{
        struct af_s3_part *p;
        int r = 0;

        if (!u->upload_id[0]) {
                r = u->q->s3->create_multipart(u->s3, u->bucket, u->key, u->upload_id,
                                               sizeof(u->upload_id), u->err);
                if (r < 0)
                        return r;
        }
        if (u->nparts == u->aparts) {
                size_t a = u->aparts ? u->aparts * 2 : 16;

                if (a > AF_S3_MAX_PARTS)
                        return -EFBIG;
                p = realloc(u->parts, a * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                u->parts = p;
                u->aparts = a;
        }
        for (unsigned attempt = 0;; attempt++) {
                r = u->q->s3->upload_part_mem(u->s3, u->bucket, u->key, u->upload_id,
                                              (unsigned)u->nparts + 1, u->buf.ptr, len,
                                              &u->parts[u->nparts], u->err);
                if (!af_queue_part_retry(u->q, r, attempt + 1))
                        break;
                af_retry_pause(&u->q->retry_part, attempt);
        }
        if (r < 0)
                return r;
        u->nparts++;
        memmove(u->buf.ptr, u->buf.ptr + len, u->buf.len - len);
        af_buf_truncate(&u->buf, u->buf.len - len);
        return 0;
}

static int sink(void *ctx, const void *data, size_t n)
{
        struct archive_up *u = ctx;
        int r = af_buf_add(&u->buf, data, n);

        while (r == 0 && u->buf.len >= u->part)
                r = flush_part(u, (size_t)u->part);
        return r;
}

static int finish(struct archive_up *u, struct af_s3_put_result *res)
{
        int r;

        if (!u->upload_id[0])
                return u->q->s3->put_object_mem(u->s3, u->bucket, u->key, u->buf.ptr,
                                                u->buf.len, res, u->err);
        r = u->buf.len ? flush_part(u, u->buf.len) : 0;
        if (r == 0)
                r = u->q->s3->complete_multipart(u->s3, u->bucket, u->key, u->upload_id, u->parts,
                                                 u->nparts, res, u->err);
        return r;
}

/* The file (or directory) as an Argo archive at <key>, built while it is sent. */
int af_archive_put(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                   const char *key, int fd, const struct stat *st, const struct fmt *f,
                   struct af_s3_put_result *res, struct af_s3_error *err)
{
        struct af_tar_entry e = { .name = f->member,
                                  .mode = st->st_mode & 07777,
                                  .uid = st->st_uid,
                                  .gid = st->st_gid,
                                  .mtime = st->st_mtime,
                                  .size = (uint64_t)st->st_size };
        struct archive_up u = { .q = q, .s3 = s3, .bucket = bucket, .key = key, .err = err };
        bool dir = S_ISDIR(st->st_mode);
        struct af_s3_error aerr;
        int r;

        /* Compression never grows data by more than a little, so the file's size bounds the
         * parts. A directory's size is unknown: its archive may use up to 10,000 default
         * parts. */
        u.part = af_s3_part_size(dir ? 0 : (uint64_t)st->st_size + (1 << 20), q->cfg.part_size);
        af_buf_init(&u.buf, (size_t)u.part + 256 * 1024);
        if (f->archive == AF_ARCHIVE_ZIP)
                r = af_zip_stream(fd, dir || !f->zip_file_member ? f->member : f->zip_file_member,
                                  f->level, sink, &u);
        else if (dir)
                r = af_tgz_stream_dir(fd, f->member, f->level, sink, &u);
        else
                r = af_tgz_stream(fd, &e, f->level, sink, &u);
        if (r == 0)
                r = finish(&u, res);
        if (r < 0 && u.upload_id[0] &&
            q->s3->abort_multipart(s3, bucket, key, u.upload_id, &aerr) < 0)
                af_log_warn("op=abort_multipart bucket=%s key=%s upload_id=%s http_status=%d "
                            "s3_code=%s",
                            af_q(bucket), af_q(key), af_q(u.upload_id), aerr.http_status,
                            af_q(aerr.code));
        if (r < 0 && !err->code[0] && !err->http_status) {
                snprintf(err->code, sizeof(err->code), "ArchiveError");
                snprintf(err->message, sizeof(err->message), "building the %s: %s",
                         f->archive == AF_ARCHIVE_ZIP ? "zip" : "tar.gz", strerror(-r));
        }
        free(u.parts);
        af_buf_done(&u.buf);
        return r;
}
