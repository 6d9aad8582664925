/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streams: the multipart upload of a file that is still being written (queue.h). The mount
 * hands over whole parts as the writer moves past them; a small pool of part threads, started
 * with the first stream, creates the upload, sends the parts and aborts abandoned streams.
 * The upload that the file's close later submits takes the stream over (af_stream_take) and
 * sends only the rest. A stream's record in the journal keeps its upload id and parts, so a
 * crash leaves nothing unknown on the server.
 *
 * Threads: the mount's thread (start, extend, abandon, release), the part threads and the
 * worker that takes a stream over. The fields marked so are guarded by q->lock; the others
 * are set before the stream is published and never change, but for upload_id, written once
 * under q->lock. A stream lives while it has references (atomic).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "upload/queue_int.h"

enum stream_state {
        STREAM_OPEN,      /* parts are handed over and sent */
        STREAM_TAKEN,     /* an upload of the file took it over */
        STREAM_ABANDONED, /* to be aborted by a part thread */
};

/*
 * A multipart upload that started while its file was being written (queue.h). Part i
 * (0-based) is bytes [i * part, (i + 1) * part) of the file; parts are handed over in order
 * and sent by the part threads, at most part_concurrency of one stream at once.
 */
struct af_stream {
        struct af_queue *q;
        atomic_uint refs; /* the caller's, q->locked.streams', and one per part thread at work */
        char *relpath;
        char *bucket;
        char *key;
        int fd;        /* read-only; owned */
        uint64_t part; /* part size */
        /* Only with q->lock held: */
        struct af_stream *next; /* in q->locked.streams while open, or abandoned until aborted */
        enum stream_state state;
        bool creating;    /* CreateMultipartUpload in flight */
        bool create_lost; /* one went unanswered: the server may have an upload of ours */
        bool stalled;     /* creating or a part failed for good: the close's upload sends
                           * the rest */
        unsigned sending; /* parts in flight */
        size_t next_part; /* the next part to send */
        size_t nparts;    /* handed over: bytes [0, nparts * part) */
        size_t aparts;
        struct af_s3_part *parts; /* number 0: not sent (yet) */
        char upload_id[1024];     /* "" until created (upload_id is written once) */
        char why[64];             /* why it was abandoned */
};

static struct af_stream *find_locked(struct af_queue *q, const char *relpath)
{
        for (struct af_stream *s = q->locked.streams; s; s = s->next)
                if (s->state == STREAM_OPEN && strcmp(s->relpath, relpath) == 0)
                        return s;
        return NULL;
}

static void progress_locked(const struct af_stream *s, struct mpu_progress *mp)
{
        *mp = (struct mpu_progress){ .upload_id = s->upload_id[0] ? s->upload_id : NULL,
                                     .size = (uint64_t)s->nparts * s->part,
                                     .part_size = s->part,
                                     .parts = s->parts,
                                     .nparts = s->nparts,
                                     .stream = true };
}

static void stream_unref(struct af_stream *s)
{
        if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        close(s->fd);
        AF_FREE_ALL(s->relpath, s->bucket, s->key, s->parts);
        free(s);
}

bool af_stream_find_locked(struct af_queue *q, const char *relpath)
{
        return find_locked(q, relpath) != NULL;
}

bool af_stream_progress_locked(struct af_queue *q, const char *relpath, struct mpu_progress *mp)
{
        struct af_stream *s = find_locked(q, relpath);

        if (s)
                progress_locked(s, mp);
        return s != NULL;
}

void af_stream_drop_all_locked(struct af_queue *q)
{
        for (struct af_stream *s = q->locked.streams, *sn; s; s = sn) {
                sn = s->next;
                s->next = NULL;
                if (s->create_lost)
                        af_abort_sweep_locked(q, s->relpath, s->bucket, s->key,
                                              "create unanswered");
                stream_unref(s);
        }
        q->locked.streams = NULL;
}

