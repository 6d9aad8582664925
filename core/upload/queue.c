/* SPDX-License-Identifier: Apache-2.0 */
/* Upload workers and part threads. See queue.h. Lock order: q->lock, then an mpu's lock. */
#include "upload/queue.h"
#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "upload/archive.h"
#include "argo/argovars.h"
#include "base/crypto.h"
#include "upload/journal.h"
#include "base/log.h"

#define PART_ATTEMPTS 4

enum job_state {
        JOB_QUEUED,
        JOB_RUNNING,
};

/* Uploads are the queue's job; deletes (--delete-on-unlink) ride along, ordered by key. */
enum job_kind {
        JOB_UPLOAD = 0,
        JOB_DELETE,
};

/* A server-side copy source for a renamed file (af_queue_submit_copy). */
struct copy_src {
        char *bucket;
        char *key;
        char *etag;
        dev_t dev;
        ino_t ino;
        uint64_t size;
        int64_t mtime_ns;
};

/* How a job's file is packaged: as it is, or as an archive. */
struct fmt {
        enum af_archive archive;
        char *member;
        char *zip_file_member;
        int level;
};

/* What a worker uploads: private copies of a job's fields, taken under the lock. */
struct task {
        char *relpath;
        char *bucket;
        char *key;
        struct fmt f;
        char *upload_id; /* resume hints, see struct job */
        struct af_s3_part *done;
        size_t ndone;
        uint64_t rec_size;
        int64_t rec_mtime_ns;
        uint64_t rec_part_size;
        enum job_kind kind;
        char *etag;            /* a delete: the ETag the object must still have */
        struct copy_src *copy; /* an upload that may be a copy */
        bool rec_stream;
};

struct job {
        struct job *next;
        char *relpath;
        char *bucket;
        char *key;
        enum job_state state;
        enum af_archive archive; /* NONE, TAR or ZIP */
        char *member;            /* the member name (a directory's, for ZIP) */
        char *zip_file_member;   /* ZIP of a single file: its entry name */
        int level;               /* gzip/deflate level */
        /* A multipart upload a journal record says was in progress: the next attempt lists
         * its parts and sends only the missing ones, if the file is unchanged. */
        char *upload_id;
        struct af_s3_part *done;
        size_t ndone;
        uint64_t rec_size;
        int64_t rec_mtime_ns;
        uint64_t rec_part_size;
        bool rec_stream;     /* the record was a stream's: parts are checked by CRC-32C */
        uint64_t seq;        /* the newest submit of this file (queue-wide counter) */
        uint64_t picked_seq; /* seq when the running upload started */
        bool again;         /* resubmitted while running: upload once more */
        unsigned attempts;  /* failed attempts so far */
        uint64_t not_before_ms; /* backoff: not picked before this monotonic time */
        uint64_t first_failure_ms; /* when this file first failed, for the retry window */
        enum job_kind kind;
        char *etag;            /* a delete: the ETag the object must still have */
        struct copy_src *copy; /* an upload that may be a copy, see af_queue_submit_copy */
};

/* The last upload outcome of a file someone is waiting on (fsync, --sync-close). */
struct outcome {
        struct outcome *next;
        char *relpath;
        unsigned waiters;
        uint64_t seq; /* the submit seq the finished upload covered */
        int result;
};

struct failure {
        struct failure *next;
        char *relpath;
        char *bucket;
        char *key;
        char *error;
};

#define MAX_FAILURES 1000

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
        bool stalled;     /* creating or a part failed for good: the close's upload sends the rest */
        unsigned sending; /* parts in flight */
        size_t next_part; /* the next part to send */
        size_t nparts;    /* handed over: bytes [0, nparts * part) */
        size_t aparts;
        struct af_s3_part *parts; /* number 0: not sent (yet) */
        char upload_id[1024];     /* "" until created (upload_id is written once) */
        char why[64];             /* why it was abandoned */
};

struct af_queue {
        struct af_queue_config cfg;
        pthread_t *threads;
        unsigned nthreads;
        pthread_mutex_t lock;
        pthread_cond_t work;    /* a job became ready, or stopping */
        pthread_cond_t idle;    /* the queue may have become empty */
        struct {
                struct job *head; /* FIFO */
                struct job *tail;
                bool stopping;
                struct af_queue_stats stats;
                struct failure *failures; /* newest first, at most MAX_FAILURES */
                size_t nfailures;
                uint64_t submit_seq;
                struct outcome *outcomes;
                struct af_stream *streams;
                unsigned aborting; /* streams abandoned and not yet aborted (drain waits) */
        } locked; /* only with lock held */
        pthread_cond_t done; /* an outcome was recorded */
        pthread_cond_t stream_work; /* a stream has something for the part threads */
        pthread_cond_t stream_idle; /* a stream's part or CreateMultipartUpload finished */
        pthread_t stream_threads[AF_QUEUE_MAX_PART_CONCURRENCY]; /* started with the first stream */
        unsigned nstream_threads; /* with lock */
        atomic_bool cancel;  /* shutting down: transfers in flight stop, jobs stay journaled */
};

/* A uniform number in [0, 1) for jitter. Each thread seeds its own generator from the clock,
 * the pid and its own address, so daemons that fail together do not retry together. */
static double jitter(void)
{
        static _Thread_local uint64_t state;
        struct timespec ts;

        if (!state) {
                clock_gettime(CLOCK_REALTIME, &ts);
                state = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
                        ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&state;
                if (!state)
                        state = 0x9e3779b97f4a7c15ull;
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return (double)(state >> 11) / (double)(1ull << 53);
}

unsigned af_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, double rnd)
{
        uint64_t cap = base_ms;

        for (unsigned i = 0; i < attempt && cap < max_ms; i++)
                cap *= 2;
        if (cap > max_ms)
                cap = max_ms;
        return (unsigned)((double)cap * rnd);
}

static void copy_src_free(struct copy_src *c)
{
        if (!c)
                return;
        free(c->bucket);
        free(c->key);
        free(c->etag);
        free(c);
}

static struct copy_src *copy_src_dup(const struct copy_src *c)
{
        struct copy_src *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        *d = *c;
        d->bucket = strdup(c->bucket);
        d->key = strdup(c->key);
        d->etag = strdup(c->etag);
        if (!d->bucket || !d->key || !d->etag) {
                copy_src_free(d);
                return NULL;
        }
        return d;
}

static void job_free(struct job *j)
{
        if (!j)
                return;
        free(j->etag);
        copy_src_free(j->copy);
        free(j->relpath);
        free(j->bucket);
        free(j->key);
        free(j->member);
        free(j->zip_file_member);
        free(j->upload_id);
        free(j->done);
        free(j);
}

