# SPDX-License-Identifier: Apache-2.0
"""The S3 client against the real server: clock skew."""
import os
import shutil
import subprocess

import pytest

from helpers import BIN, BUCKET, get_bytes, wait_for


@pytest.mark.parametrize("shift", ["+2h", "-1h"])
def test_clock_skew_is_corrected_from_the_servers_date(s3env, s3, names, tmp_path, shift):
    """A host clock hours off: S3 refuses the signature (RequestTimeTooSkewed, or a bare 403
    to HEAD); artifuse adopts the server's Date and signs again."""
    if not shutil.which("faketime"):
        pytest.skip("faketime is not installed (scripts/deps installs it)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, **s3env)
    r = subprocess.run(["faketime", "-f", shift, BIN, "run", "-v", "--spool", str(tmp_path / "spool"),
                        "--artifact-repository", f"s3://{BUCKET}/{names['prefix']}", str(mnt), "--",
                        "sh", "-c", f"echo skewed > {mnt}/a.txt"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert 'msg="clock skew corrected"' in r.stderr
    assert get_bytes(s3, f"{names['prefix']}/a.txt") == b"skewed\n"


@pytest.mark.parametrize("style", ["virtual", "path"])
def test_addressing_style_shapes_host_and_path(mount, names, tmp_path, style):
    """Virtual-hosted: the bucket goes in the host name (signed as such), the path is the
    key. Checked against a recording stand-in (radosgw would need a DNS name for it);
    *.localhost resolves to 127.0.0.1 without DNS."""
    from creds_standins import S3Recorder

    with S3Recorder() as rec:
        port = rec.url.rsplit(":", 1)[1]
        m = mount(args=["--endpoint", f"http://localhost:{port}", "--addressing", style])
        with open(m.path("v.txt"), "w") as f:
            f.write("v")
        wait_for(lambda: rec.puts(), what="the PUT")
        assert m.unmount() == 0, m.log()
        put = rec.puts()[0]
    key = f"{names['prefix']}/v.txt"
    if style == "virtual":
        assert put.headers["host"] == f"{BUCKET}.localhost:{port}"
        assert put.path == f"/{key}"
    else:
        assert put.headers["host"] == f"localhost:{port}"
        assert put.path == f"/{BUCKET}/{key}"
    assert "host" in put.headers["authorization"]
    assert put.body == b"v"
