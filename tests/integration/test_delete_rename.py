# SPDX-License-Identifier: Apache-2.0
"""Renames and unlinks of files the mount already uploaded: a rename of an unchanged file is
a server-side copy (CopyObject) to the new key; by default (--delete-on-unlink) the object
an unlinked, renamed-away or replaced name put is deleted, but never content a newer upload
wrote; --no-delete-on-unlink leaves every object as is.

artifuse talks to S3 through faultproxy (to count request bodies and to take the server
away); boto3 goes straight to the server.
"""
import os
import subprocess
import time

import pytest

from helpers import (BIN, BUCKET, get_bytes, journal_text, key_of, kill9, list_keys, log_lines,
                     put_body_bytes, wait_for, wait_object, write, write_spec)


# (args, whether the old objects are deleted): the default deletes them, as the flag does.
MODES = pytest.mark.parametrize("args,delete", [([], True), (["--delete-on-unlink"], True),
                                                 (["--no-delete-on-unlink"], False)],
                                ids=["default", "delete-on-unlink", "no-delete-on-unlink"])


def has(s3, key):
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
        return True
    except s3.exceptions.ClientError:
        return False


def wait_gone(s3, key, timeout=30):
    wait_for(lambda: not has(s3, key), timeout=timeout, what=f"{key} to be deleted")


def uploaded(m, s3, names, rel, data):
    """Writes @rel and waits until its object is in S3 and the mount has logged it."""
    write(m, rel, data)
    wait_object(s3, key_of(names, rel), data)
    wait_for(lambda: log_lines(m, "status=done", f'path="{rel}"'), what=f"{rel}'s upload logged")
    # The worker records the upload (on_uploaded) just after it logs it.
    time.sleep(0.2)


# ---- rename: a server-side copy ------------------------------------------------------------

@MODES
def test_rename_of_an_uploaded_file_is_a_copy(pmount, proxy, s3, names, args, delete):
    """a.bin (256 KiB) goes up; mv a.bin b.bin: b.bin's object is a CopyObject of a.bin's (no
    body sent for it), byte for byte the file, with the Content-Type of its own name. The old
    key is deleted (the default), or stays with --no-delete-on-unlink."""
    m = pmount(args=args)
    data = os.urandom(256 << 10)
    uploaded(m, s3, names, "a.bin", data)
    assert put_body_bytes(proxy.stats(), "/a.bin") >= len(data)  # the proxy does see bodies
    os.rename(m.path("a.bin"), m.path("b.csv"))
    wait_object(s3, key_of(names, "b.csv"), data)
    assert m.unmount() == 0, m.log()
    copies = log_lines(m, "op=copy status=done", 'path="b.csv"')
    assert copies and f'src_key="{key_of(names, "a.bin")}"' in copies[0], m.log()
    assert put_body_bytes(proxy.stats(), "/b.csv") == 0, "b.csv's bytes were sent again"
    puts = [r for r in proxy.stats()["requests_log"] if r["method"] == "PUT" and "/b.csv" in r["target"]]
    assert len(puts) == 1 and "x-amz-copy-source" in puts[0]["headers"]
    head = s3.head_object(Bucket=BUCKET, Key=key_of(names, "b.csv"))
    assert head["ContentType"].startswith("text/csv")
    if delete:
        assert list_keys(s3, names["prefix"]) == [key_of(names, "b.csv")]
    else:
        assert get_bytes(s3, key_of(names, "a.bin")) == data  # left as is
        assert list_keys(s3, names["prefix"]) == [key_of(names, "a.bin"), key_of(names, "b.csv")]


def test_a_copy_gets_the_object_options_an_upload_would(pmount, proxy, s3, names):
    """Tags, metadata, storage class, --preserve-metadata and the new name's Content-Type:
    the copied object carries what an upload of the new name would (REPLACE directives)."""
    m = pmount(args=["--tag", "team=data eng", "--tag", "run=42&x", "--metadata", "Owner=alice",
                     "--storage-class", "STANDARD", "--preserve-metadata"])
    uploaded(m, s3, names, "a.bin", b"{}\n")
    os.chmod(m.path("a.bin"), 0o640)  # mode is metadata: a chmod does not stop the copy
    os.rename(m.path("a.bin"), m.path("r.json"))
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=copy status=done", 'path="r.json"'), m.log()
    key = key_of(names, "r.json")
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/json"
    assert head["Metadata"]["owner"] == "alice"
    assert head["Metadata"]["mode"] == str(0o100640)
    assert head.get("StorageClass", "STANDARD") == "STANDARD"
    tags = {t["Key"]: t["Value"]
            for t in s3.get_object_tagging(Bucket=BUCKET, Key=key).get("TagSet", [])}
    assert tags == {"team": "data eng", "run": "42&x"}  # '&' XML-escaped in PutObjectTagging
    assert get_bytes(s3, key) == b"{}\n"


