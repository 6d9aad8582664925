/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The S3 transport: the client and its curl handle, one signed request sent and its answer
 * read (af_s3_perform), and the two retries that cure a request itself rather than the
 * server: new credentials after ExpiredToken, the server's clock after RequestTimeTooSkewed.
 * Retries of the operation (5xx, throttling, a broken connection) are the caller's: the
 * upload queue's backoff policy. Messages are built in s3_messages.c; see s3_int.h.
 *
 * Secrets: the credentials and the Authorization line live only for the signing and are
 * scrubbed as soon as curl's header list is built; nothing here logs them.
 */
#include "aws/s3_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/mem.h"
#include "aws/http.h"

/*
 * The seconds between our clock and S3's: requests are signed with our time plus this, so a
 * host whose clock is off still signs acceptably (S3 allows 15 minutes). Learned from the
 * Date header of a RequestTimeTooSkewed answer; shared by all clients.
 */
static atomic_long clock_offset;

/* ---- the client --------------------------------------------------------------------------- */

int af_s3_global_init(void)
{
        return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -ENOMEM;
}

int af_s3_client_new(const struct af_s3_config *cfg, struct af_creds_provider *creds,
                     struct af_s3_client **ret, struct af_buf *err)
{
        const char *ep = cfg->endpoint, *host, *end;
        struct af_s3_client *c;
        size_t hl;

        if (!ep || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)) {
                (void)af_buf_addf(err, "endpoint '%s' must start with http:// or https://",
                                  ep ? ep : "");
                return -EINVAL;
        }
        host = strstr(ep, "://") + 3;
        end = host + strcspn(host, "/?#");
        hl = (size_t)(end - host);
        /* Path-style requests go to /bucket/key; a base path would change what is signed. */
        if (hl == 0 || (*end && strcmp(end, "/") != 0)) {
                (void)af_buf_addf(err, "endpoint '%s' must be scheme://host[:port] with no path",
                                  ep);
                return -EINVAL;
        }
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->curl = curl_easy_init();
        c->scheme = strndup(ep, (size_t)(host - 3 - ep));
        c->host = strndup(host, hl);
        c->region = strdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
        c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
        c->creds = creds;
        c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
        c->low_speed_time_s = cfg->low_speed_time_s ? cfg->low_speed_time_s : 60;
        c->object = cfg->object;
        c->checksum = cfg->checksum;
        c->addressing = cfg->addressing;
        if (!c->curl || !c->scheme || !c->host || !c->region || (cfg->ca_file && !c->ca_file)) {
                af_s3_client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void af_s3_client_free(struct af_s3_client *c)
{
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        AF_FREE_ALL(c->scheme, c->host, c->region, c->ca_file);
        free(c);
}

void af_s3_client_set_file_meta(struct af_s3_client *c, const struct af_s3_kv *meta, size_t n)
{
        c->file_meta = meta;
        c->nfile_meta = n;
}

void af_s3_client_set_cancel(struct af_s3_client *c, const atomic_bool *flag)
{
        c->cancel = flag;
}

/* ---- the answer --------------------------------------------------------------------------- */

void af_s3_response_init(struct af_s3_response *resp, size_t cap)
{
        memset(resp, 0, sizeof(*resp));
        af_buf_init(&resp->body, cap ? cap : AF_S3_BODY_CAP + 1);
}

void af_s3_response_done(struct af_s3_response *resp)
{
        af_buf_done(&resp->body);
}

static void copy_trimmed(char *dst, size_t n, const char *src, size_t len)
{
        while (len && (*src == ' ' || *src == '\t')) {
                src++;
                len--;
        }
        while (len && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
                len--;
        if (len >= n)
                len = n - 1;
        memcpy(dst, src, len);
        dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
        struct af_s3_response *resp = userp;
        size_t len = size * nmemb;
        const char *colon = memchr(data, ':', len);
        size_t nl;

        if (!colon)
                return len;
        nl = (size_t)(colon - data);
        colon++;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(data, name, nl) == 0)
        if (IS("x-amz-request-id"))
                copy_trimmed(resp->request_id, sizeof(resp->request_id), colon,
                             len - nl - 1);
        else if (IS("etag"))
                copy_trimmed(resp->etag, sizeof(resp->etag), colon, len - nl - 1);
        else if (IS("x-amz-version-id"))
                copy_trimmed(resp->version_id, sizeof(resp->version_id), colon, len - nl - 1);
        else if (IS("x-amz-checksum-crc32c"))
                copy_trimmed(resp->crc32c, sizeof(resp->crc32c), colon, len - nl - 1);
        else if (IS("date"))
                copy_trimmed(resp->date, sizeof(resp->date), colon, len - nl - 1);
        else if (IS("content-length")) {
                char v[32];

                copy_trimmed(v, sizeof(v), colon, len - nl - 1);
                resp->content_length = strtoull(v, NULL, 10);
        }
#undef IS
        return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
        struct af_s3_response *resp = userp;
        size_t len = size * nmemb;

        /* Keep the start of a long body; an error document fits well within the cap. */
        size_t cap = resp->body.cap - 1;

        if (resp->body.len < cap)
                (void)af_buf_add(&resp->body, data,
                                 len < cap - resp->body.len ? len : cap - resp->body.len);
        return len;
}

/* Stops a transfer when the owner says so (shutdown past the drain timeout). */
static int on_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        const struct af_s3_client *c = userp;

        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        return atomic_load(c->cancel) ? 1 : 0;
}

