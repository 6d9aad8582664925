/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file journal.h
 * Durable records of pending uploads, so a killed daemon's work resumes.
 *
 * One record per file that is waiting for S3, in the spool's journal directory, named after
 * a hash of the file's path. A record says where the file goes (bucket, key, endpoint,
 * region: never credentials), how it is packaged, its state, and for a multipart upload the
 * upload id and the parts already finished, so a resumed upload sends only what is missing.
 *
 * Records are written atomically (temporary file, fsync, rename, fsync of the directory) and
 * end with an "end" line: a torn or truncated record is detected, reported and skipped, and
 * never stops the others. The text format is line based, values percent-encoded:
 *
 *     artifuse-journal 1
 *     path out/results.csv
 *     ...
 *     part 1 "etag"
 *     partsum 1 1a2b3c4d
 *     end
 *
 * Encoding and decoding are pure; the I/O functions take the journal directory's fd.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "aws/s3.h"
#include "argo/spec.h"

#define AF_JOURNAL_MAX ((size_t)4 << 20) /* a record with 10,000 parts fits easily */

enum af_journal_state {
        AF_JOURNAL_PENDING = 0, /* waiting or being uploaded */
        AF_JOURNAL_FAILED,      /* gave up for now (a permanent error, or attempts spent) */
};

/* What a record asks for. Records without an "op" line are uploads (older writers). */
enum af_journal_op {
        AF_JOURNAL_UPLOAD = 0,
        AF_JOURNAL_DELETE, /* --delete-on-unlink: remove bucket/key if it still has etag */
        AF_JOURNAL_ABORT,  /* end the multipart upload upload_id of bucket/key, which
                            * nothing will complete (its file is gone, or it failed) */
};

struct af_journal_rec {
        enum af_journal_op op;
        char *path;     /* relative to the spool's files directory (a delete: the name that
                         * was unlinked or renamed away, for status) */
        char *bucket;
        char *key;
        char *endpoint; /* may be NULL: then the drainer's own */
        char *region;
        enum af_archive archive;
        char *member;          /* archives */
        char *zip_file_member; /* ZIP of one file */
        int level;
        enum af_journal_state state;
        uint64_t size;   /* the file's size and mtime when the multipart upload began */
        int64_t mtime_ns;
        char *upload_id; /* a multipart upload in progress, or NULL */
        uint64_t part_size;
        struct af_s3_part *parts; /* finished parts, any order; "partsum" lines: their CRC-32C */
        /* The upload was started while the file was still being written (a stream): size and
         * mtime say nothing then, and a resume checks each part's CRC-32C against the file. */
        bool stream;
        size_t nparts;
        char *error;     /* the last error, for status */
        char *etag;      /* a delete: the ETag the object had when this mount put it */
        time_t updated;
};

void af_journal_rec_done(struct af_journal_rec *rec);

/**
 * The journal's value encoding, for other line-based files in the spool: every byte outside
 * printable ASCII, ' ', '%' and '"' percent-encoded, so a value never holds a space or a
 * newline. Encode: 0 or -ENOMEM/-E2BIG from @out. Decode [s, s+n) into a new string: NULL on
 * a bad escape or OOM.
 */
int af_journal_encode_value(struct af_buf *out, const char *v);
char *af_journal_decode_value(const char *s, size_t n);

/** Appends the text of @rec to @out. */
int af_journal_encode(const struct af_journal_rec *rec, struct af_buf *out);
/**
 * Parses a record. -EINVAL (with a reason in @err) for anything that is not a whole, valid
 * record: wrong header, unknown version, truncated (no "end"), bad field. @ret is filled
 * only on success.
 */
int af_journal_decode(const char *data, size_t len, struct af_journal_rec *ret,
                      struct af_buf *err);

/** The record's file name for @path: 32 hex digits of SHA-256(path) and ".rec". */
void af_journal_name(const char *path, char out[40]);

/**
 * The record's file name: af_journal_name() of its path for an upload (one record per file);
 * for a delete, of "delete", bucket and key (one per object, apart from the uploads); for an
 * abort, of "abort", bucket, key and upload id (one per multipart upload).
 */
void af_journal_rec_name(const struct af_journal_rec *rec, char out[40]);

/** Writes @rec atomically under @dirfd, as af_journal_rec_name() says. */
int af_journal_write(int dirfd, const struct af_journal_rec *rec);
/**
 * Writes @len bytes of @data, an encoded record, atomically as @name under @dirfd: a
 * temporary file, fsync, rename, fsync of the directory. What af_journal_write does once
 * the record is encoded, for a caller that encodes under a lock and writes after it.
 */
int af_journal_store(int dirfd, const char *name, const void *data, size_t len);
/**
 * The end of an atomic write: @fd, open on @tmp under @dirfd and holding the whole new
 * content, is fsynced and closed (always), then renamed to @name and the directory fsynced;
 * on any failure, or when @r (the caller's result so far) is < 0, @tmp is removed instead.
 * Returns @r or the first error.
 */
int af_journal_commit(int dirfd, int fd, const char *tmp, const char *name, int r);
/**
 * af_journal_store into the existing file @spare (from af_journal_retire) instead of a new
 * temporary file: rewritten in place, fsync, renamed to @name, fsync of the directory.
 * A file system allocates no inode for it (on ext4 without a journal, where a new inode
 * scans past every recently freed one, that is most of a small file's cost). Spares are
 * named so that no reader takes them for records, so a crash at any step leaves at worst a
 * spare with stale text, never a wrong record. On failure the spare is gone (unlinked) and
 * the record is written as af_journal_store does.
 */
int af_journal_store_spare(int dirfd, const char *spare, const char *name, const void *data,
                           size_t len);
/**
 * Removes the record named @name by renaming it to @spare (replacing a stale spare of that
 * name), for af_journal_store_spare to reuse. 1 if @spare now exists, 0 if there was no
 * record (nothing to reuse), -errno.
 */
int af_journal_retire(int dirfd, const char *name, const char *spare);
/** The name of spare number @i ("spare-N", never read as a record) into @out (40 bytes). */
void af_journal_spare_name(unsigned i, char *out);
/** Removes the record named @name (no error if there is none). */
int af_journal_unlink(int dirfd, const char *name);
/** Removes the record of @path (no error if there is none). */
int af_journal_remove(int dirfd, const char *path);
/** Removes the delete record of @bucket/@key (no error if there is none). */
int af_journal_remove_delete(int dirfd, const char *bucket, const char *key);

/**
 * Calls @fn for each valid record under @dirfd, in name order. A record that cannot be read
 * or parsed is reported through @bad (may be NULL) and, with @quarantine, renamed to
 * "<name>.corrupt" so the next scan does not trip on it again.
 * Returns the number of valid records, or a negative errno if the directory cannot be read.
 */
int af_journal_scan(int dirfd, bool quarantine, void (*fn)(void *ctx, struct af_journal_rec *rec),
                    void (*bad)(void *ctx, const char *name, const char *why), void *ctx);

/**
 * Appends one line about a finished upload to "done.log" under @dirfd (for status):
 * "<unix time> <size> <etag> <path> <key>", values percent-encoded. Best effort.
 */
void af_journal_done(int dirfd, const char *path, const char *key, uint64_t size,
                     const char *etag);
/** How many uploads done.log records, and their bytes. */
int af_journal_done_count(int dirfd, uint64_t *ret_files, uint64_t *ret_bytes);
