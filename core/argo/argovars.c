/* SPDX-License-Identifier: Apache-2.0 */
/* Argo's keyFormat variables. See argovars.h. */
#include "argo/argovars.h"
#include "base/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_kv(const void *a, const void *b)
{
        return strcmp((*(const struct af_kv *const *)a)->key, (*(const struct af_kv *const *)b)->key);
}

/* {"k":"v",...} with keys sorted bytewise, as Go marshals a map[string]string. */
static int kv_json(const struct af_kv *kv, size_t n, struct af_buf *out)
{
        const struct af_kv **sorted = calloc(n ? n : 1, sizeof(*sorted));
        int r = 0;

        if (!sorted)
                return -ENOMEM;
        if (n == 0) { /* Go marshals a nil map as null */
                free(sorted);
                return af_buf_adds(out, "null");
        }
        for (size_t i = 0; i < n; i++)
                sorted[i] = &kv[i];
        if (n > 1)
                qsort(sorted, n, sizeof(*sorted), cmp_kv);
        r = af_buf_addc(out, '{');
        for (size_t i = 0; r == 0 && i < n; i++) {
                if (i && sorted[i - 1] && strcmp(sorted[i - 1]->key, sorted[i]->key) == 0)
                        continue; /* a map has one value per key */
                if (out->len > 1 && out->ptr[out->len - 1] != '{')
                        r = af_buf_addc(out, ',');
                if (r == 0)
                        r = af_json_quote(out, sorted[i]->key);
                if (r == 0)
                        r = af_buf_addc(out, ':');
                if (r == 0)
                        r = af_json_quote(out, sorted[i]->value);
        }
        if (r == 0)
                r = af_buf_addc(out, '}');
        free(sorted);
        return r;
}

static int set_prefixed(struct af_vars *vars, const char *prefix, const char *name,
                        const char *value)
{
        char full[AF_VAR_NAME_MAX];

        if ((size_t)snprintf(full, sizeof(full), "%s%s", prefix, name) >= sizeof(full) ||
            strlen(value) >= AF_VAR_VALUE_MAX)
                return 0; /* a name or value no key could use: leave it out, do not fail */
        return af_vars_set(vars, full, value, "spec", false);
}

static int set_kv_vars(struct af_vars *vars, const char *prefix, const struct af_kv *kv,
                       size_t n)
{
        struct af_buf json;
        char jname[64];
        int r = 0;

        for (size_t i = 0; r == 0 && i < n; i++)
                r = set_prefixed(vars, prefix, kv[i].key, kv[i].value);
        if (r < 0)
                return r;
        af_buf_init(&json, AF_VAR_VALUE_MAX - 1);
        r = kv_json(kv, n, &json);
        snprintf(jname, sizeof(jname), "%sjson", prefix);
        if (r == 0)
                r = af_vars_set(vars, jname, af_buf_str(&json), "spec", false);
        /* Argo sets the bare name ("workflow.labels") to the same JSON. */
        snprintf(jname, sizeof(jname), "%.*s", (int)strlen(prefix) - 1, prefix);
        if (r == 0)
                r = af_vars_set(vars, jname, af_buf_str(&json), "spec", false);
        af_buf_done(&json);
        /* A map too large for a variable: no .json variable; the rest still works. */
        return r == -E2BIG || r == -EINVAL ? 0 : r;
}

static int json_field(struct af_buf *out, const char *name, const char *v)
{
        int r;

        if (!v)
                return 0;
        r = af_buf_addf(out, ",\"%s\":", name);
        return r < 0 ? r : af_json_quote(out, v);
}

