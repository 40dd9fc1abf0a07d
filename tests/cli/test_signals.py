"""Signals and pipes through the installed console script, as a shell delivers them.

A sync stopped by Ctrl-C, SIGTERM or SIGHUP says so in one line, exits 128 + n, and takes its
"local changes" commit back (the edits stay in the work tree, uncommitted); a reader that closes
the pipe early (``status | head -1``) gets no complaint.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import peers
from tests.cli.helpers import repo_snapshot
from tests.helpers import LOCALHOST, git, write_notes


@contextmanager
def _stalling_server() -> Iterator[tuple[str, socket.socket]]:
    """Accepts connections and never answers (a server or proxy that hangs)."""
    sock = socket.socket()
    sock.bind((LOCALHOST, 0))
    sock.listen(5)
    try:
        yield f"http://{LOCALHOST}:{sock.getsockname()[1]}/", sock
    finally:
        sock.close()


def _folder_with_edits(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    write_notes(notes, {"a.txt": b"a\n", "b.txt": b"b\n"})
    git(notes, "init", "-q", "-b", "main")
    git(notes, "add", "-A")
    git(notes, "commit", "-qm", "mine")
    write_notes(notes, {"a.txt": b"a edited\n", "new.txt": b"new\n"})  # uncommitted
    return notes


def _as_from_a_terminal() -> None:
    """The child starts with SIGINT and SIGHUP at their defaults, as from a terminal: a suite run in
    the background (``nohup``, ``cmd &``) hands them down ignored, and a sync started that way stays
    immune to them on purpose (gitsync.process.catch_signals)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_a_sync_and_takes_its_commit_back(tmp_path: Path, sig: signal.Signals) -> None:
    notes = _folder_with_edits(tmp_path)
    before = repo_snapshot(notes)
    head = git(notes, "rev-parse", "HEAD").strip()
    with _stalling_server() as (url, sock):
        proc = subprocess.Popen(
            [*peers.gitsync_command(), "sync", str(notes), "-r", url, "-i", "dev-sig", "--timeout", "60"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_as_from_a_terminal,
        )
        try:
            sock.settimeout(0.2)
            deadline = time.monotonic() + 60
            while True:  # the first message is on its way
                try:
                    conn, _ = sock.accept()
                    break
                except TimeoutError:
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "the sync never connected"
            while git(notes, "rev-parse", "HEAD").strip() == head:  # the "local changes" commit
                assert time.monotonic() < deadline, "no local-changes commit"
                time.sleep(0.05)
            assert "local changes" in git(notes, "log", "-1", "--format=%s")
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
            conn.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    word = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}[sig]
    assert lines == [f"gitsync-notes: {word} ({sig.name}); an unfinished sync changed nothing"], err
    assert out == ""
    after = repo_snapshot(notes)
    assert after["head"] == before["head"]  # the commit is taken back ...
    assert after["files"] == before["files"]  # ... the edits are where they were, uncommitted
    assert after["status"] == before["status"]
    # status tells that the attempt was stopped, not the previous result
    res = subprocess.run([*peers.gitsync_command(), "status", str(notes)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"FAILED: {word}" in res.stdout, res.stdout


def test_closed_pipe_is_silent(tmp_path: Path) -> None:
    notes = _folder_with_edits(tmp_path)
    for _ in range(200):  # enough output that the pipe fills after the reader left
        (notes / f"n{_:03}.txt").write_bytes(b"x\n")
    git(notes, "add", "-A")
    git(notes, "commit", "-qm", "many")
    for args in (["status", str(notes)], ["sync", str(notes), "--local"], ["log", str(notes)]):
        proc = subprocess.Popen([*peers.gitsync_command(), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.close()  # `| head -0`
        err = proc.stderr.read() if proc.stderr else b""
        code = proc.wait(timeout=60)
        assert err == b"", (args, err)
        assert code in (0, 141), (args, code)
