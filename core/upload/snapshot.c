/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshots (queue.h, "Snapshots"): the content of a file still open for writing, copied by
 * the mount into a private file that nothing else writes, uploaded to the file's key by one
 * thread of their own. They are not jobs: no journal record of their own, no retry after the
 * in-place ones, no pending count; on_uploaded hears of each as superseded (the object is
 * the name's, for deletes, but the file is not "in S3" for eviction or copies on rename:
 * only its final upload makes it so).
 *
 * Ordering with the jobs, by key, all decided under q->lock:
 * - a snapshot is dropped when an upload job of its file is queued or running (the file was
 *   closed or synced: that upload carries content at least as new), or any job that writes
 *   or deletes its key (another name's upload, a delete after an unlink or rename away), and
 *   waits while a copy reads its key;
 * - a job does not start while a snapshot of its key is being uploaded
 *   (af_snapshot_holds_locked, in order.c): the final upload is always the last write.
 * So the key holds the newest snapshot until the final upload replaces it. A stream's
 * multipart upload is never touched: a snapshot of a streaming file is a separate object
 * (PutObject, or a multipart upload of its own), and the stream completes at the close.
 *
 * The journal: a snapshot is not journaled, but the file it comes from is, as pending,
 * unless it already has a record (an upload job's or a stream's): after a crash the next
 * mount or drain uploads the file as the spool holds it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

/* A snapshot waiting for the snapshot thread, or being uploaded (running). Guarded by
 * q->lock but for d, fd and st, which the thread reads while it runs the snapshot (and
 * nobody changes once it is in the list). */
struct snapshot {
        struct snapshot *next;
        struct job_desc d; /* relpath, bucket, key, packaging */
        int fd;            /* the copy; owned */
        struct stat st;    /* the file as it was copied */
        bool running;
};

static void snapshot_free(struct snapshot *s)
{
        if (!s)
                return;
        if (s->fd >= 0)
                close(s->fd);
        af_job_desc_done(&s->d);
        free(s);
}

static struct snapshot *find_locked(struct af_queue *q, const char *relpath, bool running)
{
        for (struct snapshot *s = q->locked.snapshots; s; s = s->next)
                if (s->running == running && strcmp(s->d.relpath, relpath) == 0)
                        return s;
        return NULL;
}

static void unlink_locked(struct af_queue *q, struct snapshot *s)
{
        struct snapshot **pp = &q->locked.snapshots;

        while (*pp && *pp != s)
                pp = &(*pp)->next;
        if (*pp)
                *pp = s->next;
        s->next = NULL;
}

bool af_snapshot_holds_locked(struct af_queue *q, const struct job *j)
{
        for (struct snapshot *s = q->locked.snapshots; s; s = s->next)
                if (s->running && af_order_same_key(s->d.bucket, s->d.key, j->d.bucket, j->d.key))
                        return true;
        return false;
}

/* Whether a job stands in @s's way: 1 an upload of its file, or any job that writes or
 * deletes its key (the snapshot is moot: newer content, or the name is gone), 2 a copy that
 * reads its key (wait), 0 none. */
static int in_the_way_locked(struct af_queue *q, const struct snapshot *s)
{
        int r = 0;

        for (struct job *j = q->locked.head; j; j = j->next) {
                if ((j->d.kind == JOB_UPLOAD && strcmp(j->d.relpath, s->d.relpath) == 0) ||
                    af_order_same_key(j->d.bucket, j->d.key, s->d.bucket, s->d.key))
                        return 1;
                if (j->d.copy &&
                    af_order_same_key(j->d.copy->bucket, j->d.copy->key, s->d.bucket, s->d.key))
                        r = 2;
        }
        return r;
}

/* The oldest snapshot that may go now (marked running), dropping the moot ones; *@ret_blocked
 * says whether one waits for a job. */
static struct snapshot *pick_locked(struct af_queue *q, bool *ret_blocked)
{
        struct snapshot *s = q->locked.snapshots, *next;

        *ret_blocked = false;
        for (; s; s = next) {
                next = s->next;
                if (s->running)
                        continue;
                switch (in_the_way_locked(q, s)) {
                case 1:
                        af_log_debug("op=snapshot status=skipped path=%s reason=\"a newer "
                                     "upload or a delete of its key is queued\"",
                                     af_q(s->d.relpath));
                        unlink_locked(q, s);
                        snapshot_free(s);
                        break;
                case 2:
                        *ret_blocked = true;
                        break;
                default:
                        s->running = true;
                        return s;
                }
        }
        return NULL;
}

/* Whether to send a request that ended with @r again: in place, as a part is (retry.h),
 * after a pause. */
static bool again(struct af_queue *q, int r, unsigned *attempt)
{
        if (!af_queue_part_retry(q, r, ++*attempt) || atomic_load(&q->cancel))
                return false;
        af_retry_pause(&q->retry_part, *attempt - 1);
        return true;
}

/* A multipart upload of the copy, of its own (never a stream's), one part at a time; aborted
 * if it fails. */
static int put_multipart(struct af_queue *q, struct af_s3_client *s3, const struct snapshot *s,
                         uint64_t size, struct af_s3_put_result *res, struct af_s3_error *err)
{
        const char *b = s->d.bucket, *k = s->d.key;
        uint64_t part = af_s3_part_size(size, q->cfg.part_size);
        size_t n = (size_t)((size + part - 1) / part);
        struct af_s3_part *parts = calloc(n, sizeof(*parts));
        struct af_s3_error aerr;
        unsigned attempt = 0;
        char id[1024];
        int r;

        if (!parts)
                return -ENOMEM;
        do
                r = q->s3->create_multipart(s3, b, k, id, sizeof(id), err);
        while (again(q, r, &attempt));
        if (r < 0)
                goto out;
        for (size_t i = 0; i < n && r == 0; i++) {
                uint64_t off = (uint64_t)i * part;

                r = af_multipart_send_part(q, s3, b, k, id, (unsigned)i + 1, s->fd, off,
                                           size - off < part ? size - off : part, NULL,
                                           &parts[i], err);
        }
        attempt = 0;
        while (r == 0) {
                r = q->s3->complete_multipart(s3, b, k, id, parts, n, res, err);
                if (!again(q, r, &attempt))
                        break;
                r = 0;
        }
        if (r < 0)
                (void)q->s3->abort_multipart(s3, b, k, id, &aerr);
out:
        free(parts);
        return r;
}

static int put_snapshot(struct af_queue *q, struct af_s3_client *s3, const struct snapshot *s,
                        struct af_s3_put_result *res, struct af_s3_error *err)
{
        uint64_t size = (uint64_t)s->st.st_size;
        unsigned attempt = 0;
        int r;

        memset(err, 0, sizeof(*err));
        if (s->d.f.archive == AF_ARCHIVE_NONE && size >= q->cfg.multipart_threshold)
                return put_multipart(q, s3, s, size, res, err);
        do {
                if (s->d.f.archive != AF_ARCHIVE_NONE) /* from the copy, with the file's stat */
                        r = af_archive_put(q, s3, s->d.bucket, s->d.key, s->fd, &s->st, &s->d.f,
                                           res, err);
                else
                        r = q->s3->put_object_fd(s3, s->d.bucket, s->d.key, s->fd, size, res,
                                                 err);
        } while (again(q, r, &attempt));
        return r;
}

static void run_snapshot(struct af_queue *q, struct af_s3_client *s3, struct snapshot *s)
{
        struct af_s3_put_result res = { 0 };
        uint64_t t0 = af_clock_mono_ms();
        struct af_s3_error err;
        int r = put_snapshot(q, s3, s, &res, &err);

        /* Registered as an object of the name (a later unlink or rename away deletes it, as
         * deletes go), never as the file's upload: superseded, the final upload follows. The
         * jobs it holds back wait for that, so the registry never ends on a snapshot. */
        if (r == 0 && q->cfg.on_uploaded) {
                struct af_queue_uploaded u = {
                        .relpath = s->d.relpath, .bucket = s->d.bucket, .key = s->d.key,
                        .etag = res.etag, .archive = s->d.f.archive,
                        .size = (uint64_t)s->st.st_size, .dev = s->st.st_dev,
                        .ino = s->st.st_ino, .mtime_ns = af_mtime_ns(&s->st), .superseded = true,
                };

                q->cfg.on_uploaded(q->cfg.on_uploaded_ctx, &u);
        }
        pthread_mutex_lock(&q->lock);
        unlink_locked(q, s);
        pthread_cond_broadcast(&q->work); /* the jobs it held back may go */
        pthread_mutex_unlock(&q->lock);
        if (r == 0)
                af_log_info("op=snapshot status=done path=%s bucket=%s key=%s bytes=%llu ms=%llu "
                            "etag=%s",
                            af_q(s->d.relpath), af_q(s->d.bucket), af_q(s->d.key),
                            (unsigned long long)s->st.st_size,
                            (unsigned long long)(af_clock_mono_ms() - t0), af_q(res.etag));
        else if (!atomic_load(&q->cancel))
                af_log_warn("op=snapshot status=failed path=%s bucket=%s key=%s http_status=%d "
                            "s3_code=%s err=%s msg=\"the next change is snapshotted again; the "
                            "file goes up whole at its close\"",
                            af_q(s->d.relpath), af_q(s->d.bucket), af_q(s->d.key),
                            err.http_status, af_q(err.code), af_q(strerror(-r)));
        snapshot_free(s);
}

/* The snapshot thread's step: the next snapshot that may go, or wait (polling while one
 * waits for a job, whose end wakes only the workers). */
static void step_locked(struct af_queue *q, struct af_s3_client *s3)
{
        bool blocked = false;
        struct snapshot *s = NULL;

        /* Past the shutdown's deadline nothing starts (the final uploads are journaled). */
        if (atomic_load(&q->cancel)) {
                pthread_cond_wait(&q->stream_work, &q->lock);
                return;
        }
        s = pick_locked(q, &blocked);
        if (!s) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += blocked ? 0 : 1;
                ts.tv_nsec += blocked ? 200000000L : 0;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&q->stream_work, &q->lock, &ts);
                return;
        }
        pthread_mutex_unlock(&q->lock);
        run_snapshot(q, s3, s);
        pthread_mutex_lock(&q->lock);
}

