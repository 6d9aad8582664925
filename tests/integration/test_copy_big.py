# SPDX-License-Identifier: Apache-2.0
"""Server-side copies past CopyObject's 5 GiB, and hard links of uploaded files.

A rename of an uploaded file whose size is over the copy threshold (5 GiB; lowered here with
the testing-only $ARTIFUSE_COPY_PART_THRESHOLD so that a few MiB do) is a multipart copy:
CreateMultipartUpload, UploadPartCopy parts (x-amz-copy-source-range), Complete. A failed
part is retried in place; a copy that cannot be made is aborted and the file uploaded from
the spool, as a failed CopyObject is. `ln` of an uploaded file to a name with another key is
a copy too, and the old name keeps its object.

artifuse talks to S3 through faultproxy (what went over the wire, and faults); boto3 goes
straight to the server.
"""
import os
import re
import subprocess
import threading
import time

import pytest

from helpers import (BIN, BUCKET, MiB, get_bytes, journal_text, key_of, kill9, list_keys, log_lines,
                     open_uploads, put_body_bytes, wait_for, wait_object, write)

THRESHOLD = {"ARTIFUSE_COPY_PART_THRESHOLD": "8M"}
# a.bin goes up in one PutObject, so its ETag is its MD5 and the copy names it
# (x-amz-copy-source-if-match); radosgw's CompleteMultipartUpload answers an empty ETag.
SINGLE_PUT = ["--multipart-threshold", "64M"]


