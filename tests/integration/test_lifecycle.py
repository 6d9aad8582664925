# SPDX-License-Identifier: Apache-2.0
"""The never-lose-an-output cases that need the fault proxy and a killed or stopped daemon
(issue: journal, drain, run): kill -9 mid-multipart with the bytes counted, SIGTERM with a
short drain timeout, run's exit statuses."""
import json
import os
import signal
import subprocess
import time

import pytest

from helpers import BIN, BUCKET, MiB, get_bytes, journal_text, kill9, open_uploads, wait_for


def test_kill9_mid_multipart_resumes_without_resending_finished_parts(pmount, s3, names, proxy):
    """Case 4: the bytes through the proxy show the finished parts are not sent again."""
    args = ["--part-size", "5M", "--multipart-threshold", "5M", "--part-concurrency", "1"]
    m = pmount(args=args)
    data = os.urandom(60 * MiB)  # 12 parts
    with open(m.path("big.bin"), "wb") as f:
        f.write(data)
    wait_for(lambda: journal_text(m).count("\npart ") >= 4, timeout=60, what="4 parts done")
    kill9(m)
    first = proxy.stats()["body_bytes_up"]
    done = journal_text(m).count("\npart ")

    m2 = pmount(args=args, spool_root=m.spool_root)
    assert m2.unmount() == 0, m2.log()
    second = proxy.stats()["body_bytes_up"] - first
    assert get_bytes(s3, f"{names['prefix']}/big.bin") == data
    assert open_uploads(s3, names["prefix"]) == []
    # The resumed run sends at most what was not finished, plus Complete's small body.
    assert second <= len(data) - done * 5 * MiB + 64 * 1024, (second, done)
    print(f"case 4: wrote {len(data)} bytes; before kill -9 {first} body bytes went up "
          f"({done} parts journaled); after restart {second}; total re-sent "
          f"{first + second - len(data)} bytes")


def test_sigterm_with_short_drain_timeout_leaves_the_rest_journaled(pmount, s3, s3env, names,
                                                                    proxy):
    """Case 6: SIGTERM during a large upload, --drain-timeout 2: the journal holds the rest,
    status says so, a later drain finishes it."""
    m = pmount(args=["--drain-timeout", "2", "--part-size", "5M", "--multipart-threshold", "5M"])
    data = os.urandom(30 * MiB)
    proxy.stall(30)  # the upload hangs on the wire; 2 s cannot finish it
    with open(m.path("slow.bin"), "wb") as f:
        f.write(data)
    wait_for(lambda: "path slow.bin" in journal_text(m), what="the upload to be queued")
    time.sleep(0.5)  # a worker picks it up and hangs on the stalled proxy
    m.proc.send_signal(signal.SIGTERM)
    assert m.proc.wait(timeout=60) == 3, m.log()
    log = m.log()
    assert "drain timeout passed" in log and 'status=left path="slow.bin"' in log
    st = subprocess.run([BIN, "status", "--spool", m.spool_root, "--json"],
                        capture_output=True, text=True)
    assert st.returncode == 3
    assert json.loads(st.stdout)["pending"]["files"] == 1
    proxy.stall(0)
    r = subprocess.run([BIN, "drain", "--spool", m.spool_root, "--endpoint",
                        s3env["AWS_ENDPOINT_URL"]], env=dict(os.environ, **s3env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert get_bytes(s3, f"{names['prefix']}/slow.bin") == data
    assert open_uploads(s3, names["prefix"]) == []


@pytest.mark.parametrize("script,want", [("exit 0", 0), ("exit 3", 3),
                                         ("kill -KILL $$", 128 + 9)])
def test_run_exit_status_is_the_commands(s3env, s3, names, tmp_path, script, want):
    """Case 7: the program's status (128+N for a signal), its file uploaded either way."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([BIN, "run", "--spool", str(tmp_path / "spool"), "--artifact-repository",
                        f"s3://{BUCKET}/{names['prefix']}", str(mnt), "--", "sh", "-c",
                        f"echo out > {mnt}/out.txt; {script}"],
                       env=dict(os.environ, **s3env), capture_output=True, text=True, timeout=120)
    assert r.returncode == want, r.stderr
    assert get_bytes(s3, f"{names['prefix']}/out.txt") == b"out\n"
