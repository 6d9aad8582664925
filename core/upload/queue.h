/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file queue.h
 * The upload queue: a bounded pool of workers that upload spool files to S3.
 *
 * The mount hands over a file by its path in the spool (af_queue_submit); a worker opens it
 * then, so the upload always reads what the file holds at that moment. Submitting a path that
 * is already queued updates that job (its key may have changed); submitting one that is being
 * uploaded marks it to be uploaded once more afterwards, so the last version always wins.
 *
 * Failures: the retry policy (upload/retry.h) decides. Retryable errors (af_s3_retryable)
 * are retried with exponential backoff and full jitter, max_attempts times and for at least
 * retry_for_ms; permanent ones fail at once. A failed file stays in the spool and is logged
 * with the operation, bucket/key, HTTP status, S3 code and request id.
 *
 * Renames and --delete-on-unlink: an upload may be a server-side copy of an object the
 * file already went up as (af_queue_submit_copy), and the queue also deletes objects
 * (af_queue_submit_delete). Those jobs are ordered by key: a copy or a delete does not start
 * while a job submitted before it, or running, writes, copies or deletes one of its keys.
 * Plain uploads are not ordered among themselves.
 *
 * Threads: af_queue_submit, af_queue_drain and af_queue_get_stats may be called from any
 * thread. Workers log each upload's outcome (they are where the decision is made).
 *
 * Streaming: a file still being written can start its multipart upload
 * early (af_queue_stream_start); its whole parts go up as the writer moves past them, on a
 * small pool of part threads, and the upload that the file's close later submits takes over
 * the parts already sent, so only the rest and the completion remain.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/buf.h"
#include "aws/creds.h"
#include "argo/router.h"
#include "aws/s3.h"
#include "base/metrics.h"

struct af_queue;
struct af_s3_ops; /* upload/s3_ops.h */

/** What af_queue_config.on_uploaded is told about each object that reached S3. */
struct af_queue_uploaded {
        const char *relpath; /* in the spool */
        uint64_t seq; /* the submit it covered: a later upload of the file has a larger one */
        const char *bucket;
        const char *key;
        const char *etag;
        enum af_archive archive; /* as it was packaged */
        bool is_dir;             /* a directory archive */
        uint64_t size;           /* of the spool file (0 for a directory) */
        /* The spool file as the upload found it when it opened it, so the caller can tell
         * whether what is in the spool now is what went up. */
        dev_t dev;
        ino_t ino;
        int64_t mtime_ns;
        /* The file was handed over again while this upload ran: a newer version follows. */
        bool superseded;
        /* NULL: the job's own object. Else the name of the artifact this object is for, one
         * of several that declare the file's path (see af_router_route_nth). */
        const char *artifact;
};

#define AF_QUEUE_MAX_PART_CONCURRENCY 64

struct af_queue_config {
        int spool_dirfd; /* borrowed; relative paths are opened under it */
        bool journal;     /* keep a durable record of each pending upload */
        int manifest_fd;  /* > 0: one JSON line per uploaded object is appended here */
        bool preserve_metadata; /* x-amz-meta-mode/uid/gid/mtime from the spool file */
        int journal_dirfd; /* borrowed; where the records are (with journal) */
        unsigned workers;      /* 0: 4 */
        unsigned max_attempts; /* 0: 10 */
        long retry_for_ms;     /* and keep retrying for at least this long (0: no window) */
        unsigned backoff_base_ms; /* 0: 200 */
        unsigned backoff_max_ms;  /* 0: 20000 */
        uint64_t part_size;           /* 0: 8 MiB; grown so any object fits 10,000 parts */
        uint64_t multipart_threshold; /* 0: 16 MiB; smaller files go in one PutObject */
        unsigned part_concurrency;    /* parts of one file in flight at once; 0: 4 */
        /* A copy (af_queue_submit_copy) of more bytes than this is a multipart copy
         * (UploadPartCopy parts of part_size), else one CopyObject; 0 or more than 5 GiB
         * (CopyObject's limit): 5 GiB. Lower only for tests. */
        uint64_t copy_part_threshold;
        long settle_ms; /* a closed file goes up this long after its close (0: 200 ms; < 0:
                         * at once), so write-temp-then-rename uploads only the final name */
        /* Files smaller than this go up at once whatever settle_ms says (0: none do): a
         * rename after their upload is a server-side copy and a delete, which costs less
         * than making each of them wait. */
        uint64_t settle_min_size;
        /* Borrowed, optional: how to package each file (archive strategy, member name).
         * Without it every file is uploaded as it is. */
        const struct af_router *router;
        const struct af_s3_config *s3;
        struct af_creds_provider *creds; /* borrowed */
        /* Borrowed, optional: the S3 calls the queue makes (upload/s3_ops.h). NULL: the real
         * client; a unit test passes a stand-in. */
        const struct af_s3_ops *s3_ops;
        /* Optional: called by a worker, with no queue lock held, after each object reaches
         * S3 (after the journal and the manifest say so). Must not call back into the
         * queue's waiting functions. */
        void (*on_uploaded)(void *ctx, const struct af_queue_uploaded *u);
        void *on_uploaded_ctx;
        /* Optional, the same way, with on_uploaded_ctx: an upload of @relpath found its file
         * gone (renamed or unlinked, or gone from the spool when a record of it is resumed)
         * after an attempt of it may have reached S3 unanswered (no answer came, or the last
         * run ended while it was under way). @etag: the quoted ETag such an object has if
         * known, else "". */
        void (*on_gone)(void *ctx, const char *relpath, const char *bucket, const char *key,
                        const char *etag);
        struct af_metrics *metrics; /* borrowed, optional: what the workers count */
};

