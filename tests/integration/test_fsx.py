# SPDX-License-Identifier: Apache-2.0
"""A randomized integrity test in the spirit of fsx (the file system exerciser).

Thousands of random operations are applied to a file in the mount and, identically, to a
reference file on local disk: writes at random offsets and sizes, truncates up and down,
writes through a MAP_SHARED mapping (munmap, sometimes msync first), appends through a
second O_APPEND descriptor, hole punches and zeroed ranges, copy_file_range within the file,
close and reopen (the last close uploads while the next operations change the file), an
occasional fsync (which waits for the upload), and read-back checks through read() and
mmap. At the end the file is closed, the mount unmounted, and the S3 object and the spool
file must both equal the reference byte for byte.

The run is seeded: the seed is printed at the start and in every failure message, and
ARTIFUSE_FSX_SEED=N replays it (ARTIFUSE_FSX_OPS=N changes the number of operations). A
failure names the operation, the first differing offset and the operations before it.
"""
import ctypes
import ctypes.util
import errno
import mmap
import os
import random
import signal
import time

import pytest

from helpers import get_bytes, list_keys

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10
PAGE = mmap.ALLOCATIONGRANULARITY

# (name, max file size, max bytes per operation, operations, extra mount arguments,
#  operation weights that differ from Fsx.OPS)
PROFILES = {
    # Many small operations around page boundaries; every upload is a single PUT.
    "small": (300_000, 20_000, 4000, []),
    # Fewer, larger operations on a file that crosses the multipart threshold, so that the
    # uploads at each reopen and at the end are multipart (parts of 5 MiB).
    "multipart": (14 << 20, 1 << 20, 400, ["--multipart-threshold", "6M",
                                           "--part-size", "5M"]),
    # Mostly writes in order from the start, and restarts with O_TRUNC, so the file streams
    # (its parts go up while it is written) between the other operations, which abandon the
    # stream whenever they change bytes already sent.
    "streaming": (24 << 20, 2 << 20, 600, ["--multipart-threshold", "5M", "--part-size", "5M"],
                  {"seqwrite": 60, "restart": 4, "write": 4, "mapwrite": 2, "truncate": 1,
                   "hole": 1, "copy_range": 1, "mapread": 4, "fsync": 1}),
}


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, off, length) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Fsx:
    """The file in the mount and its reference, changed in lockstep."""

    def __init__(self, mnt_path, ref_path, seed, maxlen, maxop, ops_log, weights=None):
        self.paths = (mnt_path, ref_path)
        self.ops = [(n, (weights or {}).get(n, w)) for n, w in self.OPS]
        self.seed = seed
        self.rng = random.Random(seed)
        self.maxlen, self.maxop = maxlen, maxop
        self.history = []
        self.ops_path = ops_log
        self.ops_log = None
        self.fds = None   # opened by run(), in the process that runs the operations
        self.afds = None  # a second descriptor with O_APPEND, while one is open
        self.size = 0

    # ---- reporting -------------------------------------------------------------------------

    def note(self, op):
        self.history.append(op)
        self.ops_log.write(f"{len(self.history) - 1}: {op}\n")

    def fail(self, what):
        with open(self.ops_path) as f:
            tail = "".join("  " + line for line in f.readlines()[-25:])
        pytest.fail(f"fsx seed {self.seed}: {what}\nlast operations:\n{tail}"
                    f"replay with ARTIFUSE_FSX_SEED={self.seed}", pytrace=False)

    def check_equal(self, got, want, base, what):
        if got == want:
            return
        n = min(len(got), len(want))
        first = next((i for i in range(n) if got[i] != want[i]), n)
        a, b = got[first:first + 8].hex() or "end", want[first:first + 8].hex() or "end"
        self.fail(f"{what}: differs from the reference at offset {base + first} ({a} vs {b}; "
                  f"{len(got)} vs {len(want)} bytes from offset {base})")

    # ---- operations ------------------------------------------------------------------------

    def both(self, fn):
        return [fn(fd) for fd in self.fds]

    def offset_and_len(self, limit):
        off = self.rng.randrange(limit + 1)
        # Mostly small, sometimes page-sized or larger, sometimes aligned.
        n = self.rng.choice([1, 7, 512, PAGE - 1, PAGE, PAGE + 1,
                             self.rng.randrange(1, self.maxop + 1)])
        if self.rng.random() < 0.3:
            off -= off % PAGE
        return off, n

    def write(self):
        off, n = self.offset_and_len(min(self.size + PAGE, self.maxlen - 1))
        n = min(n, self.maxlen - off)
        data = self.rng.randbytes(n)
        self.note(f"write off={off} len={n}")
        self.both(lambda fd: os.pwrite(fd, data, off))
        self.size = max(self.size, off + n)

    def truncate(self):
        new = self.rng.choice([0, self.rng.randrange(self.maxlen + 1),
                               self.rng.randrange(self.size + 1) if self.size else 0,
                               self.size + self.rng.randrange(3 * PAGE)])
        new = min(new, self.maxlen)
        self.note(f"truncate {self.size} -> {new}")
        self.both(lambda fd: os.ftruncate(fd, new))
        self.size = new

    def mapwrite(self):
        if self.size == 0:
            return self.write()
        off, n = self.offset_and_len(self.size - 1)
        n = min(n, self.size - off)
        data = self.rng.randbytes(n)
        start = off - off % PAGE
        # msync(MS_SYNC) is an fsync, which waits for an upload: only now and then. Without
        # it the dirty pages reach the daemon by write-back, at the latest at close.
        sync = self.rng.random() < 0.2
        self.note(f"mapwrite off={off} len={n}" + (" msync" if sync else ""))

        def one(fd):
            mm = mmap.mmap(fd, off + n - start, mmap.MAP_SHARED,
                           mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
            mm[off - start:off - start + n] = data
            if sync:
                mm.flush()  # msync(MS_SYNC)
            mm.close()  # munmap
        self.both(one)

    def mapread(self):
        if self.size == 0:
            return
        off, n = self.offset_and_len(self.size - 1)
        n = min(n, self.size - off)
        start = off - off % PAGE
        self.note(f"mapread off={off} len={n}")

        def one(fd):
            mm = mmap.mmap(fd, off + n - start, mmap.MAP_SHARED, mmap.PROT_READ, offset=start)
            try:
                return mm[off - start:off - start + n]
            finally:
                mm.close()
        got, want = self.both(one)
        self.check_equal(got, want, off, "mapped read")

    def append(self):
        """Appends through a second descriptor opened with O_APPEND, kept open for a while:
        meanwhile the kernel may write mapped pages back through it, at their own offsets."""
        n = min(self.rng.randrange(1, self.maxop + 1), self.maxlen - self.size)
        if n <= 0:
            return self.truncate()
        data = self.rng.randbytes(n)
        if self.afds is None:
            self.note("open O_APPEND")
            self.afds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in self.paths]
        self.note(f"append len={n} at {self.size}")
        for fd in self.afds:
            os.write(fd, data)
        self.size += n
        if self.rng.random() < 0.3:
            self.close_append()

    def close_append(self):
        if self.afds is not None:
            self.note("close O_APPEND")
            for fd in self.afds:
                os.close(fd)
            self.afds = None

    def hole(self):
        if self.size == 0:
            return self.write()
        off, n = self.offset_and_len(self.size - 1)
        mode = self.rng.choice([FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_ZERO_RANGE])
        if mode == FALLOC_FL_ZERO_RANGE:
            n = min(n, self.maxlen - off)  # may extend the file
        self.note(f"fallocate mode={mode:#x} off={off} len={n}")
        self.both(lambda fd: fallocate(fd, mode, off, n))
        if mode == FALLOC_FL_ZERO_RANGE:
            self.size = max(self.size, off + n)

    def copy_range(self):
        if self.size == 0:
            return self.write()
        src, n = self.offset_and_len(self.size - 1)
        n = min(n, self.size - src)
        dst = self.rng.randrange(min(self.size + PAGE, self.maxlen - n) + 1)
        if src < dst + n and dst < src + n:
            return self.write()  # copy_file_range refuses overlapping ranges in one file
        self.note(f"copy_file_range src={src} dst={dst} len={n}")

        def one(fd):
            done = 0
            while done < n:
                r = os.copy_file_range(fd, fd, n - done, src + done, dst + done)
                if r == 0:
                    break
                done += r
            return done
        got, want = self.both(one)
        if got != want:
            self.fail(f"copy_file_range copied {got} bytes in the mount, {want} in the reference")
        self.size = max(self.size, dst + n)

    def seqwrite(self):
        """A write at the end, as a program writing its output in order does."""
        n = min(self.rng.randrange(1, self.maxop + 1), self.maxlen - self.size)
        if n <= 0:
            return self.restart()
        data = self.rng.randbytes(n)
        self.note(f"write off={self.size} len={n} (in order)")
        self.both(lambda fd: os.pwrite(fd, data, self.size))
        self.size += n

    def restart(self):
        self.reopen(trunc=True)

    def read(self):
        off, n = self.offset_and_len(self.size + 100)
        self.note(f"read off={off} len={n}")
        got, want = self.both(lambda fd: os.pread(fd, n, off))
        self.check_equal(got, want, off, "read")

    def reopen(self, trunc=None):
        if trunc is None:
            trunc = self.rng.random() < 0.05
        self.close_append()
        self.note("close, reopen" + (" O_TRUNC" if trunc else ""))
        self.both(os.close)
        flags = os.O_RDWR | (os.O_TRUNC if trunc else 0)
        self.fds = [os.open(p, flags) for p in self.paths]
        if trunc:
            self.size = 0

    def fsync(self):
        self.note("fsync")
        self.both(os.fsync)

    def stat(self):
        got, want = self.both(lambda fd: os.fstat(fd).st_size)
        if got != want or want != self.size:
            self.fail(f"size: mount {got}, reference {want}, expected {self.size}")

    def full_check(self, what):
        got, want = [self._read_all(p) for p in self.paths]
        self.check_equal(got, want, 0, what)

    @staticmethod
    def _read_all(path):
        with open(path, "rb") as f:
            return f.read()

    OPS = [("write", 30), ("mapwrite", 10), ("truncate", 5), ("append", 8), ("hole", 4),
           ("copy_range", 4), ("read", 20), ("mapread", 8), ("reopen", 3), ("fsync", 0.3),
           ("seqwrite", 0), ("restart", 0)]

    def run(self, nops):
        self.ops_log = open(self.ops_path, "w", buffering=1)  # also read by the parent
        self.fds = [os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) for p in self.paths]
        names = [n for n, _ in self.ops]
        weights = [w for _, w in self.ops]
        for i in range(nops):
            op = self.rng.choices(names, weights)[0]
            try:
                getattr(self, op)()
            except OSError as e:
                self.fail(f"operation {len(self.history) - 1} failed: {e} "
                          f"({errno.errorcode.get(e.errno)})")
            self.stat()
            if i % 250 == 249:
                self.note("full check")
                self.full_check(f"full check after {i + 1} operations")
        # The end: a fresh open and changes by write() and the mapping alone (nothing that
        # marks the file changed by itself, as create, O_TRUNC or truncate do): the last
        # close must upload them.
        self.reopen(trunc=False)
        for _ in range(10):
            self.rng.choice([self.write, self.mapwrite])()
        self.close_append()
        self.both(os.close)
        self.note("close")
        self.full_check("after the last close")


