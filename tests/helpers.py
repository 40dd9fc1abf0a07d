"""What many tests need: note folders written and read as bytes, the real git CLI, a free port, and
the shared folder (the real peers and captured messages; see ``tests/shared.py``).

One copy of each, imported by every test folder (``from tests.helpers import write_notes``).
"""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.shared import REPO_ROOT, locate_shared

__all__ = [
    "LOCALHOST",
    "REPO_ROOT",
    "SHARED",
    "captures",
    "free_port",
    "git",
    "needs_shared",
    "read_notes",
    "serve_in_thread",
    "shared_path",
    "wait_settled",
    "write_notes",
]

LOCALHOST = "127.0.0.1"

#: The shared folder, or None where the checkout has none beside it (never None under CI).
SHARED: Path | None = locate_shared()

needs_shared = pytest.mark.skipif(
    SHARED is None, reason="no shared/ folder beside the checkout (set GITSYNC_SHARED)"
)


def shared_path(*parts: str) -> Path:
    """A path inside the shared folder (inside ``../shared`` when there is none: it then does not exist)."""
    return (SHARED if SHARED is not None else REPO_ROOT.parent / "shared").joinpath(*parts)


def captures(folder: Path, *patterns: str) -> list[Path]:
    """The files under ``folder`` matching any of ``patterns``, sorted.

    Empty only when there is no shared folder at all (the tests using them skip); a shared folder
    whose captures are gone or moved is an error, so a parametrized test never shrinks silently.
    """
    found = sorted({path for pattern in patterns for path in folder.glob(pattern)})
    if not found and SHARED is not None:
        raise AssertionError(f"no file matches {patterns} under {folder} (shared folder {SHARED})")
    return found


# ------------------------------------------------------------------------------------------- notes
_STATE_DIRS = frozenset({".git", ".sync"})


def _journals(root: Path) -> bool:
    folder = root / ".git" / "refs" / "gitsync" / "journal"
    if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
        return True
    try:
        packed = (root / ".git" / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return " refs/gitsync/journal/" in packed


def wait_settled(root: Path, timeout: float = 10.0) -> None:
    """Wait until the gitsync folder ``root`` has no sync in progress (no journal ref).

    Our server answers a session's last message as soon as it is committed, and writes the notes
    it brought into its folder right after: a test that reads or edits a server folder just after
    a client finished must wait for that.  The journal exists from before the answer until the
    folder is written, so this never returns early.
    """
    deadline = time.monotonic() + timeout
    while _journals(Path(root)) and time.monotonic() < deadline:
        time.sleep(0.01)


def read_notes(dir: Path, *, skip_hidden: bool = True) -> dict[str, bytes]:
    """Every note file under ``dir``: relative POSIX path -> content.

    Never includes ``.git`` or ``.sync`` (pysyncml's state) folders or symlinks; with ``skip_hidden``
    also no other file or folder whose name starts with a dot.  Waits for a sync in progress.
    """
    root = Path(dir)
    wait_settled(root)
    notes: dict[str, bytes] = {}

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.name in _STATE_DIRS or (skip_hidden and entry.name.startswith(".")):
                continue
            if entry.is_symlink():
                continue
            if entry.is_dir():
                walk(entry)
            elif entry.is_file():
                notes[entry.relative_to(root).as_posix()] = entry.read_bytes()

    walk(root)
    return notes


def write_notes(root: Path, notes: Mapping[str, bytes | None]) -> None:
    """Create, overwrite (bytes) or delete (None) note files below ``root`` (made when missing)."""
    root = Path(root)
    wait_settled(root)
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in notes.items():
        path = root / rel
        if data is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# ------------------------------------------------------------------------------------- git, ports
def git(
    root: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None, settle: bool = True
) -> str:
    """Run the real git CLI in ``root`` and return its stdout.

    ``check``: a non-zero exit fails the test with git's stderr.  ``env`` is added to the
    environment.  ``settle`` first waits for a sync in progress in ``root`` (see wait_settled).
    """
    if settle:
        wait_settled(root)
    proc = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (the usual bind-to-0 race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(httpd: socketserver.BaseServer) -> Iterator[int]:
    """Run ``httpd`` (ours from ``make_http_server``, wsgiref's, ``http.server``'s) in a daemon
    thread for the ``with`` block and yield its port; then shut it down and close its socket."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
