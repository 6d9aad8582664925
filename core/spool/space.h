/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file space.h
 * How much room the spool has: --spool-limit and the spool filesystem's free space, and the
 * files that may be evicted to make room.
 *
 * The spool's usage is the sum of the apparent sizes (st_size) of the regular files in it:
 * counted once at start, then kept up to date by the mount, which reserves the growth of
 * each write before making it (af_space_reserve) and gives back what shrinks (truncate,
 * unlink, eviction). Sparse files count at their full size: a limit is never passed by
 * filling holes. Apart from the limit, a write never takes the last of the spool
 * filesystem's space available to unprivileged users (statvfs f_bavail): the daemon runs as
 * root, and the blocks the filesystem reserves for root are left for the journal.
 *
 * Eviction: a file that is in S3 (af_space_uploaded, told by the upload queue) may be
 * removed from the spool when a write needs its room, oldest upload first. This module only
 * keeps the candidates; the mount decides whether one can go (nobody has it open, it has not
 * changed since) and removes it.
 *
 * Threads: every function may be called from any thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct af_space;

struct af_space_config {
        int dirfd;      /* borrowed: the spool's files directory (scanned, statvfs'd) */
        uint64_t limit; /* --spool-limit; 0: none (free space still applies) */
};

/** A file that went up to S3 and may be evicted, as it was when it went. */
struct af_space_candidate {
        char *relpath; /* spool-relative */
        char *key;     /* for the log */
        dev_t dev;
        ino_t ino;
        uint64_t size;
        int64_t mtime_ns;
};

/** With a limit, sums the sizes of the files under cfg->dirfd first. -ENOMEM or -errno. */
int af_space_new(const struct af_space_config *cfg, struct af_space **ret);
void af_space_free(struct af_space *sp);

/** How many regular files the directory @dirfd holds (at any depth), and their apparent
 * size: what the spool's usage counts. */
int af_space_scan(int dirfd, uint64_t *ret_files, uint64_t *ret_bytes);

/**
 * Takes room for @growth more bytes in the spool. Returns how many of them may be written
 * (less than @growth when the limit or the free space would be passed, 0 when there is no
 * room at all); what is returned is counted as used until given back with af_space_release.
 */
uint64_t af_space_reserve(struct af_space *sp, uint64_t growth);

/** Gives back @bytes: an unused reservation, or the size of what shrank or went away. */
void af_space_release(struct af_space *sp, uint64_t bytes);

/** Counts @bytes more as used, room or not (a file grew by more than was reserved). */
void af_space_charge(struct af_space *sp, uint64_t bytes);

/** Bytes in use by the spool's files, and the limit (0: none). */
uint64_t af_space_used(struct af_space *sp);
uint64_t af_space_limit(struct af_space *sp);

/** Remembers a file that reached S3 as a candidate for eviction (the newest last). */
void af_space_uploaded(struct af_space *sp, const char *relpath, const char *key, dev_t dev,
                       ino_t ino, uint64_t size, int64_t mtime_ns);

/** Takes the oldest candidate into @ret (free it with af_space_candidate_done). */
bool af_space_next_candidate(struct af_space *sp, struct af_space_candidate *ret);

/** Puts a candidate that could not go yet (open just now) back, at the newest end. */
void af_space_requeue(struct af_space *sp, struct af_space_candidate *c);

void af_space_candidate_done(struct af_space_candidate *c);

/** The candidates held (for tests and the status). */
size_t af_space_candidates(struct af_space *sp);
