/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The commands that need no mount: keys (where each path would go, computed by the router
 * the mount uses), flush (asks a mount over its control socket), drain (uploads what a
 * spool's journal holds) and status (what the journal and the spool hold).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "argo/argovars.h"
#include "base/log.h"
#include "cli.h"
#include "upload/journal.h"

/* ---- artifuse keys ---------------------------------------------------------------------- */

/* No paths: every declared artifact, where it goes and how. */
static void list_artifacts(const struct af_router *rt, struct af_route *route)
{
        if (rt->narts == 0)
                printf("(no declared artifacts: every file goes to s3://%s/%s/<path>)\n",
                       rt->bucket, rt->prefix);
        for (size_t i = 0; i < rt->narts; i++) {
                const struct af_route_artifact *a = &rt->arts[i];
                int r;

                if (a->other_location) { /* Argo's other driver saves it */
                        printf("%s\t%s\t(not uploaded: %s location)\n", a->name, a->path,
                               a->other_location);
                        continue;
                }
                if (!a->rel) {
                        printf("%s\t%s\t(outside %s)\n", a->name, a->path, rt->mount_as);
                        continue;
                }
                r = af_router_route_artifact(rt, a, a->rel, route);
                if (r > 0)
                        printf("%s\t%s\ts3://%s/%s\t%s%s\n", a->name, a->path, route->bucket,
                               af_buf_str(&route->key), af_archive_name(a->archive),
                               a->optional ? "\toptional" : "");
                else
                        printf("%s\t%s\t(error: %s)\n", a->name, a->path, strerror(-r));
        }
}

/* Where @arg goes by @route (@r: what the router said). */
static void print_route(const char *arg, int r, const struct af_route *route)
{
        const char *name = route->artifact ? route->artifact->name : NULL;

        if (r > 0 && route->deferred)
                printf("%s\ts3://%s/%s\t(inside the %s archive of its directory, "
                       "uploaded when the directory is complete)\n",
                       arg, route->bucket, af_buf_str(&route->key),
                       af_archive_name(route->archive));
        else if (r > 0)
                printf("%s\ts3://%s/%s\n", arg, route->bucket, af_buf_str(&route->key));
        else if (r == 0 && route->artifact && route->artifact->other_location)
                printf("%s\t(not uploaded: %s location of artifact '%s')\n", arg,
                       route->artifact->other_location, name);
        else if (r == 0)
                printf("%s\t(not uploaded: not a declared artifact)\n", arg);
        else
                printf("%s\t(error: %s)\n", arg, strerror(-r));
}

/* PATH's lines; returns AF_EXIT_CONFIG when the router fails on it. */
static int print_key(const struct af_router *rt, const char *arg, struct af_route *route)
{
        const char *p = arg, *as = rt->mount_as;
        size_t al = strlen(as);
        int r;

        /* Absolute paths are taken relative to --as, as the mount would see them. */
        if (p[0] == '/') {
                if (strcmp(as, "/") == 0) {
                        p++;
                } else if (strncmp(p, as, al) == 0 && (p[al] == '/' || !p[al])) {
                        p += al + (p[al] == '/');
                } else {
                        printf("%s\t(outside %s: not in the mount)\n", arg, as);
                        return 0;
                }
        }
        /* One line per artifact that declares the path (Argo saves each), the first always. */
        for (size_t n = 0; (r = af_router_route_nth(rt, p, n, route)) != -ESRCH; n++) {
                print_route(arg, r, route);
                if (r < 0)
                        break;
        }
        if (r == -ESRCH)
                r = 0;
        return r < 0 ? AF_EXIT_CONFIG : 0;
}

int af_cmd_keys(struct af_opts *o, int argc, char **argv)
{
        struct af_route route = { 0 };
        struct af_setup s;
        int r, status = 0;

        r = af_setup_init(o, "/", false, &s);
        if (r)
                return r;
        af_buf_init(&route.key, 0);
        if (optind >= argc)
                list_artifacts(&s.router, &route);
        for (int i = optind; i < argc; i++)
                if (print_key(&s.router, argv[i], &route))
                        status = AF_EXIT_CONFIG;
        af_buf_done(&route.key);
        af_setup_done(&s);
        return status;
}

/* ---- artifuse flush --------------------------------------------------------------------- */

int af_cmd_flush(struct af_opts *o, int argc, char **argv)
{
        (void)o;
        if (optind != argc - 1)
                return af_cli_die("flush: give the mount point: artifuse flush MOUNTPOINT");
        return af_control_flush(argv[optind]);
}

/* ---- artifuse drain and status: the journal without a mount -------------------------- */

struct first_rec {
        char endpoint[512];
        char region[64];
};

static void take_first(void *ctx, struct af_journal_rec *rec)
{
        struct first_rec *f = ctx;

        if (!f->endpoint[0] && rec->endpoint)
                snprintf(f->endpoint, sizeof(f->endpoint), "%s", rec->endpoint);
        if (!f->region[0] && rec->region)
                snprintf(f->region, sizeof(f->region), "%s", rec->region);
}

int af_cmd_drain(struct af_opts *o, int argc, char **argv)
{
        struct af_spooldir sp = AF_SPOOLDIR_INIT;
        struct af_creds_provider creds;
        struct af_queue_config qc = { 0 };
        struct af_s3_config s3c = { 0 };
        struct af_queue *queue = NULL;
        struct af_remote *remote = NULL;
        struct af_queue_stats stats;
        struct first_rec first = { "", "" };
        char endpoint_buf[512];
        struct af_buf err;
        bool have_creds = false;
        int r, n, status = 0;
        time_t t0 = time(NULL);

        af_buf_init(&err, 4096);
        if (optind != argc) {
                r = af_cli_die("drain: unexpected argument '%s' (artifuse drain --spool DIR)",
                               argv[optind]);
                goto out;
        }
        if (!o->spool) {
                r = af_cli_die("drain: give the spool: artifuse drain --spool DIR");
                goto out;
        }
        r = af_spooldir_open(o->spool, false, true, &sp);
        if (r)
                goto out;
        /* Where to send: the flags, else what the records say, else the AWS environment. */
        (void)af_journal_scan(sp.journal_fd, false, take_first, NULL, &first);
        r = af_creds_provider_init(&creds, NULL, &err);
        if (r < 0) {
                r = af_cli_die("%s", af_buf_str(&err));
                goto out;
        }
        have_creds = true;
        af_setup_log_credentials(&creds);
        af_setup_s3_config(o, first.region, first.endpoint, endpoint_buf, sizeof(endpoint_buf),
                           &s3c);
        if (af_s3_global_init() < 0) {
                r = af_cli_die("cannot initialise libcurl");
                goto out;
        }
        af_setup_queue_config(o, sp.files_fd, sp.journal_fd, &s3c, &creds, &qc);
        /* What the drain puts in S3 joins the spool's registry of uploads, so that a later
         * mount on the spool renames it with a copy and --delete-on-unlink finds it. */
        if (af_remote_new(&(struct af_remote_config){ .spool_fd = sp.files_fd, .persist = true,
                                                      .log_dirfd = sp.journal_fd },
                          &remote) == 0) {
                qc.on_uploaded = af_remote_on_uploaded;
                qc.on_gone = af_remote_on_gone; /* no --delete-on-unlink here: nothing */
                qc.on_uploaded_ctx = remote;
        }
        r = af_queue_new(&qc, &queue, &err);
        if (r < 0) {
                r = af_cli_die("%s", af_buf_str(&err));
                goto out;
        }
        n = af_queue_resume(queue);
        af_log_info("op=drain spool=%s endpoint=%s files=%d", af_q(sp.root), af_q(s3c.endpoint),
                    n < 0 ? 0 : n);
        if (af_queue_drain(queue, o->drain_timeout_ms) < 0)
                af_log_error("op=drain msg=\"drain timeout passed; what is left stays journaled\"");
        af_queue_get_stats(queue, &stats);
        af_queue_foreach_problem(queue, af_cli_not_in_s3, NULL);
        fprintf(stderr, "artifuse: drain: %llu files (%llu bytes) uploaded in %llds, %llu failed, "
                        "%llu left\n",
                (unsigned long long)stats.uploaded_files, (unsigned long long)stats.uploaded_bytes,
                (long long)(time(NULL) - t0), (unsigned long long)stats.failed_files,
                (unsigned long long)stats.pending_files);
        status = stats.failed_files || stats.pending_files || n < 0 ? AF_EXIT_UPLOADS : 0;
        r = 0;
out:
        af_queue_free(queue);
        af_remote_free(remote); /* after the queue: its workers call into it */
        if (have_creds)
                af_creds_provider_done(&creds);
        af_spooldir_close(&sp);
        af_buf_done(&err);
        return r ? r : status;
}

struct status_ctx {
        int files_fd;
        uint64_t n[2], bytes[2], uploading;
        bool json;
        struct af_buf failed; /* the failed files' lines (text) or objects (json) */
        unsigned corrupt;
        uint64_t deletes; /* --delete-on-unlink deletes not done yet: no output is missing */
        uint64_t aborts;  /* multipart uploads nothing will complete, still to abort */
        uint64_t done_files, done_bytes; /* the journal's count of finished uploads */
        uint64_t held_files, held_bytes; /* what the spool's files hold (--spool-limit) */
};

static void status_one(void *arg, struct af_journal_rec *rec)
{
        struct status_ctx *c = arg;
        struct stat st;
        uint64_t size = fstatat(c->files_fd, rec->path, &st, AT_SYMLINK_NOFOLLOW) == 0
                                ? (uint64_t)st.st_size
                                : 0;

        if (rec->op == AF_JOURNAL_DELETE) {
                c->deletes++;
                return;
        }
        if (rec->op == AF_JOURNAL_ABORT) {
                c->aborts++;
                return;
        }
        c->n[rec->state]++;
        c->bytes[rec->state] += size;
        if (rec->upload_id && rec->state == AF_JOURNAL_PENDING)
                c->uploading++;
        if (rec->state != AF_JOURNAL_FAILED)
                return;
        if (c->json) {
                (void)af_buf_adds(&c->failed, c->failed.len ? ",{\"path\":" : "{\"path\":");
                (void)af_json_quote(&c->failed, rec->path);
                (void)af_buf_adds(&c->failed, ",\"bucket\":");
                (void)af_json_quote(&c->failed, rec->bucket);
                (void)af_buf_adds(&c->failed, ",\"key\":");
                (void)af_json_quote(&c->failed, rec->key);
                (void)af_buf_addf(&c->failed, ",\"bytes\":%llu,\"error\":",
                                  (unsigned long long)size);
                (void)af_json_quote(&c->failed, rec->error ? rec->error : "");
                (void)af_buf_addc(&c->failed, '}');
        } else {
                (void)af_buf_addf(&c->failed, "  failed: %s -> s3://%s/%s: %s\n", rec->path,
                                  rec->bucket, rec->key, rec->error ? rec->error : "?");
        }
}

static void status_bad(void *arg, const char *name, const char *why)
{
        struct status_ctx *c = arg;

        c->corrupt++;
        if (!c->json)
                fprintf(stderr, "artifuse: status: corrupt journal record %s: %s\n", name, why);
}

static void print_json(const struct status_ctx *c, const char *root)
{
        struct af_buf q;

        af_buf_init(&q, 0);
        (void)af_json_quote(&q, root);
        printf("{\"spool\":%s,\"pending\":{\"files\":%llu,\"bytes\":%llu},"
               "\"uploading\":{\"files\":%llu},"
               "\"done\":{\"files\":%llu,\"bytes\":%llu},"
               "\"failed\":{\"files\":%llu,\"bytes\":%llu,\"list\":[%s]},"
               "\"corrupt_records\":%u,\"deletes_pending\":%llu,\"aborts_pending\":%llu,"
               "\"held\":{\"files\":%llu,\"bytes\":%llu}}\n",
               af_buf_str(&q), (unsigned long long)c->n[0], (unsigned long long)c->bytes[0],
               (unsigned long long)c->uploading, (unsigned long long)c->done_files,
               (unsigned long long)c->done_bytes, (unsigned long long)c->n[1],
               (unsigned long long)c->bytes[1], af_buf_str(&c->failed), c->corrupt,
               (unsigned long long)c->deletes, (unsigned long long)c->aborts,
               (unsigned long long)c->held_files,
               (unsigned long long)c->held_bytes);
        af_buf_done(&q);
}

static void print_text(const struct status_ctx *c, const char *root)
{
        printf("spool %s\n  pending:   %llu files, %llu bytes (%llu in a multipart upload "
               "in progress)\n  done:      %llu files, %llu bytes\n"
               "  failed:    %llu files, %llu bytes\n%s",
               root, (unsigned long long)c->n[0], (unsigned long long)c->bytes[0],
               (unsigned long long)c->uploading, (unsigned long long)c->done_files,
               (unsigned long long)c->done_bytes, (unsigned long long)c->n[1],
               (unsigned long long)c->bytes[1], af_buf_str(&c->failed));
        printf("  held:      %llu files, %llu bytes in the spool (in S3 or not; "
               "what --spool-limit counts)\n",
               (unsigned long long)c->held_files, (unsigned long long)c->held_bytes);
        if (c->deletes)
                printf("  deletes:   %llu objects of unlinked names still to delete "
                       "(--delete-on-unlink)\n",
                       (unsigned long long)c->deletes);
        if (c->aborts)
                printf("  aborts:    %llu multipart uploads nothing will complete, still to "
                       "abort\n",
                       (unsigned long long)c->aborts);
}

int af_cmd_status(struct af_opts *o, int argc, char **argv)
{
        struct af_spooldir sp = AF_SPOOLDIR_INIT;
        struct status_ctx c = { .json = o->json };
        int r;

        if (optind != argc)
                return af_cli_die("status: unexpected argument '%s' (artifuse status "
                                  "--spool DIR)",
                                  argv[optind]);
        if (!o->spool)
                return af_cli_die("status: give the spool: artifuse status --spool DIR");
        r = af_spooldir_open(o->spool, false, false, &sp);
        if (r)
                return r;
        c.files_fd = sp.files_fd;
        af_buf_init(&c.failed, (size_t)64 << 20);
        r = af_journal_scan(sp.journal_fd, false, status_one, status_bad, &c);
        (void)af_journal_done_count(sp.journal_fd, &c.done_files, &c.done_bytes);
        (void)af_space_scan(sp.files_fd, &c.held_files, &c.held_bytes);
        if (r < 0) {
                r = af_cli_die("spool %s: cannot read the journal: %s", sp.root, strerror(-r));
        } else {
                (c.json ? print_json : print_text)(&c, sp.root);
                r = 0;
        }
        af_buf_done(&c.failed);
        af_spooldir_close(&sp);
        /* 0: everything is in S3; 3: something is not (yet). */
        return r ? r : (c.n[0] || c.n[1] || c.corrupt ? AF_EXIT_UPLOADS : 0);
}
