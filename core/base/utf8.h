/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file utf8.h
 * UTF-8, both ways, once: how long the sequence at a pointer is (for encoders that must not
 * pass invalid text through, as Go's encoding/json does not), and one code point written out
 * (for decoders of \uXXXX and &#N; references).
 *
 * Pure; thread-safe.
 */
#pragma once

#include <stddef.h>

/**
 * The length (1-4) of the valid UTF-8 sequence at @p, or 0 when it is not one (a stray
 * continuation byte, an overlong form, a UTF-16 surrogate, past U+10FFFF). @p is
 * NUL-terminated: a sequence cut short by the NUL is invalid, and nothing past it is read.
 */
size_t af_utf8_len(const unsigned char *p);

/**
 * Writes code point @cp (at most U+10FFFF; surrogates are the caller's business) as UTF-8 to
 * out[*o..n), advancing *o by the sequence's length even past @n, so a first pass with
 * @out NULL measures. Bytes past @n are dropped.
 */
void af_utf8_put(unsigned cp, char *out, size_t n, size_t *o);
