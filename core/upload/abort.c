/* SPDX-License-Identifier: Apache-2.0 */
/*
 * No multipart upload is left open. One that nothing will complete (a failed upload's, an
 * abandoned stream's, one whose file left the spool, one a changed file cannot resume) is
 * aborted at once; when that fails (S3 away), the abort becomes a job of its own: journaled
 * before anything forgets the upload id, retried with the delete retry policy (run.c), kept
 * as failed in the journal when that gives up, and tried again by the next mount or drain,
 * until S3 says it is gone. An open upload is billed storage until then.
 */
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "upload/queue_int.h"

int af_abort_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                  struct af_s3_error *err)
{
        int r;

        memset(err, 0, sizeof(*err));
        r = q->s3->abort_multipart(s3, t->bucket, t->key, t->upload_id, err);
        return r == -ENOENT ? 0 : r; /* NoSuchUpload: already gone */
}

void af_abort_queue_locked(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *upload_id)
{
        struct job *j = af_job_new_abort(relpath, bucket, key, upload_id);

        if (!j) {
                af_log_error("op=abort_multipart bucket=%s key=%s upload_id=%s err=\"out of "
                             "memory\" msg=\"left open\"",
                             af_q(bucket), af_q(key), af_q(upload_id));
                return;
        }
        j->seq = ++q->locked.submit_seq;
        af_record_put_delete_locked(q, j, AF_JOURNAL_PENDING, NULL);
        af_queue_enqueue_locked(q, j);
}

void af_abort_upload(struct af_queue *q, struct af_s3_client *s3, const char *relpath,
                     const char *bucket, const char *key, const char *upload_id)
{
        struct job_desc t = { .kind = JOB_ABORT,
                              .relpath = (char *)relpath,
                              .bucket = (char *)bucket,
                              .key = (char *)key,
                              .upload_id = (char *)upload_id };
        struct af_s3_error err;
        int r = af_abort_once(q, s3, &t, &err);

        if (r == 0)
                return; /* quietly, as a multipart upload's abort always was */
        af_log_warn("op=abort_multipart status=retry path=%s bucket=%s key=%s upload_id=%s "
                    "http_status=%d s3_code=%s msg=\"could not abort; journaled and retried\"",
                    af_q(relpath), af_q(bucket), af_q(key), af_q(upload_id), err.http_status,
                    af_q(err.code));
        pthread_mutex_lock(&q->lock);
        af_abort_queue_locked(q, relpath, bucket, key, upload_id);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}
