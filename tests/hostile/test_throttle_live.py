"""Login throttling against a real server (``gitsync-notes serve`` and gunicorn with 4 workers).

A stranger at another address (127.0.0.2: every 127.x address is loopback, as another machine) sends
wrong passwords under the victim's device id, which is not secret: the victim, at its own address,
logs in at once; the stranger's address is refused with ``Retry-After`` and the same seconds in the
SyncHdr Status, and may try again once they have passed.  Under gunicorn the strikes hold across
worker processes.  Raw bytes over real sockets; the client's own message through the console script.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

import pytest

from gitsync.app.throttle import FREE_PER_ADDRESS, FREE_PER_PAIR, MAX_ENTRIES
from gitsync.app.throttle_file import WAYS
from gitsync.protocol.messages import Status
from tests.app.helpers import git, write_notes
from tests.cli.helpers import cli, repo_snapshot
from tests.hostile import live
from tests.hostile.test_auth import ALERT, PASSWORD, USERS, basic, message

NO_GUNICORN = pytest.mark.skipif(not live.HAVE_GUNICORN, reason="gunicorn not installed")
KINDS = ["serve", pytest.param("gunicorn", marks=NO_GUNICORN)]
VICTIM, STRANGER = "127.0.0.1", "127.0.0.2"


def attempt(port: int, source: str, device: str, password: str) -> live.RawReply:
    """Package 1 with basic credentials for alice, from the loopback address ``source``."""
    data = live.request_bytes(message(1, ALERT, device=device, cred=basic("alice", password)))
    with socket.create_connection((live.HOST, port), timeout=30, source_address=(source, 0)) as sock:
        sock.sendall(data)
        return live.read_reply(sock, time.monotonic())


def retry_after(reply: live.RawReply) -> int:
    """The seconds a 417 says to wait: Retry-After, checked equal to the SyncHdr Status's item."""
    msg = reply.message()
    assert msg is not None and reply.header_status() == 417, reply
    status = next(c for c in msg.commands if isinstance(c, Status) and c.cmd == "SyncHdr")
    assert [item.data for item in status.items] == [reply.headers["retry-after"].encode()]
    return int(reply.headers["retry-after"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_stranger_elsewhere_cannot_lock_out_the_victim(tmp_path: Path, kind: str) -> None:
    with live.live_server(tmp_path / "server", kind=kind, users=USERS) as srv:
        codes = [attempt(srv.port, STRANGER, "victim-phone", "guess").header_status() for _ in range(20)]
        # three checks (401), then refused without one: every worker process knows
        assert codes[:FREE_PER_PAIR] == [401] * FREE_PER_PAIR and codes[FREE_PER_PAIR] == 417, codes
        assert set(codes) == {401, 417} and codes.count(401) <= FREE_PER_PAIR + 2, codes
        # the victim, from its own address, logs in at once
        assert attempt(srv.port, VICTIM, "victim-phone", PASSWORD).header_status() == 212
        # other device ids from the stranger's address, until the address used its free failures
        for n in range(FREE_PER_ADDRESS - codes.count(401)):
            assert attempt(srv.port, STRANGER, f"spray-{n}", "guess").header_status() == 401
        refused = attempt(srv.port, STRANGER, "spray-new", PASSWORD)
        wait = retry_after(refused)
        assert 1 <= wait <= 2
        # once the back-off has passed, the stranger may try again (and is checked)
        time.sleep(wait + 0.2)
        assert attempt(srv.port, STRANGER, "spray-new", "guess").header_status() == 401
        assert retry_after(attempt(srv.port, STRANGER, "spray-new", PASSWORD)) >= 2  # doubled
        # the victim still logs in
        assert attempt(srv.port, VICTIM, "victim-phone", PASSWORD).header_status() == 212


def test_the_client_says_too_many_failed_logins_and_when(tmp_path: Path) -> None:
    """Through the console script against ``gitsync-notes serve``: the victim syncs despite a stranger;
    after failures from its own address it is told "too many failed logins; retry in N s"."""
    client = tmp_path / "client"
    write_notes(client, {"a.txt": b"a\n"})
    git(client, "init", "-q")
    with live.live_server(tmp_path / "server", users=USERS) as srv:
        for _ in range(20):
            attempt(srv.port, STRANGER, "dev-victim", "guess")
        args = ("sync", client, "-r", srv.url, "-i", "dev-victim", "-u", "alice", "-p", PASSWORD)
        res = cli("script", *args)
        assert res.code == 0, res.err
        assert (tmp_path / "server" / "a.txt").read_bytes() == b"a\n"
        # now failures from the client's own address: the address's back-off, grown to 8 s
        for n in range(FREE_PER_ADDRESS):
            assert attempt(srv.port, VICTIM, f"typo-{n}", "guess").header_status() == 401
        for _ in range(3):
            time.sleep(retry_after(attempt(srv.port, VICTIM, "typo-0", PASSWORD)) + 0.1)
            assert attempt(srv.port, VICTIM, "typo-x", "guess").header_status() == 401
        (client / "b.txt").write_bytes(b"b\n")
        before = repo_snapshot(client)
        res = cli("script", *args)
    assert res.code == 1, res.err
    assert "Traceback" not in res.err and len(res.lines) == 1, res.err
    line = res.lines[0]
    assert "too many failed logins; retry in " in line and line.endswith(" s (status 417)"), line
    seconds = int(line.split("retry in ")[1].split()[0])
    assert 1 <= seconds <= 8, line
    assert repo_snapshot(client) == before
    assert not (tmp_path / "server" / "b.txt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_a_flood_of_device_ids_and_addresses_keeps_the_table_at_its_cap(tmp_path: Path, kind: str) -> None:
    """50,000 wrong logins, each with a new device id and (through a trusted proxy) a new address."""
    env = {"GITSYNC_TRUSTED_PROXIES": "127.0.0.1"}
    args = ("--trusted-proxy", "127.0.0.1") if kind == "serve" else ()
    total, threads = 50_000, 4
    with live.live_server(tmp_path / "server", kind=kind, users=USERS, args=args, env=env) as srv:
        logins = tmp_path / "server" / ".git" / "gitsync" / "logins"
        codes: dict[int, int] = {}
        lock = threading.Lock()

        def flood(part: int) -> None:
            conn = http.client.HTTPConnection(live.HOST, srv.port, timeout=30)
            for n in range(part, total, threads):
                body = message(1, ALERT, device=f"flood-{n}", cred=basic("alice", "guess"))
                addr = f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"
                headers = {"Content-Type": "application/vnd.syncml+xml", "X-Forwarded-For": addr}
                for _ in range(3):
                    try:
                        conn.request("POST", "/notes", body, headers)
                        resp = conn.getresponse()
                        resp.read()
                        break
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        conn = http.client.HTTPConnection(live.HOST, srv.port, timeout=30)
                with lock:
                    codes[resp.status] = codes.get(resp.status, 0) + 1
            conn.close()

        workers = [threading.Thread(target=flood, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert codes == {200: total}, codes
        assert logins.stat().st_size == 64 + MAX_ENTRIES * 40  # fixed: 16384 keys of 40 bytes
        assert MAX_ENTRIES % WAYS == 0
        # (the server's memory is not asserted here: each refused package 1 also opens a session not
        # logged in, capped per address, which 50,000 addresses do not reach: issue 15's session work)
        # the victim, at an address without strikes, logs in at once
        assert attempt(srv.port, VICTIM, "victim-phone", PASSWORD).header_status() == 212


def test_per_user_guesses_at_a_user_without_a_repository_are_throttled(tmp_path: Path) -> None:
    """``serve --per-user``: the password of a user who never synced is checked by the router; a
    stranger's guesses there count as anywhere else, and the user still logs in from elsewhere."""
    root = tmp_path / "root"
    with live.live_server(root, users=USERS, args=("--per-user",)) as srv:
        codes = [attempt(srv.port, STRANGER, "victim-phone", "guess").header_status() for _ in range(20)]
        assert codes[:FREE_PER_PAIR] == [401] * FREE_PER_PAIR and codes[FREE_PER_PAIR] == 417, codes
        assert codes.count(401) <= FREE_PER_PAIR + 2, codes
        assert 1 <= retry_after(attempt(srv.port, STRANGER, "victim-phone", PASSWORD)) <= 2
        assert not (root / "alice").exists()
        assert attempt(srv.port, VICTIM, "victim-phone", PASSWORD).header_status() == 212
        assert (root / "alice").is_dir()
