/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file uris.h
 * Outputs as parameters: where each declared artifact went in S3, written to files that an
 * Argo output parameter (valueFrom.path) or any later step can read.
 *
 * - --uris-dir DIR: DIR/<artifact name> holds the artifact's "s3://bucket/key", exactly that
 *   (no newline: any reader gets the value as is; Argo would trim one anyway).
 * - --uris-json FILE: one JSON object, artifact name -> {"uri", "size", "etag"}, members in
 *   the spec's order, only the artifacts uploaded so far.
 *
 * The URI: a file artifact's object (its archive's, .tgz or .zip, when archived); a directory
 * artifact uploaded file by file (archive none): the directory's prefix,
 * "s3://bucket/<prefix>/<dirname>" (or its s3.key), written when its first file is up. "size"
 * is the object's size in bytes, "etag" its ETag as S3 gave it (quotes included); both are
 * null for a directory uploaded file by file (many objects), and "size" is null for an
 * archive (its size is not counted as it streams).
 *
 * Files that belong to no artifact (--unmatched upload, or no spec) have no name a workflow
 * could refer to: they are in neither file (--manifest lists every object).
 *
 * Written when the upload of the artifact completes (af_uris_on_uploaded, called by the
 * queue's on_uploaded hook), only when something changed, each file atomically: a temporary
 * ".<name>.tmp" in the same directory, renamed over the file, so a reader sees the old value
 * or the new, never part of one. Not fsynced: the files are read while the machine is up (a
 * later step of the same pod or workflow); after a crash the journal re-uploads and the files
 * are written again. Never removed: an object deleted later (--delete-on-unlink) keeps its
 * line.
 *
 * Threads: af_uris_on_uploaded may be called from any thread (one internal lock); the files
 * are written under it, so the last upload to finish is the last value written.
 */
#pragma once

#include "argo/router.h"
#include "upload/queue.h"

struct af_uris;

struct af_uris_config {
        int dir_fd; /* --uris-dir, opened O_DIRECTORY; < 0: none. Taken (closed by _free). */
        int json_dirfd; /* the directory of --uris-json; < 0: none. Taken. */
        const char *json_name; /* the file's name in it (copied) */
        const struct af_router *router; /* borrowed: artifact names and directory keys */
};

/**
 * Ready to write. Artifacts whose names cannot be a file name (empty, ".", "..", a "/": Argo
 * allows none of these) are logged once and left out of --uris-dir. -ENOMEM (the fds are
 * closed then too).
 */
int af_uris_new(const struct af_uris_config *cfg, struct af_uris **ret);
/** Closes the directories and frees. NULL is a no-op. */
void af_uris_free(struct af_uris *w);

/** The queue's on_uploaded: writes what changed for @u's artifact (failures are logged). */
void af_uris_on_uploaded(struct af_uris *w, const struct af_queue_uploaded *u);