enum af_stream_key af_stream_key_locked(struct af_queue *q, const char *bucket, const char *key,
                                        const char *upload_id)
{
        enum af_stream_key k = AF_STREAM_KEY_FREE;

        for (struct af_stream *s = q->locked.streams; s; s = s->next) {
                if (strcmp(s->key, key) != 0 || strcmp(s->bucket, bucket) != 0)
                        continue;
                if (s->creating)
                        return AF_STREAM_KEY_CREATING;
                if (upload_id && strcmp(s->upload_id, upload_id) == 0)
                        k = AF_STREAM_KEY_HOLDS;
        }
        return k;
}

static void stream_record_locked(struct af_queue *q, const struct af_stream *s)
{
        struct mpu_progress mp;

        progress_locked(s, &mp);
        af_record_put_locked(q, s->relpath, s->bucket, s->key, NULL, AF_JOURNAL_PENDING, NULL, &mp);
}

bool af_stream_is_open(struct af_queue *q, const struct af_stream *s)
{
        bool open;

        pthread_mutex_lock(&q->lock);
        open = s->state == STREAM_OPEN;
        pthread_mutex_unlock(&q->lock);
        return open;
}

enum stream_work {
        WORK_NONE,
        WORK_CREATE,
        WORK_PART,
        WORK_ABORT,
};

/* What the part threads do next, oldest stream first: abort an abandoned stream once nothing
 * of it is in flight, create an upload for a stream with a part to send, send a part. The
 * stream comes with a reference for the thread (an abandoned one with the list's). */
static enum stream_work stream_pick_locked(struct af_queue *q, struct af_stream **ret,
                                           size_t *ret_part)
{
        struct af_stream **pp, *s;

        for (pp = &q->locked.streams; (s = *pp); pp = &s->next) {
                if (s->state == STREAM_ABANDONED) {
                        if (s->creating || s->sending)
                                continue;
                        *pp = s->next;
                        s->next = NULL;
                        *ret = s;
                        return WORK_ABORT;
                }
                if (s->stalled || !s->nparts)
                        continue;
                if (!s->upload_id[0]) {
                        if (s->creating)
                                continue;
                        s->creating = true;
                        atomic_fetch_add(&s->refs, 1);
                        *ret = s;
                        return WORK_CREATE;
                }
                if (s->next_part < s->nparts && s->sending < q->cfg.part_concurrency) {
                        *ret_part = s->next_part++;
                        s->sending++;
                        atomic_fetch_add(&s->refs, 1);
                        *ret = s;
                        return WORK_PART;
                }
        }
        return WORK_NONE;
}

/* A part thread's request for a stream is over (q->lock held): whoever waits for the stream
 * to settle (the upload taking it over) or for work goes on, and the journal gets what was
 * decided. Releases q->lock. */
static void settled_unlock(struct af_queue *q)
{
        pthread_cond_broadcast(&q->stream_idle);
        pthread_cond_broadcast(&q->stream_work);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
}

static void stream_create(struct af_queue *q, struct af_s3_client *s3, struct af_stream *s)
{
        char id[sizeof(s->upload_id)];
        struct af_s3_error err;
        bool lost = false;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = q->s3->create_multipart(s3, s->bucket, s->key, id, sizeof(id), &err);
                /* No answer: the server may have made the upload all the same. */
                lost = lost || (r < 0 && err.http_status == 0);
                if (!af_queue_part_retry(q, r, attempt + 1) ||
                    !af_stream_is_open(q, s))
                        break;
                af_retry_pause(&q->retry_part, attempt);
        }
        pthread_mutex_lock(&q->lock);
        s->creating = false;
        s->create_lost = s->create_lost || lost;
        if (r == 0) {
                /* Even when abandoned or taken meanwhile: the abort or the taker needs it. */
                memcpy(s->upload_id, id, strlen(id) + 1);
                if (s->state == STREAM_OPEN)
                        stream_record_locked(q, s);
        } else {
                s->stalled = true;
        }
        settled_unlock(q);
        if (r == 0)
                af_log_debug("op=stream status=created path=%s key=%s upload_id=%s",
                             af_q(s->relpath), af_q(s->key), af_q(id));
        else if (!atomic_load(&q->cancel))
                af_log_warn("op=stream status=stalled path=%s key=%s http_status=%d s3_code=%s "
                            "msg=\"cannot start the multipart upload; the file goes up at "
                            "close\"",
                            af_q(s->relpath), af_q(s->key), err.http_status, af_q(err.code));
        stream_unref(s);
}

