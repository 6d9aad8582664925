# SPDX-License-Identifier: Apache-2.0
"""--upload-open-every: a file still open for writing gets its content, as of one instant,
uploaded to its key every interval while it changes; the close uploads it as usual.

Checked through boto3 straight against the server: the object grows while the writer runs;
after kill -9 of the daemon and the writer, S3 holds the log up to about one interval before
the kill, and a mount on the same spool uploads the rest (the journal knew the open file);
a file rewritten in place while it is snapshotted only ever shows whole versions in S3.
"""
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

from helpers import (MiB, get_bytes, key_of, kill9, log_lines, open_uploads, wait_for,
                     write_spec)

# A line a second, each flushed to the mount at once; prints how many bytes it wrote.
APPENDER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
t0 = time.monotonic()
for i in range(int(sys.argv[2])):
    os.write(fd, b"line %04d at %06.2f s %s\n" % (i, time.monotonic() - t0, b"x" * 40))
    time.sleep(max(0.0, t0 + i + 1 - time.monotonic()))
os.close(fd)
"""


def s3_size(s3, key):
    try:
        return len(get_bytes(s3, key))
    except s3.exceptions.NoSuchKey:
        return -1


def test_log_grows_in_s3_and_survives_kill9(mount, s3, names):
    args = ["--upload-open-every", "2s"]
    m = mount(args=args)
    key = key_of(names, "train.log")
    writer = subprocess.Popen([sys.executable, "-c", APPENDER, m.path("train.log"), "20"])
    t0 = time.monotonic()
    seen = []  # (seconds since start, bytes in S3)
    try:
        while time.monotonic() - t0 < 15:
            seen.append((round(time.monotonic() - t0, 1), s3_size(s3, key)))
            time.sleep(0.5)
        kill9(m)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    spool_file = os.path.join(m.spool, "train.log")
    written = open(spool_file, "rb").read()  # what the writer had written at the kill
    in_s3 = get_bytes(s3, key)
    sizes = sorted({n for _, n in seen if n > 0})
    lines_written, lines_in_s3 = written.count(b"\n"), in_s3.count(b"\n")
    print(f"\nopen-every 2s, kill -9 at 15 s: bytes written {len(written)} "
          f"({lines_written} lines), bytes in S3 {len(in_s3)} ({lines_in_s3} lines); "
          f"S3 sizes seen while writing: {sizes}")
    # The object grew while the writer ran, one snapshot at a time, before any close.
    assert len(sizes) >= 4, seen
    # Each snapshot is a whole-line prefix of what was written.
    assert written.startswith(in_s3) and in_s3.endswith(b"\n"), (len(in_s3), len(written))
    # S3 holds the log up to about one interval (and an upload) before the kill.
    assert lines_written >= 14, lines_written
    assert lines_in_s3 >= lines_written - 4, (lines_in_s3, lines_written)
    assert log_lines(m, "op=snapshot status=done", "train.log")

    # The journal knew the open file: a mount on the same spool uploads all of it.
    m2 = mount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    assert get_bytes(s3, key) == written


# Rewrites the file in place as fast as it can for a while: every other round truncates it
# first, the others overwrite it as it is; each version is one write of VERSION_BYTES.
REWRITER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    n += 1
    if n % 2:
        os.ftruncate(fd, 0)
    os.pwrite(fd, b"v%07d\n" % n * 6000, 0)
    time.sleep(0.0005)
os.close(fd)
print(n)
"""
LINES = 6000


def version_of(data):
    """The version @data holds whole, 0 for the empty file; None for anything else (a mix
    of two versions, or one cut short)."""
    if not data:
        return 0
    lines = data.split(b"\n")
    if len(lines) != LINES + 1 or lines[-1] != b"" or len(set(lines[:-1])) != 1:
        return None
    return int(re.fullmatch(rb"v(\d{7})", lines[0]).group(1))


def test_rewritten_in_place_only_whole_versions(mount, s3, names):
    m = mount(args=["--upload-open-every", "100ms"])
    key = key_of(names, "state.txt")
    writer = subprocess.Popen([sys.executable, "-c", REWRITER, m.path("state.txt"), "8"],
                              stdout=subprocess.PIPE)
    versions, bad = set(), []
    try:
        while writer.poll() is None:
            try:
                data = get_bytes(s3, key)
            except s3.exceptions.NoSuchKey:
                continue
            v = version_of(data)
            if v is None:
                bad.append((len(data), data[:16], data[-16:]))
            else:
                versions.add(v)
    finally:
        out, _ = writer.communicate(timeout=30)
    rounds = int(out)
    print(f"\nrewrites: {rounds}; versions seen in S3: {len(versions)}; "
          f"snapshots done: {len(log_lines(m, 'op=snapshot status=done'))}")
    assert not bad, bad[:3]
    assert len(versions - {0}) >= 5, versions
    assert m.unmount() == 0, m.log()
    assert version_of(get_bytes(s3, key)) == rounds  # the close's upload is the last word