static int param_json(struct af_buf *out, const struct af_param *p, bool comma)
{
        int r = af_buf_adds(out, comma ? ",{\"name\":" : "{\"name\":");

        if (r == 0)
                r = af_json_quote(out, p->name);
        if (r == 0)
                r = json_field(out, "default", p->def);
        if (r == 0)
                r = json_field(out, "value", p->given_value);
        if (r == 0)
                r = json_field(out, "globalName", p->global_name);
        if (r == 0 && p->nenums) {
                r = af_buf_adds(out, ",\"enum\":[");
                for (size_t i = 0; r == 0 && i < p->nenums; i++) {
                        if (i)
                                r = af_buf_addc(out, ',');
                        if (r == 0)
                                r = af_json_quote(out, p->enums[i]);
                }
                if (r == 0)
                        r = af_buf_addc(out, ']');
        }
        if (r == 0)
                r = json_field(out, "description", p->description);
        if (r == 0)
                r = af_buf_addc(out, '}');
        return r;
}

int af_argo_vars_from_spec(struct af_vars *vars, const struct af_spec *spec)
{
        struct af_buf json;
        int r = 0;

        if (!spec)
                return 0;
        /* Only a Workflow's own name is the workflow's: one made from a (Cluster)Workflow-
         * Template or a CronWorkflow gets a generated name, which --var or the environment
         * must give. */
        if (spec->name && (!spec->kind || strcmp(spec->kind, "Workflow") == 0))
                r = af_vars_set(vars, "workflow.name", spec->name, "spec", false);
        if (r == 0 && spec->namespace)
                r = af_vars_set(vars, "workflow.namespace", spec->namespace, "spec", false);
        if (r == 0 && spec->uid)
                r = af_vars_set(vars, "workflow.uid", spec->uid, "spec", false);
        if (r == 0 && spec->service_account)
                r = af_vars_set(vars, "workflow.serviceAccountName", spec->service_account,
                                "spec", false);
        if (r == 0 && spec->entrypoint)
                r = af_vars_set(vars, "workflow.mainEntrypoint", spec->entrypoint, "spec", false);
        if (r == 0 && spec->priority)
                r = af_vars_set(vars, "workflow.priority", spec->priority, "spec", false);
        if (r == 0 && !spec->is_resolved_template)
                r = set_kv_vars(vars, "workflow.labels.", spec->labels, spec->nlabels);
        if (r == 0 && !spec->is_resolved_template)
                r = set_kv_vars(vars, "workflow.annotations.", spec->annotations,
                                spec->nannotations);
        for (size_t i = 0; r == 0 && i < spec->nparams; i++)
                if (spec->params[i].value)
                        r = set_prefixed(vars, "workflow.parameters.", spec->params[i].name,
                                         spec->params[i].value);
        for (size_t i = 0; r == 0 && i < spec->ninputs; i++)
                if (spec->inputs[i].value)
                        r = set_prefixed(vars, "inputs.parameters.", spec->inputs[i].name,
                                         spec->inputs[i].value);
        if (r < 0 || spec->is_resolved_template)
                return r;
        /* workflow.parameters.json: the parameters as Argo's []Parameter marshals them:
         * fields in struct order, empty ones left out, a nil list as null. */
        af_buf_init(&json, AF_VAR_VALUE_MAX - 1);
        r = spec->nparams ? af_buf_addc(&json, '[') : af_buf_adds(&json, "null");
        for (size_t i = 0; r == 0 && i < spec->nparams; i++)
                r = param_json(&json, &spec->params[i], i > 0);
        if (r == 0 && spec->nparams)
                r = af_buf_addc(&json, ']');
        if (r == 0)
                r = af_vars_set(vars, "workflow.parameters.json", af_buf_str(&json), "spec",
                                false);
        if (r == 0)
                r = af_vars_set(vars, "workflow.parameters", af_buf_str(&json), "spec", false);
        af_buf_done(&json);
        return r == -E2BIG || r == -EINVAL ? 0 : r;
}

static const char *const months[] = { "January", "February", "March",     "April",
                                      "May",     "June",     "July",      "August",
                                      "September", "October", "November", "December" };
static const char *const days[] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
                                    "Thursday", "Friday", "Saturday" };

