# SPDX-License-Identifier: Apache-2.0
"""The AWS credential chain, end to end with the real daemon: one test per source, each
handing the daemon credentials through that source only (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY blanked), then an upload.

Two kinds of check:
- against the real radosgw: the stand-in hands out radosgw's own keys (with a session
  token, which this radosgw ignores), the upload must land, checked with boto3;
- against S3Recorder (a stand-in S3 that checks no signature): what the daemon signed with,
  the x-amz-security-token header and the Credential= key id, which is how refreshing
  (new keys on each fetch) is checked.

Network rule: every test sets AWS_EC2_METADATA_DISABLED=true or points
AWS_EC2_METADATA_SERVICE_ENDPOINT at a 127.0.0.1 stand-in, and STS and container
credentials at 127.0.0.1 stand-ins. Nothing here may reach 169.254.x.x or AWS.

Every mount runs with -v (debug logging) and ends by checking that no secret handed out
(secret key, session token, web identity token, authorization token, IMDS token) is in
the daemon's log.
"""
import os
import subprocess
import time

import pytest

from helpers import BIN, BUCKET, get_bytes, list_keys, wait_for, write, write_spec
from creds_standins import (ContainerStandin, ImdsStandin, Issuer, S3Recorder, StsStandin)

ROLE_ARN = "arn:aws:iam::123456789012:role/artifuse-irsa"
REPO = f"s3://{BUCKET}/argo-workflows/{{{{workflow.name}}}}/{{{{pod.name}}}}"

# Everything the chain reads, blanked (empty counts as unset), so a test sees only what it
# sets: in particular no AWS_ACCESS_KEY_ID from the harness and no real IMDS.
CHAIN_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ARTIFUSE_CREDS_REFRESH_WINDOW",
)


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    h.mkdir()
    return h


