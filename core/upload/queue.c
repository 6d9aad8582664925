/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The upload queue (queue.h): its jobs, in one FIFO list under q->lock, the workers that
 * pick them (order.c says which may go) and run them (run.c), and the waiting: a file's
 * upload (fsync, --sync-close), the whole queue (drain). See queue_int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

void af_queue_unlink_locked(struct af_queue *q, struct job *j)
{
        struct job **pp = &q->locked.head, *prev = NULL;

        while (*pp && *pp != j) {
                prev = *pp;
                pp = &(*pp)->next;
        }
        if (!*pp)
                return;
        *pp = j->next;
        if (q->locked.tail == j)
                q->locked.tail = prev;
        j->next = NULL;
}

struct job *af_queue_find_locked(struct af_queue *q, const char *relpath)
{
        for (struct job *j = q->locked.head; j; j = j->next)
                if (j->d.kind == JOB_UPLOAD && strcmp(j->d.relpath, relpath) == 0)
                        return j;
        return NULL;
}

void af_queue_enqueue_locked(struct af_queue *q, struct job *j)
{
        if (q->locked.tail)
                q->locked.tail->next = j;
        else
                q->locked.head = j;
        q->locked.tail = j;
        if (j->d.kind == JOB_UPLOAD) { /* deletes are not files to upload */
                q->locked.stats.pending_files++;
                q->locked.stats.pending_bytes += j->size;
        }
        pthread_cond_signal(&q->work);
}

static struct outcome *outcome_find_locked(struct af_queue *q, const char *relpath)
{
        for (struct outcome *o = q->locked.outcomes; o; o = o->next)
                if (strcmp(o->relpath, relpath) == 0)
                        return o;
        return NULL;
}

/* Someone waits on @relpath: remember how its upload ends. */
void af_queue_note_outcome_locked(struct af_queue *q, const char *relpath, uint64_t seq, int result)
{
        struct outcome *o = outcome_find_locked(q, relpath);

        if (!o || seq < o->seq)
                return;
        o->seq = seq;
        o->result = result;
        pthread_cond_broadcast(&q->done);
}

/* How @relpath is packaged for @bucket/@key: as the artifact claiming it with that key says
 * (several may declare its path, see extras.c), else as the mount routes it. */
static int route_for(const struct af_router *rt, const char *relpath, const char *bucket,
                     const char *key, struct af_route *route)
{
        int rr;

        for (size_t n = 0; (rr = af_router_route_nth(rt, relpath, n, route)) != -ESRCH; n++)
                if (rr > 0 && !route->deferred && strcmp(route->bucket, bucket) == 0 &&
                    strcmp(af_buf_str(&route->key), key) == 0)
                        return rr;
        return af_router_route_own(rt, relpath, route);
}

/* When a file of @size handed over with @settle may start (0: at once). A file whose upload
 * streamed while it was written is not held back (the caller says so): its parts are up
 * already, and a rename after the close cannot save them. */
static uint64_t settle_until(const struct af_queue *q, bool settle, uint64_t size)
{
        if (!settle || !q->cfg.settle_ms || size < q->cfg.settle_min_size)
                return 0;
        return af_clock_mono_ms() + (uint64_t)q->cfg.settle_ms;
}

/* Whether the running @j already sends its file's data as of @v to @bucket/@key. */
static bool covered_locked(const struct job *j, const char *bucket, const char *key,
                           const struct af_queue_version *v)
{
        return v && j->state == JOB_RUNNING && !j->again && j->run_has_ver &&
               j->opened_ver == 1 && j->run_ver.dev == v->dev && j->run_ver.ino == v->ino &&
               j->run_ver.changes == v->changes && !j->d.copy &&
               strcmp(j->d.bucket, bucket) == 0 && strcmp(j->d.key, key) == 0;
}

/*
 * @settle: start the upload only after settle_ms. A program that closes "out.tmp" and
 * renames it to "out.csv" (rsync, editors, atomic saves) usually does so within
 * milliseconds: the rename then finds the job not yet started, the old name's upload is
 * skipped and only the final name goes up. fsync and --sync-close do not wait.
 */
