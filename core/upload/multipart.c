/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One multipart upload of a spool file: CreateMultipartUpload (or the upload a journal
 * record or a stream left, with the parts S3 already holds), the parts on up to
 * part_concurrency threads (each with its own connection), Complete, and on failure Abort,
 * so no storage is left billed. Each request is retried in place (retry.h); the journal
 * record keeps the upload id and the finished parts, so a restart sends only the rest.
 *
 * A multipart copy (a renamed file over the CopyObject limit) is the same machine with
 * UploadPartCopy from the object the file already went up as in place of UploadPart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "upload/queue_int.h"

/*
 * Drop-behind: a part that is in S3 has its pages written out and let go, so a large file
 * passes through a few parts' worth of page cache instead of filling it with pages that will
 * not be read again; the writer's next pages reuse them. (Fresh pages are not free: in a VM
 * whose host takes free guest memory back, each costs a host page fault, ~10 ms per MiB
 * here.) The data is written back either way; this only does it now rather than later.
 */
static void drop_behind(int fd, uint64_t off, uint64_t len)
{
        (void)sync_file_range(fd, (off_t)off, (off_t)len,
                              SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                      SYNC_FILE_RANGE_WAIT_AFTER);
        (void)posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
}

/* A retryable failure is tried again here, AF_RETRY_IN_PLACE times in all (resending a part
 * is cheaper than the file), and for a stream's part (@s) only while the stream is open. */
int af_multipart_send_part(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                           const char *key, const char *upload_id, unsigned num, int fd,
                           uint64_t off, uint64_t len, const struct af_stream *s,
                           struct af_s3_part *ret, struct af_s3_error *err)
{
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = q->s3->upload_part_fd(s3, bucket, key, upload_id, num, fd, off, len, ret, err);
                if (r == 0)
                        drop_behind(fd, off, len);
                if (!af_queue_part_retry(q, r, attempt + 1) ||
                    (s && !af_stream_is_open(q, s)))
                        return r;
                af_log_debug("op=upload_part key=%s part=%u attempt=%u err=%s", af_q(key), num,
                             attempt + 1, af_q(err->code));
                af_retry_pause(&q->retry_part, attempt);
        }
}

/* UploadPartCopy of bytes [@off, @off + @len) of the copy source as part @num, retried in
 * place like a part sent from the spool. */
static int copy_part(struct mpu *m, struct af_s3_client *s3, unsigned num, uint64_t off,
                     uint64_t len, struct af_s3_part *ret, struct af_s3_error *err)
{
        const struct copy_src *c = m->t->copy;
        const struct af_s3_copy_src src = { .bucket = c->bucket, .key = c->key, .etag = c->etag,
                                            .first = off, .last = off + len - 1 };
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = m->q->s3->upload_part_copy(s3, m->bucket, m->key, m->upload_id, num, &src,
                                               ret, err);
                if (!af_queue_part_retry(m->q, r, attempt + 1))
                        return r;
                af_log_debug("op=upload_part_copy key=%s part=%u attempt=%u err=%s", af_q(m->key),
                             num, attempt + 1, af_q(err->code));
                af_retry_pause(&m->q->retry_part, attempt);
        }
}

/* Journals the upload id and the parts finished so far, so a restart sends only the rest. */
static void mpu_record(struct mpu *m)
{
        struct mpu_progress mp = { .upload_id = m->upload_id,
                                   .size = m->size,
                                   .mtime_ns = m->mtime_ns,
                                   .part_size = m->part,
                                   .parts = m->parts,
                                   .nparts = m->nparts };

        pthread_mutex_lock(&m->q->lock);
        pthread_mutex_lock(&m->lock); /* lock order: q->lock, then m->lock */
        af_record_put_locked(m->q, m->t->relpath, m->bucket, m->key, &m->t->f, AF_JOURNAL_PENDING,
                             NULL, &mp);
        pthread_mutex_unlock(&m->lock);
        pthread_mutex_unlock(&m->q->lock);
        af_record_flush(m->q);
}

