"""kill -9 the client, and separately the server, at every crash point of a sync; then sync again.

One trial per (side, point): the fast, deterministic subset of benchmarks/soak_crash.py.  Each trial
checks that both sides end with exactly the expected notes, ``git fsck`` is clean, nothing is left
uncommitted, no journal ref or lock file is left, and a further sync has nothing to do (see
tests/crash/harness.py).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.crash.harness import (
    CLIENT_POINTS,
    DEVICE,
    PEER,
    SERVER_POINTS,
    Trial,
    child_env,
    client_sync,
    gitsync_argv,
    read_notes,
    run_trial,
    thread_server,
)
from tests.helpers import free_port, write_notes

TRIALS = [Trial(100 + i, "client", p, n) for i, (p, n) in enumerate(CLIENT_POINTS)] + [
    Trial(200 + i, "server", p, n) for i, (p, n) in enumerate(SERVER_POINTS)
]


@pytest.mark.parametrize("trial", TRIALS, ids=[t.label.replace(" ", "-") for t in TRIALS])
def test_kill9_then_sync_again(trial: Trial, tmp_path: Path) -> None:
    out = run_trial(trial, tmp_path)
    assert out.killed, (
        f"{trial.label}: the process was not killed (exit {out.exit_code}); is the point reached?"
    )
    assert out.ok, "\n".join(out.problems)


def test_crash_point_is_a_real_sigkill(tmp_path: Path) -> None:
    """The hook kills without cleanup: the exit status is -SIGKILL and nothing past the point ran."""
    client, server = tmp_path / "client", tmp_path / "server"
    client.mkdir()
    server.mkdir()
    write_notes(client, {"a.txt": b"a\n"})
    with thread_server(server, free_port()) as url:
        argv = gitsync_argv("sync", str(client), "--remote", url, "--id", DEVICE, "--peer", PEER, "-q")
        proc = subprocess.run(
            argv,
            env=child_env({"GITSYNC_CRASH_AT": "client-finish:1"}),
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == -signal.SIGKILL
        # the server finished its side; the client saved nothing (no state ref), so its note is
        # still only in its own history and on the server
        assert read_notes(server) == {"a.txt": b"a\n"}
        refs = subprocess.run(
            ["git", "-C", str(client), "for-each-ref", "refs/gitsync"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "refs/gitsync/srv" not in refs
        # and the next sync completes it without duplicating the note
        client_sync(client, url)
        assert read_notes(client) == read_notes(server) == {"a.txt": b"a\n"}