static int submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key,
                  bool settle, const struct copy_src *copy, const struct af_queue_version *v,
                  uint64_t *ret_seq)
{
        struct af_route route = { 0 };
        bool routed = false;
        uint64_t size = 0;
        struct stat st;
        struct job *j;
        int r = 0;

        /* Its size for the pending bytes (a directory: its archive's, not known yet). */
        if (fstatat(q->cfg.spool_dirfd, relpath, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode))
                size = (uint64_t)st.st_size;
        /* Routing is pure and needs no lock: decide the packaging before taking it. */
        af_buf_init(&route.key, 0);
        if (q->cfg.router && route_for(q->cfg.router, relpath, bucket, key, &route) > 0) {
                if (route.deferred) {
                        /* Goes up inside its directory's archive when that is complete. */
                        af_buf_done(&route.key);
                        af_log_debug("op=submit path=%s msg=\"part of an archived directory; "
                                     "uploaded with it\"",
                                     af_q(relpath));
                        return 0;
                }
                routed = true;
        }
        pthread_mutex_lock(&q->lock);
        if (q->locked.stopping) {
                r = -ESHUTDOWN;
                goto out;
        }
        j = af_queue_find_locked(q, relpath);
        if (j && !copy && covered_locked(j, bucket, key, v)) {
                af_log_debug("op=submit path=%s msg=\"its upload under way sends this version\"",
                             af_q(relpath));
                goto out;
        }
        if (j) {
                j->has_ver = v != NULL;
                if (v)
                        j->ver = *v;
                /* Same file again: the newest key wins, and a running upload goes again. */
                r = af_job_set_str(&j->d.bucket, bucket);
                if (r == 0)
                        r = af_job_set_str(&j->d.key, key);
                if (r == 0)
                        r = af_job_set_format(&j->d, routed ? &route : NULL);
                if (r == 0)
                        r = af_job_set_copy(&j->d, copy);
                if (j->state == JOB_RUNNING)
                        j->again = true;
                j->seq = ++q->locked.submit_seq;
                if (ret_seq)
                        *ret_seq = j->seq;
                j->attempts = 0;
                j->first_failure_ms = 0;
                j->handed_ms = af_clock_mono_ms();
                q->locked.stats.pending_bytes += size;
                q->locked.stats.pending_bytes -= j->size;
                j->size = size;
                j->not_before_ms =
                        settle_until(q, settle && !af_stream_find_locked(q, relpath), size);
                if (r == 0)
                        af_record_put_locked(q, j->d.relpath, j->d.bucket, j->d.key, &j->d.f,
                                             AF_JOURNAL_PENDING, NULL, NULL);
                af_order_after_deletes_locked(q, j);
                goto out;
        }
        j = calloc(1, sizeof(*j));
        if (!j || !(j->d.relpath = strdup(relpath)) || !(j->d.bucket = strdup(bucket)) ||
            !(j->d.key = strdup(key)) || af_job_set_format(&j->d, routed ? &route : NULL) < 0 ||
            af_job_set_copy(&j->d, copy) < 0) {
                af_job_free(j);
                r = -ENOMEM;
                goto out;
        }
        j->seq = ++q->locked.submit_seq;
        if (ret_seq)
                *ret_seq = j->seq;
        j->has_ver = v != NULL;
        if (v)
                j->ver = *v;
        j->handed_ms = af_clock_mono_ms();
        j->size = size;
        j->not_before_ms = settle_until(q, settle && !af_stream_find_locked(q, relpath), size);
        af_record_put_locked(q, j->d.relpath, j->d.bucket, j->d.key, &j->d.f, AF_JOURNAL_PENDING,
                             NULL, NULL);
        af_queue_enqueue_locked(q, j);
out:
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        af_buf_done(&route.key);
        return r;
}

int af_queue_submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key)
{
        return submit(q, relpath, bucket, key, true, NULL, NULL, NULL);
}

int af_queue_submit_version(struct af_queue *q, const char *relpath, const char *bucket,
                            const char *key, const struct af_queue_version *v)
{
        return submit(q, relpath, bucket, key, true, NULL, v, NULL);
}

int af_queue_submit_copy(struct af_queue *q, const char *relpath, const char *bucket,
                         const char *key, const struct af_queue_copy *src)
{
        struct copy_src c = { .bucket = (char *)src->bucket,
                              .key = (char *)src->key,
                              .etag = (char *)(src->etag ? src->etag : ""),
                              .dev = src->dev,
                              .ino = src->ino,
                              .size = src->size,
                              .mtime_ns = src->mtime_ns };

        return submit(q, relpath, bucket, key, true, &c, NULL, NULL);
}