struct af_queue_stats {
        uint64_t uploaded_files;
        uint64_t uploaded_bytes;
        uint64_t failed_files;
        uint64_t pending_files; /* queued or uploading */
        uint64_t pending_bytes; /* their sizes when they were handed over */
};

/** Starts the workers. -EINVAL (bad S3 config, line in @err), -ENOMEM, or a pthread error. */
int af_queue_new(const struct af_queue_config *cfg, struct af_queue **ret, struct af_buf *err);

/** Queues @relpath for upload to @bucket/@key. -ESHUTDOWN once the queue is stopping. */
int af_queue_submit(struct af_queue *q, const char *relpath, const char *bucket, const char *key);

/** What the caller knows a file's data by: the file, and a count of the changes made to its
 * data that only grows (the mount counts each write, truncate...). */
struct af_queue_version {
        dev_t dev;
        ino_t ino;
        uint64_t changes;
};

/**
 * af_queue_submit of the file with its data as of @v. If an upload of @relpath to the same
 * @bucket/@key is running, was handed the file as of @v too and opened that very file, it
 * already sends this data: nothing more is done (a rename right after a close finds the
 * close's upload under way). Otherwise as af_queue_submit, and @v is kept for the next one.
 */
int af_queue_submit_version(struct af_queue *q, const char *relpath, const char *bucket,
                            const char *key, const struct af_queue_version *v);

/** Where a renamed file's bytes already are in S3 (what the upload of its old name put). */
struct af_queue_copy {
        const char *bucket;
        const char *key;
        const char *etag; /* the copy happens only if the object still has it */
        /* The spool file that upload read: the copy happens only if the file is still it. */
        dev_t dev;
        ino_t ino;
        uint64_t size;
        int64_t mtime_ns;
};

/**
 * Like af_queue_submit, but the upload first tries a server-side copy from @src (CopyObject,
 * or above copy_part_threshold a multipart copy of UploadPartCopy parts; logged as op=copy)
 * when the file is still exactly what @src describes and goes up as it is (archive none). If
 * the copy cannot be made, for any reason, the file is uploaded from the spool as usual, so
 * the output is never lost. The job waits for every job queued before it, or running, that
 * writes or deletes @src's key. The journal records a plain upload (a multipart copy, with
 * its upload id and parts, as a multipart upload's): after a crash the file is uploaded,
 * keeping the parts already copied. A later af_queue_submit of the same file drops the copy.
 */
int af_queue_submit_copy(struct af_queue *q, const char *relpath, const char *bucket,
                         const char *key, const struct af_queue_copy *src);

