/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for template.c: af_template_expand() and af_key_clean().
 *
 * Input: the first line is the template; each further line (at most 16) is a NAME=VALUE
 * variable assignment (as --var takes them). Properties:
 *   - expansion is deterministic, and on failure leaves the output buffer as it was;
 *   - on success the output is at most AF_TEMPLATE_MAX bytes, and holds no "{{" unless some
 *     variable value contains a "{" (a tag never survives expansion; literal text next to a
 *     value may only form "{{" with a brace from that value);
 *   - af_key_clean() of the output (and of the raw template) has no "//", no leading or
 *     trailing "/", no "." segment, ".." only as leading segments, is no longer than its
 *     input, and cleaning it again changes nothing.
 * Built as a real fuzzer with -Dfuzz=true (clang), and as fuzz_template_replay in every
 * build, which replays tests/fuzz/corpus/template.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "argo/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                       \
        do {                                                                                    \
                if (!(cond)) {                                                                  \
                        fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__,  \
                                #cond);                                                         \
                        abort();                                                                \
                }                                                                               \
        } while (0)

#define MAX_VARS 16

static void check_clean(const char *in)
{
        struct af_buf once, twice;
        const char *k;
        int r;

        af_buf_init(&once, 0);
        af_buf_init(&twice, 0);
        r = af_key_clean(in, &once);
        FUZZ_ASSERT(r == 0 || r == -ENOMEM);
        if (r == 0) {
                k = af_buf_str(&once);
                FUZZ_ASSERT(strstr(k, "//") == NULL);
                FUZZ_ASSERT(k[0] != '/');
                FUZZ_ASSERT(once.len == 0 || k[once.len - 1] != '/');
                FUZZ_ASSERT(once.len <= strlen(in) + 1);
                /* segments: never ".", and ".." only before every other segment */
                {
                        bool seen_name = false;
                        const char *p = k;

                        while (*p) {
                                size_t n = strcspn(p, "/");

                                FUZZ_ASSERT(n > 0);
                                FUZZ_ASSERT(!(n == 1 && p[0] == '.'));
                                if (n == 2 && p[0] == '.' && p[1] == '.')
                                        FUZZ_ASSERT(!seen_name);
                                else
                                        seen_name = true;
                                p += n;
                                if (*p == '/')
                                        p++;
                        }
                }
                FUZZ_ASSERT(af_key_clean(k, &twice) == 0);
                FUZZ_ASSERT(strcmp(af_buf_str(&twice), k) == 0);
        }
        af_buf_done(&once);
        af_buf_done(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = malloc(size + 1), *tmpl, *line, *nl;
        struct af_template_error err, err2;
        struct af_buf out, out2;
        struct af_vars vars;
        bool brace_in_value = false;
        int r, r2, nvars = 0;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0'; /* the API takes C strings: a NUL ends the input early */
        af_vars_init(&vars);
        tmpl = text;
        nl = strchr(text, '\n');
        line = nl ? nl + 1 : NULL;
        if (nl)
                *nl = '\0';
        while (line && nvars < MAX_VARS) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (af_vars_set_assignment(&vars, line, "fuzz") == 0)
                        nvars++;
                line = nl ? nl + 1 : NULL;
        }
        for (size_t i = 0; i < vars.n; i++)
                if (strchr(vars.v[i].value, '{'))
                        brace_in_value = true;

        af_buf_init(&out, 0);
        af_buf_init(&out2, 0);
        FUZZ_ASSERT(af_buf_adds(&out, "keep") == 0);
        r = af_template_expand(tmpl, &vars, &out, &err);
        FUZZ_ASSERT(r == 0 || r == -ENOENT || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
        r2 = af_template_expand(tmpl, &vars, &out2, &err2);
        FUZZ_ASSERT(r2 == r);
        if (r < 0) {
                FUZZ_ASSERT(out.len == 4 && memcmp(out.ptr, "keep", 4) == 0);
                FUZZ_ASSERT(out2.len == 0);
                FUZZ_ASSERT(err.reason != NULL);
                FUZZ_ASSERT(strcmp(err.var, err2.var) == 0 && err.offset == err2.offset);
                FUZZ_ASSERT(err.offset <= strlen(tmpl));
                FUZZ_ASSERT(strlen(err.var) < sizeof(err.var));
                if (r == -ENOENT)
                        FUZZ_ASSERT(af_vars_get(&vars, err.var) == NULL);
        } else {
                const char *o = af_buf_str(&out2);

                FUZZ_ASSERT(out.len == 4 + out2.len && memcmp(out.ptr + 4, o, out2.len) == 0);
                FUZZ_ASSERT(out2.len <= AF_TEMPLATE_MAX);
                FUZZ_ASSERT(brace_in_value || strstr(o, "{{") == NULL);
                check_clean(o);
        }
        check_clean(tmpl);
        af_buf_done(&out);
        af_buf_done(&out2);
        af_vars_done(&vars);
        free(text);
        return 0;
}
