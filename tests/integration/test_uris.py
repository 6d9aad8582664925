# SPDX-License-Identifier: Apache-2.0
"""Outputs as parameters (issue 14, point 2): --uris-dir DIR writes DIR/<artifact name> with
the artifact's s3://bucket/key as its upload completes, and --uris-json FILE keeps one JSON
object, artifact name -> {uri, size, etag}. Every URI is checked against the object that is
really in S3 (boto3, straight to the server)."""
import json
import os
import subprocess

from helpers import (BIN, BUCKET, SANITIZER_MARKS, env_with, get_bytes, key_of, list_keys,
                     log_lines, wait_for, wait_object, write, write_spec)

ARTIFACTS = [
    ("result", "/tmp/out/result.csv", "archive:\n  none: {}\n"),
    ("logs", "/tmp/logs", "archive:\n  none: {}\n"),
    ("model", "/tmp/model.bin", "archive:\n  tar: {}\n"),
]


def object_of(s3, uri):
    """(key, HEAD answer) of the object @uri names, which must be in our bucket."""
    assert uri.startswith(f"s3://{BUCKET}/"), uri
    key = uri[len(f"s3://{BUCKET}/"):]
    return key, s3.head_object(Bucket=BUCKET, Key=key)


def read(path):
    with open(path) as f:
        return f.read()


def test_uris_dir_and_json_name_the_objects_in_s3(mount, s3, names, tmp_path):
    """A file, a directory uploaded file by file and a tgz artifact, plus an unmatched file:
    each artifact's file holds exactly its URI (no newline), written while still mounted; the
    JSON's size and ETag are the object's; the unmatched file is in neither."""
    spec = write_spec(tmp_path, ARTIFACTS)
    udir, ujson = tmp_path / "uris", tmp_path / "o" / "uris.json"
    m = mount(spec=spec, args=["--unmatched", "upload", "--uris-dir", str(udir),
                               "--uris-json", str(ujson)])
    write(m, "out/result.csv", b"a,b\n1,2\n")
    wait_object(s3, key_of(names, "result.csv"), b"a,b\n1,2\n")
    # At upload time, not at unmount.
    wait_for(lambda: (udir / "result").exists(), what="uris/result while mounted")
    assert read(udir / "result") == f"s3://{BUCKET}/{key_of(names, 'result.csv')}"
    write(m, "logs/a/1.log", b"one\n")
    write(m, "logs/2.log", b"two\n")
    write(m, "model.bin", os.urandom(3000))
    write(m, "stray.txt", b"not an artifact\n")
    assert m.unmount() == 0, m.log()

    assert sorted(os.listdir(udir)) == ["logs", "model", "result"]  # no temporary left over
    assert read(udir / "logs") == f"s3://{BUCKET}/{key_of(names, 'logs')}"
    assert read(udir / "model") == f"s3://{BUCKET}/{key_of(names, 'model.tgz')}"
    # The directory's URI is the prefix its files are under, as Argo keys the directory.
    logs_prefix = read(udir / "logs")[len(f"s3://{BUCKET}/"):] + "/"
    assert list_keys(s3, logs_prefix) == [logs_prefix + "2.log", logs_prefix + "a/1.log"]

    doc = json.loads(read(ujson))
    assert list(doc) == ["result", "logs", "model"]  # the spec's order
    for name in doc:
        assert doc[name]["uri"] == read(udir / name)
    key, head = object_of(s3, doc["result"]["uri"])
    assert doc["result"]["size"] == head["ContentLength"] == 8
    assert doc["result"]["etag"] == head["ETag"]
    key, head = object_of(s3, doc["model"]["uri"])
    assert doc["model"]["etag"] == head["ETag"] and doc["model"]["size"] is None
    assert doc["logs"]["size"] is None and doc["logs"]["etag"] is None
    assert "stray" not in read(ujson)
    assert get_bytes(s3, key_of(names, "stray.txt")) == b"not an artifact\n"  # it did go up


def test_a_rewritten_artifact_updates_the_json(mount, s3, names, tmp_path):
    """Uploaded twice (written again after its first upload): the JSON ends with the second
    object's ETag and size; the URI file is the same."""
    spec = write_spec(tmp_path, ARTIFACTS[:1])
    ujson = tmp_path / "uris.json"
    m = mount(spec=spec, args=["--uris-json", str(ujson)])
    write(m, "out/result.csv", b"v1\n")
    wait_object(s3, key_of(names, "result.csv"), b"v1\n")
    wait_for(lambda: ujson.exists() and '"size":3' in read(ujson), what="the first JSON")
    write(m, "out/result.csv", b"version 2\n")
    assert m.unmount() == 0, m.log()
    doc = json.loads(read(ujson))
    _, head = object_of(s3, doc["result"]["uri"])
    assert doc["result"]["size"] == 10 and doc["result"]["etag"] == head["ETag"]
    assert get_bytes(s3, key_of(names, "result.csv")) == b"version 2\n"


