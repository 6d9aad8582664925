# SPDX-License-Identifier: Apache-2.0
"""Streaming: a file written in order starts its multipart upload once it
passes --multipart-threshold, while the program is still writing; at the last close only
the tail part and CompleteMultipartUpload remain. Anything that changes bytes already sent
(a write behind them, a truncate, mmap write-back) abandons the stream: it is aborted and
the file goes up whole at close.

Every check goes through boto3 straight to the server: ListMultipartUploads and ListParts
while the file is still open, the object's bytes after close, and no upload left open.
"""
import mmap
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import (BIN, BUCKET, MiB, get_bytes, journal_text, kill9, list_keys, log_lines,
                     open_uploads, put_body_bytes, wait_for, write_chunks, write_spec)

PART = 5 * MiB
# Stream from the first part: the threshold is one part.
ARGS = ["--part-size", "5M", "--multipart-threshold", "5M", "-v"]


def uploads_for(s3, key):
    return [u for u in open_uploads(s3, key) if u["Key"] == key]


def wait_aborted(s3, key, what="the stream's upload aborted"):
    """Waits until no multipart upload of @key is open: its stream was aborted."""
    wait_for(lambda: uploads_for(s3, key) == [], 20, what)


def parts_of(s3, key):
    """The parts of the one upload in progress for @key ([] if there is none)."""
    ups = uploads_for(s3, key)
    if len(ups) != 1:
        return []
    r = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=ups[0]["UploadId"])
    return r.get("Parts", [])


def open_streaming(m, s3, key, rel, data, parts, mode="wb"):
    """Opens @rel, writes @data and returns the file, still open, once S3 holds @parts parts
    of its stream."""
    f = open(m.path(rel), mode)
    try:
        write_chunks(f, data)
        wait_for(lambda: len(parts_of(s3, key)) >= parts, 60, f"{parts} parts of {rel} up")
    except BaseException:
        f.close()
        raise
    return f


def journaled(m, part):
    """Whether the journal records the CRC-32C of part @part of a stream."""
    return f"\npartsum {part} " in journal_text(m)


def assert_object(s3, key, data):
    body = get_bytes(s3, key)
    assert len(body) == len(data)
    assert body == data, f"{key}: content differs"
    assert uploads_for(s3, key) == []


# -- 1. parts are in S3 while the file is still open -------------------------------------