static int set_str(char **dst, const char *src)
{
        char *s = strdup(src);

        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

static int set_format(struct job *j, const struct af_route *route)
{
        bool archived = route && route->archive != AF_ARCHIVE_NONE;
        char *m = archived && route->member ? strdup(route->member) : NULL;
        char *zm = archived && route->zip_file_member ? strdup(route->zip_file_member) : NULL;

        if ((archived && route->member && !m) || (archived && route->zip_file_member && !zm)) {
                free(m);
                free(zm);
                return -ENOMEM;
        }
        free(j->member);
        free(j->zip_file_member);
        j->member = m;
        j->zip_file_member = zm;
        j->archive = archived ? route->archive : AF_ARCHIVE_NONE;
        j->level = archived ? route->compression_level : -1;
        return 0;
}

static void unlink_job_locked(struct af_queue *q, struct job *j)
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

static struct job *find_locked(struct af_queue *q, const char *relpath)
{
        for (struct job *j = q->locked.head; j; j = j->next)
                if (j->kind == JOB_UPLOAD && strcmp(j->relpath, relpath) == 0)
                        return j;
        return NULL;
}

static void enqueue_locked(struct af_queue *q, struct job *j)
{
        if (q->locked.tail)
                q->locked.tail->next = j;
        else
                q->locked.head = j;
        q->locked.tail = j;
        if (j->kind == JOB_UPLOAD) /* deletes are not files to upload */
                q->locked.stats.pending_files++;
        pthread_cond_signal(&q->work);
}

/* Progress of a multipart upload, for its journal record. */
struct mpu_progress {
        const char *upload_id;
        uint64_t size;
        int64_t mtime_ns;
        uint64_t part_size;
        const struct af_s3_part *parts; /* number 0 = not finished */
        size_t nparts;
        bool stream;
};

static struct af_stream *stream_find_locked(struct af_queue *q, const char *relpath)
{
        for (struct af_stream *s = q->locked.streams; s; s = s->next)
                if (s->state == STREAM_OPEN && strcmp(s->relpath, relpath) == 0)
                        return s;
        return NULL;
}

static void stream_progress_locked(const struct af_stream *s, struct mpu_progress *mp)
{
        *mp = (struct mpu_progress){ .upload_id = s->upload_id[0] ? s->upload_id : NULL,
                                     .size = (uint64_t)s->nparts * s->part,
                                     .part_size = s->part,
                                     .parts = s->parts,
                                     .nparts = s->nparts,
                                     .stream = true };
}

/*
 * Writes the record of @relpath. All journal writes and removals happen with q->lock held,
 * so the record on disk always matches the newest decision about the file.
 */
static void journal_put_locked(struct af_queue *q, const char *relpath, const char *bucket,
                               const char *key, const struct fmt *f,
                               enum af_journal_state state, const char *error,
                               const struct mpu_progress *mp)
{
        struct af_journal_rec rec = { 0 };
        struct af_s3_part *parts = NULL;
        struct af_stream *s = mp ? NULL : stream_find_locked(q, relpath);
        struct mpu_progress smp;
        int r;

        if (!q->cfg.journal)
                return;
        if (s) {
                /* The file's stream has an upload in progress: the record must keep it, or a
                 * crash now would leave it open and unknown. */
                stream_progress_locked(s, &smp);
                mp = &smp;
        }
        rec.path = (char *)relpath;
        rec.bucket = (char *)bucket;
        rec.key = (char *)key;
        rec.endpoint = (char *)q->cfg.s3->endpoint;
        rec.region = (char *)q->cfg.s3->region;
        rec.archive = f ? f->archive : AF_ARCHIVE_NONE;
        rec.member = f ? f->member : NULL;
        rec.zip_file_member = f ? f->zip_file_member : NULL;
        rec.level = f ? f->level : -1;
        rec.state = state;
        rec.error = (char *)error;
        rec.updated = time(NULL);
        if (mp) {
                rec.upload_id = (char *)mp->upload_id;
                rec.size = mp->size;
                rec.mtime_ns = mp->mtime_ns;
                rec.part_size = mp->part_size;
                rec.stream = mp->stream;
                parts = calloc(mp->nparts ? mp->nparts : 1, sizeof(*parts));
                for (size_t i = 0; parts && i < mp->nparts; i++)
                        if (mp->parts[i].number)
                                parts[rec.nparts++] = mp->parts[i];
                rec.parts = parts;
        }
        r = af_journal_write(q->cfg.journal_dirfd, &rec);
        if (r < 0)
                af_log_error("op=journal path=%s err=%s msg=\"cannot record the pending upload; a "
                             "crash now would need the file uploaded by hand\"",
                             af_q(relpath), af_q(strerror(-r)));
        free(parts);
}

static void journal_remove_locked(struct af_queue *q, const char *relpath)
{
        int r;

        if (!q->cfg.journal)
                return;
        r = af_journal_remove(q->cfg.journal_dirfd, relpath);
        if (r < 0)
                af_log_warn("op=journal path=%s err=%s msg=\"cannot remove the record; the file "
                            "may be uploaded again after a restart\"",
                            af_q(relpath), af_q(strerror(-r)));
}

static void job_fmt(const struct job *j, struct fmt *f)
{
        f->archive = j->archive;
        f->member = j->member;
        f->zip_file_member = j->zip_file_member;
        f->level = j->level;
}

static struct outcome *outcome_find_locked(struct af_queue *q, const char *relpath)
{
        for (struct outcome *o = q->locked.outcomes; o; o = o->next)
                if (strcmp(o->relpath, relpath) == 0)
                        return o;
        return NULL;
}

/* Someone waits on @relpath: remember how its upload ends. */
static void note_outcome_locked(struct af_queue *q, const char *relpath, uint64_t seq, int result)
{
        struct outcome *o = outcome_find_locked(q, relpath);

        if (!o || seq < o->seq)
                return;
        o->seq = seq;
        o->result = result;
        pthread_cond_broadcast(&q->done);
}

static int submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key,
                  bool settle, const struct copy_src *copy);

int af_queue_submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key)
{
        return submit(q, relpath, bucket, key, true, NULL);
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

        return submit(q, relpath, bucket, key, true, &c);
}

static bool same_key(const char *b1, const char *k1, const char *b2, const char *k2)
{
        return strcmp(k1, k2) == 0 && strcmp(b1, b2) == 0;
}

/* An upload to @bucket/@key was submitted: deletes of that key not yet started are moot
 * (the newer content replaces the object) and, left queued, would remove the new content. */
static void drop_deletes_locked(struct af_queue *q, const char *bucket, const char *key)
{
        struct job *j = q->locked.head, *next;

        for (; j; j = next) {
                next = j->next;
                if (j->kind != JOB_DELETE || j->state != JOB_QUEUED ||
                    !same_key(j->bucket, j->key, bucket, key))
                        continue;
                af_log_info("op=delete status=dropped path=%s bucket=%s key=%s msg=\"a newer "
                            "upload writes the key\"",
                            af_q(j->relpath), af_q(bucket), af_q(key));
                if (q->cfg.journal)
                        (void)af_journal_remove_delete(q->cfg.journal_dirfd, bucket, key);
                unlink_job_locked(q, j);
                job_free(j);
                pthread_cond_broadcast(&q->idle);
        }
}

/* Sets (or, with NULL, clears) @j's copy source. */
static int set_copy(struct job *j, const struct copy_src *copy)
{
        struct copy_src *c = copy ? copy_src_dup(copy) : NULL;

        if (copy && !c)
                return -ENOMEM;
        copy_src_free(j->copy);
        j->copy = c;
        return 0;
}

/*
 * @settle: start the upload only after settle_ms. A program that closes "out.tmp" and
 * renames it to "out.csv" (rsync, editors, atomic saves) usually does so within
 * milliseconds: the rename then finds the job not yet started, the old name's upload is
 * skipped and only the final name goes up. fsync and --sync-close do not wait.
 */
