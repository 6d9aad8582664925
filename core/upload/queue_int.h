/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file queue_int.h
 * What the files of the upload queue share; not for callers (they use queue.h).
 *
 * The queue is one struct af_queue; its jobs (struct job) are uploads of spool files and
 * deletes of objects, picked by workers (queue.c) in submit order unless an earlier job holds
 * them back by key (order.c). A worker runs one attempt of a job on a private copy of its
 * description (run.c: transfer.c, multipart.c, archive_put.c, copy_delete.c), and the retry
 * policy (retry.c) says whether it goes again. The journal (record.c) keeps one durable record
 * per pending job; streams (stream.c) start a file's multipart upload while it is written.
 *
 * The locks and their order: at struct af_queue.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "upload/journal.h"
#include "upload/queue.h"
#include "upload/retry.h"
#include "upload/s3_ops.h"

enum job_state {
        JOB_QUEUED,
        JOB_RUNNING,
};

/* Uploads are the queue's job; deletes (--delete-on-unlink) ride along, ordered by key, and
 * so do aborts of multipart uploads that nothing will complete (abort.c). */
enum job_kind {
        JOB_UPLOAD = 0,
        JOB_DELETE,
        JOB_ABORT,
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
        enum af_archive archive; /* NONE, TAR or ZIP */
        char *member;            /* the member name (a directory's, for ZIP) */
        char *zip_file_member;   /* ZIP of a single file: its entry name */
        int level;               /* gzip/deflate level */
};

/* Where an interrupted multipart upload stood, from its journal record: the next attempt
 * lists its parts and sends only the missing ones, if the file is unchanged. */
struct resume_hint {
        char *upload_id;         /* NULL: none */
        struct af_s3_part *done; /* the finished parts the record lists */
        size_t ndone;
        uint64_t size; /* the file's size and mtime when the upload began */
        int64_t mtime_ns;
        uint64_t part_size;
        bool stream; /* the record was a stream's: parts are checked by CRC-32C */
};

/* What one job does: upload a file, or delete an object. A worker runs on its own copy
 * (af_job_desc_take_locked): a submit may change the job's while it runs. */
struct job_desc {
        enum job_kind kind;
        char *relpath;
        char *bucket;
        char *key;
        struct fmt f;              /* an upload: how the file is packaged */
        struct copy_src *copy;     /* an upload that may be a copy, see af_queue_submit_copy */
        char *etag;                /* a delete: the ETag the object must still have */
        char *upload_id;           /* an abort: the multipart upload it ends */
        struct resume_hint resume; /* an upload; moves to the worker's copy (used once) */
        struct job *owner; /* the worker's copy only: its running job (af_transfer_once) */
};

/*
 * A job in q->locked.head. Every field is guarded by q->lock. The worker running a job
 * (JOB_RUNNING) keeps a pointer to it between its lock sections: a running job is unlinked
 * and freed only by that worker (or by af_queue_free once the workers are joined).
 */
struct job {
        struct job *next;
        struct job_desc d;
        enum job_state state;
        uint64_t seq;              /* the newest submit of this file (queue-wide counter) */
        uint64_t picked_seq;       /* seq when the running upload started */
        bool again;                /* resubmitted while running: upload once more */
        /* The version of the file the newest submit gave (has_ver), and that of the running
         * upload (af_queue_submit_version). opened_ver: 1 if every open of the running upload
         * found the file run_ver names, -1 if one found another, 0 before the first. */
        struct af_queue_version ver, run_ver;
        bool has_ver, run_has_ver;
        int opened_ver;
        /* An attempt got no answer since the last one that went up: its object may be in S3,
         * with landed_etag (quoted; "" if unknown, or if two such attempts sent different
         * data). Told to on_gone if the file is then gone. */
        bool maybe_landed;
        char landed_etag[36];
        unsigned attempts;         /* failed attempts so far */
        uint64_t handed_ms;        /* the newest hand-over (monotonic), for the latency */
        uint64_t size;             /* the file's size then, in stats.pending_bytes */
        uint64_t not_before_ms;    /* backoff: not picked before this monotonic time */
        uint64_t first_failure_ms; /* when this file first failed, for the retry window */
};

