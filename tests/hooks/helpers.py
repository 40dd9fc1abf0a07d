"""Helpers for the hook tests: real `git commit`, waiting for the background sync, a hanging server."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.helpers import LOCALHOST

__all__ = ["HangingServer", "commit", "hook_log", "wait_for_log", "wait_idle"]


def commit(
    root: Path, message: str, *, env: dict[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """``git add -A && git commit`` as a user runs it (output captured); returns (seconds, result)."""
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    t0 = time.monotonic()
    res = subprocess.run(
        ["git", "commit", "-q", "-m", message], cwd=root, capture_output=True, text=True, env=env, timeout=30
    )
    return time.monotonic() - t0, res


def hook_log(root: Path) -> str:
    path = root / ".git" / "gitsync-hook.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def wait_for_log(root: Path, needle: str, *, count: int = 1, timeout: float = 60.0) -> str:
    """Wait until the hook log holds ``needle`` ``count`` times; return the log."""
    deadline = time.monotonic() + timeout
    while True:
        text = hook_log(root)
        if text.count(needle) >= count:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in the hook log after {timeout:g} s:\n{text}")
        time.sleep(0.05)


def wait_idle(root: Path, timeout: float = 60.0) -> None:
    """Wait until no gitsync process holds the repository lock (the background sync ended)."""
    deadline = time.monotonic() + timeout
    fd = os.open(root / ".git" / "gitsync.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("the background sync still holds the lock") from None
                time.sleep(0.05)
    finally:
        os.close(fd)


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers; closes them all on exit."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((LOCALHOST, 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        for conn in self.accepted:
            conn.close()
        self._thread.join(timeout=5)
