# SPDX-License-Identifier: Apache-2.0
"""artifuse run: mount, run the program, upload everything, unmount, exit with its status."""
import signal
import subprocess
import time

from helpers import BUCKET, SANITIZER_MARKS, env_with, get_bytes, is_mounted, list_keys, run_argv


def clean(stderr):
    """No sanitizer report from the daemon."""
    assert not any(m in stderr for m in SANITIZER_MARKS), stderr
    return stderr


def test_run_uploads_before_exiting_and_keeps_the_exit_status(s3env, s3, names, tmp_path):
    argv, mnt = run_argv(tmp_path, names, "sh", "-c",
                         f'echo "Hello from Argo!" > {tmp_path}/mnt/hello.txt; exit 7')
    r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 7, r.stderr
    assert not is_mounted(mnt)
    # Already there when run returns: no waiting.
    assert get_bytes(s3, f"{names['prefix']}/hello.txt") == b"Hello from Argo!\n"
    summary = clean(r.stderr).strip().splitlines()[-1]
    assert summary.startswith("artifuse: sh exited with 7; 1 files (17 bytes) uploaded"), summary


def test_run_forwards_sigterm_and_still_uploads(s3env, s3, names, tmp_path):
    script = (f'trap "echo bye >> {tmp_path}/mnt/hello.txt; exit 143" TERM; '
              f'echo hi > {tmp_path}/mnt/hello.txt; touch {tmp_path}/ready; '
              'while :; do sleep 0.1; done')
    argv, mnt = run_argv(tmp_path, names, "sh", "-c", script)
    p = subprocess.Popen(argv, env=env_with(s3env), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < end and p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 143, p.stderr.read()
    clean(p.stderr.read())
    assert get_bytes(s3, f"{names['prefix']}/hello.txt") == b"hi\nbye\n"
    assert not is_mounted(mnt)


def test_run_success_with_an_upload_failure_exits_3_and_names_the_file(s3env, s3, names, tmp_path):
    argv, _ = run_argv(tmp_path, names, "sh", "-c", f"echo x > {tmp_path}/mnt/hello.txt",
                       extra=("--upload-attempts", "1"))
    r = subprocess.run(argv, env=env_with(s3env, AWS_SECRET_ACCESS_KEY="wrong-secret-0000000000"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    clean(r.stderr)
    line = [l for l in r.stderr.splitlines() if l.startswith("artifuse: not in S3:")]
    assert len(line) == 1 and "hello.txt" in line[0] and "SignatureDoesNotMatch" in line[0], r.stderr
    assert list_keys(s3, names["prefix"]) == []
    assert (tmp_path / "spool" / "files" / "hello.txt").read_text() == "x\n"


def test_run_command_not_found(s3env, names, tmp_path):
    argv, mnt = run_argv(tmp_path, names, "/no/such/program")
    r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "cannot run /no/such/program" in r.stderr
    assert not is_mounted(mnt)


def test_run_without_a_command(s3env, names, tmp_path):
    argv, _ = run_argv(tmp_path, names)
    r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "give the command after --" in r.stderr


def test_manifest_has_one_json_line_per_object(s3env, s3, names, tmp_path):
    import json
    manifest = tmp_path / "manifest.jsonl"
    argv, _ = run_argv(tmp_path, names, "sh", "-c",
                       f'echo "Hello from Argo!" > {tmp_path}/mnt/hello.txt; '
                       f'echo other > {tmp_path}/mnt/other.txt',
                       extra=("--manifest", str(manifest), "--unmatched", "upload"))
    r = subprocess.run(argv, env=env_with(s3env), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(l) for l in manifest.read_text().splitlines()]
    by_path = {l["path"]: l for l in lines}
    assert sorted(by_path) == ["hello.txt", "other.txt"]
    h = by_path["hello.txt"]
    assert h["bucket"] == BUCKET and h["key"] == f"{names['prefix']}/hello.txt"
    assert h["size"] == 17 and h["archive"] == "none"
    head = s3.head_object(Bucket=BUCKET, Key=h["key"])
    assert h["etag"] == head["ETag"]
    assert h["start"] <= h["end"] and h["end"].endswith("Z")
