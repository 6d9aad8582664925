# SPDX-License-Identifier: Apache-2.0
"""No multipart upload is left open (issue 15, found by the soak): an abort that fails is
retried with the delete retry policy and journaled until it succeeds, and a journaled
multipart upload whose file left the spool is aborted, not just forgotten. Each test ends
with ListMultipartUploads empty under its prefix (billed storage otherwise)."""
import os
import time

from helpers import (MiB, get_bytes, journal_records, journal_text, key_of, kill9, list_keys,
                     log_lines, open_uploads, wait_for)

ARGS = ["--unmatched", "upload", "--delete-on-unlink"]


def test_failed_abort_of_an_abandoned_stream_is_retried(proxy, pmount, s3, names):
    """A streamed file renamed while S3 refuses connections: the stream is abandoned and its
    AbortMultipartUpload fails. Before the fix it was never tried again and the upload stayed
    open for good (tests/soak/repro/abort_not_retried.py)."""
    m = pmount(args=ARGS)
    data = os.urandom(40 * MiB)
    with open(m.path("b.bin"), "wb") as f:
        for i in range(0, len(data), MiB):
            f.write(data[i:i + MiB])
        f.flush()
        wait_for(lambda: open_uploads(s3, names["prefix"]), what="the stream's upload")
    proxy.refuse()
    os.rename(m.path("b.bin"), m.path("r.bin"))
    wait_for(lambda: log_lines(m, "op=abort_multipart"), timeout=90,
             what="the abort to fail while S3 refuses")
    time.sleep(1)
    proxy.accept()
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "r.bin")) == data
    assert list_keys(s3, names["prefix"]) == [key_of(names, "r.bin")]
    assert open_uploads(s3, names["prefix"]) == [], m.log()
    assert journal_records(m) == []


def test_journaled_upload_of_a_gone_file_is_aborted(proxy, pmount, s3, names):
    """kill -9 mid-stream, the file removed from the spool before the next mount: that mount
    aborts the journaled upload instead of dropping it (tests/soak/repro/
    resume_gone_file_upload_left.py). With S3 refusing at that mount, the abort stays
    journaled, and the mount after it does it."""
    m = pmount(args=ARGS)
    f = open(m.path("big.bin"), "wb")
    for _ in range(20):
        f.write(os.urandom(MiB))
    f.flush()
    wait_for(lambda: "upload " in journal_text(m), what="the stream's upload journaled")
    kill9(m, f)
    assert open_uploads(s3, names["prefix"]), "expected the stream's upload open"
    os.unlink(os.path.join(m.spool, "big.bin"))

    proxy.refuse()
    m2 = pmount(args=ARGS + ["--drain-timeout", "3", "--no-check"], spool_root=m.spool_root)
    m2.unmount()
    assert "op abort" in journal_text(m2), m2.log()  # kept until S3 says it is gone
    assert log_lines(m2, "no longer in the spool", "multipart upload aborted"), m2.log()
    assert open_uploads(s3, names["prefix"])

    proxy.accept()
    m3 = pmount(args=ARGS, spool_root=m.spool_root)
    assert m3.unmount() == 0, m3.log()
    assert log_lines(m3, "op=abort_multipart", "status=done"), m3.log()
    assert open_uploads(s3, names["prefix"]) == [], m3.log()
    assert journal_records(m3) == []


# A CreateMultipartUpload whose answer is lost (the proxy resets the connection as the answer
# starts) has made an upload on the server that nobody knows the id of. Each test below
# leaves the key with no Complete to clean it up; before the sweep, that upload stayed open.
CREATE = ("POST", "?uploads")


def stream_with_a_lost_create(m, proxy, s3, names):
    """big.bin, left open, streamed after its first create went unanswered (and was
    retried): two uploads open, one of them the stream's."""
    proxy.drop_response(1, CREATE)
    f = open(m.path("big.bin"), "wb")
    for _ in range(24):
        f.write(os.urandom(MiB))
    f.flush()
    wait_for(lambda: len(open_uploads(s3, names["prefix"])) == 2, timeout=60,
             what="the unanswered upload and the stream's own")
    return f


def test_unanswered_create_of_an_abandoned_stream_is_swept(proxy, pmount, s3, names):
    """The stream's first create goes unanswered (it is retried and the stream goes on), then
    the file is unlinked while still open: the stream is abandoned, its known upload aborted,
    and the unanswered one swept."""
    m = pmount(args=ARGS)
    f = stream_with_a_lost_create(m, proxy, s3, names)
    os.unlink(m.path("big.bin"))
    f.close()
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=abort_multipart", "stray upload"), m.log()
    assert open_uploads(s3, names["prefix"]) == [], m.log()
    assert list_keys(s3, names["prefix"]) == []
    assert journal_records(m) == []


def test_unanswered_creates_of_a_file_then_removed_are_swept(proxy, pmount, s3, names):
    """Without streaming: every create of the closed file goes unanswered, so its upload is
    retried; the file is removed meanwhile, its upload skipped, and each create's upload
    swept."""
    m = pmount(args=ARGS + ["--no-streaming"])
    proxy.drop_response(1000, CREATE)
    with open(m.path("big.bin"), "wb") as f:
        f.write(os.urandom(20 * MiB))
    wait_for(lambda: len(open_uploads(s3, names["prefix"])) >= 2, timeout=60,
             what="two unanswered creates")
    os.unlink(m.path("big.bin"))
    proxy.drop_response(0)
    assert m.unmount() == 0, m.log()
    assert open_uploads(s3, names["prefix"]) == [], m.log()
    assert list_keys(s3, names["prefix"]) == []
    assert journal_records(m) == []


def test_unanswered_create_then_kill9_is_swept_at_the_next_mount(proxy, pmount, s3, names):
    """A stream whose first create went unanswered, kill -9, the file gone from the spool
    before the next mount: that mount aborts the journaled upload and sweeps the other."""
    m = pmount(args=ARGS)
    f = stream_with_a_lost_create(m, proxy, s3, names)
    wait_for(lambda: "upload " in journal_text(m), what="the stream's upload journaled")
    kill9(m, f)
    os.unlink(os.path.join(m.spool, "big.bin"))
    m2 = pmount(args=ARGS, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    assert open_uploads(s3, names["prefix"]) == [], m2.log()
    assert journal_records(m2) == []
