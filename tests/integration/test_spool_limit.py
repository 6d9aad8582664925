# SPDX-License-Identifier: Apache-2.0
"""Room in the spool (issue "never lose an output", case 9): --spool-limit and the spool
filesystem's free space give the writer ENOSPC, never anyone else; files already in S3 are
evicted from the spool to make room (oldest upload first) unless --keep; a file that is not
yet in S3 is never evicted. Real mount, real radosgw, objects compared byte for byte.
"""
import errno
import os
import subprocess
import tempfile

import pytest

from helpers import BIN, BUCKET, MiB, get_bytes, list_keys, log_lines, wait_for, write_spec


def fill(path, size, chunk=256 * 1024, seed=0):
    """Writes up to @size bytes of a pattern with os.write; returns (bytes written, errno of
    the write that failed or None)."""
    data = bytes((seed + i) % 251 for i in range(chunk))
    done = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while done < size:
            try:
                n = os.write(fd, data[:min(chunk, size - done)])
            except OSError as e:
                return done, e.errno
            done += n
    finally:
        os.close(fd)
    return done, None


def pattern(size, chunk=256 * 1024, seed=0):
    data = bytes((seed + i) % 251 for i in range(chunk))
    return (data * (size // chunk + 1))[:size]


def in_s3(s3, key):
    try:
        return s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    except s3.exceptions.ClientError:
        return None


def wait_in_s3(s3, key, size, timeout=60):
    wait_for(lambda: in_s3(s3, key) == size, timeout, f"s3://{BUCKET}/{key} ({size} bytes)")


def evicted(m):
    return [l for l in log_lines(m, "op=evict") if "err=" not in l]


def test_a_write_past_the_limit_gets_enospc_and_earlier_files_still_upload(mount, s3, names):
    """Case 9: with --keep nothing can be evicted, so the writer gets ENOSPC at the limit,
    exactly (the spool counts apparent sizes); the file written before still uploads and stays
    readable, and rewriting a file in place (no growth) still works."""
    m = mount(args=["--spool-limit", "8M", "--keep"])
    first = pattern(4 * MiB, seed=1)
    assert fill(m.path("first.bin"), 4 * MiB, seed=1) == (4 * MiB, None)
    done, err = fill(m.path("big.bin"), 8 * MiB, seed=2)
    assert err == errno.ENOSPC, f"wrote {done} bytes and got errno {err}"
    assert done == 4 * MiB  # 4 MiB + 4 MiB = the limit
    assert os.path.getsize(m.path("big.bin")) == 4 * MiB
    # Still full: another file cannot grow, even by one byte ...
    with pytest.raises(OSError) as e:
        with open(m.path("small.txt"), "wb") as f:
            f.write(b"x")
    assert e.value.errno == errno.ENOSPC
    # ... but writing inside a file's size needs no room.
    with open(m.path("big.bin"), "r+b") as f:
        f.write(b"in place")
    prefix = names["prefix"]
    wait_in_s3(s3, f"{prefix}/first.bin", 4 * MiB)
    assert get_bytes(s3, f"{prefix}/first.bin") == first
    with open(m.path("first.bin"), "rb") as f:
        assert f.read() == first  # --keep: still in the spool after its upload
    assert m.unmount() == 0
    big = b"in place" + pattern(4 * MiB, seed=2)[8:]
    assert get_bytes(s3, f"{prefix}/big.bin") == big
    assert "spool is full" in m.log()
    assert not evicted(m)


def test_space_comes_back_as_uploads_finish(mount, s3, names):
    """Without --keep, a file already in S3 leaves the spool (and the mount) when a write
    needs its room; its object is intact."""
    m = mount(args=["--spool-limit", "8M"])
    prefix = names["prefix"]
    assert fill(m.path("a.bin"), 6 * MiB, seed=3) == (6 * MiB, None)
    wait_in_s3(s3, f"{prefix}/a.bin", 6 * MiB)
    assert fill(m.path("b.bin"), 6 * MiB, seed=4) == (6 * MiB, None)
    lines = evicted(m)
    assert len(lines) == 1 and 'path="a.bin"' in lines[0] and f'key="{prefix}/a.bin"' in lines[0], \
        m.log()
    assert not os.path.exists(m.path("a.bin"))
    assert os.path.exists(os.path.join(m.spool, "b.bin"))
    assert not os.path.exists(os.path.join(m.spool, "a.bin"))
    assert m.unmount() == 0
    assert get_bytes(s3, f"{prefix}/a.bin") == pattern(6 * MiB, seed=3)
    assert get_bytes(s3, f"{prefix}/b.bin") == pattern(6 * MiB, seed=4)


def test_a_file_not_yet_in_s3_is_never_evicted(proxy, pmount, s3, names):
    """The server is down: the first file cannot go, so the second writer gets ENOSPC; once
    the server is back and the first file is in S3, its room is reused."""
    proxy.refuse()
    m = pmount(args=["--spool-limit", "8M", "--no-check", "--retry-for", "120"])
    prefix = names["prefix"]
    assert fill(m.path("a.bin"), 6 * MiB, seed=5) == (6 * MiB, None)
    done, err = fill(m.path("b.bin"), 6 * MiB, seed=6)
    assert (done, err) == (2 * MiB, errno.ENOSPC)
    assert os.path.getsize(m.path("a.bin")) == 6 * MiB
    assert not evicted(m)
    proxy.accept()
    wait_in_s3(s3, f"{prefix}/a.bin", 6 * MiB)
    assert fill(m.path("c.bin"), 6 * MiB, seed=7) == (6 * MiB, None)
    assert any('path="a.bin"' in l for l in evicted(m)), m.log()
    assert m.unmount() == 0
    assert get_bytes(s3, f"{prefix}/a.bin") == pattern(6 * MiB, seed=5)
    assert get_bytes(s3, f"{prefix}/b.bin") == pattern(2 * MiB, seed=6)
    assert get_bytes(s3, f"{prefix}/c.bin") == pattern(6 * MiB, seed=7)


def test_an_open_file_is_not_evicted(mount, s3, names):
    m = mount(args=["--spool-limit", "8M"])
    prefix = names["prefix"]
    assert fill(m.path("a.bin"), 6 * MiB, seed=8) == (6 * MiB, None)
    wait_in_s3(s3, f"{prefix}/a.bin", 6 * MiB)
    with open(m.path("a.bin"), "rb") as reader:
        done, err = fill(m.path("b.bin"), 6 * MiB, seed=9)
        assert (done, err) == (2 * MiB, errno.ENOSPC)
        assert reader.read() == pattern(6 * MiB, seed=8)
    # Closed now: it can go, and the writer gets its room. The kernel stops showing the
    # evicted name when the mount's notification thread tells it, at the latest when the
    # 1 s entry timeout passes (README: eviction): not at once under load.
    assert fill(m.path("b.bin"), 6 * MiB, seed=9) == (6 * MiB, None)
    wait_for(lambda: not os.path.exists(m.path("a.bin")), timeout=2.0,
             what="the evicted a.bin gone from the mount")
    assert m.unmount() == 0
    assert get_bytes(s3, f"{prefix}/b.bin") == pattern(6 * MiB, seed=9)


def test_undeclared_files_count_and_are_never_evicted(mount, s3, names, tmp_path):
    spec = write_spec(tmp_path, [("out", "/tmp/out.bin", "")])
    m = mount(spec=spec, args=["--spool-limit", "8M"])
    assert fill(m.path("scratch.bin"), 6 * MiB, seed=10) == (6 * MiB, None)
    done, err = fill(m.path("out.bin"), 6 * MiB, seed=11)
    assert (done, err) == (2 * MiB, errno.ENOSPC)
    with open(m.path("scratch.bin"), "rb") as f:
        assert f.read() == pattern(6 * MiB, seed=10)
    assert m.unmount() == 0
    assert list_keys(s3, names["prefix"]) == [names["prefix"] + "/out.bin"]
    assert get_bytes(s3, names["prefix"] + "/out.bin") == pattern(2 * MiB, seed=11)


def test_unlink_truncate_and_rename_over_give_room_back(mount, names):
    m = mount(args=["--spool-limit", "8M", "--keep"])
    assert fill(m.path("x"), 6 * MiB) == (6 * MiB, None)
    assert fill(m.path("y"), 6 * MiB)[1] == errno.ENOSPC
    os.unlink(m.path("x"))
    assert fill(m.path("y"), 6 * MiB) == (6 * MiB, None)
    os.truncate(m.path("y"), 1 * MiB)
    assert fill(m.path("z"), 7 * MiB) == (7 * MiB, None)
    assert fill(m.path("w"), 1 * MiB)[1] == errno.ENOSPC  # 1 + 7 = 8: full
    # Renaming w (empty now) over z gives z's room back.
    os.rename(m.path("w"), m.path("z"))
    assert fill(m.path("v"), 6 * MiB) == (6 * MiB, None)
    # Growing a file with truncate or fallocate needs room too.
    with pytest.raises(OSError) as e:
        os.truncate(m.path("v"), 8 * MiB)
    assert e.value.errno == errno.ENOSPC
    fd = os.open(m.path("v"), os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.posix_fallocate(fd, 0, 8 * MiB)
        assert e.value.errno == errno.ENOSPC
        os.posix_fallocate(fd, 0, 7 * MiB)  # 1 + 7 = 8
    finally:
        os.close(fd)
    assert os.path.getsize(m.path("v")) == 7 * MiB
    assert m.unmount() == 0


def test_what_the_spool_already_holds_counts(mount, names, tmp_path):
    """A file left in the spool by an earlier run takes room from the start."""
    spool_root = str(tmp_path / "spool-kept")
    os.makedirs(os.path.join(spool_root, "files"))
    os.makedirs(os.path.join(spool_root, "journal"))
    with open(os.path.join(spool_root, "files", "left.bin"), "wb") as f:
        f.write(pattern(5 * MiB))
    spec = write_spec(tmp_path, [("out", "/tmp/out.bin", "")])
    m = mount(spec=spec, spool_root=spool_root, args=["--spool-limit", "8M"])
    assert fill(m.path("out.bin"), 6 * MiB) == (3 * MiB, errno.ENOSPC)
    assert "spool_used=5242880 spool_limit=8388608" in m.log()
    assert m.unmount() == 0


@pytest.mark.parametrize("value", ["lots", "0", "-5M", "8Q"])
def test_a_bad_spool_limit_is_one_clear_line(value, tmp_path):
    p = subprocess.run([BIN, "mount", "--spool-limit", value, "--endpoint",
                        "http://127.0.0.1:9", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--spool-limit" in lines[0] and value in lines[0], p.stderr


@pytest.fixture
def small_fs():
    """A 24 MiB tmpfs to hold a spool (needs root to mount)."""
    d = tempfile.mkdtemp(prefix="artifuse-small-", dir="/var/tmp")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", d],
                       capture_output=True, text=True)
    if p.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a small tmpfs for the spool (needs root): {p.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


@pytest.mark.parametrize("keep", [False, True], ids=["evict", "keep"])
def test_the_spool_disk_filling_up(mount, s3, names, small_fs, keep):
    """No --spool-limit: the free space of the spool's filesystem is the limit. A file in S3
    makes room (or, with --keep, the writer gets ENOSPC); uploads go on either way."""
    m = mount(spool_root=small_fs, args=["--keep"] if keep else [])
    prefix = names["prefix"]
    assert fill(m.path("a.bin"), 14 * MiB, seed=12) == (14 * MiB, None)
    wait_in_s3(s3, f"{prefix}/a.bin", 14 * MiB)
    done, err = fill(m.path("b.bin"), 14 * MiB, seed=13)
    if keep:
        assert err == errno.ENOSPC and 8 * MiB <= done < 10 * MiB, (done, err)
        assert os.path.getsize(m.path("a.bin")) == 14 * MiB
    else:
        assert (done, err) == (14 * MiB, None)
        assert any('path="a.bin"' in l for l in evicted(m)), m.log()
    assert m.unmount() == 0
    assert get_bytes(s3, f"{prefix}/a.bin") == pattern(14 * MiB, seed=12)
    assert get_bytes(s3, f"{prefix}/b.bin") == pattern(done, seed=13)


def test_eviction_never_deletes_the_object_even_with_delete_on_unlink(mount, s3, names):
    """Eviction is the mount making room, not the program removing a file: with
    --delete-on-unlink the evicted file's object stays in S3, and the name can be written
    again (and is uploaded again)."""
    m = mount(args=["--spool-limit", "8M", "--delete-on-unlink"])
    prefix = names["prefix"]
    assert fill(m.path("a.bin"), 6 * MiB, seed=14) == (6 * MiB, None)
    wait_in_s3(s3, f"{prefix}/a.bin", 6 * MiB)
    assert fill(m.path("b.bin"), 6 * MiB, seed=15) == (6 * MiB, None)
    assert any('path="a.bin"' in l for l in evicted(m)), m.log()
    wait_in_s3(s3, f"{prefix}/b.bin", 6 * MiB)
    assert in_s3(s3, f"{prefix}/a.bin") == 6 * MiB
    # The program writes the evicted name again: b.bin makes room now.
    with open(m.path("a.bin"), "wb") as f:
        f.write(b"second version")
    assert m.unmount() == 0
    assert "op=delete" not in m.log()
    assert get_bytes(s3, f"{prefix}/a.bin") == b"second version"
    assert get_bytes(s3, f"{prefix}/b.bin") == pattern(6 * MiB, seed=15)


def test_status_says_what_the_spool_holds(mount, names):
    m = mount(args=["--spool-limit", "8M", "--keep"])
    assert fill(m.path("x.bin"), 3 * MiB) == (3 * MiB, None)
    os.makedirs(m.path("d/e"))
    assert fill(m.path("d/e/y.bin"), 1000) == (1000, None)
    assert m.unmount() == 0
    import json
    r = subprocess.run([BIN, "status", "--json", "--spool", m.spool_root], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["held"] == {"files": 2, "bytes": 3 * MiB + 1000}
    r = subprocess.run([BIN, "status", "--spool", m.spool_root], capture_output=True, text=True)
    assert f"held:      2 files, {3 * MiB + 1000} bytes" in r.stdout, r.stdout
