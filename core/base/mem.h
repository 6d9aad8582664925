/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mem.h
 * Freeing what a struct owns: many pointers in one call.
 *
 * The _done()/_free() of a struct that owns many strings is otherwise a column of free()
 * lines, one per field, that says nothing but "free them all":
 *
 *     AF_FREE_ALL(loc->endpoint, loc->bucket, loc->region, loc->key);
 *
 * The fields keep their values (the caller clears the struct if it is reused).
 */
#pragma once

#include <stddef.h>

/** free()s each of the @n pointers in @ptrs, in order; NULL entries are skipped, as free()
 * does. */
void af_free_all(void *const *ptrs, size_t n);

/** free()s each argument (each evaluated once), in order: af_free_all() over a list. */
#define AF_FREE_ALL(...)                                                                           \
        af_free_all((void *[]){ __VA_ARGS__ }, sizeof((void *[]){ __VA_ARGS__ }) / sizeof(void *))
