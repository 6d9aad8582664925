/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for spec.c: af_spec_parse_opts() and af_repository_parse() on arbitrary
 * bytes (not NUL-terminated), then the variables and the router built from what was parsed.
 *
 * Properties checked on every input, beyond "no crash, no leak, no sanitizer report":
 *   - failure leaves an error message; success returns a spec whose every artifact has a
 *     non-empty name and path, unique names, a known archive strategy, a compression level
 *     in -1..9, at most AF_SPEC_MAX_ARTIFACTS artifacts, and names its template (maybe "");
 *   - parsing is deterministic: the same bytes give the same spec twice;
 *   - a parsed repository has a non-empty bucket and insecure in {-1, 0, 1};
 *   - af_argo_vars_from_spec() fails only with -EINVAL (a value too long) or -ENOMEM;
 *   - a router built from the spec routes each artifact's own path to a key of 1..1024 bytes.
 * Built as a real fuzzer with -Dfuzz=true (clang), and as fuzz_spec_replay (fuzz_main.c) in
 * every build, which replays tests/fuzz/corpus/spec.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argo/argovars.h"
#include "base/buf.h"
#include "argo/router.h"
#include "argo/spec.h"
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

static bool str_eq(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_spec(const struct af_spec *s)
{
        FUZZ_ASSERT(s->nartifacts <= AF_SPEC_MAX_ARTIFACTS);
        FUZZ_ASSERT(s->nartifacts == 0 || s->artifacts);
        /* may be "": a resolved template's "name": null, or entrypoint: "" with a template
         * named "" (found by this fuzzer; harmless, the name is only used in messages) */
        FUZZ_ASSERT(s->template_name);
        for (size_t i = 0; i < s->nartifacts; i++) {
                const struct af_artifact *a = &s->artifacts[i];

                FUZZ_ASSERT(a->name && *a->name);
                FUZZ_ASSERT(a->path && *a->path);
                FUZZ_ASSERT(a->archive >= AF_ARCHIVE_DEFAULT && a->archive <= AF_ARCHIVE_ZIP);
                FUZZ_ASSERT(a->compression_level >= -1 && a->compression_level <= 9);
                FUZZ_ASSERT(a->line >= 1);
                for (size_t j = 0; j < i; j++)
                        FUZZ_ASSERT(strcmp(s->artifacts[j].name, a->name) != 0);
        }
        for (size_t i = 0; i < s->nparams; i++)
                FUZZ_ASSERT(s->params[i].name);
        for (size_t i = 0; i < s->ninputs; i++)
                FUZZ_ASSERT(s->inputs[i].name);
        for (size_t i = 0; i < s->nlabels; i++)
                FUZZ_ASSERT(s->labels[i].key && s->labels[i].value);
        for (size_t i = 0; i < s->nannotations; i++)
                FUZZ_ASSERT(s->annotations[i].key && s->annotations[i].value);
        FUZZ_ASSERT(s->archive_location.insecure >= -1 && s->archive_location.insecure <= 1);
        FUZZ_ASSERT(!s->has_archive_location || s->is_resolved_template);
}

static bool same_spec(const struct af_spec *a, const struct af_spec *b)
{
        if (!str_eq(a->kind, b->kind) || !str_eq(a->name, b->name) ||
            !str_eq(a->namespace, b->namespace) || !str_eq(a->entrypoint, b->entrypoint) ||
            !str_eq(a->template_name, b->template_name) || a->nartifacts != b->nartifacts ||
            a->nparams != b->nparams || a->ninputs != b->ninputs || a->nlabels != b->nlabels ||
            a->nannotations != b->nannotations ||
            a->is_resolved_template != b->is_resolved_template ||
            !str_eq(a->archive_location.key, b->archive_location.key) ||
            !str_eq(a->archive_location.bucket, b->archive_location.bucket))
                return false;
        for (size_t i = 0; i < a->nartifacts; i++) {
                const struct af_artifact *x = &a->artifacts[i], *y = &b->artifacts[i];

                if (!str_eq(x->name, y->name) || !str_eq(x->path, y->path) ||
                    !str_eq(x->s3_key, y->s3_key) || x->archive != y->archive ||
                    x->optional != y->optional || x->compression_level != y->compression_level)
                        return false;
        }
        for (size_t i = 0; i < a->nparams; i++)
                if (!str_eq(a->params[i].name, b->params[i].name) ||
                    !str_eq(a->params[i].value, b->params[i].value))
                        return false;
        for (size_t i = 0; i < a->nlabels; i++)
                if (!str_eq(a->labels[i].key, b->labels[i].key) ||
                    !str_eq(a->labels[i].value, b->labels[i].value))
                        return false;
        return true;
}

/* Variables and a router from the spec: must not crash, and keys stay within bounds. */
static void route_spec(const struct af_spec *s)
{
        struct af_router_config rc = { .bucket = "b",
                                       .key_format = "{{workflow.name}}/{{pod.name}}",
                                       .mount_as = "/" };
        struct af_route route = { 0 };
        struct af_router router;
        struct af_vars vars;
        struct af_buf err;
        int r;

        af_vars_init(&vars);
        af_buf_init(&err, 4096);
        af_buf_init(&route.key, 0);
        (void)af_vars_set(&vars, "workflow.name", "wf", "fuzz", false);
        (void)af_vars_set(&vars, "pod.name", "pod", "fuzz", false);
        r = af_argo_vars_from_spec(&vars, s);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENOMEM);
        (void)af_argo_vars_from_time(&vars, 1795838400, 0, "fuzz");
        r = af_router_init(&router, &rc, s, &vars, &err);
        if (r < 0) {
                FUZZ_ASSERT(err.len > 0);
        } else {
                for (size_t i = 0; i < router.narts; i++) {
                        const struct af_route_artifact *a = &router.arts[i];

                        if (!a->rel)
                                continue;
                        r = af_router_route(&router, a->rel, &route);
                        FUZZ_ASSERT(r == 1 || r == -ENAMETOOLONG);
                        if (r == 1) {
                                FUZZ_ASSERT(route.key.len >= 1 && route.key.len <= AF_KEY_MAX);
                                FUZZ_ASSERT(route.artifact != NULL);
                        }
                }
                af_router_done(&router);
        }
        af_buf_done(&route.key);
        af_buf_done(&err);
        af_vars_done(&vars);
}