def test_streaming_file_keeps_its_stream(mount, s3, names):
    """A file that streams (written in order past the threshold) is snapshotted as an object
    of its own: its stream's parts stay, and its close completes the stream."""
    m = mount(args=["--upload-open-every", "500ms", "--multipart-threshold", "5M",
                    "--part-size", "5M"])
    key = key_of(names, "big.bin")
    data = os.urandom(13 * MiB)
    with open(m.path("big.bin"), "wb", buffering=0) as f:
        for i in range(0, len(data), MiB):
            f.write(data[i:i + MiB])
            time.sleep(0.3)
            if i == 8 * MiB:  # a snapshot past the threshold, while it streams
                wait_for(lambda: s3_size(s3, key) > 5 * MiB, 20, "a snapshot past 5M")
                body = get_bytes(s3, key)
                assert body == data[:len(body)]
        # Once it stops changing, its last snapshot is all of it; only the stream is open.
        wait_for(lambda: s3_size(s3, key) == len(data), 20, "a snapshot of all of it")
        assert get_bytes(s3, key) == data
        wait_for(lambda: len(open_uploads(s3, key)) == 1, 10, "the snapshot's upload done")
    assert m.unmount() == 0, m.log()
    assert log_lines(m, "op=stream status=handover", "big.bin", "parts_sent=2")
    assert not log_lines(m, "op=stream status=abandon")
    assert get_bytes(s3, key) == data
    assert open_uploads(s3, names["prefix"]) == []


def test_fsync_is_never_undone_by_a_snapshot(mount, s3, names):
    """fsync() returns once the file is in S3; a snapshot of an older version, copied before
    it, must not land after it."""
    m = mount(args=["--upload-open-every", "100ms"])
    key = key_of(names, "ckpt.txt")
    fd = os.open(m.path("ckpt.txt"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        for n in range(1, 41):
            data = b"v%07d\n" % n * LINES
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            assert get_bytes(s3, key) == data, n
            time.sleep(0.03 * (n % 5))  # now and then, a snapshot interval passes
        time.sleep(0.5)  # a few intervals: nothing changed, nothing older comes
        assert get_bytes(s3, key) == data
    finally:
        os.close(fd)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key) == data


def test_snapshot_of_a_name_gone_is_deleted(mount, s3, names):
    """Deletes by default: a snapshot's object belongs to its name, so renaming the open file
    away, or unlinking it, removes that object as it would a closed file's."""
    m = mount(args=["--upload-open-every", "200ms"])
    tmp_key, final_key, gone_key = (key_of(names, n) for n in ("run.tmp", "run.log", "gone.log"))
    with open(m.path("run.tmp"), "wb", buffering=0) as f, \
            open(m.path("gone.log"), "wb", buffering=0) as g:
        f.write(b"first\n")
        g.write(b"scratch\n")
        wait_for(lambda: s3_size(s3, tmp_key) == 6 and s3_size(s3, gone_key) == 8, 10,
                 "snapshots of both")
        os.rename(m.path("run.tmp"), m.path("run.log"))
        os.unlink(m.path("gone.log"))
        f.write(b"second\n")
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, final_key) == b"first\nsecond\n"
    assert s3_size(s3, tmp_key) == -1 and s3_size(s3, gone_key) == -1, m.log()


def test_archived_artifact_snapshot_is_its_archive(mount, s3, names, tmp_path):
    """An artifact with archive: tar is snapshotted as its .tgz, built from the copy with the
    file's own name and mode."""
    spec = write_spec(tmp_path, [("metrics", "/tmp/metrics.csv", "archive:\n  tar: {}\n")])
    m = mount(spec=spec, args=["--upload-open-every", "200ms"])
    key = key_of(names, "metrics.tgz")

    def member():
        try:
            blob = get_bytes(s3, key)
        except s3.exceptions.NoSuchKey:
            return None
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
            (info,) = t.getmembers()
            return info.name, info.mode, t.extractfile(info).read()

    with open(m.path("metrics.csv"), "wb", buffering=0) as f:
        os.fchmod(f.fileno(), 0o640)
        f.write(b"step,loss\n1,0.9\n")
        wait_for(lambda: member() == ("metrics.csv", 0o640, b"step,loss\n1,0.9\n"), 10,
                 "the snapshot's archive")
        f.write(b"2,0.5\n")
    assert m.unmount() == 0, m.log()
    assert member() == ("metrics.csv", 0o640, b"step,loss\n1,0.9\n2,0.5\n")