int af_queue_submit_delete(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *etag)
{
        struct job *j = af_job_new_delete(relpath, bucket, key, etag);

        if (!j)
                return -ENOMEM;
        pthread_mutex_lock(&q->lock);
        /* Once stopping (an upload that ended while the queue was being freed found its name
         * gone), the delete is still journaled and listed: no worker starts it, af_queue_free
         * logs it as left, and the next mount or drain does it. Refusing it would leave the
         * object in S3 with nothing to say it is stray. */
        j->seq = ++q->locked.submit_seq;
        af_record_put_delete_locked(q, j, AF_JOURNAL_PENDING, NULL);
        af_queue_enqueue_locked(q, j);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q);
        return 0;
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(c, m, &ts);
}

/* The sooner of @deadline and the shutdown's (monotonic ms; UINT64_MAX: none). */
static uint64_t sooner_locked(const struct af_queue *q, uint64_t deadline)
{
        if (q->locked.deadline_ms && q->locked.deadline_ms < deadline)
                return q->locked.deadline_ms;
        return deadline;
}

/* Transfers in flight stop (their jobs go back to the queue, journaled), and every waiter,
 * worker and part thread wakes to look again. */
static void cancel_all_locked(struct af_queue *q)
{
        atomic_store(&q->cancel, true);
        pthread_cond_broadcast(&q->work);
        pthread_cond_broadcast(&q->done);
        pthread_cond_broadcast(&q->idle);
        pthread_cond_broadcast(&q->stream_work);
        pthread_cond_broadcast(&q->stream_idle);
}

/* Whether the shutdown's deadline has passed; whoever sees it first cancels all. */
static bool expired_locked(struct af_queue *q)
{
        if (q->locked.expired)
                return true;
        if (!q->locked.deadline_ms || af_clock_mono_ms() < q->locked.deadline_ms)
                return false;
        q->locked.expired = true;
        cancel_all_locked(q);
        return true;
}

void af_queue_set_deadline(struct af_queue *q, long timeout_ms)
{
        uint64_t deadline;

        if (timeout_ms < 0)
                return;
        deadline = af_clock_mono_ms() + (uint64_t)timeout_ms;
        pthread_mutex_lock(&q->lock);
        if (!q->locked.deadline_ms || deadline < q->locked.deadline_ms) {
                q->locked.deadline_ms = deadline;
                /* Waiters and idle workers wait again, with the deadline in view. */
                pthread_cond_broadcast(&q->done);
                pthread_cond_broadcast(&q->idle);
                pthread_cond_broadcast(&q->work);
        }
        pthread_mutex_unlock(&q->lock);
}

struct af_s3_client *af_queue_client_new(struct af_queue *q)
{
        struct af_s3_client *s3 = NULL;
        struct af_buf err;

        af_buf_init(&err, 1024);
        if (q->s3->client_new(q->cfg.s3, q->cfg.creds, &s3, &err) < 0)
                af_log_error("op=worker err=%s", af_q(af_buf_str(&err)));
        else
                q->s3->set_cancel(s3, &q->cancel);
        af_buf_done(&err);
        return s3;
}

void af_queue_client_free(struct af_queue *q, struct af_s3_client *s3)
{
        if (s3)
                q->s3->client_free(s3);
}

static void failure_free(struct failure *f)
{
        free(f->relpath);
        free(f->bucket);
        free(f->key);
        free(f->error);
        free(f);
}

/* Remembers a file that failed for good, for the end-of-run report. Best effort: on OOM the
 * log line already said it. */
void af_queue_record_failure_locked(struct af_queue *q, const char *relpath, const char *bucket,
                                    const char *key, const char *error)
{
        struct failure *f;

        if (q->locked.nfailures >= MAX_FAILURES)
                return;
        f = calloc(1, sizeof(*f));
        if (!f)
                return;
        f->relpath = strdup(relpath);
        f->bucket = strdup(bucket);
        f->key = strdup(key);
        f->error = strdup(error);
        if (!f->relpath || !f->bucket || !f->key || !f->error) {
                failure_free(f);
                return;
        }
        f->next = q->locked.failures;
        q->locked.failures = f;
        q->locked.nfailures++;
}