@pytest.fixture(autouse=True)
def remove_objects(s3, names):
    """Each test leaves 40-60 MiB in S3 and the shared test server holds 20 GB: what a test
    wrote under its prefix goes when it ends (after its mounts are stopped)."""
    yield
    for u in open_uploads(s3, names["prefix"]):
        s3.abort_multipart_upload(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
    for k in list_keys(s3, names["prefix"]):
        s3.delete_object(Bucket=BUCKET, Key=k)


def uploaded(m, s3, names, rel, data):
    """Writes @rel and waits until its object is in S3 and the mount has logged it."""
    write(m, rel, data)
    wait_object(s3, key_of(names, rel), data)
    wait_for(lambda: log_lines(m, "op=upload status=done", f'path="{rel}"'),
             what=f"{rel}'s upload logged")
    # The worker records the upload (on_uploaded) just after it logs it.
    time.sleep(0.3)


def renamed(m, s3, names, mib, to="b.bin"):
    """@mib MiB of random bytes up as a.bin, renamed to @to once there, and the mount
    unmounted when @to's object holds them. The bytes."""
    data = os.urandom(mib * MiB)
    uploaded(m, s3, names, "a.bin", data)
    os.rename(m.path("a.bin"), m.path(to))
    wait_object(s3, key_of(names, to), data)
    assert m.unmount() == 0, m.log()
    return data


def part_copies(stats, key_part):
    """The UploadPartCopy requests for targets containing @key_part: (partNumber, range)."""
    out = []
    for r in stats["requests_log"]:
        h = r["headers"]
        if r["method"] == "PUT" and key_part in r["target"] and "x-amz-copy-source-range" in h:
            num = int(re.search(r"partNumber=(\d+)", r["target"]).group(1))
            out.append((num, h["x-amz-copy-source-range"], r["outcome"]))
    return out


def is_part_copy(rec):
    return rec["method"] == "PUT" and "x-amz-copy-source-range" in rec["headers"]


# ---- rename over the threshold: a multipart copy --------------------------------------------

@pytest.mark.parametrize("delete", [True, False], ids=["default", "no-delete-on-unlink"])
def test_rename_over_the_threshold_is_a_multipart_copy(pmount, proxy, s3, names, delete):
    """20 MiB up as a.bin, then mv a.bin b.csv with the threshold at 8 MiB: b.csv's object is
    made of three UploadPartCopy parts of 8, 8 and 4 MiB of a.bin's object (no body sent),
    byte for byte the file, with its own Content-Type; a.bin's object is deleted after the
    copy, or kept with --no-delete-on-unlink; nothing is left open."""
    m = pmount(args=SINGLE_PUT + ([] if delete else ["--no-delete-on-unlink"]), env=THRESHOLD)
    data = os.urandom(20 * MiB)
    uploaded(m, s3, names, "a.bin", data)
    etag = s3.head_object(Bucket=BUCKET, Key=key_of(names, "a.bin"))["ETag"]
    os.rename(m.path("a.bin"), m.path("b.csv"))
    wait_object(s3, key_of(names, "b.csv"), data)
    assert m.unmount() == 0, m.log()
    copies = log_lines(m, "op=copy status=done", 'path="b.csv"')
    assert copies and "request=UploadPartCopy parts=3" in copies[0], m.log()
    assert f'src_key="{key_of(names, "a.bin")}"' in copies[0]
    assert not log_lines(m, "op=copy status=fallback"), m.log()
    st = proxy.stats()
    assert put_body_bytes(st, "/b.csv") == 0, "b.csv's bytes were sent again"
    assert sorted(part_copies(st, "/b.csv")) == [
        (1, "bytes=0-8388607", "forwarded"), (2, "bytes=8388608-16777215", "forwarded"),
        (3, "bytes=16777216-20971519", "forwarded")]
    for r in (r for r in st["requests_log"] if is_part_copy(r)):
        assert r["headers"]["x-amz-copy-source"] == f"/{BUCKET}/{key_of(names, 'a.bin')}"
        assert r["headers"]["x-amz-copy-source-if-match"] == etag
    head = s3.head_object(Bucket=BUCKET, Key=key_of(names, "b.csv"))
    assert head["ContentType"].startswith("text/csv")
    assert head["ETag"].endswith('-3"')
    if delete:
        assert list_keys(s3, names["prefix"]) == [key_of(names, "b.csv")]
    else:
        assert get_bytes(s3, key_of(names, "a.bin")) == data
    assert open_uploads(s3, names["prefix"]) == []


def test_a_multipart_source_is_named_by_its_etag(pmount, proxy, s3, names):
    """a.bin streams up in a multipart upload, whose Complete radosgw answers without an
    ETag: the mount asks for it (HEAD), so the parts still name the source's ETag."""
    m = pmount(env=THRESHOLD)
    renamed(m, s3, names, 20)
    done = log_lines(m, "op=upload status=done", 'path="a.bin"')
    found = re.search(r'etag="\\"([0-9a-f]{32}-3)\\""', done[0]) if done else None
    assert found, done or m.log()
    parts = [r for r in proxy.stats()["requests_log"] if is_part_copy(r)]
    assert len(parts) == 3
    assert {r["headers"].get("x-amz-copy-source-if-match") for r in parts} == \
        {f'"{found.group(1)}"'}
    assert s3.head_object(Bucket=BUCKET, Key=key_of(names, "b.bin"))["ETag"].endswith('-3"')


def test_below_the_threshold_a_copy_is_one_copyobject(pmount, proxy, s3, names):
    """The same rename with the threshold above the file's size: one CopyObject."""
    m = pmount(env={"ARTIFUSE_COPY_PART_THRESHOLD": "32M"})
    data = renamed(m, s3, names, 20)
    assert log_lines(m, "op=copy status=done", 'path="b.bin"', "request=CopyObject"), m.log()
    assert part_copies(proxy.stats(), "/b.bin") == []
    assert get_bytes(s3, key_of(names, "b.bin")) == data


def test_no_overwrite_still_copies_over_the_threshold(pmount, proxy, s3, names):
    """--no-overwrite turns CopyObject down (it has no If-None-Match everywhere), but a
    multipart copy's Complete carries If-None-Match: * as an upload's does: still a copy."""
    m = pmount(args=["--no-overwrite"], env=THRESHOLD)
    renamed(m, s3, names, 20)
    assert log_lines(m, "op=copy status=done", 'path="b.bin"', "parts=3"), m.log()
    completes = [r for r in proxy.stats()["requests_log"]
                 if r["method"] == "POST" and "/b.bin?uploadId=" in r["target"]]
    assert completes and all(r["headers"].get("if-none-match") == "*" for r in completes)
    assert put_body_bytes(proxy.stats(), "/b.bin") == 0


def test_a_multipart_copy_with_crc32c_parts(pmount, proxy, s3, names):
    """--checksum crc32c creates every multipart upload with x-amz-checksum-algorithm CRC32C,
    the copy's too: Complete names each part's checksum where the server gave one (S3 does
    in CopyPartResult; radosgw does not), and the copy is made."""
    m = pmount(args=["--checksum", "crc32c"], env=THRESHOLD)
    renamed(m, s3, names, 20)
    assert log_lines(m, "op=copy status=done", 'path="b.bin"', "parts=3"), m.log()
    creates = [r for r in proxy.stats()["requests_log"]
               if r["method"] == "POST" and "/b.bin?uploads" in r["target"]]
    assert creates and creates[0]["headers"].get("x-amz-checksum-algorithm") == "CRC32C"


def test_a_failed_part_copy_is_retried(pmount, proxy, s3, names):
    """The answer to one UploadPartCopy is lost (the connection reset): that part is sent
    again, and the copy completes with no upload."""
    m = pmount(env=THRESHOLD)
    data = os.urandom(20 * MiB)
    uploaded(m, s3, names, "a.bin", data)
    proxy.drop_response(times=1, match=is_part_copy)
    os.rename(m.path("a.bin"), m.path("b.bin"))
    wait_object(s3, key_of(names, "b.bin"), data)
    assert m.unmount() == 0, m.log()
    parts = part_copies(proxy.stats(), "/b.bin")
    assert [p for p in parts if p[2] == "response dropped"], parts
    assert sorted({p[0] for p in parts if p[2] == "forwarded"}) == [1, 2, 3]
    assert len(parts) == 4, parts
    assert log_lines(m, "op=copy status=done", 'path="b.bin"', "parts=3"), m.log()
    assert put_body_bytes(proxy.stats(), "/b.bin") == 0
    assert open_uploads(s3, names["prefix"]) == []


def test_a_part_copy_that_keeps_failing_falls_back_to_an_upload(pmount, proxy, s3, names):
    """Every UploadPartCopy fails: after its retries the multipart copy is aborted (nothing
    left open) and the file is uploaded from the spool, as a failed CopyObject is."""
    m = pmount(env=THRESHOLD)
    data = os.urandom(20 * MiB)
    uploaded(m, s3, names, "a.bin", data)
    proxy.drop_response(times=1000, match=is_part_copy)
    os.rename(m.path("a.bin"), m.path("b.bin"))
    wait_for(lambda: log_lines(m, "op=upload status=done", 'path="b.bin"'), timeout=60,
             what="b.bin's upload")
    proxy.drop_response(0)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "b.bin")) == data
    assert log_lines(m, "op=copy status=fallback", 'path="b.bin"'), m.log()
    assert not log_lines(m, "op=copy status=done"), m.log()
    assert len(part_copies(proxy.stats(), "/b.bin")) > 1  # retried before giving up
    assert put_body_bytes(proxy.stats(), "/b.bin") >= len(data)
    assert any(r["method"] == "DELETE" and "uploadId=" in r["target"] and "/b.bin" in r["target"]
               for r in proxy.stats()["requests_log"]), "the multipart copy was not aborted"
    assert open_uploads(s3, names["prefix"]) == []


