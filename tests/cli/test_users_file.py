"""``gitsync-notes user add/remove`` and ``serve`` with a users file of hashes: the file a user gets
(mode 0600, no password in it), and syncs with basic and MD5 auth against it over real HTTP."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
from pathlib import Path

import pytest

from gitsync.app.server import ServerOptions
from gitsync.protocol.constants import AUTH_MD5
from gitsync.protocol.messages import Status
from gitsync.protocol.passwords import md5_secret, parse_entry
from tests import peers
from tests.cli.helpers import cli
from tests.cli.test_cli_options import _pty_run
from tests.helpers import read_notes, write_notes

PW = "Tr0ub4dor & 3: ünïcode"


def _add(users: Path, name: str, password: str, *extra: str, how: str = "runner") -> None:
    res = cli(how, "user", "add", users, name, "--password-stdin", *extra, input=password + "\n")
    assert res.code == 0, res.err
    assert password not in res.out + res.err


def test_user_add_writes_hashes_only_with_mode_0600(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# our family\ncarol:old-plain\n")
    users.chmod(0o644)
    _add(users, "alice", PW, "--md5")
    _add(users, "bob", PW, "--scheme", "sha512-crypt", how="script")
    _add(users, "carol", "new pw")  # changed in place
    lines = users.read_text().splitlines()
    assert lines[0] == "# our family" and [ln.split(":")[0] for ln in lines[1:]] == ["carol", "alice", "bob"]
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    text = users.read_text()
    assert PW not in text and "old-plain" not in text and "new pw" not in text
    alice = parse_entry(lines[2].partition(":")[2])
    assert alice.scheme == "bcrypt" and alice.check("alice", PW) and alice.md5 == md5_secret("alice", PW)
    bob = parse_entry(lines[3].partition(":")[2])
    assert bob.scheme == "sha512-crypt" and bob.check("bob", PW) and bob.md5 is None
    assert parse_entry(lines[1].partition(":")[2]).check("carol", "new pw")
    assert sorted(os.listdir(tmp_path)) == [".users.lock", "users"]  # no temporary file left
    res = cli("runner", "user", "remove", users, "bob")
    assert res.code == 0
    assert [ln.split(":")[0] for ln in users.read_text().splitlines()[1:]] == ["carol", "alice"]


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a/b", "with space", "x:y", "", "-rf", "é", "x" * 65])
def test_user_add_refuses_names_that_are_not_safe(tmp_path: Path, name: str) -> None:
    res = cli("script", "user", "add", "--password-stdin", "--", tmp_path / "users", name, input="pw\n")
    assert res.code == 2 and len(res.lines) == 1 and "user name" in res.err
    assert not (tmp_path / "users").exists()


def test_user_add_prompts_twice_without_echo(tmp_path: Path) -> None:
    users = tmp_path / "users"
    code, transcript = _pty_run(
        ["user", "add", str(users), "alice"],
        {"Password for alice:": PW, "Repeat for confirmation:": PW},
    )
    assert code == 0, transcript
    assert PW not in transcript  # never echoed
    assert parse_entry(users.read_text().strip().partition(":")[2]).check("alice", PW)


def test_serve_with_hashed_users_basic_and_md5(tmp_path: Path) -> None:
    users = tmp_path / "users"
    _add(users, "alice", PW, "--md5")  # bcrypt + MD5 secret
    _add(users, "bob", PW, "--scheme", "sha512-crypt")  # no MD5 secret: basic only
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"from alice\n"})
    srv = tmp_path / "server"
    with peers.GitsyncServer(srv, extra=["--users", str(users)]) as server:
        env = {"GITSYNC_PASSWORD": PW}
        res = cli("script", "sync", client, "-r", server.url, "-i", "dev-a", "-u", "alice", env=env)
        assert res.code == 0, res.err
        res = cli("script", "sync", client, "-r", server.url, "-u", "alice", "--auth", "md5", "-i", "dev-a",
                  env=env)
        assert res.code == 0, res.err
        bob = tmp_path / "bob"
        bob.mkdir()
        res = cli("script", "sync", bob, "-r", server.url, "-i", "dev-b", "-u", "bob", env=env)
        assert res.code == 0, res.err
        assert read_notes(bob) == {"a.txt": b"from alice\n"}
        res = cli("script", "sync", bob, "-r", server.url, "-i", "dev-b", "-u", "bob", "--auth", "md5",
                  env=env)
        assert res.code == 1 and "credentials" in res.err  # a hash alone cannot answer MD5
        res = cli("script", "sync", bob, "-r", server.url, "-i", "dev-c", "-u", "bob",
                  env={"GITSYNC_PASSWORD": PW + "x"})
        assert res.code == 1 and "credentials" in res.err
        log = server.output()
    assert "plain-text" not in log and PW not in log
    assert read_notes(srv) == {"a.txt": b"from alice\n"}


def test_plain_entries_work_with_one_warning(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:pl:ain\nbob:other\n")
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    with peers.GitsyncServer(tmp_path / "server", extra=["--users", str(users)]) as server:
        for _ in range(2):
            res = cli("script", "sync", client, "-r", server.url, "-i", "dev-p", "-u", "alice",
                      env={"GITSYNC_PASSWORD": "pl:ain"})
            assert res.code == 0, res.err
        log = server.output()
    warnings = [ln for ln in log.splitlines() if "plain-text" in ln]
    assert len(warnings) == 1 and "alice, bob" in warnings[0] and "pl:ain" not in log


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("carol:$apr1$khBTDKTf$.VMHCCV7AF79JLxNqpGMb.", "unsupported password hash"),
        ("dave:{SHA}EfatjsUqKYSrqv18O1FlA3hcIHI=", "unsupported password hash"),
        ("alice:x\nalice:y", "appears twice"),
    ],
)
def test_serve_refuses_entries_it_cannot_check(tmp_path: Path, line: str, why: str) -> None:
    users = tmp_path / "users"
    users.write_text(line + "\n")
    res = cli("script", "serve", tmp_path / "server", "--users", users, "--listen", "0")
    assert res.code == 2 and len(res.lines) == 1 and why in res.err, res.err


def test_syncevolution_md5_message_against_an_md5_secret(tmp_path: Path) -> None:
    """A real SyncEvolution package 1 (MD5 over an empty nonce) logs in with the stored MD5 secret."""
    from tests.protocol.test_synthesis_replay import HTTP_PKG1, Replay, _capture

    for secret, code in ((md5_secret("guest", "guest"), 212), (md5_secret("guest", "other"), 401)):
        entry = parse_entry(f"$2b$04${'a' * 53}:{secret}")
        rp = Replay(tmp_path / f"server{code}", ServerOptions(users={"guest": entry}, auth_type=AUTH_MD5))
        reply = rp.post(_capture(HTTP_PKG1, "m1-c2s-pkg1.wbxml"))
        status = reply.commands[0]
        assert isinstance(status, Status) and status.cmd == "SyncHdr" and status.code == code



def test_user_add_waits_for_another_change_of_the_file(tmp_path: Path) -> None:
    """Two changes at once take turns (a lock beside the file): neither is lost."""
    users = tmp_path / "users"
    users.write_text("carol:x\n")
    fd = os.open(tmp_path / ".users.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another `user add` in the middle of its change
    proc = subprocess.Popen([*peers.gitsync_command(), "user", "add", str(users), "alice", "--password-stdin",
                             "--scheme", "sha512-crypt"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"pw\n")
        proc.stdin.close()
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        assert users.read_text() == "carol:x\n"
        users.write_text("carol:x\nbob:y\n")  # what the other change wrote
    finally:
        os.close(fd)
    assert proc.wait(timeout=30) == 0
    assert [ln.split(":")[0] for ln in users.read_text().splitlines()] == ["carol", "bob", "alice"]
