/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file template.h
 * Variables and the "{{name}}" expander used for keyFormat, s3.key and the repository.
 *
 * A variable table maps names ("workflow.name") to values and remembers where each value
 * came from ("--var", "spec", "env ARGO_POD_NAME"), so errors and `artifuse keys` can say so.
 *
 * Expansion follows Argo's template rules: tags are "{{" ... "}}", whitespace inside the
 * braces is ignored ("{{ pod.name }}"), text outside tags is copied as is. An unknown name is
 * an error naming the variable; so is an unterminated "{{" and an expression tag "{{=...}}",
 * which artifuse does not evaluate. Pure: no I/O, thread-safe on distinct outputs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define AF_VAR_NAME_MAX 256
#define AF_VAR_VALUE_MAX ((size_t)1 << 20) /* kubectl annotations can be large */
#define AF_TEMPLATE_MAX 4096 /* longest template and longest expansion */

struct af_var {
        char *name;
        char *value;
        char *source; /* where the value came from, for messages */
};

struct af_vars {
        struct af_var *v;
        size_t n;
        size_t alloc;
};

void af_vars_init(struct af_vars *vars);
void af_vars_done(struct af_vars *vars);

/**
 * Sets @name to @value. With @replace false an existing value is kept (so sources can be
 * applied from the highest priority down). -EINVAL for an empty name, or an over-long name or value (an empty value is fine).
 */
int af_vars_set(struct af_vars *vars, const char *name, const char *value, const char *source,
                bool replace);
/**
 * Sets every variable the Argo pod environment provides (ARGO_WORKFLOW_NAME -> workflow.name,
 * ARGO_POD_NAME -> pod.name, ARGO_WORKFLOW_UID -> workflow.uid) that is not set yet.
 */
int af_vars_from_env(struct af_vars *vars);
/** The environment variable that provides @name, or NULL. */
const char *af_vars_env_name(const char *name);

/** Parses "NAME=VALUE" (from --var) and sets it with replace. -EINVAL without '='. */
int af_vars_set_assignment(struct af_vars *vars, const char *assignment, const char *source);
const struct af_var *af_vars_get(const struct af_vars *vars, const char *name);

struct af_template_error {
        char var[AF_VAR_NAME_MAX]; /* the unresolved name, when there is one */
        size_t offset;             /* byte offset of the offending tag in the template */
        const char *reason;        /* static text: "unknown variable", "unterminated {{", ... */
};

/**
 * Expands @tmpl into @out (appended). On error returns -ENOENT (unknown variable),
 * -EINVAL (syntax) or -E2BIG (too long, or @out's cap reached), fills @err (which is
 * cleared first, so it may be reused), and leaves @out unchanged.
 */
int af_template_expand(const char *tmpl, const struct af_vars *vars, struct af_buf *out,
                       struct af_template_error *err);

/**
 * Cleans a key as Go's path.Join does (collapse "//", resolve "." and "..", no trailing
 * "/"), then drops leading "/" because S3 keys have none. "" and "." become "".
 */
int af_key_clean(const char *key, struct af_buf *out);
