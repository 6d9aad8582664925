/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file yaml_read.h
 * Reading a libyaml document tree, for the argo layer's readers (spec.c, repository.c).
 *
 * Lookups follow YAML merge keys ("<<"), depth-limited and visiting each mapping at most
 * once per lookup, so "<<: [*a, *a, ...]" nested a few levels deep stays linear. Errors are
 * "FILE:LINE:COL: what" lines appended to the context's buffer, returned as -EINVAL.
 * Not thread-safe per context; pure.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "argo/spec.h"
#include "base/buf.h"

/* One document being read. */
struct af_yaml {
        yaml_document_t *doc;
        const char *filename;
        struct af_buf *err;
        /* Merge-key lookups visit each mapping at most once: seen[i] == lookup_id marks node
         * i+1 as visited in the current lookup, so no clearing is needed between lookups.
         * Without it, "<<: [*a, *a, ...]" nested a few levels deep makes lookups exponential. */
        unsigned *seen;
        size_t nseen;
        unsigned lookup_id;
};

/** Appends "FILE:LINE:COL: @what@detail" (where @n is; just "FILE: " without it); -EINVAL. */
int af_yaml_fail(struct af_yaml *c, const yaml_node_t *n, const char *what, const char *detail);
/** The node of index @idx (libyaml's 1-based numbering), or NULL. */
yaml_node_t *af_yaml_node(struct af_yaml *c, int idx);
/** The text of a scalar node, or NULL. */
const char *af_yaml_scalar(const yaml_node_t *n);
/** @key in mapping @map, merge keys included; NULL if @map is not a mapping or lacks it. */
yaml_node_t *af_yaml_get(struct af_yaml *c, const yaml_node_t *map, const char *key);
const char *af_yaml_get_scalar(struct af_yaml *c, const yaml_node_t *map, const char *key);
/** *ret = a copy of the optional scalar @key (NULL when absent); -ENOMEM only. */
int af_yaml_dup(struct af_yaml *c, const yaml_node_t *map, const char *key, char **ret);
/** YAML 1.1 and 1.2 booleans; -EINVAL otherwise. */
int af_yaml_bool(const char *s, bool *ret);
/** After each yaml_parser_load() into c->doc: the merge-key marks sized for it. -ENOMEM. */
int af_yaml_begin_doc(struct af_yaml *c);
/** Where @n starts (1-based), or {0, 0}. */
struct af_pos af_yaml_pos(const yaml_node_t *n);

/** An S3 location mapping (endpoint, bucket, region, key, keyFormat, keyPrefix, insecure). */
int af_s3_location_parse(struct af_yaml *c, const yaml_node_t *n, struct af_s3_location *loc);