/* Sends parts until none are left or one has failed (af_multipart_send_part() retries each). */
static void mpu_send(struct mpu *m, struct af_s3_client *s3)
{
        struct af_s3_error err;
        struct af_s3_part done;

        for (;;) {
                size_t i;
                uint64_t off, len;
                int r;

                pthread_mutex_lock(&m->lock);
                i = m->locked.next++;
                r = m->locked.err;
                pthread_mutex_unlock(&m->lock);
                if (r || i >= m->nparts)
                        return;
                if (m->parts[i].number)
                        continue; /* finished before a restart (ListParts said so) */
                off = (uint64_t)i * m->part;
                len = m->size - off < m->part ? m->size - off : m->part;
                if (m->copy)
                        r = copy_part(m, s3, (unsigned)i + 1, off, len, &done, &err);
                else
                        r = af_multipart_send_part(m->q, s3, m->bucket, m->key, m->upload_id,
                                                   (unsigned)i + 1, m->fd, off, len, NULL, &done,
                                                   &err);
                if (r == 0) {
                        pthread_mutex_lock(&m->lock);
                        m->parts[i] = done;
                        pthread_mutex_unlock(&m->lock);
                }
                if (r < 0) {
                        pthread_mutex_lock(&m->lock);
                        if (!m->locked.err) {
                                m->locked.err = r;
                                m->locked.s3err = err;
                        }
                        pthread_mutex_unlock(&m->lock);
                        return;
                }
                mpu_record(m);
        }
}

static void *mpu_thread(void *arg)
{
        struct mpu *m = arg;
        struct af_s3_client *s3 = af_queue_client_new(m->q);

        if (s3)
                mpu_send(m, s3); /* else the calling thread sends everything */
        af_queue_client_free(m->q, s3);
        return NULL;
}

/* The CRC-32C the journal recorded for part @num of @t's old upload (-1: none). */
static int64_t journaled_sum(const struct job_desc *t, unsigned num)
{
        for (size_t i = 0; i < t->resume.ndone; i++)
                if (t->resume.done[i].number == num && t->resume.done[i].has_sum)
                        return t->resume.done[i].sum;
        return -1;
}

/* Whether bytes [@off, @off + @len) of @fd have CRC-32C @sum (< 0: unknown, so no). */
static bool file_holds(int fd, uint64_t off, uint64_t len, int64_t sum)
{
        size_t cap = 1 << 20;
        char *buf = sum < 0 ? NULL : malloc(cap);
        uint32_t crc = 0;
        bool ok = buf != NULL;

        while (ok && len) {
                ssize_t n = pread(fd, buf, len < cap ? (size_t)len : cap, (off_t)off);

                if (n <= 0) {
                        ok = false;
                        break;
                }
                crc = af_crc32c(crc, buf, (size_t)n);
                off += (uint64_t)n;
                len -= (uint64_t)n;
        }
        free(buf);
        return ok && crc == (uint32_t)sum;
}

/* Marks the parts S3 already holds for @t's old upload; false if it cannot be resumed. */
static bool resume_parts(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                         struct mpu *m)
{
        const struct resume_hint *h = &t->resume;
        struct af_s3_part *listed = NULL;
        uint64_t *sizes = NULL;
        struct af_s3_error err;
        size_t n = 0, kept = 0;
        bool ok = false;

        if (h->part_size != m->part ||
            (!h->stream && (h->size != m->size || h->mtime_ns != m->mtime_ns))) {
                af_log_info("op=upload status=restart path=%s msg=\"file changed since the "
                            "interrupted upload; starting over\"",
                            af_q(t->relpath));
                goto out;
        }
        if (q->s3->list_parts(s3, m->bucket, m->key, h->upload_id, &listed, &sizes, &n, &err) < 0) {
                af_log_info("op=upload status=restart path=%s s3_code=%s msg=\"the interrupted "
                            "upload cannot be listed; starting over\"",
                            af_q(t->relpath), af_q(err.code));
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned num = listed[i].number;
                uint64_t off, len;

                if (num < 1 || num > m->nparts)
                        continue;
                off = (uint64_t)(num - 1) * m->part;
                len = m->size - off < m->part ? m->size - off : m->part;
                if (sizes[i] != len)
                        continue; /* a part cut short: send it again */
                if (t->resume.stream && !file_holds(m->fd, off, len, journaled_sum(t, num)))
                        continue; /* sent while the file was written, and changed since */
                m->parts[num - 1] = listed[i];
                kept++;
        }
        af_log_info("op=upload status=resume path=%s upload_id=%s parts_done=%zu parts=%zu",
                    af_q(t->relpath), af_q(t->resume.upload_id), kept, m->nparts);
        ok = true;
out:
        free(listed);
        free(sizes);
        return ok;
}

/*
 * Complete, retried in place: a lost answer must not cost the whole file. When a retry finds
 * the upload gone (NoSuchUpload) after an attempt whose answer was lost, the first one
 * probably succeeded: the object then has our size and a multipart ETag of our part count.
 */
