/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file fs.h
 * The FUSE low-level passthrough over the spool directory.
 *
 * Every operation is served by the spool (a local directory), so programs get the local
 * filesystem's POSIX behaviour. The only addition is the upload trigger: the last release of
 * a writable handle on a file that was written, created, truncated, copied into
 * (copy_file_range), allocated or hole-punched (fallocate) since it was last handed over, and
 * a rename (either side of RENAME_EXCHANGE) or hard link of a regular file into a path the
 * router uploads, submit that file to the upload queue under its current path in the spool.
 *
 * Streaming: a regular file with one name, written in order from its start (created, or
 * truncated to 0) to at least the queue's multipart threshold, and uploaded as it is (no
 * archive), gets a stream (queue.h): each whole part goes up once the writer has moved past
 * it. Whatever could change a byte already handed over abandons the stream, and the file
 * goes up whole at close: a write behind the handed-over parts or one leaving a gap, a
 * truncate (setattr size, O_TRUNC), fallocate other than plain allocation, copy_file_range
 * into the file, a rename or hard link of the file (its key may change), its unlink, or
 * a rename over it.
 *
 * Snapshots (--upload-open-every, snapshot.c): every interval, each file open for writing
 * whose data changed since its last snapshot is copied as it is at one instant (a reflink or
 * a copy, taken again if a change ran during it) and the queue uploads the copy to the
 * file's key (queue.h, "Snapshots"); the close hands the file over as always.
 *
 * Mount requirements: af_fs_ops expects the mount option default_permissions (the kernel then
 * checks every permission, access() included, as for a local filesystem, and enforces POSIX
 * ACLs) and a daemon running as root or as the only user of the mount.
 *
 * Where the mount still differs from a local filesystem, and why: README.md, "Where the mount
 * differs from a local filesystem, and why" (O_TMPFILE, unaligned O_DIRECT, nosuid/nodev,
 * ioctls, trusted.* listing, the root-reserved blocks that root cannot use here, the
 * attribute and entry cache timeout, st_dev, old objects on rename and unlink); each is
 * checked by a test in test_posix.py.
 */
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "upload/queue.h"
#include "spool/remote.h"
#include "argo/router.h"
#include "spool/space.h"

struct af_fs;

struct af_fs_config {
        const char *spool;              /* absolute, real path of the spool directory */
        const struct af_router *router; /* borrowed */
        struct af_queue *queue;         /* borrowed; may be set later with af_fs_set_queue */
        double timeout;                 /* attribute and entry cache timeout, seconds */
        bool sync_close;                /* close() (FUSE flush) waits for the upload, as fsync */
        /* Borrowed, optional: room accounting (--spool-limit, free space). A write that
         * would pass it gets ENOSPC, or a short write; files already in S3 are evicted
         * first to make room, unless @keep. */
        struct af_space *space;
        bool keep;
        bool no_xattr; /* the xattr ops are left out of the table: no POSIX ACLs either */
        struct af_remote *remote; /* borrowed, optional: copies on rename, deletes on unlink */
        bool streaming;                 /* a file written in order starts uploading early */
        /* > 0: every so many ms, each file open for writing that changed since is snapshotted
         * to its key (queue.h, "Snapshots"); --upload-open-every */
        long upload_open_every_ms;
};

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret);
void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue);
/** Lets the mount tell the kernel about names it removed itself (evictions): starts a
 * thread that sends the notifications; NULL stops it, before the session is destroyed. */
void af_fs_set_session(struct af_fs *fs, struct fuse_session *se);
/** Submits every file still dirty (open at unmount, or unmounted lazily). Returns how many. */
unsigned af_fs_submit_dirty(struct af_fs *fs);
void af_fs_free(struct af_fs *fs);

extern const struct fuse_lowlevel_ops af_fs_ops;
