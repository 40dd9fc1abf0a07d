"""Our client against a live SyncEvolution 2.0 server (Synthesis engine): the independent peer phones
resemble.  WBXML and XML, SyncML 1.1 and 1.2, MD5 and basic auth; first, two-way, one-way and refresh
syncs; adds, edits and deletes both ways with non-ASCII text; large objects; duplicate conflicts.

SyncEvolution stores text/plain memos with CRLF, one file per memo (``notes_dir/0``, ``1``, ...), and
appends a line break to every memo it stores and to every one it sends.  Our client takes one off
each way, so after any number of round trips a memo's file on the server is exactly our note with
CRLF line ends: the tests compare bytes, not just ``normalise_text``.

One server serves the whole module (it starts in 0.6 s once its packages are installed, but runs one
session at a time); every test uses new device ids and starts from an empty datastore.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitsync.app.client import ClientOptions, sync_client
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode
from gitsync.errors import AuthError
from gitsync.model import SyncMode
from gitsync.protocol.messages import Add, Message, Replace, Status, Sync
from gitsync.store.git import GitStore
from gitsync.sync.report import SyncReport
from gitsync.sync.state import parse_kv
from gitsync.transport.http import HttpTransport
from tests import peers
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.interop

USER, PASSWORD = "sevo-user", "s3cret-pass"
COMBOS = [
    pytest.param(enc, ver, auth, id=f"{enc}-{ver}-{auth}")
    for enc in ("xml", "wbxml")
    for ver in ("1.1", "1.2")
    for auth in ("basic", "md5")
]


@pytest.fixture(scope="module")
def sevo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[peers.SyncEvolutionServer]:
    base = tmp_path_factory.mktemp("syncevolution")
    # a short retry duration: a session a failing test abandons must not block the next test for long
    with peers.SyncEvolutionServer(base, username=USER, password=PASSWORD, retry_duration=4) as server:
        yield server


@pytest.fixture
def server(sevo: peers.SyncEvolutionServer) -> peers.SyncEvolutionServer:
    """The module's server with an empty datastore (earlier tests' devices never sync again)."""
    for path in sevo.notes_dir.iterdir():
        path.unlink()
    return sevo


class Client:
    """A gitsync client folder syncing with the SyncEvolution server through the real HTTP transport."""

    def __init__(
        self,
        dir: Path,
        server: peers.SyncEvolutionServer,
        encoding: str = "wbxml",
        ver: str = "1.2",
        auth: str = "md5",
        **kw: object,
    ) -> None:
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.device_id = f"gitsync-test-{uuid.uuid4().hex[:12]}"
        self.options = {
            "url": server.url,
            "device_id": self.device_id,
            "name": "sevo",
            "remote_uri": server.datastore_uri,
            "encoding": WBXML_TYPE if encoding == "wbxml" else XML_TYPE,
            "ver_dtd": ver,
            "username": USER,
            "password": PASSWORD,
            "auth_type": auth,
            **kw,
        }

    def sync(self, mode: SyncMode = SyncMode.TWO_WAY, **kw: object) -> SyncReport:
        opts = ClientOptions(mode=mode, **{**self.options, **kw})  # type: ignore[arg-type]
        transport = HttpTransport(timeout=60)
        try:
            return sync_client(GitStore.open(self.dir), opts, transport)
        finally:
            transport.close()

    def notes(self) -> dict[str, bytes]:
        return read_notes(self.dir)


# ------------------------------------------------------------------------------------------ helpers


def se_notes(server: peers.SyncEvolutionServer) -> dict[str, bytes]:
    return read_notes(server.notes_dir)


def se_write(server: peers.SyncEvolutionServer, name: str, text: bytes) -> None:
    """Edit or create a memo as a SyncEvolution user would: CRLF, a modification time it notices."""
    path = server.notes_dir / name
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(text.replace(b"\n", b"\r\n"))
    stamp = max(path.stat().st_mtime_ns, old + 2_000_000_000)
    os.utime(path, ns=(stamp, stamp))


def se_add(server: peers.SyncEvolutionServer, text: bytes) -> str:
    """A new memo on the server, in a file name no memo ever had (a reused name is an edit)."""
    name = f"{500 + len(list(server.notes_dir.iterdir()))}{uuid.uuid4().int % 10_000:04d}"
    se_write(server, name, text)
    return name


def se_file(server: peers.SyncEvolutionServer, first_line: bytes) -> str:
    """The server file holding the memo that starts with ``first_line``."""
    (name,) = [n for n, b in se_notes(server).items() if b.startswith(first_line)]
    return name


def assert_same_notes(client: Client, server: peers.SyncEvolutionServer) -> None:
    """Exactly the same memos on both sides: our LF text is the server's CRLF text, byte for byte."""
    ours = client.notes()
    assert all(b"\r" not in body for body in ours.values()), "CRLF leaked into the client's files"
    theirs = Counter(se_notes(server).values())
    assert theirs == Counter(body.replace(b"\n", b"\r\n") for body in ours.values())


