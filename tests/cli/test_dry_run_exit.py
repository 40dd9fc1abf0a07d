"""``sync --dry-run`` exits as the real sync would: a guard that would stop it is exit 1."""

from __future__ import annotations

from pathlib import Path

from tests.app.helpers import write_notes
from tests.cli.helpers import cli, gitsync_server, repo_snapshot


def test_dry_run_that_would_stop_exits_like_the_sync(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {f"n{i}.txt": b"x\n" for i in range(6)})
    with gitsync_server(tmp_path / "server") as srv:
        assert cli("script", "sync", client, "-r", srv.url, "-i", "dev-dry").code == 0
        write_notes(client, {f"n{i}.txt": None for i in range(5)})  # most notes deleted
        before = repo_snapshot(client)
        dry = cli("script", "sync", client, "--dry-run")
        assert repo_snapshot(client) == before
        real = cli("script", "sync", client)
    assert "It would STOP" in dry.out, dry.out
    assert dry.code == real.code == 1, (dry, real)
    fine = cli("script", "sync", client, "--dry-run", "--force-delete")
    assert fine.code == 0, fine
