"""Lock files a killed process leaves behind: which ones the next sync removes, and when.

* ``.git/gitsync.lock`` is an ``flock``: the kernel drops it with its holder, the file never blocks.
* ``.git/index.lock`` taken by gitsync is a hard link of ``.git/gitsync/index.lock.<pid>``: a gitsync
  killed while holding it is recognised (its mark, and no gitsync holding the repository lock) and
  the lock is removed at once; one that is not gitsync's (``git commit`` with its editor open) is
  never removed -- the sync stops with a message instead.
* Ref lock files: gitsync's own (``refs/gitsync/**.lock``) are stale after a few seconds, Git's
  (``refs/heads/*.lock``) after ten minutes; until then the sync stops cleanly and changes nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitsync.errors import GitsyncError
from gitsync.store.git import STALE_FOREIGN_LOCK_SECONDS, STALE_GITSYNC_LOCK_SECONDS
from tests.crash.harness import (
    PEER,
    REPO_ROOT,
    check_repo,
    child_env,
    client_sync,
    read_notes,
    thread_server,
)
from tests.helpers import free_port, write_notes

KILLED_HOLDING_INDEX_LOCK = """
import os, signal, sys
from gitsync.store.git import GitStore
store = GitStore.open(sys.argv[1])
with store.lock():
    with store._user_index(required=True):
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    client, server = tmp_path / "client", tmp_path / "server"
    client.mkdir()
    server.mkdir()
    write_notes(client, {"a.txt": b"a\n"})
    return client, server


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_flock_file_never_blocks(tmp_path: Path) -> None:
    client, server = _setup(tmp_path)
    with thread_server(server, free_port()) as url:
        client_sync(client, url)
        assert (client / ".git" / "gitsync.lock").exists()  # the file stays; the lock went with its process
        write_notes(client, {"b.txt": b"b\n"})
        client_sync(client, url)
    assert read_notes(server) == {"a.txt": b"a\n", "b.txt": b"b\n"}


def test_index_lock_of_a_killed_gitsync_is_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client, server = _setup(tmp_path)
    with thread_server(server, free_port()) as url:
        client_sync(client, url)
        proc = subprocess.run(
            [sys.executable, "-c", KILLED_HOLDING_INDEX_LOCK, str(client)],
            env=child_env(),
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert (client / ".git" / "index.lock").exists()
        marks = list((client / ".git" / "gitsync").glob("index.lock.*"))
        assert len(marks) == 1 and marks[0].suffix.lstrip(".").isdigit()  # .../index.lock.<pid>
        write_notes(client, {"b.txt": b"b\n"})
        caplog.set_level(logging.WARNING)
        client_sync(client, url)
        assert "left by gitsync process" in caplog.text
    assert read_notes(server) == {"a.txt": b"a\n", "b.txt": b"b\n"}
    assert check_repo(client, "client") == []


def test_a_foreign_index_lock_is_never_removed(tmp_path: Path) -> None:
    client, server = _setup(tmp_path)
    with thread_server(server, free_port()) as url:
        client_sync(client, url)
        lock = client / ".git" / "index.lock"
        lock.write_bytes(b"")  # git commit, its editor open
        _age(lock, 3600)
        write_notes(client, {"b.txt": b"b\n"})
        with pytest.raises(GitsyncError, match=r"index\.lock"):
            client_sync(client, url)
        assert lock.exists()
        assert read_notes(server) == {"a.txt": b"a\n"}
        lock.unlink()
        client_sync(client, url)
    assert read_notes(server) == {"a.txt": b"a\n", "b.txt": b"b\n"}


@pytest.mark.parametrize(
    ("ref", "stale_after"),
    [(f"refs/gitsync/{PEER}", STALE_GITSYNC_LOCK_SECONDS), ("refs/heads/main", STALE_FOREIGN_LOCK_SECONDS)],
)
def test_ref_lock_left_by_a_crash(tmp_path: Path, ref: str, stale_after: float) -> None:
    client, server = _setup(tmp_path)
    with thread_server(server, free_port()) as url:
        client_sync(client, url)
        write_notes(client, {"b.txt": b"b\n"})
        lock = client / ".git" / f"{ref}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(b"0" * 40 + b"\n")
        # fresh: it may belong to a live process; the sync stops and saves nothing
        with pytest.raises(GitsyncError):
            client_sync(client, url)
        assert read_notes(client)["b.txt"] == b"b\n"
        # old enough to be a crash's leftover: removed, and the sync goes through
        _age(lock, stale_after + 1)
        client_sync(client, url)
        assert not lock.exists()
    assert read_notes(server) == {"a.txt": b"a\n", "b.txt": b"b\n"}
    assert check_repo(client, "client") == []


def test_config_lock_left_by_a_killed_cli(tmp_path: Path) -> None:
    """A CLI killed while remembering its settings leaves Git's config.lock: the next sync still works
    (it only warns that it could not remember them), and once the lock is old it is removed."""
    from tests.crash.harness import DEVICE, gitsync_argv

    client, server = _setup(tmp_path)
    lock = client / ".git" / "config.lock"
    with thread_server(server, free_port()) as url:
        client_sync(client, url)
        lock.write_bytes(b"")
        write_notes(client, {"b.txt": b"b\n"})
        argv = gitsync_argv("sync", str(client), "--remote", url, "--id", DEVICE, "--peer", PEER)
        proc = subprocess.run(
            argv, env=child_env(), cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "not remembered" in proc.stderr
        assert read_notes(server) == {"a.txt": b"a\n", "b.txt": b"b\n"}
        _age(lock, STALE_FOREIGN_LOCK_SECONDS + 1)
        proc = subprocess.run(
            argv, env=child_env(), cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert not lock.exists()
    remembered = subprocess.run(
        ["git", "-C", str(client), "config", "gitsync.remote"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert remembered == url