static void *snapshot_thread(void *arg)
{
        return af_queue_thread_run(arg, step_locked);
}

static struct snapshot *snapshot_new(const char *relpath, const struct af_route *route, int fd,
                                     const struct stat *st)
{
        struct snapshot *s = calloc(1, sizeof(*s));

        if (!s) {
                close(fd);
                return NULL;
        }
        s->fd = fd;
        s->st = *st;
        if (!(s->d.relpath = strdup(relpath)) || !(s->d.bucket = strdup(route->bucket)) ||
            !(s->d.key = strdup(af_buf_str(&route->key))) ||
            af_job_set_format(&s->d, route) < 0) {
                snapshot_free(s);
                return NULL;
        }
        return s;
}

int af_queue_snapshot(struct af_queue *q, const char *relpath, const struct af_route *route,
                      int fd, const struct stat *st, const atomic_uint *handovers,
                      unsigned seen)
{
        struct snapshot *s = snapshot_new(relpath, route, fd, st), *old = NULL, *added, **pp;
        int r = 0;

        if (!s)
                return -ENOMEM;
        pthread_mutex_lock(&q->lock);
        if (q->locked.stopping) {
                r = -ESHUTDOWN;
        } else if (atomic_load(handovers) != seen || af_queue_find_locked(q, relpath)) {
                /* An upload of it was submitted since the copy (under q->lock, so after this
                 * check a new one finds the snapshot, and drops it or waits for it). */
                r = -EBUSY;
        } else if (!q->snapshot_started) {
                r = -pthread_create(&q->snapshot_thread, NULL, snapshot_thread, q);
                q->snapshot_started = r == 0;
        }
        if (r < 0)
                goto out;
        /* The newest copy replaces one still waiting. */
        old = find_locked(q, relpath, false);
        if (old)
                unlink_locked(q, old);
        for (pp = &q->locked.snapshots; *pp; pp = &(*pp)->next)
                ;
        *pp = added = s;
        s = NULL;
        /* The file is pending from now on, as a stream is: a crash leaves it to the next
         * run. A stream's record (its upload id and parts) says so already. */
        if (!af_stream_find_locked(q, relpath))
                af_record_put_locked(q, relpath, route->bucket, af_buf_str(&route->key),
                                     &added->d.f, AF_JOURNAL_PENDING, NULL, NULL);
        pthread_cond_broadcast(&q->stream_work);
out:
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        snapshot_free(old);
        snapshot_free(s);
        return r;
}

bool af_queue_snapshot_pending(struct af_queue *q, const char *relpath)
{
        bool pending;

        pthread_mutex_lock(&q->lock);
        pending = find_locked(q, relpath, false) || find_locked(q, relpath, true);
        pthread_mutex_unlock(&q->lock);
        return pending;
}

void af_snapshot_join(struct af_queue *q)
{
        struct snapshot *s, *next;

        if (q->snapshot_started)
                pthread_join(q->snapshot_thread, NULL);
        for (s = q->locked.snapshots; s; s = next) {
                next = s->next;
                snapshot_free(s);
        }
        q->locked.snapshots = NULL;
}
