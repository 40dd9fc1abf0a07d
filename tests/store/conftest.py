"""Fixtures for the Git store tests: every test gets a scrubbed Git environment.

``GIT_*`` variables are removed and HOME/XDG point into ``tmp_path`` so neither the developer's nor
the machine's git config (identity, init.defaultBranch, autocrlf...) can leak into a test; libgit2
computes its config search path once per process, so it is redirected as well.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from pygit2.enums import ConfigLevel

from gitsync.store.git import GitStore
from tests.store.helpers import age_files, write

_LEVELS = (ConfigLevel.GLOBAL, ConfigLevel.XDG, ConfigLevel.SYSTEM)


@pytest.fixture(autouse=True)
def git_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Scrub GIT_* and HOME; returns the fake home."""
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    search = pygit2.settings.search_path
    saved = {level: search[level] for level in _LEVELS}
    for level in _LEVELS:
        search[level] = str(home)
    try:
        yield home
    finally:
        for level, value in saved.items():
            search[level] = value


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    """A plain folder with nested notes (no repository yet), files older than any index."""
    root = tmp_path / "notes"
    write(root, "a.txt", "alpha\n")
    write(root, "sub/b.txt", "bravo\n")
    write(root, "sub/deep/c.txt", "charlie\n")
    write(root, "sub/gone.txt", "to be deleted\n")
    age_files(root)
    return root


@pytest.fixture
def store(notes: Path) -> GitStore:
    """A store created from ``notes`` (repository initialised, first commit made)."""
    return GitStore.open(notes)