/* Whether a Complete whose answer was lost did complete: the object then has our size and
 * a multipart ETag of our part count (fills @res's ETag if so). */
static bool completed_before(struct af_queue *q, struct af_s3_client *s3,
                             const struct job_desc *t, const struct mpu *m,
                             struct af_s3_put_result *res)
{
        struct af_s3_head_result head;
        struct af_s3_error herr;
        char suffix[24];
        size_t el, sl;

        if (q->s3->head_object(s3, t->bucket, t->key, &head, &herr) < 0 || head.size != m->size)
                return false;
        snprintf(suffix, sizeof(suffix), "-%zu\"", m->nparts);
        el = strlen(head.etag);
        sl = strlen(suffix);
        if (el <= sl || strcmp(head.etag + el - sl, suffix) != 0)
                return false;
        snprintf(res->etag, sizeof(res->etag), "%s", head.etag);
        return true;
}

static int complete_with_retries(struct af_queue *q, struct af_s3_client *s3,
                                 const struct job_desc *t, const char *upload_id, struct mpu *m,
                                 struct af_s3_put_result *res, struct af_s3_error *err)
{
        bool lost = false;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = q->s3->complete_multipart(s3, t->bucket, t->key, upload_id, m->parts,
                                              m->nparts, res, err);
                if (r == 0)
                        return 0;
                if (r == -ENOENT && lost && completed_before(q, s3, t, m, res))
                        return 0;
                if (!af_queue_part_retry(q, r, attempt + 1))
                        return r;
                lost = err->http_status == 0; /* no answer: it may have been done */
                af_retry_pause(&q->retry_part, attempt);
        }
}

/* A CreateMultipartUpload that failed with no answer may have made an upload all the same:
 * if the file is not uploaded after all (gone, failed for good), a sweep of the key ends it. */
static void create_failed(struct af_queue *q, const struct job_desc *t,
                          const struct af_s3_error *err)
{
        if (err->http_status == 0)
                af_abort_sweep(q, t->relpath, t->bucket, t->key, "create unanswered");
}

/*
 * Ceph radosgw answers CompleteMultipartUpload with an empty <ETag>. The ETag is what a
 * later copy of the object names (x-amz-copy-source-if-match) and what a delete checks, so
 * it is asked for: the object just completed, if it has our size. Best effort: without it,
 * those checks compare the size only.
 */
static void learn_etag(struct af_queue *q, struct af_s3_client *s3, const struct mpu *m,
                       struct af_s3_put_result *res)
{
        struct af_s3_head_result head;
        struct af_s3_error herr;

        if (q->s3->head_object(s3, m->bucket, m->key, &head, &herr) == 0 && head.size == m->size)
                snprintf(res->etag, sizeof(res->etag), "%s", head.etag);
}

/*
 * The upload @m names (its id set) from its first journal record to its end: the parts on
 * up to part_concurrency threads (each extra thread has its own connection), then Complete.
 * When a part finally fails, the upload is aborted so no storage is left billed (the caller
 * decides what comes next); at shutdown it is kept, journaled, for the next run. A copy
 * checks its source once more before Complete: radosgw ignores x-amz-copy-source-if-match.
 */
static int mpu_run(struct mpu *m, struct af_s3_client *s3, struct af_s3_put_result *res,
                   struct af_s3_error *err)
{
        struct af_queue *q = m->q;
        const struct job_desc *t = m->t;
        pthread_t threads[AF_QUEUE_MAX_PART_CONCURRENCY];
        unsigned nthreads = 0, want;
        int r;

        mpu_record(m);
        want = q->cfg.part_concurrency < m->nparts ? q->cfg.part_concurrency : (unsigned)m->nparts;
        for (unsigned i = 1; i < want; i++)
                if (pthread_create(&threads[nthreads], NULL, mpu_thread, m) == 0)
                        nthreads++;
        mpu_send(m, s3);
        for (unsigned i = 0; i < nthreads; i++)
                pthread_join(threads[i], NULL);
        r = m->locked.err;
        if (r < 0) {
                *err = m->locked.s3err;
                if (atomic_load(&q->cancel))
                        return r; /* keep the upload: the journal has it, a restart resumes */
                goto abort;
        }
        if (atomic_load(&q->cancel))
                return -ECANCELED; /* shutting down: Complete on resume, from the journal */
        if (m->copy) {
                r = af_copy_source_check(q, s3, t->copy, m->size, err);
                if (r < 0)
                        goto abort;
        }
        r = complete_with_retries(q, s3, t, m->upload_id, m, res, err);
        if (r == 0) {
                if (!res->etag[0])
                        learn_etag(q, s3, m, res);
                /* An earlier create whose answer was lost (libcurl itself sends a request
                 * again when a reused connection dies before the answer) left one more. */
                af_abort_strays_or_sweep(q, s3, t->relpath, m->bucket, m->key, m->upload_id);
                return 0;
        }
abort:
        af_abort_upload(q, s3, t->relpath, m->bucket, m->key, m->upload_id);
        af_abort_strays_or_sweep(q, s3, t->relpath, m->bucket, m->key, NULL);
        return r;
}