def test_sequential_writer_streams_parts_while_open(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/seq.bin"
    data = os.urandom(48 * MiB)  # 9 whole parts and a 3 MiB tail
    with open(m.path("seq.bin"), "wb") as f:
        write_chunks(f, data)
        # Still open: the upload is in progress and holds the whole parts, byte-exact.
        parts = wait_for(lambda: len(parts_of(s3, key)) >= 9 and parts_of(s3, key), 60,
                         "9 parts in S3 while the file is open")
        assert [p["PartNumber"] for p in parts] == list(range(1, 10))
        assert all(p["Size"] == PART for p in parts)
        assert list_keys(s3, names["prefix"]) == []  # not an object before close
    assert m.unmount() == 0, m.log()
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head["ETag"].strip('"').endswith("-10"), head["ETag"]
    assert_object(s3, key, data)
    assert open_uploads(s3, names["prefix"]) == []
    assert log_lines(m, "op=stream status=start", "seq.bin")
    assert log_lines(m, "op=stream status=handover", "parts_sent=9", "parts=10")
    assert not log_lines(m, "op=stream status=abandon")


# -- 2. after close only the tail goes up ------------------------------------------------

def test_after_close_only_the_tail_is_sent(proxy, pmount, s3, names):
    """Through the proxy's byte count: once the stream has caught up with the writer, the
    close costs the 3 MiB tail and nothing else."""
    m = pmount(args=ARGS)
    key = f"{names['prefix']}/tail.bin"
    data = os.urandom(48 * MiB)
    with open(m.path("tail.bin"), "wb") as f:
        write_chunks(f, data)
        wait_for(lambda: len(parts_of(s3, key)) >= 9, 60, "the 9 whole parts")
        before = put_body_bytes(proxy.stats(), "tail.bin")
        assert before == 9 * PART, before
        t_close = time.monotonic()
    wait_for(lambda: list_keys(s3, names["prefix"]) == [key], 30, "the object")
    took = time.monotonic() - t_close
    assert m.unmount() == 0, m.log()
    after = put_body_bytes(proxy.stats(), "tail.bin") - before
    print(f"\n[streaming tail] 48 MiB file: {before} body bytes before close, {after} after; "
          f"object in S3 {took:.2f} s after close")
    assert after == 3 * MiB, after  # the tail part, and nothing sent again
    assert_object(s3, key, data)


# -- 3. a write behind the parts sent abandons the stream --------------------------------

def test_write_behind_abandons_and_the_file_goes_up_whole(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/behind.bin"
    data = bytearray(os.urandom(30 * MiB))
    with open_streaming(m, s3, key, "behind.bin", bytes(data[:20 * MiB]), 2) as f:
        os.pwrite(f.fileno(), b"REWRITTEN", 0)
        data[0:9] = b"REWRITTEN"
        wait_for(lambda: log_lines(m, "op=stream status=abandon", "behind.bin"), 10,
                 "the abandon line")
        # The upload is aborted while the file is still open.
        wait_aborted(s3, key)
        write_chunks(f, bytes(data[20 * MiB:]))
        time.sleep(0.5)  # no new stream starts for this file
        assert uploads_for(s3, key) == []
    assert m.unmount() == 0, m.log()
    assert "write behind" in log_lines(m, "op=stream status=abandon")[0]
    assert len(log_lines(m, "op=stream status=start", "behind.bin")) == 1
    assert_object(s3, key, bytes(data))
    assert open_uploads(s3, names["prefix"]) == []


# -- 4. ftruncate abandons ---------------------------------------------------------------

def test_ftruncate_abandons(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/trunc.bin"
    data = os.urandom(24 * MiB)
    with open_streaming(m, s3, key, "trunc.bin", data, 2) as f:
        os.ftruncate(f.fileno(), 7 * MiB)
        wait_for(lambda: log_lines(m, "op=stream status=abandon", "reason=\"truncate\""), 10,
                 "the abandon line")
        wait_aborted(s3, key)
        f.seek(7 * MiB)
        tail = os.urandom(3 * MiB)
        f.write(tail)
    assert m.unmount() == 0, m.log()
    assert_object(s3, key, data[:7 * MiB] + tail)
    assert open_uploads(s3, names["prefix"]) == []


def test_truncate_to_zero_streams_afresh(mount, s3, names):
    """O_TRUNC on a file that was streaming: the old stream is aborted and the new content,
    written in order again, streams on its own."""
    m = mount(args=ARGS)
    key = f"{names['prefix']}/again.bin"
    with open(m.path("again.bin"), "wb") as f:
        write_chunks(f, os.urandom(12 * MiB))
        wait_for(lambda: len(parts_of(s3, key)) >= 2, 60, "2 parts of the first version")
        first = uploads_for(s3, key)[0]["UploadId"]
        data = os.urandom(17 * MiB)
        with open(m.path("again.bin"), "wb") as g:  # O_TRUNC while the first is open
            write_chunks(g, data)
            wait_for(lambda: [u for u in uploads_for(s3, key) if u["UploadId"] != first]
                     and len(parts_of(s3, key)) >= 3, 60, "the second version's stream")
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=abandon", "O_TRUNC")
    assert len(log_lines(m, "op=stream status=start", "again.bin")) == 2
    assert_object(s3, key, data)


# -- 5. O_APPEND ----------------------------------------------------------------------------

def test_append_writer_streams(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/log.txt"
    data = os.urandom(21 * MiB)
    fd = os.open(m.path("log.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(0, len(data), 256 * 1024):
            os.write(fd, data[i:i + 256 * 1024])
        wait_for(lambda: len(parts_of(s3, key)) >= 4, 60, "4 parts while appending")
    finally:
        os.close(fd)
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=handover", "log.txt", "parts=5")
    assert_object(s3, key, data)


# -- 6. mmap write-back behind the parts sent ------------------------------------------------

def test_mmap_write_behind_abandons(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/mapped.bin"
    data = bytearray(os.urandom(22 * MiB))
    with open_streaming(m, s3, key, "mapped.bin", bytes(data), 2, mode="w+b") as f:
        with mmap.mmap(f.fileno(), len(data)) as mm:
            mm[100:110] = b"0123456789"
            mm.flush()  # msync: the kernel writes the page back through the mount
        data[100:110] = b"0123456789"
        wait_for(lambda: log_lines(m, "op=stream status=abandon", "mapped.bin"), 10,
                 "the abandon line")
    assert m.unmount() == 0, m.log()
    assert_object(s3, key, bytes(data))
    assert open_uploads(s3, names["prefix"]) == []


# -- 7. kill -9 mid-stream, then mount again on the same spool --------------------------

def test_kill9_mid_stream_then_mount_again(mount, s3, names):
    args = ["--part-size", "5M", "--multipart-threshold", "5M"]
    m = mount(args=args)
    key = f"{names['prefix']}/killed.bin"
    data = os.urandom(27 * MiB)
    f = open_streaming(m, s3, key, "killed.bin", data, 5)
    wait_for(lambda: journaled(m, 5), 10, "5 parts journaled")
    kill9(m, f)
    assert list_keys(s3, names["prefix"]) == []
    assert len(uploads_for(s3, key)) == 1  # left open by the kill, and journaled

    m2 = mount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    resumed = log_lines(m2, "status=resume", "parts_done=")
    assert resumed, m2.log()
    assert int(re.search(r"parts_done=(\d+)", resumed[0]).group(1)) == 5, resumed
    assert_object(s3, key, data)
    assert open_uploads(s3, names["prefix"]) == []


def test_kill9_stream_with_changed_file_restarts_cleanly(mount, s3, names):
    """The spool file changes behind the journal's back after the kill: the parts whose
    bytes no longer match are sent again, so the object is the file as it is."""
    args = ["--part-size", "5M", "--multipart-threshold", "5M"]
    m = mount(args=args)
    key = f"{names['prefix']}/changed.bin"
    data = bytearray(os.urandom(17 * MiB))
    f = open_streaming(m, s3, key, "changed.bin", bytes(data), 3)
    wait_for(lambda: journaled(m, 3), 10, "3 parts journaled")
    kill9(m, f)
    with open(os.path.join(m.spool, "changed.bin"), "r+b") as g:
        g.seek(6 * MiB)
        g.write(b"CHANGED")  # inside part 2
    data[6 * MiB:6 * MiB + 7] = b"CHANGED"
    m2 = mount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    resumed = log_lines(m2, "status=resume", "parts_done=")
    assert resumed and "parts_done=2" in resumed[0], m2.log()
    assert_object(s3, key, bytes(data))
    assert open_uploads(s3, names["prefix"]) == []


# -- 8. and 9. what never streams ------------------------------------------------------------

def test_below_the_threshold_never_streams(mount, s3, names):
    m = mount(args=["--part-size", "5M", "--multipart-threshold", "16M", "-v"])
    key = f"{names['prefix']}/small.bin"
    data = os.urandom(16 * MiB - 1)
    with open(m.path("small.bin"), "wb") as f:
        write_chunks(f, data)
        time.sleep(1.0)  # time enough for a stream to show, had one started
        assert uploads_for(s3, key) == []
    assert m.unmount() == 0, m.log()
    assert not log_lines(m, "op=stream")
    assert "-" not in s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert_object(s3, key, data)


def test_no_streaming_flag(mount, s3, names):
    m = mount(args=[*ARGS, "--no-streaming"])
    key = f"{names['prefix']}/off.bin"
    data = os.urandom(12 * MiB)
    with open(m.path("off.bin"), "wb") as f:
        write_chunks(f, data)
        time.sleep(1.0)
        assert uploads_for(s3, key) == []
    assert m.unmount() == 0, m.log()
    assert not log_lines(m, "op=stream")
    assert_object(s3, key, data)


def test_archived_and_undeclared_files_never_stream(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("raw", "/tmp/raw.bin", ""),
                                 ("packed", "/tmp/packed.bin", "archive:\n  tar: {}\n")])
    m = mount(spec=spec, args=ARGS)
    raw, packed, other = (os.urandom(11 * MiB) for _ in range(3))
    with open(m.path("packed.bin"), "wb") as f, open(m.path("undeclared.bin"), "wb") as g, \
            open(m.path("raw.bin"), "wb") as h:
        write_chunks(f, packed)
        write_chunks(g, other)
        write_chunks(h, raw)
        wait_for(lambda: len(parts_of(s3, f"{names['prefix']}/raw.bin")) >= 2, 60,
                 "the declared raw file streaming")
        assert open_uploads(s3, names["prefix"]) != []
        assert [u["Key"] for u in open_uploads(s3, names["prefix"])] == \
            [f"{names['prefix']}/raw.bin"]
    assert m.unmount() == 0, m.log()
    starts = log_lines(m, "op=stream status=start")
    assert len(starts) == 1 and "raw.bin" in starts[0], starts
    p = names["prefix"]
    assert list_keys(s3, p) == [f"{p}/packed.tgz", f"{p}/raw.bin"]
    assert_object(s3, f"{p}/raw.bin", raw)


# -- fsync and shutdown while streaming ---------------------------------------------------

def test_fsync_while_streaming_means_the_current_content_is_in_s3(mount, s3, names):
    """fsync() takes the stream over: when it returns, the object is the file so far. The
    writing goes on, streams again from part 1, and the close gives the final content."""
    m = mount(args=ARGS)
    key = f"{names['prefix']}/synced.bin"
    first, second = os.urandom(13 * MiB), os.urandom(9 * MiB)
    with open(m.path("synced.bin"), "wb") as f:
        write_chunks(f, first)
        wait_for(lambda: len(parts_of(s3, key)) >= 2, 60, "2 parts up")
        os.fsync(f.fileno())
        assert get_bytes(s3, key) == first  # no waiting: fsync said it is there
        assert log_lines(m, "op=stream status=handover", "synced.bin")
        write_chunks(f, second)
        wait_for(lambda: len(parts_of(s3, key)) >= 3, 60, "the new stream's parts")
    assert m.unmount() == 0, m.log()
    assert len(log_lines(m, "op=stream status=start", "synced.bin")) == 2
    assert_object(s3, key, first + second)
    assert open_uploads(s3, names["prefix"]) == []


def test_sigterm_while_a_streaming_file_is_open(mount, s3, names):
    """A file still open for writing at shutdown goes up as the spool holds it (as any open
    file does), through its stream: its parts are reused and nothing is left open."""
    m = mount(args=ARGS)
    key = f"{names['prefix']}/open.bin"
    data = os.urandom(18 * MiB)
    f = open_streaming(m, s3, key, "open.bin", data, 3)
    try:
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=60) == 0, m.log()
    finally:
        try:
            f.close()
        except OSError:
            pass  # the mount went away under the open file
    subprocess.run(["fusermount3", "-u", "-z", m.mnt])
    assert log_lines(m, "op=stream status=handover", "open.bin", "parts_sent=3")
    assert_object(s3, key, data)
    assert open_uploads(s3, names["prefix"]) == []


def test_a_streamed_part_failing_every_attempt_goes_up_at_close(proxy, pmount, s3, names):
    """Part 2 is reset on each of the stream's attempts: the stream stops sending (it does
    not give up the parts it has), and the close's upload sends part 2 and the rest under
    the same upload, with no file-level retry. Intact object, nothing left open."""
    m = pmount(args=ARGS)
    key = f"{names['prefix']}/flaky.bin"
    data = os.urandom(17 * MiB)
    proxy.reset_after(MiB, times=4, match=("PUT", "partNumber=2&"))  # 4 = the part's tries
    with open(m.path("flaky.bin"), "wb") as f:
        write_chunks(f, data)
        wait_for(lambda: log_lines(m, "op=stream status=stalled", "part=2"), 60,
                 "the stream giving up on part 2")
    assert m.unmount() == 0, m.log()
    st = proxy.stats()
    assert st["resets"] == 4, st["resets"]
    assert st["by_method"].get("DELETE", 0) == 0, st["by_method"]  # nothing aborted
    assert st["by_method"].get("POST", 0) == 2, st["by_method"]  # 1 Create + 1 Complete
    assert not log_lines(m, "op=upload status=retry")
    assert log_lines(m, "op=stream status=handover", "flaky.bin")
    assert_object(s3, key, data)
    assert open_uploads(s3, names["prefix"]) == []


def test_kill9_mid_stream_then_drain(mount, s3, names, s3env):
    """The same, finished by `artifuse drain` instead of a new mount."""
    m = mount(args=["--part-size", "5M", "--multipart-threshold", "5M"])
    key = f"{names['prefix']}/drained.bin"
    data = os.urandom(16 * MiB)
    f = open_streaming(m, s3, key, "drained.bin", data, 3)
    wait_for(lambda: journaled(m, 3), 10, "3 parts journaled")
    kill9(m, f)
    r = subprocess.run([BIN, "drain", "--spool", m.spool_root, "--part-size", "5M",
                        "--multipart-threshold", "5M"], env=dict(os.environ, **s3env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"status=resume .*parts_done=3", r.stderr), r.stderr
    assert_object(s3, key, data)
    assert open_uploads(s3, names["prefix"]) == []


# -- rename and unlink while streaming --------------------------------------------------------

def test_rename_while_streaming_abandons_and_the_new_name_goes_up(mount, s3, names):
    """The key follows the name, so the stream under the old key is aborted; the file goes
    up whole, under its new name, at close."""
    m = mount(args=ARGS)
    old, new = f"{names['prefix']}/part.tmp", f"{names['prefix']}/final.bin"
    data = os.urandom(16 * MiB)
    with open_streaming(m, s3, old, "part.tmp", data[:12 * MiB], 2) as f:
        os.rename(m.path("part.tmp"), m.path("final.bin"))
        wait_aborted(s3, old, "the old key's upload aborted")
        write_chunks(f, data[12 * MiB:])
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=abandon", "part.tmp", "reason=\"rename\"")
    assert list_keys(s3, names["prefix"]) == [new]
    assert_object(s3, new, data)
    assert open_uploads(s3, names["prefix"]) == []


def test_unlink_while_streaming_leaves_nothing(mount, s3, names):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/gone.bin"
    with open_streaming(m, s3, key, "gone.bin", os.urandom(12 * MiB), 2) as f:
        os.unlink(m.path("gone.bin"))
        wait_aborted(s3, key, "the upload aborted")
        f.write(b"more, into the unlinked file")
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=abandon", "reason=\"unlink\"")
    assert list_keys(s3, names["prefix"]) == []
    assert open_uploads(s3, names["prefix"]) == []


# -- other changes behind the parts sent ------------------------------------------------------

def _punch_hole(fd, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, 0x02 | 0x01, off, length) != 0:  # PUNCH_HOLE | KEEP_SIZE
        raise OSError(ctypes.get_errno(), "fallocate")


def _copy_into(m, fd):
    with open(m.path("src.txt"), "wb") as src:
        src.write(b"S" * 8192)
    with open(m.path("src.txt"), "rb") as src:
        assert os.copy_file_range(src.fileno(), fd, 8192, 0, 0) == 8192


@pytest.mark.parametrize("change,reason", [
    (lambda m, fd: os.pwrite(fd, b"past the end", 13 * MiB), "gap"),
    (lambda m, fd: _punch_hole(fd, 0, 65536), "fallocate"),
    (_copy_into, "copy_file_range"),
])
def test_other_changes_abandon(mount, s3, names, change, reason):
    m = mount(args=ARGS)
    key = f"{names['prefix']}/changed.bin"
    with open_streaming(m, s3, key, "changed.bin", os.urandom(12 * MiB), 2, "w+b") as f:
        change(m, f.fileno())
        wait_for(lambda: log_lines(m, "op=stream status=abandon", "changed.bin", reason), 10,
                 "the abandon line")
        wait_aborted(s3, key)
    with open(m.path("changed.bin"), "rb") as f:
        want = f.read()
    assert m.unmount() == 0, m.log()
    assert_object(s3, key, want)
    assert open_uploads(s3, names["prefix"]) == []


def test_sync_close_of_a_streaming_file(mount, s3, names):
    """--sync-close: close() returns once the object is in S3, and it took the stream's
    parts rather than sending the file again."""
    m = mount(args=[*ARGS, "--sync-close"])
    key = f"{names['prefix']}/closed.bin"
    data = os.urandom(17 * MiB)
    with open_streaming(m, s3, key, "closed.bin", data, 3):
        pass
    assert get_bytes(s3, key) == data  # no waiting: close() said it is there
    assert log_lines(m, "op=stream status=handover", "closed.bin", "parts=4")
    assert m.unmount() == 0, m.log()
    assert open_uploads(s3, names["prefix"]) == []


def test_hard_link_while_streaming_abandons(mount, s3, names):
    """A second name: both names' objects must be the file, so it goes up whole."""
    m = mount(args=ARGS)
    a, b = f"{names['prefix']}/a.bin", f"{names['prefix']}/b.bin"
    data = os.urandom(14 * MiB)
    with open_streaming(m, s3, a, "a.bin", data[:11 * MiB], 2) as f:
        os.link(m.path("a.bin"), m.path("b.bin"))
        wait_aborted(s3, a)
        write_chunks(f, data[11 * MiB:])
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=abandon", "reason=\"link\"")
    assert_object(s3, a, data)
    assert_object(s3, b, data)