void af_s3_read_error(struct af_s3_error *err, int r)
{
        snprintf(err->code, sizeof(err->code), "ReadError");
        snprintf(err->message, sizeof(err->message), "reading the spool file: %s", strerror(-r));
}

/* ---- one request -------------------------------------------------------------------------- */

#define EXPECT_MIN_BODY ((uint64_t)1 << 20)

/* Appends @line to *list; the list stays whole when that fails. */
static int append(struct curl_slist **list, const char *line)
{
        struct curl_slist *l = curl_slist_append(*list, line);

        if (!l)
                return -ENOMEM;
        *list = l;
        return 0;
}

/* The lines curl sends: the signed headers, Authorization, and no Content-Type of curl's. */
static int header_lines(const struct af_sigv4_header *hdrs, size_t nh, struct af_buf *auth,
                        const struct af_s3_request *rq, struct curl_slist **list)
{
        struct af_buf line;
        bool have_ct = false;
        int r = 0;

        af_buf_init(&line, 0);
        for (size_t i = 0; r == 0 && i < nh; i++) {
                af_buf_reset(&line);
                r = af_buf_addf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
                if (r == 0)
                        r = append(list, af_buf_str(&line));
        }
        af_buf_reset(&line);
        if (r == 0)
                r = af_buf_addf(&line, "Authorization: %s", af_buf_str(auth));
        if (r == 0)
                r = append(list, af_buf_str(&line));
        /* Without a Content-Type of ours, make curl send none (it adds one to POSTs). */
        for (size_t i = 0; i < rq->nextra; i++)
                have_ct = have_ct || strcasecmp(rq->extra[i].name, "content-type") == 0;
        if (r == 0 && !have_ct)
                r = append(list, "Content-Type:");
        /* curl asks "Expect: 100-continue" before every PUT body: a round trip that saves
         * sending a refused body, worth it for a large one only (curl's own rule for POST). */
        if (r == 0 && rq->body && rq->body->size < EXPECT_MIN_BODY)
                r = append(list, "Expect:");
        if (line.ptr)
                explicit_bzero(line.ptr, line.alloc);
        af_buf_done(&line);
        return r;
}