def se_messages(server: peers.SyncEvolutionServer, device_id: str) -> list[tuple[str, Message]]:
    """Every message the server received from (``in``) or sent to (``out``) ``device_id``, in order."""
    assert server.capture_dir is not None
    out = []
    for path in sorted(server.capture_dir.iterdir()):
        if path.suffix not in (".xml", ".wbxml"):
            continue
        msg, _ = decode(path.read_bytes())
        direction = path.stem.rsplit("-", 1)[1]
        peer = msg.header.source if direction == "in" else msg.header.target
        if peer == device_id:
            out.append((direction, msg))
    return out


def hdr_codes(messages: list[tuple[str, Message]]) -> list[int]:
    """The server's SyncHdr status codes, one per message it answered."""
    return [
        c.code
        for d, m in messages
        if d == "out"
        for c in m.commands
        if isinstance(c, Status) and c.cmd == "SyncHdr"
    ]


def chunks(messages: list[tuple[str, Message]], direction: str) -> int:
    """How many items went with MoreData (a large object's chunks but the last) in one direction."""
    return sum(
        1
        for d, m in messages
        if d == direction
        for c in m.commands
        if isinstance(c, Sync)
        for sub in c.commands
        if isinstance(sub, Add | Replace)
        for item in sub.items
        if item.more_data
    )


