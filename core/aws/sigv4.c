/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4 for S3 requests signed in the Authorization header.
 *
 * Each stage of AWS's "Create a signed AWS API request" is a separate function so tests can
 * check the canonical request, the string to sign and the signature one by one. This module
 * does not know about HTTP transports, credentials providers or the clock: the caller hands
 * in the request description, the keys and the time. It is not the presigned-URL (query
 * string) variant, nor the aws-chunked streaming one.
 *
 * Invariant: every function appends to its af_buf outputs and, on failure, truncates them
 * back to their length on entry, so a caller never sees half a canonical request.
 *
 * The rules cited below are from the S3 API reference, "Signature Calculations for the
 * Authorization Header: Transferring Payload in a Single Chunk" (called [S3] below), and the
 * IAM user guide, "Create a signed AWS API request" (called [IAM] below).
 */
#include "aws/sigv4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char hexdigits[] = "0123456789ABCDEF";

/* [S3] UriEncode(): the RFC 3986 unreserved characters are the only ones never encoded. */
static bool unreserved(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 9110 tchar: what a header name (and a method) may be made of. */
static bool tchar(unsigned char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool token(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!tchar((unsigned char)*s))
                        return false;
        return true;
}

/*
 * RFC 9110 field-value: no control character but HTAB. A CR or LF would end the header
 * early on the wire and split a line of the canonical request.
 */
static bool field_value(const char *s)
{
        if (!s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return false;
        }
        return true;
}

/* A credential-scope part or access key: printable, no space, no separator of the header. */
static bool scope_part(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',')
                        return false;
        }
        return true;
}

static int hexval(char c)
{
        /* [S3] UriEncode() writes upper-case hex: "%2f" is not canonical */
        return c >= 'a' && c <= 'f' ? -1 : af_unhex_digit(c);
}

/*
 * True when @s is exactly what af_sigv4_uri_encode(decoded, encode_slash=false) gives.
 * [S3] CanonicalURI is the key URI-encoded once, with "/" kept. S3 builds it from the key it
 * decoded, so "%41" (S3 reads "A") or "%2F" (S3 reads "/") in our path would make S3's
 * canonical request differ from ours, and a raw "$" means the caller forgot to encode.
 */
static bool canonical_path(const char *s)
{
        int hi, lo;

        if (s[0] != '/')
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '%') {
                        hi = hexval(s[1]);
                        lo = hi < 0 ? -1 : hexval(s[2]);
                        if (lo < 0)
                                return false;
                        c = (unsigned char)(hi << 4 | lo);
                        if (unreserved(c) || c == '/')
                                return false;
                        s += 2;
                } else if (!unreserved(c) && c != '/') {
                        return false;
                }
        }
        return true;
}

