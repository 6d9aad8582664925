/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file leave.h
 * Leaving the files at their paths after `artifuse run` returns (--leave-files).
 *
 * Inside an Argo pod, Argo's emissary stats and tars every output artifact's path after the
 * wrapped command exits, and the wait container fails the step for each non-optional one
 * it cannot find. `run` has unmounted by then, so without this the outputs would vanish from
 * the mount point at exactly that moment. After the drain and the unmount, the spool's
 * files/ directory is made visible at the mount point again, with the same bytes:
 *
 * 1. a bind mount of SPOOL/files onto the mount point (instant, no copy; needs
 *    CAP_SYS_ADMIN, which a container that mounts FUSE itself has); else
 * 2. each file is hard-linked (same filesystem) or copied into the directory under the mount
 *    point, which is visible again now that the FUSE mount is gone (a FUSE mount made by the
 *    unprivileged fusermount3 helper); existing names there are replaced.
 *
 * Either way the spool keeps its files, so what could not be uploaded can still be drained.
 * Files written at the mount point after this are not uploaded (the program has ended).
 */
#pragma once

#include <stdbool.h>

#include "base/buf.h"

enum af_leave_how {
        AF_LEAVE_BIND = 1, /* SPOOL/files is bind-mounted on the mount point */
        AF_LEAVE_COPY,     /* the files were linked or copied under the mount point */
};

/**
 * Makes the files under @spool_files (SPOOL/files) readable under @mountpoint, which must no
 * longer have the FUSE mount on it. Sets *ret_how and *ret_files (files linked or copied;
 * 0 for a bind mount) on success. On failure returns a negative errno and says why in @why
 * (the path and the call that failed).
 */
int af_leave_files(const char *spool_files, const char *mountpoint, enum af_leave_how *ret_how,
                   unsigned long *ret_files, struct af_buf *why);