FIRST = {
    "plain.txt": b"Plain ASCII note\nsecond line\n",
    "gr\u00fc\u00dfe.txt": "Gr\u00fc\u00dfe aus K\u00f6ln \u2603\n\u65e5\u672c\u8a9e\n".encode(),
    "sub/todo.txt": b"Todo\n- write tests\n- ship\n",
}


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(("encoding", "ver", "auth"), COMBOS)
def test_first_and_two_way_syncs_with_changes_both_ways(
    server: peers.SyncEvolutionServer, tmp_path: Path, encoding: str, ver: str, auth: str
) -> None:
    seed = se_add(server, "Memo from SyncEvolution \u00e9t\u00e9\nline two\n".encode())
    client = Client(tmp_path / "client", server, encoding, ver, auth)
    write_notes(client.dir, FIRST)

    report = client.sync()
    assert report.mode == "slow"
    assert (report.local.add, report.remote.add, report.local.err, report.remote.err) == (1, 3, 0, 0)
    assert_same_notes(client, server)
    assert (
        client.notes()["Memo from SyncEvolution \u00e9t\u00e9.txt"]
        == "Memo from SyncEvolution \u00e9t\u00e9\nline two\n".encode()
    )

    # adds, edits and deletes on both sides
    write_notes(
        client.dir,
        {
            "plain.txt": b"Plain ASCII note\nsecond line, edited by gitsync\n",
            "sub/todo.txt": None,
            "new \u2713.txt": "Added by gitsync \u2713\n".encode(),
        },
    )
    se_write(server, seed, "Memo from SyncEvolution \u00e9t\u00e9\nline two\nline three \u00fc\n".encode())
    (server.notes_dir / se_file(server, "Gr\u00fc\u00dfe".encode())).unlink()
    se_add(server, "Added on the server \u00bd\n".encode())
    report = client.sync()
    assert report.mode == "two-way"
    assert (report.local.add, report.local.mod, report.local.dele) == (1, 1, 1)
    assert (report.remote.add, report.remote.mod, report.remote.dele) == (1, 1, 1)
    assert_same_notes(client, server)
    assert sorted(client.notes()) == [
        "Added on the server \u00bd.txt",
        "Memo from SyncEvolution \u00e9t\u00e9.txt",
        "new \u2713.txt",
        "plain.txt",
    ]
    assert git(client.dir, "status", "--porcelain") == ""

    # a sync with nothing to do changes nothing, byte for byte: no line break grows anywhere
    before_server, head = se_notes(server), git(client.dir, "rev-parse", "HEAD")
    report = client.sync()
    assert report.local.total() == 0 and report.remote.total() == 0
    assert se_notes(server) == before_server
    assert git(client.dir, "rev-parse", "HEAD") == head

    messages = se_messages(server, client.device_id)
    requests = [m for d, m in messages if d == "in"]
    assert {(m.header.ver_dtd, m.header.ver_proto) for m in requests} == {(ver, f"SyncML/{ver}")}
    assert all(m.header.cred is None or m.header.cred.type == f"syncml:auth-{auth}" for m in requests)
    assert requests[0].header.cred is not None
    # every session authenticated at the first attempt (md5: with the nonce the last session gave us)
    assert 401 not in hdr_codes(messages) and 407 not in hdr_codes(messages)
    if auth == "md5":
        state = GitStore.open(client.dir).state_load("sevo")
        assert state is not None and parse_kv(state.files.get("state")).get("nonce")
    suffixes = {p.suffix for p in server.capture_dir.iterdir()} if server.capture_dir else set()
    assert (".wbxml" if encoding == "wbxml" else ".xml") in suffixes


@pytest.mark.parametrize(("encoding", "ver", "auth"), [COMBOS[0], COMBOS[-1]])  # xml/1.1/basic, wbxml/1.2/md5
def test_one_way_and_refresh_syncs(
    server: peers.SyncEvolutionServer, tmp_path: Path, encoding: str, ver: str, auth: str
) -> None:
    client = Client(tmp_path / "client", server, encoding, ver, auth)
    write_notes(client.dir, {"a.txt": b"A note\n", "b.txt": "B n\u00f6te\n".encode()})
    client.sync()

    write_notes(
        client.dir, {"a.txt": b"A note\nedited by gitsync\n", "c.txt": b"C from gitsync\n", "b.txt": None}
    )
    se_add(server, "Server memo \u00df\n".encode())
    report = client.sync(SyncMode.ONE_WAY_FROM_CLIENT)
    assert report.mode == "one-way-from-client"
    assert (report.remote.add, report.remote.mod, report.remote.dele, report.local.total()) == (1, 1, 1, 0)
    assert "Server memo \u00df.txt" not in client.notes()
    assert sorted(se_notes(server).values()) == sorted(
        [b"A note\r\nedited by gitsync\r\n", b"C from gitsync\r\n", "Server memo \u00df\r\n".encode()]
    )

    se_write(server, se_file(server, b"C from"), b"C from gitsync\nand from the server\n")
    write_notes(client.dir, {"d.txt": b"D stays here for now\n"})
    report = client.sync(SyncMode.ONE_WAY_FROM_SERVER)
    assert report.mode == "one-way-from-server"
    assert (report.local.add, report.local.mod, report.remote.total()) == (1, 1, 0)
    assert client.notes()["c.txt"] == b"C from gitsync\nand from the server\n"
    assert b"D stays" not in b"".join(se_notes(server).values())

    # refresh from the server: the client ends with exactly the server's memos (d.txt goes)
    report = client.sync(SyncMode.REFRESH_FROM_SERVER)
    assert report.mode == "refresh-from-server"
    assert_same_notes(client, server)
    assert sorted(client.notes()) == ["Server memo \u00df.txt", "a.txt", "c.txt"]  # names kept
    # refresh from the client: the server ends with exactly the client's notes
    write_notes(client.dir, {"e.txt": b"E only here\n", "a.txt": None})
    report = client.sync(SyncMode.REFRESH_FROM_CLIENT)
    assert report.mode == "refresh-from-client"
    assert_same_notes(client, server)
    report = client.sync()
    assert report.mode == "two-way" and report.local.total() == report.remote.total() == 0


