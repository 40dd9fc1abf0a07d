"""A counting TCP relay for the benchmarks: bytes on the wire and HTTP round trips.

It listens on 127.0.0.1 (a free port), relays every connection to the server, and follows the HTTP
framing in both directions (Content-Length, or the end of the connection), so it counts messages,
not connections: keep-alive clients and HTTP/1.0 servers are counted alike.  It runs as threads
of the benchmark process; its cost is not on the measured processes' clocks.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CountingProxy", "WireStats"]

_MAX_HEAD = 256 * 1024


@dataclass
class WireStats:
    """What went over the wire through the proxy."""

    requests: int = 0  # HTTP requests = round trips
    responses: int = 0
    bytes_up: int = 0  # client -> server, headers included
    bytes_down: int = 0
    max_request_body: int = 0
    max_response_body: int = 0
    request_bodies: list[int] = field(default_factory=list)


class _Framer:
    """Follows HTTP message boundaries in one direction of a connection."""

    def __init__(self, on_message: Callable[[int], None], response: bool) -> None:
        self._on_message = on_message
        self._response = response
        self._head = b""
        self._state = "head"
        self._left = 0
        self._body = 0

    def feed(self, data: bytes) -> None:
        while data:
            if self._state == "head":
                self._head += data
                data = b""
                end = self._head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._head) > _MAX_HEAD:  # not HTTP: count the rest as one body
                        self._state, self._body, self._head = "close", len(self._head), b""
                    return
                head, data = self._head[: end + 4], self._head[end + 4 :]
                self._head = b""
                self._body = 0
                length = _content_length(head)
                chunked = b"transfer-encoding: chunked" in head.lower()
                if length is not None and not chunked:
                    self._left = length
                    self._state = "body"
                    if length == 0:
                        self._done()
                elif self._response or chunked:
                    self._state = "close"  # body until the connection closes
                else:
                    self._done()  # a request without a body
            elif self._state == "body":
                take = min(len(data), self._left)
                self._left -= take
                self._body += take
                data = data[take:]
                if self._left == 0:
                    self._done()
            else:
                self._body += len(data)
                data = b""

    def close(self) -> None:
        if self._state == "close" or (self._state == "body" and self._body):
            self._done()

    def _done(self) -> None:
        self._on_message(self._body)
        self._state = "head"
        self._body = 0


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


class CountingProxy:
    """``with CountingProxy(target_port) as proxy:`` ... ``proxy.url``, ``proxy.stats``."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.stats = WireStats()
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(32)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://{host}:{self.port}/"
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="wireproxy")

    def __enter__(self) -> CountingProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> WireStats:
        """Return the stats so far and start counting afresh."""
        with self._lock:
            stats, self.stats = self.stats, WireStats()
        return stats

    def close(self) -> None:
        self._stop = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()  # wake accept()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        self._sock.close()
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            t = threading.Thread(target=self._relay, args=(conn,), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _relay(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.target)
        except OSError:
            conn.close()
            return
        req = _Framer(self._request, response=False)
        resp = _Framer(self._response, response=True)
        t1 = threading.Thread(target=self._pump, args=(conn, up, req, True), daemon=True)
        t2 = threading.Thread(target=self._pump, args=(up, conn, resp, False), daemon=True)
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        conn.close()
        up.close()

    def _pump(self, src: socket.socket, dst: socket.socket, framer: _Framer, upward: bool) -> None:
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                with self._lock:
                    if upward:
                        self.stats.bytes_up += len(data)
                    else:
                        self.stats.bytes_down += len(data)
                    framer.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                framer.close()
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _request(self, body: int) -> None:
        self.stats.requests += 1
        self.stats.request_bodies.append(body)
        self.stats.max_request_body = max(self.stats.max_request_body, body)

    def _response(self, body: int) -> None:
        self.stats.responses += 1
        self.stats.max_response_body = max(self.stats.max_response_body, body)