static void parse_one(const uint8_t *data, size_t size, const struct af_spec_options *o)
{
        struct af_spec s, again;
        struct af_buf err;
        int r, r2;

        af_buf_init(&err, 0);
        r = af_spec_parse_opts((const char *)data, size, "fuzz.yaml", o, &s, &err);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
        if (r < 0) {
                FUZZ_ASSERT(r == -ENOMEM || err.len > 0);
                af_buf_reset(&err);
                r2 = af_spec_parse_opts((const char *)data, size, "fuzz.yaml", o, &again, &err);
                FUZZ_ASSERT(r2 == r);
                af_buf_done(&err);
                return;
        }
        check_spec(&s);
        r2 = af_spec_parse_opts((const char *)data, size, "fuzz.yaml", o, &again, &err);
        FUZZ_ASSERT(r2 == 0);
        FUZZ_ASSERT(same_spec(&s, &again));
        af_spec_done(&again);
        route_spec(&s);
        af_spec_done(&s);
        af_buf_done(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct af_spec_options first = { NULL, NULL };
        static const struct af_spec_options main_tmpl = { "main", NULL };
        struct af_s3_location loc;
        struct af_buf err;
        int r;

        parse_one(data, size, &first);
        parse_one(data, size, &main_tmpl);
        parse_one(data, size, NULL);

        af_buf_init(&err, 0);
        r = af_repository_parse((const char *)data, size, "fuzz-repo.yaml", &loc, &err);
        FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
        if (r == 0) {
                FUZZ_ASSERT(loc.bucket && *loc.bucket);
                FUZZ_ASSERT(loc.insecure >= -1 && loc.insecure <= 1);
                af_s3_location_done(&loc);
        } else {
                FUZZ_ASSERT(r == -ENOMEM || err.len > 0);
        }
        af_buf_done(&err);
        return 0;
}