static int submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key,
                  bool settle, const struct copy_src *copy)
{
        struct af_route route = { 0 };
        bool routed = false;
        struct job *j;
        int r = 0;

        /* Routing is pure and needs no lock: decide the packaging before taking it. */
        af_buf_init(&route.key, 0);
        if (q->cfg.router && af_router_route(q->cfg.router, relpath, &route) > 0) {
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
        j = find_locked(q, relpath);
        if (j) {
                /* Same file again: the newest key wins, and a running upload goes again. */
                r = set_str(&j->bucket, bucket);
                if (r == 0)
                        r = set_str(&j->key, key);
                if (r == 0)
                        r = set_format(j, routed ? &route : NULL);
                if (r == 0)
                        r = set_copy(j, copy);
                if (r == 0)
                        drop_deletes_locked(q, bucket, key);
                if (j->state == JOB_RUNNING)
                        j->again = true;
                j->seq = ++q->locked.submit_seq;
                j->attempts = 0;
                j->first_failure_ms = 0;
                j->not_before_ms = settle ? af_clock_mono_ms() + q->cfg.settle_ms : 0;
                if (r == 0) {
                        struct fmt f;

                        job_fmt(j, &f);
                        journal_put_locked(q, j->relpath, j->bucket, j->key, &f,
                                           AF_JOURNAL_PENDING, NULL, NULL);
                }
                goto out;
        }
        j = calloc(1, sizeof(*j));
        if (!j || !(j->relpath = strdup(relpath)) || !(j->bucket = strdup(bucket)) ||
            !(j->key = strdup(key)) || set_format(j, routed ? &route : NULL) < 0 ||
            set_copy(j, copy) < 0) {
                job_free(j);
                r = -ENOMEM;
                goto out;
        }
        drop_deletes_locked(q, bucket, key);
        j->seq = ++q->locked.submit_seq;
        j->not_before_ms = settle ? af_clock_mono_ms() + q->cfg.settle_ms : 0;
        {
                struct fmt f;

                job_fmt(j, &f);
                journal_put_locked(q, j->relpath, j->bucket, j->key, &f, AF_JOURNAL_PENDING,
                                   NULL, NULL);
        }
        enqueue_locked(q, j);
out:
        pthread_mutex_unlock(&q->lock);
        af_buf_done(&route.key);
        return r;
}


/* A delete, or an upload that may be a copy: these are ordered by key (see blocked_locked). */
static bool keyed(const struct job *j)
{
        return j->kind == JOB_DELETE || j->copy;
}

/* Whether @j reads or writes @bucket/@key. */
static bool touches(const struct job *j, const char *bucket, const char *key)
{
        return same_key(j->bucket, j->key, bucket, key) ||
               (j->copy && same_key(j->copy->bucket, j->copy->key, bucket, key));
}

static bool conflict(const struct job *a, const struct job *b)
{
        return (keyed(a) || keyed(b)) &&
               (touches(a, b->bucket, b->key) ||
                (b->copy && touches(a, b->copy->bucket, b->copy->key)));
}

/*
 * Whether @j must wait because a job before it in the queue (submitted earlier), or one
 * running, touches one of its keys: a delete must not overtake the upload or copy it
 * follows, nor a copy the upload of its source. Plain uploads among themselves are not
 * ordered (a file's newest version is handled by its single job).
 */
static bool blocked_locked(struct af_queue *q, const struct job *j)
{
        bool before = true;

        for (struct job *i = q->locked.head; i; i = i->next) {
                if (i == j) {
                        before = false;
                        continue;
                }
                if ((before || i->state == JOB_RUNNING) && conflict(i, j))
                        return true;
        }
        return false;
}

/* The first queued job whose backoff has passed and that no earlier job holds back; else
 * how long until one may be ready. */
static struct job *pick_locked(struct af_queue *q, uint64_t *wait_ms)
{
        uint64_t now = af_clock_mono_ms(), soonest = UINT64_MAX;
        bool any_keyed = false;

        for (struct job *j = q->locked.head; j && !any_keyed; j = j->next)
                any_keyed = keyed(j);
        for (struct job *j = q->locked.head; j; j = j->next) {
                if (j->state != JOB_QUEUED)
                        continue;
                if (j->not_before_ms <= now && any_keyed && blocked_locked(q, j)) {
                        /* Woken when a job finishes; the poll is a safety net. */
                        if (soonest > 200)
                                soonest = 200;
                        continue;
                }
                if (j->not_before_ms <= now)
                        return j;
                if (j->not_before_ms - now < soonest)
                        soonest = j->not_before_ms - now;
        }
        *wait_ms = soonest;
        return NULL;
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

/* The wait before @attempt + 1 of a part (or a request of a multipart upload) retried in
 * place. */
static void retry_pause(struct af_queue *q, unsigned attempt)
{
        usleep(af_backoff_ms(attempt, q->cfg.backoff_base_ms, q->cfg.backoff_max_ms, jitter()) *
               1000u);
}

static bool stream_open(struct af_queue *q, const struct af_stream *s);

/* UploadPart of bytes [@off, @off + @len) of @fd as part @num. A retryable failure is tried
 * again here, PART_ATTEMPTS times in all (resending a part is cheaper than the file), and for
 * a stream's part (@s) only while the stream is open. */
static int send_part(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                     const char *key, const char *upload_id, unsigned num, int fd, uint64_t off,
                     uint64_t len, const struct af_stream *s, struct af_s3_part *ret,
                     struct af_s3_error *err)
{
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = af_s3_upload_part_fd(s3, bucket, key, upload_id, num, fd, off, len, ret, err);
                if (r == 0 || !af_s3_retryable(r) || attempt + 1 >= PART_ATTEMPTS ||
                    (s && !stream_open(q, s)))
                        return r;
                af_log_debug("op=upload_part key=%s part=%u attempt=%u err=%s", af_q(key), num,
                             attempt + 1, af_q(err->code));
                retry_pause(q, attempt);
        }
}

/* An S3 client for a thread of @q's, whose transfers stop at shutdown; NULL (logged) when
 * it cannot be made, which af_queue_new's check leaves to OOM. */
static struct af_s3_client *thread_client(struct af_queue *q)
{
        struct af_s3_client *s3 = NULL;
        struct af_buf err;

        af_buf_init(&err, 1024);
        if (af_s3_client_new(q->cfg.s3, q->cfg.creds, &s3, &err) < 0)
                af_log_error("op=worker err=%s", af_q(af_buf_str(&err)));
        else
                af_s3_client_set_cancel(s3, &q->cancel);
        af_buf_done(&err);
        return s3;
}

/* The parts of one multipart upload, shared by the threads that send them. */
struct mpu {
        struct af_queue *q;
        const struct task *t;
        int64_t mtime_ns;
        const char *bucket;
        const char *key;
        const char *upload_id;
        int fd;
        uint64_t size;
        uint64_t part;
        struct af_s3_part *parts;
        size_t nparts;
        pthread_mutex_t lock;
        struct {
                size_t next;             /* the next part to send */
                int err;                 /* the first failure, 0 while all is well */
                struct af_s3_error s3err; /* its detail */
        } locked; /* only with lock held */
};

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
        journal_put_locked(m->q, m->t->relpath, m->bucket, m->key, &m->t->f, AF_JOURNAL_PENDING,
                           NULL, &mp);
        pthread_mutex_unlock(&m->lock);
        pthread_mutex_unlock(&m->q->lock);
}

/* Sends parts until none are left or one has failed (send_part() retries each). */
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
                r = send_part(m->q, s3, m->bucket, m->key, m->upload_id, (unsigned)i + 1, m->fd,
                              off, len, NULL, &done, &err);
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
        struct af_s3_client *s3 = thread_client(m->q);

        if (s3)
                mpu_send(m, s3); /* else the calling thread sends everything */
        af_s3_client_free(s3);
        return NULL;
}