/* The last upload outcome of a file someone is waiting on (fsync, --sync-close). */
struct outcome {
        struct outcome *next;
        char *relpath;
        unsigned waiters;
        uint64_t seq; /* the submit seq the finished upload covered */
        int result;
};

/* A file that failed for good, for the end-of-run report. */
struct failure {
        struct failure *next;
        char *relpath;
        char *bucket;
        char *key;
        char *error;
};

#define MAX_FAILURES 1000

struct af_queue {
        struct af_queue_config cfg; /* immutable after af_queue_new */
        const struct af_s3_ops *s3; /* cfg.s3_ops, or the real client */
        /* From cfg: a failed upload job, a failed delete job, a request retried in place. */
        struct af_retry_policy retry_upload, retry_delete, retry_part;
        pthread_t *threads;         /* the workers; only af_queue_new and af_queue_free */
        unsigned nthreads;
        /*
         * The locks, in the order they are taken (a thread holding one takes only those
         * below it):
         *   1. journal_lock     serializes af_record_flush, so journal writes reach the disk
         *                       in the order they were decided (record.c); only a flush
         *                       holds it.
         *   2. lock             the queue: locked below, every field of struct job, the
         *                       fields of a stream marked so (stream.c), nstream_threads.
         *   3. struct mpu.lock  the parts of one multipart upload in flight (multipart.c).
         * No lock but journal_lock is held while a journal record is written (decisions are
         * queued under lock and written once it is released), none while S3 is called or a
         * thread is joined.
         */
        pthread_mutex_t journal_lock;
        unsigned journal_spares; /* journal_lock: spare-0.. of removed records, for reuse */
        pthread_mutex_t lock;
        pthread_cond_t work; /* a job became ready, or stopping */
        pthread_cond_t idle; /* the queue may have become empty */
        struct {
                struct job *head; /* FIFO */
                struct job *tail;
                bool stopping;
                /* Shutdown's deadline (monotonic ms; 0: none yet), and whether it passed:
                 * then nothing starts and every wait ends (af_queue_set_deadline). */
                uint64_t deadline_ms;
                bool expired;
                struct af_queue_stats stats;
                struct failure *failures; /* newest first, at most MAX_FAILURES */
                size_t nfailures;
                uint64_t submit_seq;
                struct outcome *outcomes;
                struct af_stream *streams;
                unsigned aborting; /* streams abandoned and not yet aborted (drain waits) */
                unsigned notifying; /* uploads out of the queue whose on_uploaded still runs
                                     * (drain waits: it may queue a delete) */
                struct record_op *records; /* journal writes to do, in order (record.c) */
                struct record_op **records_tail;
                struct snapshot *snapshots; /* waiting or being uploaded (snapshot.c) */
                struct af_live_upload *live; /* multipart uploads jobs run (abort.c) */
        } locked;                  /* only with lock held */
        pthread_cond_t done;        /* an outcome was recorded */
        pthread_cond_t stream_work; /* a stream has something for the part threads */
        pthread_cond_t stream_idle; /* a stream's part or CreateMultipartUpload finished */
        pthread_t stream_threads[AF_QUEUE_MAX_PART_CONCURRENCY]; /* started with the first stream */
        unsigned nstream_threads; /* with lock */
        pthread_t snapshot_thread; /* started with the first snapshot */
        bool snapshot_started;     /* with lock; read without it once the threads are joined */
        atomic_bool cancel; /* shutting down: transfers in flight stop, jobs stay journaled */
};

/* A multipart upload a job is running (or creating: @upload_id NULL), which a sweep of its key
 * leaves alone (abort.c). */
struct af_live_upload {
        const char *bucket;
        const char *key;
        const char *upload_id;
        struct af_live_upload *next;
};

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

/* ---- job.c: job descriptions ---- */

