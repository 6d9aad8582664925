/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a worker does with the job it picked: one attempt (transfer.c for an upload,
 * copy_delete.c for a delete), then, by the retry policy (retry.h), the job is done, goes
 * back to the queue after its backoff, or fails for good. The worker logs the outcome (it is
 * where the decision is made), updates the journal record and wakes whoever waits.
 *
 * The job (struct job) is read and written only under q->lock; the attempt runs on the
 * worker's own copy of its description (@t), without the lock.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

/* Counts the attempt that just ended with @r. For a failure, the first one starts the retry
 * window. Returns the attempt's number; *@ret_failing_ms: how long the job has failed. */
static unsigned count_attempt_locked(struct job *j, int r, uint64_t *ret_failing_ms)
{
        uint64_t now = af_clock_mono_ms();

        *ret_failing_ms = 0;
        if (r < 0) {
                if (!j->first_failure_ms)
                        j->first_failure_ms = now;
                *ret_failing_ms = now - j->first_failure_ms;
        }
        return ++j->attempts;
}

/* Shutdown past the drain timeout: not a failure. The job and its journal record stay (a
 * multipart upload keeps its id and finished parts) for the next mount or drain;
 * af_queue_free logs it as left. True if so. */
static bool requeue_on_cancel(struct af_queue *q, struct job *j, int r)
{
        if (r != -ECANCELED && !atomic_load(&q->cancel))
                return false;
        pthread_mutex_lock(&q->lock);
        j->state = JOB_QUEUED;
        pthread_mutex_unlock(&q->lock);
        return true;
}

static void format_error(const struct af_s3_error *err, int r, struct af_buf *msg)
{
        if (err->http_status || err->code[0])
                af_s3_error_format(err, msg);
        else
                (void)af_buf_addf(msg, "%s", strerror(-r));
}

/* After failed attempt @attempt of @j (error @r, @msg), the job's first failure @failing_ms
 * ago: if the policy says so, logs the retry and queues the job again after its backoff.
 * Returns whether it did. @op names the job in the log ("upload", "delete"). */
static bool retry_later(struct af_queue *q, struct job *j, const struct af_retry_policy *p,
                        const char *op, const struct job_desc *t, int r, unsigned attempt,
                        uint64_t failing_ms, const struct af_s3_error *err,
                        const struct af_buf *msg)
{
        unsigned delay;

        if (!af_retry_again(p, r, attempt, failing_ms))
                return false;
        delay = af_retry_delay_ms(p, attempt, af_retry_jitter());
        af_metrics_retry(q->cfg.metrics, r);
        af_log_warn("op=%s status=retry path=%s bucket=%s key=%s attempt=%u http_status=%d "
                    "s3_code=%s request_id=%s delay_ms=%u err=%s",
                    op, af_q(t->relpath), af_q(t->bucket), af_q(t->key), attempt,
                    err->http_status, af_q(err->code), af_q(err->request_id), delay,
                    af_q(af_buf_str(msg)));
        pthread_mutex_lock(&q->lock);
        j->state = JOB_QUEUED;
        j->not_before_ms = af_clock_mono_ms() + delay;
        pthread_mutex_unlock(&q->lock);
        return true;
}

/* What an upload that went up, failed for good or had nothing to send leaves. */
struct upload_end {
        const char *failure;                /* NULL: no failure */
        int r;                              /* the attempt's result */
        const struct af_s3_put_result *res; /* NULL: nothing went up */
        uint64_t size;
        uint64_t t0_wall;
        bool recorded; /* the failure's record is on disk already */
        /* Nothing to send (the file is gone), but an earlier attempt may have landed:
         * on_gone hears of it, with the ETag such an object has ("" if unknown). */
        bool gone_landed;
        char landed_etag[36];
        uint64_t seq; /* the job's submit this attempt covered */
};

/* Attempt @r of @j ended without an answer from S3 (@err empty): what it sent may be there
 * all the same (the request went, the answer was lost), as @res->sent_md5 if summed. */