def test_line_breaks_do_not_grow_over_many_round_trips(
    server: peers.SyncEvolutionServer, tmp_path: Path
) -> None:
    client = Client(tmp_path / "client", server)
    text = b"Round trip\n"
    write_notes(client.dir, {"rt.txt": text, "no-newline.txt": b"no final line break"})
    client.sync()
    name = se_file(server, b"Round trip")
    for n in range(2):
        text += f"server {n}\n".encode()
        se_write(server, name, text)
        client.sync()
        assert client.notes()["rt.txt"] == text
        text += f"client {n}\n".encode()
        write_notes(client.dir, {"rt.txt": text})
        client.sync()
        assert se_notes(server)[name] == text.replace(b"\n", b"\r\n")
    # a note without a final line break gets one on the server (Synthesis always ends a memo with
    # one); it is the same text, so nothing moves back
    assert client.notes()["no-newline.txt"] == b"no final line break"
    assert se_notes(server)[se_file(server, b"no final")] == b"no final line break\r\n"


def test_both_sides_edit_the_same_memo_and_both_versions_survive(
    server: peers.SyncEvolutionServer, tmp_path: Path
) -> None:
    """Synthesis settles it by duplicate: 201 for our Replace, its version back as an Add."""
    client = Client(tmp_path / "client", server)
    write_notes(client.dir, {"shop.txt": b"Shopping\neggs\nmilk\n"})
    client.sync()
    se_write(server, se_file(server, b"Shopping"), b"Shopping\neggs (6)\nmilk\n")
    write_notes(client.dir, {"shop.txt": b"Shopping\neggs (12)\nmilk\n"})
    report = client.sync()
    assert report.conflicts == 1 and report.local.add == 1 and report.remote.err == 0
    assert sorted(client.notes().values()) == [b"Shopping\neggs (12)\nmilk\n", b"Shopping\neggs (6)\nmilk\n"]
    assert_same_notes(client, server)
    report = client.sync()
    assert report.local.total() == report.remote.total() == 0


@pytest.mark.parametrize("encoding", ["xml", "wbxml"])
def test_notes_bigger_than_a_message_travel_as_large_objects(
    server: peers.SyncEvolutionServer, tmp_path: Path, encoding: str
) -> None:
    """Both ways: our 300 KB note exceeds the server's MaxMsgSize (150000) and goes in chunks; with
    our MaxMsgSize at 20000 the server sends its big memo in chunks, cut inside UTF-8 sequences."""
    big = "".join(
        f"line {i}: \u00e4\u00f6\u00fc \u65e5\u672c some filler text\n" for i in range(7000)
    ).encode()
    assert len(big) > 150_000
    client = Client(tmp_path / "client", server, encoding, max_msg_size=20_000)
    write_notes(client.dir, {"big.txt": big})
    client.sync()
    assert list(se_notes(server).values()) == [big.replace(b"\n", b"\r\n")]
    messages = se_messages(server, client.device_id)
    assert chunks(messages, "in") >= 2

    theirs = big.replace(b"line", b"LINE")
    se_add(server, theirs)
    report = client.sync()
    assert report.local.add == 1 and report.local.err == 0
    assert theirs in client.notes().values()
    assert chunks(se_messages(server, client.device_id), "out") >= 10
    assert_same_notes(client, server)


