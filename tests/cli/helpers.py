"""Running ``gitsync-notes`` two ways (click's CliRunner in process, and the installed console
script as a user would), a gitsync server on 127.0.0.1 in a thread, and repository snapshots."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from gitsync.app.server import ServerOptions, SyncServer
from gitsync.cli import main
from gitsync.store.git import GitStore
from gitsync.transport.serve import make_http_server
from tests import peers
from tests.helpers import LOCALHOST, read_notes, serve_in_thread

__all__ = ["HOWS", "Result", "cli", "gitsync_server", "repo_snapshot"]

#: the two ways every CLI test runs
HOWS = ("runner", "script")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """Non-empty lines of stderr."""
        return [line for line in self.err.splitlines() if line.strip()]


def cli(how: str, *args: str | os.PathLike[str], input: str | None = None,
        env: Mapping[str, str] | None = None, timeout: float = 60) -> Result:
    """``gitsync-notes ARGS`` through click's CliRunner (``how="runner"``) or the console script."""
    argv = [str(a) for a in args]
    if how == "runner":
        res = CliRunner().invoke(main, argv, input=input, env=dict(env or {}), catch_exceptions=True)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception  # a traceback a user would see: fail the test with it
        return Result(res.exit_code, res.stdout, res.stderr)
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*peers.gitsync_command(), *argv],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class ServerHandle:
    url: str
    dir: Path
    reports: list[object]


@contextmanager
def gitsync_server(folder: Path, **options: object) -> Iterator[ServerHandle]:
    """A gitsync server for ``folder`` on a free port of 127.0.0.1, in a thread; always stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    # the server shares this process with CliRunner's client: keep its log out of the client's stderr
    quiet = [logging.getLogger(name) for name in ("gitsync.app.server", "gitsync.protocol.server")]
    saved = [(lg.propagate, lg.level) for lg in quiet]
    mute = logging.NullHandler()
    for lg in quiet:
        lg.propagate = False
        lg.addHandler(mute)
    reports: list[object] = []
    opts = ServerOptions(on_report=reports.append, **options)  # type: ignore[arg-type]
    server = SyncServer(GitStore.open(folder), opts)
    try:
        with serve_in_thread(make_http_server(server.wsgi_app(), LOCALHOST, 0)) as port:
            yield ServerHandle(f"http://{LOCALHOST}:{port}/", folder, reports)
    finally:
        server.close()  # what the last session left for after its answer
        for lg, (propagate, level) in zip(quiet, saved, strict=True):
            lg.propagate, lg.level = propagate, level
            lg.removeHandler(mute)


def repo_snapshot(folder: Path) -> dict[str, object]:
    """Everything a failed command must leave as it was: files, refs, HEAD, config, index status."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True).stdout

    return {
        "files": read_notes(folder),
        # every ref but the store's private cache of the last work-tree scan
        "refs": "".join(
            line + "\n"
            for line in git("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            if not line.startswith("refs/gitsync/worktree ")
        ),
        "head": git("symbolic-ref", "-q", "HEAD") + git("rev-parse", "-q", "--verify", "HEAD"),
        "config": git("config", "--local", "--list"),
        "status": git("status", "--porcelain", "--untracked-files=all"),
    }
