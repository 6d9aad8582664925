/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file xml.h
 * The little XML artifuse reads and writes: the text of one element of an answer from S3 or
 * STS, and a string escaped for a request body (PutObjectTagging).
 *
 * Not an XML parser: no tree, no namespaces (an xmlns attribute is allowed and ignored), no
 * CDATA, no comments. An element is found by name: the first start tag "<Name" followed by
 * '>', '/' or whitespace, then the first "</Name>" after it (so an element must not contain
 * another of the same name, which S3 and STS answers never do). A path "A/B/C" looks for C
 * inside B inside A, each the first such element anywhere within its parent. Everything is
 * bounded by the length given, never by a NUL.
 *
 * Two readers over the same finder:
 *   af_xml_get   strict, for credentials: surrounding whitespace trimmed, the five named
 *                entities and &#N; / &#xN; decoded, anything else after '&' an error, a
 *                value that does not fit an error.
 *   af_xml_copy  forgiving, for S3 answers read into fixed fields (error codes and messages,
 *                ETags, upload ids): "" when absent or malformed, the text as written (no
 *                trimming), references it cannot decode kept as written, cut to fit.
 *
 * Pure; thread-safe.
 */
#pragma once

#include <stddef.h>

#include "base/buf.h"

/**
 * The content [*ret_a, *ret_b) of the element at @path in @xml[0..len): between its start
 * and end tags, raw (entities not decoded). Returns 0; -ENOENT no such element; -EBADMSG a
 * start tag not closed or an element with no end tag; -EINVAL an empty path segment.
 */
int af_xml_find(const char *xml, size_t len, const char *path, const char **ret_a,
                const char **ret_b);

/**
 * The strict reader (above). Returns 0; -ENOENT no such element; -EBADMSG an element not
 * closed or a bad reference; -E2BIG longer than @n - 1. @out is written only on success.
 */
int af_xml_get(const char *xml, size_t len, const char *path, char *out, size_t n);

/** The forgiving reader (above): always writes @out (@n > 0), "" when there is nothing. */
void af_xml_copy(const char *xml, size_t len, const char *path, char *out, size_t n);

/**
 * Appends @s (NUL-terminated) with the five XML special characters (< > & " ') written as
 * entities. Returns 0, or -ENOMEM / -E2BIG from @out.
 */
int af_xml_escape(struct af_buf *out, const char *s);
