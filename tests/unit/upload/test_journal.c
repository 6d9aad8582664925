/* SPDX-License-Identifier: Apache-2.0 */
/* Journal records: encode/decode round trips, a stream's record (its flag and each part's
 * CRC-32C), and what older or damaged records decode to. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "upload/journal.h"
#include "test.h"

static struct af_s3_part part(unsigned n, const char *etag, bool has_sum, uint32_t sum)
{
        struct af_s3_part p = { .number = n, .sum = sum, .has_sum = has_sum };

        snprintf(p.etag, sizeof(p.etag), "%s", etag);
        return p;
}

static int decode(const struct af_buf *b, struct af_journal_rec *out)
{
        struct af_buf err;
        int r;

        af_buf_init(&err, 512);
        r = af_journal_decode(b->ptr, b->len, out, &err);
        if (r < 0)
                fprintf(stderr, "    decode: %s\n", af_buf_str(&err));
        af_buf_done(&err);
        return r;
}

/* The exact bytes of a record: its fields in the order records have always had them. */
static void test_encode_exact(void)
{
        char path[] = "p", bucket[] = "b", key[] = "k", endpoint[] = "e", region[] = "r",
             member[] = "m", error[] = "x y", etag[] = "\"t\"";
        struct af_journal_rec rec = { .path = path, .bucket = bucket, .key = key,
                                      .endpoint = endpoint, .region = region,
                                      .archive = AF_ARCHIVE_TAR, .member = member, .level = 6,
                                      .size = 3, .mtime_ns = 4, .updated = 5, .error = error,
                                      .etag = etag };
        struct af_buf b;

        af_buf_init(&b, AF_JOURNAL_MAX);
        CHECK_INT_EQ(af_journal_encode(&rec, &b), 0);
        CHECK_STR_EQ(af_buf_str(&b), "artifuse-journal 1\npath p\nbucket b\nkey k\nendpoint e\n"
                                     "region r\narchive tar\nmember m\nlevel 6\n"
                                     "state pending\nsize 3\nmtime 4\nupdated 5\n"
                                     "error x%20y\netag %22t%22\nend\n");
        af_buf_reset(&b);
        rec = (struct af_journal_rec){ .op = AF_JOURNAL_DELETE, .bucket = bucket, .key = key,
                                       .archive = AF_ARCHIVE_NONE,
                                       .level = -1, .state = AF_JOURNAL_FAILED };
        CHECK_INT_EQ(af_journal_encode(&rec, &b), 0);
        CHECK_STR_EQ(af_buf_str(&b), "artifuse-journal 1\nop delete\nbucket b\nkey k\n"
                                     "archive none\nlevel -1\nstate failed\nsize 0\nmtime 0\n"
                                     "updated 0\nend\n");
        af_buf_done(&b);
}

static void test_stream_record_round_trip(void)
{
        struct af_s3_part parts[3] = { part(1, "\"e1\"", true, 0x1a2b3c4d),
                                       part(2, "\"e2\"", true, 0),
                                       part(3, "\"e3\"", false, 0) };
        char path[] = "out/big.bin", bucket[] = "b", key[] = "k/big.bin", id[] = "up id%1";
        struct af_journal_rec rec = { .path = path, .bucket = bucket, .key = key,
                                      .upload_id = id, .part_size = 5 << 20,
                                      .size = 15 << 20, .parts = parts, .nparts = 3,
                                      .stream = true, .level = -1 };
        struct af_journal_rec back;
        struct af_buf b;

        af_buf_init(&b, AF_JOURNAL_MAX);
        CHECK_INT_EQ(af_journal_encode(&rec, &b), 0);
        CHECK(strstr(af_buf_str(&b), "\nstream 1\n") != NULL);
        CHECK(strstr(af_buf_str(&b), "\npartsum 1 1a2b3c4d\n") != NULL);
        CHECK(strstr(af_buf_str(&b), "\npartsum 3 ") == NULL);
        if (CHECK_INT_EQ(decode(&b, &back), 0)) {
                CHECK(back.stream);
                CHECK_STR_EQ(back.upload_id, "up id%1");
                CHECK_INT_EQ(back.part_size, 5 << 20);
                if (CHECK_INT_EQ(back.nparts, 3)) {
                        CHECK(back.parts[0].has_sum);
                        CHECK_INT_EQ(back.parts[0].sum, 0x1a2b3c4d);
                        CHECK(back.parts[1].has_sum); /* a CRC of 0 is a CRC */
                        CHECK_INT_EQ(back.parts[1].sum, 0);
                        CHECK(!back.parts[2].has_sum);
                        CHECK_STR_EQ(back.parts[2].etag, "\"e3\"");
                }
                af_journal_rec_done(&back);
        }
        af_buf_done(&b);
}

/* A record from before streaming: no "stream", no "partsum"; parts have no CRC. */
static void test_record_without_sums(void)
{
        static const char text[] = "artifuse-journal 1\npath a.bin\nbucket b\nkey k\n"
                                   "upload u\npartsize 5242880\npart 1 %22e1%22\nend\n";
        struct af_journal_rec back;
        struct af_buf b;

        af_buf_init(&b, AF_JOURNAL_MAX);
        (void)af_buf_adds(&b, text);
        if (CHECK_INT_EQ(decode(&b, &back), 0)) {
                CHECK(!back.stream);
                if (CHECK_INT_EQ(back.nparts, 1)) {
                        CHECK(!back.parts[0].has_sum);
                        CHECK_STR_EQ(back.parts[0].etag, "\"e1\"");
                }
                af_journal_rec_done(&back);
        }
        af_buf_done(&b);
}

