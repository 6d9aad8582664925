// SPDX-License-Identifier: Apache-2.0
/* Reading a libyaml document tree (see yaml_read.h). */
#include "argo/yaml_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int af_yaml_fail(struct af_yaml *c, const yaml_node_t *n, const char *what, const char *detail)
{
        if (n)
                (void)af_buf_addf(c->err, "%s:%zu:%zu: %s%s", c->filename,
                                  n->start_mark.line + 1, n->start_mark.column + 1, what,
                                  detail ? detail : "");
        else
                (void)af_buf_addf(c->err, "%s: %s%s", c->filename, what, detail ? detail : "");
        return -EINVAL;
}

yaml_node_t *af_yaml_node(struct af_yaml *c, int idx)
{
        return yaml_document_get_node(c->doc, idx);
}

const char *af_yaml_scalar(const yaml_node_t *n)
{
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        return (const char *)n->data.scalar.value;
}

/* Marks @n visited in this lookup; false if it already was. */
static bool first_visit(struct af_yaml *c, const yaml_node_t *n)
{
        size_t i = (size_t)(n - c->doc->nodes.start);

        if (!c->seen || i >= c->nseen)
                return true;
        if (c->seen[i] == c->lookup_id)
                return false;
        c->seen[i] = c->lookup_id;
        return true;
}

/* Looks @key up in mapping @map, then in its merge keys ("<<"), depth-limited. */
static yaml_node_t *map_get_depth(struct af_yaml *c, const yaml_node_t *map, const char *key,
                                  int depth)
{
        yaml_node_pair_t *p;

        if (!map || map->type != YAML_MAPPING_NODE || depth > 8 || !first_visit(c, map))
                return NULL;
        for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = af_yaml_scalar(af_yaml_node(c, p->key));

                if (k && strcmp(k, key) == 0)
                        return af_yaml_node(c, p->value);
        }
        for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = af_yaml_scalar(af_yaml_node(c, p->key));
                yaml_node_t *v, *found;

                if (!k || strcmp(k, "<<") != 0)
                        continue;
                v = af_yaml_node(c, p->value);
                if (v && v->type == YAML_MAPPING_NODE)
                        return map_get_depth(c, v, key, depth + 1);
                if (v && v->type == YAML_SEQUENCE_NODE) {
                        for (yaml_node_item_t *it = v->data.sequence.items.start;
                             it < v->data.sequence.items.top; it++) {
                                found = map_get_depth(c, af_yaml_node(c, *it), key, depth + 1);
                                if (found)
                                        return found;
                        }
                }
        }
        return NULL;
}

yaml_node_t *af_yaml_get(struct af_yaml *c, const yaml_node_t *map, const char *key)
{
        if (++c->lookup_id == 0) { /* wrapped: forget all marks */
                if (c->seen)
                        memset(c->seen, 0, c->nseen * sizeof(*c->seen));
                c->lookup_id = 1;
        }
        return map_get_depth(c, map, key, 0);
}

const char *af_yaml_get_scalar(struct af_yaml *c, const yaml_node_t *map, const char *key)
{
        return af_yaml_scalar(af_yaml_get(c, map, key));
}

/* Duplicates an optional scalar field; -ENOMEM only. */
int af_yaml_dup(struct af_yaml *c, const yaml_node_t *map, const char *key, char **ret)
{
        const char *s = af_yaml_get_scalar(c, map, key);

        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int af_yaml_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "true", "yes", "on", "y" };
        static const char *const no[] = { "false", "no", "off", "n" };

        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

struct af_pos af_yaml_pos(const yaml_node_t *n)
{
        struct af_pos p = { 0, 0 };

        if (n) {
                p.line = (int)n->start_mark.line + 1;
                p.col = (int)n->start_mark.column + 1;
        }
        return p;
}

int af_yaml_begin_doc(struct af_yaml *c)
{
        free(c->seen);
        c->nseen = (size_t)(c->doc->nodes.top - c->doc->nodes.start);
        c->seen = calloc(c->nseen ? c->nseen : 1, sizeof(*c->seen));
        c->lookup_id = 0;
        return c->seen ? 0 : -ENOMEM;
}
