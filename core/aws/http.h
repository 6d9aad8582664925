/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file http.h
 * One small HTTP request over libcurl, for the credential endpoints (STS, container
 * credentials, EC2 instance metadata). Not the S3 transport: that is s3_client.c, with its
 * own handle, signing and streaming bodies; the two share only the curl -> errno table.
 *
 * Each call uses its own easy handle, so it is safe from any thread. Redirects are never
 * followed (a metadata or STS endpoint has no business sending us elsewhere, and following
 * one would carry our headers to another host); only http and https are spoken; the response
 * body is capped; CURLOPT_NOSIGNAL is set so timeouts work in threads.
 *
 * Headers may carry secrets (an Authorization token, an IMDS session token): they are never
 * copied into @err, and nothing here logs.
 */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

struct af_http_req {
        const char *method;          /* "GET", "PUT" or "POST" */
        const char *url;
        const char *const *headers;  /* "Name: value" lines, NULL-terminated; may be NULL */
        const char *body;            /* request body; NULL for none */
        size_t body_len;
        long connect_timeout_ms;     /* 0: 5000 */
        long timeout_ms;             /* the whole request; 0: 10000 */
        size_t max_body;             /* longer responses fail with -EMSGSIZE; 0: 64 KiB */
        bool no_proxy;               /* link-local metadata services are never proxied */
};

/**
 * Performs @req. On success (any HTTP status, including 4xx and 5xx) returns 0, sets
 * @ret_status and replaces @ret_body's contents with the response body.
 *
 * Errors, with one phrase in @err ("connection refused", "cannot connect: No route to
 * host", curl's own message for the rest): -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH (no
 * route, or name not resolved), -ECONNRESET (the connection broke), -EPROTO (TLS or URL
 * problem), -EMSGSIZE (body over the cap), -ENOMEM.
 */
int af_http_request(const struct af_http_req *req, long *ret_status, struct af_buf *ret_body,
                    struct af_buf *err);

/**
 * The errno for a failed libcurl transfer, in one table for every curl user here:
 * -ECONNREFUSED (could not connect), -EHOSTUNREACH (name not resolved), -ETIMEDOUT,
 * -ENOMEM, -ECANCELED (a progress callback stopped it), -EIO (a read callback failed),
 * -EPROTO (TLS or URL problem), else -ECONNRESET (the connection broke). Pure.
 */
int af_http_curl_errno(CURLcode cc);
