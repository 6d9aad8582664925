/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file dir.h
 * A directory's entry names, sorted: for walks whose order must not depend on the
 * filesystem (archives, as Go's filepath.Walk orders them; the journal's replay).
 *
 * Not a walker: one directory, names only (no stat), nothing recursive.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/**
 * The names in directory @dirfd ("." and ".." left out) that @keep accepts (NULL: all),
 * sorted bytewise (strcmp). @dirfd is read through a descriptor of its own, so it stays
 * open and its position is untouched.
 *
 * Returns 0 with *ret (free it with af_dir_names_free; NULL when there are none) and *ret_n,
 * else -errno from opening the directory, or -ENOMEM. Outputs are written only on success.
 */
int af_dir_sorted_names(int dirfd, bool (*keep)(const char *name), char ***ret, size_t *ret_n);

/** Frees the @n names and the array af_dir_sorted_names() returned; NULL is a no-op. */
void af_dir_names_free(char **names, size_t n);