def run_in_child(fsx, nops, m, tmp_path, timeout=120):
    """fsx.run(nops) in a forked child, so that a hang (an fsync that never returns, say)
    ends in a failure that shows the last operations rather than in a stuck test run. A
    process waiting for a FUSE reply the daemon already took cannot be killed, not even with
    SIGKILL: the daemon @m is, which ends the connection."""
    err = tmp_path / "fsx.failure"
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 0
        try:
            fsx.run(nops)
        except BaseException as e:  # noqa: B036 - pytest.fail() raises a BaseException
            err.write_text(str(e))
            code = 1
        os._exit(code)
    end = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            m.proc.kill()
            os.waitpid(pid, 0)
            fsx.fail(f"not finished after {timeout}s (the daemon was killed to end it)")
        time.sleep(0.05)
    if err.exists():
        pytest.fail(err.read_text(), pytrace=False)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_fsx(mount, s3, names, tmp_path, profile):
    maxlen, maxop, nops, args, *weights = PROFILES[profile]
    seed = int(os.environ.get("ARTIFUSE_FSX_SEED", random.SystemRandom().randrange(2**32)))
    nops = int(os.environ.get("ARTIFUSE_FSX_OPS", nops))
    print(f"fsx {profile}: seed {seed}, {nops} operations (replay: ARTIFUSE_FSX_SEED={seed})")
    m = mount(args=args)
    ref = tmp_path / "reference.bin"
    fsx = Fsx(m.path("fsx.bin"), str(ref), seed, maxlen, maxop, tmp_path / "fsx.ops",
              *weights)
    run_in_child(fsx, nops, m, tmp_path)
    want = ref.read_bytes()
    rc = m.unmount()
    assert rc == 0, f"fsx seed {seed}: artifuse exited {rc}\n{m.log()}"
    key = f"{names['prefix']}/fsx.bin"
    assert list_keys(s3, names["prefix"]) == [key], f"fsx seed {seed}"
    fsx.check_equal(get_bytes(s3, key), want, 0, "the S3 object after unmount")
    with open(os.path.join(m.spool, "fsx.bin"), "rb") as f:
        fsx.check_equal(f.read(), want, 0, "the spool file after unmount")