static void note_unanswered_locked(struct job *j, int r, const struct af_s3_error *err,
                                   const struct af_s3_put_result *res)
{
        char etag[sizeof(j->landed_etag)] = "";

        if (r == 0 || err->http_status || (r == -ENOENT && !err->code[0]))
                return; /* went up, was answered, or found no file to send */
        if (res->sent_md5[0])
                snprintf(etag, sizeof(etag), "\"%s\"", res->sent_md5);
        if (!j->maybe_landed)
                memcpy(j->landed_etag, etag, sizeof(etag));
        else if (strcmp(j->landed_etag, etag) != 0)
                j->landed_etag[0] = '\0'; /* two versions may be there: either one */
        j->maybe_landed = true;
}

/* Whether on_uploaded or on_gone hears of the upload that ended so. */
static bool notified(const struct af_queue *q, const struct upload_end *e)
{
        return (e->res && q->cfg.on_uploaded) || (!e->res && e->gone_landed && q->cfg.on_gone);
}

/* After the callback: the record goes (unless the file was handed over again since: then it
 * is the new upload's), and so does the count that holds a drain back. */
static void notify_done(struct af_queue *q, const struct job_desc *t, bool superseded)
{
        pthread_mutex_lock(&q->lock);
        if (!superseded && !af_queue_find_locked(q, t->relpath))
                af_record_remove_locked(q, t->relpath);
        q->locked.notifying--;
        pthread_cond_broadcast(&q->idle);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}

/*
 * The upload is over: the waiters learn how, and the job leaves the queue with its record
 * removed (or kept as failed), unless the file was submitted again meanwhile: then the job
 * goes again, for the newest version. Returns whether it was superseded so.
 */
static bool finish_upload(struct af_queue *q, struct job *j, const struct job_desc *t,
                          const struct upload_end *e)
{
        bool superseded = false;

        pthread_mutex_lock(&q->lock);
        if (notified(q, e))
                q->locked.notifying++; /* until notify_done */
        af_queue_note_outcome_locked(q, t->relpath, j->picked_seq,
                                     e->failure ? (e->r < 0 ? e->r : -EIO) : 0);
        if (j->again) {
                /* Changed while we uploaded: the record stays, for the newest version. */
                superseded = true;
                j->again = false;
                j->attempts = 0;
                j->state = JOB_QUEUED;
                af_order_after_deletes_locked(q, j);
                af_record_put_locked(q, j->d.relpath, j->d.bucket, j->d.key, &j->d.f,
                                     AF_JOURNAL_PENDING, NULL, NULL);
                pthread_cond_signal(&q->work);
                goto out;
        }
        /* An upload on_uploaded or on_gone hears of keeps its record until it has
         * (notify_done): a name gone meanwhile gets its object deleted there, and a kill
         * before that delete is journaled must leave the next mount something to find. */
        if (!e->failure && !notified(q, e))
                af_record_remove_locked(q, t->relpath);
        else if (!e->recorded)
                af_record_put_locked(q, t->relpath, t->bucket, t->key, &t->f, AF_JOURNAL_FAILED,
                                     e->failure, NULL);
        if (e->res)
                af_record_done_locked(q, t->relpath, t->key, e->size, e->res->etag);
        if (e->res && q->cfg.manifest_fd > 0)
                af_manifest_write(q, t, e->size, e->res, e->t0_wall, af_clock_wall_ms());
        af_queue_unlink_locked(q, j);
        q->locked.stats.pending_files--;
        q->locked.stats.pending_bytes -= j->size;
        af_job_free(j);
        pthread_cond_broadcast(&q->idle);
        pthread_cond_broadcast(&q->work); /* jobs it held back may go */
out:
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        return superseded;
}

/*
 * An upload failed for good: counted, remembered for the report, and its record says so on
 * disk before the caller logs it (a daemon killed right after the line still has the file
 * recorded as failed) and before finish_upload wakes the waiters (who may read the line).
 * Unless it was submitted again meanwhile: then finish_upload queues it again.
 */
