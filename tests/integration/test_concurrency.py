# SPDX-License-Identifier: Apache-2.0
"""Concurrency: many processes writing through one mount at once.

- 8 writer processes x 200 files each (some rewritten, some written in many pieces), while
  another process lists and stats the tree: every file arrives in S3 with the right content,
  nothing deadlocks (every wait is bounded), and the daemon exits 0 at unmount.
- Two processes appending to one file with O_APPEND (one through a long-lived descriptor,
  one opening and closing it for every record, so uploads run while the file grows): no
  record is lost or torn, and the final object equals the final file.
- Two processes writing different regions of one file (one with pwrite, one through a
  MAP_SHARED mapping), closing and reopening as they go: the final object equals the final
  file, which is both regions.

Run with ARTIFUSE_BIN pointing at a ThreadSanitizer build (scripts/tsan) these are the
daemon's race tests.
"""
import concurrent.futures
import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time

from helpers import get_bytes, list_keys

WRITERS = 8
FILES = 200
TIMEOUT = 120  # seconds any phase may take before the test calls it a deadlock


def content(w, j):
    """The final bytes of writer @w's file @j: 0 to ~24 kB, derived from (w, j)."""
    seed = hashlib.sha256(b"%d-%d" % (w, j)).digest()
    return (seed * (1 + seed[0] * 3))[: (seed[1] * 97) % 24000]


WRITER = textwrap.dedent("""
    import hashlib, os, sys
    root, w, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    def content(w, j):
        seed = hashlib.sha256(b"%d-%d" % (w, j)).digest()
        return (seed * (1 + seed[0] * 3))[: (seed[1] * 97) % 24000]
    d = os.path.join(root, "w%d" % w, "sub%d" % (w % 3))
    os.makedirs(d, exist_ok=True)
    for j in range(n):
        p = os.path.join(d, "f%03d.bin" % j)
        data = content(w, j)
        if j % 5 == 0:  # a first version, closed (uploaded), then rewritten
            with open(p, "wb") as f:
                f.write(b"first version %d %d" % (w, j))
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        step = 1000 if j % 3 == 0 else len(data) or 1  # some in many small writes
        for off in range(0, len(data), step):
            os.write(fd, data[off:off + step])
        os.close(fd)
""")

BROWSER = textwrap.dedent("""
    import os, sys, time
    root, stop = sys.argv[1], sys.argv[2]
    while not os.path.exists(stop):
        for d, dirs, files in os.walk(root):
            for f in files:
                try:
                    os.stat(os.path.join(d, f))
                except FileNotFoundError:
                    pass
        time.sleep(0.01)
""")


def spawn(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(procs, timeout=TIMEOUT):
    """Waits for every process (at most @timeout seconds in all); asserts each exited 0."""
    end = time.monotonic() + timeout
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(0.1, end - time.monotonic()))
            assert p.returncode == 0, f"{p.args} exited {p.returncode}:\n{err.decode()}"
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        raise AssertionError(f"processes still running after {timeout}s: a deadlock?")


def fetch_all(s3, keys):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        return dict(zip(keys, ex.map(lambda k: get_bytes(s3, k), keys)))


def test_many_writers(mount, s3, names, tmp_path):
    m = mount()
    stop = tmp_path / "stop-browsing"
    browser = spawn(BROWSER, m.mnt, stop)
    t0 = time.monotonic()
    finish([spawn(WRITER, m.mnt, w, FILES) for w in range(WRITERS)])
    written = time.monotonic() - t0
    stop.touch()
    finish([browser])
    assert m.unmount(timeout=TIMEOUT) == 0, m.log()
    p = names["prefix"]
    want = {f"{p}/w{w}/sub{w % 3}/f{j:03d}.bin": content(w, j)
            for w in range(WRITERS) for j in range(FILES)}
    keys = list_keys(s3, p)
    assert sorted(set(keys) - set(want)) == [] and sorted(set(want) - set(keys)) == []
    got = fetch_all(s3, keys)
    bad = [k for k in want if got[k] != want[k]]
    assert not bad, f"{len(bad)} objects differ, e.g. {bad[:5]}"
    print(f"{WRITERS * FILES} files written in {written:.1f}s")


APPENDER = textwrap.dedent("""
    import os, sys
    path, tag, n, reopen = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    fd = None
    for i in range(n):
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        rec = ("%s:%06d:" % (tag, i)).ljust(63, "x") + "\\n"
        assert os.write(fd, rec.encode()) == 64
        if reopen:
            os.close(fd)
            fd = None
    if fd is not None:
        os.close(fd)
""")


def test_two_appenders(mount, s3, names):
    m = mount()
    f = m.path("log.txt")
    open(f, "wb").close()
    finish([spawn(APPENDER, f, "A", 3000, 0), spawn(APPENDER, f, "B", 1000, 1)])
    with open(f, "rb") as fh:
        final = fh.read()
    assert m.unmount() == 0, m.log()
    recs = final.split(b"\n")[:-1]
    assert len(final) == 64 * 4000 and all(len(r) == 63 for r in recs), "torn or lost records"
    for tag, n in ((b"A", 3000), (b"B", 1000)):
        mine = [int(r.split(b":")[1]) for r in recs if r.startswith(tag + b":")]
        assert mine == list(range(n)), f"writer {tag} records out of order or missing"
    assert get_bytes(s3, f"{names['prefix']}/log.txt") == final
    with open(os.path.join(m.spool, "log.txt"), "rb") as fh:
        assert fh.read() == final


REGION = textwrap.dedent("""
    import mmap, os, random, sys
    path, start, size, chunk, how = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                     int(sys.argv[4]), sys.argv[5])
    rng = random.Random(start)
    data = rng.randbytes(size)
    offs = list(range(0, size, chunk))
    rng.shuffle(offs)
    fd = os.open(path, os.O_RDWR)
    if how == "mmap":
        os.ftruncate(fd, max(os.fstat(fd).st_size, start + size))  # grows only
    for i, off in enumerate(offs):
        piece = data[off:off + chunk]
        if how == "mmap":
            mm = mmap.mmap(fd, chunk, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                           offset=start + off)
            mm[:len(piece)] = piece
            if i % 16 == 0:
                mm.flush()
            mm.close()
        else:
            os.pwrite(fd, piece, start + off)
        if i % 10 == 9:  # close (the last close uploads) and go on
            os.close(fd)
            fd = os.open(path, os.O_RDWR)
    os.close(fd)
""")


def test_two_processes_write_different_regions(mount, s3, names):
    m = mount()
    f = m.path("regions.bin")
    open(f, "wb").close()
    half, chunk = 3 << 20, 64 << 10
    finish([spawn(REGION, f, 0, half, chunk, "pwrite"),
            spawn(REGION, f, half, half, chunk, "mmap")])
    want = random.Random(0).randbytes(half) + random.Random(half).randbytes(half)
    with open(f, "rb") as fh:
        assert fh.read() == want
    assert m.unmount() == 0, m.log()
    assert get_bytes(s3, f"{names['prefix']}/regions.bin") == want
    with open(os.path.join(m.spool, "regions.bin"), "rb") as fh:
        assert fh.read() == want
