/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file json.h
 * The little JSON artifuse speaks: one member read out of a flat object (what the AWS
 * credential sources answer: container and instance metadata endpoints, credential_process),
 * and one string written the way Go's encoding/json writes it (Argo's .json variables, the
 * status file).
 *
 * Not a JSON library: there is no tree, no writer for objects, and nested values are only
 * skipped. The reader checks the whole document (a malformed one is an error, not a best
 * guess) and is bounded by the length it is given, never by a NUL.
 *
 * Pure; thread-safe.
 */
#pragma once

#include <stddef.h>

#include "base/buf.h"

enum af_json_type {
        AF_JSON_STRING = 1,
        AF_JSON_NUMBER,
        AF_JSON_LITERAL, /* true, false, null */
        AF_JSON_OTHER,   /* object or array: not extracted */
};

/**
 * Finds @key among the top-level members of the JSON object in @json[0..len). A string is
 * unescaped (\" \\ \/ \b \f \n \r \t \uXXXX with surrogate pairs, to UTF-8); a number or
 * literal is copied as written. A repeated member: the last one wins. Returns the value's
 * type (> 0); -ENOENT no such member; -EBADMSG not a well-formed object (nesting deeper than
 * 32 counts as malformed); -E2BIG value longer than @n - 1. @out is written only on success
 * ("" for objects and arrays).
 */
int af_json_get(const char *json, size_t len, const char *key, char *out, size_t n);

/**
 * Appends @s (NUL-terminated) to @out as a JSON string, escaped as Go's encoding/json does:
 * " \ and control characters escaped (\n \r \t \b \f by name, others \u00XX), < > & as
 * \u003c \u003e \u0026 for HTML safety, U+2028 and U+2029 escaped, invalid UTF-8 replaced by
 * \ufffd. Returns 0, or -ENOMEM / -E2BIG from @out, which then holds what it held before.
 */
int af_json_quote(struct af_buf *out, const char *s);
