/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file fs.h
 * The FUSE low-level passthrough over the spool directory.
 *
 * Every operation is served by the spool (a local directory), so programs get the local
 * filesystem's POSIX behaviour. The only addition is the upload trigger: the last release of
 * a writable handle on a file that was written, created or truncated since it was last handed
 * over, and a rename of a regular file into a path the router uploads, submit that file to
 * the upload queue under its current path in the spool.
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
};

int af_fs_new(const struct af_fs_config *cfg, struct af_fs **ret);
void af_fs_set_queue(struct af_fs *fs, struct af_queue *queue);
/** Submits every file still dirty (open at unmount, or unmounted lazily). Returns how many. */
unsigned af_fs_submit_dirty(struct af_fs *fs);
void af_fs_free(struct af_fs *fs);

extern const struct fuse_lowlevel_ops af_fs_ops;