static void stream_part(struct af_queue *q, struct af_s3_client *s3, struct af_stream *s,
                        size_t i)
{
        uint64_t off = (uint64_t)i * s->part, t0 = af_clock_mono_ms();
        struct af_s3_part done;
        struct af_s3_error err;
        int r;

        r = af_multipart_send_part(q, s3, s->bucket, s->key, s->upload_id, (unsigned)i + 1,
                                   s->fd, off, s->part, s, &done, &err);
        pthread_mutex_lock(&q->lock);
        s->sending--;
        if (r == 0) {
                s->parts[i] = done;
                if (s->state == STREAM_OPEN)
                        stream_record_locked(q, s);
        } else if (s->state == STREAM_OPEN) {
                s->stalled = true; /* the close's upload sends what is missing */
        }
        settled_unlock(q);
        if (r == 0)
                af_log_debug("op=stream status=part path=%s part=%zu bytes=%llu ms=%llu",
                             af_q(s->relpath), i + 1, (unsigned long long)s->part,
                             (unsigned long long)(af_clock_mono_ms() - t0));
        else if (!atomic_load(&q->cancel))
                af_log_warn("op=stream status=stalled path=%s part=%zu http_status=%d "
                            "s3_code=%s msg=\"part failed; the rest goes up at close\"",
                            af_q(s->relpath), i + 1, err.http_status, af_q(err.code));
        stream_unref(s);
}

/* Aborts an abandoned stream's upload, if it has one, and puts the file's record back to
 * what its upload (if any is queued) says. Takes the list's reference. */
static void stream_abort(struct af_queue *q, struct af_s3_client *s3, struct af_stream *s)
{
        struct af_s3_error err = { 0 }, serr;
        bool sweep;
        struct job *j;
        int r = 0;

        for (unsigned attempt = 0; s->upload_id[0]; attempt++) {
                r = q->s3->abort_multipart(s3, s->bucket, s->key, s->upload_id, &err);
                if (r == -ENOENT || !af_queue_part_retry(q, r, attempt + 1) ||
                    atomic_load(&q->cancel))
                        break;
                af_retry_pause(&q->retry_part, attempt);
        }
        if (r == -ENOENT)
                r = 0; /* NoSuchUpload: already gone */
        /* A create whose answer was lost, ours or one libcurl sent again by itself when a
         * reused connection died before the answer, may have left another upload: the key's
         * strays go too, now or by a sweep job. */
        pthread_mutex_lock(&q->lock);
        sweep = s->upload_id[0] || s->create_lost;
        pthread_mutex_unlock(&q->lock);
        if (sweep && !atomic_load(&q->cancel))
                sweep = af_abort_strays(q, s3, s->bucket, s->key, NULL, &serr) < 0;
        pthread_mutex_lock(&q->lock);
        q->locked.aborting--;
        pthread_cond_broadcast(&q->idle);
        j = af_queue_find_locked(q, s->relpath);
        /* Still open on the server: an abort job of its own (journaled before the file's
         * record forgets the id, in this flush) retries it until it is gone. */
        if (r < 0)
                af_abort_queue_locked(q, s->relpath, s->bucket, s->key, s->upload_id);
        if (sweep)
                af_abort_sweep_locked(q, s->relpath, s->bucket, s->key,
                                      "abandoned stream");
        if (!j) {
                af_record_remove_locked(q, s->relpath);
        } else if (j->state == JOB_QUEUED) {
                af_record_put_locked(q, j->d.relpath, j->d.bucket, j->d.key, &j->d.f,
                                     AF_JOURNAL_PENDING, NULL, NULL);
        }
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        if (r < 0)
                af_log_warn("op=abort_multipart status=retry bucket=%s key=%s upload_id=%s "
                            "http_status=%d s3_code=%s msg=\"could not abort the abandoned "
                            "stream; journaled and retried\"",
                            af_q(s->bucket), af_q(s->key), af_q(s->upload_id), err.http_status,
                            af_q(err.code));
        else if (s->upload_id[0])
                af_log_debug("op=stream status=aborted path=%s upload_id=%s reason=%s",
                             af_q(s->relpath), af_q(s->upload_id), af_q(s->why));
        stream_unref(s);
}