/* Credentials, then the signature over @t's headers: the header lines of the request. */
static int sign(struct af_s3_client *c, const struct af_s3_request *rq,
                const struct af_s3_target *t, struct curl_slist **list, struct af_s3_error *err)
{
        struct af_sigv4_header hdrs[4 + AF_S3_MAX_EXTRA];
        const char *payload_hash = rq->payload_hash ? rq->payload_hash : af_s3_empty_sha256;
        struct af_sigv4_req sreq;
        struct af_creds creds;
        struct af_buf auth;
        char amz_date[17];
        size_t nh;
        time_t now;
        int r;

        af_buf_init(&auth, 0);
        r = af_creds_get(c->creds, &creds);
        if (r < 0) {
                snprintf(err->code, sizeof(err->code), "NoCredentials");
                snprintf(err->message, sizeof(err->message), "no AWS credentials available");
                goto out;
        }
        now = time(NULL) + atomic_load(&clock_offset);
        af_sigv4_amz_date(now, amz_date);
        nh = af_s3_signed_headers(af_buf_str(&t->host), amz_date, payload_hash,
                                  creds.session_token, rq->extra, rq->nextra, hdrs);
        sreq = (struct af_sigv4_req){ .method = rq->method,
                                      .uri = af_buf_str(&t->uri),
                                      .query = rq->query,
                                      .nquery = rq->nquery,
                                      .headers = hdrs,
                                      .nheaders = nh,
                                      .payload_hash = payload_hash };
        r = af_sigv4_sign(&sreq, creds.access_key, creds.secret_key, c->region, "s3", now, &auth,
                          NULL, NULL);
        c->last_serial = creds.serial;
        /* hdrs[] points into creds (the session token) until the lines are built. */
        if (r == 0)
                r = header_lines(hdrs, nh, &auth, rq, list);
out:
        explicit_bzero(&creds, sizeof(creds));
        if (auth.ptr)
                explicit_bzero(auth.ptr, auth.len);
        af_buf_done(&auth);
        return r;
}

/* The client's handle set up for @rq (curl_easy_reset keeps the connection cache). */
static void setup(struct af_s3_client *c, const struct af_s3_request *rq, const char *url,
                  struct curl_slist *list, char *curl_err, struct af_s3_response *resp)
{
        CURL *h = c->curl;

        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
        if (c->cancel) {
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        }
        if (c->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (strcmp(rq->method, "HEAD") == 0) {
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (strcmp(rq->method, "PUT") == 0) {
                curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
                curl_easy_setopt(h, CURLOPT_READFUNCTION, af_s3_body_read);
                curl_easy_setopt(h, CURLOPT_READDATA, rq->body);
                curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, af_s3_body_seek);
                curl_easy_setopt(h, CURLOPT_SEEKDATA, rq->body);
                curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                                 (curl_off_t)(rq->body ? rq->body->size : 0));
        } else if (strcmp(rq->method, "POST") == 0) {
                curl_easy_setopt(h, CURLOPT_POST, 1L);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->mem_body ? rq->mem_body : "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->mem_len);
        } else if (strcmp(rq->method, "GET") != 0) {
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
        }
}

/* What a finished transfer means: 0 for a 2xx, else an errno with @err filled. */
static int outcome(const struct af_s3_client *c, const struct af_s3_request *rq, CURLcode cc,
                   const char *curl_err, struct af_s3_response *resp, struct af_s3_error *err)
{
        if (cc != CURLE_OK && rq->body && rq->body->read_errno) {
                snprintf(err->code, sizeof(err->code), "ReadError");
                snprintf(err->message, sizeof(err->message), "reading the spool file: %s",
                         strerror(rq->body->read_errno));
                return rq->body->read_errno == ESTALE ? -ESTALE : -rq->body->read_errno;
        }
        if (cc != CURLE_OK) {
                snprintf(err->code, sizeof(err->code), "%s", curl_easy_strerror(cc));
                snprintf(err->message, sizeof(err->message), "%s%s%s", c->host,
                         curl_err[0] ? ": " : "", curl_err);
                return af_http_curl_errno(cc);
        }
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
        af_log_debug("op=s3 method=%s bucket=%s key=%s status=%ld request_id=%s", rq->method,
                     af_q(rq->bucket), af_q(rq->key ? rq->key : ""), resp->status,
                     af_q(resp->request_id));
        if (resp->status >= 200 && resp->status <= 299)
                return 0;
        af_s3_fill_error(err, resp->status, af_buf_str(&resp->body), resp->body.len,
                         resp->request_id);
        return af_s3_errno(resp->status, err->code);
}

