/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file hex.h
 * Hexadecimal digits, both ways, once.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/** Writes 2*n lower-case hex digits of in[0..n) and a NUL to out (2*n+1 bytes). */
void af_hex(const uint8_t *in, size_t n, char *out);

/** The value of one hex digit (either case), or -1. */
static inline int af_unhex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}
