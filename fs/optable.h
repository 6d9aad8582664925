/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file optable.h
 * The shape of the option table (options.c), shared by the parser (options.c) and the help
 * and man page writer (help.c). Nothing else reads the table.
 *
 * A row's field (@at) has the C type its kind names: AF_OPT_STR const char *, AF_OPT_FLAG
 * bool, AF_OPT_COUNT int, AF_OPT_UINT unsigned, AF_OPT_SECONDS long, AF_OPT_SIZE uint64_t,
 * AF_OPT_CHOICE int (or const char * with @text).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

enum af_optkind {
        AF_OPT_STR,     /* the value as given */
        AF_OPT_FLAG,    /* no value: true; in the environment 1/true (0/false: unset) */
        AF_OPT_COUNT,   /* no value: adds @step (-v, -q) */
        AF_OPT_UINT,    /* a number from @min to @max */
        AF_OPT_SECONDS, /* seconds from @min to @max, stored times @scale (1000: ms) */
        AF_OPT_SIZE,    /* bytes with K/M/G/T, from @min to @max (0: none); else "is not @bad" */
        AF_OPT_CHOICE,  /* one of @choices: its value, or with @text the name itself */
        AF_OPT_CUSTOM,  /* @parse */
        AF_OPT_HELP,    /* prints the command's help and exits */
        AF_OPT_VERSION, /* prints the version and exits */
};

/** The help's sections, in order. */
enum af_optsection {
        AF_SEC_WHERE,
        AF_SEC_S3,
        AF_SEC_MOUNT,
        AF_SEC_GENERAL,
        AF_SEC_COUNT,
};

struct af_optchoice {
        const char *name;
        int value;
        bool alias; /* accepted, not listed */
};

struct af_optrow {
        const char *name; /* --name */
        char letter;      /* -x, or 0 */
        const char *env;  /* ARTIFUSE_NAME, or NULL: not read from the environment */
        enum af_optkind kind;
        size_t at;        /* offsetof(struct af_opts, the field) */
        const char *arg;  /* the value's name in help ("FILE"); choices list themselves */
        uint64_t min, max;
        long scale;
        int step;
        const struct af_optchoice *choices; /* ends with a NULL name */
        bool text;
        const char *bad;
        /* Returns 0 or, after printing one line, AF_EXIT_CONFIG. */
        int (*parse)(struct af_opts *o, const char *val, const char *source);
        unsigned cmds; /* enum af_cmd bits: where it is documented */
        enum af_optsection section;
        const char *help; /* "\n" where --help breaks the line */
};

extern const struct af_optrow af_optrows[];
extern const size_t af_noptrows;

static inline bool af_optrow_takes_value(const struct af_optrow *r)
{
        return r->kind != AF_OPT_FLAG && r->kind != AF_OPT_COUNT && r->kind != AF_OPT_HELP &&
               r->kind != AF_OPT_VERSION;
}
