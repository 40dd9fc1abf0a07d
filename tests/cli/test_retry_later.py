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
        before = {}
        for _ in range(8):  # each run may meet the back-off its predecessor started, or outlive it
            before = repo_snapshot(client)
            res = cli("script", *args, "-p", "wrong")
            assert res.code == 1, res.err
            if "too many failed logins" in res.err:
                break
    # (the right password meeting a longer back-off: tests/hostile/test_throttle_live.py)
    assert "Traceback" not in res.err and len(res.lines) == 1, res.err
    line = res.lines[0]
    assert "too many failed logins; retry in " in line and line.endswith(" s (status 417)"), line
    assert repo_snapshot(client) == before
    assert not (tmp_path / "server" / "a.txt").exists()
