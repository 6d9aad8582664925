/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attempts that act on an object already in S3 rather than send a file: the server-side
 * copy of a renamed file (CopyObject from the key its old name went up as, or above 5 GiB a
 * multipart copy: UploadPartCopy parts, in multipart.c) and the delete of
 * an unlinked file's object (--delete-on-unlink). Both act only on the object this mount put
 * (its ETag); anything else is left alone: the copy falls back to an upload from the spool,
 * the delete is skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

int af_copy_source_check(struct af_queue *q, struct af_s3_client *s3, const struct copy_src *c,
                         uint64_t size, struct af_s3_error *err)
{
        struct af_s3_head_result head;
        int r;

        r = q->s3->head_object(s3, c->bucket, c->key, &head, err);
        if (r < 0)
                return r;
        if ((c->etag[0] && strcmp(head.etag, c->etag) != 0) || head.size != size) {
                snprintf(err->code, sizeof(err->code), "SourceChanged");
                snprintf(err->message, sizeof(err->message),
                         "the source object is no longer the one this mount put (ETag %s)",
                         head.etag);
                return -ESTALE;
        }
        return 0;
}

/*
 * CopyObject, making sure it copies what we put: S3 refuses a source whose ETag changed
 * (x-amz-copy-source-if-match), but some servers ignore that header (Ceph radosgw 16 does),
 * so the source is looked at first, and a copy of a single-part object (whose ETag is its
 * MD5, kept by the copy) must come out with the same ETag. -ESTALE otherwise: upload.
 */
static int copy_checked(struct af_queue *q, struct af_s3_client *s3, const struct copy_src *c,
                        const struct job_desc *t, uint64_t size, struct af_s3_put_result *res,
                        struct af_s3_error *err)
{
        const struct af_s3_object_opts *o = q->cfg.s3->object;
        /* With SSE-KMS an ETag is not the MD5 of the data. */
        bool md5_etags = !(o && o->sse && strcmp(o->sse, "aws:kms") == 0);
        int r;

        r = af_copy_source_check(q, s3, c, size, err);
        if (r < 0)
                return r;
        r = q->s3->copy_object(s3, c->bucket, c->key, c->etag, t->bucket, t->key, size, res,
                               err);
        if (r == 0 && md5_etags && c->etag[0] && !strchr(c->etag, '-') &&
            strcmp(res->etag, c->etag) != 0) {
                snprintf(err->code, sizeof(err->code), "SourceChanged");
                snprintf(err->message, sizeof(err->message),
                         "the copy has ETag %s, not the source's %s", res->etag, c->etag);
                return -ESTALE;
        }
        return r;
}

/* Above this a copy is a multipart copy: CopyObject copies at most 5 GiB, which is also the
 * default (ARTIFUSE_COPY_PART_THRESHOLD lowers it, for tests). */
static uint64_t part_copy_threshold(const struct af_queue *q)
{
        uint64_t t = q->cfg.copy_part_threshold;

        return t && t < AF_S3_MAX_PART ? t : AF_S3_MAX_PART;
}

/* The copy itself: CopyObject, or UploadPartCopy parts for a source above the threshold (an
 * empty file is always one CopyObject). *@ret_nparts: 0 for CopyObject, else the parts. */
static int copy_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                     uint64_t size, const struct stat *st, struct af_s3_put_result *res,
                     size_t *ret_nparts, struct af_s3_error *err)
{
        int r;

        *ret_nparts = 0;
        if (size == 0 || size <= part_copy_threshold(q))
                return copy_checked(q, s3, t->copy, t, size, res, err);
        r = af_copy_source_check(q, s3, t->copy, size, err);
        if (r == 0)
                r = af_multipart_copy(q, s3, t, st, res, ret_nparts, err);
        return r;
}

/*
 * A renamed (or hard-linked) file that is still exactly what went up under its old name
 * (same inode, size and mtime): CopyObject from the old key, or a multipart copy above the
 * threshold, instead of sending the bytes again. 0 when copied; otherwise the caller uploads
 * from the spool (-ECANCELED: shutting down, do not).
 */
int af_copy_try(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                const struct stat *st, struct af_s3_put_result *res, struct af_s3_error *err)
{
        const struct copy_src *c = t->copy;
        struct af_s3_error cerr;
        struct af_buf msg;
        uint64_t t0 = af_clock_mono_ms();
        size_t nparts;
        int r;

        if (st->st_dev != c->dev || st->st_ino != c->ino || (uint64_t)st->st_size != c->size ||
            af_mtime_ns(st) != c->mtime_ns) {
                af_log_info("op=copy status=skipped path=%s src_key=%s key=%s msg=\"the file "
                            "changed since it went up; uploading it\"",
                            af_q(t->relpath), af_q(c->key), af_q(t->key));
                return -ESTALE;
        }
        memset(&cerr, 0, sizeof(cerr));
        r = copy_once(q, s3, t, (uint64_t)st->st_size, st, res, &nparts, &cerr);
        if (r == 0) {
                af_metrics_copy_done(q->cfg.metrics);
                af_log_info("op=copy status=done path=%s src_bucket=%s src_key=%s bucket=%s "
                            "key=%s bytes=%llu ms=%llu etag=%s request=%s parts=%zu",
                            af_q(t->relpath), af_q(c->bucket), af_q(c->key), af_q(t->bucket),
                            af_q(t->key), (unsigned long long)st->st_size,
                            (unsigned long long)(af_clock_mono_ms() - t0), af_q(res->etag),
                            nparts ? "UploadPartCopy" : "CopyObject", nparts ? nparts : 1);
                return 0;
        }
        if (r == -ECANCELED || atomic_load(&q->cancel)) {
                *err = cerr;
                return -ECANCELED;
        }
        af_buf_init(&msg, 1024);
        if (r == -EFBIG)
                (void)af_buf_adds(&msg, "over CopyObject's 5 GiB");
        else if (r == -EOPNOTSUPP && !cerr.http_status) /* ours, not a server's 501 */
                (void)af_buf_adds(&msg, "--no-overwrite: copies cannot be conditional");
        else if (cerr.http_status || cerr.code[0])
                af_s3_error_format(&cerr, &msg);
        else
                (void)af_buf_adds(&msg, strerror(-r));
        af_log_warn("op=copy status=fallback path=%s src_bucket=%s src_key=%s bucket=%s key=%s "
                    "http_status=%d s3_code=%s request_id=%s err=%s msg=\"uploading from the "
                    "spool instead\"",
                    af_q(t->relpath), af_q(c->bucket), af_q(c->key), af_q(t->bucket),
                    af_q(t->key), cerr.http_status, af_q(cerr.code), af_q(cerr.request_id),
                    af_q(af_buf_str(&msg)));
        af_buf_done(&msg);
        return r;
}

/*
 * One attempt: the object goes only if it is still the one we put (its ETag), so a key
 * someone wrote since, by this mount or another writer, is left alone. 1 when left alone.
 */
int af_delete_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                   struct af_s3_error *err)
{
        struct af_s3_head_result head;
        int r;

        memset(err, 0, sizeof(*err));
        r = q->s3->head_object(s3, t->bucket, t->key, &head, err);
        if (r == -ENOENT)
                return 0; /* nothing there: done */
        if (r < 0)
                return r;
        if (t->etag && t->etag[0] && strcmp(head.etag, t->etag) != 0)
                return 1;
        return q->s3->delete_object(s3, t->bucket, t->key, err);
}
