# SPDX-License-Identifier: Apache-2.0
"""deploy/argo-sidecar.yaml, run for real: the pod Argo builds from the recipe's template (main
container + the artifuse sidecar), played by `podman kube play` with /dev/fuse, against the
local S3 server.

What stands in for the cluster, and nothing else:
- the `outputs` emptyDir is a host directory the test makes a shared mount (`mount --bind D D;
  mount --make-shared D`), as kubelet makes its root directory /var/lib/kubelet, where emptyDirs
  live. Podman keeps an emptyDir under /var/lib/containers/storage/volumes, on this host's
  private root mount: there the sidecar's rshared mount has no peer outside its own namespace
  and main never sees it (deploy/SIDECAR.md has the mountinfo lines). The spool's emptyDir is a
  host directory of the test's too (no propagation involved);
- Argo's part: {{workflow.name}} and {{pod.name}} substituted in the sidecar's arguments, the
  resolved template at /var/run/argo/template, the pod's terminationGracePeriodSeconds from the
  recipe's podSpecPatch, and the controller's signals once main has exited (SIGTERM, SIGKILL
  after the grace period: `podman stop -t GRACE`). The emissary wrappers are left out (the
  sidecar's only forwards the signal);
- as in test_pods.py: the bucket, the endpoint and credentials of the local server (the
  recipe's Secret as a podman secret, under a name of the test's own), the artifuse image
  (for main too when the machine's Debian image has no PATH, see argo_pod), and
  `hostNetwork: true`.

Needs root (the shared mount). The image holds its own release build: release pass only.
"""
import copy
import json
import os
import re
import subprocess
import uuid

import pytest

from helpers import BUCKET, get_bytes, is_mounted, list_keys
from test_pods import (HELLO, Pod, doc, image, podman, recipe,  # noqa: F401 (fixture)
                       with_local_server, workflow_validator)


def sidecar_docs():
    docs = recipe("argo-sidecar.yaml")
    return doc(docs, "Secret"), doc(docs, "Workflow")


def mounts_under(path):
    """Mount points at or below path in this namespace, deepest first."""
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