/**
 * Queues the deletion of @bucket/@key, the object the last upload of @relpath put there with
 * ETag @etag (--delete-on-unlink; @relpath is only for logs and status). It runs after every
 * job queued before it, or running, that writes or copies the key; an upload to the key
 * submitted after it waits for it (af_order_after_deletes_locked: a delete is never dropped);
 * it is skipped when the object no longer has @etag (someone wrote the key since). Journaled
 * (a restart resumes it), retried like an upload. A delete that fails for good is logged (the
 * object is left in S3); it is never counted as a failed file, and never holds up an upload.
 * Once the queue is stopping it is journaled and left for the next mount or drain. 0 or
 * -ENOMEM.
 */
int af_queue_submit_delete(struct af_queue *q, const char *relpath, const char *bucket,
                           const char *key, const char *etag);

/** Whether an upload of @relpath is queued or running. */
bool af_queue_pending(struct af_queue *q, const char *relpath);

/**
 * Like af_queue_submit, then waits until an upload of the file that started after this call
 * has finished (or @timeout_ms passes; < 0: no limit). 0 when it is in S3; else the upload's
 * negative errno (the file stays in the spool, and the log says why), -ETIMEDOUT (also when
 * the shutdown's deadline passes, af_queue_set_deadline), or -ESHUTDOWN. For fsync() and --sync-close. A file that is not to be uploaded is not
 * submitted: use the router first.
 */
int af_queue_submit_wait(struct af_queue *q, const char *relpath, const char *bucket,
                         const char *key, long timeout_ms);
/** Waits for the upload of @relpath that is queued or running now, if any (no submit).
 * Returns as af_queue_submit_wait; 0 at once when nothing is pending for it. */
int af_queue_wait(struct af_queue *q, const char *relpath, long timeout_ms);

/**
 * Queues every upload the journal records (what an earlier run left: pending, failed, or a
 * multipart upload in progress, which resumes with the parts S3 already has), deletes and
 * aborts of multipart uploads. A record whose file is no longer in the spool is reported and
 * dropped, its multipart upload aborted (a job of its own); a corrupt one is reported,
 * set aside as "<name>.corrupt" and skipped. Returns how many were queued.
 */
int af_queue_resume(struct af_queue *q);

/**
 * Waits until no job is queued or running and every abandoned stream is aborted, or
 * @timeout_ms passes (< 0: no limit), or the deadline of af_queue_set_deadline does.
 * 0 when drained, -ETIMEDOUT otherwise.
 */
int af_queue_drain(struct af_queue *q, long timeout_ms);

/**
 * Shutdown has begun (SIGTERM, the unmount): whatever waits on the queue ends within
 * @timeout_ms from now (< 0: no limit). A deadline set earlier that comes sooner stays. When
 * it passes, the queue gives up for this run: af_queue_wait and af_queue_submit_wait return
 * -ETIMEDOUT (an fsync waiting on a stalled S3 gets its EIO), af_queue_drain returns
 * -ETIMEDOUT, transfers in flight are cancelled and no job starts any more. Every job keeps
 * its journal record (a submit is still journaled), for the next mount or drain.
 */
void af_queue_set_deadline(struct af_queue *q, long timeout_ms);

void af_queue_get_stats(struct af_queue *q, struct af_queue_stats *ret);

/** Calls @fn for each file that failed for good (the first 1000), oldest first, and for
 * each job still pending, with its last error ("" if it never failed). */
void af_queue_foreach_problem(struct af_queue *q,
                              void (*fn)(void *ctx, const char *relpath, const char *bucket,
                                         const char *key, const char *error),
                              void *ctx);

/**
 * Stops the workers (a running upload finishes first), logs every job that is still pending
 * as left in the spool, and frees the queue. NULL is a no-op.
 */
void af_queue_free(struct af_queue *q);

/* ---- streaming --------------------------------------------------------------------------- */

/**
 * A multipart upload of a file that is still being written, in order. The caller (the
 * mount) promises that the bytes of every part it hands over (af_stream_extend) no longer
 * change, and abandons the stream the moment that stops being true (a write behind them, a
 * truncate, a rename...). The upload of the file that af_queue_submit() queues later, for
 * the same path, bucket and key, takes over the parts sent so far; so does nothing else.
 *
 * The stream's upload id and finished parts (each with its CRC-32C) are journaled under the
 * file's record: after a crash, the next mount or drain uploads the file as the spool holds
 * it, reusing the parts whose bytes still match.
 */
struct af_stream;

