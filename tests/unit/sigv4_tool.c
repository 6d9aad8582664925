/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4_tool: signs requests described on stdin with af_sigv4_sign() and prints every stage,
 * for the differential test against botocore (tests/integration/test_sigv4_botocore.py).
 *
 * Input: requests as blocks of "key value" lines, a block ending at an empty line or at the
 * end of input. Fields marked (pct) are percent-encoded in the stream, so any byte, spaces
 * and newlines included, can pass; a literal "%" is "%25".
 *
 *   method GET                 the HTTP method
 *   path /b/k%20x              (pct) the raw, unencoded path: the tool encodes it with
 *                              af_sigv4_uri_encode(encode_slash=false), as the S3 client does
 *   uri /b/k%20x               or the canonical path as is (exclusive with path)
 *   query NAME VALUE           (pct, pct) a query parameter, repeatable; "query NAME" alone
 *                              is a value-less one (value NULL), "query NAME " an empty value
 *   header NAME VALUE          (-, pct) a header to sign, repeatable, order kept
 *   payload HASH               hex SHA-256 or UNSIGNED-PAYLOAD
 *   creds AK SK                (pct, pct) access and secret key
 *   region us-east-1           default us-east-1
 *   service s3                 default s3
 *   time 1369353600            seconds since the epoch
 *   # ...                      a comment
 *
 * Output, per block and in order, stages percent-encoded the same way (every byte outside
 * "!".."~", and "%", is %XX), then an empty line:
 *
 *   canonical GET%0A/b/k%2520x%0A...
 *   sts AWS4-HMAC-SHA256%0A...
 *   auth AWS4-HMAC-SHA256%20Credential=...
 *
 * or, when af_sigv4_sign() fails, "error -22 Invalid argument". Exit status 0; 2 for input
 * that does not follow this format (the message names the line).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/hex.h"
#include "aws/sigv4.h"

#define MAX_ITEMS 256

struct block {
        char *method, *path, *uri, *payload, *ak, *sk, *region, *service;
        bool have_time;
        time_t time;
        struct af_sigv4_param query[MAX_ITEMS];
        struct af_sigv4_header headers[MAX_ITEMS];
        size_t nquery, nheaders;
};

static unsigned long lineno;

static void die(const char *what)
{
        fprintf(stderr, "sigv4_tool: line %lu: %s\n", lineno, what);
        exit(2);
}

static char *xstrdup(const char *s)
{
        char *p = strdup(s);

        if (!p)
                die("out of memory");
        return p;
}

/* Percent-decodes @s into a new string; sets *@n to its length (it may hold NUL bytes). */
static char *decode(const char *s, size_t *n)
{
        char *out = malloc(strlen(s) + 1), *w = out;

        if (!out)
                die("out of memory");
        for (; *s; s++) {
                if (*s != '%') {
                        *w++ = *s;
                        continue;
                }
                if (af_unhex_digit(s[1]) < 0 || af_unhex_digit(s[2]) < 0)
                        die("bad %XX escape");
                *w++ = (char)(af_unhex_digit(s[1]) << 4 | af_unhex_digit(s[2]));
                s += 2;
        }
        *w = '\0';
        if (n)
                *n = (size_t)(w - out);
        return out;
}

/* Decodes a field that becomes a C string, where a NUL byte would silently cut it. */
static char *decode_str(const char *s)
{
        size_t n;
        char *p = decode(s, &n);

        if (strlen(p) != n)
                die("a NUL byte cannot pass in this field");
        return p;
}

static void set_once(char **field, char *value)
{
        if (*field)
                die("field given twice");
        *field = value;
}

static void block_free(struct block *b)
{
        size_t i;

        free(b->method);
        free(b->path);
        free(b->uri);
        free(b->payload);
        free(b->ak);
        free(b->sk);
        free(b->region);
        free(b->service);
        for (i = 0; i < b->nquery; i++) {
                free((char *)b->query[i].name);
                free((char *)b->query[i].value);
        }
        for (i = 0; i < b->nheaders; i++) {
                free((char *)b->headers[i].name);
                free((char *)b->headers[i].value);
        }
        memset(b, 0, sizeof(*b));
}

