# SPDX-License-Identifier: Apache-2.0
"""Local stand-ins for the services the AWS credential chain talks to, and a recording S3.

Each is a threaded http.server on 127.0.0.1 with a random port, speaking the real wire
format: STS AssumeRoleWithWebIdentity (form POST in, XML out), container credentials
(ECS / EKS Pod Identity: JSON, Authorization header checked), EC2 IMDSv2 (token PUT first;
a GET without a valid token gets 401, as on an IMDSv2-only instance). Every request is
recorded so tests can check what the daemon sent.

What they hand out comes from an Issuer: fixed keys (the local radosgw's, so a real upload
succeeds) or, with rotate=True, a new access key id and session token on each call, with an
Expiration a given number of seconds ahead, to test refreshing.

Nothing here listens anywhere but 127.0.0.1.
"""
import datetime
import hashlib
import http.server
import json
import re
import secrets
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape


def iso8601(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class Issuer:
    """The credentials a stand-in hands out, and a record of each set issued."""

    def __init__(self, access_key, secret_key, token="standin-session-token",
                 expires_in=3600, rotate=False):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token
        self.expires_in = expires_in
        self.rotate = rotate
        self.issued = []  # dicts: AccessKeyId, SecretAccessKey, Token, Expiration, at
        self._lock = threading.Lock()

    def issue(self):
        with self._lock:
            n = len(self.issued) + 1
            now = time.time()
            c = {
                "AccessKeyId": f"{self.access_key}{n:04d}" if self.rotate else self.access_key,
                "SecretAccessKey": self.secret_key,
                "Token": f"{self.token}-{n}" if self.rotate else self.token,
                "Expiration": iso8601(now + self.expires_in),
                "at": now,
            }
            self.issued.append(c)
            return c

    def secrets(self):
        """Every secret value handed out so far: none may appear in a log."""
        with self._lock:
            return [v for c in self.issued for v in (c["SecretAccessKey"], c["Token"])]


class Request:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body

    def form(self):
        """The urlencoded parameters of a POST body, or of the query string."""
        text = self.body.decode() if self.body else urllib.parse.urlsplit(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(text, keep_blank_values=True).items()}


class _Standin:
    """A threaded HTTP/1.1 server on 127.0.0.1:<random>; subclasses answer in handle()."""

    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path,
                              {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.requests.append(req)
                status, headers, payload = outer.handle(req)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def recorded(self):
        with self._lock:
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class StsStandin(_Standin):
    """STS AssumeRoleWithWebIdentity. error=(status, code, message) answers an ErrorResponse."""

    NS = "https://sts.amazonaws.com/doc/2011-06-15/"

    def __init__(self, issuer, error=None):
        self.issuer = issuer
        self.error = error
        super().__init__()

    def calls(self):
        """The parameters of each AssumeRoleWithWebIdentity call, in order."""
        return [r.form() for r in self.recorded()]

    def handle(self, req):
        form = req.form()
        xml = [("Content-Type", "text/xml")]
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
            return 400, xml, self._error("InvalidAction", "unknown action or version")
        if self.error:
            status, code, message = self.error
            return status, xml, self._error(code, message)
        c = self.issuer.issue()
        body = (
            f'<AssumeRoleWithWebIdentityResponse xmlns="{self.NS}">\n'
            "  <AssumeRoleWithWebIdentityResult>\n"
            "    <Audience>sts.amazonaws.com</Audience>\n"
            "    <SubjectFromWebIdentityToken>system:serviceaccount:argo:wf</SubjectFromWebIdentityToken>\n"
            "    <AssumedRoleUser>\n"
            f"      <Arn>{escape(form.get('RoleArn', ''))}/{escape(form.get('RoleSessionName', ''))}</Arn>\n"
            "      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>\n"
            "    </AssumedRoleUser>\n"
            "    <Credentials>\n"
            f"      <SessionToken>{escape(c['Token'])}</SessionToken>\n"
            f"      <SecretAccessKey>{escape(c['SecretAccessKey'])}</SecretAccessKey>\n"
            f"      <Expiration>{c['Expiration']}</Expiration>\n"
            f"      <AccessKeyId>{escape(c['AccessKeyId'])}</AccessKeyId>\n"
            "    </Credentials>\n"
            "    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>\n"
            "  </AssumeRoleWithWebIdentityResult>\n"
            "  <ResponseMetadata><RequestId>standin-request-id</RequestId></ResponseMetadata>\n"
            "</AssumeRoleWithWebIdentityResponse>\n")
        return 200, xml, body.encode()

    def _error(self, code, message):
        return (f'<ErrorResponse xmlns="{self.NS}"><Error><Type>Sender</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                "<RequestId>standin-request-id</RequestId></ErrorResponse>\n").encode()


class ContainerStandin(_Standin):
    """ECS / EKS Pod Identity credentials at `path`. With `token` set, a request whose
    Authorization header differs gets 401. `token` may be a callable (read at each request),
    for tests that rotate it. error=(status, json dict) answers that instead."""

    def __init__(self, issuer, token=None, path="/v1/credentials", error=None):
        self.issuer = issuer
        self.token = token
        self.path = path
        self.error = error
        super().__init__()

    @property
    def full_uri(self):
        return self.url + self.path

    def handle(self, req):
        js = [("Content-Type", "application/json")]
        if req.method != "GET" or req.path != self.path:
            return 404, js, b'{"code":"NotFound","message":"no such path"}'
        want = self.token() if callable(self.token) else self.token
        if want is not None and req.headers.get("authorization") != want:
            return 401, js, b'{"code":"AccessDenied","message":"authorization token mismatch"}'
        if self.error:
            status, doc = self.error
            return status, js, json.dumps(doc).encode()
        c = self.issuer.issue()
        doc = {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
               "Token": c["Token"], "Expiration": c["Expiration"],
               "RoleArn": "arn:aws:iam::123456789012:role/artifuse-pod"}
        return 200, js, json.dumps(doc, indent=2).encode()


class ImdsStandin(_Standin):
    """EC2 IMDSv2: PUT /latest/api/token (needs the TTL header) gives a token; every GET must
    carry a valid one (else 401). `code` other than "Success" answers a failed role fetch."""

    BASE = "/latest/meta-data/iam/security-credentials/"

    def __init__(self, issuer, role="artifuse-node-role", code="Success"):
        self.issuer = issuer
        self.role = role
        self.code = code
        self.tokens = set()
        super().__init__()

    def handle(self, req):
        text = [("Content-Type", "text/plain")]
        if req.method == "PUT" and req.path == "/latest/api/token":
            ttl = req.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, text, b"missing or bad x-aws-ec2-metadata-token-ttl-seconds"
            tok = "AQAEA" + secrets.token_urlsafe(40)
            with self._lock:
                self.tokens.add(tok)
            return 200, [("X-aws-ec2-metadata-token-ttl-seconds", ttl)] + text, tok.encode()
        if req.method != "GET":
            return 405, text, b""
        with self._lock:
            ok = req.headers.get("x-aws-ec2-metadata-token") in self.tokens
        if not ok:
            return 401, text, b""  # IMDSv2 required
        if req.path == self.BASE:
            return 200, text, (self.role + "\n").encode()
        if req.path == self.BASE + self.role:
            if self.code != "Success":
                doc = {"Code": self.code, "Message": "standin failure",
                       "LastUpdated": iso8601(time.time())}
                return 200, [("Content-Type", "application/json")], json.dumps(doc).encode()
            c = self.issuer.issue()
            doc = {"Code": "Success", "LastUpdated": iso8601(time.time()), "Type": "AWS-HMAC",
                   "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                   "Token": c["Token"], "Expiration": c["Expiration"]}
            return 200, [("Content-Type", "text/plain")], json.dumps(doc, indent=2).encode()
        return 404, text, b""

    def session_tokens(self):
        """The IMDSv2 session tokens handed out: secrets too."""
        with self._lock:
            return list(self.tokens)


class S3Recorder(_Standin):
    """A stand-in S3 that checks no signature: HEAD answers 200, PUT answers 200 with the
    body's MD5 as ETag. For checking what the daemon signed with (key id, session token)."""

    def handle(self, req):
        if req.method == "PUT":
            return 200, [("ETag", '"%s"' % hashlib.md5(req.body).hexdigest()),
                         ("x-amz-request-id", "recorder")], b""
        if req.method == "HEAD":
            return 200, [("x-amz-request-id", "recorder")], b""
        return 501, [("Content-Type", "application/xml")], (
            b"<Error><Code>NotImplemented</Code><Message>recorder</Message></Error>")

    def puts(self):
        return [r for r in self.recorded() if r.method == "PUT"]

    @staticmethod
    def key_id(req):
        """The access key id in the request's SigV4 Authorization header."""
        m = re.search(r"Credential=([^/]+)/", req.headers.get("authorization", ""))
        return m.group(1) if m else None
