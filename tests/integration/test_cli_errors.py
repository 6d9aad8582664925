# SPDX-License-Identifier: Apache-2.0
"""Bad input gets one clear line naming the problem and exit status 1, before anything is
mounted."""
import os
import subprocess

import pytest

from helpers import BIN, BUCKET, SEED_SPEC, is_mounted

REPO = f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}"


def run(args, s3env, tmp_path, env=None):
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    e = dict(os.environ, **s3env)
    e.update(env or {})
    r = subprocess.run([BIN] + args, env=e, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert not is_mounted(str(mnt))
    return r


def mount_args(tmp_path, *extra, spec=SEED_SPEC, repo=REPO, vars=("workflow.name=wf", "pod.name=p")):
    a = ["mount", "-f", "--spool", str(tmp_path / "spool"), "--as", "/tmp"]
    if spec:
        a += ["--spec", str(spec)]
    if repo:
        a += ["--artifact-repository", repo]
    for v in vars:
        a += ["--var", v]
    return a + list(extra) + [str(tmp_path / "mnt")]


def one_error_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("artifuse: error: "), lines[0]
    return lines[0]


def test_help_explains_the_commands():
    r = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("mount", "keys", "--artifact-repository", "--spec", "--var", "--endpoint",
                 "fusermount3 -u", "Exit status", "--delete-on-unlink"):
        assert word in r.stdout


def test_unknown_flag(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, "--no-such-flag"), s3env, tmp_path))
    assert "--no-such-flag" in line


def test_unknown_command(s3env, tmp_path):
    line = one_error_line(run(["mount-it"], s3env, tmp_path))
    assert "mount-it" in line


def test_missing_variable_names_it_and_where_it_looked(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, vars=("workflow.name=wf",)), s3env, tmp_path,
                              env={"ARGO_POD_NAME": ""}))
    assert "'pod.name'" in line and "ARGO_POD_NAME" in line and "--var pod.name=" in line


def test_variable_from_the_environment(s3env, tmp_path):
    r = subprocess.run([BIN, "keys", "--spec", SEED_SPEC, "--as", "/tmp", "--artifact-repository",
                        REPO, "/tmp/hello.txt"], capture_output=True, text=True,
                       env=dict(os.environ, ARGO_WORKFLOW_NAME="wf-env", ARGO_POD_NAME="pod-env"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("argo-workflows/wf-env/pod-env/hello.txt")


def test_unreadable_spec(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, spec=tmp_path / "nope.yaml"), s3env, tmp_path))
    assert "nope.yaml" in line and "No such file" in line


def test_bad_yaml_names_file_line_and_column(s3env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Workflow\nspec:\n  entrypoint: main\n  templates: [\n    - name: x\n")
    line = one_error_line(run(mount_args(tmp_path, spec=bad), s3env, tmp_path))
    assert f"{bad}:" in line and "YAML error" in line
    assert any(f"{bad}:{n}:" in line for n in (4, 5, 6)), line


def test_unreachable_endpoint(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, "--endpoint", "http://127.0.0.1:1"), s3env,
                              tmp_path))
    assert "cannot reach S3 endpoint http://127.0.0.1:1" in line


def test_missing_bucket(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, repo="s3://no-such-bucket-artifuse/x"), s3env,
                              tmp_path))
    assert "no-such-bucket-artifuse" in line and "404" in line


def test_no_credentials(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path), s3env, tmp_path,
                              env={"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}))
    assert "AWS_ACCESS_KEY_ID" in line


def test_mountpoint_missing(s3env, tmp_path):
    args = mount_args(tmp_path)
    args[-1] = str(tmp_path / "does-not-exist")
    line = one_error_line(run(args, s3env, tmp_path))
    assert "does-not-exist" in line


def test_repository_without_s3_scheme(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, repo="my-bucket/prefix"), s3env, tmp_path))
    assert "s3://" in line


@pytest.mark.parametrize("flag,value", [("--upload-concurrency", "0"),
                                        ("--unmatched", "sometimes"),
                                        ("--drain-timeout", "soon"),
                                        ("--upload-open-every", "2x"),
                                        ("--upload-open-every", "10ms"),
                                        ("--upload-open-every", "25h"),
                                        ("--multipart-threshold", "6G"),
                                        ("--multipart-threshold", "4M")])
def test_bad_option_values(s3env, tmp_path, flag, value):
    line = one_error_line(run(mount_args(tmp_path, flag, value), s3env, tmp_path))
    assert flag in line and value in line


def test_open_every_with_no_overwrite_is_refused(s3env, tmp_path):
    line = one_error_line(run(mount_args(tmp_path, "--upload-open-every", "5s", "--no-overwrite"),
                              s3env, tmp_path))
    assert "--upload-open-every" in line and "--no-overwrite" in line


def test_empty_key_format_is_argos_default():
    """Argo: an empty keyFormat means {{workflow.name}}/{{pod.name}}."""
    r = subprocess.run([BIN, "keys", "--artifact-repository", f"s3://{BUCKET}", "--var",
                        "workflow.name=wf", "--var", "pod.name=wf-p", "/out/x.txt"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"/out/x.txt\ts3://{BUCKET}/wf/wf-p/out/x.txt\n"


def test_a_template_without_outputs_is_an_error(s3env, tmp_path):
    spec = tmp_path / "noout.yaml"
    spec.write_text("kind: Workflow\nmetadata: {generateName: x-}\nspec:\n  entrypoint: main\n"
                    "  templates:\n  - name: main\n    container: {image: alpine}\n")
    line = one_error_line(run(mount_args(tmp_path, spec=spec), s3env, tmp_path))
    assert "template 'main' declares no output artifacts" in line and "--unmatched upload" in line