void af_job_free(struct job *j);
/* Replaces *@dst with a copy of @src. -ENOMEM (and *@dst unchanged). */
int af_job_set_str(char **dst, const char *src);
/* Sets @d's packaging from @route (NULL: as it is). -ENOMEM (and @d unchanged). */
int af_job_set_format(struct job_desc *d, const struct af_route *route);
/* Sets (or, with NULL, clears) @d's copy source. -ENOMEM (and @d unchanged). */
int af_job_set_copy(struct job_desc *d, const struct copy_src *copy);
void af_job_desc_done(struct job_desc *d);
/* Copies what a worker needs from @j into @ret; the resume hints move (used once). -ENOMEM. */
int af_job_desc_take_locked(struct job *j, struct job_desc *ret);
/* A delete job (a new one, or from a journal record); NULL on OOM. */
struct job *af_job_new_delete(const char *relpath, const char *bucket, const char *key,
                              const char *etag);
/* An abort job: AbortMultipartUpload of @upload_id (@relpath for logs); NULL on OOM. */
struct job *af_job_new_abort(const char *relpath, const char *bucket, const char *key,
                             const char *upload_id);

/* ---- queue.c: the job list, waiting, the workers' clients ---- */

struct job *af_queue_find_locked(struct af_queue *q, const char *relpath);
void af_queue_enqueue_locked(struct af_queue *q, struct job *j);
void af_queue_unlink_locked(struct af_queue *q, struct job *j);
void af_queue_note_outcome_locked(struct af_queue *q, const char *relpath, uint64_t seq,
                                  int result);
void af_queue_record_failure_locked(struct af_queue *q, const char *relpath, const char *bucket,
                                    const char *key, const char *error);
/* An S3 client for a thread of @q's, whose transfers stop at shutdown; NULL (logged) when
 * it cannot be made, which af_queue_new's check leaves to OOM. */
struct af_s3_client *af_queue_client_new(struct af_queue *q);
void af_queue_client_free(struct af_queue *q, struct af_s3_client *s3);
/* The body of a thread of @q's (a worker, a part thread): with its own S3 client, calls
 * @step_locked with q->lock held until the queue stops. A step runs one piece of work (it
 * may release the lock meanwhile, and takes it back) or waits on its condition. */
void *af_queue_thread_run(struct af_queue *q,
                          void (*step_locked)(struct af_queue *q, struct af_s3_client *s3));

/* ---- order.c: which job goes next ---- */

bool af_order_same_key(const char *b1, const char *k1, const char *b2, const char *k2);
/* @j, an upload, was handed over again: a queued @j moves behind any delete of its key
 * queued after it, so the delete runs first. */
void af_order_after_deletes_locked(struct af_queue *q, struct job *j);
/* The first queued job whose backoff has passed and that no earlier job holds back; else
 * NULL and *@ret_wait_ms: how long until one may be ready (UINT64_MAX: none). */
struct job *af_order_pick_locked(struct af_queue *q, uint64_t *ret_wait_ms);

/* ---- record.c: the journal records of jobs ---- */

/* The _locked functions queue a journal write (or removal); af_record_flush does the queued
 * ones, in order, and must be called with no lock held after each section that queued one.
 * When it returns, everything queued before it is on disk (or its failure logged). */
struct record_op;
void af_record_flush(struct af_queue *q);

void af_record_put_locked(struct af_queue *q, const char *relpath, const char *bucket,
                          const char *key, const struct fmt *f, enum af_journal_state state,
                          const char *error, const struct mpu_progress *mp);
void af_record_remove_locked(struct af_queue *q, const char *relpath);
/* A delete's or an abort's record (by @j's kind). */
void af_record_put_delete_locked(struct af_queue *q, const struct job *j,
                                 enum af_journal_state state, const char *error);
void af_record_remove_delete_locked(struct af_queue *q, const char *bucket, const char *key);
/* A delete is done: the record of @j's key now belongs to the next delete of that key, if
 * one is queued. An abort is done: its record goes. */
void af_record_delete_done_locked(struct af_queue *q, const struct job *j);
/* A line in done.log about an upload that finished (for status). */
void af_record_done_locked(struct af_queue *q, const char *relpath, const char *key,
                           uint64_t size, const char *etag);

/* ---- stream.c: parts sent while a file is written ---- */