/* A part thread's step: the next thing a stream needs, or wait for one. */
static void stream_step_locked(struct af_queue *q, struct af_s3_client *s3)
{
        struct af_stream *s = NULL;
        size_t part = 0;
        enum stream_work w = stream_pick_locked(q, &s, &part);

        if (w == WORK_NONE) {
                pthread_cond_wait(&q->stream_work, &q->lock);
                return;
        }
        pthread_mutex_unlock(&q->lock);
        if (w == WORK_CREATE)
                stream_create(q, s3, s);
        else if (w == WORK_PART)
                stream_part(q, s3, s, part);
        else
                stream_abort(q, s3, s);
        pthread_mutex_lock(&q->lock);
}

static void *stream_thread(void *arg)
{
        return af_queue_thread_run(arg, stream_step_locked);
}

uint64_t af_queue_multipart_threshold(const struct af_queue *q)
{
        return q->cfg.multipart_threshold;
}

uint64_t af_queue_stream_part_size(const struct af_queue *q)
{
        return af_s3_part_size(0, q->cfg.part_size);
}

static int start_stream_threads_locked(struct af_queue *q)
{
        int r = 0;

        while (q->nstream_threads < q->cfg.part_concurrency) {
                r = pthread_create(&q->stream_threads[q->nstream_threads], NULL, stream_thread, q);
                if (r)
                        break;
                q->nstream_threads++;
        }
        return q->nstream_threads ? 0 : -r;
}

int af_queue_stream_start(struct af_queue *q, const char *relpath, const char *bucket,
                          const char *key, int fd, struct af_stream **ret)
{
        struct af_stream *s = calloc(1, sizeof(*s));
        int r = 0;

        if (!s || !(s->relpath = strdup(relpath)) || !(s->bucket = strdup(bucket)) ||
            !(s->key = strdup(key))) {
                if (s) {
                        s->fd = fd;
                        atomic_store(&s->refs, 1);
                }
                stream_unref(s);
                if (!s)
                        close(fd);
                return -ENOMEM;
        }
        s->q = q;
        s->fd = fd;
        s->part = af_queue_stream_part_size(q);
        atomic_store(&s->refs, 2); /* the caller's and the list's */
        pthread_mutex_lock(&q->lock);
        if (q->locked.stopping)
                r = -ESHUTDOWN;
        else if (af_queue_find_locked(q, relpath) || find_locked(q, relpath))
                r = -EBUSY; /* one upload per file at a time: the journal holds one record */
        else
                r = start_stream_threads_locked(q);
        if (r == 0) {
                s->next = q->locked.streams;
                q->locked.streams = s;
                /* From now on a crash leaves the file to be uploaded by the next run. */
                stream_record_locked(q, s);
        }
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        if (r < 0) {
                atomic_store(&s->refs, 1);
                stream_unref(s);
                return r;
        }
        af_log_info("op=stream status=start path=%s bucket=%s key=%s part_size=%llu",
                    af_q(relpath), af_q(bucket), af_q(key), (unsigned long long)s->part);
        *ret = s;
        return 0;
}

