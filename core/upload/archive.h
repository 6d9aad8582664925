/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file archive.h
 * Argo's default artifact format, a gzip'd tar, produced as a stream.
 *
 * The archive is written to a sink callback as it is built, from the spool file, so no
 * second copy of the data is ever made on disk; memory use is zlib's state plus one read
 * buffer. Layout as Argo's util/archive: one member named basename(path) with the file's
 * mode, uid, gid and mtime (ustar; a PAX header carries names over 100 bytes, link targets
 * over 100 bytes and sizes over 8 GiB), then the two zero blocks that end a tar. A directory
 * artifact becomes "<base>/..." members, as Argo's tarDir writes them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/buf.h"

/** Receives the next @n bytes of the archive; returns 0 or a negative errno to stop. */
typedef int (*af_sink_fn)(void *ctx, const void *data, size_t n);

struct af_tar_entry {
        const char *name; /* member name, e.g. "hello.txt" */
        char type;        /* '0' regular file (also for 0), '5' directory, '2' symlink */
        const char *linkname; /* symlinks: the target */
        mode_t mode;      /* permission bits */
        uid_t uid;
        gid_t gid;
        time_t mtime;
        uint64_t size;
};

/** Appends the header block(s) for @e to @out (512 bytes, or more with a PAX header). */
int af_tar_header(const struct af_tar_entry *e, struct af_buf *out);

/**
 * Streams gzip(tar(@e, @e->size bytes of @fd from offset 0)) to @sink. @level is the gzip
 * level, -1 for zlib's default (6, as Go's DefaultCompression). -ESTALE if the file is
 * shorter than @e->size (it changed: the caller retries), -EIO on a zlib error, or the
 * sink's error.
 */
int af_tgz_stream(int fd, const struct af_tar_entry *e, int level, af_sink_fn sink, void *ctx);

/**
 * Streams gzip(tar) of the directory @dirfd (not closed) as Argo's tarDir does: the
 * directory itself as "<base>", then every entry below it as "<base>/<rel>", in lexical order
 * depth first (Go's filepath.Walk): directories, regular files with their data, symlinks as
 * symlinks, anything else header-only. Errors as af_tgz_stream, plus -ELOOP for a tree deeper
 * than 256 levels.
 */
int af_tgz_stream_dir(int dirfd, const char *base, int level, af_sink_fn sink, void *ctx);


/**
 * Streams a zip of @fd to @sink, as Argo's zip strategy: one deflated entry named @name
 * (Argo names a single file's entry after its full source path). When @fd is a directory,
 * one entry per file below it, "<name>/<rel>", in walk order, directories themselves not
 * stored and other files as empty entries (Argo's zipDir). Sizes and CRCs follow each entry in
 * a data descriptor, so nothing is read twice; ZIP64 records are used past 4 GiB or 65,535
 * entries. Errors as af_tgz_stream.
 */
int af_zip_stream(int fd, const char *name, int level, af_sink_fn sink, void *ctx);
