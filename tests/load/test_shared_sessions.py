"""Sessions that move between worker processes: every request may reach another SyncServer.

Two (or three) SyncServer objects on the same repository -- as in separate gunicorn workers, each with
its own GitStore -- share one session folder; the client's requests go round-robin between them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.app.sessions import DirTable
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests.crash.harness import check_repo
from tests.helpers import read_notes

URL = "http://sync.test/notes"
USERS = {"alice": "p4ssw0rd-never-on-disk"}


def round_robin(apps: list[Callable[..., Iterable[bytes]]]) -> Callable[..., Iterable[bytes]]:
    turn = [0]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        turn[0] += 1
        return apps[turn[0] % len(apps)](environ, start_response)

    return app


def workers(folder: Path, n: int, **options: Any) -> list[SyncServer]:
    sessions = folder / ".git" / "gitsync" / "sessions"
    return [
        SyncServer(GitStore.open(folder), ServerOptions(**options), sessions=DirTable(sessions))
        for _ in range(n)
    ]


def test_a_session_survives_moving_between_workers(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    (server_dir / "from-server.txt").write_bytes(b"server note\n")
    servers = workers(server_dir, 3, users=USERS, max_msg_size=4096)
    app = round_robin([s.wsgi_app() for s in servers])
    expected = {"from-server.txt": b"server note\n"}
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        notes = {f"{name}-{i}.txt": f"note {i} of {name}\n".encode() for i in range(30)}
        for rel, data in notes.items():
            (folder / rel).write_bytes(data)
        expected.update(notes)
        opts = ClientOptions(
            url=URL,
            device_id=f"dev-{name}",
            name="srv",
            username="alice",
            password=USERS["alice"],
            max_msg_size=4096,
        )  # many messages per session
        transport = InProcessTransport(app)
        sync_client(GitStore.open(folder), opts, transport)
        assert transport.round_trips > 6
        (folder / f"{name}-0.txt").write_bytes(b"edited\n")
        expected[f"{name}-0.txt"] = b"edited\n"
        sync_client(GitStore.open(folder), opts, InProcessTransport(app))
    for name in ("a", "b", "c"):
        opts = ClientOptions(
            url=URL, device_id=f"dev-{name}", name="srv", username="alice", password=USERS["alice"]
        )
        sync_client(GitStore.open(tmp_path / name), opts, InProcessTransport(app))
        assert read_notes(tmp_path / name) == expected
    assert read_notes(server_dir) == expected
    assert check_repo(server_dir, "server") == []
    sessions = server_dir / ".git" / "gitsync" / "sessions"
    assert not list(sessions.glob("*.session"))  # finished sessions are gone


def test_session_files_hold_no_password(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    servers = workers(server_dir, 2, users=USERS)
    from tests.hostile.helpers import ScriptedClient, add, sif

    seen: list[bytes] = []
    sessions = server_dir / ".git" / "gitsync" / "sessions"

    def snoop(msg_id: int, body: bytes) -> bytes:
        seen.extend(p.read_bytes() for p in sessions.rglob("*") if p.is_file())
        return body

    client = ScriptedClient(
        round_robin([s.wsgi_app() for s in servers]),
        device="snoop",
        username="alice",
        password=USERS["alice"],
    )
    acks = client.sync([add("k", sif("n.txt", "n\n"))], mutate=snoop)
    assert [c for _, c in acks] == [201]
    assert len(seen) >= 3 and any(b"snoop" in data for data in seen)
    secret = USERS["alice"].encode()
    for data in seen:
        assert secret not in data
        assert base64.b64encode(b"alice:" + secret) not in data