def chain_env(home, **kw):
    """A daemon environment with nothing for the chain but @kw; IMDS off unless given."""
    env = {k: "" for k in CHAIN_VARS}
    # STS defaults to AWS itself: a test that forgets its stand-in gets a refused port instead.
    env.update(HOME=str(home), AWS_EC2_METADATA_DISABLED="true",
               AWS_ENDPOINT_URL_STS="http://127.0.0.1:1",
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env[k] = ""
    env.update(kw)
    return env


def creds_spec(tmp_path):
    """A spec declaring /tmp/a.txt and /tmp/b.txt."""
    return write_spec(tmp_path, [("a", "/tmp/a.txt", ""), ("b", "/tmp/b.txt", "")])


def assert_no_secrets(log, values):
    for v in values:
        assert v and v not in log, f"a secret ({len(v)} bytes, starts {v[:3]!r}) is in the log"


def upload_to_radosgw(mount, s3, names, tmp_path, env, secrets, expect_source):
    """Mounts with @env, writes a.txt, unmounts, checks the object and the log."""
    m = mount(spec=creds_spec(tmp_path), env=env, args=("-v",))
    write(m, "a.txt", b"credentials chain\n")
    assert m.unmount() == 0, m.log()
    key = f"{names['prefix']}/a.txt"
    assert list_keys(s3, names["prefix"]) == [key], m.log()
    assert get_bytes(s3, key) == b"credentials chain\n"
    log = m.log()
    assert expect_source in log, log
    assert_no_secrets(log, secrets)
    return m


def run_mount(tmp_path, env, *extra):
    """`artifuse mount -f` expected to fail at start-up; returns the CompletedProcess."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    # Should start-up get past the credentials by mistake, S3 is a refused local port.
    e = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:1", **env)
    args = [BIN, "mount", "-f", "--spool", str(tmp_path / "spool"), "--as", "/tmp",
            "--spec", str(creds_spec(tmp_path)), "--artifact-repository", REPO,
            "--var", "workflow.name=wf", "--var", "pod.name=p", *extra, str(mnt)]
    return subprocess.run(args, env=e, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def one_error_line(r):
    lines = [l for l in r.stderr.splitlines() if l.strip() and "level=debug" not in l]
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("artifuse: error: "), lines[0]
    return lines[0]


# ---- 3. shared files ------------------------------------------------------------------------

def test_profile_in_shared_credentials_file(mount, s3, s3env, names, tmp_path, home):
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "# written by the test\n[default]\naws_access_key_id = WRONG\n"
        "aws_secret_access_key = WRONG\n\n"
        f"[ artifuse ]\n  aws_access_key_id = {s3env['AWS_ACCESS_KEY_ID']}  # inline comment\n"
        f"  aws_secret_access_key={s3env['AWS_SECRET_ACCESS_KEY']}\n")
    env = chain_env(home, AWS_PROFILE="artifuse")
    upload_to_radosgw(mount, s3, names, tmp_path, env, [s3env["AWS_SECRET_ACCESS_KEY"]],
                      f"profile artifuse ({home}/.aws/credentials)")


def test_profile_credential_process(mount, s3, s3env, names, tmp_path, home):
    helper = tmp_path / "helper.sh"
    helper.write_text("#!/bin/sh\nexec printf '%s' '" +
                      '{"Version": 1, "AccessKeyId": "%s", "SecretAccessKey": "%s", '
                      '"SessionToken": "process-session-token", "Expiration": "%s"}'
                      % (s3env["AWS_ACCESS_KEY_ID"], s3env["AWS_SECRET_ACCESS_KEY"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)))
                      + "'\n")
    helper.chmod(0o755)
    cfg = tmp_path / "aws-config"
    cfg.write_text(f"[default]\nregion = us-east-1\n[profile proc]\ncredential_process = {helper}\n")
    env = chain_env(home, AWS_PROFILE="proc", AWS_CONFIG_FILE=str(cfg))
    upload_to_radosgw(mount, s3, names, tmp_path, env,
                      [s3env["AWS_SECRET_ACCESS_KEY"], "process-session-token"],
                      "profile proc (credential_process)")


# ---- 4. web identity (IRSA) -----------------------------------------------------------------

def test_web_identity_end_to_end(mount, s3, s3env, names, tmp_path, home):
    issuer = Issuer(s3env["AWS_ACCESS_KEY_ID"], s3env["AWS_SECRET_ACCESS_KEY"],
                    token="irsa-session-token")
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YXJnbzp3ZiJ9.c2ln"
    (tmp_path / "token").write_text(jwt + "\n")
    with StsStandin(issuer) as sts:
        env = chain_env(home, AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
                        AWS_ROLE_ARN=ROLE_ARN, AWS_ROLE_SESSION_NAME="argo-wf-1",
                        AWS_ENDPOINT_URL_STS=sts.url)
        upload_to_radosgw(mount, s3, names, tmp_path, env,
                          [s3env["AWS_SECRET_ACCESS_KEY"], "irsa-session-token", jwt],
                          f"web-identity (role {ROLE_ARN})")
        calls = sts.calls()
        req = sts.recorded()[0]
    assert len(calls) == 1
    assert calls[0] == {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                        "RoleArn": ROLE_ARN, "RoleSessionName": "argo-wf-1",
                        "WebIdentityToken": jwt}
    assert req.method == "POST" and req.path == "/"
    assert "authorization" not in req.headers  # AssumeRoleWithWebIdentity is unsigned
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")


def test_web_identity_token_is_signed_into_s3_requests(mount, s3env, names, tmp_path, home):
    """At the signed-request level: the STS session token rides in x-amz-security-token and
    the Credential= key id is the one STS handed out. Also the default session name."""
    issuer = Issuer("ASIASTANDINIRSA", "irsa-secret-key-0123456789", token="irsa-token")
    (tmp_path / "token").write_text("jwt-token-value")
    with StsStandin(issuer) as sts, S3Recorder() as rec:
        env = chain_env(home, AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
                        AWS_ROLE_ARN=ROLE_ARN, AWS_ENDPOINT_URL_STS=sts.url)
        m = mount(spec=creds_spec(tmp_path), env=env, args=("-v", "--endpoint", rec.url))
        write(m, "a.txt", b"signed\n")
        wait_for(lambda: rec.puts(), what="the PUT")
        assert m.unmount() == 0, m.log()
        put = rec.puts()[0]
        assert put.headers.get("x-amz-security-token") == "irsa-token"
        assert S3Recorder.key_id(put) == "ASIASTANDINIRSA"
        assert "x-amz-security-token" in put.headers["authorization"]  # signed, not just sent
        assert put.body == b"signed\n"
        session = sts.calls()[0]["RoleSessionName"]
        assert session.startswith("artifuse-") and session[9:].isdigit(), session
        assert_no_secrets(m.log(), issuer.secrets() + ["jwt-token-value"])


def test_web_identity_sts_error_is_one_clear_line(tmp_path, home, s3env):
    (tmp_path / "token").write_text("expired-jwt-value")
    issuer = Issuer("ASIAX", "never-handed-out")
    with StsStandin(issuer, error=(400, "InvalidIdentityToken",
                                   "Token expired: current date/time 1 must be before 0")) as sts:
        r = run_mount(tmp_path, chain_env(home, AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
                                          AWS_ROLE_ARN=ROLE_ARN, AWS_ENDPOINT_URL_STS=sts.url))
    line = one_error_line(r)
    assert (f"web identity: STS AssumeRoleWithWebIdentity at {sts.url}: HTTP 400 "
            "InvalidIdentityToken: Token expired: current date/time 1 must be before 0") in line
    assert "expired-jwt-value" not in r.stderr


# ---- 5. container credentials -----------------------------------------------------------------

@pytest.mark.parametrize("how", ["token-file", "token-variable"])
def test_container_pod_identity(mount, s3, s3env, names, tmp_path, home, how):
    auth = "pod-identity-authorization-token-" + how
    issuer = Issuer(s3env["AWS_ACCESS_KEY_ID"], s3env["AWS_SECRET_ACCESS_KEY"],
                    token="container-session-token")
    with ContainerStandin(issuer, token=auth) as cs:
        env = chain_env(home, AWS_CONTAINER_CREDENTIALS_FULL_URI=cs.full_uri)
        if how == "token-file":
            (tmp_path / "eks-token").write_text(auth + "\n")
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(tmp_path / "eks-token")
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "the-file-wins-over-this"
        else:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = auth
        upload_to_radosgw(mount, s3, names, tmp_path, env,
                          [s3env["AWS_SECRET_ACCESS_KEY"], "container-session-token", auth],
                          f"container ({cs.full_uri})")
        reqs = cs.recorded()
    assert [r.headers.get("authorization") for r in reqs] == [auth]


def test_container_wrong_token_and_disallowed_host(tmp_path, home):
    issuer = Issuer("ASIAX", "never-handed-out")
    with ContainerStandin(issuer, token="right-token") as cs:
        r = run_mount(tmp_path, chain_env(home, AWS_CONTAINER_CREDENTIALS_FULL_URI=cs.full_uri,
                                          AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong-token"))
    line = one_error_line(r)
    assert (f"container: {cs.full_uri} answered HTTP 401: authorization token mismatch") in line
    assert "wrong-token" not in r.stderr
    # Plain http to a host that is not loopback or a container agent is refused unasked.
    r = run_mount(tmp_path, chain_env(home, AWS_CONTAINER_CREDENTIALS_FULL_URI="http://192.0.2.1/creds"))
    line = one_error_line(r)
    assert "plain http is allowed only to loopback" in line


@pytest.mark.parametrize("how", ["token-file", "token-variable"])
def test_container_token_with_line_break_is_refused(tmp_path, home, how):
    """A token that would end the Authorization header early (and smuggle a header of its own
    in) never goes out: one error line, nothing sent, the token not shown."""
    token = "pod-token\r\nX-Smuggled: 1"
    issuer = Issuer("ASIAX", "never-handed-out")
    with ContainerStandin(issuer, token=token) as cs:
        env = chain_env(home, AWS_CONTAINER_CREDENTIALS_FULL_URI=cs.full_uri)
        if how == "token-file":
            (tmp_path / "eks-token").write_text(token + "\n")
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(tmp_path / "eks-token")
        else:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        r = run_mount(tmp_path, env)
        reqs = cs.recorded()
    line = one_error_line(r)
    kind = "file" if how == "token-file" else "variable"
    assert f"the container authorization token ({kind}) contains a line break or NUL" in line
    assert "pod-token" not in r.stderr and "Smuggled" not in r.stderr
    assert reqs == []


# ---- 6. EC2 instance metadata (IMDSv2) ---------------------------------------------------------

def test_imds_v2_end_to_end(mount, s3, s3env, names, tmp_path, home):
    issuer = Issuer(s3env["AWS_ACCESS_KEY_ID"], s3env["AWS_SECRET_ACCESS_KEY"],
                    token="imds-session-token")
    with ImdsStandin(issuer) as imds:
        env = chain_env(home, AWS_EC2_METADATA_DISABLED="",
                        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url + "/")
        upload_to_radosgw(mount, s3, names, tmp_path, env,
                          [s3env["AWS_SECRET_ACCESS_KEY"], "imds-session-token"],
                          "imds (role artifuse-node-role)")
        reqs = imds.recorded()
        tokens = imds.session_tokens()
    assert [(r.method, r.path) for r in reqs] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/artifuse-node-role")]
    assert reqs[0].headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    assert all(r.headers.get("x-aws-ec2-metadata-token") in tokens for r in reqs[1:])


def test_imds_failure_code_and_v1_only_client(tmp_path, home):
    issuer = Issuer("ASIAX", "never-handed-out")
    with ImdsStandin(issuer, code="AssumeRoleUnauthorizedAccess") as imds:
        # The stand-in is IMDSv2-only, as the daemon expects: a bare GET is refused.
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*",
                            imds.url + ImdsStandin.BASE], capture_output=True, text=True)
        assert r.stdout == "401"
        r = run_mount(tmp_path, chain_env(home, AWS_EC2_METADATA_DISABLED="",
                                          AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url))
    line = one_error_line(r)
    assert (f"IMDS: IMDS at {imds.url}: role artifuse-node-role: Code "
            "AssumeRoleUnauthorizedAccess: standin failure") in line


# ---- refresh ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["web-identity", "container", "imds"])
def test_refresh_before_expiry_uses_new_keys(mount, s3env, names, tmp_path, home, source):
    """Credentials that expire in 308 s with the default 300 s window are fetched again
    8 s after they were issued; an upload after that signs with the new key id, and the
    rotated token file is re-read."""
    issuer = Issuer("ASIAROTATE", "rotating-secret-key", token="rotating-token",
                    expires_in=308, rotate=True)
    token_file = tmp_path / "token"
    token_file.write_text("token-one")
    if source == "web-identity":
        standin = StsStandin(issuer)
        env = chain_env(home, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file), AWS_ROLE_ARN=ROLE_ARN,
                        AWS_ENDPOINT_URL_STS=standin.url)
    elif source == "container":
        standin = ContainerStandin(issuer, token=lambda: token_file.read_text())
        env = chain_env(home, AWS_CONTAINER_CREDENTIALS_FULL_URI=standin.full_uri,
                        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file))
    else:
        standin = ImdsStandin(issuer)
        env = chain_env(home, AWS_EC2_METADATA_DISABLED="",
                        AWS_EC2_METADATA_SERVICE_ENDPOINT=standin.url)
    with standin, S3Recorder() as rec:
        m = mount(spec=creds_spec(tmp_path), env=env, args=("-v", "--endpoint", rec.url))
        write(m, "a.txt", b"first\n")
        wait_for(lambda: len(rec.puts()) == 1, what="the first PUT")
        first = rec.puts()[0]
        assert S3Recorder.key_id(first) == "ASIAROTATE0001"
        assert first.headers["x-amz-security-token"] == "rotating-token-1"
        token_file.write_text("token-two")  # the kubelet rotates projected tokens
        time.sleep(max(0.0, issuer.issued[0]["at"] + 9 - time.time()))
        write(m, "b.txt", b"second\n")
        wait_for(lambda: len(rec.puts()) == 2, what="the second PUT")
        second = rec.puts()[1]
        assert m.unmount() == 0, m.log()
        log = m.log()
    n = len(issuer.issued)
    assert 2 <= n <= 3, f"{n} fetches: refreshing too often or not at all\n{log}"
    assert S3Recorder.key_id(second) == issuer.issued[1]["AccessKeyId"] == "ASIAROTATE0002"
    assert second.headers["x-amz-security-token"] == "rotating-token-2"
    assert "credentials refreshed" in log
    if source == "web-identity":
        assert [c["WebIdentityToken"] for c in standin.calls()][:2] == ["token-one", "token-two"]
    if source == "container":
        assert [r.headers["authorization"] for r in standin.recorded()][:2] == ["token-one",
                                                                                "token-two"]
    assert_no_secrets(log, issuer.secrets() + ["token-one", "token-two"])


# ---- order ----------------------------------------------------------------------------------

@pytest.mark.parametrize("drop,winner", [
    (0, "environment"), (1, "web-identity"), (2, "container"), (3, "imds"),
    ("sts-fails", "container")])
def test_first_source_that_answers_wins(mount, names, tmp_path, home, drop, winner):
    """Every source configured at once, then the first ones removed: the first left wins,
    the ones after it are never asked. A source that fails passes to the next."""
    keys = {"environment": "AKIAORDERENV", "web-identity": "ASIAORDERSTS",
            "container": "ASIAORDERECS", "imds": "ASIAORDERIMDS"}
    sts_issuer = Issuer(keys["web-identity"], "order-secret-sts", token="order-token-sts")
    ecs_issuer = Issuer(keys["container"], "order-secret-ecs", token="order-token-ecs")
    imds_issuer = Issuer(keys["imds"], "order-secret-imds", token="order-token-imds")
    (tmp_path / "token").write_text("order-jwt")
    error = (403, "AccessDenied", "not authorized") if drop == "sts-fails" else None
    with StsStandin(sts_issuer, error=error) as sts, ContainerStandin(ecs_issuer) as ecs, \
            ImdsStandin(imds_issuer) as imds, S3Recorder() as rec:
        env = chain_env(home, AWS_ACCESS_KEY_ID=keys["environment"],
                        AWS_SECRET_ACCESS_KEY="order-secret-env",
                        AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
                        AWS_ROLE_ARN=ROLE_ARN, AWS_ENDPOINT_URL_STS=sts.url,
                        AWS_CONTAINER_CREDENTIALS_FULL_URI=ecs.full_uri,
                        AWS_EC2_METADATA_DISABLED="",
                        AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url)
        n = 1 if drop == "sts-fails" else drop
        for var in (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
                    ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"),
                    ("AWS_CONTAINER_CREDENTIALS_FULL_URI",))[:n]:
            for v in var:
                env[v] = ""
        m = mount(spec=creds_spec(tmp_path), env=env, args=("-v", "--endpoint", rec.url))
        write(m, "a.txt", b"order\n")
        wait_for(lambda: rec.puts(), what="the PUT")
        assert m.unmount() == 0, m.log()
        assert S3Recorder.key_id(rec.puts()[0]) == keys[winner]
        asked = {"web-identity": len(sts.recorded()), "container": len(ecs.recorded()),
                 "imds": len(imds.recorded())}
    order = ["environment", "web-identity", "container", "imds"]
    for later in order[order.index(winner) + 1:]:
        assert asked[later] == 0, (later, asked)
    assert asked.get(winner, 1) >= 1
    if drop == "sts-fails":
        assert asked["web-identity"] == 1
        assert "AccessDenied" in m.log()  # the debug log says why it moved on
    assert_no_secrets(m.log(), ["order-secret-env", "order-jwt"] + sts_issuer.secrets() +
                      ecs_issuer.secrets() + imds_issuer.secrets())


# ---- nothing configured -------------------------------------------------------------------------

def test_no_credentials_names_every_source(tmp_path, home):
    r = run_mount(tmp_path, chain_env(home))
    line = one_error_line(r)
    assert line == (
        "artifuse: error: no AWS credentials: environment: AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY not set; shared files: no profile 'default' in "
        f"{home}/.aws/credentials (missing) or {home}/.aws/config (missing); web identity: "
        "AWS_WEB_IDENTITY_TOKEN_FILE not set; container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI "
        "and AWS_CONTAINER_CREDENTIALS_FULL_URI not set; IMDS: disabled by "
        "AWS_EC2_METADATA_DISABLED"), line


def test_no_credentials_imds_refused(tmp_path, home):
    """IMDS enabled but nothing listening (a stand-in's port, closed again): the line says so,
    quickly."""
    with ImdsStandin(Issuer("A", "B")) as imds:
        url = imds.url
    t0 = time.monotonic()
    r = run_mount(tmp_path, chain_env(home, AWS_EC2_METADATA_DISABLED="",
                                      AWS_EC2_METADATA_SERVICE_ENDPOINT=url))
    line = one_error_line(r)
    assert line.endswith(f"IMDS: connection refused at {url}"), line
    assert time.monotonic() - t0 < 10


def test_half_a_key_pair_stops_the_chain(tmp_path, home):
    """A misconfiguration is reported even though a later source (a profile) would answer:
    falling through would silently use some other identity."""
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAFALLBACK\naws_secret_access_key = fallback\n")
    r = run_mount(tmp_path, chain_env(home, AWS_ACCESS_KEY_ID="AKIAONLYHALF"))
    line = one_error_line(r)
    assert line == ("artifuse: error: AWS credentials: environment: AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY must both be set (only AWS_ACCESS_KEY_ID is)"), line
    r = run_mount(tmp_path, chain_env(home, AWS_PROFILE="no-such-profile"))
    line = one_error_line(r)
    assert line.startswith("artifuse: error: AWS credentials: shared files: AWS_PROFILE: no "
                           "profile 'no-such-profile' in "), line
