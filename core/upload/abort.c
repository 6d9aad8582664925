/* SPDX-License-Identifier: Apache-2.0 */
/*
 * No multipart upload is left open. One that nothing will complete (a failed upload's, an
 * abandoned stream's, one whose file left the spool, one a changed file cannot resume) is
 * aborted at once; when that fails (S3 away), the abort becomes a job of its own: journaled
 * before anything forgets the upload id, retried with the delete retry policy (run.c), kept
 * as failed in the journal when that gives up, and tried again by the next mount or drain,
 * until S3 says it is gone. An open upload is billed storage until then.
 *
 * An upload whose id we never learnt (a CreateMultipartUpload unanswered: reset, cut by the
 * shutdown, or kill -9 while it was in flight) is found by listing the key's uploads: a
 * sweep (AF_ABORT_SWEEP) aborts every one no stream of this mount holds, queued where that
 * can have happened and no Complete of the key will follow (abandoned stream, a file that
 * is not uploaded after all, a journaled stream without an id at the next mount).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "upload/queue_int.h"

void af_live_begin(struct af_queue *q, struct af_live_upload *l)
{
        pthread_mutex_lock(&q->lock);
        l->next = q->locked.live;
        q->locked.live = l;
        pthread_mutex_unlock(&q->lock);
}

void af_live_set_id(struct af_queue *q, struct af_live_upload *l, const char *upload_id)
{
        pthread_mutex_lock(&q->lock);
        l->upload_id = upload_id;
        pthread_mutex_unlock(&q->lock);
}

void af_live_end(struct af_queue *q, struct af_live_upload *l)
{
        pthread_mutex_lock(&q->lock);
        for (struct af_live_upload **pp = &q->locked.live; *pp; pp = &(*pp)->next) {
                if (*pp == l) {
                        *pp = l->next;
                        break;
                }
        }
        pthread_mutex_unlock(&q->lock);
}

/* Whether a stream or a job holds @id of @bucket/@key, or one of the key is creating. */
static enum af_stream_key held_locked(struct af_queue *q, const char *bucket, const char *key,
                                      const char *id)
{
        enum af_stream_key k = af_stream_key_locked(q, bucket, key, id);

        for (struct af_live_upload *l = q->locked.live; l && k != AF_STREAM_KEY_CREATING;
             l = l->next) {
                if (!af_order_same_key(l->bucket, l->key, bucket, key))
                        continue;
                if (!l->upload_id)
                        k = AF_STREAM_KEY_CREATING;
                else if (strcmp(l->upload_id, id) == 0)
                        k = AF_STREAM_KEY_HOLDS;
        }
        return k;
}

bool af_abort_is_sweep(const struct job_desc *t)
{
        return t->kind == JOB_ABORT && t->upload_id && strcmp(t->upload_id, AF_ABORT_SWEEP) == 0;
}

int af_abort_strays(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                    const char *key, const char *keep, struct af_s3_error *err)
{
        char **ids = NULL;
        size_t n = 0;
        int r;

        memset(err, 0, sizeof(*err));
        r = q->s3->list_uploads(s3, bucket, key, &ids, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                enum af_stream_key k;
                struct af_s3_error e;
                int a;

                if (keep && strcmp(ids[i], keep) == 0)
                        continue;
                pthread_mutex_lock(&q->lock);
                k = held_locked(q, bucket, key, ids[i]);
                pthread_mutex_unlock(&q->lock);
                if (k == AF_STREAM_KEY_CREATING) {
                        r = -EAGAIN; /* which upload is the stream's is not known yet */
                        continue;
                }
                if (k == AF_STREAM_KEY_HOLDS)
                        continue;
                a = q->s3->abort_multipart(s3, bucket, key, ids[i], &e);
                if (a == 0)
                        af_log_info("op=abort_multipart key=%s upload_id=%s msg=\"stray upload "
                                    "(a request whose answer was lost) aborted\"",
                                    af_q(key), af_q(ids[i]));
                else if (a != -ENOENT && r == 0) {
                        r = a;
                        *err = e;
                }
        }
        for (size_t i = 0; i < n; i++)
                free(ids[i]);
        free(ids);
        return r;
}

int af_abort_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                  struct af_s3_error *err)
{
        int r;

        if (af_abort_is_sweep(t))
                return af_abort_strays(q, s3, t->bucket, t->key, NULL, err);
        memset(err, 0, sizeof(*err));
        r = q->s3->abort_multipart(s3, t->bucket, t->key, t->upload_id, err);
        return r == -ENOENT ? 0 : r; /* NoSuchUpload: already gone */
}

void af_abort_strays_or_sweep(struct af_queue *q, struct af_s3_client *s3, const char *relpath,
                              const char *bucket, const char *key, const char *keep)
{
        struct af_s3_error err;

        if (af_abort_strays(q, s3, bucket, key, keep, &err) != 0)
                af_abort_sweep(q, relpath, bucket, key, "S3 could not be asked now");
}

void af_abort_sweep(struct af_queue *q, const char *relpath, const char *bucket,
                    const char *key, const char *why)
{
        pthread_mutex_lock(&q->lock);
        af_abort_sweep_locked(q, relpath, bucket, key, why);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}

void af_abort_sweep_locked(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *why)
{
        for (struct job *i = q->locked.head; i; i = i->next)
                if (i->state == JOB_QUEUED && af_abort_is_sweep(&i->d) &&
                    af_order_same_key(i->d.bucket, i->d.key, bucket, key))
                        return; /* that one sweeps the key, later than anything now */
        /* Debug: most find nothing; a stray found is logged when it is aborted. */
        af_log_debug("op=abort_multipart status=queued path=%s key=%s upload_id=%s why=%s "
                     "msg=\"the key's stray uploads are looked for and aborted\"",
                     af_q(relpath), af_q(key), AF_ABORT_SWEEP, af_q(why));
        af_abort_queue_locked(q, relpath, bucket, key, AF_ABORT_SWEEP);
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