int af_stream_extend(struct af_stream *s, uint64_t end, uint64_t *ret_handed)
{
        struct af_queue *q = s->q;
        size_t want = (size_t)(end / s->part);
        int r = 0;

        /* Past 10,000 parts the file needs bigger ones: its close's upload starts over. */
        if (want > AF_S3_MAX_PARTS)
                want = AF_S3_MAX_PARTS;
        pthread_mutex_lock(&q->lock);
        if (s->state != STREAM_OPEN) {
                r = -ESTALE;
        } else if (want > s->nparts) {
                if (want > s->aparts) {
                        size_t a = s->aparts ? s->aparts * 2 : 64;
                        struct af_s3_part *p;

                        while (a < want)
                                a *= 2;
                        p = realloc(s->parts, a * sizeof(*p));
                        if (!p) {
                                r = -ENOMEM;
                                goto out;
                        }
                        memset(p + s->aparts, 0, (a - s->aparts) * sizeof(*p));
                        s->parts = p;
                        s->aparts = a;
                }
                s->nparts = want;
                pthread_cond_broadcast(&q->stream_work);
        }
        if (r == 0)
                *ret_handed = (uint64_t)s->nparts * s->part;
out:
        pthread_mutex_unlock(&q->lock);
        return r;
}

void af_stream_abandon(struct af_stream *s, const char *why)
{
        struct af_queue *q = s->q;
        bool was_open;
        size_t sent = 0;

        pthread_mutex_lock(&q->lock);
        was_open = s->state == STREAM_OPEN;
        if (was_open) {
                s->state = STREAM_ABANDONED;
                q->locked.aborting++;
                snprintf(s->why, sizeof(s->why), "%s", why);
                for (size_t i = 0; i < s->nparts; i++)
                        sent += s->parts[i].number != 0;
                pthread_cond_broadcast(&q->stream_work);
        }
        pthread_mutex_unlock(&q->lock);
        if (was_open)
                af_log_info("op=stream status=abandon path=%s key=%s reason=%s parts_sent=%zu "
                            "msg=\"the file goes up at close\"",
                            af_q(s->relpath), af_q(s->key), af_q(why), sent);
        stream_unref(s);
}

void af_stream_release(struct af_stream *s)
{
        stream_unref(s);
}

/*
 * The upload of a file that has an open stream takes it over: the stream stops, its parts in
 * flight finish, and those that reached S3 are @m's first parts, under its upload id, as
 * long as they fit the upload (same key, same part size, within the file). Parts handed
 * over but not sent are simply sent by @m. Returns whether @upload_id was filled.
 */
bool af_stream_take(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                    struct mpu *m, char *upload_id, size_t n)
{
        struct af_stream *s, **pp;
        size_t kept = 0;
        bool fits;

        pthread_mutex_lock(&q->lock);
        for (pp = &q->locked.streams; (s = *pp); pp = &s->next)
                if (s->state == STREAM_OPEN && strcmp(s->relpath, t->relpath) == 0)
                        break;
        if (!s) {
                pthread_mutex_unlock(&q->lock);
                return false;
        }
        *pp = s->next;
        s->next = NULL;
        s->state = STREAM_TAKEN;
        while (s->sending || s->creating)
                pthread_cond_wait(&q->stream_idle, &q->lock);
        fits = s->upload_id[0] && strlen(s->upload_id) < n && strcmp(s->bucket, t->bucket) == 0 &&
               strcmp(s->key, t->key) == 0 && s->part == m->part && s->nparts <= m->nparts &&
               (uint64_t)s->nparts * s->part <= m->size;
        for (size_t i = 0; fits && i < s->nparts; i++) {
                if (s->parts[i].number) {
                        m->parts[i] = s->parts[i];
                        kept++;
                }
        }
        if (fits)
                memcpy(upload_id, s->upload_id, strlen(s->upload_id) + 1);
        if (s->create_lost) /* the upload's own Complete sweeps the key; if it fails, this */
                af_abort_sweep_locked(q, s->relpath, s->bucket, s->key,
                                      "create unanswered");
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        if (fits) {
                af_log_info("op=stream status=handover path=%s upload_id=%s parts_sent=%zu "
                            "parts=%zu",
                            af_q(t->relpath), af_q(upload_id), kept, m->nparts);
        } else if (s->upload_id[0]) {
                af_log_info("op=stream status=abandon path=%s reason=\"does not fit the file "
                            "as closed\" msg=\"uploading it whole\"",
                            af_q(t->relpath));
                af_abort_upload(q, s3, t->relpath, s->bucket, s->key, s->upload_id);
        }
        stream_unref(s);
        return fits;
}
