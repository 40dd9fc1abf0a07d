"""Session security (issue 15): which request continues which session, single-use MD5 nonces, and
what a flood of sessions that never log in may cost -- in process (both session tables) with raw
bytes, and against real servers (``serve`` and ``gunicorn -k gthread``) over sockets."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from gitsync.app.multiuser import PerUserServer
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.app.sessions import DirTable, MemoryTable, SessionTable
from gitsync.protocol.auth import md5_digest
from gitsync.protocol.constants import AUTH_MD5
from gitsync.store.git import GitStore
from tests.helpers import read_notes
from tests.hostile import live
from tests.hostile.helpers import URL, Reply, post
from tests.hostile.test_auth import ALERT, PASSWORD, USERS, Clock, basic, message

SECRET = b"only for alice\n"
#: alice's package 3: an empty Sync (asks for the server's notes), then the stranger's version that adds one
PKG3 = (
    "<Sync><CmdID>2</CmdID><Target><LocURI>notes</LocURI></Target><Source><LocURI>notes</LocURI></Source>"
    "</Sync>"
)
STRANGER_ADD = (
    "<Sync><CmdID>2</CmdID><Target><LocURI>notes</LocURI></Target><Source><LocURI>notes</LocURI></Source>"
    '<Add><CmdID>3</CmdID><Meta><Type xmlns="syncml:metinf">text/plain</Type></Meta><Item><Source><LocURI>'
    "x-1</LocURI></Source><Data>planted by a stranger\n</Data></Item></Add></Sync>"
)


def md5(user: str, password: str, nonce: bytes) -> str:
    return (
        f'<Cred><Meta><Format xmlns="syncml:metinf">b64</Format><Type xmlns="syncml:metinf">{AUTH_MD5}'
        f"</Type></Meta><Data>{md5_digest(user, password, nonce)}</Data></Cred>"
    )


def with_locname(body: bytes, device: str, user: str) -> bytes:
    """The SyncHdr Source with a LocName (MD5 names its user there)."""
    return body.replace(
        f"<Source><LocURI>{device}</LocURI></Source><Cred>".encode(),
        f"<Source><LocURI>{device}</LocURI><LocName>{user}</LocName></Source><Cred>".encode(), 1,
    )


def key_of(reply: Reply | live.RawReply) -> str:
    msg = reply.message()
    assert msg is not None and msg.header.resp_uri, reply.body[:300]
    m = re.search(r"sessionid=([0-9a-f]{32})", msg.header.resp_uri)
    assert m, msg.header.resp_uri
    return m.group(1)


def next_nonce(reply: Reply) -> bytes:
    chal = next(s.chal for s in reply.statuses() if s.cmd == "SyncHdr" and s.chal is not None)
    assert chal.next_nonce
    return base64.b64decode(chal.next_nonce)


def server_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "server"
    folder.mkdir(parents=True)
    (folder / "secret-plans.txt").write_bytes(SECRET)
    return folder


def history(folder: Path) -> bytes:
    return subprocess.run(["git", "-C", str(folder), "log", "--all", "-p", "--format=%H %s"],
                          capture_output=True, check=True).stdout


def tables(tmp_path: Path) -> dict[str, SessionTable]:
    return {"memory": MemoryTable(), "files": DirTable(tmp_path / "server" / ".git" / "gitsync" / "sessions")}


# ---------------------------------------------------------------------- continuing a session
@pytest.mark.parametrize("table", ["memory", "files"])
def test_a_stranger_behind_the_same_address_gets_nothing_of_a_session_and_cannot_end_it(
    tmp_path: Path, table: str
) -> None:
    folder = server_folder(tmp_path)
    app = SyncServer(GitStore.open(folder), ServerOptions(users=USERS),
                     sessions=tables(tmp_path)[table]).wsgi_app()
    first = post(app, message(1, ALERT, device="alice-phone", cred=basic("alice", PASSWORD)))
    assert first.header_status() == 212
    key = key_of(first)
    # same address, same SessionID and device id; no key, no cookie: no credentials, then wrong ones
    for cred in ("", basic("alice", "guess")):
        r = post(app, message(2, STRANGER_ADD, device="alice-phone", cred=cred))
        assert r.header_status() in (401, 407), r.body[:300]
        assert SECRET not in r.body and key not in r.body.decode()
    # a cookie of another session, a guessed key: the same
    r = post(app, message(2, STRANGER_ADD, device="alice-phone"), query=f"sessionid={'0' * 32}",
             cookie=f"sessionid={'1' * 32}")
    assert r.header_status() in (401, 407)
    # alice's session was not ended by any of it: her key goes on, and fresh credentials (no key) too
    r = post(app, message(2, PKG3, device="alice-phone"), query=f"sessionid={key}")
    assert r.header_status() == 200 and SECRET in r.body and key_of(r) == key
    r = post(app, message(3, PKG3, device="alice-phone", cred=basic("alice", PASSWORD)))
    assert r.header_status() == 200 and key_of(r) == key
    assert read_notes(folder) == {"secret-plans.txt": SECRET}
    assert b"planted" not in history(folder)


def test_without_users_the_device_fallback_holds_only_at_the_same_address(tmp_path: Path) -> None:
    folder = server_folder(tmp_path)
    app = SyncServer(GitStore.open(folder), ServerOptions()).wsgi_app()
    first = post(app, message(1, ALERT, device="phone"), remote_addr="192.0.2.7")
    key = key_of(first)
    elsewhere = post(app, message(2, PKG3, device="phone"), remote_addr="192.0.2.8")
    assert key_of(elsewhere) != key and SECRET not in elsewhere.body  # a session of its own, no Alert
    here = post(app, message(2, PKG3, device="phone"), remote_addr="192.0.2.7")
    assert key_of(here) == key and SECRET in here.body


# ---------------------------------------------------------------------- MD5 nonces
def test_a_replayed_md5_login_is_refused_and_nonces_are_single_use(tmp_path: Path) -> None:
    folder = server_folder(tmp_path)
    server = SyncServer(GitStore.open(folder), ServerOptions(users=USERS, auth_type=AUTH_MD5))
    app = server.wsgi_app()

    def login(nonce: bytes, session: str) -> bytes:
        return with_locname(message(1, ALERT, device="alice-phone", session=session,
                                    cred=md5("alice", PASSWORD, nonce)), "alice-phone", "alice")

    refs = subprocess.run(["git", "-C", str(folder), "for-each-ref"], capture_output=True).stdout
    nonce, seen = b"", []
    for n in range(4):
        package1 = login(nonce, str(n))
        ok = post(app, package1)
        assert ok.header_status() == 212, ok.body[:400]
        seen.append(nonce)
        nonce = next_nonce(ok)
        assert nonce not in seen
        # the same bytes again (an eavesdropper's replay), now or after the session went on: refused
        again = post(app, package1)
        assert again.header_status() == 401 and [s.cmd for s in again.statuses()] == ["SyncHdr"]
        assert SECRET not in again.body
    stored = server.nonces.get("alice-phone")
    # a refused login writes nothing: a stranger cannot change the nonce the device must use ...
    refused = post(app, login(b"stale", "9"))
    assert refused.header_status() == 401 and server.nonces.get("alice-phone") == stored
    # ... and the nonce its challenge names is good in a new session, once (a client whose last
    # answer was lost retries with it)
    retry = login(next_nonce(refused), "10")
    assert post(app, retry).header_status() == 212
    assert post(app, retry).header_status() == 401
    assert subprocess.run(["git", "-C", str(folder), "for-each-ref"], capture_output=True).stdout == refs
    assert read_notes(folder) == {"secret-plans.txt": SECRET}


def test_md5_clients_keep_logging_in_across_many_sessions(tmp_path: Path) -> None:
    from gitsync.app.client import ClientOptions, sync_client
    from gitsync.transport.inprocess import InProcessTransport

    folder = server_folder(tmp_path)
    server = SyncServer(GitStore.open(folder), ServerOptions(users=USERS, auth_type=AUTH_MD5))
    app = server.wsgi_app()
    client = tmp_path / "client"
    client.mkdir()
    opts = ClientOptions(url=URL, device_id="alice-phone", name="srv", username="alice", password=PASSWORD,
                         auth_type="md5")
    for n in range(8):
        (client / f"n{n}.txt").write_bytes(f"note {n}\n".encode())
        sync_client(GitStore.open(client), opts, InProcessTransport(app))
        if n == 4:  # a login whose answer the client never saw: its nonce is stale, it retries
            lost = with_locname(message(1, ALERT, device="alice-phone", session="77",
                                        cred=md5("alice", PASSWORD, server.nonces.get("alice-phone") or b"")),
                                "alice-phone", "alice")
            assert post(app, lost).header_status() == 212
        if n == 6:  # a repository from before nonces had files: the state ref's nonce holds
            shutil.rmtree(folder / ".git" / "gitsync" / "nonces")
    assert read_notes(folder) == {"secret-plans.txt": SECRET, **{f"n{n}.txt": f"note {n}\n".encode()
                                                                  for n in range(8)}}


# ---------------------------------------------------------------------- floods
@pytest.mark.parametrize("table", ["memory", "files"])
@pytest.mark.parametrize("users", [True, False], ids=["users", "no-users"])
def test_sessions_that_never_log_in_are_capped_per_address_and_expire(
    tmp_path: Path, table: str, users: bool
) -> None:
    folder = server_folder(tmp_path)
    clock = Clock()
    sessions = tables(tmp_path)[table]
    opts = ServerOptions(users=USERS if users else None, max_sessions_per_address=8)
    app = SyncServer(GitStore.open(folder), opts, now=clock, sessions=sessions).wsgi_app()
    flood = 1500 if table == "memory" else 300
    with sessions.transaction({}):
        pass
    for n in range(flood):
        r = post(app, message(1, ALERT, device=f"flood-{n}"), remote_addr="198.51.100.9")
        assert r.header_status() == (407 if users else 200)
        if n % 97 == 0:  # an IPv6 host's addresses in its /64 share one cap
            post(app, message(1, ALERT, device=f"v6-{n}"), remote_addr=f"2001:db8:1:2::{n:x}")
        clock.t += 0.01
    with sessions.transaction({}):
        assert len(sessions) <= 8 + 8
    if table == "files":
        folder_of = tmp_path / "server" / ".git" / "gitsync" / "sessions"
        assert len(list(folder_of.glob("*.session"))) <= 16
        assert len(list(folder_of.glob("new/*/*"))) <= 16 and len(list(folder_of.glob("dev/*"))) <= 16
    # a legitimate client at the flood's address still syncs (with credentials: not capped) ...
    from gitsync.app.client import ClientOptions, sync_client
    from gitsync.transport.inprocess import InProcessTransport

    client = tmp_path / "client"
    client.mkdir()
    (client / "mine.txt").write_bytes(b"mine\n")
    copts = ClientOptions(url=URL, device_id="alice-phone", name="srv",
                          **({"username": "alice", "password": PASSWORD} if users else {}))
    sync_client(GitStore.open(client), copts, InProcessTransport(app))
    assert read_notes(folder) == {"secret-plans.txt": SECRET, "mine.txt": b"mine\n"}
    # ... and two minutes later the strangers' sessions are gone
    clock.t += 121
    post(app, message(1, ALERT, device="late"), remote_addr="203.0.113.1")
    with sessions.transaction({}):
        assert len(sessions) == 1


def test_a_strangers_package_1_neither_reads_nor_holds_the_devices_state(tmp_path: Path) -> None:
    from gitsync.app.client import ClientOptions, sync_client
    from gitsync.transport.inprocess import InProcessTransport

    folder = server_folder(tmp_path)
    for n in range(40):
        (folder / f"n{n}.txt").write_bytes(b"x\n")
    table = MemoryTable()
    store = GitStore.open(folder)
    app = SyncServer(store, ServerOptions(users=USERS), sessions=table).wsgi_app()
    client = tmp_path / "client"
    client.mkdir()
    opts = ClientOptions(url=URL, device_id="alice-phone", name="srv", username="alice", password=PASSWORD)
    sync_client(GitStore.open(client), opts, InProcessTransport(app))  # the device has a state: 41 ids
    reads: list[str] = []
    load = store.state_load
    store.state_load = lambda peer: reads.append(peer) or load(peer)  # type: ignore[method-assign]
    for n in range(20):
        r = post(app, message(1, ALERT, device="alice-phone", session=f"s{n}"))
        assert r.header_status() == 407
    assert reads == []
    assert len(table) == 20 and all(not run.items for run in table.runs.values())
    r = post(app, message(1, ALERT, device="alice-phone", session="ok", cred=basic("alice", PASSWORD)))
    assert r.header_status() == 212 and reads == ["device-alice-phone"]


def test_an_md5_message_creates_a_users_repository_only_when_its_digest_is_right(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    app = PerUserServer(root, USERS, ServerOptions(auth_type=AUTH_MD5)).wsgi_app()

    def first(cred: str, session: str = "1") -> bytes:
        body = message(1, ALERT, device="bob-phone", session=session, cred=cred)
        return with_locname(body, "bob-phone", "bob")

    for wrong in (md5("bob", "guess", b""), md5("bob", USERS["bob"], b"other nonce")):
        r = post(app, first(wrong))
        assert r.header_status() in (401, 407)
        assert not (root / "bob").exists()
    challenge = next_nonce(r)  # a client that sent no digest it could make retries with this one
    ok = post(app, first(md5("bob", USERS["bob"], challenge), session="2"))
    assert ok.header_status() == 212 and (root / "bob").is_dir()


# ---------------------------------------------------------------------- real servers
@pytest.mark.parametrize("kind", ["serve", pytest.param("gunicorn", marks=pytest.mark.skipif(
    not live.HAVE_GUNICORN, reason="gunicorn is not installed"))])
def test_live_a_stranger_at_the_same_address_reads_nothing_and_commits_nothing(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "secret-plans.txt").write_bytes(SECRET)
    if kind == "gunicorn":
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
    with live.live_server(folder, kind=kind, users=USERS) as srv:
        first = live.post(srv.port, message(1, ALERT, device="alice-phone", cred=basic("alice", PASSWORD)))
        assert first.header_status() == 212
        key = key_of(first)
        for cred in ("", basic("alice", "guess")):  # 127.0.0.1 too; no key, no cookie
            r = live.post(srv.port, message(2, STRANGER_ADD, device="alice-phone", cred=cred))
            assert r.status >= 400 or r.header_status() in (401, 407), (r.status, r.body[:300])
            assert SECRET not in r.body
        r = live.post(srv.port, message(2, PKG3, device="alice-phone"), path=f"/notes?sessionid={key}")
        assert r.header_status() == 200 and SECRET in r.body
        assert b"planted" not in history(folder)
        assert read_notes(folder) == {"secret-plans.txt": SECRET}


@pytest.mark.parametrize("kind", ["serve", pytest.param("gunicorn", marks=pytest.mark.skipif(
    not live.HAVE_GUNICORN, reason="gunicorn is not installed"))])
def test_live_a_flood_of_package_1s_stays_within_the_cap(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "secret-plans.txt").write_bytes(SECRET)
    args = ("--max-sessions-per-address", "4") if kind == "serve" else ()
    env = {"GITSYNC_MAX_SESSIONS_PER_ADDRESS": "4"}
    with live.live_server(folder, kind=kind, users=USERS, args=args, env=env, workers=2) as srv:
        # the cap, seen from outside: the fifth session not logged in drops the first
        keys = [key_of(live.post(srv.port, message(1, ALERT, device=f"d{n}"))) for n in range(5)]
        for n in (4, 1):  # the sessions within the cap go on (and still do not log in) ...
            r = live.post(srv.port, message(2, ALERT, device=f"d{n}"), path=f"/notes?sessionid={keys[n]}")
            assert r.header_status() == 407 and key_of(r) == keys[n]
        r = live.post(srv.port, message(2, ALERT, device="d0"), path=f"/notes?sessionid={keys[0]}")
        assert key_of(r) != keys[0]  # ... the oldest is gone
        base = srv.rss_kib()
        times: list[float] = []
        for _ in range(3000):
            t0 = time.monotonic()
            body = message(1, ALERT, device=f"flood-{uuid.uuid4().hex}")
            assert live.post(srv.port, body).header_status() == 407
            times.append(time.monotonic() - t0)
        grown = srv.rss_kib() - base
        if kind == "gunicorn":
            files = list((folder / ".git" / "gitsync" / "sessions").glob("*.session"))
            assert len(files) <= 4 + 2, len(files)
        first, last = sorted(times[:200])[100], sorted(times[-200:])[100]
        assert last < first * 1.5 + 0.005, (first, last)  # per-request time does not grow
        assert grown < 20 * 1024, grown
        # a client with credentials at the flood's address syncs
        client = tmp_path / "client"
        client.mkdir()
        (client / "mine.txt").write_bytes(b"mine\n")
        from tests.cli.helpers import cli

        res = cli("script", "sync", client, "-r", srv.url, "-i", "alice-laptop", "-u", "alice",
                  env={"GITSYNC_PASSWORD": PASSWORD})
        assert res.code == 0, res.err
        assert read_notes(client) == {"secret-plans.txt": SECRET, "mine.txt": b"mine\n"}


def test_serve_help_shows_the_session_cap_and_its_default() -> None:
    from tests.cli.helpers import cli

    res = cli("runner", "serve", "--help")
    assert res.code == 0
    text = " ".join(res.out.split())
    _, found, after = text.partition("--max-sessions-per-address")
    assert found and "default: 32" in after.split(" -")[0]


@pytest.mark.parametrize("table", ["memory", "files"])
def test_a_logged_in_session_outlives_the_strangers_timeout_and_expires_when_idle(
    tmp_path: Path, table: str
) -> None:
    folder = server_folder(tmp_path)
    clock = Clock()
    app = SyncServer(GitStore.open(folder), ServerOptions(users=USERS), now=clock,
                     sessions=tables(tmp_path)[table]).wsgi_app()
    alice = post(app, message(1, ALERT, device="alice-phone", cred=basic("alice", PASSWORD)))
    stranger = post(app, message(1, ALERT, device="other"))
    keys = key_of(alice), key_of(stranger)
    clock.t += 300  # past the 2 minutes of a session that did not log in, within the 15 of one that did
    r = post(app, message(2, ALERT, device="other"), query=f"sessionid={keys[1]}")
    assert key_of(r) != keys[1]
    r = post(app, message(2, PKG3, device="alice-phone"), query=f"sessionid={keys[0]}")
    assert r.header_status() == 200 and key_of(r) == keys[0]
    clock.t += 901
    r = post(app, message(3, PKG3, device="alice-phone"), query=f"sessionid={keys[0]}")
    assert r.header_status() == 407 and key_of(r) != keys[0]


@pytest.mark.parametrize("table", ["memory", "files"])
def test_sessions_that_never_log_in_are_capped_in_all_when_they_come_from_many_addresses(
    tmp_path: Path, table: str
) -> None:
    folder = server_folder(tmp_path)
    clock = Clock()
    sessions = tables(tmp_path)[table]
    opts = ServerOptions(users=USERS, max_strangers=50)
    app = SyncServer(GitStore.open(folder), opts, now=clock, sessions=sessions).wsgi_app()
    for n in range(300):
        r = post(app, message(1, ALERT, device=f"flood-{n}"), remote_addr=f"10.0.{n >> 8}.{n & 255}")
        assert r.header_status() == 407
        clock.t += 0.01
        with sessions.transaction({}):  # both tables: when a session is created, not only at a sweep
            assert len(sessions) <= 50
    alice = post(app, message(1, ALERT, device="alice-phone", cred=basic("alice", PASSWORD)),
                 remote_addr="10.0.0.1")
    r = post(app, message(2, PKG3, device="alice-phone"), query=f"sessionid={key_of(alice)}",
             remote_addr="10.0.0.1")
    assert r.header_status() == 200 and SECRET in r.body


# ---------------------------------------------------------------------- a server without users
@pytest.mark.parametrize("table", ["memory", "files"])
def test_without_users_sessions_continued_once_still_count_against_the_cap(
    tmp_path: Path, table: str
) -> None:
    folder = server_folder(tmp_path)
    sessions = tables(tmp_path)[table]
    opts = ServerOptions(max_sessions_per_address=4, max_strangers=6)
    app = SyncServer(GitStore.open(folder), opts, now=Clock(), sessions=sessions).wsgi_app()
    keys = []
    for n in range(40):  # each session continued once: past its first message, still nobody's
        addr = "10.0.0.1" if n < 30 else f"10.0.1.{n}"
        key = key_of(post(app, message(1, ALERT, device=f"flood-{n}"), remote_addr=addr))
        r = post(app, message(2, ALERT, device=f"flood-{n}"), query=f"sessionid={key}", remote_addr=addr)
        assert key_of(r) == key
        keys.append(key)
        with sessions.transaction({}):
            assert len(sessions) <= 6
    def alive(key: str) -> bool:  # (a DirTable's session is read only with the server's objects)
        if isinstance(sessions, DirTable):
            return (sessions.folder / f"{key}.session").exists()
        return sessions.info(key) is not None

    assert len([k for k in keys[:30] if alive(k)]) <= 4
    # the one idle longest goes first: a session kept busy outlives newer idle ones
    keys = [key_of(post(app, message(1, ALERT, device=f"d{n}"), remote_addr="10.0.0.2")) for n in range(4)]
    r = post(app, message(2, ALERT, device="d0"), query=f"sessionid={keys[0]}", remote_addr="10.0.0.2")
    assert key_of(r) == keys[0]
    post(app, message(1, ALERT, device="e"), remote_addr="10.0.0.2")
    assert alive(keys[0]) and not alive(keys[1])
    # a client at the flood's address still syncs
    first = post(app, message(1, ALERT, device="phone"), remote_addr="10.0.0.1")
    r = post(app, message(2, PKG3, device="phone"), query=f"sessionid={key_of(first)}",
             remote_addr="10.0.0.1")
    assert r.header_status() == 200 and SECRET in r.body


@pytest.mark.parametrize("kind", ["serve", pytest.param("gunicorn", marks=pytest.mark.skipif(
    not live.HAVE_GUNICORN, reason="gunicorn is not installed"))])
def test_live_without_users_a_flood_of_continued_sessions_stays_within_the_cap(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "secret-plans.txt").write_bytes(SECRET)
    args = ("--max-sessions-per-address", "4") if kind == "serve" else ()
    env = {"GITSYNC_MAX_SESSIONS_PER_ADDRESS": "4"}
    with live.live_server(folder, kind=kind, args=args, env=env, workers=2) as srv:
        keys = []
        for n in range(60):
            first = live.post(srv.port, message(1, ALERT, device=f"flood-{n}"))
            key = key_of(first)
            r = live.post(srv.port, message(2, ALERT, device=f"flood-{n}"), path=f"/notes?sessionid={key}")
            assert key_of(r) == key
            keys.append(key)
        alive = 0
        for n, key in enumerate(keys):  # a session dropped answers with a new key
            r = live.post(srv.port, message(3, ALERT, device=f"flood-{n}"), path=f"/notes?sessionid={key}")
            alive += key_of(r) == key
        assert alive <= 4, alive
        if kind == "gunicorn":
            files = list((folder / ".git" / "gitsync" / "sessions").glob("*.session"))
            assert len(files) <= 4 + 1, len(files)
        client = tmp_path / "client"
        client.mkdir()
        (client / "mine.txt").write_bytes(b"mine\n")
        from tests.cli.helpers import cli

        res = cli("script", "sync", client, "-r", srv.url, "-i", "laptop")
        assert res.code == 0, res.err
        assert read_notes(client) == {"secret-plans.txt": SECRET, "mine.txt": b"mine\n"}
