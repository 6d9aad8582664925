/* SPDX-License-Identifier: Apache-2.0 */
/* The variable table, the {{...}} expander and key cleaning. See template.h. */
#include "argo/template.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void af_vars_init(struct af_vars *vars)
{
        vars->v = NULL;
        vars->n = 0;
        vars->alloc = 0;
}

void af_vars_done(struct af_vars *vars)
{
        for (size_t i = 0; i < vars->n; i++) {
                free(vars->v[i].name);
                free(vars->v[i].value);
                free(vars->v[i].source);
        }
        free(vars->v);
        af_vars_init(vars);
}

const struct af_var *af_vars_get(const struct af_vars *vars, const char *name)
{
        for (size_t i = 0; i < vars->n; i++)
                if (strcmp(vars->v[i].name, name) == 0)
                        return &vars->v[i];
        return NULL;
}

int af_vars_set(struct af_vars *vars, const char *name, const char *value, const char *source,
                bool replace)
{
        struct af_var *v = (struct af_var *)af_vars_get(vars, name);
        char *nv, *ns;

        if (!*name || strlen(name) >= AF_VAR_NAME_MAX || strlen(value) >= AF_VAR_VALUE_MAX)
                return -EINVAL;
        if (v && !replace)
                return 0;
        nv = strdup(value);
        ns = strdup(source ? source : "");
        if (!nv || !ns) {
                free(nv);
                free(ns);
                return -ENOMEM;
        }
        if (!v) {
                if (vars->n == vars->alloc) {
                        size_t a = vars->alloc ? vars->alloc * 2 : 16;
                        struct af_var *p = realloc(vars->v, a * sizeof(*p));

                        if (!p) {
                                free(nv);
                                free(ns);
                                return -ENOMEM;
                        }
                        vars->v = p;
                        vars->alloc = a;
                }
                v = &vars->v[vars->n];
                v->name = strdup(name);
                if (!v->name) {
                        free(nv);
                        free(ns);
                        return -ENOMEM;
                }
                vars->n++;
        } else {
                free(v->value);
                free(v->source);
        }
        v->value = nv;
        v->source = ns;
        return 0;
}

int af_vars_set_assignment(struct af_vars *vars, const char *assignment, const char *source)
{
        const char *eq = strchr(assignment, '=');
        char name[AF_VAR_NAME_MAX];
        size_t n;

        if (!eq || eq == assignment)
                return -EINVAL;
        n = (size_t)(eq - assignment);
        if (n >= sizeof(name))
                return -EINVAL;
        memcpy(name, assignment, n);
        name[n] = '\0';
        return af_vars_set(vars, name, eq + 1, source, true);
}

static const struct {
        const char *var;
        const char *env;
} env_vars[] = {
        { "workflow.name", "ARGO_WORKFLOW_NAME" },
        { "pod.name", "ARGO_POD_NAME" },
        { "workflow.uid", "ARGO_WORKFLOW_UID" },
};

const char *af_vars_env_name(const char *name)
{
        for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
                if (strcmp(name, env_vars[i].var) == 0)
                        return env_vars[i].env;
        return NULL;
}

