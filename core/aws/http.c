/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One small HTTP request over libcurl; see http.h. The body is collected into a capped
 * buffer and handed over only when the transfer completed, so callers never see half a
 * response.
 */
#include "aws/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_TIMEOUT_MS 10000L
#define DEFAULT_MAX_BODY ((size_t)64 * 1024)

struct sink {
        struct af_buf body;
        bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct sink *s = userp;
        size_t len = size * nmemb;
        int r = af_buf_add(&s->body, data, len);

        if (r == -E2BIG)
                s->too_big = true;
        /* Returning less than @len makes curl stop with CURLE_WRITE_ERROR. */
        return r < 0 ? 0 : len;
}

/*
 * The errno for a failed transfer, and one phrase for @err. For a failed connect the
 * system's errno says more than curl's code: "connection refused" (nothing listens) is not
 * "no route to host" (no such network here, as for IMDS off EC2).
 */
static int transfer_error(CURLcode cc, long os_errno, const char *errbuf, struct af_buf *err)
{
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                if (os_errno == ECONNREFUSED || os_errno == 0) {
                        (void)af_buf_adds(err, "connection refused");
                        return -ECONNREFUSED;
                }
                (void)af_buf_addf(err, "cannot connect: %s", strerror((int)os_errno));
                return os_errno == ETIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                (void)af_buf_adds(err, "host name not resolved");
                return -EHOSTUNREACH;
        case CURLE_OUT_OF_MEMORY:
                (void)af_buf_adds(err, "out of memory");
                return -ENOMEM;
        default:
                break;
        }
        /* curl's error buffer names hosts, ports and timings, never our headers or body. */
        (void)af_buf_adds(err, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return af_http_curl_errno(cc);
}

/*
 * The one curl -> errno table (the S3 client uses it too). Retryable transport failures keep
 * distinct codes so a log says what happened; af_s3_retryable() groups them.
 */
int af_http_curl_errno(CURLcode cc)
{
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_ABORTED_BY_CALLBACK: /* a progress callback said stop (shutdown) */
                return -ECANCELED;
        case CURLE_READ_ERROR: /* a read callback failed: the body's source, not the wire */
                return -EIO;
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
                return -EPROTO;
        default:
                /* resets, partial transfers, send/recv errors: the connection broke */
                return -ECONNRESET;
        }
}

/* @req's header lines, and no "Expect: 100-continue" round trip for a 2 KiB STS form. */
static int header_list(const struct af_http_req *req, struct curl_slist **ret)
{
        struct curl_slist *hdrs = NULL, *h;

        for (size_t i = 0; req->headers && req->headers[i]; i++) {
                h = curl_slist_append(hdrs, req->headers[i]);
                if (!h)
                        goto fail;
                hdrs = h;
        }
        h = curl_slist_append(hdrs, "Expect:");
        if (!h)
                goto fail;
        *ret = h;
        return 0;
fail:
        curl_slist_free_all(hdrs);
        return -ENOMEM;
}

/* The handle set up for @req: its URL (http or https only), limits, headers and body. */
static int setup(CURL *curl, const struct af_http_req *req, struct curl_slist *hdrs,
                 char *errbuf, struct sink *sink, struct af_buf *err)
{
        long connect_ms = req->connect_timeout_ms ? req->connect_timeout_ms : DEFAULT_CONNECT_MS;
        long timeout_ms = req->timeout_ms ? req->timeout_ms : DEFAULT_TIMEOUT_MS;
        CURLcode cc = curl_easy_setopt(curl, CURLOPT_URL, req->url);

#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        if (cc == CURLE_OK)
                cc = curl_easy_setopt(curl, CURLOPT_PROTOCOLS,
                                      (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        if (cc != CURLE_OK) {
                (void)af_buf_addf(err, "bad URL: %s", curl_easy_strerror(cc));
                return -EPROTO;
        }
        (void)curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        (void)curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
        (void)curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        (void)curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        (void)curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        (void)curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
        (void)curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        (void)curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
        if (req->no_proxy)
                (void)curl_easy_setopt(curl, CURLOPT_PROXY, "");
        if (strcmp(req->method, "GET") == 0) {
                (void)curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        } else {
                /* POSTFIELDS sends Content-Length even for an empty body (IMDS's token PUT). */
                (void)curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
                (void)curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body ? req->body : "");
                if (strcmp(req->method, "POST") != 0)
                        (void)curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
        }
        return 0;
}

int af_http_request(const struct af_http_req *req, long *ret_status, struct af_buf *ret_body,
                    struct af_buf *err)
{
        char errbuf[CURL_ERROR_SIZE];
        struct curl_slist *hdrs = NULL;
        struct sink sink = { .too_big = false };
        long status = 0;
        CURLcode cc;
        CURL *curl;
        int r;

        af_buf_init(&sink.body, req->max_body ? req->max_body : DEFAULT_MAX_BODY);
        errbuf[0] = '\0';
        curl = curl_easy_init();
        r = curl ? header_list(req, &hdrs) : -ENOMEM;
        if (r == 0)
                r = setup(curl, req, hdrs, errbuf, &sink, err);
        if (r < 0)
                goto out;
        cc = curl_easy_perform(curl);
        if (cc != CURLE_OK) {
                if (sink.too_big) {
                        (void)af_buf_addf(err, "response longer than %zu bytes", sink.body.cap);
                        r = -EMSGSIZE;
                } else {
                        long os_errno = 0;

                        (void)curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
                        r = transfer_error(cc, os_errno, errbuf, err);
                }
                goto out;
        }
        (void)curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        /* Hand the body over whole: swap, so @ret_body's old contents are freed below. */
        {
                struct af_buf old = *ret_body;

                *ret_body = sink.body;
                sink.body = old;
        }
        *ret_status = status;
        r = 0;
out:
        curl_slist_free_all(hdrs);
        if (curl)
                curl_easy_cleanup(curl);
        /* Responses can hold credentials: scrub before freeing. */
        if (sink.body.ptr)
                explicit_bzero(sink.body.ptr, sink.body.alloc);
        af_buf_done(&sink.body);
        return r;
}
