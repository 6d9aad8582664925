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

#include "buf.h"

#define AF_SPEC_MAX ((size_t)16 << 20)
#define AF_SPEC_MAX_ARTIFACTS 4096

enum af_archive {
        AF_ARCHIVE_DEFAULT = 0, /* no archive: field; --archive-default decides */
        AF_ARCHIVE_NONE,
        AF_ARCHIVE_TAR,
        AF_ARCHIVE_ZIP,
};

struct af_artifact {
        char *name;
        char *path;   /* as written in the spec, normally absolute */
        char *s3_key; /* outputs.artifacts[].s3.key, or NULL */
        enum af_archive archive;
        int compression_level; /* tar only; -1 when not given */
        bool optional;
        int line; /* where it was declared, for messages */
};

struct af_param {
        char *name;
        char *value; /* NULL when the spec gives no default */
};

struct af_spec {
        char *kind;          /* "Workflow", ... */
        char *name;          /* metadata.name, or NULL */
        char *generate_name; /* metadata.generateName, or NULL */
        char *namespace;     /* metadata.namespace, or NULL */
        char *entrypoint;    /* spec.entrypoint, or NULL */
        char *template_name; /* the template the artifacts came from */
        struct af_artifact *artifacts;
        size_t nartifacts;
        struct af_param *params; /* spec.arguments.parameters */
        size_t nparams;
};

/**
 * Parses @data (@len bytes; need not be NUL-terminated). @filename is only used in error
 * messages. @template_name may be NULL (use the entrypoint). On success fills @ret, which
 * the caller releases with af_spec_done(); on failure @ret is untouched and @err (appended)
 * says why.
 */
int af_spec_parse(const char *data, size_t len, const char *filename, const char *template_name,
                  struct af_spec *ret, struct af_buf *err);
void af_spec_done(struct af_spec *spec);

const char *af_archive_name(enum af_archive a);
