"""A small threaded HTTP server for the WSGI app (stdlib wsgiref), quiet and stoppable."""

from __future__ import annotations

import logging
import socketserver
import ssl
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from gitsync.transport.tls import TLSServerMixIn

__all__ = ["make_http_server", "serve_forever"]

logger = logging.getLogger(__name__)


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def get_environ(self) -> dict[str, Any]:
        env: dict[str, Any] = super().get_environ()
        if isinstance(self.connection, ssl.SSLSocket):
            env["HTTPS"] = "on"  # wsgi.url_scheme https: RespURIs we hand out stay on HTTPS
        return env


class _ThreadingServer(TLSServerMixIn, socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def make_http_server(
    app: Callable[..., Iterable[bytes]], host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> WSGIServer:
    """A threaded WSGI server bound to ``host:port`` (port 0 picks a free one); HTTPS with a context."""
    httpd = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_Handler)
    httpd.ssl_context = ssl_context  # type: ignore[attr-defined]
    return httpd


def serve_forever(
    app: Callable[..., Iterable[bytes]], host: str, port: int, *, ready: Callable[[str], None] | None = None
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM end it cleanly)."""
    import signal

    httpd = make_http_server(app, host, port)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    url = f"http://{host}:{httpd.server_port}/"
    if ready is not None:
        ready(url)
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        httpd.server_close()
