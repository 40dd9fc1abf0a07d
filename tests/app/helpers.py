"""Helpers for end-to-end tests: note folders, git inspection, a loopback client↔server pair."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.common import SyncReport
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.model import SyncMode
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests.peers import read_notes, wait_settled

__all__ = ["Loopback", "git", "read_notes", "write_notes"]


def write_notes(root: Path, notes: Mapping[str, bytes | None]) -> None:
    """Create, overwrite (bytes) or delete (None) note files below ``root``."""
    wait_settled(root)
    for rel, data in notes.items():
        path = root / rel
        if data is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def git(root: Path, *args: str) -> str:
    """Run the real git CLI in ``root`` and return its output."""
    wait_settled(root)
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


class Loopback:
    """A gitsync server folder and any number of gitsync client folders, wired in process."""

    def __init__(self, tmp: Path, *, server_options: ServerOptions | None = None) -> None:
        self.tmp = tmp
        self.server_dir = tmp / "server"
        self.server_dir.mkdir(exist_ok=True)
        self.server_store = GitStore.open(self.server_dir)
        self.server = SyncServer(self.server_store, server_options)
        self.app = self.server.wsgi_app()
        self.url = "http://sync.test/notes"

    def client_dir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(exist_ok=True)
        return path

    def sync(self, name: str, mode: SyncMode = SyncMode.TWO_WAY, **kw: object) -> SyncReport:
        """One sync of client folder ``name`` (device id = name)."""
        store = GitStore.open(self.client_dir(name))
        opts = ClientOptions(url=self.url, device_id=f"dev-{name}", name="server", mode=mode, **kw)  # type: ignore[arg-type]
        transport = InProcessTransport(self.app)
        return sync_client(store, opts, transport)
