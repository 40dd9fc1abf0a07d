"""A loopback client↔server pair for end-to-end tests (notes and git helpers: ``tests.helpers``)."""

from __future__ import annotations

from pathlib import Path

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.model import SyncMode
from gitsync.store.git import GitStore
from gitsync.sync.report import SyncReport
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import git, read_notes, write_notes  # re-exported: older imports

__all__ = ["Loopback", "git", "read_notes", "write_notes"]


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