void af_sigv4_amz_date(time_t t, char out[17])
{
        struct tm tm;

        /* ISO 8601 basic format has four year digits; "" makes af_sigv4_sign() refuse. */
        if (!gmtime_r(&t, &tm) || tm.tm_year < 1000 - 1900 || tm.tm_year > 9999 - 1900 ||
            strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
                out[0] = '\0';
}

int af_sigv4_uri_encode(const char *s, size_t n, bool encode_slash, struct af_buf *out)
{
        size_t start = out->len, i = 0, run;
        char esc[3] = { '%', 0, 0 };
        unsigned char c;
        int r = 0;

        while (i < n && r == 0) {
                /* Copy runs of bytes that stay as they are in one append. */
                for (run = i; run < n; run++) {
                        c = (unsigned char)s[run];
                        if (!unreserved(c) && (c != '/' || encode_slash))
                                break;
                }
                if (run > i) {
                        r = af_buf_add(out, s + i, run - i);
                        i = run;
                        continue;
                }
                c = (unsigned char)s[i++];
                esc[1] = hexdigits[c >> 4];
                esc[2] = hexdigits[c & 0xf];
                r = af_buf_add(out, esc, sizeof(esc));
        }
        if (r < 0)
                af_buf_truncate(out, start);
        return r;
}

struct qent {
        size_t name_off, value_off; /* into the scratch buffer, valid while it grows */
        const char *name, *value;   /* set once the scratch buffer is complete */
};

/*
 * [S3] CanonicalQueryString: parameters sorted by encoded name, by character code; [IAM]:
 * a repeated name is then sorted by value. Both compare the encoded form, so this is strcmp()
 * on the strings we emit.
 */
static int qent_cmp(const void *a, const void *b)
{
        const struct qent *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c ? c : strcmp(x->value, y->value);
}

int af_sigv4_canonical_query(const struct af_sigv4_param *q, size_t n, struct af_buf *out)
{
        struct af_buf enc;
        struct qent *ent = NULL;
        size_t start = out->len, i;
        const char *value;
        int r = 0;

        af_buf_init(&enc, out->cap);
        if (n == 0)
                goto out;
        ent = calloc(n, sizeof(*ent));
        if (!ent) {
                r = -ENOMEM;
                goto out;
        }
        for (i = 0; i < n; i++) {
                if (!q[i].name) {
                        r = -EINVAL;
                        goto out;
                }
                /*
                 * [S3]: a parameter without a value ("?uploads") gets an empty one
                 * ("uploads="). Names and values encode "/" too: only the object key in
                 * the path keeps its slashes.
                 */
                value = q[i].value ? q[i].value : "";
                ent[i].name_off = enc.len;
                r = af_sigv4_uri_encode(q[i].name, strlen(q[i].name), true, &enc);
                if (r == 0)
                        r = af_buf_addc(&enc, '\0');
                ent[i].value_off = enc.len;
                if (r == 0)
                        r = af_sigv4_uri_encode(value, strlen(value), true, &enc);
                if (r == 0)
                        r = af_buf_addc(&enc, '\0');
                if (r < 0)
                        goto out;
        }
        for (i = 0; i < n; i++) {
                ent[i].name = enc.ptr + ent[i].name_off;
                ent[i].value = enc.ptr + ent[i].value_off;
        }
        qsort(ent, n, sizeof(*ent), qent_cmp);
        for (i = 0; i < n && r == 0; i++)
                r = af_buf_addf(out, "%s%s=%s", i ? "&" : "", ent[i].name, ent[i].value);
out:
        if (r < 0)
                af_buf_truncate(out, start);
        free(ent);
        af_buf_done(&enc);
        return r;
}

/* ASCII-only case folding: header names are tokens, and the C locale must not matter. */
static unsigned char lower(unsigned char c)
{
        return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int casecmp(const char *a, const char *b)
{
        while (*a && lower((unsigned char)*a) == lower((unsigned char)*b)) {
                a++;
                b++;
        }
        return (int)lower((unsigned char)*a) - (int)lower((unsigned char)*b);
}

struct hent {
        const struct af_sigv4_header *h;
        size_t idx; /* position in the request: keeps repeated headers in their given order */
};

/*
 * [S3] CanonicalHeaders: sorted by lower-cased name. [IAM]: the values of a repeated header
 * are not sorted, so the request order is the tie-break (qsort alone is not stable).
 */
static int hent_cmp(const void *a, const void *b)
{
        const struct hent *x = a, *y = b;
        int c = casecmp(x->h->name, y->h->name);

        if (c)
                return c;
        return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int add_lower(struct af_buf *out, const char *s)
{
        size_t start = out->len, i;
        int r = af_buf_adds(out, s);

        if (r < 0)
                return r;
        for (i = start; i < out->len; i++)
                out->ptr[i] = (char)lower((unsigned char)out->ptr[i]);
        return 0;
}

/*
 * [S3] Trim() drops leading and trailing whitespace; [IAM] also turns each run of inner
 * spaces into a single space. We take whitespace to be HTTP's OWS (SP and HTAB, RFC 9110):
 * a run of either becomes one SP. botocore does the same for SP and HTAB but also folds
 * other Unicode whitespace (NBSP, ...); we keep those bytes as they are.
 */
static int add_trimmed(struct af_buf *out, const char *v)
{
        size_t ws, word;
        int r = 0;

        v += strspn(v, " \t");
        while (*v && r == 0) {
                word = strcspn(v, " \t");
                r = af_buf_add(out, v, word);
                v += word;
                ws = strspn(v, " \t");
                v += ws;
                if (r == 0 && ws && *v)
                        r = af_buf_addc(out, ' ');
        }
        return r;
}

/* Returns the start of @v without leading OWS and sets *@n to the length without trailing. */
static const char *trim_span(const char *v, size_t *n)
{
        size_t len;

        v += strspn(v, " \t");
        len = strlen(v);
        while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
        *n = len;
        return v;
}

/*
 * [S3] CanonicalHeaders and SignedHeaders: one "name:value\n" line per lower-cased name in
 * sorted order, and the names joined with ";" into @ret_signed.
 */
static int add_headers(const struct af_sigv4_header *h, size_t n, struct af_buf *out,
                       struct af_buf *ret_signed)
{
        struct hent *ent;
        size_t i;
        int r = 0;

        if (n == 0)
                return 0;
        ent = calloc(n, sizeof(*ent));
        if (!ent)
                return -ENOMEM;
        for (i = 0; i < n; i++) {
                ent[i].h = &h[i];
                ent[i].idx = i;
        }
        qsort(ent, n, sizeof(*ent), hent_cmp);
        for (i = 0; i < n && r == 0; i++) {
                /* [IAM]: a repeated name gives one line, its values joined with ",". */
                if (i && casecmp(ent[i].h->name, ent[i - 1].h->name) == 0) {
                        r = af_buf_addc(out, ',');
                } else {
                        if (i)
                                r = af_buf_addc(out, '\n');
                        if (r == 0 && i)
                                r = af_buf_addc(ret_signed, ';');
                        if (r == 0)
                                r = add_lower(ret_signed, ent[i].h->name);
                        if (r == 0)
                                r = add_lower(out, ent[i].h->name);
                        if (r == 0)
                                r = af_buf_addc(out, ':');
                }
                if (r == 0)
                        r = add_trimmed(out, ent[i].h->value);
        }
        if (r == 0)
                r = af_buf_addc(out, '\n');
        free(ent);
        return r;
}

int af_sigv4_canonical_request(const struct af_sigv4_req *req, struct af_buf *out,
                               struct af_buf *ret_signed)
{
        size_t out_start = out->len, signed_start = ret_signed->len, i;
        const char *uri = req->uri;
        int r = -EINVAL;

        if (!token(req->method) || !uri || (req->nquery && !req->query) ||
            (req->nheaders && !req->headers) || !req->payload_hash || !*req->payload_hash ||
            !field_value(req->payload_hash))
                goto out;
        /* [IAM] CanonicalURI: an empty absolute path is written as "/". */
        if (!*uri)
                uri = "/";
        if (!canonical_path(uri))
                goto out;
        for (i = 0; i < req->nheaders; i++)
                if (!token(req->headers[i].name) || !field_value(req->headers[i].value))
                        goto out;

        /*
         * [S3] CanonicalURI: the path as sent, URI-encoded once (other services encode it
         * twice) and never normalised, so "./", "../" and "//" stay as they are: they are
         * part of the object key.
         */
        r = af_buf_addf(out, "%s\n%s\n", req->method, uri);
        if (r == 0)
                r = af_sigv4_canonical_query(req->query, req->nquery, out);
        if (r == 0)
                r = af_buf_addc(out, '\n');
        if (r == 0)
                r = add_headers(req->headers, req->nheaders, out, ret_signed);
        /* The header block ends with an empty line, then the signed list and the hash. */
        if (r == 0)
                r = af_buf_addf(out, "\n%s\n%s", af_buf_str(ret_signed) + signed_start,
                                req->payload_hash);
out:
        if (r < 0) {
                af_buf_truncate(out, out_start);
                af_buf_truncate(ret_signed, signed_start);
        }
        return r;
}

int af_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canon,
                            struct af_buf *out)
{
        uint8_t digest[AF_SHA256_LEN];
        char hex[2 * AF_SHA256_LEN + 1];

        if (!amz_date || !scope || !canon)
                return -EINVAL;
        af_sha256(canon, strlen(canon), digest);
        af_hex(digest, sizeof(digest), hex);
        /* af_buf_addf() appends all or nothing. */
        return af_buf_addf(out, "AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, hex);
}

/* kSecret ("AWS4" + secret) fits here for every real secret (AWS's are 40 characters). */
#define KSECRET_MAX 256

void af_sigv4_signing_key(const char *secret_key, const char *date, const char *region,
                          const char *service, uint8_t out[AF_SHA256_LEN])
{
        uint8_t k[AF_SHA256_LEN], k2[AF_SHA256_LEN];
        char ksecret[KSECRET_MAX];
        size_t n = strlen(secret_key);
        struct af_digest d;

        if (n <= sizeof(ksecret) - 4) {
                memcpy(ksecret, "AWS4", 4);
                memcpy(ksecret + 4, secret_key, n);
                af_hmac_sha256(ksecret, 4 + n, date, strlen(date), k);
        } else {
                /*
                 * A key longer than SHA-256's 64-byte block is replaced by its SHA-256
                 * (RFC 2104 section 2), so hashing "AWS4" + secret piecewise gives the same
                 * kDate as HMAC over the concatenation, without a heap copy of the secret.
                 * Like the one-shot digests, only OpenSSL's allocation can fail here.
                 */
                if (af_digest_init(&d, AF_DIGEST_SHA256) < 0)
                        abort();
                af_digest_update(&d, "AWS4", 4);
                af_digest_update(&d, secret_key, n);
                af_digest_final(&d, k2);
                af_hmac_sha256(k2, sizeof(k2), date, strlen(date), k);
        }
        /* [S3]: kDate, then kRegion, kService and the signing key, each keyed by the last. */
        af_hmac_sha256(k, sizeof(k), region, strlen(region), k2);
        af_hmac_sha256(k2, sizeof(k2), service, strlen(service), k);
        af_hmac_sha256(k, sizeof(k), "aws4_request", strlen("aws4_request"), out);
        explicit_bzero(ksecret, sizeof(ksecret));
        explicit_bzero(k, sizeof(k));
        explicit_bzero(k2, sizeof(k2));
}

/* The value of the only header named @name, or NULL when it is absent or repeated. */
static const char *find_header(const struct af_sigv4_req *req, const char *name)
{
        const char *v = NULL;
        size_t i;

        for (i = 0; i < req->nheaders; i++) {
                if (casecmp(req->headers[i].name, name) != 0)
                        continue;
                if (v)
                        return NULL;
                v = req->headers[i].value;
        }
        return v;
}

static bool header_is(const struct af_sigv4_req *req, const char *name, const char *want)
{
        const char *v = find_header(req, name);
        size_t n;

        if (!v)
                return false;
        v = trim_span(v, &n);
        return n == strlen(want) && memcmp(v, want, n) == 0;
}

/* Appends @src to @dst when @dst is not NULL. */
static int give(struct af_buf *dst, const struct af_buf *src)
{
        return dst ? af_buf_add(dst, af_buf_str(src), src->len) : 0;
}

int af_sigv4_sign(const struct af_sigv4_req *req, const char *access_key, const char *secret_key,
                  const char *region, const char *service, time_t now, struct af_buf *ret_auth,
                  struct af_buf *ret_canon, struct af_buf *ret_sts)
{
        struct af_buf canon, signed_headers, scope, sts, auth;
        size_t auth_start = ret_auth->len, canon_start = ret_canon ? ret_canon->len : 0;
        uint8_t key[AF_SHA256_LEN], sig[AF_SHA256_LEN];
        char amz_date[17], day[9], sig_hex[2 * AF_SHA256_LEN + 1];
        int r = -EINVAL;

        af_buf_init(&canon, AF_SIGV4_MAX);
        af_buf_init(&signed_headers, AF_SIGV4_MAX);
        af_buf_init(&scope, AF_SIGV4_MAX);
        af_buf_init(&sts, AF_SIGV4_MAX);
        af_buf_init(&auth, AF_SIGV4_MAX);
        af_sigv4_amz_date(now, amz_date);
        if (!*amz_date || !scope_part(access_key) || !secret_key || !scope_part(region) ||
            !scope_part(service) || !req->payload_hash)
                goto out;
        /*
         * [S3]: host and x-amz-content-sha256 must be signed, and S3 hashes the payload as the
         * x-amz-content-sha256 header says, so it must equal the hash we sign. The date in
         * the scope must be the date S3 reads from x-amz-date.
         */
        if (!find_header(req, "host") || !header_is(req, "x-amz-date", amz_date) ||
            !header_is(req, "x-amz-content-sha256", req->payload_hash))
                goto out;

        r = af_sigv4_canonical_request(req, &canon, &signed_headers);
        if (r < 0)
                goto out;
        memcpy(day, amz_date, 8);
        day[8] = '\0';
        r = af_buf_addf(&scope, "%s/%s/%s/aws4_request", day, region, service);
        if (r < 0)
                goto out;
        r = af_sigv4_string_to_sign(amz_date, af_buf_str(&scope), af_buf_str(&canon), &sts);
        if (r < 0)
                goto out;
        af_sigv4_signing_key(secret_key, day, region, service, key);
        af_hmac_sha256(key, sizeof(key), sts.ptr, sts.len, sig);
        af_hex(sig, sizeof(sig), sig_hex);
        r = af_buf_addf(&auth, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                        access_key, af_buf_str(&scope), af_buf_str(&signed_headers), sig_hex);
        if (r < 0)
                goto out;

        r = give(ret_auth, &auth);
        if (r == 0)
                r = give(ret_canon, &canon);
        if (r == 0)
                r = give(ret_sts, &sts);
        if (r < 0) {
                af_buf_truncate(ret_auth, auth_start);
                if (ret_canon)
                        af_buf_truncate(ret_canon, canon_start);
        }
out:
        explicit_bzero(key, sizeof(key));
        af_buf_done(&canon);
        af_buf_done(&signed_headers);
        af_buf_done(&scope);
        af_buf_done(&sts);
        af_buf_done(&auth);
        return r;
}
