# SPDX-License-Identifier: Apache-2.0
"""artifuse's own bounded soak (issue 15): a real `artifuse mount -f --delete-on-unlink` on a
spool of its own, its S3 endpoint a fault proxy (tests/integration/faultproxy.py), a random
workload from four writers with a model of the expected final content, faults between (and
sometimes during) rounds, and at the end one comparison of S3 with the model.

Run it through scripts/soak [MINUTES] [--seed N]. Output: failure details, then ONE summary
line ending in PASS or FAIL; the daemon logs stay in the printed directory.

The model, and what it does not claim (every reported failure must be real):
- Each writer owns its own subtree (w0/ w1/ w2/ big/), runs its operations in order, and
  keeps the content every file must end with. After the final clean unmount (exit 0), every
  file the model holds must be in S3 with those bytes (missing / wrong).
- A key that no longer names a file must be gone (--delete-on-unlink) only when the daemon
  that removed the name also wrote (uploaded) the content it last had. The mount's registry
  of uploads now survives a restart, so those of earlier daemons are deleted too, but the
  model does not follow it across kill -9 (a name may leave the spool while no mount sees
  it): such keys are counted as stale_allowed, not as failures. "epoch" below is the daemon
  instance.
- An operation cut by a fault (kill -9 during a round, an error) is "uncertain": after the
  remount the soak reads what the mount holds for the paths it touched, takes that as the
  model, and writes those files again so they are uploaded by the new daemon; their old keys
  are never counted as stale. Files closed just before a kill -9 are treated the same way
  (close() returns before FUSE's RELEASE, where the upload is handed off).
- fsync() that returned 0: the object is read back (boto3, straight to the server) at once and
  must hold the file's content at that moment.

Rounds (each writer a bounded number of operations) run until ~88% of MINUTES, each followed
by one fault, every kind once per cycle in a seeded order: kill -9 between rounds; kill -9
during a round; kill -9 a few ms into a burst of unlinks of uploaded files (bug 5's window);
SIGTERM with --drain-timeout 2 (S3 stalled half of the time); SIGTERM while an fsync() waits
on a stalled S3 (bug 1); S3 refused / stalled / reset through the proxy while the next round
runs; the spool full while the next round runs (a remount with --spool-limit a few MiB above
what it holds: every writer meets ENOSPC; what it cut is uncertain, as above). The last round is clean, then the final unmount must drain everything (exit 0).
A round longer than ROUND_LIMIT is a hang: the daemon is killed and the run ends (FAIL).
Each stale key is labelled with the issue-15 pattern its history matches (a label only).
"""
import argparse
import collections
import errno
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from faultproxy import FaultProxy  # noqa: E402

import boto3  # noqa: E402
import botocore.config  # noqa: E402

MiB = 1 << 20
BUCKET = "my-argo-artifacts-bucket"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer")
DEAD_ERRNOS = (errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV)
DEADLINE_SLACK = 5.0  # seconds past --drain-timeout a SIGTERMed daemon may take to be gone
# Peak RSS of a daemon, at most (VmHWM); ARTIFUSE_SOAK_RSS_LIMIT_MIB for another goal.
RSS_LIMIT_MIB = float(os.environ.get("ARTIFUSE_SOAK_RSS_LIMIT_MIB", "32"))
ROUND_LIMIT = 150.0   # a round (writers, fsyncs through faults) longer than this is a hang


def now():
    return time.monotonic()


_REAL = {}


def is_mounted(path):
    # realpath() only once, before the mount: a stat of a hung mount would block the caller
    path = _REAL.setdefault(path, os.path.realpath(path))
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path and line.split()[2].startswith("fuse") for line in f)


class Fail(Exception):
    pass


# --------------------------------------------------------------------------------------------
# the daemon

