# SPDX-License-Identifier: Apache-2.0
"""fsync() and --sync-close: durable means in S3, and a failure is the program's EIO."""
import errno
import os

import pytest

from helpers import get_bytes, list_keys, write, write_spec


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
