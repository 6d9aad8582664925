# SPDX-License-Identifier: Apache-2.0
"""The recipes in deploy/, run for real: the image built by scripts/image, started by podman
as a Kubernetes Pod (`podman kube play`) with /dev/fuse, against the local S3 server.

What is substituted into a recipe, and nothing else: the bucket, the endpoint and credentials
of the local server, a pod name of the test's own, and `hostNetwork: true` (the server listens
on this machine's 127.0.0.1 only). Podman 4.3 reads a secretKeyRef from a podman secret
holding a JSON map of base64 values, not from a Secret document in the played file, so the
recipe's Secret is created that way.

The image holds its own release build: these tests run in the release pass only.
"""
import base64
import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest
import yaml

from helpers import BUCKET, ROOT, get_bytes

PODMAN = os.path.join(ROOT, "scripts", "podman")
SCHEMA = os.path.join(os.path.dirname(ROOT), "shared", "argo", "schema.json")
HELLO = b"Hello from Argo!\n"


def podman(*args, check=True, timeout=300):
    r = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({r.returncode}):\n"
                             f"{r.stdout}\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def image(s3env):
    if os.environ.get("ARTIFUSE_SANITIZED") == "1":
        pytest.skip("the image holds its own release build: pod tests run in the release pass")
    tag = os.environ.get("ARTIFUSE_IMAGE")
    if not tag:
        r = subprocess.run([os.path.join(ROOT, "scripts", "image")], capture_output=True,
                           text=True, timeout=1800)
        assert r.returncode == 0, f"scripts/image failed:\n{r.stderr}"
        tag = r.stdout.strip().splitlines()[-1]
    return tag


def recipe(name):
    with open(os.path.join(ROOT, "deploy", name)) as f:
        return list(yaml.safe_load_all(f))


def doc(docs, kind):
    return next(d for d in docs if d["kind"] == kind)


