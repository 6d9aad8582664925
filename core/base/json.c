/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One member of a flat JSON object read out, one string written; see json.h.
 *
 * The reader is a recursive descent over [p, end) that validates as it goes: strings are
 * measured first and copied only when they fit, so @out is written only on success.
 */
#include "base/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/hex.h"
#include "base/utf8.h"

#define JSON_MAX_DEPTH 32

static int copy_str(char *dst, size_t n, const char *src, size_t len)
{
        if (len >= n)
                return -E2BIG;
        memcpy(dst, src, len);
        dst[len] = '\0';
        return 0;
}

struct jp {
        const char *p, *end;
        int depth;
};

static void jws(struct jp *j)
{
        while (j->p < j->end &&
               (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
                j->p++;
}

/*
 * The characters JSON escapes by a letter, both ways: \" \\ \n \r \t \b \f (Go writes
 * \b and \f since 1.22; before, \u0008 and \u000c). '/' may be escaped on input too.
 */
static const struct {
        char raw, letter;
} short_escapes[] = { { '"', '"' },   { '\\', '\\' }, { '\n', 'n' }, { '\r', 'r' },
                      { '\t', 't' }, { '\b', 'b' },     { '\f', 'f' } };

/* The letter that escapes @raw, or 0. */
static char escape(unsigned char raw)
{
        for (size_t i = 0; i < sizeof(short_escapes) / sizeof(short_escapes[0]); i++)
                if ((unsigned char)short_escapes[i].raw == raw)
                        return short_escapes[i].letter;
        return 0;
}

/* The character escaped by @letter, or 0. */
static char unescape(unsigned char letter)
{
        for (size_t i = 0; i < sizeof(short_escapes) / sizeof(short_escapes[0]); i++)
                if ((unsigned char)short_escapes[i].letter == letter)
                        return short_escapes[i].raw;
        return 0;
}

/* Four hex digits (the XXXX of a \uXXXX escape), or -EBADMSG. */
static int hex4(const char *p, const char *end, unsigned *ret)
{
        unsigned v = 0;

        if (end - p < 4)
                return -EBADMSG;
        for (int i = 0; i < 4; i++) {
                int d = af_unhex_digit(p[i]);

                if (d < 0)
                        return -EBADMSG;
                v = v << 4 | (unsigned)d;
        }
        *ret = v;
        return 0;
}

/*
 * The string at j->p (its opening quote), unescaped into out[0..n) when @out is set; the
 * decoded length goes to @ret_len whether or not it fit. j->p ends after the closing quote.
 */
static int jstring(struct jp *j, char *out, size_t n, size_t *ret_len)
{
        size_t o = 0;

        if (j->p >= j->end || *j->p != '"')
                return -EBADMSG;
        j->p++;
        while (j->p < j->end && *j->p != '"') {
                unsigned char c = (unsigned char)*j->p++;
                unsigned cp, lo;
                char e;

                if (c < 0x20)
                        return -EBADMSG; /* raw control characters are not allowed */
                if (c != '\\') {
                        if (out && o < n)
                                out[o] = (char)c;
                        o++;
                        continue;
                }
                if (j->p >= j->end)
                        return -EBADMSG;
                c = (unsigned char)*j->p++;
                switch (c) {
                case 'u':
                        if (hex4(j->p, j->end, &cp) < 0)
                                return -EBADMSG;
                        j->p += 4;
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return -EBADMSG; /* a low surrogate first */
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                                    hex4(j->p + 2, j->end, &lo) < 0 || lo < 0xdc00 ||
                                    lo > 0xdfff)
                                        return -EBADMSG;
                                j->p += 6;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        }
                        break;
                default:
                        if (c == '/') { /* escaped on input only: Go does not write it */
                                cp = c;
                                break;
                        }
                        e = unescape(c);
                        if (!e)
                                return -EBADMSG;
                        cp = (unsigned char)e;
                        break;
                }
                af_utf8_put(cp, out, n, &o);
        }
        if (j->p >= j->end)
                return -EBADMSG;
        j->p++;
        *ret_len = o;
        return 0;
}

static int jnumber(struct jp *j)
{
        const char *s = j->p;

        if (j->p < j->end && *j->p == '-')
                j->p++;
        if (j->p >= j->end || !isdigit((unsigned char)*j->p))
                return -EBADMSG;
        if (*j->p == '0')
                j->p++;
        else
                while (j->p < j->end && isdigit((unsigned char)*j->p))
                        j->p++;
        if (j->p < j->end && *j->p == '.') {
                j->p++;
                if (j->p >= j->end || !isdigit((unsigned char)*j->p))
                        return -EBADMSG;
                while (j->p < j->end && isdigit((unsigned char)*j->p))
                        j->p++;
        }
        if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
                j->p++;
                if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
                        j->p++;
                if (j->p >= j->end || !isdigit((unsigned char)*j->p))
                        return -EBADMSG;
                while (j->p < j->end && isdigit((unsigned char)*j->p))
                        j->p++;
        }
        return j->p > s ? 0 : -EBADMSG;
}

static int jvalue(struct jp *j, enum af_json_type *ret_type);

/* What af_json_get() looks for among the members of the top-level object. */
struct jfind {
        const char *key;
        size_t klen;
        const char *vs, *ve; /* the last member named key: its value, as written */
        enum af_json_type type;
};