class Daemon:
    def __init__(self, soak, epoch, drain_timeout=None, extra=()):
        self.soak = soak
        self.epoch = epoch
        self.drain_timeout = drain_timeout
        self.log_path = os.path.join(soak.logdir, f"daemon-{epoch:02d}.log")
        argv = [soak.bin, "mount", "-f", "--spool", soak.spool, "--artifact-repository",
                f"s3://{BUCKET}/{soak.prefix}", "--endpoint", soak.proxy.endpoint,
                "--delete-on-unlink", "--log-file", self.log_path]
        if drain_timeout is not None:
            argv += ["--drain-timeout", str(drain_timeout)]
        argv += list(extra) + soak.extra_args + [soak.mnt]
        self.argv = argv
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        self.stderr = open(self.log_path + ".stderr", "w")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.pid = self.proc.pid
        self.killed_by_us = False
        self.hwm = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        end = now() + 30
        while not is_mounted(soak.mnt):
            if self.proc.poll() is not None:
                raise Fail(f"artifuse (epoch {epoch}) exited {self.proc.returncode} before "
                           f"mounting; log {self.log_path}")
            if now() > end:
                raise Fail(f"artifuse (epoch {epoch}) not mounted after 30 s")
            time.sleep(0.05)

    def _sample(self):
        while not self._stop.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm = max(self.hwm, int(line.split()[1]) * 1024)
            except OSError:
                pass
            self._stop.wait(0.25)

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill9(self):
        if self.alive():
            self.killed_by_us = True
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.finish()

    def finish(self):
        self._stop.set()
        self._sampler.join(timeout=2)
        self.stderr.close()
        if is_mounted(self.soak.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.soak.mnt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def log(self):
        text = ""
        for p in (self.log_path, self.log_path + ".stderr"):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += f.read()
        return text


# --------------------------------------------------------------------------------------------
# the model of one writer's subtree

class Model:
    """path -> content (bytes for small files; Big for the streaming writer's files)."""

    def __init__(self, soak, root):
        self.soak = soak
        self.root = root
        self.files = {}      # path -> bytes | Big
        self.epoch_of = {}   # path -> epoch whose daemon got the content it holds
        self.dirs = {root}
        self.uncertain = set()   # paths (files or dirs) an interrupted op touched
        self.recent = collections.deque(maxlen=3)  # paths closed last

    def key(self, p):
        return self.soak.key(p)

    def set(self, p, content, how="write"):
        if how == "rename" and p in self.files:
            how = "rename-over"  # a rename replaced an existing name
        self.files[p] = content
        self.epoch_of[p] = self.soak.epoch
        self.soak.gone.pop(self.key(p), None)
        self.soak.ever.add(self.key(p))
        self.soak.history(self.key(p), "set", how)
        self.recent.append(p)

    def remove(self, p, why, how="unlink"):
        """@p's name is gone (unlinked, renamed away). Whether its object must be gone is
        decided at the end: yes when the object left there was put by the daemon that
        removed the name (its log says which put it), and no fault cut the removal."""
        cut = p in self.uncertain
        self.files.pop(p, None)
        self.epoch_of.pop(p, None)
        self.soak.gone[self.key(p)] = (not cut, why, self.soak.epoch)
        self.soak.history(self.key(p), "remove", how if not cut else "cut")

    def move(self, src, dst):
        c = self.files[src]
        self.remove(src, f"renamed to {dst}", "renamed-away")
        self.set(dst, c, "rename")

    def under(self, d):
        return [p for p in self.files if p.startswith(d + "/")]


class Big:
    """A large file's content as size + running sha256 (a copy of the hash state)."""

    def __init__(self, h=None, size=0):
        self.h = h or hashlib.sha256()
        self.size = size

    def copy(self):
        return Big(self.h.copy(), self.size)

    def digest(self):
        return self.h.hexdigest()

    def __repr__(self):
        return f"<{self.size} bytes sha256={self.digest()[:16]}>"


def describe(c):
    if isinstance(c, Big):
        return repr(c)
    return f"<{len(c)} bytes sha256={hashlib.sha256(c).hexdigest()[:16]}>"


class Dead(Exception):
    """The mount went away under an operation (a fault the soak injected)."""


# --------------------------------------------------------------------------------------------
# writers

class Writer:
    def __init__(self, soak, idx, root):
        self.soak = soak
        self.idx = idx
        self.m = Model(soak, root)
        self.rng = random.Random(soak.seed * 1000 + idx)
        self.ops = 0
        self.bytes = 0
        self.op_counts = collections.Counter()
        self.trace_f = open(os.path.join(soak.logdir, f"writer-{root}.log"), "w")

    def trace(self, msg):
        self.trace_f.write(f"{time.strftime('%H:%M:%S')} +{now() - self.soak.t0:8.3f}s "
                           f"e{self.soak.epoch} {msg}\n")
        self.trace_f.flush()

    def P(self, p):
        return os.path.join(self.soak.mnt, p)

    # -- primitive file operations, each updating the model only once it returned ----------

    def write_file(self, p, data, touch=None):
        """Writes @data as @p's whole content (O_TRUNC)."""
        self.trace(f"write {p} {describe(data)}")
        self.m.uncertain.add(p)
        with open(self.P(p), "wb") as f:
            f.write(data)
        self.m.uncertain.discard(p)
        self.m.set(p, data)
        self.bytes += len(data)

    def fsync_check(self, p, append=b""):
        """Appends @append, fsyncs, and checks the object holds the content at once. An error
        before the append is whole (a kill, ENOSPC after a short write) leaves @p uncertain:
        repair() takes what the mount holds."""
        self.m.uncertain.add(p)
        fd = os.open(self.P(p), os.O_WRONLY | os.O_APPEND)
        appended = False
        try:
            left = memoryview(append)
            while left:  # a short write (the spool's limit reached) is followed by ENOSPC
                left = left[os.write(fd, left):]
            appended = True
            content = self.m.files[p] + append
            self.m.files[p] = content  # written, whatever the fsync says
            self.m.epoch_of[p] = self.soak.epoch
            self.bytes += len(append)
            self.trace(f"fsync {p} after appending {len(append)}: {describe(content)}")
            try:
                os.fsync(fd)
            except OSError as e:
                self.trace(f"fsync {p}: {e}")
                if e.errno in DEAD_ERRNOS or not self.soak.daemon.alive():
                    raise
                self.soak.count("fsync_errors")
                self.soak.note(f"fsync {p}: {e} (S3 unreachable is allowed)")
                return
            self.soak.fsync_check(p, content)
        finally:
            os.close(fd)
            if appended:
                self.m.uncertain.discard(p)
            self.m.recent.append(p)

    def rename(self, src, dst):
        self.trace(f"rename {src} {dst}")
        self.m.uncertain.update((src, dst))
        os.rename(self.P(src), self.P(dst))
        self.m.uncertain.difference_update((src, dst))
        if src in self.m.dirs:
            moved = sorted(self.m.under(src))
            contents = {p: self.m.files[p] for p in moved}
            for p in moved:
                self.m.remove(p, f"its directory renamed to {dst}",
                              "dir-renamed-away:" + self.m.key(dst + p[len(src):]))
            for p in moved:
                self.m.set(dst + p[len(src):], contents[p], "dir-rename")
            self.m.dirs = {dst + d[len(src):] if d == src or d.startswith(src + "/") else d
                           for d in self.m.dirs}
        else:
            self.m.move(src, dst)

    def unlink(self, p):
        self.trace(f"unlink {p}")
        self.m.uncertain.add(p)
        os.unlink(self.P(p))
        self.m.uncertain.discard(p)
        self.m.remove(p, "unlinked", "unlink")

    # -- the round ----------------------------------------------------------------------------

    def run_round(self, n_ops):
        try:
            for _ in range(n_ops):
                if self.soak.stop_writers.is_set():
                    return
                self.one_op()
                self.ops += 1
        except Dead:
            return
        except OSError as e:
            if e.errno in DEAD_ERRNOS or not self.soak.daemon.alive() or self.soak.killing:
                return  # the fault the soak injected: the op stays uncertain
            if e.errno == errno.ENOSPC and self.soak.spool_full:
                self.soak.count("enospc")  # the spool's limit, injected: the op stays uncertain
                self.trace(f"ENOSPC: {e}")
                return
            self.soak.failure("op_errors", f"{self.m.root}: {type(e).__name__}: {e} "
                                           f"(daemon alive, no kill in progress)")
        except Exception:
            self.soak.failure("soak_errors", f"writer {self.m.root}: {traceback.format_exc()}")


class SmallWriter(Writer):
    NAMES = 10

    def rand_data(self):
        r = self.rng.random()
        n = 0 if r < 0.05 else self.rng.randint(1, 200) if r < 0.5 else self.rng.randint(1, 64 << 10)
        return self.rng.randbytes(n)

    def rand_dir(self):
        return self.rng.choice(sorted(self.m.dirs))

    def rand_name(self, d=None):
        return f"{d or self.rand_dir()}/f{self.rng.randrange(self.NAMES)}"

    def rand_file(self):
        fs = sorted(self.m.files)
        return self.rng.choice(fs) if fs else None

    def fresh_dir(self):
        while True:
            d = f"{self.m.root}/d{self.rng.randrange(1000)}"
            if d not in self.m.dirs and not self.m.under(d) and d not in self.m.files:
                return d

    def one_op(self):
        ops = [("write", 20), ("append", 10), ("truncate", 6), ("tmp_rename", 10),
               ("rename", 8), ("rename_dir", 3), ("mkdir", 3), ("rmdir", 2), ("unlink", 12),
               ("fsync", 6), ("pat_replace_rm", 3), ("pat_dir_rename_rm", 2),
               ("pat_write_rm", 4)]
        op = self.rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
        f = self.rand_file()
        if op in ("append", "truncate", "rename", "unlink", "fsync") and f is None:
            op = "write"
        self.op_counts[op] += 1
        self.trace(f"op {op}")
        if op == "write":
            self.write_file(self.rand_name(), self.rand_data())
        elif op == "append":
            data = self.rand_data()
            self.trace(f"append {f} {describe(data)}")
            self.m.uncertain.add(f)
            with open(self.P(f), "ab") as fh:
                fh.write(data)
            self.m.uncertain.discard(f)
            self.m.set(f, self.m.files[f] + data, "append")
            self.bytes += len(data)
        elif op == "truncate":
            old = self.m.files[f]
            n = self.rng.randint(0, len(old) + 4096)
            self.trace(f"truncate {f} {n}")
            self.m.uncertain.add(f)
            os.truncate(self.P(f), n)
            self.m.uncertain.discard(f)
            self.m.set(f, old[:n] + b"\0" * max(0, n - len(old)), "truncate")
        elif op == "tmp_rename":
            d = self.rand_dir()
            tmp = f"{d}/.tmp{self.rng.randrange(3)}"
            self.write_file(tmp, self.rand_data())
            self.rename(tmp, self.rand_name())
        elif op == "rename":
            dst = self.rand_name()
            if dst != f and dst not in self.m.dirs:
                self.rename(f, dst)
        elif op == "rename_dir":
            subs = [d for d in self.m.dirs if d != self.m.root]
            if subs:
                self.rename(self.rng.choice(sorted(subs)), self.fresh_dir())
        elif op == "mkdir":
            if len(self.m.dirs) < 5:
                d = self.fresh_dir()
                self.trace(f"mkdir {d}")
                os.mkdir(self.P(d))
                self.m.dirs.add(d)
        elif op == "rmdir":
            empty = [d for d in self.m.dirs if d != self.m.root and not self.m.under(d)]
            if empty:
                d = self.rng.choice(sorted(empty))
                self.trace(f"rmdir {d}")
                os.rmdir(self.P(d))
                self.m.dirs.discard(d)
        elif op == "unlink":
            self.unlink(f)
        elif op == "fsync":
            self.fsync_check(f, self.rand_data() if self.rng.random() < 0.7 else b"")
        elif op == "pat_replace_rm":
            # issue 15 bug 2: out (uploaded); tmp written; mv tmp out; rm out
            d = self.rand_dir()
            out = self.rand_name(d)
            self.write_file(out, b"v1 " + self.rand_data())
            self.fsync_check(out)
            tmp = f"{d}/.tmp{self.rng.randrange(3)}"
            self.write_file(tmp, b"v2 " + self.rand_data())
            self.rename(tmp, out)
            self.unlink(out)
        elif op == "pat_dir_rename_rm":
            # issue 15 bug 3: a directory rename followed at once by unlinks
            if len(self.m.dirs) >= 5:
                return
            d = self.fresh_dir()
            self.trace(f"mkdir {d}")
            os.mkdir(self.P(d))
            self.m.dirs.add(d)
            names = [f"{d}/g{i}" for i in range(self.rng.randint(1, 3))]
            for p in names:
                self.write_file(p, self.rand_data())
                self.fsync_check(p)
            d2 = self.fresh_dir()
            self.rename(d, d2)
            for p in names:
                self.unlink(d2 + p[len(d):])
            self.trace(f"rmdir {d2}")
            os.rmdir(self.P(d2))
            self.m.dirs.discard(d2)
        elif op == "pat_write_rm":
            # issue 15 bug 4: write, close, unlink at once
            for _ in range(self.rng.randint(1, 4)):
                p = self.rand_name()
                self.write_file(p, self.rand_data())
                self.unlink(p)


class UnlinkBurst(Writer):
    """For kill -9 during unlinks (issue 15 bug 5): files uploaded by this daemon, then
    unlinked as fast as possible while the soak kills the daemon."""

    def prepare(self, n):
        d = f"{self.m.root}/k{self.soak.epoch}"
        os.makedirs(self.P(d), exist_ok=True)
        self.m.dirs.add(d)
        self.files = [f"{d}/u{i}" for i in range(n)]
        for p in self.files:
            self.write_file(p, self.rng.randbytes(self.rng.randint(1, 2048)))
        # wait until they are up: their deletes are then journaled by the unlinks
        want = {self.m.key(p) for p in self.files}
        end = now() + 15
        while now() < end:
            got = set()
            for page in self.soak.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=self.soak.key(d) + "/"):
                got |= {o["Key"] for o in page.get("Contents", [])}
            if want <= got:
                break
            time.sleep(0.2)
        time.sleep(0.3)

    def run_round(self, _):
        try:
            for p in self.files:
                self.unlink(p)
                self.ops += 1
        except OSError:
            return  # the kill: the unlink in flight stays uncertain


