"""WSGI adapter: HTTP request → ``handler(Request) -> Response``; no git, no SyncML.

Guarantees the server never crashes on a request: oversize bodies get 413, other
methods 405, and an exception inside the handler a 500 with no traceback in the body.

A response may carry work for after it was sent (``Response.after``): the WSGI server calls the
body's ``close()`` once the last byte is written, so a client reads the answer while that work
runs.  It must be work nobody waits for, or that whoever needs it next does anyway.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from gitsync.transport.proxy import TrustedProxies, client_origin

__all__ = ["Request", "Response", "make_wsgi_app"]

logger = logging.getLogger(__name__)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What the SyncML server needs from an HTTP request."""

    body: bytes
    content_type: str | None
    path: str
    query: dict[str, str]
    cookies: dict[str, str]
    base_url: str  # scheme://host[:port]/script
    remote_addr: str = ""  # the peer's address as the HTTP server saw it


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """An HTTP response."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())
    after: Callable[[], None] | None = field(default=None, compare=False)


class _Body:
    """A response body whose ``close()`` runs the response's ``after`` work (PEP 3333)."""

    def __init__(self, body: bytes, after: Callable[[], None] | None) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._body,))

    def close(self) -> None:
        after, self._after = self._after, None
        if after is None:
            return
        try:
            after()
        except Exception:  # the answer is out; a failure here must not take the server down
            logger.exception("internal error after answering a request")


Handler = Callable[[Request], Response]
StartResponse = Callable[..., Any]


def make_wsgi_app(
    handler: Handler, *, max_body: int = 16 * 1024 * 1024, trusted_proxies: TrustedProxies = ()
) -> Callable[..., Iterable[bytes]]:
    """Wrap ``handler`` as a WSGI application (the client's address: :func:`client_origin`)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            resp = _dispatch(environ, handler, max_body, trusted_proxies)
        except Exception:  # a bug must not take the server down
            logger.exception("internal error while handling a request")
            resp = Response(status=500, body=b"internal server error\n")
        headers = [("Content-Type", resp.content_type), ("Content-Length", str(len(resp.body)))]
        headers.extend(resp.headers)
        start_response(f"{resp.status} {_REASONS.get(resp.status, 'Error')}", headers)
        return _Body(resp.body, resp.after)

    return app


#: under gunicorn (which hands the application its socket), seconds a body may take to arrive, and
#: may stay silent: a slow client then holds one worker thread that long at most
BODY_TIMEOUT = 60.0
BODY_IDLE_TIMEOUT = 15.0


def _read_body(environ: dict[str, Any], stream: Any, length: int) -> bytes:
    """``length`` bytes of body; under gunicorn with a deadline (a server that buffers the body
    itself, as ``gitsync-notes serve`` does, needs none)."""
    sock = environ.get("gunicorn.socket")
    if sock is None or not hasattr(sock, "settimeout"):
        data: bytes = stream.read(length)
        return data
    expired: list[bool] = []

    def cut() -> None:  # ends a read blocked on a client that trickles its body
        expired.append(True)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)

    timer = threading.Timer(BODY_TIMEOUT, cut)
    timer.daemon = True
    timer.start()
    sock.settimeout(BODY_IDLE_TIMEOUT)
    try:
        data = stream.read(length)
    except OSError as exc:
        raise TimeoutError("client too slow") from exc
    finally:
        timer.cancel()
        with contextlib.suppress(OSError):
            sock.settimeout(None)
    if expired:
        raise TimeoutError("client too slow")
    return bytes(data)


def _dispatch(
    environ: dict[str, Any], handler: Handler, max_body: int, trusted: TrustedProxies = ()
) -> Response:
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method == "GET":
        return Response(body=b"gitsync-notes SyncML server: POST SyncML messages here.\n")
    if method != "POST":
        return Response(status=405, body=b"only POST is supported\n", headers=(("Allow", "POST, GET"),))
    stream = environ["wsgi.input"]
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    if declared:
        if not declared.isdigit():
            return Response(status=400, body=b"bad Content-Length\n")
        length = int(declared)
        if length > max_body:
            return Response(status=413, body=b"message too large\n")
        if length == 0:
            return Response(status=400, body=b"empty body\n")  # answered at once: nothing to wait for
        try:
            body = _read_body(environ, stream, length)
        except TimeoutError:
            return Response(status=408, body=b"client too slow\n")
        if len(body) < length:
            return Response(status=400, body=b"truncated body\n")
    elif environ.get("wsgi.input_terminated"):  # chunked, de-chunked by the server (gunicorn)
        body = stream.read(max_body + 1)
        if not body:
            return Response(status=400, body=b"empty body\n")
    else:  # reading to the end would wait for a client that may never close
        return Response(status=411, body=b"Content-Length required\n")
    if len(body) > max_body:
        return Response(status=413, body=b"message too large\n")
    cookies: dict[str, str] = {}
    try:
        jar = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        cookies = {k: m.value for k, m in jar.items()}
    except CookieError:
        pass
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ.get("PATH_INFO", "") or "/"
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    addr, scheme = client_origin(environ, trusted)
    base = f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}"
    return handler(
        Request(
            body=body,
            content_type=environ.get("CONTENT_TYPE"),
            path=path,
            query=query,
            cookies=cookies,
            base_url=base,
            remote_addr=addr,
        )
    )
