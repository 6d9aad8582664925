# SPDX-License-Identifier: Apache-2.0
"""A fault-injecting TCP proxy for the integration suite (standard library only).

    proxy = FaultProxy("http://127.0.0.1:7480")   # the real S3 server (loopback only)
    proxy.endpoint                                  # "http://127.0.0.1:<random port>"
    proxy.refuse(); proxy.accept()                  # server down / back
    proxy.reset_after(3 << 20)                      # RST 3 MiB into the upload stream
    proxy.stall(8)                                  # hold every byte for 8 s
    proxy.slowdown_503(duration=10)                 # answer 503 SlowDown itself
    proxy.latency(50)                               # 50 ms before each request
    proxy.stats()                                   # counters
    proxy.close()                                   # sockets closed, threads joined

It sits between a client (artifuse) and the S3 server and forwards bytes unchanged, so a
SigV4 signature made for `host: 127.0.0.1:<proxy port>` still verifies: the server checks
it against the Host header it receives, which is the proxy's.

The client-to-server direction is parsed just enough to find request boundaries (request
line, headers, Content-Length); that is what lets the proxy answer a request itself (503),
count requests by method and reset a connection a given number of bytes into the upload.
The server-to-client direction is forwarded as raw bytes. HTTP/1.1 clients do not pipeline
(curl waits for a response before reusing a connection), so answering a request in place
of the server is safe. A request with a body of unknown length (chunked) switches its
connection to raw forwarding.

Every control method is thread-safe and takes effect for the next bytes or connections.
"""
import collections
import select
import socket
import struct
import threading
import time
import urllib.parse
import uuid

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MAX_HEADER = 64 * 1024
_CHUNK = 64 * 1024


class _Reset(Exception):
    """This connection was reset on purpose."""


