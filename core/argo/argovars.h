/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file argovars.h
 * The variables Argo lets a keyFormat use (argo.md §2.2), computed as Argo computes them.
 *
 * From a parsed spec: workflow.name, .namespace, .uid, .serviceAccountName, .mainEntrypoint,
 * .labels.K and .labels.json, .annotations.K and .annotations.json, .parameters.N and
 * .parameters.json, and the template's inputs.parameters.N defaults. From a time:
 * workflow.creationTimestamp (RFC 3339), .RFC3339, .s (Unix seconds) and one variable per
 * strftime letter of Argo's util/strftime (Y y m B b d A a H I M S p Z z L), formatted as Go's
 * time.Format does. JSON values are encoded as Go's encoding/json does (sorted map keys,
 * compact, <>& escaped).
 *
 * Values are added without replacing existing ones, so callers apply sources from the
 * highest priority down (--var first). Pure: no I/O.
 */
#pragma once

#include <time.h>

#include "base/buf.h"
#include "base/json.h" /* af_json_quote, which callers used to find here */
#include "argo/spec.h"
#include "argo/template.h"

/** Adds the spec's variables (@spec may be NULL). -ENOMEM or -EINVAL (a value too long). */
int af_argo_vars_from_spec(struct af_vars *vars, const struct af_spec *spec);

/**
 * Adds workflow.creationTimestamp and its derived variables for @t shown at UTC offset
 * @utc_offset_s (0 for "Z"). @source says where the time came from.
 */
int af_argo_vars_from_time(struct af_vars *vars, time_t t, int utc_offset_s, const char *source);
