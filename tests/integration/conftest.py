# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the integration suite: the local S3 server, an independent S3 client
(boto3), and real artifuse mounts.

Every mount runs the real daemon (`artifuse mount -f`, ARTIFUSE_BIN, default build/) with
its log in a file; teardown always unmounts (fusermount3 -u -z) and stops the daemon, and
fails the test if the log shows a sanitizer report. A failing test prints the daemon's log
and a command line that reproduces the mount; a passing one's objects (under its workflow's
prefix in the bucket) are deleted.
"""
import os
import shlex
import signal
import subprocess
import time
import uuid

import boto3
import botocore.config
import pytest

from faultproxy import FaultProxy
from helpers import BIN, BUCKET, ROOT, SANITIZER_MARKS, is_mounted

# Network rule: nothing here may reach EC2's IMDS (169.254.169.254). Tests that exercise
# IMDS set AWS_EC2_METADATA_DISABLED="" and point AWS_EC2_METADATA_SERVICE_ENDPOINT at a
# local stand-in.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def _server_env():
    """The env of a running scripts/s3-server, starting one if none answers."""
    d = os.environ.get("ARTIFUSE_S3_DIR", "/var/tmp/artifuse-test-s3")
    st = subprocess.run([os.path.join(ROOT, "scripts", "s3-server"), "status", "--dir", d],
                        capture_output=True, text=True)
    started = False
    if st.returncode != 0:
        subprocess.run([os.path.join(ROOT, "scripts", "s3-server"), "start", "--dir", d,
                        "--bucket", "artifuse-test"], check=True, stdout=subprocess.DEVNULL)
        started = True
    env = {}
    with open(os.path.join(d, "env")) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line and "${" not in line:
                k, v = line[len("export "):].split("=", 1)
                env[k] = v.strip('"')
    return d, env, started


@pytest.fixture(scope="session")
def s3env():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine: FUSE mounts are impossible")
    if not os.path.exists(BIN):
        pytest.skip(f"artifuse is not built at {BIN} (run scripts/build)")
    d, env, started = _server_env()
    yield env
    if started:
        subprocess.run([os.path.join(ROOT, "scripts", "s3-server"), "stop", "--dir", d],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def s3(s3env):
    """boto3: the independent client every assertion goes through."""
    return boto3.client(
        "s3", endpoint_url=s3env["AWS_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=s3env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 3}))


def _delete_prefix(s3, prefix):
    """Deletes every object under @prefix (a passed test's objects: a long-lived test server
    would otherwise fill up, radosgw frees deleted data only after its GC delay)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


@pytest.fixture
def names(request):
    """A workflow and pod name of this test's own, so tests never see each other's keys.
    Torn down after the test's mounts (they depend on it): if the test passed and used the
    server, its objects under argo-workflows/WORKFLOW/ are deleted."""
    wf = "it-" + uuid.uuid4().hex[:10]
    s3 = request.getfixturevalue("s3") if "s3" in request.fixturenames else None
    yield {"workflow": wf, "pod": wf + "-main-1234567890",
           "prefix": f"argo-workflows/{wf}/{wf}-main-1234567890"}
    rep = getattr(request.node, "rep_call", None)
    if s3 is not None and rep is not None and rep.passed:
        try:
            _delete_prefix(s3, f"argo-workflows/{wf}/")
        except Exception as e:  # the test passed; a failed cleanup is not its failure
            print(f"cleanup of argo-workflows/{wf}/ failed: {e}")


class Mount:
    """One running `artifuse mount -f` daemon."""

    def __init__(self, tmp_path, s3env, names, spec=None, args=(), env=None, repo=None,
                 as_dir="/tmp", wait=True, spool_root=None):
        self.dir = tmp_path / "artifuse-it"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.mnt = str(self.dir / "mnt")
        # --spool: files/ and journal/; a later mount may reuse an earlier one's
        self.spool_root = spool_root or str(self.dir / "spool")
        self.spool = os.path.join(self.spool_root, "files")  # what the mount serves
        self.log_path = str(self.dir / "artifuse.log")
        os.makedirs(self.mnt, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(s3env)
        self.env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        self.env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        if env:
            self.env.update(env)
        repo = repo or ("s3://" + BUCKET + "/argo-workflows/{{workflow.name}}/{{pod.name}}")
        self.argv = [BIN, "mount", "-f", "--spool", self.spool_root, "--artifact-repository", repo,
                     "--var", "workflow.name=" + names["workflow"],
                     "--var", "pod.name=" + names["pod"], "--log-file", self.log_path]
        if as_dir:
            self.argv += ["--as", as_dir]
        if spec:
            self.argv += ["--spec", str(spec)]
        self.argv += list(args) + [self.mnt]
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.log_path + ".stderr", "w"))
        self.returncode = None
        if wait:
            self.wait_mounted()

    def wait_mounted(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"artifuse exited with {self.proc.returncode} before "
                                     f"mounting:\n{self.log()}")
            if is_mounted(self.mnt):
                return
            time.sleep(0.05)
        raise AssertionError(f"not mounted after {timeout}s:\n{self.log()}")

    def path(self, rel):
        return os.path.join(self.mnt, rel)

    def log(self):
        text = ""
        for p in (self.log_path, self.log_path + ".stderr"):
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    text += f.read()
        return text

    def reproducer(self):
        keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_REGION")
        env = " ".join(f"{k}={shlex.quote(self.env[k])}" for k in keys if k in self.env)
        return f"{env} AWS_SECRET_ACCESS_KEY=... " + " ".join(shlex.quote(a) for a in self.argv)

    def unmount(self, timeout=120):
        """fusermount3 -u, then wait for the daemon to drain and exit; returns its status."""
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"artifuse did not exit {timeout}s after unmount:\n{self.log()}")
        return self.returncode

    def stop(self):
        if is_mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt])
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def mount(tmp_path, s3env, names, request):
    mounts = []

    def make(**kw):
        m = Mount(tmp_path / str(len(mounts)), s3env, names, **kw) if mounts else \
            Mount(tmp_path, s3env, names, **kw)
        mounts.append(m)
        return m

    yield make
    failed = request.node.rep_call.failed if hasattr(request.node, "rep_call") else False
    for m in mounts:
        m.stop()
        log = m.log()
        if failed:
            print(f"\n--- artifuse log ({m.log_path}) ---\n{log}\n--- reproduce with ---\n"
                  f"{m.reproducer()}")
        bad = [line for line in log.splitlines() if any(s in line for s in SANITIZER_MARKS)]
        assert not bad, "sanitizer report in the daemon log:\n" + log


@pytest.fixture
def proxy(s3env):
    """A FaultProxy in front of the S3 server; fails the test if any of its threads outlive
    close()."""
    p = FaultProxy(s3env["AWS_ENDPOINT_URL"])
    yield p
    left = p.close()
    assert not left, f"faultproxy threads still running after close: {left}"


@pytest.fixture
def pmount(proxy, mount):
    """mount(), with artifuse's endpoint the proxy. Set up after `mount` and `proxy`, so
    torn down first: the faults are off before the daemon is stopped."""
    def make(args=(), **kw):
        return mount(args=["--endpoint", proxy.endpoint, *args], **kw)
    yield make
    proxy.clear()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