/** Files from this size up go in a multipart upload (the resolved --multipart-threshold). */
uint64_t af_queue_multipart_threshold(const struct af_queue *q);
/** The part size of a stream: --part-size (a file that outgrows 10,000 of them is uploaded
 * again at close with bigger parts). */
uint64_t af_queue_stream_part_size(const struct af_queue *q);

/**
 * Starts a stream of @relpath, to be uploaded as it is (no archive) to @bucket/@key, whose
 * parts are read from @fd (read-only; the stream takes ownership of it, also on failure).
 * Nothing is sent until the first whole part is handed over. On success *@ret holds the
 * caller's reference (af_stream_abandon or af_stream_release gives it back).
 * -EBUSY: an upload of @relpath is queued or running, or it already has a stream; -ESHUTDOWN;
 * -ENOMEM; a pthread error when no part thread can start.
 */
int af_queue_stream_start(struct af_queue *q, const char *relpath, const char *bucket,
                          const char *key, int fd, struct af_stream **ret);

/**
 * Bytes [0, @end) of the file are final: every whole part in them not yet handed over is
 * queued for the part threads. Never waits for S3. *@ret_handed: the bytes handed over so
 * far (whole parts from 0), which the caller must abandon the stream before changing.
 * -ESTALE when the stream is no longer open (an upload took it over): release it.
 */
int af_stream_extend(struct af_stream *s, uint64_t end, uint64_t *ret_handed);

/** No more parts: the multipart upload is aborted (on a part thread) unless an upload has
 * already taken the stream over. @why goes to the log. Gives back the caller's reference. */
void af_stream_abandon(struct af_stream *s, const char *why);
/** Gives back the caller's reference and nothing else (the queue may outlive it or not). */
void af_stream_release(struct af_stream *s);

/* ---- snapshots ---------------------------------------------------------------------------- */

/**
 * Snapshots (--upload-open-every): the content of a file that is still open for writing, as
 * it was at one instant, uploaded to the file's key so S3 holds it before the close. The
 * caller (the mount) copies the file into @fd, a private file nothing else writes (a reflink
 * or a copy, checked to be consistent), and routes it (@route: bucket, key, packaging; not a
 * deferred one). The queue takes ownership of @fd, also on failure. @handovers is a counter
 * the caller moves before each hand-over of the file (af_queue_submit and the like), and
 * @seen its value before the copy was taken: if it moved since, an upload of content at
 * least as new was submitted (and may be done already), and the snapshot is dropped.
 *
 * One snapshot thread uploads them, oldest first, each request retried in place; a failed
 * one is logged and dropped (the file's next change is snapshotted again). A newer snapshot
 * of the same file replaces one still waiting. What a snapshot never does: write its key
 * after the file's final upload (the upload of the close, fsync, unmount...) started, which
 * waits for a snapshot of its key being uploaded and makes one still waiting moot; take or
 * abort the file's stream (a streaming file's snapshot is an object of its own); count as an
 * upload (stats, metrics). on_uploaded hears of each one as superseded (the final upload
 * follows): its object is the name's, but the file is not "in S3" until its final upload.
 * One still waiting is dropped when any job writes or deletes its key.
 *
 * Not journaled itself; but the file is, as pending (unless an upload job or a stream has its
 * record already), so after a crash the next mount or drain uploads it as the spool holds it.
 *
 * 0, -EBUSY (an upload of @relpath was submitted since the copy, or is queued or running: it
 * carries this content or newer), -ESHUTDOWN, -ENOMEM, or a pthread error when the snapshot
 * thread cannot start.
 */
int af_queue_snapshot(struct af_queue *q, const char *relpath, const struct af_route *route,
                      int fd, const struct stat *st, const atomic_uint *handovers,
                      unsigned seen);
/** Whether a snapshot of @relpath waits or is being uploaded (the mount takes no new copy
 * meanwhile, so a snapshot slower than the interval does not pile up copies). */
bool af_queue_snapshot_pending(struct af_queue *q, const char *relpath);

/**
 * Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff and Jitter"):
 * a delay in [0, min(max_ms, base_ms * 2^attempt)], picked with @rnd (uniform in [0, 1)).
 * Pure, for tests.
 */
unsigned af_backoff_ms(unsigned attempt, unsigned base_ms, unsigned max_ms, double rnd);
