/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file resolve.h
 * What Argo's controller and executor do to a template's artifact fields before they are
 * used, done the same way, with messages that point into the spec.
 *
 * - Substitution: the controller replaces "{{...}}" over the whole template before the pod
 *   exists (global variables, workflow.parameters.*, inputs.parameters.* with their
 *   defaults; workflow/common/util.go, SubstituteParams), so an artifact's name, path,
 *   s3.key and tar compressionLevel may hold variables. A variable that cannot be resolved
 *   is an error naming it and where it was looked for, or the known name one edit away
 *   ("did you mean workflow.name?"); never a literal "{{" in a key.
 * - The path check: the executor's Artifact.CleanPath
 *   (pkg/apis/workflow/v1alpha1/workflow_types.go) rejects a path whose ".." leaves the
 *   directory before it ("Directory traversal is not permitted").
 *
 * Errors start with "FILE:LINE:COL: " when the spec says where the field was written. Pure.
 */
#pragma once

#include "base/buf.h"
#include "argo/spec.h"
#include "argo/template.h"

/** Appends "FILE:LINE:COL: " for @pos in @spec's file, or nothing when it is not known. */
void af_spec_where(const struct af_spec *spec, struct af_pos pos, struct af_buf *out);

/**
 * Describes a failed af_template_expand (@r, @te) of @tmpl for the field @what, after
 * @where (may be ""): an unset variable names the sources looked in and how to set it, or
 * the known variable one edit away; a syntax error gives its offset.
 */
void af_describe_template_error(struct af_buf *err, const char *where, const char *what,
                                const char *tmpl, const struct af_template_error *te, int r,
                                const struct af_vars *vars);

/** The known variable (in @vars, or one Argo defines) one edit away from @name, or NULL. */
const char *af_vars_suggest(const struct af_vars *vars, const char *name);

/**
 * Expands @tmpl, the field @what of the spec written at @pos, into a new string in *ret.
 * -ENOENT (unset variable), -EINVAL (syntax), -E2BIG, with one line in @err.
 */
int af_resolve_field(const struct af_spec *spec, struct af_pos pos, const char *what,
                     const char *tmpl, const struct af_vars *vars, char **ret,
                     struct af_buf *err);

/**
 * Argo's Artifact.CleanPath for the artifact @name's @path (written at @pos): -EINVAL with
 * "... Directory traversal is not permitted" in @err when a ".." leaves the directory it
 * follows; 0 otherwise.
 */
int af_artifact_check_path(const struct af_spec *spec, struct af_pos pos, const char *name,
                           const char *path, struct af_buf *err);