def test_rename_of_a_changed_file_uploads_it(pmount, proxy, s3, names):
    """Changed after its upload (appended, closed, renamed before the settle delay ends): the
    new name gets the new bytes, uploaded, not a copy of the old object."""
    m = pmount()
    uploaded(m, s3, names, "a.txt", b"one\n")
    with open(m.path("a.txt"), "ab") as f:
        f.write(b"two\n")
    os.rename(m.path("a.txt"), m.path("b.txt"))
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "b.txt")) == b"one\ntwo\n"
    assert not log_lines(m, "op=copy status=done"), m.log()


def test_rename_into_a_tgz_artifact_is_uploaded_not_copied(pmount, s3, names, tmp_path):
    """An unchanged file renamed to a path whose artifact is archived (tar): the archive is
    built from the spool and uploaded; a copy of the raw object would be wrong."""
    spec = write_spec(tmp_path, [("res", "/tmp/res.txt", "archive:\n  tar: {}\n")])
    m = pmount(spec=spec, args=["--unmatched", "upload"])
    uploaded(m, s3, names, "a.txt", b"results\n")
    os.rename(m.path("a.txt"), m.path("res.txt"))
    assert m.unmount() == 0, m.log()
    assert not log_lines(m, "op=copy"), m.log()
    blob = get_bytes(s3, key_of(names, "res.tgz"))
    from test_archive import untar
    assert untar(blob, tmp_path)[0] == {"res.txt": b"results\n"}


def test_copy_failure_falls_back_to_upload(pmount, s3, names):
    """The old object deleted behind the mount's back: the copy fails (NoSuchKey), the file
    is uploaded from the spool instead, and the new key is right."""
    m = pmount()
    data = os.urandom(100 << 10)
    uploaded(m, s3, names, "a.bin", data)
    s3.delete_object(Bucket=BUCKET, Key=key_of(names, "a.bin"))
    os.rename(m.path("a.bin"), m.path("b.bin"))
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "b.bin")) == data
    assert log_lines(m, "op=copy status=fallback", 'path="b.bin"'), m.log()
    assert log_lines(m, "op=upload status=done", 'path="b.bin"')


def test_copy_of_a_source_overwritten_behind_our_back_is_not_made(pmount, s3, names):
    """Someone else wrote the old key since: its ETag no longer matches, so the copy is
    refused (x-amz-copy-source-if-match) and the file itself goes up."""
    m = pmount()
    uploaded(m, s3, names, "a.bin", b"ours\n")
    s3.put_object(Bucket=BUCKET, Key=key_of(names, "a.bin"), Body=b"theirs\n")
    os.rename(m.path("a.bin"), m.path("b.bin"))
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "b.bin")) == b"ours\n"
    assert log_lines(m, "op=copy status=fallback"), m.log()


@MODES
def test_rename_of_a_directory_moves_every_file(pmount, proxy, s3, names, args, delete):
    """mv out out2: each file under it goes to its new key: copied if it went up unchanged
    (out/a.txt, out/sub/c.txt), uploaded if it had not gone up yet (out/b.txt, renamed
    before its upload started). The old keys go (the default), or stay with
    --no-delete-on-unlink."""
    m = pmount(args=args)
    os.makedirs(m.path("out/sub"))
    uploaded(m, s3, names, "out/a.txt", b"a\n")
    uploaded(m, s3, names, "out/sub/c.txt", b"c\n")
    write(m, "out/b.txt", b"b\n")
    os.rename(m.path("out"), m.path("out2"))
    assert m.unmount() == 0, m.log()
    for rel, data in (("a.txt", b"a\n"), ("b.txt", b"b\n"), ("sub/c.txt", b"c\n")):
        assert get_bytes(s3, key_of(names, "out2/" + rel)) == data, rel
    assert log_lines(m, "op=copy status=done", 'path="out2/a.txt"'), m.log()
    assert log_lines(m, "op=copy status=done", 'path="out2/sub/c.txt"'), m.log()
    assert put_body_bytes(proxy.stats(), "/out2/a.txt") == 0
    old = [k for k in list_keys(s3, names["prefix"]) if "/out/" in k]
    if delete:
        assert old == []
    else:
        assert old == [key_of(names, "out/a.txt"), key_of(names, "out/sub/c.txt")]


