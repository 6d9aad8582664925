# SPDX-License-Identifier: Apache-2.0
"""fsync() and --sync-close: durable means in S3, and a failure is the program's EIO."""
import errno
import os

import pytest

from helpers import get_bytes, key_of, list_keys, write, write_spec


def test_fsync_returns_when_the_content_is_in_s3(mount, s3, names):
    m = mount()
    key = f"{names['prefix']}/log.txt"
    fd = os.open(m.path("log.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"first line\n")
    os.fsync(fd)
    # No waiting: fsync has returned, so the object is there, with what was written so far.
    assert get_bytes(s3, key) == b"first line\n"
    os.write(fd, b"second line\n")
    os.fdatasync(fd)
    assert get_bytes(s3, key) == b"first line\nsecond line\n"
    os.close(fd)
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, key) == b"first line\nsecond line\n"


def test_fsync_reports_an_upload_failure_as_eio(mount, s3, names):
    m = mount(args=["--upload-attempts", "1"], env={"AWS_SECRET_ACCESS_KEY": "wrong-00000000000"})
    fd = os.open(m.path("x.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"x")
    with pytest.raises(OSError) as e:
        os.fsync(fd)
    assert e.value.errno == errno.EIO
    os.close(fd)
    assert "SignatureDoesNotMatch" in m.log()
    m.unmount()
    assert list_keys(s3, names["prefix"]) == []


def test_fsync_of_a_file_that_is_not_an_output_is_local(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("out", "/tmp/out.txt", "")])
    m = mount(spec=spec)
    with open(m.path("scratch.txt"), "w") as f:
        f.write("s")
        f.flush()
        os.fsync(f.fileno())
    assert m.unmount() == 0, m.log()
    assert list_keys(s3, names["prefix"]) == []


def test_sync_close_makes_close_wait_and_report(mount, s3, names):
    m = mount(args=["--sync-close"])
    write(m, "a.txt", "a")
    # close() has returned: already in S3
    assert get_bytes(s3, f"{names['prefix']}/a.txt") == b"a"
    assert m.unmount() == 0, m.log()
    assert m.log().count("status=done") == 1  # not uploaded again at release


def test_sync_close_failure_is_eio_at_close(mount, s3, names):
    m = mount(args=["--sync-close", "--upload-attempts", "1"],
              env={"AWS_SECRET_ACCESS_KEY": "wrong-00000000000"})
    fd = os.open(m.path("b.txt"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"b")
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EIO
    m.unmount()
    assert open(os.path.join(m.spool, "b.txt")).read() == "b"


def test_fsync_right_after_close_waits_for_the_upload(mount, s3, names):
    """close() then open() and fsync() at once, while two writers keep the queue busy: the
    fsync returns only once the file is in S3 (the close's hand-over, in a RELEASE FUSE
    answers asynchronously, once raced it and fsync returned 0 with nothing in S3; found by
    the soak, 1 violation in a few hundred)."""
    import threading
    m = mount(args=["--unmatched", "upload"])
    stop = threading.Event()

    def busy(n):
        i = 0
        while not stop.is_set():
            with open(m.path(f"bg{n}-{i % 5}"), "wb") as f:
                f.write(os.urandom(60000))
            i += 1

    threads = [threading.Thread(target=busy, args=(n,), daemon=True) for n in range(2)]
    for t in threads:
        t.start()
    bad = []
    try:
        for i in range(100):
            data = os.urandom(53354)
            with open(m.path(f"g{i}"), "wb") as f:
                f.write(data)
            fd = os.open(m.path(f"g{i}"), os.O_WRONLY | os.O_APPEND)
            try:
                os.fsync(fd)
                try:
                    got = get_bytes(s3, key_of(names, f"g{i}"))
                except s3.exceptions.NoSuchKey:
                    got = None
                if got != data:
                    bad.append((i, None if got is None else len(got)))
            finally:
                os.close(fd)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert m.unmount() == 0, m.log()
    assert bad == [], f"fsync returned before the file was in S3: {bad}"
