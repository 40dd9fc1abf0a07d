"""The one rule for a missing DIRECTORY (``sync`` and ``serve``, said in their --help), through the
installed console script: a missing folder is created when its parent exists and it is not inside
another Git repository; otherwise the command refuses before it creates anything (exit 2, one line
ending with the --help hint).  A sub-folder of a notes folder means that notes folder."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests import peers
from tests.cli.helpers import Result, cli, repo_snapshot
from tests.helpers import free_port, git, read_notes, write_notes

HOW = "script"


def _refused(res: Result, *words: str) -> None:
    assert res.code == 2, (res.code, res.out, res.err)
    assert res.out == ""
    [line] = res.lines
    assert line.startswith("gitsync-notes: ") and "Traceback" not in res.err
    for word in words:
        assert word in line, (word, line)


def _outer_repo(tmp_path: Path) -> Path:
    """Another Git repository (not a notes folder), with one commit."""
    outer = tmp_path / "project"
    write_notes(outer, {"README": b"a project\n"})
    git(outer, "init", "-q")
    git(outer, "add", "-A")
    git(outer, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "one")
    return outer


def test_sync_creates_a_missing_folder(tmp_path: Path) -> None:
    with peers.GitsyncServer(tmp_path / "server") as srv:
        write_notes(tmp_path / "server", {"from-server.txt": b"on the server\n"})
        git(tmp_path / "server", "init", "-q")  # a plain folder the server made a repository of
        folder = tmp_path / "new-notes"
        res = cli(HOW, "sync", folder, "-r", srv.url, "-i", "dev-rule")
        assert res.code == 0, res.err
        assert res.err == ""
        assert "1 local change." in res.out
    assert (folder / ".git").is_dir()
    assert read_notes(folder) == {"from-server.txt": b"on the server\n"}
    assert git(folder, "config", "gitsync.remote").strip() == srv.url


@pytest.mark.parametrize("missing", ["sub/deeper", "sub"])
def test_sync_inside_another_repository_is_refused_before_anything_exists(
    tmp_path: Path, missing: str
) -> None:
    outer = _outer_repo(tmp_path)
    before = repo_snapshot(outer)
    res = cli(HOW, "sync", outer / missing, "-r", f"http://127.0.0.1:{free_port()}/")
    if missing == "sub":
        _refused(res, f"notes folder {outer / missing} does not exist, and would be inside the Git "
                 f"repository {outer}: use a folder outside it", "(try: gitsync-notes sync --help)")
    else:  # its parent is missing too: nothing is created on the way
        _refused(res, "does not exist, nor does its parent", "(try: gitsync-notes sync --help)")
    assert not (outer / "sub").exists()
    assert repo_snapshot(outer) == before


def test_sync_of_a_missing_folder_with_no_server_is_refused(tmp_path: Path) -> None:
    res = cli(HOW, "sync", tmp_path / "nowhere")
    _refused(res, "no server given: use --remote URL", "(try: gitsync-notes sync --help)")
    assert list(tmp_path.iterdir()) == []


def test_serve_inside_another_repository_is_refused_before_anything_exists(tmp_path: Path) -> None:
    outer = _outer_repo(tmp_path)
    before = repo_snapshot(outer)
    port = free_port()
    res = cli(HOW, "serve", outer / "served", "--listen", str(port), timeout=20)
    _refused(res, f"would be inside the Git repository {outer}", "(try: gitsync-notes serve --help)")
    assert not (outer / "served").exists()
    assert repo_snapshot(outer) == before


def test_serve_creates_a_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "served"  # GitsyncServer would make it first: start serve by hand
    port = free_port()
    proc = subprocess.Popen([*peers.gitsync_command(), "serve", str(folder), "--listen", str(port), "-q"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert (folder / ".git").is_dir()
        client = tmp_path / "client"
        write_notes(client, {"a.txt": b"a\n"})
        res = cli(HOW, "sync", client, "-r", f"http://127.0.0.1:{port}/", "-i", "dev-serve-rule")
        assert res.code == 0, res.err
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode in (0, 128 + signal.SIGTERM), (proc.returncode, err)
    assert read_notes(folder) == {"a.txt": b"a\n"}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sync_of_a_sub_folder_syncs_its_notes_folder(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    write_notes(notes, {"top.txt": b"top\n", "sub/inner.txt": b"inner\n"})
    with peers.GitsyncServer(tmp_path / "server") as srv:
        assert cli(HOW, "sync", notes, "-r", srv.url, "-i", "dev-sub").code == 0
        (notes / "top.txt").write_bytes(b"top, edited\n")
        res = cli(HOW, "sync", notes / "sub")
        assert res.code == 0, res.err
        assert "1 remote change." in res.out
        # a missing sub-folder of the notes folder is inside a Git repository: refused, not created
        res = cli(HOW, "sync", notes / "newsub")
        _refused(res, f"would be inside the Git repository {notes}")
        assert not (notes / "newsub").exists()
    assert read_notes(tmp_path / "server") == {"top.txt": b"top, edited\n", "sub/inner.txt": b"inner\n"}