static void record_failure(struct af_queue *q, struct job *j, const struct job_desc *t,
                           struct upload_end *e)
{
        af_metrics_upload_failed(q->cfg.metrics);
        pthread_mutex_lock(&q->lock);
        q->locked.stats.failed_files++;
        af_queue_record_failure_locked(q, t->relpath, t->bucket, t->key, e->failure);
        if (!j->again) {
                af_record_put_locked(q, t->relpath, t->bucket, t->key, &t->f, AF_JOURNAL_FAILED,
                                     e->failure, NULL);
                e->recorded = true;
        }
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}

static void notify_uploaded(struct af_queue *q, const struct job_desc *t, const struct stat *st,
                            const struct upload_end *e, bool superseded)
{
        struct af_queue_uploaded u = {
                .relpath = t->relpath, .seq = e->seq, .bucket = t->bucket, .key = t->key,
                .etag = e->res->etag, .archive = t->f.archive, .is_dir = S_ISDIR(st->st_mode),
                .size = e->size, .dev = st->st_dev, .ino = st->st_ino,
                .mtime_ns = af_mtime_ns(st), .superseded = superseded,
        };

        q->cfg.on_uploaded(q->cfg.on_uploaded_ctx, &u);
        notify_done(q, t, superseded);
}

static void notify_gone(struct af_queue *q, const struct job_desc *t, const struct upload_end *e,
                        bool superseded)
{
        q->cfg.on_gone(q->cfg.on_uploaded_ctx, t->relpath, t->bucket, t->key, e->landed_etag);
        notify_done(q, t, superseded);
}

void af_run_upload(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                   const struct job_desc *t)
{
        struct af_s3_put_result res = { 0 };
        struct upload_end e = { .t0_wall = af_clock_wall_ms() };
        uint64_t t0 = af_clock_mono_ms(), failing_ms, handed_ms;
        struct af_s3_error err;
        struct stat st = { 0 };
        struct af_buf msg;
        bool superseded;
        unsigned attempt;

        af_buf_init(&msg, 1024);
        e.r = af_transfer_once(q, s3, t, &e.size, &st, &res, &err);
        if (e.r == 0) /* the other artifacts that declare the same path */
                e.r = af_extras_upload(q, s3, t, S_ISDIR(st.st_mode), &err);
        pthread_mutex_lock(&q->lock);
        e.seq = j->picked_seq;
        attempt = count_attempt_locked(j, e.r, &failing_ms);
        handed_ms = j->handed_ms;
        if (e.r == 0) {
                q->locked.stats.uploaded_files++;
                q->locked.stats.uploaded_bytes += e.size;
                j->maybe_landed = false; /* this one wrote over whatever that was */
        }
        note_unanswered_locked(j, e.r, &err, &res);
        pthread_mutex_unlock(&q->lock);
        if (attempt == 1)
                af_metrics_upload_started(q->cfg.metrics);
        if (e.r == 0) {
                e.res = &res;
                af_metrics_upload_done(q->cfg.metrics, e.size,
                                       (double)(af_clock_mono_ms() - handed_ms) / 1000.0);
                af_log_info("op=upload status=done path=%s bucket=%s key=%s bytes=%llu ms=%llu "
                            "etag=%s",
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key),
                            (unsigned long long)e.size,
                            (unsigned long long)(af_clock_mono_ms() - t0), af_q(res.etag));
                goto finished;
        }
        if (requeue_on_cancel(q, j, e.r))
                goto out;
        if (e.r == -ENOENT && err.http_status == 0 && !err.code[0]) {
                /* Renamed or deleted before we got to it: nothing to upload under this name. */
                af_log_info("op=upload status=skipped path=%s reason=\"no longer a regular file "
                            "in the spool\"",
                            af_q(t->relpath));
                pthread_mutex_lock(&q->lock);
                e.gone_landed = j->maybe_landed;
                memcpy(e.landed_etag, j->landed_etag, sizeof(e.landed_etag));
                j->maybe_landed = false;
                pthread_mutex_unlock(&q->lock);
                goto finished;
        }
        format_error(&err, e.r, &msg);
        if (retry_later(q, j, &q->retry_upload, "upload", t, e.r, attempt, failing_ms, &err,
                        &msg))
                goto out;
        e.failure = af_buf_str(&msg);
        record_failure(q, j, t, &e);
        af_log_error("op=upload status=failed path=%s bucket=%s key=%s attempts=%u "
                     "http_status=%d s3_code=%s request_id=%s err=%s msg=\"file kept in the "
                     "spool\"",
                     af_q(t->relpath), af_q(t->bucket), af_q(t->key), attempt, err.http_status,
                     af_q(err.code), af_q(err.request_id), af_q(e.failure));