class BigWriter(Writer):
    """Files of 10-60 MiB written in order in 1 MiB writes (streaming multipart)."""

    def __init__(self, soak, idx, root, pool):
        super().__init__(soak, idx, root)
        self.pool = pool
        self.n = 0

    def chunk(self, n, i, size):
        off = (n * 7919 * 4096 + i * 104729 * 64) % (len(self.pool) - MiB)
        c = bytearray(self.pool[off:off + size])
        tag = f"{self.soak.seed}:{n}:{i}:".encode()
        c[:len(tag)] = tag[:size]
        return bytes(c)

    def run_round(self, budget):
        self.budget = budget
        super().run_round(3)

    def one_op(self):
        live = sorted(self.m.files)
        r = self.rng.random()
        if len(live) > 2 or (live and r < 0.15):
            self.op_counts["unlink"] += 1
            self.unlink(live[0])
        elif live and r < 0.3:
            self.op_counts["rename"] += 1
            src = self.rng.choice(live)
            self.rename(src, f"{self.m.root}/r{self.n}-{os.path.basename(src)}")
            self.n += 1
        elif live and r < 0.4:
            self.op_counts["append"] += 1
            p = self.rng.choice(live)
            data = self.rng.randbytes(self.rng.randint(1, 4096))
            self.m.uncertain.add(p)
            with open(self.P(p), "ab") as fh:
                fh.write(data)
            self.m.uncertain.discard(p)
            c = self.m.files[p].copy()
            c.h.update(data)
            c.size += len(data)
            self.m.set(p, c)
        elif self.budget >= 10 * MiB:
            self.op_counts["stream"] += 1
            size = self.rng.randint(10 * MiB, min(60 * MiB, self.budget))
            size -= self.rng.randrange(4096)  # not a whole number of parts
            self.budget -= size
            n = self.n
            self.n += 1
            p = f"{self.m.root}/b{n}.bin"
            self.trace(f"stream {p} {size} bytes")
            fsync_at = self.rng.randrange(size) if self.rng.random() < 0.3 else None
            c = Big()
            self.m.uncertain.add(p)
            with open(self.P(p), "wb") as fh:
                off, i = 0, 0
                while off < size:
                    if self.soak.stop_writers.is_set():
                        raise Dead()
                    ch = self.chunk(n, i, min(MiB, size - off))
                    fh.write(ch)
                    c.h.update(ch)
                    c.size += len(ch)
                    off += len(ch)
                    i += 1
                    self.bytes += len(ch)
                    if fsync_at is not None and off >= fsync_at:
                        fsync_at = None
                        fh.flush()
                        self.m.files[p] = c.copy()
                        self.m.epoch_of[p] = self.soak.epoch
                        try:
                            os.fsync(fh.fileno())
                        except OSError as e:
                            if e.errno in DEAD_ERRNOS or not self.soak.daemon.alive():
                                raise
                            self.soak.count("fsync_errors")
                            self.soak.note(f"fsync {p}: {e}")
                        else:
                            self.soak.fsync_check(p, c.copy())
            self.m.uncertain.discard(p)
            self.m.set(p, c)


