/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file uploaded_log.h
 * The on-disk form of the registry of uploads (uploaded.h, af_uploaded_persist): a text file
 * of one record per line, appended as the registry changes and replayed at the next mount.
 *
 *     artifuse-uploaded 1
 *     1a2b3c4d P out.csv bucket wf/pod/out.csv "etag" none 2049 131 17 1733338800123456789
 *     5e6f7a8b T out.csv
 *
 * Each line is the CRC-32C of what follows its first space (8 hex digits), a space, and the
 * record: "P" (a put: name, bucket, key, ETag, archive, dev, ino, size, mtime_ns) or "T" (the
 * name's entry was taken). Values are percent-encoded as the journal's (no space, no newline
 * inside one); an empty value is an empty field. A line that does not end in a newline, fails
 * its checksum or does not parse (the torn last write of a killed process, or damage) is
 * skipped: losing a record only costs a re-upload instead of a copy, or an object
 * --delete-on-unlink leaves in S3.
 *
 * Encoding and replay are pure; af_uploaded_log_rewrite does the file I/O of a compaction.
 */
#pragma once

#include <stddef.h>

#include "base/buf.h"
#include "spool/uploaded.h"

#define AF_UPLOADED_LOG_HEADER "artifuse-uploaded 1\n"

/** Appends the line of a put of @e to @out. 0, or -ENOMEM/-E2BIG (@out then as it was). */
int af_uploaded_log_put(struct af_buf *out, const struct af_uploaded_entry *e);
/** Appends the line saying @relpath's entry was taken. 0, or -ENOMEM/-E2BIG. */
int af_uploaded_log_take(struct af_buf *out, const char *relpath);

struct af_uploaded_log_replay {
        void (*put)(void *ctx, const struct af_uploaded_entry *e);
        void (*take)(void *ctx, const char *relpath);
        void *ctx;
        size_t records; /* out: the lines replayed */
        size_t skipped; /* out: the lines skipped (torn, bad checksum, unparsable) */
};

/**
 * Calls @rp's put or take for each valid record of data[0..len), in order. A file that does
 * not start with AF_UPLOADED_LOG_HEADER is not replayed at all (everything counts as
 * skipped). -ENOMEM when a record cannot be decoded for lack of memory.
 */
int af_uploaded_log_replay(const char *data, size_t len, struct af_uploaded_log_replay *rp);

/**
 * Replaces the file @name under @dirfd with the header and the @n lines @next hands out
 * (each appended to the buffer it is given; returning < 0 stops with that error), written
 * to "<name>.tmp", fsynced and renamed over @name, then the directory fsynced. On failure
 * @name is as it was.
 */
int af_uploaded_log_rewrite(int dirfd, const char *name,
                            int (*next)(void *ctx, struct af_buf *out), void *ctx, size_t n);
