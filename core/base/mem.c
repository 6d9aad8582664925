/* SPDX-License-Identifier: Apache-2.0 */
/* Freeing what a struct owns. See mem.h. */
#include "base/mem.h"

#include <stdlib.h>

void af_free_all(void *const *ptrs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(ptrs[i]);
}
