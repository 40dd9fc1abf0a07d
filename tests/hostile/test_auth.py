"""Authentication: every message of a session is checked, MD5 nonces, failed logins are slowed down,
passwords never reach a log, and a session id seen by another client skips no login."""

from __future__ import annotations

import base64
import logging
import re
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.app.throttle import FREE_PER_ADDRESS as AUTH_FREE_FAILURES_PER_ADDRESS
from gitsync.app.throttle import FREE_PER_PAIR as AUTH_FREE_FAILURES
from gitsync.errors import GitsyncError
from gitsync.protocol.auth import md5_digest
from gitsync.protocol.constants import AUTH_BASIC, AUTH_MD5
from gitsync.store.git import GitStore
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import read_notes
from tests.hostile.helpers import URL, App, Reply, ScriptedClient, add, post, sif

USERS = {"alice": "correct horse battery staple", "bob": "hunter2-\u00e9\u00e8"}
PASSWORD = USERS["alice"]


class Clock:
    """The server's clock, moved by hand: no test sleeps."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def make_server(
    tmp_path: Path, auth_type: str = AUTH_BASIC, clock: Clock | None = None
) -> tuple[SyncServer, Path]:
    folder = tmp_path / "server"
    folder.mkdir(parents=True)
    (folder / "secret-plans.txt").write_bytes(b"only for alice\n")
    server = SyncServer(
        GitStore.open(folder), ServerOptions(users=USERS, auth_type=auth_type), now=clock or Clock()
    )
    return server, folder


def basic(user: str, password: str) -> str:
    data = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (
        f'<Cred><Meta><Format xmlns="syncml:metinf">b64</Format><Type xmlns="syncml:metinf">syncml:auth-basic'
        f"</Type></Meta><Data>{data}</Data></Cred>"
    )


def message(msg_id: int, body: str, *, device: str = "dev-x", session: str = "1", cred: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr>'
        f"<VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>{session}</SessionID><MsgID>{msg_id}</MsgID>"
        f"<Target><LocURI>{URL}</LocURI></Target><Source><LocURI>{device}</LocURI></Source>{cred}</SyncHdr>"
        f"<SyncBody>{body}<Final/></SyncBody></SyncML>"
    ).encode()


ALERT = (
    "<Alert><CmdID>1</CmdID><Data>201</Data><Item><Target><LocURI>notes</LocURI></Target><Source>"
    '<LocURI>notes</LocURI></Source><Meta><Anchor xmlns="syncml:metinf"><Next>n1</Next></Anchor></Meta>'
    "</Item></Alert>"
)
SNEAK = (
    "<Sync><CmdID>2</CmdID><Target><LocURI>notes</LocURI></Target><Source><LocURI>notes</LocURI></Source>"
    '<Add><CmdID>3</CmdID><Meta><Type xmlns="syncml:metinf">text/plain</Type></Meta><Item><Source><LocURI>'
    "sneak-1</LocURI></Source><Data>sneaked in\n</Data></Item></Add></Sync>"
    "<Map><CmdID>4</CmdID><Target><LocURI>notes</LocURI></Target><Source><LocURI>notes</LocURI></Source>"
    "<MapItem><Target><LocURI>g1</LocURI></Target><Source><LocURI>l1</LocURI></Source></MapItem></Map>"
)


def resp_query(reply: Reply) -> str:
    msg = reply.message()
    assert msg is not None and msg.header.resp_uri
    return msg.header.resp_uri.split("?", 1)[1]


def assert_untouched(folder: Path) -> None:
    assert read_notes(folder) == {"secret-plans.txt": b"only for alice\n"}


@pytest.mark.parametrize(
    "cred",
    ["", basic("alice", "wrong"), basic("mallory", PASSWORD), basic("alice", "")],
    ids=["missing", "wrong-password", "unknown-user", "empty-password"],
)
def test_every_message_of_a_session_is_refused_without_valid_credentials(tmp_path: Path, cred: str) -> None:
    server, folder = make_server(tmp_path)
    app = server.wsgi_app()
    expected = 407 if not cred else 401
    first = post(app, message(1, ALERT, cred=cred))
    assert first.header_status() == expected
    assert any(s.chal is not None for s in first.statuses() if s.cmd == "SyncHdr")
    query = resp_query(first)
    for msg_id in (2, 3, 4):  # the same session goes on sending changes: refused each time
        reply = post(app, message(msg_id, SNEAK, cred=cred), query=query)
        # 401/407; after a few wrong passwords 417 "retry later" (see test_repeated_failures_...)
        assert reply.header_status() in (expected, 417)
        assert [s.cmd for s in reply.statuses()] == ["SyncHdr"]  # no command was looked at
    # a fresh session, a Sync without an Alert, a Map alone: the same
    assert post(app, message(1, SNEAK, cred=cred, session="2")).header_status() in (expected, 417)
    assert_untouched(folder)


def test_wrong_credentials_later_in_an_authenticated_session_end_it(tmp_path: Path) -> None:
    server, folder = make_server(tmp_path)
    app = server.wsgi_app()
    first = post(app, message(1, ALERT, cred=basic("alice", PASSWORD)))
    assert first.header_status() == 212
    query = resp_query(first)
    reply = post(
        app, message(2, SNEAK, cred=basic("bob", USERS["bob"])), query=query
    )  # another user's, mid-session
    assert reply.header_status() == 401
    reply = post(app, message(3, SNEAK), query=query)  # and the session is gone
    assert reply.header_status() == 407
    assert_untouched(folder)


def test_basic_and_md5_clients_sync_and_md5_replay_fails(tmp_path: Path) -> None:
    for auth in (AUTH_BASIC, AUTH_MD5):
        server, folder = make_server(tmp_path / auth.split("-")[-1], auth)
        app = server.wsgi_app()
        client = tmp_path / f"client-{auth.split('-')[-1]}"
        client.mkdir()
        (client / "mine.txt").write_bytes(b"mine\n")
        kind = "md5" if auth == AUTH_MD5 else "basic"
        opts = ClientOptions(
            url=URL, device_id="alice-phone", name="srv", username="alice", password=PASSWORD, auth_type=kind
        )
        sent: list[bytes] = []

        class Recording(InProcessTransport):
            log = sent

            def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
                self.log.append(body)
                return super().exchange(url, body, content_type)

        for _ in range(2):  # the second session uses the nonce the first one was given
            sync_client(GitStore.open(client), opts, Recording(app))
        assert read_notes(client)["secret-plans.txt"] == b"only for alice\n"
        assert read_notes(folder)["mine.txt"] == b"mine\n"
        wrong = ClientOptions(
            url=URL, device_id="alice-phone", name="srv", username="alice", password="nope", auth_type=kind
        )
        (client / "more.txt").write_bytes(b"more\n")
        with pytest.raises(GitsyncError):
            sync_client(GitStore.open(client), wrong, InProcessTransport(app))
        assert "more.txt" not in read_notes(folder)
        if auth == AUTH_MD5:
            # replaying the first message of an earlier session: its digest was for an old nonce
            assert b"auth-md5" in sent[0]
            replay = post(app, sent[0])
            assert replay.header_status() == 401
            digests = [
                m.group(1) for b in sent if (m := re.search(rb"<Cred>.*?<Data>([^<]+)</Data>", b, re.S))
            ]
            assert len(digests) >= 2 and len(set(digests)) == len(digests)  # a fresh nonce each session
            assert md5_digest("alice", PASSWORD, b"").encode() in digests[:1]  # first contact: empty nonce


def test_repeated_failures_are_slowed_down(tmp_path: Path) -> None:
    clock = Clock()
    server, folder = make_server(tmp_path, clock=clock)
    app = server.wsgi_app()

    def attempt(password: str, device: str = "brute", addr: str = "10.0.0.66") -> int | None:
        return post(
            app, message(1, ALERT, device=device, cred=basic("alice", password)), remote_addr=addr
        ).header_status()

    for _ in range(AUTH_FREE_FAILURES):
        assert attempt("guess") == 401
    # now this device is refused without a check, even with the right password
    assert attempt(PASSWORD) == 417
    # other devices at that address are not, until the address has failed too often
    for n in range(AUTH_FREE_FAILURES_PER_ADDRESS - AUTH_FREE_FAILURES):
        assert attempt("guess", device=f"spray-{n}") == 401
    assert attempt(PASSWORD, device="spray-new") == 417
    # a client elsewhere is served as usual
    assert attempt(PASSWORD, device="alice-phone", addr="10.0.0.7") == 212
    delays = []
    for _ in range(6):
        waited = 0.0
        while attempt("guess") == 417:
            clock.t += 0.5
            waited += 0.5
        delays.append(waited)
    assert delays[1:] == sorted(delays[1:]) and delays[-1] >= 8 * delays[1] > 0  # doubling
    # much later, the right password works again, and clears the device's record
    clock.t += 3600
    assert attempt(PASSWORD) == 212
    assert attempt("guess") == 401
    assert_untouched(folder)


def test_passwords_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [PASSWORD, "wrong-but-secret-1", USERS["bob"]]
    for auth in ("basic", "md5"):
        server, _ = make_server(tmp_path / auth, AUTH_MD5 if auth == "md5" else AUTH_BASIC)
        app = server.wsgi_app()
        client = tmp_path / f"c-{auth}"
        client.mkdir()
        (client / "n.txt").write_bytes(b"n\n")
        for user, password in (("alice", PASSWORD), ("alice", "wrong-but-secret-1"), ("bob", USERS["bob"])):
            opts = ClientOptions(
                url=URL, device_id=f"d-{user}", name="srv", username=user, password=password, auth_type=auth
            )
            try:
                sync_client(GitStore.open(client), opts, InProcessTransport(app))
            except GitsyncError:
                pass
    text = caplog.text
    assert "sending message" in text  # the debug log of the messages was on
    for secret in secrets:
        for form in (
            secret,
            base64.b64encode(f"alice:{secret}".encode()).decode(),
            base64.b64encode(f"bob:{secret}".encode()).decode(),
        ):
            assert form not in text


def test_a_session_id_seen_elsewhere_skips_no_login(tmp_path: Path) -> None:
    server, folder = make_server(tmp_path)
    app: App = server.wsgi_app()
    alice = ScriptedClient(app, device="alice-phone", username="alice", password=PASSWORD)
    attacks: list[int | None] = []

    def hijack(msg_id: int, body: bytes) -> bytes:
        if msg_id == 2:  # alice is logged in and between two messages: try to ride on her session
            reply = alice.replies[-1]
            assert reply.header.resp_uri is not None
            query = reply.header.resp_uri.split("?", 1)[1]
            key = query.split("=", 1)[1]
            sneak = message(2, SNEAK, device="alice-phone", session="1")
            attacks.append(post(app, sneak, query=query, remote_addr="10.6.6.6").header_status())
            attacks.append(
                post(app, sneak, cookie=f"sessionid={key}", remote_addr="10.6.6.6").header_status()
            )
            attacks.append(
                post(app, sneak, remote_addr="10.6.6.6").header_status()
            )  # (SessionID, Source) only
            other = message(2, SNEAK, device="mallory", session="1")
            # another device at alice's own address (the in-process transport has none)
            attacks.append(post(app, other, query=query, remote_addr="").header_status())
        return body

    acks = alice.sync([add("a1", sif("from alice.txt", "alice\n"))], mutate=hijack)
    assert attacks == [407, 407, 407, 403]
    assert [code for _, code in acks] == [201]  # alice's own session went on undisturbed
    notes = read_notes(folder)
    assert notes.get("from alice.txt") == b"alice\n"
    assert not any(b"sneaked" in body for body in notes.values())
