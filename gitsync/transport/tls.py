"""TLS for the built-in server: the SSL context (stdlib ``ssl``).

Modern defaults: TLS 1.2 or newer, the ciphers and options of ``ssl.create_default_context``
for servers (forward secrecy, no compression, no renegotiation). The handshake itself runs in
each connection's own thread (``gitsync.transport.serve``).
"""

from __future__ import annotations

import ssl

from gitsync.errors import ConfigError

__all__ = ["server_context"]


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
