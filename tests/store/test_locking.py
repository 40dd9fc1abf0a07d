"""``RepoLock``: one holder per repository, re-entrant for it, and the holder's first work runs once."""

from __future__ import annotations

import time
from pathlib import Path

from gitsync.store.locking import RepoLock


def test_one_holder_re_entrant_on_acquire_once(tmp_path: Path) -> None:
    calls: list[str] = []
    ours = RepoLock(tmp_path, lambda: calls.append("ours"))
    other = RepoLock(tmp_path, lambda: calls.append("other"))  # another open file: as another process
    with ours.hold(0.0) as held:
        assert held and ours.held
        with ours.hold(0.0) as again:
            assert again
        assert ours.held and calls == ["ours"]
        started = time.monotonic()
        with other.hold(0.2) as got:
            assert not got and not other.held
        assert time.monotonic() - started >= 0.2
    assert not ours.held
    with other.hold(0.0) as got:
        assert got
    assert calls == ["ours", "other"]


def test_an_error_in_the_first_work_releases_the_lock(tmp_path: Path) -> None:
    def fail() -> None:
        raise OSError("disk full")

    failing = RepoLock(tmp_path, fail)
    try:
        with failing.hold(0.0):
            raise AssertionError("not reached")
    except OSError:
        pass
    assert not failing.held
    with RepoLock(tmp_path, lambda: None).hold(0.0) as got:
        assert got