# ---- unlink -------------------------------------------------------------------------------

@MODES
def test_unlink(pmount, s3, names, args, delete):
    m = pmount(args=args)
    uploaded(m, s3, names, "c.txt", b"c\n")
    uploaded(m, s3, names, "keep.txt", b"k\n")
    os.unlink(m.path("c.txt"))
    assert m.unmount() == 0, m.log()
    if delete:
        assert list_keys(s3, names["prefix"]) == [key_of(names, "keep.txt")]
        assert log_lines(m, "op=delete status=done", 'path="c.txt"')
    else:
        assert get_bytes(s3, key_of(names, "c.txt")) == b"c\n"
        assert not log_lines(m, "op=delete")


@pytest.mark.parametrize("pause", [0, 0.05, 0.3])
@pytest.mark.parametrize("changed", [False, True], ids=["uploaded", "changed-then-rm"])
def test_rm_then_recreate_keeps_the_new_content(pmount, s3, names, pause, changed):
    """rm out; echo new > out, with the delete racing the new upload: S3 ends with the new
    content (never the delete after it). changed-then-rm: out was rewritten and closed just
    before the rm, so its upload job is still queued when the new out is handed over; and
    the new out has the first upload's bytes, so the delete's ETag check cannot tell it from
    the object it was queued for: only the queue's ordering keeps it."""
    m = pmount(args=["--delete-on-unlink"])
    for i in range(5):
        uploaded(m, s3, names, "out", b"old %d\n" % i)
        if changed:
            write(m, "out", b"changed %d\n" % i)
        os.unlink(m.path("out"))
        time.sleep(pause)
        new = b"old %d\n" % i if changed else b"new %d\n" % i
        write(m, "out", new)
        wait_object(s3, key_of(names, "out"), new)
    time.sleep(1)  # anything still queued would run by now
    assert get_bytes(s3, key_of(names, "out")) == new, m.log()
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "out")) == new, m.log()


@pytest.mark.parametrize("tmp_uploaded", [False, True], ids=["fresh-tmp", "uploaded-tmp"])
def test_rename_over_an_uploaded_name(pmount, s3, names, tmp_uploaded):
    """rename(tmp, out) over an uploaded out, with --delete-on-unlink: out's key gets the new
    content and is not deleted; tmp's key (if it went up) is deleted."""
    m = pmount(args=["--delete-on-unlink"])
    uploaded(m, s3, names, "out", b"v1\n")
    if tmp_uploaded:
        uploaded(m, s3, names, "out.tmp", b"v2\n")
    else:
        write(m, "out.tmp", b"v2\n")
    os.rename(m.path("out.tmp"), m.path("out"))
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "out")]
    assert get_bytes(s3, key_of(names, "out")) == b"v2\n"
    assert not log_lines(m, "op=delete", 'key="%s"' % key_of(names, "out"))
    if tmp_uploaded:
        assert log_lines(m, "op=copy status=done", 'path="out"'), m.log()


# ---- deletes survive faults ------------------------------------------------------------------

def unlinked_while_away(pmount, proxy, s3, names):
    """A --delete-on-unlink mount whose c.txt went up, then was unlinked once the server
    had gone away; returns the mount."""
    m = pmount(args=["--delete-on-unlink"])
    uploaded(m, s3, names, "c.txt", b"c\n")
    proxy.refuse()
    os.unlink(m.path("c.txt"))
    return m


def test_a_failed_delete_is_retried(pmount, proxy, s3, names):
    m = unlinked_while_away(pmount, proxy, s3, names)
    wait_for(lambda: log_lines(m, "op=delete status=retry"), what="a delete retry")
    assert has(s3, key_of(names, "c.txt"))
    proxy.accept()
    wait_gone(s3, key_of(names, "c.txt"))
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=delete status=done", 'path="c.txt"')