class Pod:
    """A pod played by `podman kube play`, removed (with its secrets) in stop()."""

    def __init__(self, tmp_path, pod, secrets=()):
        self.name = pod["metadata"]["name"]
        self.secrets = []
        for sec in secrets:
            data = {k: base64.b64encode(v.encode()).decode()
                    for k, v in sec["stringData"].items()}
            path = tmp_path / f"secret-{sec['metadata']['name']}.json"
            path.write_text(json.dumps(data))
            podman("secret", "rm", sec["metadata"]["name"], check=False)
            podman("secret", "create", sec["metadata"]["name"], str(path))
            self.secrets.append(sec["metadata"]["name"])
        # kube play builds an image from a directory named like the image in its working
        # directory, if there is one: play from the test's own empty directory.
        # As JSON (which is YAML): podman's YAML reader stumbles on the multi-line quoted
        # strings PyYAML writes for a script.
        self.file = tmp_path / "pod.yaml"
        self.file.write_text(json.dumps(pod))
        r = subprocess.run([PODMAN, "kube", "play", str(self.file)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            self.stop()
            raise AssertionError(f"podman kube play failed:\n{r.stdout}\n{r.stderr}")

    def wait(self, container="main", timeout=180):
        ctr = f"{self.name}-{container}"
        r = podman("wait", ctr, timeout=timeout)
        code = int(r.stdout.strip().splitlines()[-1])
        logs = podman("logs", ctr, check=False)
        return code, logs.stdout + logs.stderr

    def stop(self):
        podman("pod", "rm", "-f", "-t", "2", self.name, check=False)
        for s in self.secrets:
            podman("secret", "rm", s, check=False)


def with_local_server(ctr, s3env):
    """The main container's environment pointed at the local server, as a user would."""
    env = [e for e in ctr.get("env", []) if e["name"] != "ARTIFUSE_ENDPOINT"]
    env.append({"name": "ARTIFUSE_ENDPOINT", "value": s3env["AWS_ENDPOINT_URL"]})
    ctr["env"] = env


def test_pod_recipe_uploads_the_seed_file(image, s3env, s3, tmp_path):
    """deploy/pod.yaml under podman kube play: artifuse run wraps the program in the pod,
    and the object lands at outputs/<pod name>/hello.txt with the program's bytes."""
    docs = recipe("pod.yaml")
    secret, pod = doc(docs, "Secret"), doc(docs, "Pod")
    secret["stringData"] = {"AWS_ACCESS_KEY_ID": s3env["AWS_ACCESS_KEY_ID"],
                            "AWS_SECRET_ACCESS_KEY": s3env["AWS_SECRET_ACCESS_KEY"]}
    name = "artifuse-hello-" + uuid.uuid4().hex[:8]
    pod["metadata"]["name"] = name
    pod["spec"]["hostNetwork"] = True
    ctr = pod["spec"]["containers"][0]
    ctr["image"] = image
    with_local_server(ctr, s3env)
    for e in ctr["env"]:
        if e["name"] == "ARTIFUSE_ARTIFACT_REPOSITORY":
            assert "REPLACE_BUCKET" in e["value"]
            e["value"] = e["value"].replace("REPLACE_BUCKET", BUCKET)
    p = Pod(tmp_path, pod, secrets=[secret])
    try:
        code, logs = p.wait()
    finally:
        p.stop()
    assert code == 0, logs
    assert "1 files (17 bytes) uploaded" in logs, logs
    assert get_bytes(s3, f"outputs/{name}/hello.txt") == HELLO


def workflow_validator():
    """A validator of Workflows by Argo's JSON schema; skips the test where it is missing."""
    jsonschema = pytest.importorskip("jsonschema", reason="python3-jsonschema (scripts/deps)")
    if not os.path.exists(SCHEMA):
        pytest.skip(f"Argo's schema is not at {SCHEMA} (../shared beside the clone)")
    with open(SCHEMA) as f:
        schema = json.load(f)
    wf_schema = dict(schema, **{"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.Workflow"})
    wf_schema.pop("oneOf", None)
    wf_schema.pop("type", None)
    return jsonschema.Draft202012Validator(wf_schema)


def wrapper_workflow():
    return doc(recipe("argo-wrapper.yaml"), "Workflow")


def test_argo_wrapper_validates_against_argos_schema():
    validator = workflow_validator()
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(wrapper_workflow())]
    assert not errors, errors
    # The check can fail (Argo's schema allows unknown fields, but not wrong types).
    bad = wrapper_workflow()
    bad["spec"]["templates"][0]["outputs"]["artifacts"] = {"name": "hello-artifact"}
    assert list(validator.iter_errors(bad)), "the schema accepted artifacts that are no list"


def test_argo_wrapper_keys_are_argos(tmp_path):
    """`artifuse keys` on the recipe prints the key Argo's wait container uses: the
    repository of the ConfigMap the workflow names, Argo's default archive (tar)."""
    from helpers import BIN
    path = os.path.join(ROOT, "deploy", "argo-wrapper.yaml")
    r = subprocess.run([BIN, "keys", "--spec", path, "--repository-config", path,
                        "--archive-default", "tgz",
                        "--var", "workflow.name=s3-artifact-example-x7k2p",
                        "--var", "pod.name=s3-artifact-example-x7k2p-main-123"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\t")[:3] == [
        "hello-artifact", "/tmp/hello.txt",
        "s3://my-argo-artifacts-bucket/argo-workflows/s3-artifact-example-x7k2p/"
        "s3-artifact-example-x7k2p-main-123/hello-artifact.tgz"], r.stdout


# The emissary's part after the wrapped command exits (cmd/argoexec/commands/emissary.go):
# for each output artifact's path, stat it and tar.gz it into
# /var/run/argo/outputs/artifacts/<path>.tgz (a missing path is skipped), then write the
# exit code. The wait container later fails the step for each artifact it cannot find.
EMISSARY = ('"$@"; rc=$?; '
            'for p in $ARGO_OUTPUT_PATHS; do '
            'if stat "$p" >/dev/null; then '
            'mkdir -p "/var/run/argo/outputs/artifacts$(dirname "$p")" && '
            'tar czf "/var/run/argo/outputs/artifacts$p.tgz" -C "$(dirname "$p")" '
            '"$(basename "$p")" || rc=90; '
            'else echo "emissary: $p is missing" >&2; rc=91; fi; '
            'done; echo $rc > /var/run/argo/exitcode; exit $rc')
# One line: podman 4.3 re-marshals the pod through go-yaml, which cannot read back the
# block scalar it writes for a multi-line script.


def test_argo_wrapper_in_a_pod_playing_argos_part(image, s3env, s3, tmp_path, names):
    """The recipe's main container, as Argo runs it: the resolved template at
    /var/run/argo/template (with the repository Argo resolved), the command wrapped by a
    stand-in of the emissary that stats and tars each output path after the command exits.
    artifuse uploads Argo's key (<key>/hello-artifact.tgz, a tar.gz of hello.txt) and leaves
    /tmp/hello.txt in place, so the emissary's tar holds the same bytes."""
    wf = wrapper_workflow()
    tpl = wf["spec"]["templates"][0]
    prefix = names["prefix"]
    argo_dir = tmp_path / "var-run-argo"
    (argo_dir / "outputs" / "artifacts").mkdir(parents=True)
    resolved = {
        "name": tpl["name"], "inputs": {}, "metadata": {},
        "container": tpl["container"], "outputs": tpl["outputs"],
        "archiveLocation": {"archiveLogs": False, "s3": {
            "endpoint": s3env["AWS_ENDPOINT_URL"].split("://", 1)[1], "insecure": True,
            "bucket": BUCKET, "region": "us-east-1", "useSDKCreds": True, "key": prefix}},
    }
    (argo_dir / "template").write_text(json.dumps(resolved))
    ctr = dict(tpl["container"])
    ctr["name"] = "main"
    ctr["image"] = image
    ctr["command"] = ["sh", "-c", EMISSARY, "emissary", *tpl["container"]["command"]]
    ctr["env"] = [
        {"name": "ARGO_OUTPUT_PATHS",
         "value": " ".join(a["path"] for a in tpl["outputs"]["artifacts"])},
        {"name": "AWS_ACCESS_KEY_ID", "value": s3env["AWS_ACCESS_KEY_ID"]},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": s3env["AWS_SECRET_ACCESS_KEY"]},
    ]
    ctr["volumeMounts"] = [{"name": "var-run-argo", "mountPath": "/var/run/argo"}]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "argo-main-" + uuid.uuid4().hex[:8]},
           "spec": {"restartPolicy": "Never", "hostNetwork": True, "containers": [ctr],
                    "volumes": [{"name": "var-run-argo",
                                 "hostPath": {"path": str(argo_dir), "type": "Directory"}}]}}
    p = Pod(tmp_path, pod)
    try:
        code, logs = p.wait()
    finally:
        p.stop()
    assert code == 0, logs
    # What the emissary archived holds what the program wrote.
    with tarfile.open(argo_dir / "outputs" / "artifacts" / "tmp" / "hello.txt.tgz") as t:
        assert t.getnames() == ["hello.txt"]
        assert t.extractfile("hello.txt").read() == HELLO
    # What artifuse uploaded is what Argo's wait container would upload at that key.
    body = get_bytes(s3, f"{prefix}/hello-artifact.tgz")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as t:
        assert t.getnames() == ["hello.txt"]
        assert t.extractfile("hello.txt").read() == HELLO
