"""Call a WSGI app directly instead of over a socket (tests, benchmarks, loopback runs).

Same contract as :class:`gitsync.transport.http.HttpTransport`, including cookies, so the
client and server code paths are the real ones; only the socket is missing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from gitsync.errors import TransportError

__all__ = ["InProcessTransport"]


class InProcessTransport:
    """POST to a WSGI application in this process."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.round_trips = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """POST ``body`` to ``url`` through the WSGI app."""
        parts = urlsplit(url)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": parts.path or "/",
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": parts.hostname or "localhost",
            "SERVER_PORT": str(parts.port or 80),
            "HTTP_HOST": parts.netloc,
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status: list[str] = []
        headers: list[tuple[str, str]] = []

        def start_response(st: str, hdrs: list[tuple[str, str]], exc_info: object = None) -> None:
            status.append(st)
            headers.extend(hdrs)

        answer = self.app(environ, start_response)
        try:
            data = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()  # as a WSGI server does once the answer is sent
        self.round_trips += 1
        self.bytes_sent += len(body)
        self.bytes_received += len(data)
        code = int(status[0].split()[0]) if status else 500
        for name, value in headers:
            if name.lower() == "set-cookie":
                jar = SimpleCookie(value)
                self.cookies.update({k: m.value for k, m in jar.items()})
        if code != 200:
            raise TransportError(f"{url} answered HTTP {status[0] if status else code}")
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
        return data, ctype.split(";")[0].strip().lower()

    def close(self) -> None:
        """Nothing to release."""