def test_wrong_or_missing_credentials_fail_without_blocking_the_server(
    server: peers.SyncEvolutionServer, tmp_path: Path
) -> None:
    for auth in ("md5", "basic"):
        client = Client(tmp_path / f"wrong-{auth}", server, auth=auth)
        write_notes(client.dir, {"x.txt": b"x\n"})
        with pytest.raises(AuthError):
            client.sync(password="not the password")
        assert se_notes(server) == {}
    client = Client(tmp_path / "anonymous", server, username=None, password=None)
    with pytest.raises(AuthError):
        client.sync()
    # the server is free again at once
    client = Client(tmp_path / "right", server)
    write_notes(client.dir, {"x.txt": b"x\n"})
    assert client.sync().remote.add == 1


def test_a_device_that_lost_its_nonce_is_challenged_once_and_retries(
    server: peers.SyncEvolutionServer, tmp_path: Path
) -> None:
    """A notes folder cloned afresh for a known device id: it has no nonce, the server expects the
    one it gave last time, answers 401 with a new one, and our client's second try gets in."""
    client = Client(tmp_path / "old", server)
    write_notes(client.dir, {"n.txt": b"kept\n"})
    client.sync()
    clone = Client(tmp_path / "clone", server)
    clone.device_id = clone.options["device_id"] = client.device_id  # type: ignore[assignment]
    report = clone.sync()
    assert report.mode == "slow" and list(clone.notes().values()) == [b"kept\n"]
    codes = hdr_codes(se_messages(server, client.device_id))
    assert codes.count(401) == 1 and codes[codes.index(401) + 1] == 212


def test_cli_sync_with_syncevolution(server: peers.SyncEvolutionServer, tmp_path: Path) -> None:
    """``gitsync-notes sync`` as a user runs it: WBXML, SyncML 1.1, MD5, datastore "memo"."""
    folder = tmp_path / "notes"
    write_notes(folder, {"cli.txt": "From the command line \u2713\n".encode()})
    device = f"gitsync-cli-{uuid.uuid4().hex[:8]}"
    args: list[str | Path] = ["sync", folder, "--remote", server.url, "--remote-uri", server.datastore_uri]
    args += [
        "--encoding",
        "wbxml",
        "--syncml",
        "1.1",
        "--auth",
        "md5",
        "-u",
        USER,
        "-p",
        PASSWORD,
        "--id",
        device,
    ]
    peers.run_gitsync(*args)
    assert list(se_notes(server).values()) == ["From the command line \u2713\r\n".encode()]
    se_add(server, b"Back from SyncEvolution\n")
    peers.run_gitsync(
        "sync", folder, "-p", PASSWORD, "--encoding", "wbxml", "--syncml", "1.1"
    )  # rest remembered
    assert read_notes(folder)["Back from SyncEvolution.txt"] == b"Back from SyncEvolution\n"


def test_files_a_text_plain_server_cannot_carry_are_not_sent_and_stay(
    server: peers.SyncEvolutionServer, tmp_path: Path
) -> None:
    """Issue 14: binary and non-UTF-8 notes are not sent to the text/plain server (it would store a
    lossy copy), every sync says so, and a refresh from the server deletes none of them here."""
    client = Client(tmp_path / "client", server)
    unusual = {
        "photo.png": b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)),
        "latin1.txt": "caf\u00e9\n".encode("latin-1"),
        "nul.txt": b"a\x00b\n",
    }
    write_notes(client.dir, {**unusual, "text.txt": b"plain text\n"})
    report = client.sync()
    assert sorted(report.uncarried) == sorted(unusual) and not report.failed()
    assert [f.read_bytes() for f in server.notes_dir.iterdir()] == [b"plain text\r\n"]
    report = client.sync(SyncMode.REFRESH_FROM_SERVER)
    assert sorted(report.uncarried) == sorted(unusual) and not report.failed()
    assert client.notes() == {**unusual, "text.txt": b"plain text\n"}
    assert git(client.dir, "status", "--porcelain") == ""
