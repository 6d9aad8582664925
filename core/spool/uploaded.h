/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file uploaded.h
 * What this mount put in S3: for each name in the spool, the object its last upload made
 * (bucket, key, ETag, packaging) and the spool file that upload read (dev, ino, size,
 * mtime). The mount asks it two questions: "is this renamed file still exactly what went up
 * under its old name?" (then a server-side copy replaces a re-upload) and "which object did
 * this unlinked name leave behind?" (--delete-on-unlink).
 *
 * Memory: one allocation per name, the struct and its four strings together (about 100
 * bytes plus the path, key and ETag: some 300 bytes for a typical Argo key), two hash
 * chains (by name, and by bucket+key for af_uploaded_key_held) and an age list. At most
 * @max_entries names are kept; past that the oldest entry is forgotten, which only costs
 * a re-upload instead of a copy, or an object --delete-on-unlink does not remove.
 *
 * Persistence (af_uploaded_persist): every put and take is also appended to a log in the
 * spool (uploaded_log.h), which the next mount on the spool replays, so after a kill -9 a
 * rename of an earlier upload is still a copy and an unlink still deletes its object. The
 * log is rewritten with only the live entries at start and whenever it holds more than
 * twice them plus 4096 records, so it stays within about 2 * @max_entries records. Appends
 * are not fsynced (see uploaded.c); a rewrite is.
 *
 * Threads: every function may be called from any thread (one internal lock).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "argo/spec.h"

#define AF_UPLOADED_DEFAULT_MAX 250000

struct af_uploaded;

struct af_uploaded_entry {
        const char *relpath; /* the name in the spool */
        const char *bucket;
        const char *key;
        const char *etag;
        enum af_archive archive;
        /* The spool file the upload read. mtime_ns < 0: not known to be what went up (the
         * file changed during the upload), so never copied from. */
        dev_t dev;
        ino_t ino;
        uint64_t size;
        int64_t mtime_ns;
        /* The queue's submit seq the upload covered (af_queue_uploaded.seq): a put never
         * replaces an entry of a later one. 0: not known (read back from the log, or kept by
         * a rename); not written to the log. */
        uint64_t seq;
};

/** An empty registry keeping at most @max_entries names (0: AF_UPLOADED_DEFAULT_MAX).
 * -ENOMEM. */
int af_uploaded_new(size_t max_entries, struct af_uploaded **ret);
/** Frees the registry and every entry in it. NULL is a no-op. */
void af_uploaded_free(struct af_uploaded *u);

struct af_uploaded_log_stats {
        size_t records; /* records replayed */
        size_t skipped; /* records skipped: torn, failing their checksum, unparsable */
        size_t entries; /* names known after the replay */
};

/**
 * Replays the log @name under @dirfd (a missing file is an empty one) into @u, which must be
 * empty and not yet shared, rewrites the log compacted, and from then on appends every change
 * to it. @dirfd is borrowed and must stay open as long as @u. 0 and @ret filled; -errno when
 * the log cannot be read or rewritten (@u may then hold what was replayed, and stays in
 * memory only). If a later write fails and a rewrite cannot repair it, the log is removed
 * (logged once) and @u goes on in memory.
 */
int af_uploaded_persist(struct af_uploaded *u, int dirfd, const char *name,
                        struct af_uploaded_log_stats *ret);

/** Records @e (copied), replacing the entry of the same relpath, unless that entry's seq is
 * later than @e's (-EEXIST, unchanged); forgets the oldest entry when full. -ENOMEM (the
 * registry is unchanged). */
int af_uploaded_put(struct af_uploaded *u, const struct af_uploaded_entry *e);
/** As af_uploaded_put, but only if @e's relpath has no entry: else -EEXIST (unchanged). */
int af_uploaded_put_new(struct af_uploaded *u, const struct af_uploaded_entry *e);

/**
 * Removes the entry of @relpath and hands it over in @ret (free it with
 * af_uploaded_entry_free). -ENOENT when there is none.
 */
int af_uploaded_take(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret);
/** A copy of the entry of @relpath, which stays. -ENOENT, -ENOMEM. */
int af_uploaded_get(struct af_uploaded *u, const char *relpath, struct af_uploaded_entry **ret);
void af_uploaded_entry_free(struct af_uploaded_entry *e);

/** Whether @relpath has an entry. */
bool af_uploaded_has(struct af_uploaded *u, const char *relpath);

/** Whether some name's last upload put @bucket/@key. */
bool af_uploaded_key_held(struct af_uploaded *u, const char *bucket, const char *key);

size_t af_uploaded_count(struct af_uploaded *u);

/** A snapshot of every name with an entry, oldest first (copies; free with
 * af_uploaded_names_free). -ENOMEM. */
int af_uploaded_names(struct af_uploaded *u, char ***ret, size_t *ret_n);
void af_uploaded_names_free(char **names, size_t n);