def test_kill9_with_a_pending_delete_then_mount_again(pmount, proxy, s3, names):
    """The delete is journaled: killed while S3 is away, the next mount on the spool does it."""
    m = unlinked_while_away(pmount, proxy, s3, names)
    wait_for(lambda: "op delete" in journal_text(m), what="the delete's journal record")
    kill9(m)
    proxy.accept()
    assert has(s3, key_of(names, "c.txt"))
    st = subprocess.run([BIN, "status", "--spool", m.spool_root], capture_output=True,
                        text=True)
    # a pending delete is reported, and is not a missing output (exit 0)
    assert st.returncode == 0 and "deletes:   1 " in st.stdout, st.stdout + st.stderr
    m2 = pmount(args=["--delete-on-unlink"], spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    assert not has(s3, key_of(names, "c.txt"))
    assert log_lines(m2, "op=resume", "delete=pending"), m2.log()
    assert log_lines(m2, "op=delete status=done", 'path="c.txt"'), m2.log()
    assert journal_text(m2) == ""


def test_a_delete_never_removes_what_someone_else_wrote(pmount, proxy, s3, names):
    """Between the unlink and the delete another writer put the key: its ETag differs from
    the one this mount gave it, so the delete leaves it alone."""
    m = unlinked_while_away(pmount, proxy, s3, names)
    wait_for(lambda: log_lines(m, "op=delete status=retry"), what="a delete retry")
    s3.put_object(Bucket=BUCKET, Key=key_of(names, "c.txt"), Body=b"someone else\n")
    proxy.accept()
    wait_for(lambda: log_lines(m, "op=delete status=skipped"), what="the delete skipped")
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key_of(names, "c.txt")) == b"someone else\n"


# ---- CopyObject's own answers ----------------------------------------------------------------

def test_copy_answered_200_with_an_error_inside_falls_back(mount, names):
    """CopyObject may answer 200 and fail in the body (<Error>): that is a failed copy, and
    the file is uploaded. Against a stand-in S3 that answers every copy that way; the
    x-amz-copy-source header is /bucket/key, URI-encoded once ('/' kept)."""
    import hashlib
    from creds_standins import S3Recorder

    class CopyFails(S3Recorder):
        objects = {}

        def handle(self, req):
            if req.method == "PUT" and "x-amz-copy-source" in req.headers:
                return 200, [("x-amz-request-id", "copyfails")], (
                    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
                    b"<Message>copy failed late</Message><RequestId>copyfails</RequestId>"
                    b"</Error>")
            if req.method == "PUT":
                self.objects[req.path] = req.body
            if req.method == "HEAD" and req.path in self.objects:
                body = self.objects[req.path]
                return 200, [("ETag", '"%s"' % hashlib.md5(body).hexdigest())], body
            return super().handle(req)

    with CopyFails() as rec:
        port = rec.url.rsplit(":", 1)[1]
        # The stand-in has no DeleteObject: a.txt's old key stays (this is about the copy).
        m = mount(args=["--endpoint", f"http://localhost:{port}", "--no-delete-on-unlink"])
        write(m, "a b+c.txt", b"hello\n")
        wait_for(lambda: log_lines(m, "op=upload status=done", 'path="a b+c.txt"'),
                 what="the first upload")
        os.rename(m.path("a b+c.txt"), m.path("d.txt"))
        assert m.unmount() == 0, m.log()
        puts = [r for r in rec.puts() if r.path.endswith("/d.txt")]
    assert [("x-amz-copy-source" in p.headers, p.body) for p in puts] == \
        [(True, b""), (False, b"hello\n")]
    assert puts[0].headers["x-amz-copy-source"] == \
        f"/{BUCKET}/{names['prefix']}/a%20b%2Bc.txt"
    fallback = log_lines(m, "op=copy status=fallback", 'path="d.txt"')
    assert fallback and "http_status=200" in fallback[0] and 's3_code="InternalError"' in \
        fallback[0], m.log()


@pytest.mark.parametrize("size,small", [(3000, True), (4 << 20, False)], ids=["small", "large"])
def test_write_temp_then_rename_sends_the_bytes_once(pmount, proxy, s3, names, size, small):
    """A file written as out.tmp, closed and renamed to out.bin 50 ms later (rsync, editors,
    atomic saves). A small file goes up at its close (no settle: the seed's latency) and the
    rename is a server-side copy plus a delete of out.tmp's object; a large one waits the
    200 ms settle, so only out.bin goes up. Either way its bytes cross the wire once and
    only out.bin is left."""
    m = pmount()
    data = os.urandom(size)
    with open(m.path("out.tmp"), "wb") as f:
        f.write(data)
    time.sleep(0.05)
    os.rename(m.path("out.tmp"), m.path("out.bin"))
    wait_object(s3, key_of(names, "out.bin"), data)
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == [key_of(names, "out.bin")]
    st = proxy.stats()
    sent = put_body_bytes(st, "/out.tmp") + put_body_bytes(st, "/out.bin")
    assert sent == size, (sent, m.log())
    assert bool(log_lines(m, "op=copy status=done", 'path="out.bin"')) == small, m.log()
