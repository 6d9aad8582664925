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
 * Mount requirements: af_fs_ops expects the mount option default_permissions (the kernel then
 * checks every permission, access() included, as for a local filesystem, and enforces POSIX
 * ACLs) and a daemon running as root or as the only user of the mount.
 *
 * Where the mount still differs from a local filesystem, and why:
 * - O_TMPFILE fails with EOPNOTSUPP: libfuse 3.14 has no tmpfile operation (callers such as
 *   Python's tempfile fall back to a named file).
 * - O_DIRECT is honoured by the kernel's page cache only: unaligned O_DIRECT I/O succeeds
 *   where a local filesystem says EINVAL (FUSE does not pass the caller's buffer alignment).
 * - ioctls (chattr/lsattr flags, FIEMAP, FICLONE) fail with ENOTTY: none is implemented.
 * - listxattr by a caller without CAP_SYS_ADMIN also lists trusted.* names (the daemon, as
 *   root, sees them; the kernel does not filter FUSE replies).
 * - Data is written by the daemon: as root, it may use the blocks a filesystem reserves for
 *   root and is not held to disk quotas, so a full disk gives a non-root writer ENOSPC later.
 * - Attributes and names are cached for af_fs_config.timeout: changes made in the spool
 *   behind the mount's back are seen that much later. Changes through the mount are seen at
 *   once.
 */
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "queue.h"
#include "router.h"

struct af_fs;

struct af_fs_config {
        const char *spool;              /* absolute, real path of the spool directory */
        const struct af_router *router; /* borrowed */
        struct af_queue *queue;         /* borrowed; may be set later with af_fs_set_queue */
        double timeout;                 /* attribute and entry cache timeout, seconds */
        bool sync_close;                /* close() (FUSE flush) waits for the upload, as fsync */
        bool streaming;                 /* a file written in order starts uploading early */
};

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret);
void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue);
/** Submits every file still dirty (open at unmount, or unmounted lazily). Returns how many. */
unsigned af_fs_submit_dirty(struct af_fs *fs);
void af_fs_free(struct af_fs *fs);

extern const struct fuse_lowlevel_ops af_fs_ops;