void af_queue_foreach_problem(struct af_queue *q,
                              void (*fn)(void *ctx, const char *relpath, const char *bucket,
                                         const char *key, const char *error),
                              void *ctx)
{
        struct failure *rev = NULL, *f, *next;

        pthread_mutex_lock(&q->lock);
        /* The list is newest first; report oldest first. */
        for (f = q->locked.failures; f; f = f->next) {
                struct failure *c = calloc(1, sizeof(*c));

                if (!c)
                        break;
                *c = *f;
                c->next = rev;
                rev = c;
        }
        for (f = rev; f; f = f->next)
                fn(ctx, f->relpath, f->bucket, f->key, f->error);
        for (struct job *j = q->locked.head; j; j = j->next)
                if (j->d.kind == JOB_UPLOAD) /* a pending delete loses no output */
                        fn(ctx, j->d.relpath, j->d.bucket, j->d.key, "still pending");
        pthread_mutex_unlock(&q->lock);
        for (f = rev; f; f = next) {
                next = f->next;
                free(f); /* the strings belong to the originals */
        }
}

bool af_queue_pending(struct af_queue *q, const char *relpath)
{
        bool pending;

        pthread_mutex_lock(&q->lock);
        pending = af_queue_find_locked(q, relpath) != NULL;
        pthread_mutex_unlock(&q->lock);
        return pending;
}

void *af_queue_thread_run(struct af_queue *q,
                          void (*step_locked)(struct af_queue *q, struct af_s3_client *s3))
{
        struct af_s3_client *s3 = af_queue_client_new(q);

        if (!s3)
                return NULL;
        pthread_mutex_lock(&q->lock);
        while (!q->locked.stopping)
                step_locked(q, s3);
        pthread_mutex_unlock(&q->lock);
        af_queue_client_free(q, s3);
        return NULL;
}

/* A worker's step: run the next job that may go, or wait for one. Past the shutdown's
 * deadline nothing starts: the worker waits for af_queue_free. */
static void work_locked(struct af_queue *q, struct af_s3_client *s3)
{
        uint64_t wait = 0, now = af_clock_mono_ms();
        struct job_desc t = { 0 };
        struct job *j;

        if (expired_locked(q)) {
                pthread_cond_wait(&q->work, &q->lock);
                return;
        }
        j = af_order_pick_locked(q, &wait);
        if (!j) {
                /* An idle worker is who notices the deadline when nobody waits. */
                if (q->locked.deadline_ms &&
                    (wait == UINT64_MAX || now + wait > q->locked.deadline_ms))
                        wait = q->locked.deadline_ms > now ? q->locked.deadline_ms - now : 0;
                if (wait == UINT64_MAX)
                        pthread_cond_wait(&q->work, &q->lock);
                else
                        timed_wait(&q->work, &q->lock, wait);
                return;
        }
        j->state = JOB_RUNNING;
        j->again = false;
        j->picked_seq = j->seq;
        j->run_ver = j->ver;
        j->run_has_ver = j->has_ver;
        j->opened_ver = 0;
        /* Private copies: a submit may replace the job's strings while we upload. */
        if (af_job_desc_take_locked(j, &t) == 0) {
                t.owner = j;
                pthread_mutex_unlock(&q->lock);
                if (t.kind != JOB_UPLOAD)
                        af_run_delete(q, s3, j, &t);
                else
                        af_run_upload(q, s3, j, &t);
        } else {
                j->state = JOB_QUEUED;
                j->not_before_ms = af_clock_mono_ms() + 1000;
                pthread_mutex_unlock(&q->lock);
        }
        af_job_desc_done(&t);
        pthread_mutex_lock(&q->lock);
}

static void *worker(void *arg)
{
        return af_queue_thread_run(arg, work_locked);
}