static void parse_line(struct block *b, char *line)
{
        char *key = line, *val = strchr(line, ' '), *sp, *end;
        long long t;

        if (!val)
                die("expected 'key value'");
        *val++ = '\0';
        if (strcmp(key, "method") == 0) {
                set_once(&b->method, xstrdup(val));
        } else if (strcmp(key, "path") == 0) {
                set_once(&b->path, xstrdup(val)); /* decoded when encoded, NULs allowed */
        } else if (strcmp(key, "uri") == 0) {
                set_once(&b->uri, xstrdup(val));
        } else if (strcmp(key, "payload") == 0) {
                set_once(&b->payload, xstrdup(val));
        } else if (strcmp(key, "region") == 0) {
                set_once(&b->region, decode_str(val));
        } else if (strcmp(key, "service") == 0) {
                set_once(&b->service, decode_str(val));
        } else if (strcmp(key, "creds") == 0) {
                sp = strchr(val, ' ');
                if (!sp)
                        die("expected 'creds AK SK'");
                *sp++ = '\0';
                set_once(&b->ak, decode_str(val));
                set_once(&b->sk, decode_str(sp));
        } else if (strcmp(key, "time") == 0) {
                errno = 0;
                t = strtoll(val, &end, 10);
                if (errno || end == val || *end)
                        die("bad time");
                b->time = (time_t)t;
                b->have_time = true;
        } else if (strcmp(key, "query") == 0) {
                if (b->nquery == MAX_ITEMS)
                        die("too many query parameters");
                sp = strchr(val, ' ');
                if (sp)
                        *sp++ = '\0';
                b->query[b->nquery].name = decode_str(val);
                b->query[b->nquery++].value = sp ? decode_str(sp) : NULL;
        } else if (strcmp(key, "header") == 0) {
                if (b->nheaders == MAX_ITEMS)
                        die("too many headers");
                sp = strchr(val, ' ');
                if (!sp)
                        die("expected 'header NAME VALUE'");
                *sp++ = '\0';
                b->headers[b->nheaders].name = xstrdup(val);
                b->headers[b->nheaders++].value = decode_str(sp);
        } else {
                die("unknown key");
        }
}

/* Writes "@label <@s percent-encoded>\n". */
static void put_escaped(const char *label, const struct af_buf *s)
{
        const char *p = af_buf_str(s);
        size_t i;

        printf("%s ", label);
        for (i = 0; i < s->len; i++) {
                unsigned char c = (unsigned char)p[i];

                if (c > ' ' && c < 0x7f && c != '%')
                        putchar(c);
                else
                        printf("%%%02X", c);
        }
        putchar('\n');
}

static void sign_block(struct block *b)
{
        struct af_buf uri, auth, canon, sts;
        struct af_sigv4_req req = { 0 };
        char *raw = NULL;
        size_t n;
        int r = -EINVAL;

        af_buf_init(&uri, 0);
        af_buf_init(&auth, 0);
        af_buf_init(&canon, 0);
        af_buf_init(&sts, 0);
        if (!b->method || !b->payload || !b->ak || !b->sk || !b->have_time ||
            !b->path == !b->uri)
                die("a block needs method, path or uri, payload, creds and time");
        if (b->path) {
                raw = decode(b->path, &n);
                r = af_sigv4_uri_encode(raw, n, false, &uri);
                if (r < 0)
                        goto out;
                req.uri = af_buf_str(&uri);
        } else {
                req.uri = b->uri;
        }
        req.method = b->method;
        req.query = b->query;
        req.nquery = b->nquery;
        req.headers = b->headers;
        req.nheaders = b->nheaders;
        req.payload_hash = b->payload;
        r = af_sigv4_sign(&req, b->ak, b->sk, b->region ? b->region : "us-east-1",
                          b->service ? b->service : "s3", b->time, &auth, &canon, &sts);
out:
        if (r < 0) {
                printf("error %d %s\n\n", r, strerror(-r));
        } else {
                put_escaped("canonical", &canon);
                put_escaped("sts", &sts);
                put_escaped("auth", &auth);
                putchar('\n');
        }
        free(raw);
        af_buf_done(&uri);
        af_buf_done(&auth);
        af_buf_done(&canon);
        af_buf_done(&sts);
}

int main(void)
{
        struct block b = { 0 };
        bool open_block = false;
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;

        while ((len = getline(&line, &cap, stdin)) >= 0) {
                lineno++;
                if (len && line[len - 1] == '\n')
                        line[--len] = '\0';
                if (len == 0) {
                        if (open_block)
                                sign_block(&b);
                        block_free(&b);
                        open_block = false;
                        continue;
                }
                if (line[0] == '#')
                        continue;
                parse_line(&b, line);
                open_block = true;
        }
        if (open_block)
                sign_block(&b);
        block_free(&b);
        free(line);
        if (ferror(stdin) || fflush(stdout) != 0) {
                perror("sigv4_tool");
                return 2;
        }
        return 0;
}
