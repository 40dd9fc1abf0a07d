"""A mistyped server URL: the failed first sync remembers it for the retry, ``status`` suggests
``peer forget``, and ``peer forget`` removes every trace of the peer (never a note)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests import peers
from tests.app.helpers import write_notes
from tests.cli.helpers import cli, gitsync_server


def _traces(folder: Path, name: str) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True).stdout

    status = folder / ".git" / "gitsync-status"
    text = git("config", "--local", "--list") + git("for-each-ref", "refs/gitsync")
    text += status.read_text() if status.exists() else ""
    return "\n".join(line for line in text.splitlines() if name in line)


def test_typo_url_is_retried_then_forgotten(tmp_path: Path) -> None:
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    typo = f"http://127.0.0.1:{peers.free_port()}/"
    res = cli("script", "sync", client, "-r", typo, "-i", "dev-typo")
    assert res.code == 1 and "cannot reach" in res.err
    again = cli("script", "sync", client)  # the retry goes where the first try went
    assert again.code == 1 and typo in again.err, again.err
    name = typo.removeprefix("http://").rstrip("/").replace(":", "-")
    status = cli("script", "status", client)
    assert f"gitsync-notes peer forget {client} {name}" in status.out, status.out
    listed = cli("script", "peer", "list", client)
    assert listed.code == 0 and listed.out.startswith(name), listed.out
    with gitsync_server(tmp_path / "server") as srv:
        assert cli("script", "sync", client, "-r", srv.url).code == 0
        good = srv.url.removeprefix("http://").rstrip("/").replace(":", "-")
    res = cli("script", "peer", "forget", client, name)
    assert res.code == 0 and res.out.startswith(f"forgot {name}: "), res
    assert _traces(client, name) == ""
    assert peers.read_notes(client) == {"a.txt": b"a\n"}
    listed = cli("script", "peer", "list", client)
    assert [line.split()[0] for line in listed.out.splitlines()] == [good]
    res = cli("script", "peer", "forget", client, name)
    assert res.code == 2 and f"peers: {good}" in res.err, res
    # the real server is the default: forgetting it too leaves no server configured
    assert cli("script", "peer", "forget", client, good).code == 0
    assert _traces(client, good) == "" and "no peers yet" in cli("script", "peer", "list", client).out
