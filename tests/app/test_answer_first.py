"""The server answers a session's last message once it is committed, and writes its folder after.

The client's wait ends at the commit point; the notes it brought reach the server's work tree right
after the answer went out (WSGI ``close()``).  Until then the journal keeps every other user of the
folder from scanning it, and a crash leaves the rest to recovery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gitsync.app.client import ClientOptions, sync_client
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests.app.helpers import Loopback
from tests.helpers import read_notes, write_notes

App = Callable[..., Iterable[bytes]]


class _HeldAnswers:
    """Wraps the server's WSGI app: answers reach the client, their ``close()`` waits for ``release``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.held: list[Any] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = self.app(environ, start_response)
        self.held.append(body)
        return list(body)  # no close(): what the server does after answering waits

    def release(self) -> None:
        for body in self.held:
            body.close()
        self.held.clear()


def _files(root: Path) -> dict[str, bytes]:
    """The work tree as it is now (``read_notes`` would wait for the server)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts and p.name != ".gitattributes"
    }


def _sync(lb: Loopback, app: App, name: str) -> None:
    store = GitStore.open(lb.client_dir(name))
    opts = ClientOptions(url=lb.url, device_id=f"dev-{name}", name="server")
    sync_client(store, opts, InProcessTransport(app))


def _journal(root: Path) -> list[str]:
    folder = root / ".git" / "refs" / "gitsync" / "journal"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_the_client_has_its_answer_before_the_server_writes(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.server_dir, {"old.txt": b"old\n"})
    lb.sync("phone")
    write_notes(lb.client_dir("phone"), {"new.txt": b"from the phone\n", "old.txt": b"old, edited\n"})
    held = _HeldAnswers(lb.app)
    _sync(lb, held, "phone")  # done: the client committed its side

    srv = lb.server_dir
    assert _files(srv) == {"old.txt": b"old\n"}  # not written yet ...
    assert _journal(srv) == ["device-dev-phone"]  # ... and the journal says so
    head = lb.server_store.head()
    assert head is not None  # but the session is committed: branch and state
    assert lb.server_store.list_notes(lb.server_store.tree_of(head)).keys() == {"old.txt", "new.txt"}

    held.release()
    assert _journal(srv) == []
    assert _files(srv) == {"old.txt": b"old, edited\n", "new.txt": b"from the phone\n"}
    assert lb.server_store.commit_worktree("nothing") == head  # index and stat cache agree
    assert read_notes(srv) == read_notes(lb.client_dir("phone"))


def test_the_next_session_writes_what_the_last_one_left(tmp_path: Path) -> None:
    """An answer whose after-work never ran (a WSGI server that skips close()): the next session of
    any device takes the lock, writes the folder first, and sends nothing back as a local change."""
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("phone"), {"a.txt": b"alpha\n"})
    held = _HeldAnswers(lb.app)
    _sync(lb, held, "phone")
    assert _files(lb.server_dir) == {}
    report = lb.sync("laptop")  # never released: the laptop's session comes first
    assert report.local.add == 1 and report.remote.total() == 0  # local: what reached the laptop
    assert _files(lb.server_dir) == {"a.txt": b"alpha\n"} == read_notes(lb.client_dir("laptop"))
    report = lb.sync("phone")
    assert report.local.total() == 0 and report.remote.total() == 0  # no echo of its own note
    held.release()  # late: nothing left to do
    assert _files(lb.server_dir) == {"a.txt": b"alpha\n"}