def test_a_source_changed_during_the_copy_is_not_completed(pmount, proxy, s3, names):
    """Someone overwrites the old key with other bytes of the same size while the parts are
    copied (radosgw ignores x-amz-copy-source-if-match, so the parts copy whatever is there):
    the source is checked again before Complete, the copy is aborted and the file itself
    goes up."""
    m = pmount(args=SINGLE_PUT, env=THRESHOLD)
    data = os.urandom(20 * MiB)
    uploaded(m, s3, names, "a.bin", data)
    src = key_of(names, "a.bin")
    theirs = os.urandom(len(data))
    done = []

    def overwrite_first(rec):  # runs in the proxy before it forwards the request
        if is_part_copy(rec) and not done:
            done.append(1)
            s3.put_object(Bucket=BUCKET, Key=src, Body=theirs)
        return False
    proxy.drop_response(times=1, match=overwrite_first)
    os.rename(m.path("a.bin"), m.path("b.bin"))
    wait_for(lambda: log_lines(m, "status=done", 'path="b.bin"'), timeout=60, what="b.bin")
    assert m.unmount() == 0, m.log()
    assert done
    assert get_bytes(s3, key_of(names, "b.bin")) == data
    fallback = log_lines(m, "op=copy status=fallback", 'path="b.bin"')
    assert fallback and "SourceChanged" in fallback[0], m.log()
    assert open_uploads(s3, names["prefix"]) == []


@pytest.mark.parametrize("mib", [20, 12])
def test_kill9_during_a_multipart_copy_then_mount_again(pmount, proxy, s3, names, mib):
    """The daemon dies with the copy's parts done but the last, which fails (its request
    never reaches the server): the journal has the multipart upload. The next mount finishes
    it as an upload of the file that keeps the parts already copied (20 MiB: only part 3's
    4 MiB are sent) or, for a file below the multipart threshold (12 MiB), uploads it whole
    and aborts the copy's upload: nothing is left open either way."""
    # One part at a time: when the last one is first tried, the others are journaled.
    m = pmount(args=["--part-concurrency", "1"], env=THRESHOLD)
    data = os.urandom(mib * MiB)
    uploaded(m, s3, names, "a.bin", data)
    last = (mib * MiB + 8 * MiB - 1) // (8 * MiB)
    tried = threading.Event()

    def last_part(rec):
        if is_part_copy(rec) and f"partNumber={last}" in rec["target"]:
            tried.set()
            return True
        return False
    proxy.reset_after(1, times=1000, match=last_part)
    os.rename(m.path("a.bin"), m.path("b.bin"))
    wait_for(tried.is_set, timeout=30, what="the last part's first attempt")
    kill9(m)  # before its retries in place (200 ms apart at least) are spent
    assert journal_parts(m) == last - 1, journal_text(m)
    proxy.clear()
    m2 = pmount(spool_root=m.spool_root)
    wait_object(s3, key_of(names, "b.bin"), data, timeout=60)
    assert m2.unmount() == 0, m2.log()
    if mib == 20:
        assert log_lines(m2, "op=upload status=resume", 'path="b.bin"', "parts_done=2"), m2.log()
        assert put_body_bytes(proxy.stats(), "/b.bin") == 4 * MiB
    else:
        assert put_body_bytes(proxy.stats(), "/b.bin") == len(data)
    assert open_uploads(s3, names["prefix"]) == []


