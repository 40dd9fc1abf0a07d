"""Helpers for the Git store tests: real git CLI calls in a scrubbed environment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests import helpers

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Identity for commits made with the git CLI in tests (never the developer's).
CLI_IDENTITY = {
    "GIT_AUTHOR_NAME": "Cli User",
    "GIT_AUTHOR_EMAIL": "cli@example.invalid",
    "GIT_COMMITTER_NAME": "Cli User",
    "GIT_COMMITTER_EMAIL": "cli@example.invalid",
}


def git(root: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """The real git CLI in ``root`` as the CLI user (``tests.helpers.git``; no waiting for a sync:
    store tests leave journals on purpose)."""
    full_env = {**CLI_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    return helpers.git(root, *args, check=check, env=full_env, settle=False)


def status(root: Path) -> str:
    """``git status --porcelain -uall`` of ``root``."""
    return git(root, "status", "--porcelain", "--untracked-files=all")


def fsck_ok(root: Path) -> bool:
    """Whether ``git fsck --full`` finds no error (dangling objects are fine)."""
    full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", "-C", str(root), "fsck", "--full"], capture_output=True, text=True,
                          env=full_env, check=False)
    bad = [line for line in (proc.stdout + proc.stderr).splitlines()
           if line and not line.startswith(("dangling", "Checking", "notice"))]
    return proc.returncode == 0 and not bad


def write(root: Path, rel: str, data: bytes | str) -> Path:
    """Write a file below ``root``, creating folders."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def age_files(root: Path, seconds: float = 120.0) -> None:
    """Backdate every file below ``root`` (not .git) so no stat entry is racily clean."""
    past = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        if ".git" in dirnames:
            dirnames.remove(".git")
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that can import gitsync and tests."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, check=False)


def lock_files(root: Path) -> list[str]:
    """Every ``*.lock`` file below ``.git`` (a crash must not leave one that blocks git)."""
    gitdir = root / ".git"
    return sorted(str(p.relative_to(gitdir)) for p in gitdir.rglob("*.lock") if p.name != "gitsync.lock")
