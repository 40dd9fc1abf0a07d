"""MD5 nonces, single use: the nonce a device must log in with next, one small file per device.

SyncML MD5 credentials are a digest over the password and the nonce we handed out last, so the
same message proves the same login until the nonce changes.  Every accepted MD5 login therefore
hands out a fresh random nonce and stores it here *before* the reply leaves (the device's state
ref, written when a session commits, is too late: a replayed package 1 would pass meanwhile).

A refused login is challenged with :func:`retry_nonce` of the stored one: derived, not random,
so nothing is written for a stranger (a refused login costs no disk and cannot change what the
device must use), and a client that retries in a new session (or after its session was dropped)
still finds it accepted.  Both are single use: the next accepted login replaces the stored nonce,
and with it the derived one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

from gitsync.atomic import atomic_write

__all__ = ["NonceStore", "retry_nonce"]

logger = logging.getLogger(__name__)


def retry_nonce(device: str, stored: bytes) -> bytes:
    """The nonce a refused login of ``device`` is challenged with, while ``stored`` is current."""
    digest = hashlib.sha256(b"gitsync-notes retry nonce\0" + device.encode() + b"\0" + stored).digest()
    return base64.b64encode(digest[:12])


class NonceStore:
    """The current nonce of each device: ``folder/<sha256 of the device id>`` (created on demand)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, device: str) -> Path:
        return self.folder / hashlib.sha256(device.encode()).hexdigest()

    def get(self, device: str) -> bytes | None:
        """The nonce ``device`` must use, or ``None`` when none was stored here yet."""
        try:
            return self._path(device).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read the nonce of %r: %s", device, exc)
            return None

    def put(self, device: str, nonce: bytes) -> None:
        """Store ``nonce`` for ``device`` (durably: the reply that hands it out follows)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self._path(device), nonce, mode=0o600, durable=True)
