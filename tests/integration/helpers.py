# SPDX-License-Identifier: Apache-2.0
"""Plain helpers of the integration suite, one copy each (the fixtures are in conftest.py).

What S3 holds is read through boto3 (the `s3` fixture), never through artifuse's own code;
what a mount did is read from its log and its journal; what went over the wire, from the
fault proxy's stats (faultproxy.py).
"""
import os
import signal
import subprocess
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ARTIFUSE_BIN", os.path.join(ROOT, "build", "fs", "artifuse"))
BUCKET = "my-argo-artifacts-bucket"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer")
SEED_SPEC = os.path.join(ROOT, "examples", "hello-workflow.yaml")  # the seed scenario's
MiB = 1 << 20


# ---- waiting ----------------------------------------------------------------------------

def wait_for(pred, timeout=30.0, what="condition"):
    """Polls @pred every 0.1 s; returns its first true value, or fails after @timeout s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        return any(line.split()[1] == path and line.split()[2].startswith("fuse")
                   for line in f)


# ---- S3, through boto3 -----------------------------------------------------------------

def key_of(names, rel):
    """The key the mount of the `names` fixture gives @rel."""
    return f"{names['prefix']}/{rel}"


def list_keys(s3, prefix, bucket=BUCKET):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def get_bytes(s3, key, bucket=BUCKET):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def open_uploads(s3, prefix):
    """The multipart uploads left open under @prefix."""
    return s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def wait_object(s3, key, data, timeout=30):
    """Waits until @key holds @data (an upload after a change is asynchronous)."""
    def ok():
        try:
            return get_bytes(s3, key) == data
        except s3.exceptions.ClientError:
            return False
    wait_for(ok, timeout=timeout, what=f"{key} to hold the expected {len(data)} bytes")


# ---- writing through a mount -----------------------------------------------------------

def write_chunks(f, data, chunk=MiB):
    """Writes @data to the open file @f @chunk bytes at a time, then flushes."""
    for i in range(0, len(data), chunk):
        f.write(data[i:i + chunk])
    f.flush()


def write(m, rel, data, chunk=MiB):
    """Creates (or truncates) @rel in mount @m, its folders too, and writes @data (bytes, or
    str as UTF-8) to it @chunk bytes at a time: one write(2) for at most @chunk bytes."""
    if isinstance(data, str):
        data = data.encode()
    path = m.path(rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        write_chunks(f, data, chunk)


def write_spec(tmp_path, artifacts):
    """A Workflow whose entrypoint template declares @artifacts [(name, path, extra)]."""
    lines = []
    for name, path, extra in artifacts:
        lines.append(f"          - name: {name}\n            path: {path}\n")
        if extra:
            lines.append(textwrap.indent(extra, " " * 12))
    text = ("apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n"
            "metadata:\n  generateName: it-\nspec:\n  entrypoint: main\n  templates:\n"
            "    - name: main\n      container:\n        image: alpine\n"
            "      outputs:\n        artifacts:\n" + "".join(lines))
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


# ---- the daemon run by hand ------------------------------------------------------------

def env_with(s3env, **kw):
    """The environment for a daemon a test starts itself: the server's, the sanitizers'
    options as the `mount` fixture sets them, then @kw."""
    e = dict(os.environ, **s3env)
    e.update(ASAN_OPTIONS="detect_leaks=1", UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    e.update(kw)
    return e


def run_argv(tmp_path, names, *cmd, extra=()):
    """`artifuse run` of @cmd on <tmp_path>/mnt, with the seed spec and the `names` fixture's
    workflow and pod; returns the argv and the mount point."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    return [BIN, "run", "--spool", str(tmp_path / "spool"), "--spec", SEED_SPEC, "--as", "/tmp",
            "--artifact-repository",
            f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
            "--var", f"workflow.name={names['workflow']}", "--var", f"pod.name={names['pod']}",
            *extra, str(mnt), "--", *cmd], mnt


# ---- what a mount did: its log and its journal -----------------------------------------

def log_lines(m, *needles):
    """The lines of mount @m's log that hold every one of @needles."""
    return [line for line in m.log().splitlines() if all(n in line for n in needles)]


def journal_records(m):
    """The names of the records in mount @m's journal, sorted."""
    d = os.path.join(m.spool_root, "journal")
    return sorted(f for f in os.listdir(d) if f.endswith(".rec"))


def journal_text(m):
    """Every record of mount @m's journal, one after another."""
    d = os.path.join(m.spool_root, "journal")
    return "".join(open(os.path.join(d, f)).read() for f in journal_records(m))


def kill9(m, f=None):
    """kill -9 of mount @m's daemon, then the dead mount cleaned away; @f, a file still open
    on the mount, is closed in between."""
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=30)
    if f is not None:
        try:
            f.close()
        except OSError:
            pass  # the mount is gone under it
    subprocess.run(["fusermount3", "-u", "-z", m.mnt])


# ---- what went through the fault proxy -------------------------------------------------

def put_body_bytes(stats, key_part):
    """Body bytes the proxy forwarded for PUTs whose target contains @key_part (@stats:
    FaultProxy.stats())."""
    return sum(r["body_sent"] for r in stats["requests_log"]
               if r["method"] == "PUT" and key_part in r["target"])


def requests_seen(stats, width=20):
    """(method, the target's last @width characters, outcome) of each request in @stats,
    for a failure message or a report."""
    return [(r["method"], r["target"][-width:], r["outcome"]) for r in stats["requests_log"]]
