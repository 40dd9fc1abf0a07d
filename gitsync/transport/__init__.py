"""HTTP for SyncML: the client transport, the WSGI adapter and the built-in server (the only
requests/WSGI user).  :class:`Transport` is all the client driver needs of it."""

from __future__ import annotations

from typing import Protocol

__all__ = ["Transport"]


class Transport(Protocol):
    """Moves one SyncML message and its reply (see :mod:`gitsync.transport`)."""

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        """POST ``body``; return the reply body and its media type."""
        ...
