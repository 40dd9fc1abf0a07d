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
import contextlib
import hashlib
import logging
import os
import re
from pathlib import Path

from gitsync.atomic import atomic_write
from gitsync.sync.ids import peer_ref_name

__all__ = ["NonceStore", "device_peer_name", "retry_nonce"]

logger = logging.getLogger(__name__)

_PEER = re.compile(r"device-[a-z0-9._-]{1,80}\Z")


def retry_nonce(device: str, stored: bytes) -> bytes:
    """The nonce a refused login of ``device`` is challenged with, while ``stored`` is current."""
    digest = hashlib.sha256(b"gitsync-notes retry nonce\0" + device.encode() + b"\0" + stored).digest()
    return base64.b64encode(digest[:12])


class NonceStore:
    """The current nonce of each device: ``folder/<its peer name>/<sha256 of the device id>``.

    Filed under the device's peer name (``device-...``, its state ref's name), so that forgetting
    the peer (``gitsync-notes peer forget``) finds its nonces without knowing the device id.
    A nonce stored before, as ``folder/<sha256>``, is still read, and moves at the next login.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def of_repository(cls, git_dir: Path) -> NonceStore:
        """The nonces a repository's server keeps (``.git/gitsync/nonces``)."""
        return cls(git_dir / "gitsync" / "nonces")

    def _path(self, device: str) -> Path:
        return self.folder / device_peer_name(device) / _digest(device)

    def get(self, device: str) -> bytes | None:
        """The nonce ``device`` must use, or ``None`` when none was stored here yet."""
        for path in (self._path(device), self.folder / _digest(device)):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                logger.warning("cannot read the nonce of %r: %s", device, exc)
                return None
        return None

    def put(self, device: str, nonce: bytes) -> None:
        """Store ``nonce`` for ``device`` (durably: the reply that hands it out follows)."""
        path = self._path(device)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, nonce, mode=0o600, durable=True)
        with contextlib.suppress(FileNotFoundError):
            (self.folder / _digest(device)).unlink()  # stored before nonces were filed by peer

    def forget(self, peer: str) -> bool:
        """Delete the nonces of the devices of peer ``peer`` (``device-...``); whether there were any."""
        if not _PEER.match(peer):
            return False
        folder = self.folder / peer
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return False
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
        with contextlib.suppress(OSError):
            folder.rmdir()
        return bool(names)


def device_peer_name(device: str) -> str:
    """The peer name of a device's state (``device-<ref name>``, as app/server_run names it)."""
    return "device-" + peer_ref_name(device)


def _digest(device: str) -> str:
    return hashlib.sha256(device.encode()).hexdigest()
