"""Concurrent syncs on one repository: they never interleave writes, the loser waits or gets 417, and
the gunicorn deployment (several worker processes) holds 20 clients syncing at once."""

from __future__ import annotations

import re
import subprocess
import threading
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.errors import GitsyncError
from gitsync.store.git import GitStore
from gitsync.transport.http import HttpTransport
from gitsync.transport.inprocess import InProcessTransport
from tests.crash.harness import (
    DEVICE,
    PEER,
    REPO_ROOT,
    check_repo,
    child_env,
    gitsync_argv,
    thread_server,
)
from tests.helpers import free_port, read_notes, write_notes
from tests.hostile.live import HAVE_GUNICORN, live_server

CLIENTS = 20
NOTES_EACH = 5


def _notes_of(n: int) -> dict[str, bytes]:
    return {f"client{n:02d}/note {i}.txt": f"note {i} of client {n}\n".encode() for i in range(NOTES_EACH)}


def _run_all(jobs: list[threading.Thread]) -> None:
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(120)
        assert not job.is_alive()


def _many_clients(tmp_path: Path, url: str, *, count: int = CLIENTS) -> dict[str, bytes]:
    """``count`` client threads sync at once, twice; returns the notes everyone must end with."""
    expected = {"server.txt": b"on the server\n"}
    folders = []
    for n in range(count):
        folder = tmp_path / f"c{n:02d}"
        folder.mkdir()
        write_notes(folder, _notes_of(n))
        expected.update(_notes_of(n))
        folders.append(folder)
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def one(n: int) -> None:
        try:
            start.wait(30)
            transport = HttpTransport(timeout=60)
            try:
                opts = ClientOptions(url=url, device_id=f"device-{n:02d}", name="srv")
                sync_client(GitStore.open(folders[n]), opts, transport)
            finally:
                transport.close()
        except BaseException as exc:  # collected: asserted below with every failure listed
            errors.append(exc)

    for _ in range(2):  # round 1 sends everyone's notes, round 2 brings them all back
        _run_all([threading.Thread(target=one, args=(n,)) for n in range(count)])
        assert errors == [], errors
    for folder in folders:
        assert read_notes(folder) == expected, folder.name
        assert check_repo(folder, folder.name) == []
    return expected


def test_clients_of_one_threaded_server_at_once(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    (server_dir / "server.txt").write_bytes(b"on the server\n")
    with thread_server(server_dir, free_port()) as url:
        expected = _many_clients(tmp_path, url, count=8)
    assert read_notes(server_dir) == expected
    assert check_repo(server_dir, "server") == []


def test_two_syncs_of_one_folder_at_once(tmp_path: Path) -> None:
    """The hook and a manual sync start together: the second waits for the first (or is told the folder
    is busy), and the folder ends correct either way."""
    server_dir, client = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client.mkdir()
    (server_dir / "s.txt").write_bytes(b"server\n")
    write_notes(client, _notes_of(1))
    with thread_server(server_dir, free_port()) as url:
        argv = gitsync_argv("sync", str(client), "--remote", url, "--id", DEVICE, "--peer", PEER, "-q")
        procs = [
            subprocess.Popen(
                argv,
                env=child_env(),
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120)[0] for p in procs]
        codes = [p.returncode for p in procs]
        assert 0 in codes, outputs
        for code, output in zip(codes, outputs, strict=True):
            assert code == 0 or (code == 1 and "try again later" in output), output
        expected = {"s.txt": b"server\n", **_notes_of(1)}
        assert read_notes(client) == expected
        assert read_notes(server_dir) == expected
        assert check_repo(client, "client") == []
        assert check_repo(server_dir, "server") == []


def test_a_busy_server_repository_answers_retry_later(tmp_path: Path) -> None:
    """Another process holds the server's repository (a manual sync there, a second server): the
    session gets 417 and changes nothing; once it is free the same sync goes through."""
    server_dir, client = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client.mkdir()
    write_notes(client, _notes_of(2))
    server = SyncServer(GitStore.open(server_dir), ServerOptions(lock_wait=0.2))
    app = server.wsgi_app()
    opts = ClientOptions(url="http://sync.test/notes", device_id="busy-dev", name="srv")
    other = GitStore.open(server_dir)  # another process, as far as the lock is concerned
    with other.lock(), pytest.raises(GitsyncError, match="417"):
        sync_client(GitStore.open(client), opts, InProcessTransport(app))
    assert read_notes(server_dir) == {}
    sync_client(GitStore.open(client), opts, InProcessTransport(app))
    assert read_notes(server_dir) == _notes_of(2)


@pytest.mark.skipif(not HAVE_GUNICORN, reason="gunicorn is not installed (test extra)")
def test_gunicorn_workers_hold_20_clients_at_once(tmp_path: Path) -> None:
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    (server_dir / "server.txt").write_bytes(b"on the server\n")
    GitStore.open(server_dir)
    logs = ["--timeout", "120", "--access-logfile", "-", "--access-logformat", "pid=%(p)s %(m)s %(s)s"]
    with live_server(server_dir, kind="gunicorn", workers=4, threads=1, worker_class="sync",
                     args=logs) as srv:
        expected = _many_clients(tmp_path, f"http://127.0.0.1:{srv.port}/notes")
    text = srv.output()
    assert read_notes(server_dir) == expected
    assert check_repo(server_dir, "server") == []
    pids = set(re.findall(r"pid=<?(\d+)>? POST 200", text))
    assert len(pids) >= 2, text[-3000:]  # sessions really did move between worker processes
    assert "Traceback" not in text, text[-3000:]
    assert not list((server_dir / ".git" / "gitsync" / "sessions").glob("*.session"))
