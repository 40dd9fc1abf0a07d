"""After wrong passwords the server refuses logins for a while: the client says so, and when."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import git, write_notes
from tests.cli.helpers import cli, gitsync_server, repo_snapshot


def test_too_many_failed_logins_says_when_to_retry(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q")
    with gitsync_server(tmp_path / "server", users={"alice": "right"}) as srv:
        args = ("sync", client, "-r", srv.url, "-i", "dev-throttle", "-u", "alice")
        for _ in range(5):
            res = cli("script", *args, "-p", "wrong")
            assert res.code == 1, res.err
            if "too many failed logins" in res.err:
                break
        before = repo_snapshot(client)
        res = cli("script", *args, "-p", "right")
    assert res.code == 1, res.err
    assert "Traceback" not in res.err and len(res.lines) == 1, res.err
    line = res.lines[0]
    assert "too many failed logins" in line and "retry in " in line and " s (status 417)" in line, line
    assert repo_snapshot(client) == before
    assert not (tmp_path / "server" / "a.txt").exists()
