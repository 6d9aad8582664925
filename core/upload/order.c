/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which job a worker picks next. Jobs go in submit order, but a delete, or an upload that
 * may be a server-side copy, is ordered by key: it waits for every job submitted before it,
 * or running, that touches one of its keys (a delete must not overtake the upload or copy it
 * follows, nor a copy the upload of its source). Plain uploads are not ordered among
 * themselves: a file's newest version is handled by its single job. No job starts while a
 * snapshot of its key is being uploaded (snapshot.c), so the final upload is the last write.
 * Everything here runs with q->lock held.
 */
#include <stdint.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "upload/queue_int.h"

bool af_order_same_key(const char *b1, const char *k1, const char *b2, const char *k2)
{
        return strcmp(k1, k2) == 0 && strcmp(b1, b2) == 0;
}

/* A delete, an upload that may be a copy, or a sweep of a key's stray multipart uploads:
 * these are ordered by key (see blocked_locked). */
static bool keyed(const struct job *j)
{
        return j->d.kind == JOB_DELETE || j->d.copy || af_abort_is_sweep(&j->d);
}

/* Whether @j reads or writes @bucket/@key. */
static bool touches(const struct job *j, const char *bucket, const char *key)
{
        return af_order_same_key(j->d.bucket, j->d.key, bucket, key) ||
               (j->d.copy && af_order_same_key(j->d.copy->bucket, j->d.copy->key, bucket, key));
}

static bool conflict(const struct job *a, const struct job *b)
{
        return (keyed(a) || keyed(b)) &&
               (touches(a, b->d.bucket, b->d.key) ||
                (b->d.copy && touches(a, b->d.copy->bucket, b->d.copy->key)));
}

/*
 * @j, an upload, was handed over again. A delete of its key queued after it must run first
 * (the upload rewrites the key after it, or, the file gone, it is skipped and the delete
 * alone decides): a queued @j moves to the end of the queue; a running one does so when its
 * run ends (finish_upload goes through here again). The delete is never dropped in favour
 * of the upload: when an unlink races the close of the same file, the upload finds the file
 * gone and is skipped, and the object would stay.
 */
void af_order_after_deletes_locked(struct af_queue *q, struct job *j)
{
        bool after = false;

        if (j->state != JOB_QUEUED)
                return;
        for (struct job *i = q->locked.head; i; i = i->next) {
                if (i == j) {
                        after = true;
                        continue;
                }
                if (!after || i->d.kind != JOB_DELETE || !touches(i, j->d.bucket, j->d.key))
                        continue;
                af_queue_unlink_locked(q, j); /* and back at the end, counted once */
                if (q->locked.tail)
                        q->locked.tail->next = j;
                else
                        q->locked.head = j;
                q->locked.tail = j;
                return;
        }
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
struct job *af_order_pick_locked(struct af_queue *q, uint64_t *ret_wait_ms)
{
        uint64_t now = af_clock_mono_ms(), soonest = UINT64_MAX;
        bool any_keyed = false;

        for (struct job *j = q->locked.head; j && !any_keyed; j = j->next)
                any_keyed = keyed(j);
        for (struct job *j = q->locked.head; j; j = j->next) {
                if (j->state != JOB_QUEUED)
                        continue;
                if (j->not_before_ms <= now &&
                    ((any_keyed && blocked_locked(q, j)) || af_snapshot_holds_locked(q, j))) {
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
        *ret_wait_ms = soonest;
        return NULL;
}
