/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file router.h
 * The one place that turns a path in the mount into a bucket and key, by Argo's rules (below).
 *
 * Built once at start-up from the repository (bucket + expanded keyFormat), the spec's
 * output artifacts and the directory the spec calls the mount point (--as). Then
 * af_router_route() is a pure lookup, safe from any thread, used by the mount, the upload
 * queue and `artifuse keys` alike, so the dry run shows exactly what the mount will do.
 *
 * Rules (Argo's, argo.md §2.3-2.4), for archive "none":
 *   file artifact      <prefix>/<basename(path)>
 *   directory artifact <prefix>/<basename(path)>/<path inside the directory>
 *   tar (tgz) file     <prefix>/<name>.tgz, a gzip'd tar with one member basename(path)
 *   tar directory      <prefix>/<name>.tgz, members <basename>/..., uploaded when complete
 *   zip                <prefix>/<name>.zip (a file: one entry, its path; a directory:
 *                      <basename>/<rel> per file, uploaded when complete)
 *   artifact s3.key    the key verbatim, not cleaned (a directory: <key>/<path inside>)
 *   full location      endpoint+bucket+key all set: the artifact's own bucket (its endpoint
 *                      must be the repository's); bucket+key without endpoint: Argo keeps
 *                      only the key (the bucket is dropped), and so do we
 *   unmatched file     ignored, or <prefix>/<relative path> with --unmatched upload
 *   other location     an artifact with a full gcs/azure/hdfs/http/artifactory/oss/git/raw/
 *                      plugin location is saved by Argo through that driver: not uploaded
 *                      (a key-only one goes to the repository with its key, as Argo's
 *                      Relocate does)
 * Keys other than a file artifact's s3.key are cleaned like Go's path.Join. No key may
 * exceed 1024 bytes. Argo saves each output artifact on its own (SaveArtifacts,
 * workflow/executor/executor.go:449-482 at v4.1.2): every artifact whose path is the file or
 * holds it claims the file (several may declare the same path, and paths may nest), and the
 * file goes to each one's key. af_router_route() gives the most specific claimant (the
 * longest path; among equals the first in spec order), af_router_route_nth() each of them
 * in that order.
 */
#pragma once

#include <stdbool.h>

#include "base/buf.h"
#include "argo/spec.h"
#include "argo/template.h"

#define AF_KEY_MAX 1024

enum af_unmatched {
        AF_UNMATCHED_AUTO = 0, /* ignore with a spec that declares artifacts, else upload */
        AF_UNMATCHED_IGNORE,
        AF_UNMATCHED_UPLOAD,
};

struct af_router_config {
        const char *bucket;
        const char *key_format; /* e.g. "argo-workflows/{{workflow.name}}/{{pod.name}}" */
        const char *key_format_from; /* where it came from, for messages (NULL: the flag) */
        const char *mount_as;   /* absolute directory the spec's paths are relative to */
        enum af_archive archive_default;
        enum af_unmatched unmatched;
        const char *endpoint; /* the repository's endpoint host[:port], to compare a full
                               * per-artifact location's with; NULL: not known */
        bool strict_paths; /* an artifact outside mount_as is an error (the mount), not
                            * just never matched (the dry run) */
};

struct af_route_artifact {
        char *name;
        char *path; /* as in the spec */
        char *rel;  /* path relative to mount_as ("" = the mount itself), NULL if outside */
        char *base; /* basename of the cleaned path: the object name for archive none */
        char *clean_path; /* the path cleaned, no leading "/" */
        char *key;  /* expanded s3.key, or NULL */
        char *bucket; /* a full per-artifact location's own bucket, or NULL */
        enum af_archive archive;
        int compression_level;
        bool optional;
        /* "gcs", "azure", ...: the artifact has a full location of another kind, which
         * Argo saves through that driver: never uploaded here. NULL: S3. */
        const char *other_location;
};

struct af_router {
        char *bucket;
        char *prefix; /* expanded, cleaned keyFormat */
        char *mount_as;
        struct af_route_artifact *arts;
        size_t narts;
        bool upload_unmatched;
};

/**
 * Builds the router. Fails with -ENOENT (unresolved variable), -EINVAL (bad template, an
 * archive strategy this build cannot produce, a relative mount_as) or -ENAMETOOLONG, with
 * one line in @err naming the variable or artifact and where it was looked for.
 * @spec may be NULL (no artifacts: every file is uploaded under the prefix).
 */
int af_router_init(struct af_router *r, const struct af_router_config *cfg,
                   const struct af_spec *spec, const struct af_vars *vars, struct af_buf *err);
void af_router_done(struct af_router *r);

struct af_route {
        const char *bucket;                      /* borrowed from the router */
        const struct af_route_artifact *artifact; /* NULL for an unmatched upload */
        struct af_buf key;                       /* caller inits and frees */
        enum af_archive archive;                 /* NONE: the file as is; TAR: a .tgz */
        const char *member;                      /* the archive's member name (borrowed) */
        const char *zip_file_member;             /* ZIP of a single file: its member name */
        int compression_level;                   /* TAR: gzip level, -1 default */
        bool deferred; /* a file inside a directory artifact that is archived: the
                        * directory goes up as one archive when it is complete (unmount),
                        * not this file on its own; key is the archive's */
};

/**
 * Routes @relpath (relative to the mount root, no leading "/"). Returns 1 and fills @ret
 * when the file is to be uploaded, 0 when it is not (not an artifact, an unmatched file
 * that is ignored, or an artifact with a non-S3 location: then @ret->artifact names it), -ENAMETOOLONG when the key would pass AF_KEY_MAX. A file inside an
 * archived directory artifact routes to the archive's key with @ret->deferred set.
 */
int af_router_route(const struct af_router *r, const char *relpath, struct af_route *ret);

/**
 * Like af_router_route() for the @n-th artifact that claims @relpath (0: the most specific;
 * see above for the order). -ESRCH (and @ret reset) when there are not that many; an
 * unmatched file has only n = 0.
 */
int af_router_route_nth(const struct af_router *r, const char *relpath, size_t n,
                        struct af_route *ret);

/**
 * The first of those artifacts that uploads @relpath as an object of its own (not as a
 * member of its directory's archive): what the mount hands to the queue when the file is
 * closed. When none does, what af_router_route() says.
 */
int af_router_route_own(const struct af_router *r, const char *relpath, struct af_route *ret);

/** @relpath as artifact @a (one of r->arts) saves it; -ESRCH if @a's path neither is
 * @relpath nor holds it. Otherwise as af_router_route(). */
int af_router_route_artifact(const struct af_router *r, const struct af_route_artifact *a,
                             const char *relpath, struct af_route *ret);