finished:
        superseded = finish_upload(q, j, t, &e);
        if (e.res && q->cfg.on_uploaded)
                notify_uploaded(q, t, &st, &e, superseded);
        else if (notified(q, &e))
                notify_gone(q, t, &e, superseded);
out:
        af_buf_done(&msg);
}

/* The delete is over: its record goes to the next delete of the key, if any (or is kept as
 * failed), and the job leaves the queue. */
static void finish_delete(struct af_queue *q, struct job *j, int r, const struct af_buf *msg)
{
        pthread_mutex_lock(&q->lock);
        if (r < 0)
                af_record_put_delete_locked(q, j, AF_JOURNAL_FAILED, af_buf_str(msg));
        else
                af_record_delete_done_locked(q, j);
        af_queue_unlink_locked(q, j);
        af_job_free(j);
        pthread_cond_broadcast(&q->idle);
        pthread_cond_broadcast(&q->work); /* jobs it held back may go */
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}

/* A delete (JOB_DELETE) or an abort of a multipart upload (JOB_ABORT): the same policy. */
void af_run_delete(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                   const struct job_desc *t)
{
        bool abort = t->kind == JOB_ABORT;
        const char *op = abort ? "abort_multipart" : "delete";
        uint64_t t0 = af_clock_mono_ms(), failing_ms;
        struct af_s3_error err;
        struct af_buf msg;
        unsigned attempt;
        int r = abort ? af_abort_once(q, s3, t, &err) : af_delete_once(q, s3, t, &err);

        af_buf_init(&msg, 1024);
        pthread_mutex_lock(&q->lock);
        attempt = count_attempt_locked(j, r, &failing_ms);
        pthread_mutex_unlock(&q->lock);
        if (r == 0 && !abort)
                af_metrics_delete_done(q->cfg.metrics);
        if (r == 0 && af_abort_is_sweep(t)) /* what it aborted, if anything, is logged */
                af_log_debug("op=%s status=done path=%s key=%s upload_id=%s ms=%llu", op,
                             af_q(t->relpath), af_q(t->key), AF_ABORT_SWEEP,
                             (unsigned long long)(af_clock_mono_ms() - t0));
        else if (r == 0)
                af_log_info("op=%s status=done path=%s bucket=%s key=%s%s%s ms=%llu", op,
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key),
                            abort ? " upload_id=" : "", abort ? af_q(t->upload_id) : "",
                            (unsigned long long)(af_clock_mono_ms() - t0));
        else if (r == 1)
                af_log_info("op=delete status=skipped path=%s bucket=%s key=%s etag=%s "
                            "msg=\"the object changed since this mount put it; left as is\"",
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key), af_q(t->etag));
        if (r >= 0)
                goto finished;
        if (requeue_on_cancel(q, j, r)) /* journaled: the next mount or drain does it */
                goto out;
        format_error(&err, r, &msg);
        if (retry_later(q, j, &q->retry_delete, op, t, r, attempt, failing_ms, &err, &msg))
                goto out;
        af_log_error("op=%s status=failed path=%s bucket=%s key=%s attempts=%u "
                     "http_status=%d s3_code=%s request_id=%s err=%s msg=\"%s; journaled for "
                     "the next mount or drain\"",
                     op, af_q(t->relpath), af_q(t->bucket), af_q(t->key), attempt,
                     err.http_status, af_q(err.code), af_q(err.request_id),
                     af_q(af_buf_str(&msg)),
                     abort ? "the multipart upload is left open" : "the object is left in S3");
finished:
        finish_delete(q, j, r, &msg);
out:
        af_buf_done(&msg);
}