def journal_parts(m):
    """How many finished parts of a multipart upload the journal's records list."""
    return len(re.findall(r"^part ", journal_text(m), re.M))


@pytest.mark.parametrize("value", ["8 MiB", "0", "6G"])
def test_a_bad_threshold_is_one_error_line(tmp_path, s3env, value):
    """The testing knob is checked like an option: one line naming it, exit 1, no mount."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "mount", "-f", "--spool", str(tmp_path / "spool"),
                        "--artifact-repository", f"s3://{BUCKET}/x", str(mnt)],
                       env=dict(os.environ, **s3env, ARTIFUSE_COPY_PART_THRESHOLD=value),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == (f"artifuse: error: $ARTIFUSE_COPY_PART_THRESHOLD: '{value}' "
                                "is not a size from 1 to 5G (a testing knob)")


# ---- ln: a copy too -------------------------------------------------------------------------

@pytest.mark.parametrize("big", [False, True], ids=["copyobject", "multipart"])
def test_ln_of_an_uploaded_file_is_a_copy(pmount, proxy, s3, names, big):
    """ln a.bin b.json: b.json's object is a server-side copy of a.bin's (CopyObject, or
    UploadPartCopy over the threshold), with its own Content-Type; a.bin keeps its object
    (deletes are on, the default: a.bin still names the file), and both names read the same
    file."""
    m = pmount(env=THRESHOLD)
    data = os.urandom(20 * MiB if big else 256 << 10)
    uploaded(m, s3, names, "a.bin", data)
    os.link(m.path("a.bin"), m.path("b.json"))
    assert os.stat(m.path("a.bin")).st_nlink == 2
    wait_object(s3, key_of(names, "b.json"), data)
    assert m.unmount() == 0, m.log()
    copies = log_lines(m, "op=copy status=done", 'path="b.json"')
    assert copies and f'src_key="{key_of(names, "a.bin")}"' in copies[0], m.log()
    assert ("request=UploadPartCopy" if big else "request=CopyObject") in copies[0]
    assert not log_lines(m, "op=copy status=fallback"), m.log()
    assert put_body_bytes(proxy.stats(), "/b.json") == 0, "b.json's bytes were sent again"
    assert s3.head_object(Bucket=BUCKET, Key=key_of(names, "b.json"))["ContentType"] == \
        "application/json"
    assert get_bytes(s3, key_of(names, "a.bin")) == data
    assert list_keys(s3, names["prefix"]) == [key_of(names, "a.bin"), key_of(names, "b.json")]


def test_ln_then_rm_of_the_old_name(pmount, proxy, s3, names):
    """ln a.txt b.txt; rm a.txt (deletes are on): b.txt is copied from a.txt's object
    before the delete of a.txt's key runs (the copy is queued before ln returns), then a.txt's
    object goes; b.txt's stays."""
    m = pmount()
    uploaded(m, s3, names, "a.txt", b"hello\n")
    os.link(m.path("a.txt"), m.path("b.txt"))
    os.unlink(m.path("a.txt"))
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=copy status=done", 'path="b.txt"'), m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "b.txt")]
    assert get_bytes(s3, key_of(names, "b.txt")) == b"hello\n"


def test_ln_of_a_changed_file_uploads_it(pmount, proxy, s3, names):
    """Changed since its upload: the new name gets the file's bytes, uploaded, not a copy of
    the old object (and the old name's object is brought up to date too)."""
    m = pmount()
    uploaded(m, s3, names, "a.txt", b"one\n")
    with open(m.path("a.txt"), "ab") as f:
        f.write(b"two\n")
        f.flush()
        os.link(m.path("a.txt"), m.path("b.txt"))
    assert m.unmount() == 0, m.log()
    assert not log_lines(m, "op=copy status=done"), m.log()
    assert get_bytes(s3, key_of(names, "b.txt")) == b"one\ntwo\n"
    assert get_bytes(s3, key_of(names, "a.txt")) == b"one\ntwo\n"
