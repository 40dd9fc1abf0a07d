"""TLS for the built-in server: the SSL context (stdlib ``ssl``) and a socketserver mix-in.

Modern defaults: TLS 1.2 or newer, the ciphers and options of ``ssl.create_default_context``
for servers (forward secrecy, no compression, no renegotiation). The handshake runs in the
connection's own thread with a time limit, never in the accepting loop, so a client that connects
and says nothing cannot stop the server from accepting others.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from gitsync.errors import ConfigError

__all__ = ["TLSServerMixIn", "server_context"]

logger = logging.getLogger(__name__)

#: seconds a client has to complete the TLS handshake
HANDSHAKE_TIMEOUT = 10.0


def server_context(certificate: str, key: str | None = None) -> ssl.SSLContext:
    """A server context for ``certificate`` (PEM, the chain after the leaf) and its private ``key``.

    Raises :class:`ConfigError` with the file and the reason when they cannot be used.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(certificate, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot read {exc.filename or certificate}: no such file") from exc
    except PermissionError as exc:
        raise ConfigError(f"cannot read {exc.filename or key or certificate}: permission denied") from exc
    except ssl.SSLError as exc:
        what = f"{certificate}" + (f" and {key}" if key else "")
        reason = exc.reason or str(exc)
        if "KEY_VALUES_MISMATCH" in str(exc):
            reason = "the key does not belong to the certificate"
        elif reason in ("PEM_LIB", "NO_START_LINE"):
            reason = "not a PEM certificate and private key"
        raise ConfigError(f"cannot use {what} for TLS: {reason}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename or certificate}: {exc.strerror or exc}") from exc
    return ctx


class TLSServerMixIn:
    """For a ``socketserver`` TCP server: wraps each accepted connection in TLS, handshakes in the
    connection's thread (with :data:`HANDSHAKE_TIMEOUT`), and drops clients that fail it."""

    ssl_context: ssl.SSLContext | None = None
    socket: socket.socket

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is None:
            return sock, addr
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            old = request.gettimeout()
            request.settimeout(HANDSHAKE_TIMEOUT)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                logger.info("TLS handshake with %s failed: %s", client_address[0], exc)
                return
            request.settimeout(old)
        super().finish_request(request, client_address)  # type: ignore[misc]