/* Fills @mp with the progress of @relpath's open stream; false if it has none. */
bool af_stream_progress_locked(struct af_queue *q, const char *relpath, struct mpu_progress *mp);
/* Whether @relpath has an open stream. */
bool af_stream_find_locked(struct af_queue *q, const char *relpath);
/* Drops the list's references of every stream (af_queue_free, part threads joined). A
 * stream whose CreateMultipartUpload went unanswered leaves a sweep of its key (journaled). */
void af_stream_drop_all_locked(struct af_queue *q);
enum af_stream_key { AF_STREAM_KEY_FREE, AF_STREAM_KEY_HOLDS, AF_STREAM_KEY_CREATING };
/* Whether a stream of @bucket/@key holds @upload_id, or is creating its upload. */
enum af_stream_key af_stream_key_locked(struct af_queue *q, const char *bucket, const char *key,
                                        const char *upload_id);

/* ---- snapshot.c: snapshots of files still open ---- */

struct snapshot;
/* Whether a snapshot of @j's key is being uploaded: @j waits for it (order.c). */
bool af_snapshot_holds_locked(struct af_queue *q, const struct job *j);
/* Joins the snapshot thread (the queue is stopping) and drops the snapshots left. */
void af_snapshot_join(struct af_queue *q);

/* ---- multipart.c, transfer.c, archive_put.c, copy_delete.c: one attempt of an upload ---- */

/* The parts of one multipart upload, shared by the threads that send them. The fields up to
 * parts are set by the uploading worker before the part threads start and do not change;
 * parts[] is written and read with lock held while they run. */
struct mpu {
        struct af_queue *q;
        const struct job_desc *t;
        int64_t mtime_ns;
        const char *bucket;
        const char *key;
        const char *upload_id;
        int fd;   /* -1 for a copy */
        bool copy; /* parts are UploadPartCopy from t->copy, not read from fd */
        uint64_t size;
        uint64_t part;
        struct af_s3_part *parts;
        size_t nparts;
        pthread_mutex_t lock;
        struct {
                size_t next;              /* the next part to send */
                int err;                  /* the first failure, 0 while all is well */
                struct af_s3_error s3err; /* its detail */
        } locked;                         /* only with lock held */
};

/* The upload of a file that has an open stream takes it over (see stream.c). Returns whether
 * @upload_id (of size @n) was filled; @m's parts the stream sent are marked done. */
bool af_stream_take(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                    struct mpu *m, char *upload_id, size_t n);
/* UploadPart of bytes [@off, @off + @len) of @fd as part @num, retried in place; for a
 * stream's part (@s non-NULL) only while the stream is open. */
int af_multipart_send_part(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                           const char *key, const char *upload_id, unsigned num, int fd,
                           uint64_t off, uint64_t len, const struct af_stream *s,
                           struct af_s3_part *ret, struct af_s3_error *err);
int af_multipart_upload(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                        int fd, const struct stat *st, struct af_s3_put_result *res,
                        struct af_s3_error *err);
bool af_stream_is_open(struct af_queue *q, const struct af_stream *s);
int af_archive_put(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                   const char *key, int fd, const struct stat *st, const struct fmt *f,
                   struct af_s3_put_result *res, struct af_s3_error *err);
/*
 * A multipart copy of t->copy's object (@st: the spool file, unchanged since it went up) to
 * t->key: UploadPartCopy parts of the multipart part size, journaled like an upload's parts,
 * the source checked again before Complete, aborted on failure. 0 and @ret_nparts when done.
 */
int af_multipart_copy(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                      const struct stat *st, struct af_s3_put_result *res, size_t *ret_nparts,
                      struct af_s3_error *err);
/* Whether @c's object is still the one this mount put (its ETag and @size): 0, else -ESTALE
 * (@err says why) or the HEAD's error. */
int af_copy_source_check(struct af_queue *q, struct af_s3_client *s3, const struct copy_src *c,
                         uint64_t size, struct af_s3_error *err);
int af_copy_try(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                const struct stat *st, struct af_s3_put_result *res, struct af_s3_error *err);
/* One attempt. Returns 0, or a negative errno with @err filled for S3 errors. */
int af_transfer_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                     uint64_t *ret_size, struct stat *ret_st, struct af_s3_put_result *res,
                     struct af_s3_error *err);