/* The configuration with its defaults filled in, and the retry policies it sets. */
static void configure(struct af_queue *q, const struct af_queue_config *cfg)
{
        struct af_queue_config *c = &q->cfg;

        *c = *cfg;
        if (!c->workers)
                c->workers = 4;
        if (!c->max_attempts)
                c->max_attempts = 10;
        if (!c->backoff_base_ms)
                c->backoff_base_ms = 200;
        if (!c->backoff_max_ms)
                c->backoff_max_ms = 20000;
        if (!c->part_size)
                c->part_size = (uint64_t)8 << 20;
        if (!c->multipart_threshold)
                c->multipart_threshold = (uint64_t)16 << 20;
        if (!c->part_concurrency)
                c->part_concurrency = 4;
        if (c->part_concurrency > AF_QUEUE_MAX_PART_CONCURRENCY)
                c->part_concurrency = AF_QUEUE_MAX_PART_CONCURRENCY;
        if (c->settle_ms < 0)
                c->settle_ms = 0;
        else if (!c->settle_ms)
                c->settle_ms = 200;
        if (c->multipart_threshold < c->part_size)
                c->multipart_threshold = c->part_size;
        q->s3 = c->s3_ops ? c->s3_ops : &af_s3_ops_client;
        q->retry_upload = (struct af_retry_policy){ .max_attempts = c->max_attempts,
                                                    .retry_for_ms = c->retry_for_ms,
                                                    .base_ms = c->backoff_base_ms,
                                                    .max_ms = c->backoff_max_ms,
                                                    .stale = true };
        q->retry_delete = q->retry_upload;
        q->retry_delete.stale = false;
        q->retry_part = (struct af_retry_policy){ .max_attempts = AF_RETRY_IN_PLACE,
                                                  .base_ms = c->backoff_base_ms,
                                                  .max_ms = c->backoff_max_ms };
}

int af_queue_new(const struct af_queue_config *cfg, struct af_queue **ret, struct af_buf *err)
{
        const struct af_s3_ops *ops = cfg->s3_ops ? cfg->s3_ops : &af_s3_ops_client;
        struct af_s3_client *probe = NULL;
        struct af_queue *q;
        int r;

        /* Validate the S3 configuration once, here, so workers cannot fail to start. */
        r = ops->client_new(cfg->s3, cfg->creds, &probe, err);
        if (r < 0)
                return r;
        ops->client_free(probe);
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        configure(q, cfg);
        q->locked.records_tail = &q->locked.records;
        pthread_mutex_init(&q->journal_lock, NULL);
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->work, NULL);
        pthread_cond_init(&q->idle, NULL);
        pthread_cond_init(&q->done, NULL);
        pthread_cond_init(&q->stream_work, NULL);
        pthread_cond_init(&q->stream_idle, NULL);
        q->threads = calloc(q->cfg.workers, sizeof(*q->threads));
        if (!q->threads) {
                af_queue_free(q);
                return -ENOMEM;
        }
        for (unsigned i = 0; i < q->cfg.workers; i++) {
                r = pthread_create(&q->threads[i], NULL, worker, q);
                if (r) {
                        (void)af_buf_addf(err, "cannot start upload worker: %s", strerror(r));
                        af_queue_free(q);
                        return -r;
                }
                q->nthreads++;
        }
        *ret = q;
        return 0;
}

static int sync_one(struct af_queue *q, const char *relpath, const char *bucket,
                    const char *key, bool submit_now, long timeout_ms)
{
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : af_clock_mono_ms() + (uint64_t)timeout_ms;
        struct outcome *o;
        uint64_t target;
        int r;

        /* Register before submitting, so the outcome cannot slip by unseen. */
        pthread_mutex_lock(&q->lock);
        o = outcome_find_locked(q, relpath);
        if (!o) {
                o = calloc(1, sizeof(*o));
                if (!o || !(o->relpath = strdup(relpath))) {
                        free(o);
                        pthread_mutex_unlock(&q->lock);
                        return -ENOMEM;
                }
                o->next = q->locked.outcomes;
                q->locked.outcomes = o;
        }
        o->waiters++;
        pthread_mutex_unlock(&q->lock);

        /* The submit says which seq to wait for: the job may be done (or failed) before
         * the lock is taken again below, and its outcome is then recorded already. */
        target = 0;
        r = submit_now ? submit(q, relpath, bucket, key, false, NULL, NULL, &target) : 0;

        pthread_mutex_lock(&q->lock);
        if (r == 0) {
                struct job *j = submit_now ? NULL : af_queue_find_locked(q, relpath);

                /* Not queued (a part of an archived directory): nothing to wait for. */
                if (j)
                        target = j->seq;
                while (target && o->seq < target) {
                        uint64_t now = af_clock_mono_ms(), until = sooner_locked(q, deadline);

                        if (q->locked.stopping) {
                                r = -ESHUTDOWN;
                                break;
                        }
                        if (expired_locked(q) || now >= until) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        timed_wait(&q->done, &q->lock, until - now < 1000 ? until - now : 1000);
                }
                if (r == 0 && target)
                        r = o->result;
        }
        if (--o->waiters == 0) {
                struct outcome **pp = &q->locked.outcomes;

                while (*pp != o)
                        pp = &(*pp)->next;
                *pp = o->next;
                free(o->relpath);
                free(o);
        }
        pthread_mutex_unlock(&q->lock);
        return r;
}

