// SPDX-License-Identifier: Apache-2.0
/* Hexadecimal digits (see hex.h). */
#include "base/hex.h"

void af_hex(const uint8_t *in, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";
        size_t i;

        for (i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 0xf];
        }
        out[2 * n] = '\0';
}