# --------------------------------------------------------------------------------------------
# the soak

class Soak:
    def __init__(self, a):
        self.minutes = a.minutes
        self.seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
        self.rng = random.Random(self.seed)
        self.bin = a.bin
        self.runid = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self.prefix = f"soak/{self.runid}"
        self.dir = os.path.join(a.workdir, self.runid)
        self.logdir = os.path.join(self.dir, "logs")
        self.spool = os.path.join(self.dir, "spool")
        self.mnt = os.path.join(self.dir, "mnt")
        for d in (self.logdir, self.spool, self.mnt):
            os.makedirs(d, exist_ok=True)
        is_mounted(self.mnt)  # its real path, while it is a plain directory
        self.extra_args = list(a.daemon_arg or [])
        self.epoch = 0
        self.daemon = None
        self.daemons = []
        self.proxy = None
        self.gone = {}     # key -> (certain, why, epoch of the removal)
        self.hist = collections.defaultdict(list)  # key -> [(t, epoch, set|remove, how)]
        self.ever = set()  # every key a file ever had
        self.c = collections.Counter()
        self.faults = collections.Counter()
        self.spool_full = False  # the daemon runs with a --spool-limit: ENOSPC is expected
        self.failures = []
        self.notes = []
        self.lock = threading.Lock()
        self.stop_writers = threading.Event()
        self.killing = False
        self.peak = 0
        self.events = open(os.path.join(self.logdir, "soak-events.log"), "w")
        env = os.environ
        self.s3 = boto3.client(
            "s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 3}))
        # scale: rounds of a bounded number of ops; ~1 GiB of large files per 3 minutes
        self.rounds = max(4, round(self.minutes * 20))  # at most; the clock ends it sooner
        self.small_ops = 40
        self.big_total = int(1024 * MiB * self.minutes / 3 * 0.9)  # ~1 GiB per 3 minutes
        self.big_per_round = 80 * MiB
        self.fault_scale = min(1.0, max(0.2, self.minutes / 30))  # 5-30 s at 30 min and up
        self.t0 = now()

    def key(self, p):
        return f"{self.prefix}/{p}"

    def history(self, key, what, how):
        with self.lock:
            self.hist[key].append((now(), self.epoch, what, how))

    def known_bug(self, key):
        """Which issue-15 bug the key's last events look like, or None (a label for the
        report only: the failure is the object left, whatever its cause)."""
        h = self.hist.get(key, [])
        if len(h) < 2 or h[-1][2] != "remove":
            return None
        t_rm, _, _, rm = h[-1]
        t_set, _, _, st = h[-2]
        rm, _, newkey = rm.partition(":")
        if st == "rename-over":
            return "known bug 2 (a rename over an uploaded name, then the name " + \
                {"unlink": "unlinked)", "renamed-away": "renamed away: a variant)",
                 "dir-renamed-away": "moved by a directory rename: a variant)"}.get(rm, rm + ")")
        if rm == "dir-renamed-away":
            later = [e for e in self.hist.get(newkey, []) if e[0] >= t_rm and e[2] == "remove"]
            if later and later[0][3] == "unlink" and later[0][0] - t_rm < 1.0:
                return "known bug 3 (a directory rename, then unlinks at once: the old key kept)"
        if rm == "unlink" and st == "dir-rename" and t_rm - t_set < 1.0:
            return "known bug 3 (a directory rename, then unlinks at once: the new key kept)"
        if t_rm - t_set < 1.0:
            return (f"known bug 4 family? ({st}, then {rm} {t_rm - t_set:.2f} s later: the name "
                    "went away while its upload or copy was in flight)")
        if rm == "dir-renamed-away" and st == "dir-rename":
            return ("known bug 3 family? (directory renames in a row: the copy for the first "
                    "still in flight)")
        return "not a known pattern"

    def log(self, msg):
        self.events.write(f"{time.strftime('%H:%M:%S')} +{now() - self.t0:7.1f}s {msg}\n")
        self.events.flush()

    def note(self, msg):
        self.log("note: " + msg)

    def count(self, k, n=1):
        with self.lock:
            self.c[k] += n

    def failure(self, kind, detail):
        with self.lock:
            self.c[kind] += 1
            self.failures.append(f"{kind}: {detail}")
        self.log(f"FAILURE {kind}: {detail}")

    # -- S3 -----------------------------------------------------------------------------------

    def get(self, key):
        try:
            return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        except self.s3.exceptions.NoSuchKey:
            return None
        except Exception as e:
            if "404" in str(e) or "NoSuchKey" in str(e):
                return None
            raise

    def matches(self, key, content):
        """(ok, what was there) for @content (bytes or Big)."""
        body = self.get(key)
        if body is None:
            return False, "no object"
        if isinstance(content, Big):
            h, n = hashlib.sha256(), 0
            for ch in body.iter_chunks(MiB):
                h.update(ch)
                n += len(ch)
            return (n == content.size and h.hexdigest() == content.digest(),
                    f"<{n} bytes sha256={h.hexdigest()[:16]}>")
        got = body.read()
        return got == content, describe(got)

    def fsync_check(self, p, content):
        self.count("fsyncs_checked")
        ok, got = self.matches(self.key(p), content)
        if not ok:
            self.failure("fsync_violations", f"{self.key(p)} right after fsync() returned 0: "
                                             f"expected {describe(content)}, got {got}")

    # -- daemons ------------------------------------------------------------------------------

    def start_daemon(self, drain_timeout=None, extra=()):
        self.epoch += 1
        self.daemon = Daemon(self, self.epoch, drain_timeout, extra)
        self.daemons.append(self.daemon)
        self.log(f"epoch {self.epoch}: pid {self.daemon.pid} "
                 f"drain_timeout={drain_timeout} argv={' '.join(self.daemon.argv)}")

    def end_daemon(self, d, how):
        """Bookkeeping once @d is gone: crashes, sanitizer reports, RSS."""
        self.peak = max(self.peak, d.hwm)
        rc = d.proc.returncode
        self.log(f"epoch {d.epoch}: pid {d.pid} gone ({how}) rc={rc} VmHWM={d.hwm}")
        if rc is not None and rc < 0 and not (d.killed_by_us and rc == -signal.SIGKILL):
            self.failure("crashes", f"epoch {d.epoch} pid {d.pid} died of signal {-rc} "
                                    f"({how}); log {d.log_path}")
        elif rc is not None and rc > 3 and not d.killed_by_us:
            self.failure("crashes", f"epoch {d.epoch} pid {d.pid} exited {rc} ({how}); log "
                                    f"{d.log_path}")
        bad = [l for l in d.log().splitlines() if any(s in l for s in SANITIZER_MARKS)]
        if bad:
            self.failure("crashes", f"epoch {d.epoch}: sanitizer report in {d.log_path}: "
                                    f"{bad[0][:200]}")

    def kill9(self):
        d = self.daemon
        self.killing = True
        d.kill9()
        self.end_daemon(d, "kill -9")
        self.killing = False

    def sigterm(self, label):
        """SIGTERM; the daemon must be gone within --drain-timeout + slack, exit 0 or 3."""
        d = self.daemon
        t = now()
        self.killing = True
        d.proc.send_signal(signal.SIGTERM)
        rc = d.wait(d.drain_timeout + DEADLINE_SLACK)
        took = now() - t
        if rc is None:
            rc = d.wait(10)
            took = now() - t
            self.failure("deadline_missed",
                         f"{label}: SIGTERM with --drain-timeout {d.drain_timeout}: epoch "
                         f"{d.epoch} pid {d.pid} " + (f"still running after {took:.0f} s "
                                                      "(killed -9)" if rc is None else
                                                      f"took {took:.1f} s to exit ({rc})"))
            if rc is None:
                d.kill9()
            else:
                d.finish()
        else:
            d.finish()
            if rc not in (0, 3):
                self.failure("bad_exit", f"{label}: after SIGTERM epoch {d.epoch} exited "
                                         f"{rc}, expected 0 or 3; log {d.log_path}")
        self.log(f"{label}: exited {d.proc.returncode} {took:.1f} s after SIGTERM "
                 f"(--drain-timeout {d.drain_timeout})")
        self.end_daemon(d, label)
        self.killing = False

    # -- rounds -------------------------------------------------------------------------------

    def run_writers(self, writers, mid=None):
        """One round of every writer, concurrently; @mid() runs meanwhile (a fault)."""
        self.stop_writers.clear()
        ts = []
        for w in writers:
            if isinstance(w, BigWriter):
                left = self.big_total - w.bytes
                frac = max(0.0, (self.t0 + self.minutes * 60 * 0.88 - now()) / 30)
                arg = int(max(0, min(left, self.big_per_round * min(1.0, frac))))
            else:
                arg = self.small_ops
            ts.append(threading.Thread(target=w.run_round, args=(arg,), daemon=True))
        for t in ts:
            t.start()
        if mid:
            mid(ts)
        limit = now() + ROUND_LIMIT
        for t in ts:
            while t.is_alive():
                t.join(timeout=1)
                if now() > limit:
                    self.hung(writers, ts)

    def hung(self, writers, ts):
        """A round past ROUND_LIMIT: say what is stuck, kill -9 the daemon (the writers' calls
        return), and end the run: what follows would measure nothing."""
        stuck = []
        for w, t in zip(writers, ts):
            if t.is_alive():
                try:
                    with open(w.trace_f.name) as f:
                        last = f.read().splitlines()[-1:]
                except (OSError, IndexError):
                    last = []
                stuck.append(f"{w.m.root}: {last[0] if last else '?'}")
        try:
            self.s3.head_bucket(Bucket=BUCKET)
            server = "the S3 server answers boto3"
        except Exception as e:
            server = f"the S3 server itself does not answer boto3 ({e}): not artifuse's fault"
        self.failure("hangs", f"a round still running after {ROUND_LIMIT} s ({server}); "
                              f"epoch {self.epoch}, log {self.daemon.log_path}; stuck: "
                              + "; ".join(stuck))
        self.stop_writers.set()
        self.kill9()
        for t in ts:
            t.join(timeout=30)
        raise Fail("the run stops after a hung round")

    def proxy_fault(self, kind):
        dur = self.rng.uniform(5, 30) * self.fault_scale
        dur = max(dur, 2.0)
        self.faults[kind] += 1
        self.log(f"fault {kind} for {dur:.1f} s")
        if kind == "refuse":
            self.proxy.refuse("close")
        elif kind == "stall":
            self.proxy.stall(dur)
        elif kind == "reset":
            self.proxy.reset_after(self.rng.randint(64 << 10, 4 * MiB), times=1000)
        return dur

    def repair(self, writers, recent=True):
        """After a restart: every file whose operation completed must be in the mount as the
        model says (spool_mismatch otherwise). The paths an operation cut by the fault touched
        (and, after a kill, the files closed last: their RELEASE may not have reached the
        daemon) take the mount's content as the model and are written again, so the new
        daemon uploads them (the big writer's are removed instead)."""
        for w in writers:
            m = w.m
            inflight = set(m.uncertain)
            unc = inflight | (set(m.recent) if recent else set())
            actual = {}
            dirs = set()
            for dp, dns, fns in os.walk(w.P(m.root)):
                rel = os.path.relpath(dp, self.mnt)
                dirs.add(rel)
                for fn in fns:
                    actual[f"{rel}/{fn}"] = os.path.join(dp, fn)

            def cut(p):
                return any(p == u or p.startswith(u + "/") for u in inflight)
            for p in sorted(set(m.files) | set(actual)):
                if cut(p):
                    continue
                if p not in actual:
                    self.failure("spool_mismatch", f"{p}: in the model {describe(m.files[p])}, "
                                                   f"not in the mount after epoch {self.epoch - 1}")
                    m.uncertain.add(p)
                    m.remove(p, "lost", "lost")
                elif p not in m.files:
                    self.failure("spool_mismatch", f"{p}: in the mount, not in the model")
                    unc.add(p)
                elif isinstance(m.files[p], Big):
                    st = os.stat(actual[p])
                    if st.st_size != m.files[p].size:
                        self.failure("spool_mismatch", f"{p}: {st.st_size} bytes in the mount,"
                                                       f" model {m.files[p]}")
                        unc.add(p)
                else:
                    with open(actual[p], "rb") as f:
                        got = f.read()
                    if got != m.files[p]:
                        self.failure("spool_mismatch", f"{p}: mount {describe(got)}, model "
                                                       f"{describe(m.files[p])}")
                        unc.add(p)
            m.uncertain = set(unc)  # remove() below must not count their old keys as strict
            for p in sorted(set(m.files) | set(actual)):
                if not any(p == u or p.startswith(u + "/") for u in unc):
                    continue
                if p in m.files:
                    m.remove(p, "cut by a fault", "cut")
                if p in actual:
                    if isinstance(w, BigWriter):
                        os.unlink(actual[p])  # too large to write again: let it go
                        self.log(f"repair: {p} removed")
                    else:
                        with open(actual[p], "rb") as f:
                            data = f.read()
                        with open(actual[p], "wb") as f:
                            f.write(data)
                        m.set(p, data, "repair")
                        self.log(f"repair: {p} written again ({len(data)} bytes)")
            m.dirs = dirs | {m.root}
            m.uncertain = set()
            m.recent.clear()

    def run(self):
        self.proxy = FaultProxy(os.environ["AWS_ENDPOINT_URL"])
        pool = random.Random(self.seed).randbytes(8 * MiB)
        writers = [SmallWriter(self, i, f"w{i}") for i in range(3)]
        writers.append(BigWriter(self, 3, "big", pool))
        self.burst = UnlinkBurst(self, 4, "u")
        self.writers = writers + [self.burst]
        kinds = ["kill9", "kill9_mid", "kill9_unlink", "sigterm", "sigterm_fsync", "refuse",
                 "stall", "reset", "spool_full"]
        plan = []
        while len(plan) < self.rounds:  # every kind once per cycle, in a seeded order
            cycle = list(kinds)
            self.rng.shuffle(cycle)
            plan += cycle
        plan = plan[:self.rounds]
        self.log(f"seed {self.seed}, {self.rounds} rounds, plan {plan}")
        self.start_daemon(2 if plan[0].startswith("sigterm") else None)
        for w in self.writers:
            os.makedirs(w.P(w.m.root), exist_ok=True)
        done_rounds = 0
        budget_end = self.t0 + self.minutes * 60 * 0.88
        for r, kind in enumerate(plan):
            if now() > budget_end and r > 0:
                self.log(f"time budget spent: stopping after {r} rounds")
                break
            if r + 1 < len(plan) and now() + 15 > budget_end:
                plan[r + 1:] = []  # the last round: a clean one
            if r == len(plan) - 1 and r > 0:
                kind = "none"
            done_rounds += 1
            self.rounds_done = done_rounds
            self.log(f"round {r}: {kind}")
            mid = None
            if kind in ("refuse", "stall", "reset"):
                dur = self.proxy_fault(kind)
                end = now() + dur

                def mid(ts, end=end):
                    while now() < end and any(t.is_alive() for t in ts):
                        time.sleep(0.1)
                    self.proxy.clear()
                    self.log("proxy fault cleared")
            elif kind == "spool_full":
                self.fill_spool()
            elif kind == "kill9_mid":
                at = self.rng.uniform(0.5, 6)

                def mid(ts, at=at):
                    end = now() + at
                    while now() < end and any(t.is_alive() for t in ts):
                        time.sleep(0.05)
                    self.faults["kill9"] += 1
                    self.log(f"kill -9 during the round ({at:.1f} s in)")
                    self.stop_writers.set()
                    self.kill9()
            self.run_writers(writers, mid)
            self.proxy.clear()
            nxt = plan[r + 1] if r + 1 < len(plan) else "none"
            dt = 2 if nxt.startswith("sigterm") else None
            restarted = False
            if kind == "kill9_mid":
                restarted = True
            elif kind == "spool_full":
                self.spool_full = False
                self.log(f"spool full: {self.c['enospc']} ENOSPC so far; unmount, remount "
                         "without the limit")
                self.unmount(self.daemon, final=False)
                restarted = True
            elif kind == "kill9":
                time.sleep(1.0)  # RELEASE of the last close()s reaches the daemon
                self.faults["kill9"] += 1
                self.log("kill -9 between rounds")
                self.kill9()
                restarted = True
            elif kind == "sigterm":
                self.faults["sigterm"] += 1
                if self.rng.random() < 0.5:
                    self.proxy.stall(60)
                time.sleep(0.5)
                self.sigterm(f"round {r} sigterm")
                self.proxy.clear()
                restarted = True
            elif kind == "sigterm_fsync":
                self.faults["sigterm"] += 1
                self.sigterm_during_fsync(writers[0], r)
                restarted = True
            elif kind == "kill9_unlink":
                self.burst.prepare(60)
                at = self.rng.uniform(0.01, 0.15)

                def kill_soon(ts, at=at):
                    time.sleep(at)
                    self.faults["kill9"] += 1
                    self.log(f"kill -9 {at * 1000:.0f} ms into a burst of unlinks")
                    self.kill9()
                self.run_writers([self.burst], kill_soon)
                restarted = True
            if restarted:
                self.start_daemon(dt)
                self.repair(self.writers)
            elif dt is not None:
                # the next round's SIGTERM needs a daemon with --drain-timeout
                self.log("unmount to restart with --drain-timeout")
                self.unmount(self.daemon, final=False)
                self.start_daemon(dt)
                self.repair(self.writers, recent=False)
        self.rounds_done = done_rounds
        self.proxy.clear()
        if self.daemon.drain_timeout is not None:
            self.unmount(self.daemon, final=False)
            self.start_daemon(None)
            self.repair(self.writers, recent=False)
        self.unmount(self.daemon, final=True)
        self.daemon = None
        return self.writers

    def fill_spool(self):
        """The spool nearly full: the daemon remounted with --spool-limit a few MiB above what
        the spool holds (--keep: nothing evicted, so every writer meets ENOSPC, and the files
        stay as the model knows them). An operation that gets ENOSPC ends its writer's round
        and stays uncertain; the next mount has no limit, and repair() takes what the mount
        holds."""
        self.unmount(self.daemon, final=False)
        used = 0
        for dp, _, fns in os.walk(os.path.join(self.spool, "files")):
            for fn in fns:
                try:
                    st = os.lstat(os.path.join(dp, fn))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    used += st.st_size
        limit = used + 3 * MiB
        self.faults["spool_full"] += 1
        self.log(f"spool full: {used} bytes in the spool, --spool-limit {limit}")
        self.spool_full = True
        self.start_daemon(None, ["--spool-limit", str(limit), "--keep"])

    def sigterm_during_fsync(self, w, r):
        """S3 stalled, an fsync() waiting on it, SIGTERM: the deadline must hold (bug 1)."""
        self.proxy.stall(120)
        p = f"{w.m.root}/fsync-under-sigterm"
        data = b"fsync while S3 is stalled\n"
        w.m.uncertain.add(p)
        res = {}

        def go():
            try:
                with open(w.P(p), "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                res["rc"] = 0
            except OSError as e:
                res["rc"] = e.errno
        t = threading.Thread(target=go, daemon=True)
        t.start()
        time.sleep(1.5)
        self.log(f"round {r}: fsync in flight={t.is_alive()}; SIGTERM")
        self.sigterm(f"round {r} sigterm during a stalled fsync")
        self.proxy.clear()
        t.join(timeout=30)
        self.log(f"round {r}: the stalled fsync ended: {res}")
        w.m.files[p] = data  # whatever: uncertain, repaired after the remount

    def unmount(self, d, final):
        t = now()
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        rc = d.wait(300)
        if rc is None:
            self.failure("deadline_missed" if d.drain_timeout else "hangs",
                         f"epoch {d.epoch} still running 300 s after unmount; killed -9")
            d.kill9()
        else:
            d.finish()
        self.log(f"unmount epoch {d.epoch}: rc={d.proc.returncode} in {now() - t:.1f} s")
        if final and d.proc.returncode != 0:
            self.failure("bad_exit", f"final unmount: epoch {d.epoch} exited "
                                     f"{d.proc.returncode}, expected 0; log {d.log_path}")
        elif not final and d.proc.returncode not in (0, 3):
            self.failure("bad_exit", f"unmount: epoch {d.epoch} exited {d.proc.returncode}")
        self.end_daemon(d, "final unmount" if final else "unmount")

    # -- the end --------------------------------------------------------------------------------

    def check(self, writers):
        live = {}
        for w in writers:
            for p, c in w.m.files.items():
                live[self.key(p)] = c
        etags = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.prefix + "/"):
            for o in page.get("Contents", []):
                etags[o["Key"]] = o["ETag"].strip('"')
        keys = set(etags)
        puts, resumed = self.puts_from_logs()
        for k in sorted(live):
            if k not in keys:
                self.failure("missing", f"{k}: expected {describe(live[k])}, no object")
                continue
            ok, got = self.matches(k, live[k])
            if not ok:
                self.failure("wrong", f"{k}: expected {describe(live[k])}, got {got}")
        self.c["stale_allowed"] += 0
        for k in sorted(keys - set(live)):
            g = self.gone.get(k)
            if g is None:
                self.failure("stale", f"{k}: a key no file of the workload ever had")
                continue
            certain, why, epoch = g
            # which daemon put the object that is there (the last logged put of its ETag)
            by = [(e, what) for e, etag, what in puts.get(k, []) if etag == etags[k]]
            put_epoch, put_what = by[-1] if by else (None, None)
            if certain and put_epoch == epoch:
                rel = k[len(self.prefix) + 1:]
                extra = " (that put was a resumed upload)" if (epoch, rel) in resumed else ""
                bug = self.known_bug(k)
                hist = "; ".join(f"+{t - self.t0:.2f}s e{e} {w}:{h}"
                                 for t, e, w, h in self.hist[k][-4:])
                self.failure("stale", f"{k}: should be deleted: {why} in epoch {epoch}, and the "
                                      f"object left (ETag {etags[k]}) is the one epoch {epoch}'s "
                                      f"daemon put ({put_what}){extra}; history: {hist}"
                                      + (f" -> {bug}" if bug else " -> not a known pattern"))
            else:
                self.c["stale_allowed"] += 1
                self.log(f"stale allowed: {k} ({why} in epoch {epoch}; certain={certain}; "
                         f"the object left was put by epoch {put_epoch} ({put_what}))")
        ups = self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix + "/")
        for u in ups.get("Uploads", []):
            self.failure("open_uploads", f"{u['Key']}: upload {u['UploadId']} initiated "
                                         f"{u['Initiated']} still open")
        jd = os.path.join(self.spool, "journal")
        for fn in sorted(os.listdir(jd)) if os.path.isdir(jd) else []:
            if not (fn.endswith(".rec") or fn.endswith(".tmp")):
                continue  # done.log: the finished uploads `artifuse status` counts
            with open(os.path.join(jd, fn), errors="replace") as f:
                text = f.read()
            fields = dict(l.split(" ", 1) for l in text.splitlines() if " " in l)
            what = f"op={fields.get('op', 'upload')} " + (f"key={fields['key']}" if "key" in fields
                                                        else f"path={fields.get('path', '?')}")
            hint = ""
            if not text:
                what = "an empty record"
            if fn.endswith(".tmp") and fields.get("op") != "delete":
                hint = (" (a record half-written at a kill -9 and never cleaned up: the same "
                        "leftover as known bug 5; the record it was to replace, if any, still "
                        "holds)")
            if fn.endswith(".tmp") and fields.get("op") == "delete":
                k = fields.get("key")
                there = k in keys
                hint = (" (a delete record half-written at a kill -9; the object is "
                        f"{'still there: known bug 5' if there else 'gone'})")
            self.failure("journal_left", f"{jd}/{fn}: {what}{hint}")

    def puts_from_logs(self):
        """key -> [(epoch, etag, what)] in log order, from every daemon's op=upload and
        op=copy status=done lines; and {(epoch, path)} of the uploads each resumed."""
        import re
        kv = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
        puts = collections.defaultdict(list)
        resumed = set()
        for d in self.daemons:
            if not os.path.exists(d.log_path):
                continue
            with open(d.log_path, errors="replace") as f:
                for line in f:
                    if "op=upload status=done" not in line and "op=copy status=done" not in line \
                            and "op=resume path=" not in line:
                        continue
                    f_ = {m.group(1): m.group(2) for m in kv.finditer(line)}
                    val = {k: v[1:-1].replace('\\"', '"') if v.startswith('"') else v
                           for k, v in f_.items()}
                    if val.get("op") == "resume":
                        resumed.add((d.epoch, val.get("path")))
                        continue
                    if "key" in val and "etag" in val:
                        puts[val["key"]].append((d.epoch, val["etag"].strip('"'),
                                                 f"{val['op']} at {val.get('time', '?')}"))
        return puts, resumed

    def summary(self, ok_ops, total_bytes):
        f = self.faults
        faults = ",".join(f"{k}:{f[k]}" for k in ("kill9", "sigterm", "refuse", "stall", "reset",
                                                   "spool_full"))
        c = self.c
        # The daemon's memory goal (issue 15): 32 MiB at its peak, whatever the workload.
        c["rss_over"] = int(self.peak > RSS_LIMIT_MIB * MiB)
        fail_kinds = ("missing", "wrong", "stale", "open_uploads", "journal_left", "crashes",
                      "deadline_missed", "fsync_violations", "spool_mismatch", "op_errors",
                      "bad_exit", "hangs", "soak_errors", "rss_over")
        failed = any(c[k] for k in fail_kinds)
        extra = " ".join(f"{k}={c[k]}" for k in ("spool_mismatch", "op_errors", "bad_exit",
                                                   "hangs", "soak_errors", "rss_over") if c[k])
        line = (f"soak: {(now() - self.t0) / 60:.1f} min seed={self.seed} ops={ok_ops} "
                f"bytes={total_bytes / (1 << 30):.2f}GiB rounds={self.rounds_done} "
                f"faults={faults} missing={c['missing']} wrong={c['wrong']} "
                f"stale={c['stale']} stale_allowed={c['stale_allowed']} open_uploads={c['open_uploads']} "
                f"journal_left={c['journal_left']} crashes={c['crashes']} "
                f"deadline_missed={c['deadline_missed']} "
                f"fsync_violations={c['fsync_violations']} "
                + (extra + " " if extra else "") +
                f"peak_rss={self.peak / MiB:.1f}MiB -> {'FAIL' if failed else 'PASS'}")
        return line, failed

    def cleanup(self):
        self.stop_writers.set()
        if self.proxy:
            self.proxy.clear()
        for d in self.daemons:
            if d.alive():
                if is_mounted(self.mnt):
                    subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                d.proc.send_signal(signal.SIGTERM)
                if d.wait(20) is None:
                    d.killed_by_us = True
                    d.proc.kill()
                    d.proc.wait()
            if not d._stop.is_set():
                d.finish()
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.proxy:
            self.proxy.close()
            self.proxy = None


