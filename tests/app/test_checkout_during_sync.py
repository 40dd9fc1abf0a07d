"""``git checkout`` of another branch while a sync runs (issue 15).

The user switches branches between the client's messages (the real server holds its answer while the
real git CLI checks out the other branch).  The sync must then commit nothing on either branch, say
which branch was checked out when it began and which is now, and leave the user's edits where they
can be found: they are in the sync's "local changes" commit on the branch they were made on (no
longer checked out, so no work tree to put them back into); the next sync from that branch sends
them.  Through the console script against a server over real HTTP.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gitsync.app.server import SyncServer
from gitsync.store.git import GitStore
from gitsync.transport.serve import make_http_server
from tests.cli.helpers import cli
from tests.helpers import LOCALHOST, git, read_notes, serve_in_thread, write_notes


@contextmanager
def server_that_switches(folder: Path, client: Path, *, at_request: int) -> Iterator[tuple[str, list[int]]]:
    """A real server whose ``at_request``-th request first runs ``git checkout side`` in ``client``."""
    server = SyncServer(GitStore.open(folder))
    inner = server.wsgi_app()
    seen: list[int] = []
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        with lock:
            seen.append(len(seen) + 1)
            if len(seen) == at_request:
                git(client, "checkout", "-q", "side", settle=False)
        return inner(environ, start_response)

    try:
        with serve_in_thread(make_http_server(app, LOCALHOST, 0)) as port:
            yield f"http://{LOCALHOST}:{port}/notes", seen
    finally:
        server.close()


def state_refs(root: Path) -> list[str]:
    """Our refs but the stat cache's (``refs/gitsync/worktree`` moves with every scan)."""
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/gitsync/", settle=False)
    return [line for line in out.splitlines() if not line.startswith("refs/gitsync/worktree ")]


@pytest.mark.parametrize("server_news", [True, False], ids=["server-has-news", "server-has-nothing"])
def test_checkout_of_another_branch_during_a_sync(tmp_path: Path, server_news: bool) -> None:
    client, server = tmp_path / "client", tmp_path / "server"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q", "-b", "main")
    write_notes(server, {"s.txt": b"from the server\n"})
    with server_that_switches(server, client, at_request=0) as (url, _):
        res = cli("script", "sync", client, "-r", url, "-i", "dev-co", "-q")
        assert res.code == 0, res.err
    git(client, "branch", "side")
    write_notes(client, {"a.txt": b"a edited on main\n", "new.txt": b"a new note\n"})  # not committed
    if server_news:
        write_notes(server, {"s2.txt": b"news\n"})
    states = state_refs(client)
    main_before = git(client, "rev-parse", "main").strip()
    side = git(client, "rev-parse", "side").strip()

    with server_that_switches(server, client, at_request=2) as (url, seen):
        res = cli("script", "sync", client, "-r", url)
    assert len(seen) >= 2
    assert res.code == 1, res.out + res.err
    assert "Traceback" not in res.err and len(res.err.splitlines()) == 1, res.err
    # the error names the branch the sync began on and the one checked out now, not "side moved"
    assert "refs/heads/main" in res.err and "refs/heads/side" in res.err, res.err
    assert "side moved" not in res.err, res.err
    # nothing of the server's reached either branch or the work tree, no state advanced
    assert git(client, "symbolic-ref", "HEAD").strip() == "refs/heads/side"
    assert git(client, "rev-parse", "side").strip() == side
    assert read_notes(client) == {"a.txt": b"a\n", "s.txt": b"from the server\n"}
    assert git(client, "status", "--porcelain").strip() == ""
    assert state_refs(client) == states
    # the edits are the one "local changes" commit on main, which the error points to
    local = git(client, "rev-parse", "main").strip()
    assert git(client, "rev-parse", "main~1").strip() == main_before
    assert git(client, "log", "-1", "--format=%s", "main").startswith("gitsync: local changes")
    assert git(client, "show", "main:new.txt") == "a new note\n"
    assert local[:12] in res.err, res.err
    # back on main, the next sync sends them and takes the server's news
    git(client, "checkout", "-q", "main")
    with server_that_switches(server, client, at_request=0) as (url, _):
        res = cli("script", "sync", client, "-r", url, "-q")
    assert res.code == 0, res.err
    want = {"a.txt": b"a edited on main\n", "new.txt": b"a new note\n", "s.txt": b"from the server\n"}
    if server_news:
        want["s2.txt"] = b"news\n"
    assert read_notes(client) == want
    assert read_notes(server) == want