static void test_bad_partsum_is_refused(void)
{
        static const char *bad[] = {
                /* a sum for a part the record does not name */
                "artifuse-journal 1\npath a\nbucket b\nkey k\nupload u\npart 1 e\npartsum 2 ff\n"
                "end\n",
                /* not hex, too long */
                "artifuse-journal 1\npath a\nbucket b\nkey k\nupload u\npart 1 e\npartsum 1 xz\n"
                "end\n",
                "artifuse-journal 1\npath a\nbucket b\nkey k\nupload u\npart 1 e\n"
                "partsum 1 123456789\nend\n",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct af_journal_rec back;
                struct af_buf b, err;

                af_buf_init(&b, AF_JOURNAL_MAX);
                af_buf_init(&err, 512);
                (void)af_buf_adds(&b, bad[i]);
                CHECK_INT_EQ(af_journal_decode(b.ptr, b.len, &back, &err), -EINVAL);
                af_buf_done(&err);
                af_buf_done(&b);
        }
}

/* An abort's record: its op and upload id survive, it is named after its multipart upload
 * (apart from the file's record and from a delete of the key), and one without an id is
 * refused. */
static void test_abort_record(void)
{
        char path[] = "big.bin", bucket[] = "b", key[] = "k/big.bin", id1[] = "u1", id2[] = "u2";
        struct af_journal_rec rec = { .op = AF_JOURNAL_ABORT, .path = path, .bucket = bucket,
                                      .key = key, .upload_id = id1, .level = -1 };
        struct af_journal_rec other = rec, back;
        char n1[40], n2[40], nfile[40], ndelete[40];
        struct af_buf b, err;

        af_buf_init(&b, AF_JOURNAL_MAX);
        CHECK_INT_EQ(af_journal_encode(&rec, &b), 0);
        CHECK(strstr(af_buf_str(&b), "\nop abort\n") != NULL);
        if (CHECK_INT_EQ(decode(&b, &back), 0)) {
                CHECK_INT_EQ(back.op, AF_JOURNAL_ABORT);
                CHECK_STR_EQ(back.upload_id, "u1");
                CHECK_STR_EQ(back.key, "k/big.bin");
                af_journal_rec_done(&back);
        }
        af_journal_rec_name(&rec, n1);
        other.upload_id = id2;
        af_journal_rec_name(&other, n2);
        other.op = AF_JOURNAL_UPLOAD;
        af_journal_rec_name(&other, nfile);
        other.op = AF_JOURNAL_DELETE;
        af_journal_rec_name(&other, ndelete);
        CHECK(strcmp(n1, n2) != 0);
        CHECK(strcmp(n1, nfile) != 0);
        CHECK(strcmp(n1, ndelete) != 0);
        af_buf_truncate(&b, 0);
        (void)af_buf_adds(&b, "artifuse-journal 1\nop abort\npath a\nbucket b\nkey k\nend\n");
        af_buf_init(&err, 512);
        CHECK_INT_EQ(af_journal_decode(b.ptr, b.len, &back, &err), -EINVAL);
        af_buf_done(&err);
        af_buf_done(&b);
}

static void count_rec(void *ctx, struct af_journal_rec *rec)
{
        (*(int *)ctx)++;
        af_journal_rec_done(rec);
}

static void ignore_bad(void *ctx, const char *name, const char *why)
{
        (void)ctx;
        (void)name;
        (void)why;
}

/* A writer killed between writing X.rec.tmp and renaming it: a scan that owns the journal
 * (quarantine) puts a complete one in place and drops a torn one; a read-only scan (status)
 * leaves both. */
static void test_leftover_tmp_records(void)
{
        static const char good[] = "artifuse-journal 1\nop delete\npath gone.txt\nbucket b\n"
                                   "key k/gone.txt\netag \"e\"\nend\n";
        static const char torn[] = "artifuse-journal 1\npath half";
        char dir[] = "/tmp/af-journal-test.XXXXXX";
        int dfd, n = 0;

        if (!CHECK(mkdtemp(dir) != NULL))
                return;
        dfd = open(dir, O_RDONLY | O_DIRECTORY);
        CHECK_INT_EQ(af_journal_store(dfd, "aaaa.rec.tmp", good, sizeof(good) - 1), 0);
        CHECK_INT_EQ(af_journal_store(dfd, "bbbb.rec.tmp", torn, sizeof(torn) - 1), 0);
        CHECK(af_journal_scan(dfd, false, count_rec, ignore_bad, &n) >= 0);
        CHECK_INT_EQ(n, 0);
        CHECK_INT_EQ(faccessat(dfd, "bbbb.rec.tmp", F_OK, 0), 0);
        n = 0;
        CHECK(af_journal_scan(dfd, true, count_rec, ignore_bad, &n) >= 0);
        CHECK_INT_EQ(n, 1); /* the delete it describes will be done */
        CHECK_INT_EQ(faccessat(dfd, "aaaa.rec", F_OK, 0), 0);
        CHECK(faccessat(dfd, "aaaa.rec.tmp", F_OK, 0) < 0);
        CHECK(faccessat(dfd, "bbbb.rec.tmp", F_OK, 0) < 0);
        (void)unlinkat(dfd, "aaaa.rec", 0);
        close(dfd);
        rmdir(dir);
}

int main(void)
{
        RUN(test_encode_exact);
        RUN(test_stream_record_round_trip);
        RUN(test_record_without_sums);
        RUN(test_bad_partsum_is_refused);
        RUN(test_abort_record);
        RUN(test_leftover_tmp_records);
        return test_summary();
}