int af_queue_submit_wait(struct af_queue *q, const char *relpath, const char *bucket,
                         const char *key, long timeout_ms)
{
        return sync_one(q, relpath, bucket, key, true, timeout_ms);
}

int af_queue_wait(struct af_queue *q, const char *relpath, long timeout_ms)
{
        return sync_one(q, relpath, NULL, NULL, false, timeout_ms);
}

int af_queue_drain(struct af_queue *q, long timeout_ms)
{
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : af_clock_mono_ms() + (uint64_t)timeout_ms;
        int r = 0;

        pthread_mutex_lock(&q->lock);
        while (q->locked.head || q->locked.aborting || q->locked.notifying) {
                uint64_t now = af_clock_mono_ms(), until = sooner_locked(q, deadline);

                if (expired_locked(q) || now >= until) {
                        r = -ETIMEDOUT;
                        break;
                }
                timed_wait(&q->idle, &q->lock, until - now < 1000 ? until - now : 1000);
        }
        pthread_mutex_unlock(&q->lock);
        /* The jobs that left made their journal writes, but a worker may be doing them: a
         * drained queue is one whose records are on disk too. */
        af_record_flush(q);
        return r;
}

void af_queue_get_stats(struct af_queue *q, struct af_queue_stats *ret)
{
        pthread_mutex_lock(&q->lock);
        *ret = q->locked.stats;
        pthread_mutex_unlock(&q->lock);
}

void af_queue_free(struct af_queue *q)
{
        struct job *j, *next;

        if (!q)
                return;
        pthread_mutex_lock(&q->lock);
        q->locked.stopping = true;
        cancel_all_locked(q);
        pthread_mutex_unlock(&q->lock);
        for (unsigned i = 0; i < q->nthreads; i++)
                pthread_join(q->threads[i], NULL);
        for (unsigned i = 0; i < q->nstream_threads; i++)
                pthread_join(q->stream_threads[i], NULL);
        af_snapshot_join(q);
        /* Streams still open keep their journal record (upload id and parts): the next mount
         * or drain finishes them. The mount's references may outlive the queue. */
        pthread_mutex_lock(&q->lock);
        af_stream_drop_all_locked(q);
        pthread_mutex_unlock(&q->lock);
        af_record_flush(q); /* each thread flushed what it queued: nothing is left, normally */
        for (j = q->locked.head; j; j = next) {
                next = j->next;
                if (j->d.kind != JOB_UPLOAD)
                        af_log_warn("op=%s status=left path=%s bucket=%s key=%s "
                                    "msg=\"not done yet; journaled for the next mount or "
                                    "drain\"",
                                    j->d.kind == JOB_DELETE ? "delete" : "abort_multipart",
                                    af_q(j->d.relpath), af_q(j->d.bucket), af_q(j->d.key));
                else
                        af_log_error("op=upload status=left path=%s bucket=%s key=%s "
                                     "msg=\"not uploaded; file kept in the spool\"",
                                     af_q(j->d.relpath), af_q(j->d.bucket), af_q(j->d.key));
                af_job_free(j);
        }
        for (struct failure *f = q->locked.failures, *fn; f; f = fn) {
                fn = f->next;
                failure_free(f);
        }
        pthread_cond_destroy(&q->work);
        pthread_cond_destroy(&q->idle);
        pthread_cond_destroy(&q->done);
        pthread_cond_destroy(&q->stream_work);
        pthread_cond_destroy(&q->stream_idle);
        pthread_mutex_destroy(&q->lock);
        pthread_mutex_destroy(&q->journal_lock);
        free(q->threads);
        free(q);
}

bool af_queue_part_retry(struct af_queue *q, int r, unsigned failed)
{
        if (!af_retry_again(&q->retry_part, r, failed, 0))
                return false;
        af_metrics_retry(q->cfg.metrics, r);
        return true;
}
