/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file remote.h
 * What happens in S3 when a name the mount uploaded is renamed or unlinked.
 *
 * The registry (spool/uploaded.h) learns each object that reached S3 from the queue's
 * on_uploaded callback (af_remote_on_uploaded). Then:
 * - A rename of a file that is still exactly what went up under its old name (same inode,
 *   size and mtime, no upload of it pending, archive none on both sides) is a server-side
 *   copy to the new name's key instead of a re-upload (af_remote_moved). The copy goes
 *   through the queue, which falls back to uploading from the spool if it fails.
 * - By default the old name's object is left in S3 as it is (S3 has no rename; the old key
 *   keeps the content it had). With --delete-on-unlink, the object the last upload of a
 *   name put is deleted when that name is unlinked, renamed away, or replaced by a rename
 *   (af_remote_unlinked, af_remote_renamed) — unless the key is the one the name's new
 *   occupant is uploaded to, or another name's last upload put it. Deletes go through the
 *   queue, ordered after every upload and copy of that key, dropped when a newer upload of
 *   the key is submitted, and done only if the object still has the ETag we gave it.
 * - A name that disappears while its upload runs (unlinked or renamed during the upload)
 *   gets its object deleted when that upload ends (--delete-on-unlink).
 *
 * Files inside archived (tgz/zip) directory artifacts have no object of their own (their
 * directory's archive is rebuilt at flush and unmount), so none of this applies to them.
 *
 * Threads: any; the registry and the queue have their own locks.
 */
#pragma once

#include <stdbool.h>

#include "upload/queue.h"
#include "argo/router.h"
#include "spool/uploaded.h"

struct af_remote;

struct af_remote_config {
        int spool_fd;                   /* borrowed: the spool's files directory */
        const struct af_router *router; /* borrowed */
        bool delete_on_unlink;
        size_t max_entries; /* the registry's bound; 0: AF_UPLOADED_DEFAULT_MAX */
        /* Keep the registry in <log_dirfd>/AF_REMOTE_LOG (borrowed; the spool's journal
         * directory), so it survives a restart. */
        bool persist;
        int log_dirfd;
};

#define AF_REMOTE_LOG "uploaded.log"

/**
 * With @cfg->persist, the registry is first read back from its log (what earlier mounts of
 * the spool uploaded), minus the names that are no longer a regular file in the spool: those
 * left it without this mount seeing an unlink (removed from the spool directly, or evicted),
 * and an object is never deleted for what the mount did not see. A log that cannot be read or
 * written is logged and the registry stays in memory. -ENOMEM.
 */
int af_remote_new(const struct af_remote_config *cfg, struct af_remote **ret);
/** The queue exists after the remote (it calls af_remote_on_uploaded): set it then. */
void af_remote_set_queue(struct af_remote *r, struct af_queue *queue);
void af_remote_free(struct af_remote *r);

/** For af_queue_config.on_uploaded, with the remote as its ctx. */
void af_remote_on_uploaded(void *ctx, const struct af_queue_uploaded *u);
/**
 * The queue's on_gone: an upload of a name now gone may have put @etag ("": unknown) at
 * @key without hearing back. With --delete-on-unlink the key is deleted (only if it still
 * has @etag, when known), as any object of a name that went away, unless a file has the
 * name again (its upload follows) or another name's upload put the key.
 */
void af_remote_on_gone(void *ctx, const char *relpath, const char *bucket, const char *key,
                       const char *etag);

/**
 * The regular file @fd was renamed from @from to @to (spool-relative), or hard-linked as
 * @to (@from its other name, which keeps its object), and is not open for writing. Submits
 * a server-side copy of @from's object to @to's key when that is exactly what an upload
 * would produce; true if it did (else the caller uploads as usual).
 */
bool af_remote_moved(struct af_remote *r, const char *from, const char *to, int fd);

/**
 * Whether a rename from @from to @to may copy or delete objects (either name went up). The
 * mount then does it all before answering the rename, so that what the program does next
 * (re-creating @from, say) is ordered after it in the queue.
 */
bool af_remote_involved(struct af_remote *r, const char *from, const char *to);

/** After a rename (and af_remote_moved): forgets what @from and the replaced @to put, and
 * with --delete-on-unlink deletes it (see above). @exchange: RENAME_EXCHANGE, where both
 * names still exist: nothing is deleted. */
void af_remote_renamed(struct af_remote *r, const char *from, const char *to, bool exchange);

/**
 * A directory was renamed from @from to @to: each regular file under it is handled as if it
 * had been renamed on its own (a copy or an upload under its new name; with
 * --delete-on-unlink its old object deleted), as S3 has no directories to rename. Without
 * this, files waiting for their upload under the old name would never go up. Nothing when
 * @to is not a directory.
 */
void af_remote_dir_renamed(struct af_remote *r, const char *from, const char *to);

/** @rel left the spool with its object kept in S3 (evicted to make room): forgets it, so
 * nothing deletes that object later. */
void af_remote_forget(struct af_remote *r, const char *rel);

/** @rel was unlinked: forgets its object, and with --delete-on-unlink deletes it. Call it
 * before answering the unlink, so that a re-created @rel is handed over after the delete. */
void af_remote_unlinked(struct af_remote *r, const char *rel);

/**
 * At unmount or the end of `run` (--delete-on-unlink): every name in the registry (uploaded
 * by this mount, or by an earlier one on the spool and still in the spool when this one
 * started) that is no longer a regular file in the spool gets the delete an unlink would
 * have queued, so
 * whatever slipped past the per-operation hooks (a crash between an unlink and its record,
 * a race) leaves no stray object. Returns how many deletes were queued.
 */
unsigned af_remote_reconcile(struct af_remote *r);