def test_run_writes_the_uris_for_the_next_step(s3env, s3, names, tmp_path):
    """artifuse run, options from the environment (ARTIFUSE_URIS_DIR, ARTIFUSE_URIS_JSON) as a
    pod sets them: when run returns, the seed's artifact URI is there for an output
    parameter (valueFrom.path), and it names the object the program wrote."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    udir, ujson = tmp_path / "uris", tmp_path / "uris.json"
    spec = write_spec(tmp_path, [("hello-artifact", "/tmp/hello.txt", "archive:\n  none: {}\n")])
    argv = [BIN, "run", "--spool", str(tmp_path / "spool"), "--spec", str(spec), "--as", "/tmp",
            "--artifact-repository",
            f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}",
            "--var", f"workflow.name={names['workflow']}", "--var", f"pod.name={names['pod']}",
            str(mnt), "--", "sh", "-c", f'echo "Hello from Argo!" > {mnt}/hello.txt']
    r = subprocess.run(argv, env=env_with(s3env, ARTIFUSE_URIS_DIR=str(udir),
                                          ARTIFUSE_URIS_JSON=str(ujson)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not any(s in r.stderr for s in SANITIZER_MARKS), r.stderr
    uri = read(udir / "hello-artifact")
    assert uri == f"s3://{BUCKET}/{names['prefix']}/hello.txt"
    key, head = object_of(s3, uri)
    assert get_bytes(s3, key) == b"Hello from Argo!\n"
    doc = json.loads(read(ujson))
    assert doc == {"hello-artifact": {"uri": uri, "size": 17, "etag": head["ETag"]}}


def test_uris_inside_the_mount_point_are_refused(s3env, names, tmp_path):
    """The daemon would write through its own mount: one line, exit 1, nothing mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opt, val in (("--uris-dir", mnt / "uris"), ("--uris-json", mnt / "u.json")):
        r = subprocess.run([BIN, "mount", "-f", "--spool", str(tmp_path / "spool"), "--no-check",
                            "--artifact-repository", f"s3://{BUCKET}/x", opt, str(val),
                            str(mnt)],
                           env=env_with(s3env), capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert opt in lines[0] and "inside the mount point" in lines[0], r.stderr


def test_unusable_uris_paths_are_one_line(s3env, names, tmp_path):
    """A --uris-dir that cannot be made (a file is in the way), a --uris-json that is a
    directory: one line naming the option, exit 1."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "adir").mkdir()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opt, val in (("--uris-dir", tmp_path / "file" / "uris"), ("--uris-json", tmp_path / "adir")):
        r = subprocess.run([BIN, "mount", "-f", "--spool", str(tmp_path / "spool"), "--no-check",
                            "--artifact-repository", f"s3://{BUCKET}/x", opt, str(val), str(mnt)],
                           env=env_with(s3env), capture_output=True, text=True, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and opt in lines[0], r.stderr


# ---- the recipe: deploy/argo-uris.yaml --------------------------------------------------------

def uris_workflow():
    from test_pods import doc, recipe
    return doc(recipe("argo-uris.yaml"), "Workflow")


def test_the_recipe_validates_against_argos_schema():
    from test_pods import workflow_validator
    wf = uris_workflow()
    errors = [f"{list(e.path)}: {e.message}" for e in workflow_validator().iter_errors(wf)]
    assert not errors, errors


def test_the_recipes_first_step_hands_the_uri_to_the_next(s3env, s3, names, tmp_path):
    """The recipe's produce step as Argo runs it (its resolved template in $ARGO_TEMPLATE, as Argo sets it, its
    environment, its command on a mount point of our own): the file its output parameter's
    valueFrom.path names holds the URI, and the consume step's read of that URI gets what the
    program wrote."""
    wf = uris_workflow()
    tpl = next(t for t in wf["spec"]["templates"] if t["name"] == "produce")
    ctr = tpl["container"]
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # Argo's resolved template: the repository with the key Argo built from keyFormat.
    resolved = {"name": tpl["name"], "inputs": {}, "metadata": {}, "container": ctr,
                "outputs": tpl["outputs"],
                "archiveLocation": {"archiveLogs": False, "s3": {
                    "endpoint": s3env["AWS_ENDPOINT_URL"].split("://", 1)[1], "insecure": True,
                    "bucket": BUCKET, "region": "us-east-1", "useSDKCreds": True,
                    "key": names["prefix"]}}}
    # The container's paths, moved under tmp_path: /tmp is the mount point, /var/run/artifuse
    # the URIs' directory.
    runs = str(tmp_path / "var-run-artifuse")
    env = {e["name"]: e["value"].replace("/var/run/artifuse", runs) for e in ctr["env"]}
    cmd = ctr["command"]
    assert cmd[:4] == ["artifuse", "run", "/tmp", "--"], cmd
    prog = [a.replace("/tmp", str(mnt)) for a in cmd[4:]]
    argv = [BIN, "run", "--spool", str(tmp_path / "spool"), "--as", "/tmp", "--no-leave-files",
            str(mnt), "--", *prog]
    r = subprocess.run(argv, env=env_with(s3env, ARGO_TEMPLATE=json.dumps(resolved),
                                          **env),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not any(s in r.stderr for s in SANITIZER_MARKS), r.stderr
    param = tpl["outputs"]["parameters"][0]["valueFrom"]["path"]
    uri = read(param.replace("/var/run/artifuse", runs))
    assert uri == f"s3://{BUCKET}/{names['prefix']}/hello.txt"
    key, _ = object_of(s3, uri)
    assert get_bytes(s3, key) == b"Hello from Argo!\n"
