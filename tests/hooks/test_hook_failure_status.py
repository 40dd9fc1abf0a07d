"""``gitsync-notes status`` says why a background (hook) sync failed and what to do, not only that
it failed (issue 18): the hook, installed and fired by a real ``git commit``, cannot ask for a
password; the one remedy that reaches it is GITSYNC_PASSWORD in git commit's environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests import peers
from tests.helpers import write_notes
from tests.hooks.helpers import commit, wait_for_log, wait_idle


def test_status_shows_why_the_hook_sync_failed(tmp_path: Path) -> None:
    users = tmp_path / "users.txt"
    users.write_text("alice:secret\n", encoding="utf-8")
    root = tmp_path / "notes"
    write_notes(root, {"first.txt": b"first note\n"})
    env = {k: v for k, v in os.environ.items() if k != "GITSYNC_PASSWORD"}
    with peers.GitsyncServer(tmp_path / "server", extra=["--users", str(users)]) as server:
        peers.run_gitsync("sync", root, "-r", server.url, "-u", "alice", "-p", "secret", "-q")
        assert "installed" in peers.run_gitsync("hook", "install", root).stdout
        write_notes(root, {"second.txt": b"second note\n"})
        _seconds, done = commit(root, "second", env=env)
        assert done.returncode == 0 and done.stderr == "", done.stderr  # git commit is never failed
        wait_for_log(root, "failed")
        wait_idle(root)
        res = peers.run_gitsync("status", root)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        [line] = [line for line in res.stdout.splitlines() if "last attempt:" in line]
        assert re.search(
            r"\(hook\) FAILED: a password is needed for user 'alice' \(the hook asks no one: "
            r"set GITSYNC_PASSWORD where git commit runs, or sync by hand\)$",
            line,
        ), res.stdout
        assert "waiting to be sent: 1 change" in res.stdout
        # what status says to do works: the next commit with the password in its environment syncs
        write_notes(root, {"third.txt": b"third note\n"})
        _seconds, done = commit(root, "third", env={**env, "GITSYNC_PASSWORD": "secret"})
        assert done.returncode == 0, done.stderr
        wait_for_log(root, ": ok: sync with")
        wait_idle(root)
        res = peers.run_gitsync("status", root)
        assert "(hook) ok: sync with" in res.stdout and "FAILED" not in res.stdout, res.stdout
        assert "waiting to be sent: 0 changes" in res.stdout
    assert (tmp_path / "server" / "third.txt").read_bytes() == b"third note\n"
