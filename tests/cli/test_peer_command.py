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


def test_forgetting_a_device_on_the_server_removes_its_login_nonce(tmp_path: Path) -> None:
    from gitsync.protocol.constants import AUTH_MD5

    users = {"alice": "correct horse", "bob": "battery staple"}
    server = tmp_path / "server"
    with gitsync_server(server, users=users, auth_type=AUTH_MD5) as srv:
        for device, user in (("Alice's Phone", "alice"), ("bob-laptop", "bob")):
            client = tmp_path / device
            write_notes(client, {f"{user}.txt": b"hi\n"})
            res = cli("script", "sync", client, "-r", srv.url, "-i", device, "-u", user,
                      env={"GITSYNC_PASSWORD": users[user]})
            assert res.code == 0, res.err
    nonces = server / ".git" / "gitsync" / "nonces"

    def stored() -> list[str]:
        return sorted(str(p.relative_to(nonces)).split("/")[0] for p in nonces.rglob("*") if p.is_file())

    assert stored() == ["device-alice-s-phone", "device-bob-laptop"]
    res = cli("script", "peer", "forget", server, "device-alice-s-phone")
    assert res.code == 0 and "its login nonce" in res.out, res
    assert stored() == ["device-bob-laptop"]
    assert _traces(server, "alice-s-phone") == ""
    assert peers.read_notes(server) == {"alice.txt": b"hi\n", "bob.txt": b"hi\n"}
