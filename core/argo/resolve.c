// SPDX-License-Identifier: Apache-2.0
/* Substitution over a template's artifact fields and Argo's path check (see resolve.h). */
#include "argo/resolve.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Variables Argo defines that a spec may name although this run has no value for them. */
static const char *const argo_names[] = {
        "workflow.name",          "workflow.namespace",    "workflow.uid",
        "workflow.serviceAccountName", "workflow.mainEntrypoint", "workflow.priority",
        "workflow.creationTimestamp", "workflow.labels.json", "workflow.annotations.json",
        "workflow.parameters.json", "pod.name",            "node.name",
        "artifact.name",          "artifact.path",
};

void af_spec_where(const struct af_spec *spec, struct af_pos pos, struct af_buf *out)
{
        if (spec && spec->filename && pos.line > 0)
                (void)af_buf_addf(out, "%s:%d:%d: ", spec->filename, pos.line, pos.col);
}

/* Is @a one edit from @b: one byte inserted, deleted, replaced, or two neighbours swapped? */
static bool one_edit(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b), i = 0;

        if (strcmp(a, b) == 0 || (la > lb ? la - lb : lb - la) > 1)
                return false;
        while (i < la && i < lb && a[i] == b[i])
                i++;
        if (la == lb)
                return strcmp(a + i + 1, b + i + 1) == 0 ||
                       (i + 1 < la && a[i] == b[i + 1] && a[i + 1] == b[i] &&
                        strcmp(a + i + 2, b + i + 2) == 0);
        return la > lb ? strcmp(a + i + 1, b + i) == 0 : strcmp(a + i, b + i + 1) == 0;
}

const char *af_vars_suggest(const struct af_vars *vars, const char *name)
{
        for (size_t i = 0; vars && i < vars->n; i++)
                if (one_edit(name, vars->v[i].name))
                        return vars->v[i].name;
        for (size_t i = 0; i < sizeof(argo_names) / sizeof(argo_names[0]); i++)
                if (one_edit(name, argo_names[i]))
                        return argo_names[i];
        return NULL;
}

void af_describe_template_error(struct af_buf *err, const char *where, const char *what,
                                const char *tmpl, const struct af_template_error *te, int r,
                                const struct af_vars *vars)
{
        const char *env = af_vars_env_name(te->var);
        const char *near = r == -ENOENT ? af_vars_suggest(vars, te->var) : NULL;

        if (near)
                (void)af_buf_addf(err, "%s%s: unknown variable '%s': did you mean %s?", where,
                                  what, te->var, near);
        else if (r == -ENOENT)
                (void)af_buf_addf(err,
                                  "%s%s: variable '%s' is not set (looked in: --var, the spec%s%s); "
                                  "set it with --var %s=VALUE",
                                  where, what, te->var, env ? ", $" : "", env ? env : "",
                                  te->var);
        else
                (void)af_buf_addf(err, "%s%s: %s at offset %zu of '%s'", where, what,
                                  te->reason ? te->reason : "bad template", te->offset, tmpl);
}

int af_resolve_field(const struct af_spec *spec, struct af_pos pos, const char *what,
                     const char *tmpl, const struct af_vars *vars, char **ret,
                     struct af_buf *err)
{
        struct af_template_error te = { 0 };
        struct af_buf out, where;
        int r;

        af_buf_init(&out, 0);
        r = af_template_expand(tmpl, vars, &out, &te);
        if (r < 0) {
                af_buf_init(&where, 0);
                af_spec_where(spec, pos, &where);
                af_describe_template_error(err, af_buf_str(&where), what, tmpl, &te, r, vars);
                af_buf_done(&where);
                goto out;
        }
        *ret = af_buf_take(&out);
        r = *ret ? 0 : -ENOMEM;
out:
        af_buf_done(&out);
        return r;
}

/* Go's filepath.Clean for Unix paths, written to @out ("." for an empty result). */
static int go_clean(const char *path, struct af_buf *out)
{
        struct af_buf k;
        int r;

        af_buf_init(&k, 0);
        r = af_key_clean(path, &k); /* path.Join's rules, without the leading "/" */
        if (r == 0) {
                if (path[0] == '/')
                        r = af_buf_addc(out, '/');
                if (r == 0 && k.len)
                        r = af_buf_add(out, k.ptr, k.len);
                else if (r == 0 && path[0] != '/')
                        r = af_buf_addc(out, '.');
        }
        af_buf_done(&k);
        return r;
}

int af_artifact_check_path(const struct af_spec *spec, struct af_pos pos, const char *name,
                           const char *path, struct af_buf *err)
{
        size_t n = strlen(path), safe = 0;
        const char *dd = strstr(path, "/../");
        struct af_buf cleaned;
        bool bad = false;
        int r;

        /* The directory before the first "/../" (or a final "/..") must still hold the
         * cleaned path: Argo's test, byte for byte. */
        if (dd)
                safe = (size_t)(dd - path);
        else if (n >= 3 && strcmp(path + n - 3, "/..") == 0)
                safe = n - 3;
        if (!safe)
                return 0;
        af_buf_init(&cleaned, 0);
        r = go_clean(path, &cleaned);
        if (r == 0)
                bad = cleaned.len <= safe + 1 || strncmp(cleaned.ptr, path, safe) != 0 ||
                      cleaned.ptr[safe] != '/';
        af_buf_done(&cleaned);
        if (r < 0)
                return r;
        if (bad) {
                af_spec_where(spec, pos, err);
                (void)af_buf_addf(err,
                                  "artifact '%s' attempted to use a path containing '..' (%s). "
                                  "Directory traversal is not permitted",
                                  name, path);
                return -EINVAL;
        }
        return 0;
}