/* The CRC-32C the journal recorded for part @num of @t's old upload (-1: none). */
static int64_t journaled_sum(const struct task *t, unsigned num)
{
        for (size_t i = 0; i < t->ndone; i++)
                if (t->done[i].number == num && t->done[i].has_sum)
                        return t->done[i].sum;
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

/*
 * A multipart upload of @size bytes of @fd, up to part_concurrency parts at once (each extra
 * thread has its own connection). When a part finally fails, the upload is aborted so no
 * storage is left billed, and the file-level retry starts over.
 */
/* Marks the parts S3 already holds for @t's old upload; false if it cannot be resumed. */
static bool resume_parts(struct af_queue *q, struct af_s3_client *s3, const struct task *t,
                         struct mpu *m)
{
        struct af_s3_part *listed = NULL;
        uint64_t *sizes = NULL;
        struct af_s3_error err;
        size_t n = 0, kept = 0;
        bool ok = false;

        (void)q;
        if (t->rec_part_size != m->part ||
            (!t->rec_stream && (t->rec_size != m->size || t->rec_mtime_ns != m->mtime_ns))) {
                af_log_info("op=upload status=restart path=%s msg=\"file changed since the "
                            "interrupted upload; starting over\"",
                            af_q(t->relpath));
                goto out;
        }
        if (af_s3_list_parts(s3, m->bucket, m->key, t->upload_id, &listed, &sizes, &n, &err) < 0) {
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
                if (t->rec_stream && !file_holds(m->fd, off, len, journaled_sum(t, num)))
                        continue; /* sent while the file was written, and changed since */
                m->parts[num - 1] = listed[i];
                kept++;
        }
        af_log_info("op=upload status=resume path=%s upload_id=%s parts_done=%zu parts=%zu",
                    af_q(t->relpath), af_q(t->upload_id), kept, m->nparts);
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
static int complete_with_retries(struct af_queue *q, struct af_s3_client *s3,
                                 const struct task *t, const char *upload_id, struct mpu *m,
                                 struct af_s3_put_result *res, struct af_s3_error *err)
{
        bool lost = false;
        int r = 0;

        for (unsigned attempt = 0; attempt < PART_ATTEMPTS; attempt++) {
                struct af_s3_head_result head;
                struct af_s3_error herr;
                char suffix[24];
                size_t el, sl;

                r = af_s3_complete_multipart(s3, t->bucket, t->key, upload_id, m->parts,
                                             m->nparts, res, err);
                if (r == 0)
                        return 0;
                if (r == -ENOENT && lost &&
                    af_s3_head_object(s3, t->bucket, t->key, &head, &herr) == 0 &&
                    head.size == m->size) {
                        snprintf(suffix, sizeof(suffix), "-%zu\"", m->nparts);
                        el = strlen(head.etag);
                        sl = strlen(suffix);
                        if (el > sl && strcmp(head.etag + el - sl, suffix) == 0) {
                                snprintf(res->etag, sizeof(res->etag), "%s", head.etag);
                                return 0;
                        }
                }
                if (!af_s3_retryable(r))
                        return r;
                lost = err->http_status == 0; /* no answer: it may have been done */
                retry_pause(q, attempt);
        }
        return r;
}

/*
 * Aborts uploads in progress for @key other than @keep: a CreateMultipartUpload whose answer
 * was lost (or arrived after we gave up on it) leaves one that nobody knows the id of, and it
 * would be billed until a lifecycle rule removes it. Best effort.
 */
static void abort_strays(struct af_s3_client *s3, const char *bucket, const char *key,
                         const char *keep)
{
        struct af_s3_error err;
        char **ids = NULL;
        size_t n = 0;

        if (af_s3_list_uploads(s3, bucket, key, &ids, &n, &err) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                if (!keep || strcmp(ids[i], keep) != 0) {
                        if (af_s3_abort_multipart(s3, bucket, key, ids[i], &err) == 0)
                                af_log_info("op=abort_multipart key=%s upload_id=%s msg=\"stray "
                                            "upload (an earlier attempt's) aborted\"",
                                            af_q(key), af_q(ids[i]));
                }
                free(ids[i]);
        }
        free(ids);
}

/* ---- streaming: parts sent while the file is written ----------------------------------- */

static void stream_unref(struct af_stream *s)
{
        if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
                return;
        close(s->fd);
        free(s->relpath);
        free(s->bucket);
        free(s->key);
        free(s->parts);
        free(s);
}

static void stream_record_locked(struct af_queue *q, const struct af_stream *s)
{
        struct mpu_progress mp;

        stream_progress_locked(s, &mp);
        journal_put_locked(q, s->relpath, s->bucket, s->key, NULL, AF_JOURNAL_PENDING, NULL, &mp);
}

static bool stream_open(struct af_queue *q, const struct af_stream *s)
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

static void stream_create(struct af_queue *q, struct af_s3_client *s3, struct af_stream *s)
{
        char id[sizeof(s->upload_id)];
        struct af_s3_error err;
        int r;

        for (unsigned attempt = 0;; attempt++) {
                r = af_s3_create_multipart(s3, s->bucket, s->key, id, sizeof(id), &err);
                if (r == 0 || !af_s3_retryable(r) || attempt + 1 >= PART_ATTEMPTS ||
                    !stream_open(q, s))
                        break;
                retry_pause(q, attempt);
        }
        pthread_mutex_lock(&q->lock);
        s->creating = false;
        if (r == 0) {
                /* Even when abandoned or taken meanwhile: the abort or the taker needs it. */
                memcpy(s->upload_id, id, strlen(id) + 1);
                if (s->state == STREAM_OPEN)
                        stream_record_locked(q, s);
        } else {
                s->stalled = true;
        }
        pthread_cond_broadcast(&q->stream_idle);
        pthread_cond_broadcast(&q->stream_work);
        pthread_mutex_unlock(&q->lock);
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

        r = send_part(q, s3, s->bucket, s->key, s->upload_id, (unsigned)i + 1, s->fd, off,
                      s->part, s, &done, &err);
        pthread_mutex_lock(&q->lock);
        s->sending--;
        if (r == 0) {
                s->parts[i] = done;
                if (s->state == STREAM_OPEN)
                        stream_record_locked(q, s);
        } else if (s->state == STREAM_OPEN) {
                s->stalled = true; /* the close's upload sends what is missing */
        }
        pthread_cond_broadcast(&q->stream_idle);
        pthread_cond_broadcast(&q->stream_work);
        pthread_mutex_unlock(&q->lock);
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
        struct af_s3_error err = { 0 };
        struct job *j;
        int r = 0;

        for (unsigned attempt = 0; s->upload_id[0]; attempt++) {
                r = af_s3_abort_multipart(s3, s->bucket, s->key, s->upload_id, &err);
                if (r == 0 || r == -ENOENT || !af_s3_retryable(r) ||
                    attempt + 1 >= PART_ATTEMPTS || atomic_load(&q->cancel))
                        break;
                retry_pause(q, attempt);
        }
        if (r == -ENOENT)
                r = 0; /* NoSuchUpload: already gone */
        pthread_mutex_lock(&q->lock);
        q->locked.aborting--;
        pthread_cond_broadcast(&q->idle);
        j = find_locked(q, s->relpath);
        if (r < 0) {
                /* Still open on the server: the record keeps it for the next run to abort or
                 * reuse. */
        } else if (!j) {
                journal_remove_locked(q, s->relpath);
        } else if (j->state == JOB_QUEUED) {
                struct fmt f;

                job_fmt(j, &f);
                journal_put_locked(q, j->relpath, j->bucket, j->key, &f, AF_JOURNAL_PENDING, NULL,
                                   NULL);
        }
        pthread_mutex_unlock(&q->lock);
        if (r < 0)
                af_log_warn("op=abort_multipart bucket=%s key=%s upload_id=%s http_status=%d "
                            "s3_code=%s msg=\"could not abort the abandoned stream; it stays "
                            "journaled\"",
                            af_q(s->bucket), af_q(s->key), af_q(s->upload_id), err.http_status,
                            af_q(err.code));
        else if (s->upload_id[0])
                af_log_debug("op=stream status=aborted path=%s upload_id=%s reason=%s",
                             af_q(s->relpath), af_q(s->upload_id), af_q(s->why));
        stream_unref(s);
}

static void *stream_thread(void *arg)
{
        struct af_queue *q = arg;
        struct af_s3_client *s3 = thread_client(q);

        if (!s3)
                return NULL;
        pthread_mutex_lock(&q->lock);
        while (!q->locked.stopping) {
                struct af_stream *s = NULL;
                size_t part = 0;
                enum stream_work w = stream_pick_locked(q, &s, &part);

                if (w == WORK_NONE) {
                        pthread_cond_wait(&q->stream_work, &q->lock);
                        continue;
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
        pthread_mutex_unlock(&q->lock);
        af_s3_client_free(s3);
        return NULL;
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
        else if (find_locked(q, relpath) || stream_find_locked(q, relpath))
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
static bool stream_take(struct af_queue *q, struct af_s3_client *s3, const struct task *t,
                        struct mpu *m, char *upload_id, size_t n)
{
        struct af_stream *s, **pp;
        struct af_s3_error err;
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
        pthread_mutex_unlock(&q->lock);
        if (fits) {
                af_log_info("op=stream status=handover path=%s upload_id=%s parts_sent=%zu "
                            "parts=%zu",
                            af_q(t->relpath), af_q(upload_id), kept, m->nparts);
        } else if (s->upload_id[0]) {
                af_log_info("op=stream status=abandon path=%s reason=\"does not fit the file "
                            "as closed\" msg=\"uploading it whole\"",
                            af_q(t->relpath));
                (void)af_s3_abort_multipart(s3, s->bucket, s->key, s->upload_id, &err);
        }
        stream_unref(s);
        return fits;
}

static int upload_multipart(struct af_queue *q, struct af_s3_client *s3, const struct task *t,
                            int fd, const struct stat *st, struct af_s3_put_result *res,
                            struct af_s3_error *err)
{
        const char *bucket = t->bucket, *key = t->key;
        uint64_t size = (uint64_t)st->st_size;
        struct mpu m = { .q = q, .t = t, .bucket = bucket, .key = key, .fd = fd, .size = size };
        pthread_t threads[AF_QUEUE_MAX_PART_CONCURRENCY];
        unsigned nthreads = 0, want;
        struct af_s3_error aerr;
        char upload_id[1024];
        int r;

        m.part = af_s3_part_size(size, q->cfg.part_size);
        m.nparts = (size_t)((size + m.part - 1) / m.part);
        m.parts = calloc(m.nparts ? m.nparts : 1, sizeof(*m.parts));
        if (!m.parts)
                return -ENOMEM;
        pthread_mutex_init(&m.lock, NULL);
        m.mtime_ns = af_mtime_ns(st);
        upload_id[0] = '\0';
        if (t->upload_id && strlen(t->upload_id) < sizeof(upload_id)) {
                if (resume_parts(q, s3, t, &m)) {
                        memcpy(upload_id, t->upload_id, strlen(t->upload_id) + 1);
                } else {
                        /* Not resumable: make sure the old upload is not left billed. */
                        (void)af_s3_abort_multipart(s3, bucket, key, t->upload_id, &aerr);
                        memset(m.parts, 0, m.nparts * sizeof(*m.parts));
                }
        } else {
                (void)stream_take(q, s3, t, &m, upload_id, sizeof(upload_id));
        }
        if (!upload_id[0]) {
                r = af_s3_create_multipart(s3, bucket, key, upload_id, sizeof(upload_id), err);
                if (r < 0)
                        goto out;
        }
        m.upload_id = upload_id;
        mpu_record(&m);
        want = q->cfg.part_concurrency < m.nparts ? q->cfg.part_concurrency : (unsigned)m.nparts;
        for (unsigned i = 1; i < want; i++)
                if (pthread_create(&threads[nthreads], NULL, mpu_thread, &m) == 0)
                        nthreads++;
        mpu_send(&m, s3);
        for (unsigned i = 0; i < nthreads; i++)
                pthread_join(threads[i], NULL);
        r = m.locked.err;
        if (r < 0) {
                *err = m.locked.s3err;
                if (atomic_load(&q->cancel))
                        goto out; /* keep the upload: the journal has it, a restart resumes */
                goto abort;
        }
        if (atomic_load(&q->cancel)) {
                r = -ECANCELED; /* shutting down: Complete on resume, from the journal */
                goto out;
        }
        r = complete_with_retries(q, s3, t, upload_id, &m, res, err);
        if (r == 0) {
                abort_strays(s3, bucket, key, upload_id);
                goto out;
        }
abort:
        if (af_s3_abort_multipart(s3, bucket, key, upload_id, &aerr) < 0)
                af_log_warn("op=abort_multipart bucket=%s key=%s upload_id=%s http_status=%d "
                            "s3_code=%s msg=\"could not abort; the server's lifecycle rules "
                            "must clean it up\"",
                            af_q(bucket), af_q(key), af_q(upload_id), aerr.http_status,
                            af_q(aerr.code));
        abort_strays(s3, bucket, key, NULL);
out:
        pthread_mutex_destroy(&m.lock);
        free(m.parts);
        return r;
}

/* Uploads a stream of unknown length: PutObject if it fits one part, else multipart. */
struct stream_up {
        struct af_queue *q;
        struct af_s3_client *s3;
        const char *bucket;
        const char *key;
        uint64_t part;        /* part size */
        struct af_buf buf;    /* at most one part waiting to go */
        char upload_id[1024]; /* "" until the stream outgrows one part */
        struct af_s3_part *parts;
        size_t nparts;
        size_t aparts;
        struct af_s3_error *err;
};

static int stream_flush_part(struct stream_up *u, size_t len)
{
        struct af_s3_part *p;
        int r = 0;

        if (!u->upload_id[0]) {
                r = af_s3_create_multipart(u->s3, u->bucket, u->key, u->upload_id,
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
                r = af_s3_upload_part_mem(u->s3, u->bucket, u->key, u->upload_id,
                                          (unsigned)u->nparts + 1, u->buf.ptr, len,
                                          &u->parts[u->nparts], u->err);
                if (r == 0 || !af_s3_retryable(r) || attempt + 1 >= PART_ATTEMPTS)
                        break;
                retry_pause(u->q, attempt);
        }
        if (r < 0)
                return r;
        u->nparts++;
        memmove(u->buf.ptr, u->buf.ptr + len, u->buf.len - len);
        af_buf_truncate(&u->buf, u->buf.len - len);
        return 0;
}

static int stream_sink(void *ctx, const void *data, size_t n)
{
        struct stream_up *u = ctx;
        int r = af_buf_add(&u->buf, data, n);

        while (r == 0 && u->buf.len >= u->part)
                r = stream_flush_part(u, (size_t)u->part);
        return r;
}

static int stream_finish(struct stream_up *u, struct af_s3_put_result *res)
{
        int r;

        if (!u->upload_id[0])
                return af_s3_put_object_mem(u->s3, u->bucket, u->key, u->buf.ptr, u->buf.len, res,
                                            u->err);
        r = u->buf.len ? stream_flush_part(u, u->buf.len) : 0;
        if (r == 0)
                r = af_s3_complete_multipart(u->s3, u->bucket, u->key, u->upload_id, u->parts,
                                             u->nparts, res, u->err);
        return r;
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
static void record_failure_locked(struct af_queue *q, const char *relpath, const char *bucket,
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
                if (j->kind == JOB_UPLOAD) /* a pending delete loses no output */
                        fn(ctx, j->relpath, j->bucket, j->key, "still pending");
        pthread_mutex_unlock(&q->lock);
        for (f = rev; f; f = next) {
                next = f->next;
                free(f); /* the strings belong to the originals */
        }
}

/* The file (or directory) as an Argo archive at <key>, built while it is sent. */
static int upload_archive(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                          const char *key, int fd, const struct stat *st, const struct fmt *f,
                          struct af_s3_put_result *res, struct af_s3_error *err)
{
        struct af_tar_entry e = { .name = f->member,
                                  .mode = st->st_mode & 07777,
                                  .uid = st->st_uid,
                                  .gid = st->st_gid,
                                  .mtime = st->st_mtime,
                                  .size = (uint64_t)st->st_size };
        struct stream_up u = { .q = q, .s3 = s3, .bucket = bucket, .key = key, .err = err };
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
                                  f->level, stream_sink, &u);
        else if (dir)
                r = af_tgz_stream_dir(fd, f->member, f->level, stream_sink, &u);
        else
                r = af_tgz_stream(fd, &e, f->level, stream_sink, &u);
        if (r == 0)
                r = stream_finish(&u, res);
        if (r < 0 && u.upload_id[0] &&
            af_s3_abort_multipart(s3, bucket, key, u.upload_id, &aerr) < 0)
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

/*
 * CopyObject, making sure it copies what we put: S3 refuses a source whose ETag changed
 * (x-amz-copy-source-if-match), but some servers ignore that header (Ceph radosgw 16 does),
 * so the source is looked at first, and a copy of a single-part object (whose ETag is its
 * MD5, kept by the copy) must come out with the same ETag. -ESTALE otherwise: upload.
 */
static int copy_checked(struct af_queue *q, struct af_s3_client *s3, const struct copy_src *c,
                        const struct task *t, uint64_t size, struct af_s3_put_result *res,
                        struct af_s3_error *err)
{
        const struct af_s3_object_opts *o = q->cfg.s3->object;
        /* With SSE-KMS an ETag is not the MD5 of the data. */
        bool md5_etags = !(o && o->sse && strcmp(o->sse, "aws:kms") == 0);
        struct af_s3_head_result head;
        int r;

        r = af_s3_head_object(s3, c->bucket, c->key, &head, err);
        if (r < 0)
                return r;
        if ((c->etag[0] && strcmp(head.etag, c->etag) != 0) || head.size != size) {
                snprintf(err->code, sizeof(err->code), "SourceChanged");
                snprintf(err->message, sizeof(err->message),
                         "the source object is no longer the one this mount put (ETag %s)",
                         head.etag);
                return -ESTALE;
        }
        r = af_s3_copy_object(s3, c->bucket, c->key, c->etag, t->bucket, t->key, size, res,
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

/*
 * A renamed file that is still exactly what went up under its old name (same inode, size
 * and mtime): CopyObject from the old key instead of sending the bytes again. 0 when copied;
 * otherwise the caller uploads from the spool (-ECANCELED: shutting down, do not).
 */
static int try_copy(struct af_queue *q, struct af_s3_client *s3, const struct task *t,
                    const struct stat *st, struct af_s3_put_result *res, struct af_s3_error *err)
{
        const struct copy_src *c = t->copy;
        struct af_s3_error cerr;
        struct af_buf msg;
        uint64_t t0 = af_clock_mono_ms();
        int r;

        if (st->st_dev != c->dev || st->st_ino != c->ino || (uint64_t)st->st_size != c->size ||
            af_mtime_ns(st) != c->mtime_ns) {
                af_log_info("op=copy status=skipped path=%s src_key=%s key=%s msg=\"the file "
                            "changed since it went up; uploading it\"",
                            af_q(t->relpath), af_q(c->key), af_q(t->key));
                return -ESTALE;
        }
        r = copy_checked(q, s3, c, t, (uint64_t)st->st_size, res, &cerr);
        if (r == 0) {
                af_log_info("op=copy status=done path=%s src_bucket=%s src_key=%s bucket=%s "
                            "key=%s bytes=%llu ms=%llu etag=%s",
                            af_q(t->relpath), af_q(c->bucket), af_q(c->key), af_q(t->bucket),
                            af_q(t->key), (unsigned long long)st->st_size,
                            (unsigned long long)(af_clock_mono_ms() - t0), af_q(res->etag));
                return 0;
        }
        if (r == -ECANCELED || atomic_load(&q->cancel)) {
                *err = cerr;
                return -ECANCELED;
        }
        af_buf_init(&msg, 1024);
        if (r == -EFBIG)
                (void)af_buf_adds(&msg, "over CopyObject's 5 GiB");
        else if (r == -EOPNOTSUPP)
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

/* One attempt. Returns 0, or a negative errno with @err filled for S3 errors. */
static int upload_once(struct af_queue *q, struct af_s3_client *s3, const struct task *t,
                       uint64_t *ret_size, struct stat *ret_st, struct af_s3_put_result *res,
                       struct af_s3_error *err)
{
        const char *bucket = t->bucket, *key = t->key;
        const struct fmt *f = &t->f;
        char mode[16], uid[16], gid[16], mtime[24];
        const struct af_s3_kv meta[4] = { { "mode", mode }, { "uid", uid }, { "gid", gid },
                                          { "mtime", mtime } };
        struct stat st;
        int fd, r;

        memset(err, 0, sizeof(*err));
        /* O_NONBLOCK: if the name is now a FIFO (or a device), opening it must not wait for
         * a writer; the fstat below turns away what is not a regular file or directory. */
        fd = openat(q->cfg.spool_dirfd, t->relpath,
                    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                goto out;
        }
        *ret_st = st;
        if (S_ISDIR(st.st_mode) && f->archive != AF_ARCHIVE_NONE) {
                *ret_size = 0;
                r = upload_archive(q, s3, bucket, key, fd, &st, f, res, err);
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -ENOENT; /* the name now holds a FIFO, a device...: nothing to upload */
                goto out;
        }
        *ret_size = (uint64_t)st.st_size;
        /* --preserve-metadata: the names s3fs and rclone read, so they show the file right */
        if (q->cfg.preserve_metadata && f->archive == AF_ARCHIVE_NONE) {
                snprintf(mode, sizeof(mode), "%u", (unsigned)st.st_mode);
                snprintf(uid, sizeof(uid), "%u", (unsigned)st.st_uid);
                snprintf(gid, sizeof(gid), "%u", (unsigned)st.st_gid);
                snprintf(mtime, sizeof(mtime), "%lld", (long long)st.st_mtime);
                af_s3_client_set_file_meta(s3, meta, 4);
        }
        if (t->copy && f->archive == AF_ARCHIVE_NONE) {
                r = try_copy(q, s3, t, &st, res, err);
                if (r == 0 || r == -ECANCELED)
                        goto out;
        }
        if (f->archive != AF_ARCHIVE_NONE)
                r = upload_archive(q, s3, bucket, key, fd, &st, f, res, err);
        else if ((uint64_t)st.st_size >= q->cfg.multipart_threshold)
                r = upload_multipart(q, s3, t, fd, &st, res, err);
        else
                r = af_s3_put_object_fd(s3, bucket, key, fd, (uint64_t)st.st_size, res, err);
out:
        af_s3_client_set_file_meta(s3, NULL, 0);
        close(fd);
        return r;
}

/* Wall-clock milliseconds, for the manifest. */
static void iso_ms(uint64_t ms, char out[32])
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        size_t n;

        gmtime_r(&t, &tm);
        n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

/* --manifest: one JSON line per object, appended with one write so lines stay whole. */
static void write_manifest(struct af_queue *q, const struct task *t, uint64_t size,
                           const struct af_s3_put_result *res, uint64_t start, uint64_t end)
{
        struct af_buf line;
        char a[32], b[32];
        int r;

        iso_ms(start, a);
        iso_ms(end, b);
        af_buf_init(&line, 64 * 1024);
        r = af_buf_adds(&line, "{\"path\":");
        if (r == 0)
                r = af_json_quote(&line, t->relpath);
        if (r == 0)
                r = af_buf_adds(&line, ",\"bucket\":");
        if (r == 0)
                r = af_json_quote(&line, t->bucket);
        if (r == 0)
                r = af_buf_adds(&line, ",\"key\":");
        if (r == 0)
                r = af_json_quote(&line, t->key);
        if (r == 0)
                r = af_buf_addf(&line, ",\"size\":%llu,\"archive\":\"%s\",\"etag\":",
                                (unsigned long long)size, af_archive_name(t->f.archive));
        if (r == 0)
                r = af_json_quote(&line, res->etag);
        if (r == 0)
                r = af_buf_adds(&line, ",\"version_id\":");
        if (r == 0)
                r = res->version_id[0] ? af_json_quote(&line, res->version_id)
                                       : af_buf_adds(&line, "null");
        if (r == 0)
                r = af_buf_addf(&line, ",\"start\":\"%s\",\"end\":\"%s\"}\n", a, b);
        if (r == 0 && write(q->cfg.manifest_fd, line.ptr, line.len) != (ssize_t)line.len)
                af_log_warn("op=manifest path=%s err=%s", af_q(t->relpath), af_q(strerror(errno)));
        af_buf_done(&line);
}

static void run_job(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                    const struct task *t)
{
        const char *relpath = t->relpath, *bucket = t->bucket, *key = t->key;
        struct af_s3_put_result res = { 0 };
        struct af_s3_error err;
        struct af_buf msg;
        uint64_t size = 0, t0 = af_clock_mono_ms();
        const char *failure = NULL;
        uint64_t t0_wall;
        bool size_known = false, superseded = false;
        struct stat st = { 0 };
        unsigned attempt;
        int r;

        af_buf_init(&msg, 1024);
        t0_wall = af_clock_wall_ms();
        r = upload_once(q, s3, t, &size, &st, &res, &err);

        pthread_mutex_lock(&q->lock);
        attempt = ++j->attempts;
        if (r == 0) {
                q->locked.stats.uploaded_files++;
                q->locked.stats.uploaded_bytes += size;
        }
        pthread_mutex_unlock(&q->lock);

        if (r == 0) {
                size_known = true;
                af_log_info("op=upload status=done path=%s bucket=%s key=%s bytes=%llu ms=%llu "
                            "etag=%s",
                            af_q(relpath), af_q(bucket), af_q(key), (unsigned long long)size,
                            (unsigned long long)(af_clock_mono_ms() - t0), af_q(res.etag));
                goto finished;
        }
        if (r == -ECANCELED || atomic_load(&q->cancel)) {
                /* Shutdown past the drain timeout: not a failure. The job and its journal
                 * record stay (a multipart upload keeps its id and finished parts) for the
                 * next mount or drain; af_queue_free logs it as left. */
                pthread_mutex_lock(&q->lock);
                j->state = JOB_QUEUED;
                pthread_mutex_unlock(&q->lock);
                af_buf_done(&msg);
                return;
        }
        if (r == -ENOENT && err.http_status == 0 && !err.code[0]) {
                /* Renamed or deleted before we got to it: nothing to upload under this name. */
                af_log_info("op=upload status=skipped path=%s reason=\"no longer a regular file "
                            "in the spool\"",
                            af_q(relpath));
                goto finished;
        }
        if (err.http_status || err.code[0])
                af_s3_error_format(&err, &msg);
        else
                (void)af_buf_addf(&msg, "%s", strerror(-r));
        if (!j->first_failure_ms)
                j->first_failure_ms = af_clock_mono_ms();
        if ((af_s3_retryable(r) || r == -ESTALE) &&
            (attempt < q->cfg.max_attempts ||
             af_clock_mono_ms() - j->first_failure_ms < (uint64_t)q->cfg.retry_for_ms)) {
                unsigned delay = af_backoff_ms(attempt, q->cfg.backoff_base_ms,
                                               q->cfg.backoff_max_ms,
                                               jitter());

                af_log_warn("op=upload status=retry path=%s bucket=%s key=%s attempt=%u "
                            "http_status=%d s3_code=%s request_id=%s delay_ms=%u err=%s",
                            af_q(relpath), af_q(bucket), af_q(key), attempt, err.http_status,
                            af_q(err.code), af_q(err.request_id), delay, af_q(af_buf_str(&msg)));
                af_buf_done(&msg);
                pthread_mutex_lock(&q->lock);
                j->state = JOB_QUEUED;
                j->not_before_ms = af_clock_mono_ms() + delay;
                pthread_mutex_unlock(&q->lock);
                return;
        }
        failure = af_buf_str(&msg);
        af_log_error("op=upload status=failed path=%s bucket=%s key=%s attempts=%u "
                     "http_status=%d s3_code=%s request_id=%s err=%s msg=\"file kept in the "
                     "spool\"",
                     af_q(relpath), af_q(bucket), af_q(key), attempt, err.http_status,
                     af_q(err.code), af_q(err.request_id), af_q(af_buf_str(&msg)));
        pthread_mutex_lock(&q->lock);
        q->locked.stats.failed_files++;
        record_failure_locked(q, relpath, bucket, key, failure);
        pthread_mutex_unlock(&q->lock);
finished:
        pthread_mutex_lock(&q->lock);
        note_outcome_locked(q, relpath, j->picked_seq, failure ? (r < 0 ? r : -EIO) : 0);
        if (j->again) {
                struct fmt f;

                /* Changed while we uploaded: the record stays, for the newest version. */
                superseded = true;
                j->again = false;
                j->attempts = 0;
                j->state = JOB_QUEUED;
                job_fmt(j, &f);
                journal_put_locked(q, j->relpath, j->bucket, j->key, &f, AF_JOURNAL_PENDING, NULL,
                                   NULL);
                pthread_cond_signal(&q->work);
        } else {
                if (failure)
                        journal_put_locked(q, relpath, bucket, key, &t->f, AF_JOURNAL_FAILED,
                                           failure, NULL);
                else
                        journal_remove_locked(q, relpath);
                if (!failure && q->cfg.journal && size_known)
                        af_journal_done(q->cfg.journal_dirfd, relpath, key, size, res.etag);
                if (!failure && size_known && q->cfg.manifest_fd > 0)
                        write_manifest(q, t, size, &res, t0_wall, af_clock_wall_ms());
                unlink_job_locked(q, j);
                q->locked.stats.pending_files--;
                job_free(j);
                pthread_cond_broadcast(&q->idle);
                pthread_cond_broadcast(&q->work); /* jobs it held back may go */
        }
        pthread_mutex_unlock(&q->lock);
        if (!failure && size_known && q->cfg.on_uploaded) {
                struct af_queue_uploaded u = {
                        .relpath = relpath, .bucket = bucket, .key = key, .etag = res.etag,
                        .archive = t->f.archive, .is_dir = S_ISDIR(st.st_mode), .size = size,
                        .dev = st.st_dev, .ino = st.st_ino,
                        .mtime_ns = af_mtime_ns(&st),
                        .superseded = superseded,
                };

                q->cfg.on_uploaded(q->cfg.on_uploaded_ctx, &u);
        }
        af_buf_done(&msg);
}

/* ---- deletes (--delete-on-unlink) --------------------------------------------------------- */

static void journal_put_delete_locked(struct af_queue *q, const struct job *j,
                                      enum af_journal_state state, const char *error)
{
        struct af_journal_rec rec = { .op = AF_JOURNAL_DELETE,
                                      .path = j->relpath,
                                      .bucket = j->bucket,
                                      .key = j->key,
                                      .etag = j->etag,
                                      .level = -1,
                                      .state = state,
                                      .error = (char *)error,
                                      .updated = time(NULL) };
        int r;

        if (!q->cfg.journal)
                return;
        rec.endpoint = (char *)q->cfg.s3->endpoint;
        rec.region = (char *)q->cfg.s3->region;
        r = af_journal_write(q->cfg.journal_dirfd, &rec);
        if (r < 0)
                af_log_warn("op=journal path=%s key=%s err=%s msg=\"cannot record the pending "
                            "delete; a crash now would leave the object in S3\"",
                            af_q(j->relpath), af_q(j->key), af_q(strerror(-r)));
}

/* The record of @j's key now belongs to the next delete of that key, if one is queued. */
static void journal_delete_done_locked(struct af_queue *q, const struct job *j)
{
        for (struct job *i = q->locked.head; i; i = i->next)
                if (i != j && i->kind == JOB_DELETE && same_key(i->bucket, i->key, j->bucket, j->key)) {
                        journal_put_delete_locked(q, i, AF_JOURNAL_PENDING, NULL);
                        return;
                }
        if (q->cfg.journal)
                (void)af_journal_remove_delete(q->cfg.journal_dirfd, j->bucket, j->key);
}

/*
 * One attempt: the object goes only if it is still the one we put (its ETag), so a key
 * someone wrote since, by this mount or another writer, is left alone. 1 when left alone.
 */
static int delete_once(struct af_s3_client *s3, const struct task *t, struct af_s3_error *err)
{
        struct af_s3_head_result head;
        int r;

        memset(err, 0, sizeof(*err));
        r = af_s3_head_object(s3, t->bucket, t->key, &head, err);
        if (r == -ENOENT)
                return 0; /* nothing there: done */
        if (r < 0)
                return r;
        if (t->etag && t->etag[0] && strcmp(head.etag, t->etag) != 0)
                return 1;
        return af_s3_delete_object(s3, t->bucket, t->key, err);
}

static void run_delete(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                       const struct task *t)
{
        struct af_s3_error err;
        struct af_buf msg;
        uint64_t t0 = af_clock_mono_ms();
        unsigned attempt;
        int r = delete_once(s3, t, &err);

        af_buf_init(&msg, 1024);
        pthread_mutex_lock(&q->lock);
        attempt = ++j->attempts;
        pthread_mutex_unlock(&q->lock);
        if (r == 0)
                af_log_info("op=delete status=done path=%s bucket=%s key=%s ms=%llu",
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key),
                            (unsigned long long)(af_clock_mono_ms() - t0));
        else if (r == 1)
                af_log_info("op=delete status=skipped path=%s bucket=%s key=%s etag=%s "
                            "msg=\"the object changed since this mount put it; left as is\"",
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key), af_q(t->etag));
        if (r >= 0)
                goto finished;
        if (r == -ECANCELED || atomic_load(&q->cancel)) {
                pthread_mutex_lock(&q->lock);
                j->state = JOB_QUEUED; /* journaled: the next mount or drain does it */
                pthread_mutex_unlock(&q->lock);
                af_buf_done(&msg);
                return;
        }
        if (err.http_status || err.code[0])
                af_s3_error_format(&err, &msg);
        else
                (void)af_buf_addf(&msg, "%s", strerror(-r));
        if (!j->first_failure_ms)
                j->first_failure_ms = af_clock_mono_ms();
        if (af_s3_retryable(r) && (attempt < q->cfg.max_attempts ||
                                   af_clock_mono_ms() - j->first_failure_ms < (uint64_t)q->cfg.retry_for_ms)) {
                unsigned delay = af_backoff_ms(attempt, q->cfg.backoff_base_ms,
                                               q->cfg.backoff_max_ms, jitter());

                af_log_warn("op=delete status=retry path=%s bucket=%s key=%s attempt=%u "
                            "http_status=%d s3_code=%s request_id=%s delay_ms=%u err=%s",
                            af_q(t->relpath), af_q(t->bucket), af_q(t->key), attempt,
                            err.http_status, af_q(err.code), af_q(err.request_id), delay,
                            af_q(af_buf_str(&msg)));
                pthread_mutex_lock(&q->lock);
                j->state = JOB_QUEUED;
                j->not_before_ms = af_clock_mono_ms() + delay;
                pthread_mutex_unlock(&q->lock);
                af_buf_done(&msg);
                return;
        }
        af_log_error("op=delete status=failed path=%s bucket=%s key=%s attempts=%u "
                     "http_status=%d s3_code=%s request_id=%s err=%s msg=\"the object is left "
                     "in S3\"",
                     af_q(t->relpath), af_q(t->bucket), af_q(t->key), attempt, err.http_status,
                     af_q(err.code), af_q(err.request_id), af_q(af_buf_str(&msg)));
finished:
        pthread_mutex_lock(&q->lock);
        if (r < 0)
                journal_put_delete_locked(q, j, AF_JOURNAL_FAILED, af_buf_str(&msg));
        else
                journal_delete_done_locked(q, j);
        unlink_job_locked(q, j);
        job_free(j);
        pthread_cond_broadcast(&q->idle);
        pthread_cond_broadcast(&q->work); /* jobs it held back may go */
        pthread_mutex_unlock(&q->lock);
        af_buf_done(&msg);
}

/* A delete job (a new one, or from a journal record). */
static struct job *delete_job_new(const char *relpath, const char *bucket, const char *key,
                                  const char *etag)
{
        struct job *j = calloc(1, sizeof(*j));

        if (!j)
                return NULL;
        j->kind = JOB_DELETE;
        j->level = -1;
        if (!(j->relpath = strdup(relpath)) || !(j->bucket = strdup(bucket)) ||
            !(j->key = strdup(key)) || !(j->etag = strdup(etag ? etag : ""))) {
                job_free(j);
                return NULL;
        }
        return j;
}

int af_queue_submit_delete(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *etag)
{
        struct job *j = delete_job_new(relpath, bucket, key, etag);
        int r = 0;

        if (!j)
                return -ENOMEM;
        pthread_mutex_lock(&q->lock);
        if (q->locked.stopping) {
                r = -ESHUTDOWN;
                goto out;
        }
        j->seq = ++q->locked.submit_seq;
        journal_put_delete_locked(q, j, AF_JOURNAL_PENDING, NULL);
        enqueue_locked(q, j);
        j = NULL;
out:
        pthread_mutex_unlock(&q->lock);
        job_free(j);
        return r;
}

bool af_queue_pending(struct af_queue *q, const char *relpath)
{
        bool pending;

        pthread_mutex_lock(&q->lock);
        pending = find_locked(q, relpath) != NULL;
        pthread_mutex_unlock(&q->lock);
        return pending;
}

static void task_done(struct task *t)
{
        free(t->relpath);
        free(t->bucket);
        free(t->key);
        free(t->f.member);
        free(t->f.zip_file_member);
        free(t->upload_id);
        free(t->done);
        free(t->etag);
        copy_src_free(t->copy);
        memset(t, 0, sizeof(*t));
}

/* Copies what a worker needs from @j; the resume hints move to the task (used once). */
static int task_take_locked(struct job *j, struct task *t)
{
        memset(t, 0, sizeof(*t));
        t->relpath = strdup(j->relpath);
        t->bucket = strdup(j->bucket);
        t->key = strdup(j->key);
        t->f.archive = j->archive;
        t->f.level = j->level;
        t->f.member = j->member ? strdup(j->member) : NULL;
        t->f.zip_file_member = j->zip_file_member ? strdup(j->zip_file_member) : NULL;
        t->kind = j->kind;
        t->etag = j->etag ? strdup(j->etag) : NULL;
        t->copy = j->copy ? copy_src_dup(j->copy) : NULL;
        if (!t->relpath || !t->bucket || !t->key || (j->member && !t->f.member) ||
            (j->zip_file_member && !t->f.zip_file_member) || (j->etag && !t->etag) ||
            (j->copy && !t->copy)) {
                task_done(t);
                return -ENOMEM;
        }
        t->upload_id = j->upload_id;
        t->done = j->done;
        t->ndone = j->ndone;
        t->rec_size = j->rec_size;
        t->rec_mtime_ns = j->rec_mtime_ns;
        t->rec_part_size = j->rec_part_size;
        t->rec_stream = j->rec_stream;
        j->upload_id = NULL;
        j->done = NULL;
        j->ndone = 0;
        return 0;
}

static void *worker(void *arg)
{
        struct af_queue *q = arg;
        struct af_s3_client *s3 = thread_client(q);

        if (!s3)
                return NULL;
        pthread_mutex_lock(&q->lock);
        while (!q->locked.stopping) {
                uint64_t wait = 0;
                struct job *j = pick_locked(q, &wait);
                struct task t = { 0 };

                if (!j) {
                        if (wait == UINT64_MAX)
                                pthread_cond_wait(&q->work, &q->lock);
                        else
                                timed_wait(&q->work, &q->lock, wait);
                        continue;
                }
                j->state = JOB_RUNNING;
                j->again = false;
                j->picked_seq = j->seq;
                /* Private copies: a submit may replace the job's strings while we upload. */
                if (task_take_locked(j, &t) == 0) {
                        pthread_mutex_unlock(&q->lock);
                        if (t.kind == JOB_DELETE)
                                run_delete(q, s3, j, &t);
                        else
                                run_job(q, s3, j, &t);
                } else {
                        j->state = JOB_QUEUED;
                        j->not_before_ms = af_clock_mono_ms() + 1000;
                        pthread_mutex_unlock(&q->lock);
                }
                task_done(&t);
                pthread_mutex_lock(&q->lock);
        }
        pthread_mutex_unlock(&q->lock);
        af_s3_client_free(s3);
        return NULL;
}

int af_queue_new(const struct af_queue_config *cfg, struct af_queue **ret, struct af_buf *err)
{
        struct af_s3_client *probe = NULL;
        struct af_queue *q;
        int r;

        /* Validate the S3 configuration once, here, so workers cannot fail to start. */
        r = af_s3_client_new(cfg->s3, cfg->creds, &probe, err);
        if (r < 0)
                return r;
        af_s3_client_free(probe);
        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->cfg = *cfg;
        if (!q->cfg.workers)
                q->cfg.workers = 4;
        if (!q->cfg.max_attempts)
                q->cfg.max_attempts = 10;
        if (!q->cfg.backoff_base_ms)
                q->cfg.backoff_base_ms = 200;
        if (!q->cfg.backoff_max_ms)
                q->cfg.backoff_max_ms = 20000;
        if (!q->cfg.part_size)
                q->cfg.part_size = (uint64_t)8 << 20;
        if (!q->cfg.multipart_threshold)
                q->cfg.multipart_threshold = (uint64_t)16 << 20;
        if (!q->cfg.part_concurrency)
                q->cfg.part_concurrency = 4;
        if (q->cfg.part_concurrency > AF_QUEUE_MAX_PART_CONCURRENCY)
                q->cfg.part_concurrency = AF_QUEUE_MAX_PART_CONCURRENCY;
        if (q->cfg.settle_ms < 0)
                q->cfg.settle_ms = 0;
        else if (!q->cfg.settle_ms)
                q->cfg.settle_ms = 200;
        if (q->cfg.multipart_threshold < q->cfg.part_size)
                q->cfg.multipart_threshold = q->cfg.part_size;
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
                    const char *key, bool submit_now, long timeout_ms);

int af_queue_submit_wait(struct af_queue *q, const char *relpath, const char *bucket,
                         const char *key, long timeout_ms)
{
        return sync_one(q, relpath, bucket, key, true, timeout_ms);
}

int af_queue_wait(struct af_queue *q, const char *relpath, long timeout_ms)
{
        return sync_one(q, relpath, NULL, NULL, false, timeout_ms);
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

        r = submit_now ? submit(q, relpath, bucket, key, false, NULL) : 0;

        pthread_mutex_lock(&q->lock);
        if (r == 0) {
                struct job *j = find_locked(q, relpath);

                /* Not queued (a part of an archived directory): nothing to wait for. */
                target = j ? j->seq : 0;
                while (target && o->seq < target) {
                        uint64_t now = af_clock_mono_ms();

                        if (q->locked.stopping) {
                                r = -ESHUTDOWN;
                                break;
                        }
                        if (now >= deadline) {
                                r = -ETIMEDOUT;
                                break;
                        }
                        timed_wait(&q->done, &q->lock, deadline - now < 1000 ? deadline - now : 1000);
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

struct resume_ctx {
        struct af_queue *q;
        int queued;
};

/* A delete an earlier run had queued: it goes again (its ETag check keeps it safe). */
static void resume_delete(struct resume_ctx *rc, const struct af_journal_rec *rec)
{
        struct af_queue *q = rc->q;
        struct job *j = delete_job_new(rec->path, rec->bucket, rec->key, rec->etag);

        if (!j) {
                af_log_error("op=resume path=%s err=\"out of memory\"", af_q(rec->path));
                return;
        }
        af_log_info("op=resume path=%s key=%s state=%s delete=pending", af_q(rec->path),
                    af_q(rec->key), rec->state == AF_JOURNAL_FAILED ? "failed" : "pending");
        pthread_mutex_lock(&q->lock);
        j->seq = ++q->locked.submit_seq;
        enqueue_locked(q, j);
        pthread_mutex_unlock(&q->lock);
        rc->queued++;
}

static void resume_one(void *arg, struct af_journal_rec *rec)
{
        struct resume_ctx *rc = arg;
        struct af_queue *q = rc->q;
        struct stat st;
        struct job *j;

        if (rec->op == AF_JOURNAL_DELETE) {
                resume_delete(rc, rec);
                return;
        }
        if (fstatat(q->cfg.spool_dirfd, rec->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                af_log_warn("op=resume path=%s key=%s msg=\"the file is no longer in the spool; "
                            "its record is dropped\"",
                            af_q(rec->path), af_q(rec->key));
                (void)af_journal_remove(q->cfg.journal_dirfd, rec->path);
                return;
        }
        j = calloc(1, sizeof(*j));
        if (!j || !(j->relpath = strdup(rec->path)) || !(j->bucket = strdup(rec->bucket)) ||
            !(j->key = strdup(rec->key)) || (rec->member && !(j->member = strdup(rec->member))) ||
            (rec->zip_file_member && !(j->zip_file_member = strdup(rec->zip_file_member))) ||
            (rec->upload_id && !(j->upload_id = strdup(rec->upload_id)))) {
                job_free(j);
                af_log_error("op=resume path=%s err=\"out of memory\"", af_q(rec->path));
                return;
        }
        j->archive = rec->archive;
        j->level = rec->level;
        j->rec_size = rec->size;
        j->rec_mtime_ns = rec->mtime_ns;
        j->rec_part_size = rec->part_size;
        j->rec_stream = rec->stream;
        if (rec->upload_id && rec->nparts) {
                j->done = malloc(rec->nparts * sizeof(*j->done));
                if (j->done) {
                        memcpy(j->done, rec->parts, rec->nparts * sizeof(*j->done));
                        j->ndone = rec->nparts;
                }
        }
        af_log_info("op=resume path=%s key=%s state=%s%s", af_q(rec->path), af_q(rec->key),
                    rec->state == AF_JOURNAL_FAILED ? "failed" : "pending",
                    rec->upload_id ? " multipart=in-progress" : "");
        pthread_mutex_lock(&q->lock);
        if (find_locked(q, rec->path)) {
                pthread_mutex_unlock(&q->lock);
                job_free(j);
                return;
        }
        enqueue_locked(q, j);
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

int af_queue_drain(struct af_queue *q, long timeout_ms)
{
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : af_clock_mono_ms() + (uint64_t)timeout_ms;
        int r = 0;

        pthread_mutex_lock(&q->lock);
        while (q->locked.head || q->locked.aborting) {
                uint64_t now = af_clock_mono_ms();

                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                timed_wait(&q->idle, &q->lock, deadline - now < 1000 ? deadline - now : 1000);
        }
        pthread_mutex_unlock(&q->lock);
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
        atomic_store(&q->cancel, true);
        pthread_cond_broadcast(&q->work);
        pthread_cond_broadcast(&q->done);
        pthread_cond_broadcast(&q->stream_work);
        pthread_mutex_unlock(&q->lock);
        for (unsigned i = 0; i < q->nthreads; i++)
                pthread_join(q->threads[i], NULL);
        for (unsigned i = 0; i < q->nstream_threads; i++)
                pthread_join(q->stream_threads[i], NULL);
        /* Streams still open keep their journal record (upload id and parts): the next mount
         * or drain finishes them. The mount's references may outlive the queue. */
        for (struct af_stream *s = q->locked.streams, *sn; s; s = sn) {
                sn = s->next;
                s->next = NULL;
                stream_unref(s);
        }
        for (j = q->locked.head; j; j = next) {
                next = j->next;
                if (j->kind == JOB_DELETE)
                        af_log_warn("op=delete status=left path=%s bucket=%s key=%s "
                                    "msg=\"not deleted yet; journaled for the next mount or "
                                    "drain\"",
                                    af_q(j->relpath), af_q(j->bucket), af_q(j->key));
                else
                        af_log_error("op=upload status=left path=%s bucket=%s key=%s "
                                     "msg=\"not uploaded; file kept in the spool\"",
                                     af_q(j->relpath), af_q(j->bucket), af_q(j->key));
                job_free(j);
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
        free(q->threads);
        free(q);
}