int af_vars_from_env(struct af_vars *vars)
{
        char source[64];
        int r;

        for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
                const char *v = getenv(env_vars[i].env);

                if (!v || !*v)
                        continue;
                snprintf(source, sizeof(source), "env %s", env_vars[i].env);
                r = af_vars_set(vars, env_vars[i].var, v, source, false);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void set_err(struct af_template_error *err, const char *reason, size_t offset,
                    const char *var, size_t varlen)
{
        if (!err)
                return;
        err->reason = reason;
        err->offset = offset;
        if (varlen >= sizeof(err->var))
                varlen = sizeof(err->var) - 1;
        memcpy(err->var, var, varlen);
        err->var[varlen] = '\0';
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int af_template_expand(const char *tmpl, const struct af_vars *vars, struct af_buf *out,
                       struct af_template_error *err)
{
        size_t start_len = out->len, i = 0, tlen = strlen(tmpl);
        int r = 0;

        if (err)
                memset(err, 0, sizeof(*err));

        if (tlen > AF_TEMPLATE_MAX) {
                set_err(err, "template too long", 0, "", 0);
                return -E2BIG;
        }
        while (tmpl[i]) {
                const char *open = strstr(tmpl + i, "{{");
                const char *close, *a, *b;
                char name[AF_VAR_NAME_MAX];
                const struct af_var *v;

                if (!open) {
                        r = af_buf_adds(out, tmpl + i);
                        break;
                }
                r = af_buf_add(out, tmpl + i, (size_t)(open - (tmpl + i)));
                if (r < 0)
                        break;
                close = strstr(open + 2, "}}");
                if (!close) {
                        set_err(err, "unterminated {{", (size_t)(open - tmpl), "", 0);
                        r = -EINVAL;
                        break;
                }
                /* Argo trims the tag, so "{{ pod.name }}" is "pod.name". */
                a = open + 2;
                b = close;
                while (a < b && is_space(*a))
                        a++;
                while (b > a && is_space(b[-1]))
                        b--;
                if (a == b) {
                        set_err(err, "empty {{}}", (size_t)(open - tmpl), "", 0);
                        r = -EINVAL;
                        break;
                }
                if (*a == '=') {
                        set_err(err, "expression tags {{=...}} are not supported",
                                (size_t)(open - tmpl), a, (size_t)(b - a));
                        r = -EINVAL;
                        break;
                }
                if ((size_t)(b - a) >= sizeof(name)) {
                        set_err(err, "variable name too long", (size_t)(open - tmpl), a,
                                (size_t)(b - a));
                        r = -EINVAL;
                        break;
                }
                memcpy(name, a, (size_t)(b - a));
                name[b - a] = '\0';
                v = af_vars_get(vars, name);
                if (!v) {
                        set_err(err, "unknown variable", (size_t)(open - tmpl), name,
                                strlen(name));
                        r = -ENOENT;
                        break;
                }
                r = af_buf_adds(out, v->value);
                if (r < 0)
                        break;
                i = (size_t)(close + 2 - tmpl);
        }
        if (r == 0 && out->len - start_len > AF_TEMPLATE_MAX) {
                set_err(err, "expansion too long", 0, "", 0);
                r = -E2BIG;
        }
        if (r == -E2BIG && err && !err->reason)
                set_err(err, "expansion too long", 0, "", 0);
        if (r < 0)
                af_buf_truncate(out, start_len);
        return r;
}

int af_key_clean(const char *key, struct af_buf *out)
{
        /* Go's path.Clean, segment by segment: drop "" and ".", ".." removes the previous
         * segment unless there is none to remove (then it stays, for relative paths, or is
         * dropped at the root). The leading "/" is not kept: S3 keys have none. */
        bool rooted = key[0] == '/';
        size_t start = out->len, i = 0, n = strlen(key);
        size_t dotdot_floor = start; /* ".." cannot remove segments before here */
        int r;

        while (i < n) {
                size_t j = i, seg;

                while (j < n && key[j] != '/')
                        j++;
                seg = j - i;
                if (seg == 0 || (seg == 1 && key[i] == '.')) {
                        /* nothing */
                } else if (seg == 2 && key[i] == '.' && key[i + 1] == '.') {
                        if (out->len > dotdot_floor) {
                                size_t k = out->len;

                                while (k > dotdot_floor && out->ptr[k - 1] != '/')
                                        k--;
                                af_buf_truncate(out, k > dotdot_floor ? k - 1 : dotdot_floor);
                        } else if (!rooted) {
                                r = af_buf_adds(out, out->len > start ? "/.." : "..");
                                if (r < 0)
                                        goto fail;
                                dotdot_floor = out->len;
                        }
                } else {
                        if (out->len > start) {
                                r = af_buf_addc(out, '/');
                                if (r < 0)
                                        goto fail;
                        }
                        r = af_buf_add(out, key + i, seg);
                        if (r < 0)
                                goto fail;
                }
                i = j + 1;
        }
        return 0;
fail:
        af_buf_truncate(out, start);
        return r;
}
