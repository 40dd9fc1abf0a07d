"""The built-in HTTP server of ``gitsync-notes serve``: a WSGI server that survives slow and hostile clients.

wsgiref hands the application a socket: a client trickling its body one byte a minute holds the
thread (and anything the application holds) for as long as it likes, and a body without an end is
waited for forever.  This server reads and buffers the whole request -- line, headers and body, bounded
by the body limit -- before the application sees it, under a deadline for the whole request and an
idle timeout between bytes; it caps connections in all and per client address, and answers what it
refuses with a 4xx/503 at once.  Connections are kept alive between the messages of a session.

TLS: pass an :class:`ssl.SSLContext`; each connection is wrapped in its own thread, its handshake
under the same deadlines, and the application sees ``wsgi.url_scheme`` ``https``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from wsgiref.simple_server import WSGIServer

__all__ = ["HttpServer", "ServerLimits", "make_http_server", "serve_forever"]

logger = logging.getLogger(__name__)

WsgiApp = Callable[..., Iterable[bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """What one client may take of the server (``serve --help`` shows these as options)."""

    max_connections: int = 64  # connections open at once, in all
    max_connections_per_address: int = 16  # ... from one client address (a NAT or proxy is one)
    max_body: int = 16 * 1024 * 1024  # request body bytes (a larger one gets 413 unread)
    request_timeout: float = 60.0  # seconds for a whole request to arrive, and for its answer to leave
    idle_timeout: float = 15.0  # seconds without a byte (and between two requests of a connection)
    max_header_bytes: int = 32 * 1024  # request line and headers
    max_headers: int = 100


class _Refused(Exception):
    """A request answered with an HTTP error, after which the connection closes."""

    def __init__(self, status: int, reason: str, *, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers


class _Gone(Exception):
    """The client closed, or stayed silent: nothing to answer."""


_REASONS = {
    100: "Continue", 400: "Bad Request", 408: "Request Timeout", 411: "Length Required",
    413: "Payload Too Large", 431: "Request Header Fields Too Large", 501: "Not Implemented",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


class _Conn:
    """A client socket read under a deadline: every read waits at most the idle timeout, and never
    past the deadline of the request it belongs to."""

    def __init__(self, sock: socket.socket, limits: ServerLimits) -> None:
        self.sock = sock
        self.limits = limits
        self.buf = bytearray()
        self.deadline = 0.0

    def _wait(self, idle: float) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Refused(408, "request took too long")
        return min(idle, left)

    def _recv(self, idle: float) -> bytes:
        self.sock.settimeout(self._wait(idle))
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise _Refused(408, "client too slow") from None
        except (ConnectionError, ssl.SSLError, OSError):
            raise _Gone from None
        if not chunk:
            raise _Gone
        return chunk

    def head(self) -> bytes:
        """The request line and headers (a kept-alive connection may wait ``idle_timeout`` for them)."""
        first = True
        self.deadline = time.monotonic() + self.limits.request_timeout
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head
            if len(self.buf) > self.limits.max_header_bytes:
                raise _Refused(431, "request headers too large")
            try:
                chunk = self._recv(self.limits.idle_timeout)
            except _Refused:
                if first and not self.buf:
                    raise _Gone from None  # an idle kept-alive connection: just close it
                raise
            if first:
                first = False
                self.deadline = time.monotonic() + self.limits.request_timeout
            self.buf += chunk

    def exactly(self, size: int) -> bytes:
        """``size`` body bytes."""
        out = bytearray(size)
        view = memoryview(out)
        have = min(size, len(self.buf))
        view[:have] = self.buf[:have]
        del self.buf[:have]
        while have < size:
            self.sock.settimeout(self._wait(self.limits.idle_timeout))
            try:
                n = self.sock.recv_into(view[have:], min(size - have, 1 << 20))
            except TimeoutError:
                raise _Refused(408, "client too slow") from None
            except (ConnectionError, ssl.SSLError, OSError):
                raise _Gone from None
            if not n:
                raise _Refused(400, "truncated body")  # the client closed its side early
            have += n
        return bytes(out)

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return line
            if len(self.buf) > 1024:
                raise _Refused(400, "bad chunk header")
            self.buf += self._recv(self.limits.idle_timeout)

    def chunked(self) -> bytes:
        """A chunked body, de-chunked, bounded by the body limit."""
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.line().split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _Refused(400, "bad chunk size") from None
            if size == 0:
                while self.line():  # trailers
                    pass
                return b"".join(parts)
            total += size
            if total > self.limits.max_body:
                raise _Refused(413, "message too large")
            parts.append(self.exactly(size))
            if self.exactly(2) != b"\r\n":
                raise _Refused(400, "bad chunk")

    def send(self, data: bytes) -> None:
        """Write ``data`` under the request deadline (a client that does not read cannot hold us)."""
        view = memoryview(data)
        while view:
            self.sock.settimeout(self._wait(self.limits.idle_timeout))
            try:
                sent = self.sock.send(view[: 1 << 20])
            except TimeoutError:
                raise _Gone from None
            except (ConnectionError, ssl.SSLError, OSError):
                raise _Gone from None
            view = view[sent:]


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


class HttpServer(socketserver.TCPServer):
    """A threaded WSGI server that buffers each request whole before the application sees it."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        app: WsgiApp,
        host: str,
        port: int,
        *,
        limits: ServerLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.limits = limits or ServerLimits()
        self.ssl_context = ssl_context
        self._slots = threading.Lock()
        self._open: dict[str, int] = {}
        self._total = 0
        self._waiting: dict[int, tuple[str, float, socket.socket]] = {}  # connections reading a request
        super().__init__((host, port), socketserver.BaseRequestHandler)
        self.server_name = host
        self.server_port: int = self.server_address[1]

    # ---- connections
    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, within the caps; refused at once beyond them."""
        addr = str(client_address[0])
        victim: socket.socket | None = None
        with self._slots:
            mine = self._open.get(addr, 0)
            admitted = mine < self.limits.max_connections_per_address
            if admitted and self._total >= self.limits.max_connections:
                victim = self._shed_for(mine)
                admitted = victim is not None
            if admitted:
                self._total += 1
                self._open[addr] = mine + 1
        if victim is not None:
            with contextlib.suppress(OSError):
                victim.shutdown(socket.SHUT_RDWR)  # its thread wakes, sees the end, frees its slot
        if not admitted:
            logger.warning("refusing a connection from %s: too many open", addr)
            self._refuse(request)
            return
        threading.Thread(target=self._connection, args=(request, client_address), daemon=True).start()

    def _shed_for(self, mine: int) -> socket.socket | None:
        """When every slot is taken, the connection a newcomer (holding ``mine`` already) replaces.

        Only a connection still waiting for its request (never one being answered), from an address
        holding more connections than the newcomer's, and of those the one waiting longest: a few
        addresses trickling bytes (or keeping idle connections) cannot shut everyone else out, and
        they lose their own slots first.  ``None``: refuse the newcomer.  Called under ``_slots``.
        """
        best: tuple[int, float] | None = None
        chosen: socket.socket | None = None
        victim_key = 0
        for key, (addr, since, sock) in list(self._waiting.items()):
            held = self._open.get(addr, 0)
            if held <= mine:
                continue
            rank = (held, -since)
            if best is None or rank > best:
                best, chosen, victim_key = rank, sock, key
        if chosen is not None:
            del self._waiting[victim_key]
        return chosen

    def _refuse(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.ssl_context is None:  # (a TLS client would need a handshake first: just close)
                sock.setblocking(False)
                sock.send(_simple(503, "too many connections", (("Retry-After", "10"),)))
        self.shutdown_request(sock)

    def _connection(self, sock: socket.socket, client_address: Any) -> None:
        addr = str(client_address[0])
        key = id(threading.current_thread())
        try:
            if self.ssl_context is not None:
                self._wait_for_request(key, addr, sock)
                sock.settimeout(min(self.limits.idle_timeout, self.limits.request_timeout))
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except (OSError, ssl.SSLError) as exc:
                    logger.debug("TLS handshake with %s failed: %s", addr, exc)
                    return
            conn = _Conn(sock, self.limits)
            while True:
                self._wait_for_request(key, addr, sock)
                if not self._one_request(conn, client_address, key):
                    break
        except Exception:  # a bug must not take the server down
            logger.exception("internal error on a connection from %s", addr)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with self._slots:
                self._waiting.pop(key, None)
                self._total -= 1
                left = self._open.get(addr, 1) - 1
                if left:
                    self._open[addr] = left
                else:
                    self._open.pop(addr, None)

    def _wait_for_request(self, key: int, addr: str, sock: socket.socket) -> None:
        """Mark the connection as waiting for a request: a newcomer may take its slot."""
        with self._slots:
            self._waiting[key] = (addr, time.monotonic(), sock)

    def _answering(self, key: int) -> bool:
        """The request is in: the connection is no longer sheddable; ``False`` if it was shed."""
        with self._slots:
            return self._waiting.pop(key, None) is not None

    def _one_request(self, conn: _Conn, client_address: Any, key: int) -> bool:
        """Read, answer; whether the connection may carry another request."""
        try:
            request = self._read(conn)
        except _Gone:
            return False
        except _Refused as exc:
            logger.info("refused a request from %s: %d %s", client_address[0], exc.status, exc.reason)
            with contextlib.suppress(_Gone, _Refused):
                conn.deadline = time.monotonic() + self.limits.idle_timeout
                conn.send(_simple(exc.status, exc.reason, exc.headers))
            _linger(conn.sock)
            return False
        if not self._answering(key):
            return False  # shed while its last bytes arrived: the newcomer has its slot
        return self._answer(conn, request, client_address)

    # ---- reading
    def _read(self, conn: _Conn) -> _Request:
        head = conn.head()
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            http2 = len(parts) == 3 and parts[2].startswith("HTTP/")
            raise _Refused(505 if http2 else 400, "bad request line")
        method, target, version = parts
        if len(lines) - 1 > self.limits.max_headers:
            raise _Refused(431, "too many headers")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _Refused(400, "bad header line")
            key = name.lower()
            value = value.strip()
            if key in headers:
                if key in ("content-length", "transfer-encoding", "host"):
                    raise _Refused(400, f"repeated {name}")
                headers[key] += ", " + value
            else:
                headers[key] = value
        connection = headers.get("connection", "").lower()
        keep_alive = version == "HTTP/1.1" and "close" not in connection
        if version == "HTTP/1.0" and "keep-alive" in connection:
            keep_alive = True
        body = self._body(conn, method, headers)
        return _Request(method, target, version, headers, body, keep_alive)

    def _body(self, conn: _Conn, method: str, headers: dict[str, str]) -> bytes:
        coding = headers.get("transfer-encoding", "").lower()
        if coding:
            if coding != "chunked":
                raise _Refused(501, "unsupported Transfer-Encoding")
            if "content-length" in headers:
                raise _Refused(400, "both Content-Length and Transfer-Encoding")
            self._continue(conn, headers)
            return conn.chunked()
        declared = headers.get("content-length")
        if declared is None:
            if method in ("POST", "PUT"):
                raise _Refused(411, "Content-Length required")
            return b""
        if not declared.isdigit():
            raise _Refused(400, "bad Content-Length")
        length = int(declared)
        if length > self.limits.max_body:
            raise _Refused(413, "message too large")
        if length == 0:
            return b""
        self._continue(conn, headers)
        return conn.exactly(length)

    @staticmethod
    def _continue(conn: _Conn, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue":
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    # ---- answering
    def _answer(self, conn: _Conn, request: _Request, client_address: Any) -> bool:
        path, _, query = request.target.partition("?")
        if path.startswith(("http://", "https://")):  # absolute form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(request.body)),
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": str(self.server_port),
            "SERVER_PROTOCOL": request.version,
            "REMOTE_ADDR": str(client_address[0]),
            "REMOTE_PORT": str(client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if self.ssl_context is not None else "http",
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        if "content-type" in request.headers:
            environ["CONTENT_TYPE"] = request.headers["content-type"]
        for key, value in request.headers.items():
            if key not in ("content-type", "content-length"):
                environ["HTTP_" + key.upper().replace("-", "_")] = value
        reply: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            reply[:] = [status, headers]
            return lambda data: None  # (the legacy write() callable: nothing of ours uses it)

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
            status, headers = reply
            names = {k.lower() for k, _ in headers}
            keep = request.keep_alive and "content-length" in names
            out = [f"HTTP/1.1 {status}"]
            out.extend(f"{k}: {v}" for k, v in headers)
            out.append("Connection: keep-alive" if keep else "Connection: close")
            data = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
            conn.deadline = time.monotonic() + self.limits.request_timeout
            conn.send(data + body if request.method != "HEAD" else data)
        except _Gone:
            keep = False
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # the application's work for after the answer (see transport.wsgi)
        return keep


def _linger(sock: socket.socket) -> None:
    """Close our side, then read what the client was still sending for a moment: closing a socket
    with unread input resets it, and the client would never see our answer."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.5)
        end = time.monotonic() + 1.0
        drained = 0
        while time.monotonic() < end and drained < (1 << 20):
            chunk = sock.recv(65536)
            if not chunk:
                break
            drained += len(chunk)


def _simple(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    body = f"{reason}\n".encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's threaded server: only for tests that stand in for other (broken) servers."""

    daemon_threads = True
    allow_reuse_address = True


def make_http_server(
    app: WsgiApp, host: str, port: int, *, limits: ServerLimits | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> HttpServer:
    """The server bound to ``host:port`` (port 0 picks a free one); ``serve_forever`` runs it."""
    return HttpServer(app, host, port, limits=limits, ssl_context=ssl_context)


def serve_forever(
    app: WsgiApp, host: str, port: int, *, ready: Callable[[str], None] | None = None,
    limits: ServerLimits | None = None, ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it cleanly)."""
    import signal

    httpd = make_http_server(app, host, port, limits=limits, ssl_context=ssl_context)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    scheme = "https" if ssl_context is not None else "http"
    url = f"{scheme}://{host}:{httpd.server_port}/"
    if ready is not None:
        ready(url)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        httpd.server_close()