/* A member's name; when @f is set, whether it is the one wanted. */
static int jname(struct jp *j, const struct jfind *f, bool *ret_match)
{
        char kbuf[256];
        size_t l;
        int r = jstring(j, f ? kbuf : NULL, f ? sizeof(kbuf) : 0, &l);

        *ret_match = r == 0 && f && l == f->klen && l < sizeof(kbuf) &&
                     memcmp(kbuf, f->key, l) == 0;
        return r;
}

/*
 * An object or array at j->p, skipped; with @f (the top-level object only), the value of the
 * member @f names is noted (a repeated member: the last one wins, as in most parsers).
 */
static int jcompound(struct jp *j, struct jfind *f)
{
        char close = *j->p == '{' ? '}' : ']';
        bool object = close == '}', match = false;
        enum af_json_type t;
        const char *vs;
        int r;

        if (++j->depth > JSON_MAX_DEPTH)
                return -EBADMSG;
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == close) {
                j->p++;
                j->depth--;
                return 0;
        }
        for (;;) {
                if (object) {
                        r = jname(j, f, &match);
                        if (r < 0)
                                return r;
                        jws(j);
                        if (j->p >= j->end || *j->p != ':')
                                return -EBADMSG;
                        j->p++;
                        jws(j);
                }
                vs = j->p;
                r = jvalue(j, &t);
                if (r < 0)
                        return r;
                if (match)
                        *f = (struct jfind){ f->key, f->klen, vs, j->p, t };
                jws(j);
                if (j->p < j->end && *j->p == ',') {
                        j->p++;
                        jws(j);
                        continue;
                }
                if (j->p < j->end && *j->p == close) {
                        j->p++;
                        j->depth--;
                        return 0;
                }
                return -EBADMSG;
        }
}

static int jvalue(struct jp *j, enum af_json_type *ret_type)
{
        static const char *const lits[] = { "true", "false", "null" };
        size_t l;
        int r;

        if (j->p >= j->end)
                return -EBADMSG;
        switch (*j->p) {
        case '"':
                r = jstring(j, NULL, 0, &l);
                *ret_type = AF_JSON_STRING;
                return r;
        case '{':
        case '[':
                *ret_type = AF_JSON_OTHER;
                return jcompound(j, NULL);
        default:
                break;
        }
        for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
                size_t ll = strlen(lits[i]);

                if ((size_t)(j->end - j->p) >= ll && memcmp(j->p, lits[i], ll) == 0) {
                        j->p += ll;
                        *ret_type = AF_JSON_LITERAL;
                        return 0;
                }
        }
        *ret_type = AF_JSON_NUMBER;
        return jnumber(j);
}

int af_json_get(const char *json, size_t len, const char *key, char *out, size_t n)
{
        struct jp j = { .p = json, .end = json + len, .depth = 0 };
        struct jfind f = { .key = key, .klen = strlen(key) };
        size_t l;
        int r;

        jws(&j);
        if (j.p >= j.end || *j.p != '{')
                return -EBADMSG;
        r = jcompound(&j, &f);
        if (r < 0)
                return r;
        jws(&j);
        if (j.p != j.end)
                return -EBADMSG;
        if (!f.vs)
                return -ENOENT;
        if (f.type == AF_JSON_STRING) {
                struct jp s = { .p = f.vs, .end = f.ve, .depth = 0 };

                (void)jstring(&s, NULL, 0, &l); /* measure first: @out only on success */
                if (l >= n)
                        return -E2BIG;
                s.p = f.vs;
                (void)jstring(&s, out, n, &l);
                out[l] = '\0';
        } else if (f.type == AF_JSON_OTHER) {
                if (n == 0)
                        return -E2BIG;
                out[0] = '\0';
        } else {
                r = copy_str(out, n, f.vs, (size_t)(f.ve - f.vs));
                if (r < 0)
                        return r;
        }
        return (int)f.type;
}

/* ---- writing: Go's encoding/json ---- */

int af_json_quote(struct af_buf *out, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        size_t start = out->len;
        int r = af_buf_addc(out, '"');

        for (const unsigned char *p = (const unsigned char *)s; r == 0 && *p;) {
                size_t l = af_utf8_len(p);
                char esc[7];

                if (l == 0) {
                        /* Go replaces invalid UTF-8 with U+FFFD */
                        r = af_buf_adds(out, "\\ufffd");
                        p++;
                        continue;
                }
                if (l > 1) {
                        if (l == 3 && p[0] == 0xe2 && p[1] == 0x80 &&
                            (p[2] == 0xa8 || p[2] == 0xa9))
                                r = af_buf_adds(out, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
                        else
                                r = af_buf_add(out, p, l);
                        p += l;
                        continue;
                }
                if (escape(*p)) {
                        char e2[2] = { '\\', escape(*p) };

                        r = af_buf_add(out, e2, 2);
                } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
                        /* Go escapes other control bytes and, for HTML safety, < > &. */
                        snprintf(esc, sizeof(esc), "\\u00%c%c", hex[*p >> 4], hex[*p & 15]);
                        r = af_buf_adds(out, esc);
                } else {
                        r = af_buf_addc(out, (char)*p);
                }
                p++;
        }
        if (r == 0)
                r = af_buf_addc(out, '"');
        if (r < 0)
                af_buf_truncate(out, start);
        return r;
}