static int perform_once(struct af_s3_client *c, const struct af_s3_request *rq,
                        struct af_s3_response *resp, struct af_s3_error *err)
{
        char curl_err[CURL_ERROR_SIZE] = "";
        struct curl_slist *list = NULL;
        struct af_s3_target t;
        CURLcode cc;
        int r;

        memset(err, 0, sizeof(*err));
        af_s3_target_init(&t);
        r = af_s3_target_build(c, rq->bucket, rq->key, rq->query, rq->nquery, &t);
        if (r == 0)
                r = sign(c, rq, &t, &list, err);
        if (r < 0)
                goto out;
        setup(c, rq, af_buf_str(&t.url), list, curl_err, resp);
        cc = curl_easy_perform(c->curl);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
        r = outcome(c, rq, cc, curl_err, resp, err);
out:
        curl_slist_free_all(list);
        af_s3_target_done(&t);
        return r;
}

/* ---- the retries that cure the request ---------------------------------------------------- */

/* "Sat, 28 Nov 2026 04:46:30 GMT" (RFC 7231 IMF-fixdate) -> time_t; -1 if not that. */
static time_t http_date(const char *s)
{
        struct tm tm;
        const char *end;

        memset(&tm, 0, sizeof(tm));
        end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        return end && !*end ? timegm(&tm) : (time_t)-1;
}

/* Makes @rq and @resp ready to be sent again. */
static void rewind_request(const struct af_s3_request *rq, struct af_s3_response *resp)
{
        if (rq->body) {
                rq->body->off = 0;
                rq->body->read_errno = 0;
        }
        af_buf_reset(&resp->body);
        resp->status = 0;
}

int af_s3_perform(struct af_s3_client *c, const struct af_s3_request *rq,
                  struct af_s3_response *resp, struct af_s3_error *err)
{
        int r = perform_once(c, rq, resp, err);
        time_t server, ours;

        if (r == -EKEYEXPIRED) {
                /* ExpiredToken: these credentials are spent; fetch new ones and sign again. */
                af_creds_invalidate(c->creds, c->last_serial);
                af_log_debug("op=s3 msg=\"credentials expired; refreshed\"");
                rewind_request(rq, resp);
                return perform_once(c, rq, resp, err);
        }
        if (r != -ETIME && r != -EACCES)
                return r;
        /* RequestTimeTooSkewed (or a bodiless 403 to a HEAD from a server whose clock is far
         * from ours): adopt the server's clock and sign again, once. */
        server = http_date(resp->date);
        if (server == (time_t)-1)
                return r;
        ours = time(NULL) + atomic_load(&clock_offset);
        if (r == -EACCES && (server - ours < 600 && ours - server < 600))
                return r;
        atomic_store(&clock_offset, (long)(server - time(NULL)));
        af_log_debug("op=s3 msg=\"clock skew corrected\" offset_s=%ld",
                     (long)atomic_load(&clock_offset));
        rewind_request(rq, resp);
        return perform_once(c, rq, resp, err);
}

long af_s3_clock_offset(void)
{
        return atomic_load(&clock_offset);
}

int af_s3_send(struct af_s3_client *c, const struct af_s3_request *rq, struct af_s3_error *err)
{
        struct af_s3_response resp;
        int r;

        af_s3_response_init(&resp, 0);
        r = af_s3_perform(c, rq, &resp, err);
        af_s3_response_done(&resp);
        return r;
}