def main():
    ap = argparse.ArgumentParser(description="artifuse's bounded soak")
    ap.add_argument("minutes", nargs="?", type=float, default=3.0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--bin", default=os.environ.get(
        "ARTIFUSE_BIN", os.path.join(ROOT, "build", "fs", "artifuse")))
    ap.add_argument("--workdir", default=os.environ.get("ARTIFUSE_SOAK_DIR",
                                                        "/var/tmp/artifuse-soak"))
    ap.add_argument("--keep-spool", action="store_true",
                    help="keep the spool's files (default: removed, logs kept)")
    ap.add_argument("--keep-s3", action="store_true",
                    help="keep a passed run's objects (default: deleted; a failed run's stay)")
    ap.add_argument("--daemon-arg", action="append",
                    help="one more argument for artifuse mount (repeatable)")
    a = ap.parse_args()
    soak = Soak(a)
    print(f"soak: seed={soak.seed} (replay: scripts/soak {a.minutes:g} --seed {soak.seed}); "
          f"logs in {soak.logdir}; S3 prefix s3://{BUCKET}/{soak.prefix}/", flush=True)

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: cleanup must not be cut
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    soak.writers = []
    interrupted = False
    try:
        soak.check(soak.run())
    except KeyboardInterrupt:
        interrupted = True
        soak.failures.append("interrupted")
    except Fail as e:
        soak.notes.append(str(e))
        if not soak.failures:
            soak.failure("soak_errors", str(e))
    except Exception:
        soak.failure("soak_errors", traceback.format_exc())
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        soak.cleanup()
        for d in soak.daemons:
            soak.peak = max(soak.peak, d.hwm)
        if not a.keep_spool:
            shutil.rmtree(os.path.join(soak.spool, "files"), ignore_errors=True)
    if not hasattr(soak, "rounds_done"):
        soak.rounds_done = 0
    for f in soak.failures:
        print(f)
    ops = sum(w.ops for w in soak.writers)
    by = sum(w.bytes for w in soak.writers)
    line, failed = soak.summary(ops, by)
    soak.log(line)
    print(line, flush=True)
    if not failed and not a.keep_s3:
        drop_prefix(soak)
    return 1 if failed or interrupted else 0


def drop_prefix(soak):
    """A passed run's objects go (a failed run's stay, to look at): the test server's disk is
    small, and radosgw frees deleted data only after its GC."""
    try:
        pages = soak.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                  Prefix=soak.prefix + "/")
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                soak.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
    except Exception as e:  # cleanup only: the verdict is already printed
        print(f"soak: could not delete s3://{BUCKET}/{soak.prefix}/: {e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
