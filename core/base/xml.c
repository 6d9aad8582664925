/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One element's text out of an S3 or STS answer, and text escaped for a request; see xml.h.
 *
 * The decoder runs twice for af_xml_get (measure, then copy) so @out is written only when the
 * value fits; af_xml_copy runs it once and lets it cut.
 */
#include "base/xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/* The five predefined entities: read by decode(), written by af_xml_escape(). */
static const struct {
        const char *name; /* after the '&', with the ';' */
        char c;
} ents[] = { { "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' }, { "quot;", '"' },
             { "apos;", '\'' } };

#define NENTS (sizeof(ents) / sizeof(ents[0]))

/* The content [*ret_a, *ret_b) of the first element @name (length @nl) starting in [p, end). */
static int find(const char *p, const char *end, const char *name, size_t nl, const char **ret_a,
                const char **ret_b)
{
        while (p < end) {
                const char *lt = memchr(p, '<', (size_t)(end - p)), *q, *gt, *c;

                if (!lt)
                        return -ENOENT;
                q = lt + 1;
                p = q;
                if ((size_t)(end - q) <= nl || memcmp(q, name, nl) != 0 ||
                    !(q[nl] == '>' || q[nl] == '/' || isspace((unsigned char)q[nl])))
                        continue;
                gt = memchr(q + nl, '>', (size_t)(end - q - (ptrdiff_t)nl));
                if (!gt)
                        return -EBADMSG;
                if (gt[-1] == '/') { /* <Name/> */
                        *ret_a = *ret_b = gt + 1;
                        return 0;
                }
                for (c = gt + 1; c < end; c++) {
                        c = memchr(c, '<', (size_t)(end - c));
                        if (!c)
                                break;
                        if ((size_t)(end - c) > nl + 2 && c[1] == '/' &&
                            memcmp(c + 2, name, nl) == 0) {
                                const char *t = c + 2 + nl;

                                while (t < end && isspace((unsigned char)*t))
                                        t++;
                                if (t < end && *t == '>') {
                                        *ret_a = gt + 1;
                                        *ret_b = c;
                                        return 0;
                                }
                        }
                }
                return -EBADMSG;
        }
        return -ENOENT;
}

int af_xml_find(const char *xml, size_t len, const char *path, const char **ret_a,
                const char **ret_b)
{
        const char *a = xml, *b = xml + len, *seg = path;
        int r;

        while (*seg) {
                size_t sl = strcspn(seg, "/");
                const char *na, *nb;

                if (sl == 0)
                        return -EINVAL;
                r = find(a, b, seg, sl, &na, &nb);
                if (r < 0)
                        return r;
                a = na;
                b = nb;
                seg += sl;
                if (*seg == '/')
                        seg++;
        }
        *ret_a = a;
        *ret_b = b;
        return 0;
}

/* The code point of "#N;" or "#xN;" at @a (after the '&'), with *ret_end after the ';'. */
static int char_ref(const char *a, const char *b, unsigned *ret_cp, const char **ret_end)
{
        const char *semi = memchr(a, ';', (size_t)(b - a));
        bool hexa;
        unsigned long cp;
        char num[10], *e;

        if (*a != '#' || !semi || semi - a < 2 || semi - a > 9)
                return -EBADMSG;
        hexa = a[1] == 'x' || a[1] == 'X';
        memcpy(num, a + 1 + hexa, (size_t)(semi - a - 1 - hexa));
        num[semi - a - 1 - hexa] = '\0';
        if (!num[0] || !isxdigit((unsigned char)num[0]))
                return -EBADMSG;
        cp = strtoul(num, &e, hexa ? 16 : 10);
        if (*e || cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return -EBADMSG;
        *ret_cp = (unsigned)cp;
        *ret_end = semi + 1;
        return 0;
}

/* One byte to out[*o..n), counted even past @n. */
static void put(char c, char *out, size_t n, size_t *o)
{
        if (out && *o < n)
                out[*o] = c;
        (*o)++;
}

/*
 * Decodes [a, b) into out[0..n) (when set), counting the decoded length into @ret_len even
 * past @n. @lenient: a reference that cannot be decoded is kept as written; else -EBADMSG.
 */
static int decode(const char *a, const char *b, bool lenient, char *out, size_t n,
                  size_t *ret_len)
{
        size_t o = 0;

        while (a < b) {
                const char *amp = a, *end;
                unsigned cp;
                size_t i;

                if (*a++ != '&') {
                        put(*amp, out, n, &o);
                        continue;
                }
                for (i = 0; i < NENTS; i++) {
                        size_t el = strlen(ents[i].name);

                        if ((size_t)(b - a) >= el && memcmp(a, ents[i].name, el) == 0)
                                break;
                }
                if (i < NENTS) {
                        put(ents[i].c, out, n, &o);
                        a += strlen(ents[i].name);
                } else if (char_ref(a, b, &cp, &end) == 0) {
                        af_utf8_put(cp, out, n, &o);
                        a = end;
                } else if (lenient) {
                        put('&', out, n, &o);
                } else {
                        return -EBADMSG;
                }
        }
        *ret_len = o;
        return 0;
}

int af_xml_get(const char *xml, size_t len, const char *path, char *out, size_t n)
{
        const char *a, *b;
        size_t l;
        int r;

        r = af_xml_find(xml, len, path, &a, &b);
        if (r < 0)
                return r;
        while (a < b && isspace((unsigned char)*a))
                a++;
        while (b > a && isspace((unsigned char)b[-1]))
                b--;
        r = decode(a, b, false, NULL, 0, &l);
        if (r < 0)
                return r;
        if (l >= n)
                return -E2BIG;
        (void)decode(a, b, false, out, n, &l);
        out[l] = '\0';
        return 0;
}

void af_xml_copy(const char *xml, size_t len, const char *path, char *out, size_t n)
{
        const char *a, *b;
        size_t l = 0;

        if (af_xml_find(xml, len, path, &a, &b) == 0)
                (void)decode(a, b, true, out, n - 1, &l);
        out[l < n - 1 ? l : n - 1] = '\0';
}

int af_xml_escape(struct af_buf *out, const char *s)
{
        int r = 0;

        for (; r == 0 && *s; s++) {
                size_t i = 0;

                while (i < NENTS && ents[i].c != *s)
                        i++;
                if (i < NENTS) {
                        r = af_buf_addc(out, '&');
                        if (r == 0)
                                r = af_buf_adds(out, ents[i].name);
                } else {
                        r = af_buf_addc(out, *s);
                }
        }
        return r;
}
