/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file sigv4.h
 * AWS Signature Version 4 for S3 (header-based auth), stage by stage.
 *
 * Each stage is exposed so tests check each one (AWS "Create a signed AWS API request"):
 *   1. af_sigv4_canonical_request()  method, URI, query, headers, signed headers, payload hash
 *   2. af_sigv4_string_to_sign()     "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex(sha256(canon))>"
 *   3. af_sigv4_signing_key()        HMAC chain over date, region, service, "aws4_request"
 *   4. af_sigv4_sign()               all of the above, giving the Authorization header value
 *
 * S3 rules (differ from the generic AWS suite): the path is URI-encoded exactly once, by the
 * caller, with af_sigv4_uri_encode(..., encode_slash=false); it is never normalised ("." and
 * ".." and "//" are kept). Query names and values are encoded here and sorted by encoded name
 * (then value). Header names are lower-cased, values trimmed with inner runs of spaces
 * collapsed to one, headers sorted by name, and repeated names joined with ",".
 *
 * Pure functions: no I/O, no clock (the caller passes the time), thread-safe.
 * Errors: -ENOMEM / -E2BIG (a buffer cap), -EINVAL (missing method/uri, bad header name).
 *
 * Outputs: every function taking a struct af_buf appends to it, and on failure leaves it as
 * it was (truncated back to its length on entry).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/crypto.h"

/* Cap of af_sigv4_sign()'s scratch buffers: a canonical request is far below it. */
#define AF_SIGV4_MAX ((size_t)64 << 10)

struct af_sigv4_param {
        const char *name;  /* unencoded */
        const char *value; /* unencoded; NULL or "" for a value-less param ("?uploads") */
};

struct af_sigv4_header {
        const char *name; /* any case */
        const char *value;
};

struct af_sigv4_req {
        const char *method; /* "GET", "PUT", ... */
        const char *uri;    /* encoded path, "/bucket/my%20key"; "/" when empty */
        const struct af_sigv4_param *query;
        size_t nquery;
        /* Every header to sign: host, x-amz-date and x-amz-content-sha256 at least, plus
         * x-amz-security-token with temporary credentials. All given headers are signed. */
        const struct af_sigv4_header *headers;
        size_t nheaders;
        const char *payload_hash; /* lower-case hex SHA-256, or "UNSIGNED-PAYLOAD" */
};

/** 20130524T000000Z into @out (16 chars + NUL); "" when the year has not four digits. */
void af_sigv4_amz_date(time_t t, char out[17]);

/**
 * Appends the RFC 3986 encoding of @s[0..n) to @out: unreserved (A-Z a-z 0-9 - . _ ~) stay,
 * every other byte becomes %XX (upper-case hex); '/' stays unless @encode_slash.
 */
int af_sigv4_uri_encode(const char *s, size_t n, bool encode_slash, struct af_buf *out);

/**
 * The canonical query string: each name and value encoded (slash encoded too), sorted, joined
 * "a=1&b=&c=3". Also the query string to put in the URL, so both always agree.
 */
int af_sigv4_canonical_query(const struct af_sigv4_param *q, size_t n, struct af_buf *out);

/**
 * Stage 1. Also writes the signed-headers list ("host;x-amz-date") to @ret_signed.
 * -EINVAL: no method or not a token, no uri, @uri not exactly af_sigv4_uri_encode()'s output
 * (starts with "/", only unreserved, "/" and upper-case %XX of other bytes), a header name
 * not a token, a header value with a control character other than HTAB, no payload hash.
 */
int af_sigv4_canonical_request(const struct af_sigv4_req *req, struct af_buf *out,
                               struct af_buf *ret_signed);

/** Stage 2. @scope is "<yyyymmdd>/<region>/<service>/aws4_request". */
int af_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canon,
                            struct af_buf *out);

/** Stage 3. @date is "yyyymmdd". */
void af_sigv4_signing_key(const char *secret_key, const char *date, const char *region,
                          const char *service, uint8_t out[AF_SHA256_LEN]);

/**
 * Stage 4: the Authorization header value,
 * "AWS4-HMAC-SHA256 Credential=<ak>/<scope>, SignedHeaders=<list>, Signature=<hex>".
 * The request's x-amz-date header must equal af_sigv4_amz_date(@now), its
 * x-amz-content-sha256 header must equal payload_hash, and host must be present (each once,
 * compared after trimming); otherwise -EINVAL, as for an empty or "/"-holding access key,
 * region or service.
 * @ret_canon and @ret_sts, when not NULL, receive stages 1 and 2 (for tests and debug logs;
 * they contain no secret).
 */
int af_sigv4_sign(const struct af_sigv4_req *req, const char *access_key, const char *secret_key,
                  const char *region, const char *service, time_t now, struct af_buf *ret_auth,
                  struct af_buf *ret_canon, struct af_buf *ret_sts);