class SharedDir:
    """A host directory that is a mount of its own with shared propagation: kubelet's
    /var/lib/kubelet in miniature."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self.mounted = False
        for args in (["mount", "--bind", self.path, self.path],
                     ["mount", "--make-shared", self.path]):
            r = subprocess.run(args, capture_output=True, text=True)
            if r.returncode != 0:
                self.close()
                pytest.skip(f"cannot make a shared mount here ({' '.join(args[:2])}: "
                            f"{r.stderr.strip()})")
            self.mounted = True

    def close(self):
        # A FUSE mount a killed sidecar left behind, then the bind mount itself.
        for mp in mounts_under(self.path):
            subprocess.run(["umount", "-l", mp], capture_output=True)


def argo_pod(wf, secret_name, name, wf_name, artifuse_image, s3env, outputs_dir, spool_dir,
             argo_dir):
    """The pod Argo's controller makes from the recipe's template (legacy layout, minus the
    init and wait containers and the emissary wrappers)."""
    tpl = wf["spec"]["templates"][0]
    main = copy.deepcopy(tpl["container"])
    main["name"] = "main"
    # The recipe's Debian image if this machine has it as the registry serves it; the base
    # scripts/image makes without a registry has no image config (no PATH): then the artifuse
    # image, Debian as well (main uses only sh and grep).
    env = podman("image", "inspect", "--format", "{{json .Config.Env}}", main["image"],
                 check=False)
    if env.returncode != 0 or "PATH=" not in env.stdout:
        main["image"] = artifuse_image
    side = copy.deepcopy(tpl["sidecars"][0])
    side["image"] = artifuse_image

    def subst(s):
        assert "{{" not in s or "{{workflow.name}}" in s or "{{pod.name}}" in s, s
        return (s.replace("{{workflow.name}}", wf_name).replace("{{pod.name}}", name)
                .replace("REPLACE_BUCKET", BUCKET))

    side["command"] = [subst(a) for a in side["command"]]
    with_local_server(side, s3env)
    for e in side["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            ref["name"] = secret_name
    for c in (main, side):
        c["volumeMounts"] = c.get("volumeMounts", []) + [
            {"name": "var-run-argo", "mountPath": "/var/run/argo"}]
    host = {"outputs": outputs_dir, "artifuse-spool": spool_dir}
    volumes = []
    for v in wf["spec"]["volumes"]:
        assert "emptyDir" in v, v
        volumes.append({"name": v["name"],
                        "hostPath": {"path": str(host[v["name"]]), "type": "Directory"}})
    volumes.append({"name": "var-run-argo",
                    "hostPath": {"path": str(argo_dir), "type": "Directory"}})
    patch = json.loads(wf["spec"]["podSpecPatch"])
    spec = {"restartPolicy": "Never", "hostNetwork": True,
            "terminationGracePeriodSeconds": patch["terminationGracePeriodSeconds"],
            "containers": [main, side], "volumes": volumes}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_argo_sidecar_validates_against_argos_schema():
    validator = workflow_validator()
    _, wf = sidecar_docs()
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(wf)]
    assert not errors, errors
    # The check can fail: a volumeMount's propagation must be a string.
    wf["spec"]["templates"][0]["sidecars"][0]["volumeMounts"][0]["mountPropagation"] = 1
    assert list(validator.iter_errors(wf)), "the schema accepted a numeric mountPropagation"


def test_argo_sidecar_mount_is_seen_by_main_and_uploads(image, s3env, s3, tmp_path):
    """The sidecar mounts artifuse on the shared volume (Bidirectional), main waits for the
    mount, sees it (HostToContainer) and writes hello.txt through it. With --sync-close the
    object is in S3 when main exits, before the sidecar is signalled; the SIGTERM then
    unmounts (on the node too) and artifuse exits 0 with nothing left to upload; the plain
    directory under the mount never got the file."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test makes a host directory a shared mount")
    secret, wf = sidecar_docs()
    secret["stringData"] = {"AWS_ACCESS_KEY_ID": s3env["AWS_ACCESS_KEY_ID"],
                            "AWS_SECRET_ACCESS_KEY": s3env["AWS_SECRET_ACCESS_KEY"]}
    # A name of the test's own: test_pods.py plays a Secret of the recipe's name too.
    secret["metadata"]["name"] += "-" + uuid.uuid4().hex[:8]
    wf_name = "artifuse-sidecar-" + uuid.uuid4().hex[:5]
    name = wf_name + "-main-" + uuid.uuid4().hex[:8]
    key = f"argo-workflows/{wf_name}/{name}/hello.txt"
    tpl = wf["spec"]["templates"][0]

    argo_dir = tmp_path / "var-run-argo"
    argo_dir.mkdir()
    # What Argo's init container writes: the template, resolved. No output artifacts, so no
    # archiveLocation either.
    resolved = {"name": tpl["name"], "inputs": {}, "outputs": {}, "metadata": {},
                "container": tpl["container"], "sidecars": tpl["sidecars"]}
    (argo_dir / "template").write_text(json.dumps(resolved))
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    shared = SharedDir(tmp_path / "outputs")
    p = None
    try:
        pod = argo_pod(wf, secret["metadata"]["name"], name, wf_name, image, s3env,
                       shared.path, spool_dir, argo_dir)
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        p = Pod(tmp_path, pod, secrets=[secret])
        code, main_logs = p.wait("main")
        side_logs = podman("logs", f"{name}-artifuse", check=False)
        side_logs = side_logs.stdout + side_logs.stderr
        assert code == 0, main_logs + side_logs
        # The sidecar's mount reached the node's directory (Bidirectional), the path by which
        # main saw it; and the object is in S3 already: close() waited for it.
        assert is_mounted(shared.path), side_logs
        assert get_bytes(s3, key) == HELLO, side_logs
        # Argo's controller: SIGTERM once main has exited, SIGKILL after the grace period.
        podman("stop", "-t", str(grace), f"{name}-artifuse", timeout=grace + 60)
        st = podman("inspect", "--format", "{{.State.ExitCode}}", f"{name}-artifuse")
        side_logs = podman("logs", f"{name}-artifuse", check=False)
        side_logs = side_logs.stdout + side_logs.stderr
        assert st.stdout.strip() == "0", side_logs
        # Nothing failed, nothing left. (sh's `>` opens hello.txt, dup2()s it onto stdout and
        # closes the first descriptor: with --sync-close that close uploads the empty file,
        # and the last close the 17 bytes, so two uploads.)
        assert re.search(r"op=exit uploaded_files=\d+ uploaded_bytes=17 failed_files=0 "
                         r"pending_files=0", side_logs), side_logs
        # artifuse's unmount propagated back: nothing is left mounted on the node (kubelet can
        # remove the emptyDir), and the write never went to the plain directory.
        assert not is_mounted(shared.path), mounts_under(shared.path)
        assert os.listdir(shared.path) == []
        assert list_keys(s3, f"argo-workflows/{wf_name}/") == [key]
    finally:
        if p:
            p.stop()
        shared.close()
    assert mounts_under(shared.path) == []
