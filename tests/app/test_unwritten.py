"""A write into the notes folder that did not happen is never read back as the user's change (issue 14 §1).

End to end over HTTP: a gitsync server in a thread, clients run as ``gitsync-notes sync`` (click's
runner, or a real process where it gets killed), two devices.  Real failures: a size-limited tmpfs
for a full disk (client and server folder), ``chattr +i`` for a folder we may not write, a tmpfs
remounted read-only, and folders, symlinks and fifos in the way.  Each time the next sync (or the
server's next session) writes the note once the cause is gone, and no Delete or revert ever
reaches the server or the other device.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import peers
from tests.app.helpers import git, read_notes, write_notes
from tests.cli.helpers import Result, cli, gitsync_server

BIG = b"a line of a big note\n" * 130_000  # 2.7 MB that Git stores in a few KB
EDIT = b"an edit that needs room\n" * 12_000  # 288 KB


def _sync(folder: Path, url: str | None = None, device: str = "dev") -> Result:
    args: list[str | Path] = ["sync", folder]
    if url is not None:
        args += ["--remote", url, "--id", f"{device}-{folder.name}"]
    return cli("runner", *args)


def _ok(res: Result) -> Result:
    assert res.code == 0, res.err
    return res


def _status(folder: Path) -> str:
    res = cli("runner", "status", folder)
    assert res.code == 0, res.err
    return res.out


@contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"a size-limited tmpfs cannot be mounted here (needs root): {res.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path, leave: int) -> Path:
    """Fill the filesystem of ``folder`` up to ``leave`` free bytes; returns the filler (not a note:
    it lives in .git, which gitsync never reads as notes)."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / ".git" / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))
    return filler


def _head_notes(folder: Path) -> set[str]:
    """The notes of the branch (what the next sync compares with), not of the folder."""
    return {p for p in git(folder, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
            if p != ".gitattributes"}


def _same(expected: Mapping[str, bytes], *folders: Path) -> None:
    for folder in folders:
        assert read_notes(folder) == expected, folder


def _lines_for(res: Result, *paths: str) -> None:
    for path in paths:
        assert any(line.startswith(f"ERROR: {path}: not ") for line in res.lines), (path, res.err)


# ---------------------------------------------------------------------------------- disk full


def test_client_disk_full_leaves_notes_pending_and_writes_them_when_space_is_back(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "a", "4m") as a, gitsync_server(tmp_path / "srv") as srv:
        b = tmp_path / "b"
        b.mkdir()
        write_notes(b, {"n1.txt": b"first\n", "other.txt": b"other\n"})
        _ok(_sync(b, srv.url))
        _ok(_sync(a, srv.url))
        filler = _fill(a, leave=256 * 1024)
        write_notes(b, {"big.txt": BIG, "n1.txt": EDIT})
        _ok(_sync(b))
        expected = {"big.txt": BIG, "n1.txt": EDIT, "other.txt": b"other\n"}

        res = _sync(a)
        assert res.code == 1, res.err
        _lines_for(res, "big.txt", "n1.txt")
        assert "No space left on device" in res.err and "free some space" in res.err
        assert read_notes(a) == {"n1.txt": b"first\n", "other.txt": b"other\n"}
        status = _status(a)
        assert "big.txt: not written" in status and "n1.txt: not written" in status

        res = _sync(a)  # still full: nothing is read as a deletion or a revert
        assert res.code == 1, res.err
        _same(expected, srv.dir, b)
        assert _head_notes(a) == set(expected)

        filler.unlink()
        _ok(_sync(a))
        _same(expected, a, srv.dir)
        _ok(_sync(b))
        _same(expected, b)
        assert "Not yet written" not in _status(a)
        assert git(a, "status", "--porcelain") == ""


def test_server_disk_full_its_next_session_does_not_commit_a_delete(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "srv", "4m") as srv_dir, gitsync_server(srv_dir) as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        write_notes(a, {"n1.txt": b"first\n"})
        _ok(_sync(a, srv.url))
        _ok(_sync(b, srv.url))
        filler = _fill(srv_dir, leave=256 * 1024)
        write_notes(a, {"big.txt": BIG, "n1.txt": EDIT})
        _ok(_sync(a))  # the client has no way to know; the server records and logs it
        expected = {"big.txt": BIG, "n1.txt": EDIT}
        peers.wait_settled(srv_dir)
        assert read_notes(srv_dir) == {"n1.txt": b"first\n"}
        status = _status(srv_dir)
        assert "big.txt: not written (No space left on device)" in status
        assert "n1.txt: not written" in status

        _ok(_sync(b))  # the server's next session reads the folder: no delete, no revert
        _same(expected, b)
        _ok(_sync(a))
        _same(expected, a)
        assert _head_notes(srv_dir) == set(expected)

        filler.unlink()
        _ok(_sync(b))  # this session writes them first
        _same(expected, srv_dir, a, b)
        assert "Not yet written" not in _status(srv_dir)


# ----------------------------------------------------------------------- permissions, read-only


def _chattr(flag: str, path: Path) -> None:
    res = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"chattr {flag} is not available here: {res.stderr.strip()}")


