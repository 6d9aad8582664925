/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file spec.h
 * Reads an Argo workflow spec (YAML or JSON, via libyaml) into plain structs.
 *
 * Bytes in, struct out, no I/O. Accepted documents: Workflow, WorkflowTemplate,
 * ClusterWorkflowTemplate (spec.templates), CronWorkflow (spec.workflowSpec.templates). In a
 * stream of several documents the first of these kinds is used. Anchors, aliases, flow and
 * block styles and comments are libyaml's and just work.
 *
 * The chosen template is @template_name, else spec.entrypoint. Its outputs.artifacts become
 * struct af_artifact entries. The workflow's metadata.name, namespace and the
 * spec.arguments.parameters defaults are returned too, for the variable table.
 *
 * Errors: -EINVAL with @err holding "FILE:LINE:COL: what is wrong" (1-based), -E2BIG when
 * the input is larger than AF_SPEC_MAX, -ENOMEM.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define AF_SPEC_MAX ((size_t)16 << 20)
#define AF_SPEC_MAX_ARTIFACTS 4096

enum af_archive {
        AF_ARCHIVE_DEFAULT = 0, /* no archive: field; --archive-default decides */
        AF_ARCHIVE_NONE,
        AF_ARCHIVE_TAR,
        AF_ARCHIVE_ZIP,
};

/* Where a value was written in the spec (1-based), for messages; 0 when not known. */
struct af_pos {
        int line, col;
};

struct af_artifact {
        char *name;
        char *path;   /* as written in the spec, normally absolute */
        char *s3_key; /* outputs.artifacts[].s3.key (or a non-S3 location's key-only
                       * key, which Argo moves to the repository), or NULL */
        char *s3_bucket;   /* outputs.artifacts[].s3.bucket, or NULL */
        char *s3_endpoint; /* outputs.artifacts[].s3.endpoint, or NULL */
        /* The artifact has a full location of another kind ("gcs", "azure", "hdfs",
         * "http", "artifactory", "oss", "git", "raw", "plugin"): Argo saves it through that
         * driver, never to the S3 repository, so artifuse does not upload it. NULL: S3. */
        const char *other_location;
        enum af_archive archive;
        int compression_level; /* tar only; -1 when not given */
        /* archive.tar.compressionLevel when it is a "{{...}}" template, resolved later. */
        char *compression_text;
        bool optional;
        int line; /* where it was declared, for messages */
        struct af_pos pos, name_pos, path_pos, key_pos;
};

struct af_param {
        char *name;
        char *value;       /* value, else default; NULL when the spec gives neither */
        char *def;         /* default, as written; NULL if not */
        char *given_value; /* value, as written; NULL if not */
        char *global_name;
        char *description;
        char **enums;
        size_t nenums;
};

struct af_kv {
        char *key;
        char *value;
};

/** An S3 location as Argo writes it (archiveLocation.s3, or a repository's s3:). */
struct af_s3_location {
        char *endpoint; /* host[:port], no scheme, as Argo has it; NULL if not given */
        char *bucket;
        char *region;
        char *key;        /* archiveLocation: the resolved key prefix */
        char *key_format; /* repository: keyFormat */
        char *key_prefix; /* repository: keyPrefix (deprecated) */
        int insecure;     /* -1 not given, 0 false (TLS), 1 true (plain HTTP) */
};

/** Frees what @loc holds and leaves it empty (insecure -1, "not given"); reusable after. */
void af_s3_location_done(struct af_s3_location *loc);

struct af_spec {
        char *filename;      /* as given to the parser, for messages */
        char *kind;          /* "Workflow", ...; NULL for a resolved template */
        char *name;          /* metadata.name, or NULL */
        char *generate_name; /* metadata.generateName, or NULL */
        char *namespace;     /* metadata.namespace, or NULL */
        char *entrypoint;    /* spec.entrypoint, or NULL */
        char *template_name; /* the template the artifacts came from */
        struct af_artifact *artifacts;
        size_t nartifacts;
        struct af_param *params; /* spec.arguments.parameters */
        size_t nparams;
        struct af_param *inputs; /* the template's inputs.parameters (value = default) */
        size_t ninputs;
        struct af_kv *labels; /* metadata.labels, in document order */
        size_t nlabels;
        struct af_kv *annotations;
        size_t nannotations;
        char *uid;             /* metadata.uid, or NULL */
        char *priority;        /* spec.priority, or NULL */
        char *service_account; /* spec.serviceAccountName, or NULL */
        /* spec.artifactRepositoryRef: which ConfigMap and key hold the repository (NULL: not
         * given; Argo then takes "artifact-repositories" and its default annotation). */
        char *repo_ref_configmap;
        char *repo_ref_key;
        /* A resolved template (Argo's /var/run/argo/template) names where its outputs go;
         * so does a workflow template with a full archiveLocation.s3 (endpoint, bucket and
         * key: Argo's HasLocation), which replaces the repository for its pod. */
        bool is_resolved_template;
        bool has_archive_location;
        struct af_s3_location archive_location;
};

struct af_spec_options {
        const char *template_name; /* NULL: the entrypoint */
        const char *workflow;      /* NULL: the first workflow document; else by metadata.name
                                    * or generateName */
};

/**
 * Parses @data (@len bytes; need not be NUL-terminated). @filename is only used in error
 * messages. @template_name may be NULL (use the entrypoint). On success fills @ret, which
 * the caller releases with af_spec_done(); on failure @ret is untouched and @err (appended)
 * says why.
 */
int af_spec_parse(const char *data, size_t len, const char *filename, const char *template_name,
                  struct af_spec *ret, struct af_buf *err);
/** Like af_spec_parse, with more choices. Also accepts a resolved template (JSON or YAML):
 * a mapping with no kind whose name and outputs/container/script describe one template. */
int af_spec_parse_opts(const char *data, size_t len, const char *filename,
                       const struct af_spec_options *opts, struct af_spec *ret,
                       struct af_buf *err);
void af_spec_done(struct af_spec *spec);

/**
 * Reads an Argo artifact repository (the YAML of an `artifact-repositories` ConfigMap value:
 * `s3: {bucket, endpoint, region, insecure, keyFormat, keyPrefix}`, or such a ConfigMap
 * itself, whose default-repository key or only key is used). Errors as af_spec_parse.
 */
int af_repository_parse(const char *data, size_t len, const char *filename,
                        struct af_s3_location *ret, struct af_buf *err);

/** A workflow's spec.artifactRepositoryRef; NULL fields take Argo's defaults. */
struct af_repository_ref {
        const char *configmap; /* metadata.name of the ConfigMap to use */
        const char *key;       /* its data key; wins over the default-repository annotation */
};

/**
 * Like af_repository_parse, choosing as Argo's controller does
 * (workflow/artifactrepositories/artifactrepositories.go, Get): the key is @ref->key if given,
 * else the ConfigMap's workflows.argoproj.io/default-artifact-repository annotation. @data may
 * hold several YAML documents (a deploy file with a ServiceAccount, the ConfigMap and the
 * Workflow): the first ConfigMap (named @ref->configmap, if given) or bare repository
 * document is used, other kinds are skipped. @ref may be NULL.
 */
int af_repository_parse_ref(const char *data, size_t len, const char *filename,
                            const struct af_repository_ref *ref, struct af_s3_location *ret,
                            struct af_buf *err);

const char *af_archive_name(enum af_archive a);