class _Conn:
    """One client connection and, once a request is forwarded, its upstream connection."""

    def __init__(self, proxy, client, cid):
        self.proxy = proxy
        self.cid = cid
        self.client = client
        self.upstream = None
        self.pump = None
        self.buf = b""
        self.closed = False
        self.drop_response = False  # the answer to the request in flight is to be lost
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, name=f"faultproxy-conn-{cid}",
                                       daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def kill(self, rst=True):
        """Ends the connection: with rst, both sides see a TCP RST (SO_LINGER 0), not a FIN.
        Safe from any thread; the socket closes happen here, blocked readers wake up."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            socks = [s for s in (self.client, self.upstream) if s is not None]
        for s in socks:
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # SHUT_RD wakes a thread blocked in recv() and sends nothing on the wire.
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        # Let the other thread leave its recv() before the descriptors go away.
        me = threading.current_thread()
        for t in (self.thread, self.pump):
            if t is not None and t is not me and t.is_alive():
                t.join(timeout=2.0)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass

    # -- client -> upstream ---------------------------------------------------------------

    def _recv_client(self):
        self.proxy._gate()
        data = self.client.recv(_CHUNK)
        return data

    def _read_head(self):
        """The next request's head (through the blank line), or None at a clean EOF."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > _MAX_HEADER:
                raise ValueError("request head too long")
            data = self._recv_client()
            if not data:
                return None
            self.buf += data
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        return head

    def _ensure_upstream(self):
        if self.upstream is not None:
            return
        up = socket.create_connection(self.proxy._upstream, timeout=10)
        up.settimeout(None)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            if self.closed:
                up.close()
                raise _Reset()
            self.upstream = up
        self.pump = threading.Thread(target=self._pump, name=f"faultproxy-pump-{self.cid}",
                                     daemon=True)
        self.pump.start()

    def _send_up(self, data, rec, body=True):
        """Forwards @data upstream, unless a reset_after budget runs out inside it."""
        allowed, reset = self.proxy._spend(len(data), rec)
        if allowed:
            self.proxy._gate()
            self.upstream.sendall(data[:allowed])
            self.proxy._count_up(allowed, rec, allowed if body else 0)
        if reset:
            if rec is not None:
                rec["outcome"] = "reset"
            self.proxy._count("resets")
            self.kill(rst=True)
            raise _Reset()

    def _serve(self):
        try:
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw = False
            while True:
                if raw:
                    data = self.buf or self._recv_client()
                    self.buf = b""
                    if not data:
                        break
                    self._send_up(data, None)
                    continue
                head = self._read_head()
                if head is None:
                    break
                rec = self.proxy._parse(head)
                rec["conn"] = self.cid
                self.proxy._pre_request()
                if self.proxy._take_503():
                    if not self._answer_503(rec):
                        break
                    continue
                self._ensure_upstream()
                self.proxy._record(rec)
                # Decided before the request goes up: the answer may come back at once.
                self.drop_response = self.proxy._take_drop(rec)
                corrupt = self.proxy._take_corrupt(rec)
                self._send_up(head, rec, body=False)
                length = rec["content_length"]
                if length is None:
                    if rec["chunked"]:
                        raw = True  # unknown length: stop parsing this connection
                    continue
                left = length
                while left > 0:
                    if not self.buf:
                        data = self._recv_client()
                        if not data:
                            raise _Reset()
                        self.buf = data
                    piece, self.buf = self.buf[:left], self.buf[left:]
                    if corrupt and piece:
                        # One bit flipped in flight: what a bad NIC or middlebox does.
                        mid = len(piece) // 2
                        piece = piece[:mid] + bytes([piece[mid] ^ 0x01]) + piece[mid + 1:]
                        corrupt = False
                        rec["outcome"] = "corrupted"
                        self.proxy._count("corrupted")
                    self._send_up(piece, rec)
                    left -= len(piece)
        except (_Reset, OSError, ValueError):
            pass
        finally:
            self.kill(rst=False)
            self.proxy._forget(self)

    def _answer_503(self, rec):
        """Answers the request with 503 SlowDown; False when the connection must close."""
        expect = rec["expect_continue"]
        length = rec["content_length"]
        keep = not expect and length is not None and not rec["chunked"]
        if keep:
            left = length  # skip the body so the next request starts where it should
            while left > 0:
                if not self.buf:
                    data = self._recv_client()
                    if not data:
                        return False
                    self.buf = data
                n = min(left, len(self.buf))
                self.buf = self.buf[n:]
                left -= n
        rid = "faultproxy-" + uuid.uuid4().hex[:16]
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                "<Message>Please reduce your request rate.</Message>"
                f"<RequestId>{rid}</RequestId></Error>").encode()
        head = ("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nx-amz-request-id: {rid}\r\n"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        rec["outcome"] = "503"
        self.proxy._record(rec)
        self.proxy._count("slowdowns")
        self.proxy._gate()
        self.client.sendall(head + (b"" if rec["method"] == "HEAD" else body))
        return keep

    # -- upstream -> client ---------------------------------------------------------------

    def _pump(self):
        try:
            while True:
                data = self.upstream.recv(_CHUNK)
                if not data:
                    break
                if self.drop_response:
                    # An interim "100 Continue" still goes through; the real answer does not.
                    while data.startswith(b"HTTP/1.1 100") and b"\r\n\r\n" in data:
                        end = data.index(b"\r\n\r\n") + 4
                        self.proxy._gate()
                        self.client.sendall(data[:end])
                        data = data[end:]
                    if data:
                        self.proxy._count("dropped_responses")
                        for r in reversed(self.proxy._requests_of(self)):
                            r["outcome"] = "response dropped"
                            break
                        threading.Thread(target=self.kill, kwargs={"rst": True},
                                         daemon=True).start()
                        return
                    continue
                self.proxy._gate()
                self.client.sendall(data)
                self.proxy._count("bytes_down", len(data))
        except OSError:
            pass
        # The server closed (or we are closing): so does the client's side.
        threading.Thread(target=self.kill, kwargs={"rst": False}, daemon=True).start()


class FaultProxy:
    def __init__(self, upstream, host="127.0.0.1"):
        u = urllib.parse.urlsplit(upstream if "://" in upstream else "http://" + upstream)
        if u.scheme != "http" or u.hostname not in _LOOPBACK or not u.port:
            raise ValueError(f"faultproxy only forwards to http://127.0.0.1:PORT, not {upstream!r}")
        if host not in ("127.0.0.1",):
            raise ValueError("faultproxy listens on 127.0.0.1 only")
        self._upstream = ("127.0.0.1" if u.hostname == "localhost" else u.hostname, u.port)
        self._host = host
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._conns = set()
        self._next_cid = 0
        self._stopping = False
        # fault state, under _lock
        self._want_listen = True
        self._listening = False
        self._refuse_mode = None        # None, "close" or "reset"
        self._reset_n = 0               # reset_after: bytes per reset (0: off)
        self._reset_left = 0
        self._reset_times = 0
        self._reset_match = None
        self._drop_times = 0
        self._drop_match = None
        self._stall_until = 0.0
        self._latency_s = 0.0
        self._slow_count = None         # 503s still to send (None: no count limit)
        self._slow_until = None         # monotonic end of a 503 storm (None: no time limit)
        self._slow_on = False
        # counters
        self._c = collections.Counter()
        self._by_method = collections.Counter()
        self._requests = []
        self._listener = self._bind(0)
        self.port = self._listener.getsockname()[1]
        self._listening = True
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept",
                                          daemon=True)
        self._acceptor.start()

    # -- public ----------------------------------------------------------------------------

    @property
    def endpoint(self):
        return f"http://{self._host}:{self.port}"

    def refuse(self, mode="close", kill_existing=True):
        """New connections fail: "close" closes the listening socket (connect() gets
        ECONNREFUSED), "reset" accepts and resets at once. kill_existing resets open
        connections too (the server went away). Returns once in effect."""
        if mode not in ("close", "reset"):
            raise ValueError(mode)
        with self._cond:
            self._refuse_mode = mode
            self._want_listen = mode == "reset"
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._listening == self._want_listen
                                       or self._stopping, timeout=5):
                raise RuntimeError("faultproxy: the acceptor did not close the listener")
            conns = list(self._conns) if kill_existing else []
        for c in conns:
            c.kill(rst=True)

    def accept(self):
        """Back to normal connection handling (the same port). Returns once listening."""
        with self._cond:
            self._refuse_mode = None
            self._want_listen = True
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._listening or self._stopping, timeout=5):
                raise RuntimeError("faultproxy: could not listen again on port %d" % self.port)

    def reset_after(self, n_bytes, times=1, match=None):
        """Forward @n_bytes more of the client's requests (heads and bodies, over all
        connections), then reset the connection that carries the next byte (RST to both
        sides, mid-request). With times > 1, again every @n_bytes after that. @match limits
        it to some requests: (METHOD, substring of the request target), e.g.
        ("POST", "uploadId="), or a callable taking {method, target, ...}; only their bytes
        count. reset_after(0) disarms."""
        match = self._matcher(match)
        with self._lock:
            self._reset_n = int(n_bytes)
            self._reset_left = int(n_bytes)
            self._reset_times = int(times) if n_bytes > 0 else 0
            self._reset_match = match

    def drop_response(self, times=1, match=None):
        """The next @times requests (matching @match, as for reset_after) go to the server
        whole, but its answer is lost: the connection is reset (RST) when the answer starts
        (an interim 100 Continue still goes through). drop_response(0) disarms."""
        match = self._matcher(match)
        with self._lock:
            self._drop_times = int(times)
            self._drop_match = match

    def corrupt_body(self, times=1, match=None):
        """Flip one bit in the body of each of the next @times requests with a body
        (matching @match, as for reset_after). corrupt_body(0) disarms."""
        match = self._matcher(match)
        with self._lock:
            self._corrupt_times = int(times)
            self._corrupt_match = match

    def _take_corrupt(self, rec):
        with self._lock:
            if not getattr(self, "_corrupt_times", 0) or not rec.get("content_length"):
                return False
            if self._corrupt_match is not None and not self._corrupt_match(rec):
                return False
            self._corrupt_times -= 1
            return True

    @staticmethod
    def _matcher(match):
        if match is None or callable(match):
            return match
        method, sub = match
        return (lambda rec, m=method, t=sub: rec is not None and rec["method"] == m
                and t in rec["target"])

    def stall(self, seconds):
        """Hold every byte, both ways, for @seconds (0 ends a stall); connections stay open
        and new ones are accepted (by the kernel) but not served."""
        with self._lock:
            self._stall_until = time.monotonic() + seconds if seconds > 0 else 0.0

    def slowdown_503(self, count=None, duration=None):
        """Answer requests with 503 SlowDown instead of forwarding them: the next @count
        requests, or all for @duration seconds (both: whichever ends first; neither: until
        slowdown_503(0) or clear())."""
        with self._lock:
            if count == 0:
                self._slow_on = False
                return
            self._slow_on = True
            self._slow_count = count
            self._slow_until = time.monotonic() + duration if duration is not None else None

    def latency(self, ms):
        """Wait @ms before forwarding (or answering) each request."""
        with self._lock:
            self._latency_s = ms / 1000.0

    def clear(self):
        """Every fault off (listening again if refusing)."""
        with self._lock:
            self._reset_n = self._reset_left = self._reset_times = 0
            self._reset_match = None
            self._drop_times = 0
            self._drop_match = None
            self._stall_until = 0.0
            self._latency_s = 0.0
            self._slow_on = False
        self.accept()

    def stats(self):
        """A snapshot of the counters: bytes_up (client to server, heads and bodies),
        body_bytes_up, bytes_down, requests (forwarded or answered), connections,
        refused_connections, resets, slowdowns, dropped_responses, by_method {"PUT": n, ...},
        and requests_log: [{method, target, headers, content_length, body_sent, outcome,
        conn}] where
        outcome is "forwarded", "reset", "response dropped" or "503"."""
        with self._lock:
            s = dict(self._c)
            for k in ("bytes_up", "body_bytes_up", "bytes_down", "requests", "connections",
                      "refused_connections", "resets", "slowdowns", "dropped_responses",
                      "corrupted"):
                s.setdefault(k, 0)
            s["by_method"] = dict(self._by_method)
            s["requests_log"] = [dict(r) for r in self._requests]
            s["open_connections"] = len(self._conns)
            return s

    def close(self):
        """Stops: closes every socket and joins every thread. Returns the names of threads
        still alive (an empty list when the stop was clean)."""
        with self._cond:
            self._stopping = True
            self._stall_until = 0.0
            self._cond.notify_all()
            conns = list(self._conns)
        for c in conns:
            c.kill(rst=True)
        self._acceptor.join(timeout=5)
        left = []
        for c in conns:
            for t in (c.thread, c.pump):
                if t is not None:
                    t.join(timeout=5)
                    if t.is_alive():
                        left.append(t.name)
        if self._acceptor.is_alive():
            left.append(self._acceptor.name)
        return left

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _bind(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self._host, port))
        s.listen(128)
        return s

    def _accept_loop(self):
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        break
                    want = self._want_listen
                    mode = self._refuse_mode
                if want and self._listener is None:
                    try:
                        self._listener = self._bind(self.port)
                    except OSError:
                        time.sleep(0.05)  # e.g. still in use: try again
                        continue
                elif not want and self._listener is not None:
                    self._listener.close()  # pending connections in the backlog get a RST
                    self._listener = None
                with self._cond:
                    self._listening = self._listener is not None
                    self._cond.notify_all()
                    if self._listener is None:
                        self._cond.wait(timeout=0.05)
                        continue
                r, _, _ = select.select([self._listener], [], [], 0.05)
                if not r:
                    continue
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    continue
                if mode == "reset" or self._refusing():
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                    self._count("refused_connections")
                    continue
                with self._lock:
                    if self._stopping:
                        client.close()
                        break
                    self._next_cid += 1
                    c = _Conn(self, client, self._next_cid)
                    self._conns.add(c)
                    self._c["connections"] += 1
                c.thread.start()
        finally:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            with self._cond:
                self._listening = False
                self._cond.notify_all()

    def _refusing(self):
        with self._lock:
            return self._refuse_mode is not None

    def _forget(self, conn):
        with self._lock:
            self._conns.discard(conn)

    def _gate(self):
        """Blocks while a stall is on (or until the proxy stops)."""
        while True:
            with self._lock:
                if self._stopping:
                    return
                left = self._stall_until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def _pre_request(self):
        with self._lock:
            d = self._latency_s
        if d > 0:
            time.sleep(d)

    def _take_503(self):
        with self._lock:
            if not self._slow_on:
                return False
            if self._slow_until is not None and time.monotonic() >= self._slow_until:
                self._slow_on = False
                return False
            if self._slow_count is not None:
                if self._slow_count <= 0:
                    self._slow_on = False
                    return False
                self._slow_count -= 1
            return True

    def _take_drop(self, rec):
        with self._lock:
            if not self._drop_times or (self._drop_match is not None
                                        and not self._drop_match(rec)):
                return False
            self._drop_times -= 1
            return True

    def _requests_of(self, conn):
        with self._lock:
            return [r for r in self._requests if r.get("conn") == conn.cid]

    def _spend(self, n, rec):
        """How many of @n bytes may go up, and whether the connection resets after them."""
        with self._lock:
            if not self._reset_times:
                return n, False
            if self._reset_match is not None and not self._reset_match(rec):
                return n, False
            if n < self._reset_left:
                self._reset_left -= n
                return n, False
            allowed = self._reset_left
            self._reset_times -= 1
            self._reset_left = self._reset_n if self._reset_times else 0
            return allowed, True

    def _count(self, key, n=1):
        with self._lock:
            self._c[key] += n

    def _count_up(self, n, rec, body_n):
        with self._lock:
            self._c["bytes_up"] += n
            if body_n:
                self._c["body_bytes_up"] += body_n
            if rec is not None:
                rec["body_sent"] = rec.get("body_sent", 0) + body_n

    def _record(self, rec):
        with self._lock:
            self._c["requests"] += 1
            self._by_method[rec["method"]] += 1
            self._requests.append(rec)

    @staticmethod
    def _parse(head):
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x request: %r" % lines[0][:100])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        length = hdrs.get("content-length")
        te = hdrs.get("transfer-encoding", "").lower()
        return {"method": parts[0], "target": parts[1],
                "content_length": int(length) if length is not None and not te else
                (None if te else 0),
                "chunked": bool(te),
                "expect_continue": hdrs.get("expect", "").lower() == "100-continue",
                # the request's headers (lower-case names), without the signature
                "headers": {k: v for k, v in hdrs.items() if k != "authorization"},
                "outcome": "forwarded", "body_sent": 0}