def test_folder_we_may_not_write_edits_adds_and_deletes_wait(tmp_path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    with gitsync_server(tmp_path / "srv") as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        write_notes(b, {"d/keep.txt": b"keep\n", "d/gone.txt": b"gone\n", "top.txt": b"top\n"})
        _ok(_sync(b, srv.url))
        _ok(_sync(a, srv.url))
        write_notes(b, {"d/keep.txt": b"keep, edited\n", "d/gone.txt": None, "d/new.txt": b"new\n"})
        _ok(_sync(b))
        expected = {"d/keep.txt": b"keep, edited\n", "d/new.txt": b"new\n", "top.txt": b"top\n"}
        _chattr("+i", a / "d")  # immutable: even root gets EPERM
        try:
            res = _sync(a)
            assert res.code == 1, res.err
            _lines_for(res, "d/keep.txt", "d/new.txt", "d/gone.txt")
            assert "d/gone.txt: not deleted (Operation not permitted)" in res.err
            res = _sync(a)
            assert res.code == 1, res.err
            _same(expected, srv.dir, b)  # gone.txt not brought back, keep.txt not reverted
        finally:
            _chattr("-i", a / "d")
        _ok(_sync(a))
        _same(expected, a, srv.dir)
        _ok(_sync(b))
        _same(expected, b)


def test_read_only_mount_in_the_folder(tmp_path: Path) -> None:
    with gitsync_server(tmp_path / "srv") as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        with _tmpfs(a / "ro", "1m") as ro:
            write_notes(a, {"ro/x.txt": b"x\n"})
            _ok(_sync(a, srv.url))
            _ok(_sync(b, srv.url))
            write_notes(b, {"ro/x.txt": b"x, edited\n", "ro/y.txt": b"y\n"})
            _ok(_sync(b))
            expected = {"ro/x.txt": b"x, edited\n", "ro/y.txt": b"y\n"}
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
            res = _sync(a)
            assert res.code == 1, res.err
            _lines_for(res, "ro/x.txt", "ro/y.txt")
            assert "Read-only file system" in res.err and "mount the notes folder read-write" in res.err
            res = _sync(a)
            assert res.code == 1, res.err
            _same(expected, srv.dir, b)
            subprocess.run(["mount", "-o", "remount,rw", str(ro)], check=True)
            _ok(_sync(a))
            _same(expected, a, srv.dir)


# ------------------------------------------------------------------------------ in the way


def _obstruct(a: Path, kind: str, outside: Path) -> tuple[list[str], object]:
    """Put something in the way of ``x.txt`` / ``d/...``; returns the paths it blocks and an undo."""
    if kind == "folder":
        (a / "x.txt").mkdir()
        return ["x.txt"], lambda: (a / "x.txt").rmdir()
    if kind == "symlink":
        (a / "x.txt").symlink_to(outside / "target.txt")
        return ["x.txt"], lambda: (a / "x.txt").unlink()
    if kind == "fifo":
        shutil.rmtree(a / "d")
        os.mkfifo(a / "d")
        return ["d/y.txt", "d/z.txt"], lambda: ((a / "d").unlink(), write_notes(a, {"d/y.txt": b"y\n"}))
    assert kind == "symlinked-folder"  # the folder moved elsewhere, a symlink left in its place
    shutil.move(a / "d", outside / "d")
    (a / "d").symlink_to(outside / "d")
    return ["d/y.txt", "d/z.txt"], lambda: ((a / "d").unlink(), shutil.move(outside / "d", a / "d"))


@pytest.mark.parametrize("kind", ["folder", "symlink", "fifo", "symlinked-folder"])
def test_something_in_the_way(kind: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with gitsync_server(tmp_path / "srv") as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        write_notes(b, {"d/y.txt": b"y\n", "top.txt": b"top\n"})
        _ok(_sync(b, srv.url))
        _ok(_sync(a, srv.url))
        blocked, undo = _obstruct(a, kind, outside)
        write_notes(b, {"x.txt": b"x from b\n", "d/y.txt": b"y, edited\n", "d/z.txt": b"z\n"})
        _ok(_sync(b))
        expected = {"x.txt": b"x from b\n", "d/y.txt": b"y, edited\n", "d/z.txt": b"z\n", "top.txt": b"top\n"}
        res = _sync(a)
        assert res.code == 1, res.err
        _lines_for(res, *blocked)
        assert "is in the way" in res.err and "move what is in the way elsewhere" in res.err
        assert _sync(a).code == 1
        _same(expected, srv.dir, b)
        undo()  # type: ignore[operator]
        _ok(_sync(a))
        _same(expected, a, srv.dir)
        _ok(_sync(b))
        _same(expected, b)


def test_the_users_own_file_at_that_path_wins_and_syncs_as_an_edit(tmp_path: Path) -> None:
    with gitsync_server(tmp_path / "srv") as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        write_notes(b, {"top.txt": b"top\n"})
        _ok(_sync(b, srv.url))
        _ok(_sync(a, srv.url))
        (a / "x.txt").mkdir()
        write_notes(b, {"x.txt": b"x from b\n", "top.txt": b"top from b\n"})
        _ok(_sync(b))
        assert _sync(a).code == 1
        (a / "x.txt").rmdir()
        write_notes(a, {"x.txt": b"x, my own\n"})  # the user's note at that path, written meanwhile
        res = _ok(_sync(a))
        assert "your version is kept" in res.err
        expected = {"x.txt": b"x, my own\n", "top.txt": b"top from b\n"}
        _same(expected, a, srv.dir)
        _ok(_sync(b))
        _same(expected, b)
        assert b"x from b" in git(a, "log", "-p", "--", "x.txt").encode()  # the peer's version: in history


# ---------------------------------------------------------------------------------- kill -9


def test_kill9_while_writing_the_pending_notes(tmp_path: Path) -> None:
    from tests.crash.harness import child_env, gitsync_argv

    with gitsync_server(tmp_path / "srv") as srv:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        write_notes(b, {"top.txt": b"top\n"})
        _ok(_sync(b, srv.url))
        _ok(_sync(a, srv.url))
        (a / "x.txt").mkdir()
        (a / "sub").symlink_to(tmp_path)
        write_notes(b, {"x.txt": b"x\n", "sub/y.txt": b"y\n", "top.txt": b"top, edited\n"})
        _ok(_sync(b))
        expected = {"x.txt": b"x\n", "sub/y.txt": b"y\n", "top.txt": b"top, edited\n"}
        assert _sync(a).code == 1
        (a / "x.txt").rmdir()
        (a / "sub").unlink()
        proc = subprocess.run(gitsync_argv("sync", str(a), "-q"), capture_output=True,
                              env=child_env({"GITSYNC_CRASH_AT": "unwritten-retried:1"}), timeout=60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        res = _ok(_sync(a))
        _same(expected, a, srv.dir)
        assert "Not yet written" not in _status(a)
        _ok(_sync(b))
        _same(expected, b)
        assert res.code == 0


def test_server_killed_while_writing_its_pending_notes(tmp_path: Path) -> None:
    from tests.crash.harness import HOST, child_env, free_port, gitsync_argv, wait_port

    srv_dir, a, b = tmp_path / "srv", tmp_path / "a", tmp_path / "b"
    for folder in (srv_dir, a, b):
        folder.mkdir()
    with gitsync_server(srv_dir) as srv:
        write_notes(a, {"top.txt": b"top\n"})
        _ok(_sync(a, srv.url))
        _ok(_sync(b, srv.url))
        (srv_dir / "x.txt").symlink_to(tmp_path / "elsewhere.txt")
        write_notes(a, {"x.txt": b"x from a\n", "top.txt": b"top, edited\n"})
        _ok(_sync(a))
        peers.wait_settled(srv_dir)
    expected = {"x.txt": b"x from a\n", "top.txt": b"top, edited\n"}
    assert "x.txt: not written (a symlink is in the way)" in _status(srv_dir)
    (srv_dir / "x.txt").unlink()
    port = free_port()
    argv = gitsync_argv("serve", str(srv_dir), "--listen", str(port))
    killed = subprocess.run(argv, capture_output=True, timeout=60,
                            env=child_env({"GITSYNC_CRASH_AT": "unwritten-retried:1"}))
    assert killed.returncode == -signal.SIGKILL, killed.stderr  # died writing x.txt on start
    proc = subprocess.Popen(argv, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port, proc)
        _ok(cli("runner", "sync", b, "--remote", f"http://{HOST}:{port}/"))
        _same(expected, srv_dir, b)
        _ok(cli("runner", "sync", a, "--remote", f"http://{HOST}:{port}/"))
        _same(expected, a)
        assert _head_notes(srv_dir) == set(expected)
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Not yet written" not in _status(srv_dir)