/* @m for an upload of @t's file as @st describes it (@fd: -1 for a copy). -ENOMEM. */
static int mpu_init(struct mpu *m, struct af_queue *q, const struct job_desc *t, int fd,
                    const struct stat *st)
{
        uint64_t size = (uint64_t)st->st_size;

        *m = (struct mpu){ .q = q, .t = t, .bucket = t->bucket, .key = t->key, .fd = fd,
                           .size = size, .copy = fd < 0, .mtime_ns = af_mtime_ns(st) };
        /* A copy's parts are an upload's: after a crash, the next run's upload of the file
         * (which the journal record says is in progress) keeps the parts already copied. */
        m->part = af_s3_part_size(size, q->cfg.part_size);
        m->nparts = (size_t)((size + m->part - 1) / m->part);
        m->parts = calloc(m->nparts ? m->nparts : 1, sizeof(*m->parts));
        if (!m->parts)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        return 0;
}

static void mpu_done(struct mpu *m)
{
        pthread_mutex_destroy(&m->lock);
        free(m->parts);
}

/*
 * A multipart upload of @st's size of bytes of @fd: a new one, or the one a journal record
 * (t->resume) or a stream left. When a part finally fails, the upload is aborted and the
 * file-level retry starts over.
 */
int af_multipart_upload(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                        int fd, const struct stat *st, struct af_s3_put_result *res,
                        struct af_s3_error *err)
{
        const char *bucket = t->bucket, *key = t->key;
        struct af_live_upload live = { .bucket = bucket, .key = key };
        char upload_id[1024];
        struct mpu m;
        int r;

        r = mpu_init(&m, q, t, fd, st);
        if (r < 0)
                return r;
        /* A sweep of the key waits while this settles which upload it is (NULL id). */
        af_live_begin(q, &live);
        upload_id[0] = '\0';
        if (t->resume.upload_id && strlen(t->resume.upload_id) < sizeof(upload_id)) {
                if (resume_parts(q, s3, t, &m)) {
                        memcpy(upload_id, t->resume.upload_id, strlen(t->resume.upload_id) + 1);
                } else {
                        /* Not resumable: make sure the old upload is not left billed. */
                        af_abort_upload(q, s3, t->relpath, bucket, key, t->resume.upload_id);
                        memset(m.parts, 0, m.nparts * sizeof(*m.parts));
                }
        } else {
                (void)af_stream_take(q, s3, t, &m, upload_id, sizeof(upload_id));
        }
        if (!upload_id[0]) {
                r = q->s3->create_multipart(s3, bucket, key, upload_id, sizeof(upload_id), err);
                if (r < 0) {
                        create_failed(q, t, err);
                        goto out;
                }
        }
        m.upload_id = upload_id;
        af_live_set_id(q, &live, upload_id);
        r = mpu_run(&m, s3, res, err);
out:
        af_live_end(q, &live);
        mpu_done(&m);
        return r;
}

int af_multipart_copy(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                      const struct stat *st, struct af_s3_put_result *res, size_t *ret_nparts,
                      struct af_s3_error *err)
{
        struct af_live_upload live = { .bucket = t->bucket, .key = t->key };
        char upload_id[1024];
        struct mpu m;
        int r;

        r = mpu_init(&m, q, t, -1, st);
        if (r < 0)
                return r;
        af_live_begin(q, &live);
        /* The new object's headers (Content-Type of its name, SSE, tags, metadata) are
         * CreateMultipartUpload's, as for an upload. */
        r = q->s3->create_multipart(s3, t->bucket, t->key, upload_id, sizeof(upload_id), err);
        if (r == 0) {
                m.upload_id = upload_id;
                af_live_set_id(q, &live, upload_id);
                r = mpu_run(&m, s3, res, err);
        } else {
                create_failed(q, t, err);
        }
        if (r == 0)
                *ret_nparts = m.nparts;
        af_live_end(q, &live);
        mpu_done(&m);
        return r;
}