/* One attempt at a delete: 0 deleted (or nothing there), 1 left alone (the ETag differs). */
int af_delete_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                   struct af_s3_error *err);

/* ---- abort.c: no multipart upload left open ---- */

/* One attempt at aborting @t's upload: 0 aborted (or already gone), else a negative errno
 * with @err filled. */
int af_abort_once(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                  struct af_s3_error *err);
/* Queues the abort of @upload_id of @bucket/@key as a job, journaled (the caller flushes),
 * retried as a delete is and kept in the journal until it is done. @relpath: for logs. */
void af_abort_queue_locked(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *upload_id);
/* Ends @upload_id of @bucket/@key, which nothing will complete: one try now, and if that
 * fails, af_abort_queue_locked. With no lock held. */
void af_abort_upload(struct af_queue *q, struct af_s3_client *s3, const char *relpath,
                     const char *bucket, const char *key, const char *upload_id);
/*
 * The upload id of a sweep: an abort job of every upload in progress for its key that no
 * stream of this mount holds. A CreateMultipartUpload whose answer never came (a reset, a
 * stall the server caught up with later, a cancel at shutdown, kill -9) may have made an
 * upload whose id nobody knows; a sweep is queued wherever that can have happened and
 * nothing else will clean the key up. No S3 upload id is "*".
 */
#define AF_ABORT_SWEEP "*"
bool af_abort_is_sweep(const struct job_desc *t);
/* Queues a sweep of @bucket/@key (journaled; the caller flushes), unless one is queued. */
void af_abort_sweep_locked(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *why);
/* The same with no lock held, and the journal flushed. */
void af_abort_sweep(struct af_queue *q, const char *relpath, const char *bucket,
                    const char *key, const char *why);
/* Aborts the uploads in progress for @bucket/@key but @keep (NULL: none) and those a stream
 * or a job of this mount holds (af_live_begin). 0, -EAGAIN while one of the key is creating
 * its upload (its id is not known yet), or the first S3 error (@err filled). With no lock
 * held. */
int af_abort_strays(struct af_queue *q, struct af_s3_client *s3, const char *bucket,
                    const char *key, const char *keep, struct af_s3_error *err);
/* @l (the caller's, filled) is running from now on until af_live_end; sweeps leave it be. */
void af_live_begin(struct af_queue *q, struct af_live_upload *l);
/* Its upload id, once created. */
void af_live_set_id(struct af_queue *q, struct af_live_upload *l, const char *upload_id);
void af_live_end(struct af_queue *q, struct af_live_upload *l);
/* af_abort_strays, and where that cannot finish (S3 away, a stream creating), a sweep job. */
void af_abort_strays_or_sweep(struct af_queue *q, struct af_s3_client *s3, const char *relpath,
                              const char *bucket, const char *key, const char *keep);

/* ---- manifest.c, run.c ---- */

void af_manifest_write(struct af_queue *q, const struct job_desc *t, uint64_t size,
                       const struct af_s3_put_result *res, uint64_t start, uint64_t end);
/* ---- extras.c: one file, several artifacts ---- */

/* After @t went up: the same file to the key of every other artifact that declares its path
 * (@is_dir: @t is a directory's archive), each counted and logged as an upload. 0, or the
 * first failure (with @err filled for S3 errors): then the whole job is retried. */
int af_extras_upload(struct af_queue *q, struct af_s3_client *s3, const struct job_desc *t,
                     bool is_dir, struct af_s3_error *err);

/* A worker's run of the job it picked (its state JOB_RUNNING, @t its private copy). */
void af_run_upload(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                   const struct job_desc *t);
/* A delete or an abort (JOB_DELETE, JOB_ABORT). */
void af_run_delete(struct af_queue *q, struct af_s3_client *s3, struct job *j,
                   const struct job_desc *t);

/* A request retried in place (a part, Complete): whether to go again, counted in the metrics
 * when so. */
bool af_queue_part_retry(struct af_queue *q, int r, unsigned failed);
