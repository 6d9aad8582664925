/* SPDX-License-Identifier: Apache-2.0 */
/*
 * af_queue_resume: the jobs an earlier run left in the journal go back into the queue,
 * uploads with their multipart progress (resume hints), deletes with their ETag, aborts of
 * multipart uploads; a record whose file is gone is dropped, its upload aborted.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

struct resume_ctx {
        struct af_queue *q;
        int queued;
};

/* A delete an earlier run had queued: it goes again (its ETag check keeps it safe). So does
 * an abort of a multipart upload. */
static void resume_delete(struct resume_ctx *rc, const struct af_journal_rec *rec)
{
        struct af_queue *q = rc->q;
        bool abort = rec->op == AF_JOURNAL_ABORT;
        struct job *j = abort ? af_job_new_abort(rec->path, rec->bucket, rec->key, rec->upload_id)
                              : af_job_new_delete(rec->path, rec->bucket, rec->key, rec->etag);

        if (!j) {
                af_log_error("op=resume path=%s err=\"out of memory\"", af_q(rec->path));
                return;
        }
        af_log_info("op=resume path=%s key=%s state=%s %s=pending", af_q(rec->path),
                    af_q(rec->key), rec->state == AF_JOURNAL_FAILED ? "failed" : "pending",
                    abort ? "abort_multipart" : "delete");
        pthread_mutex_lock(&q->lock);
        j->seq = ++q->locked.submit_seq;
        af_queue_enqueue_locked(q, j);
        pthread_mutex_unlock(&q->lock);
        rc->queued++;
}

/* The upload job a record describes, with its multipart progress as resume hints; NULL on
 * OOM. */
static struct job *job_from_record(const struct af_journal_rec *rec)
{
        struct job *j = calloc(1, sizeof(*j));
        struct job_desc *d = j ? &j->d : NULL;

        if (!j || !(d->relpath = strdup(rec->path)) || !(d->bucket = strdup(rec->bucket)) ||
            !(d->key = strdup(rec->key)) || (rec->member && !(d->f.member = strdup(rec->member))) ||
            (rec->zip_file_member && !(d->f.zip_file_member = strdup(rec->zip_file_member))) ||
            (rec->upload_id && !(d->resume.upload_id = strdup(rec->upload_id)))) {
                af_job_free(j);
                return NULL;
        }
        d->f.archive = rec->archive;
        d->f.level = rec->level;
        d->resume.size = rec->size;
        d->resume.mtime_ns = rec->mtime_ns;
        d->resume.part_size = rec->part_size;
        d->resume.stream = rec->stream;
        if (rec->upload_id && rec->nparts) {
                d->resume.done = malloc(rec->nparts * sizeof(*d->resume.done));
                if (d->resume.done) {
                        memcpy(d->resume.done, rec->parts, rec->nparts * sizeof(*d->resume.done));
                        d->resume.ndone = rec->nparts;
                }
        }
        return j;
}

static void resume_one(void *arg, struct af_journal_rec *rec)
{
        struct resume_ctx *rc = arg;
        struct af_queue *q = rc->q;
        struct stat st;
        struct job *j;
        bool gone;

        if (rec->op != AF_JOURNAL_UPLOAD) {
                resume_delete(rc, rec);
                return;
        }
        gone = fstatat(q->cfg.spool_dirfd, rec->path, &st, AT_SYMLINK_NOFOLLOW) < 0;
        if (gone || (rec->stream && !rec->upload_id)) {
                /* A CreateMultipartUpload in flight or unanswered when the last run ended
                 * may have left an upload of ours that no record names: a file that is gone
                 * will have no Complete that sweeps its key, and a stream without an id
                 * resumes as a new upload. The sweep runs before the file's upload (both are
                 * ordered by key) and after the abort of the recorded id. */
                pthread_mutex_lock(&q->lock);
                if (gone && rec->upload_id)
                        af_abort_queue_locked(q, rec->path, rec->bucket, rec->key,
                                              rec->upload_id);
                af_abort_sweep_locked(q, rec->path, rec->bucket, rec->key,
                                      gone ? "file gone" : "no upload id");
                pthread_mutex_unlock(&q->lock);
                af_record_flush(q);
                rc->queued++;
        }
        if (gone) {
                /* The last run may have ended with its upload under way or unanswered: what
                 * it sent may be in S3, under a name that is gone (on_gone decides). Its
                 * aborts, and that delete, are journaled (and flushed) before the record
                 * goes. */
                if (q->cfg.on_gone)
                        q->cfg.on_gone(q->cfg.on_uploaded_ctx, rec->path, rec->bucket,
                                       rec->key, "");
                af_log_warn("op=resume path=%s key=%s msg=\"the file is no longer in the spool; "
                            "its record is dropped%s\"",
                            af_q(rec->path), af_q(rec->key),
                            rec->upload_id ? " and its multipart upload aborted" : "");
                (void)af_journal_remove(q->cfg.journal_dirfd, rec->path);
                return;
        }
        j = job_from_record(rec);
        if (!j) {
                af_log_error("op=resume path=%s err=\"out of memory\"", af_q(rec->path));
                return;
        }
        af_log_info("op=resume path=%s key=%s state=%s%s", af_q(rec->path), af_q(rec->key),
                    rec->state == AF_JOURNAL_FAILED ? "failed" : "pending",
                    rec->upload_id ? " multipart=in-progress" : "");
        pthread_mutex_lock(&q->lock);
        if (af_queue_find_locked(q, rec->path)) {
                pthread_mutex_unlock(&q->lock);
                af_job_free(j);
                return;
        }
        /* A submit of its own: an fsync() of the file, which finds it clean, waits for this
         * seq (with 0 it waited for nothing and returned before the upload). */
        j->seq = ++q->locked.submit_seq;
        j->handed_ms = af_clock_mono_ms();
        af_queue_enqueue_locked(q, j);
        pthread_mutex_unlock(&q->lock);
        rc->queued++;
}

static void resume_bad(void *arg, const char *name, const char *why)
{
        (void)arg;
        af_log_error("op=resume record=%s err=%s msg=\"corrupt journal record set aside as "
                     "%s.corrupt; its file, if any, stays in the spool\"",
                     af_q(name), af_q(why), name);
}

int af_queue_resume(struct af_queue *q)
{
        struct resume_ctx rc = { .q = q };
        int r;

        if (!q->cfg.journal)
                return 0;
        r = af_journal_scan(q->cfg.journal_dirfd, true, resume_one, resume_bad, &rc);
        return r < 0 ? r : rc.queued;
}