/* One strftime letter of Argo's set, as Go formats its layout for that letter. */
static void format_letter(char letter, const struct tm *tm, int off, char *out, size_t n)
{
        int h12 = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
        int aoff = off < 0 ? -off : off;

        switch (letter) {
        case 'Y':
                snprintf(out, n, "%04d", tm->tm_year + 1900);
                break;
        case 'y':
                snprintf(out, n, "%02d", (tm->tm_year + 1900) % 100);
                break;
        case 'm':
                snprintf(out, n, "%02d", tm->tm_mon + 1);
                break;
        case 'B':
                snprintf(out, n, "%s", months[tm->tm_mon]);
                break;
        case 'b':
                snprintf(out, n, "%.3s", months[tm->tm_mon]);
                break;
        case 'd':
                snprintf(out, n, "%02d", tm->tm_mday);
                break;
        case 'A':
                snprintf(out, n, "%s", days[tm->tm_wday]);
                break;
        case 'a':
                snprintf(out, n, "%.3s", days[tm->tm_wday]);
                break;
        case 'H':
                snprintf(out, n, "%02d", tm->tm_hour);
                break;
        case 'I':
                snprintf(out, n, "%02d", h12);
                break;
        case 'M':
                snprintf(out, n, "%02d", tm->tm_min);
                break;
        case 'S':
                snprintf(out, n, "%02d", tm->tm_sec);
                break;
        case 'p':
                snprintf(out, n, "%s", tm->tm_hour < 12 ? "AM" : "PM");
                break;
        case 'Z':
                /* Go prints the zone's abbreviation; a parsed numeric offset has none, and
                 * then Go prints the offset as -0700 does. */
                if (off == 0)
                        snprintf(out, n, "UTC");
                else
                        snprintf(out, n, "%c%02d%02d", off < 0 ? '-' : '+', aoff / 3600,
                                 aoff / 60 % 60);
                break;
        case 'z':
                snprintf(out, n, "%c%02d%02d", off < 0 ? '-' : '+', aoff / 3600, aoff / 60 % 60);
                break;
        case 'L':
                /* Creation timestamps have whole seconds, so Go's ".000" is always ".000". */
                snprintf(out, n, ".000");
                break;
        default:
                out[0] = '\0';
        }
}

int af_argo_vars_from_time(struct af_vars *vars, time_t t, int utc_offset_s, const char *source)
{
        static const char letters[] = "YymBbdAaHIMSpZzL";
        time_t local = t + utc_offset_s;
        struct tm tm;
        char rfc[40], name[64], val[64];
        int r, aoff = utc_offset_s < 0 ? -utc_offset_s : utc_offset_s;
        size_t n;

        if (!gmtime_r(&local, &tm))
                return -EINVAL;
        n = strftime(rfc, sizeof(rfc), "%Y-%m-%dT%H:%M:%S", &tm);
        if (utc_offset_s == 0)
                snprintf(rfc + n, sizeof(rfc) - n, "Z");
        else
                snprintf(rfc + n, sizeof(rfc) - n, "%c%02d:%02d", utc_offset_s < 0 ? '-' : '+',
                         aoff / 3600, aoff / 60 % 60);
        r = af_vars_set(vars, "workflow.creationTimestamp", rfc, source, false);
        if (r == 0)
                r = af_vars_set(vars, "workflow.creationTimestamp.RFC3339", rfc, source, false);
        snprintf(val, sizeof(val), "%lld", (long long)t);
        if (r == 0)
                r = af_vars_set(vars, "workflow.creationTimestamp.s", val, source, false);
        for (const char *l = letters; r == 0 && *l; l++) {
                snprintf(name, sizeof(name), "workflow.creationTimestamp.%c", *l);
                format_letter(*l, &tm, utc_offset_s, val, sizeof(val));
                r = af_vars_set(vars, name, val, source, false);
        }
        return r;
}

