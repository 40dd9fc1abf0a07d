"""gitsync client ↔ gitsync server forced into what phones speak: WBXML, SyncML 1.1, MD5, 4 KB messages.

Every message of the sessions is recorded and decoded again, so the tests see what went over the wire:
its size against MaxMsgSize, its encoding, the package split (Alert 222, NumberOfChanges for the whole
package) and the large objects (MoreData, Size) for notes bigger than a message.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from pathlib import Path

import pytest
import requests

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.errors import AuthError
from gitsync.model import SyncMode
from gitsync.protocol.auth import md5_digest
from gitsync.protocol.constants import AUTH_MD5
from gitsync.protocol.messages import (
    Add,
    Alert,
    Command,
    DevInf,
    Message,
    Put,
    Replace,
    Status,
    Sync,
    SyncHdr,
)
from gitsync.store.git import GitStore
from gitsync.sync.report import SyncReport
from gitsync.sync.state import parse_kv
from gitsync.transport.inprocess import InProcessTransport
from tests import peers
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes

MAX = 4096
USER, PASSWORD = "alice", "s3cret p\u00e4ss"


@dataclasses.dataclass
class Exchange:
    request: Message
    reply: Message
    sizes: tuple[int, int]
    media: tuple[str, str]


class Recorder(InProcessTransport):
    """The in-process transport, keeping every request and reply (decoded) for the test to inspect."""

    def __init__(self, app: object) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.log: list[Exchange] = []

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        data, media = super().exchange(url, body, content_type)
        self.log.append(
            Exchange(
                decode(body, content_type)[0],
                decode(data, media)[0],
                (len(body), len(data)),
                (content_type, media),
            )
        )
        return data, media


def _server(tmp: Path) -> Loopback:
    tmp.mkdir(parents=True, exist_ok=True)
    return Loopback(
        tmp, server_options=ServerOptions(users={USER: PASSWORD}, auth_type=AUTH_MD5, max_msg_size=MAX)
    )


def _sync(
    lb: Loopback, name: str, mode: SyncMode = SyncMode.TWO_WAY, **kw: object
) -> tuple[SyncReport, Recorder]:
    options = {
        "encoding": WBXML_TYPE,
        "ver_dtd": "1.1",
        "username": USER,
        "password": PASSWORD,
        "auth_type": "md5",
        "max_msg_size": MAX,
        **kw,
    }
    opts = ClientOptions(url=lb.url, device_id=f"dev-{name}", name="server", mode=mode, **options)  # type: ignore[arg-type]
    rec = Recorder(lb.app)
    return sync_client(GitStore.open(lb.client_dir(name)), opts, rec), rec


def _notes(count: int) -> dict[str, bytes]:
    rnd = random.Random(9)
    words = [
        "alpha",
        "b\u00eata",
        "\u0433\u0430\u043c\u043c\u0430",
        "\u65e5\u672c",
        "\u00e9t\u00e9",
        "zulu",
        "caf\u00e9",
    ]
    notes: dict[str, bytes] = {}
    for i in range(count):
        lines = [
            " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 12))) for _ in range(rnd.randint(1, 6))
        ]
        folder = ("sub/", "\u00fcml\u00e4ut/", "")[i % 3]
        notes[f"{folder}note {i:03d}.txt"] = ("\n".join(lines) + "\n").encode()
    # notes bigger than a whole message: they must travel as large objects (MoreData)
    notes["big/plain.txt"] = b"".join(f"line {n} of a big note\n".encode() for n in range(900))
    notes["big/utf8 \u2603.txt"] = ("\u2603 sn\u00f6wman \u65e5\u672c\u8a9e " * 700 + "\n").encode()
    notes["big/crlf.txt"] = b"windows\r\nline endings\r\n" * 400
    return notes


def _commands(msg: Message) -> list[Command]:
    out: list[Command] = []
    for cmd in msg.commands:
        out.append(cmd)
        out.extend(getattr(cmd, "commands", ()) if isinstance(cmd, Sync) else ())
    return out


def _check_wire(rec: Recorder, limit: int = MAX) -> None:
    """Every message within the limit, WBXML both ways with exactly that type, SyncML 1.1 throughout."""
    for ex in rec.log:
        assert ex.sizes[0] <= limit and ex.sizes[1] <= limit, ex.sizes
        assert ex.media == (WBXML_TYPE, WBXML_TYPE)
        for msg in (ex.request, ex.reply):
            assert (msg.header.ver_dtd, msg.header.ver_proto) == ("1.1", "SyncML/1.1")
            assert msg.header.meta is not None and msg.header.meta.max_msg_size == MAX


def _hdr_codes(rec: Recorder) -> list[int]:
    return [
        c.code for ex in rec.log for c in ex.reply.commands if isinstance(c, Status) and c.cmd == "SyncHdr"
    ]


def _more_data(rec: Recorder, *, requests_: bool) -> list[tuple[Add | Replace, int]]:
    """(command, MsgID) of every chunk that says more is to come, in requests or in replies."""
    out = []
    for ex in rec.log:
        msg = ex.request if requests_ else ex.reply
        for cmd in _commands(msg):
            if isinstance(cmd, Add | Replace) and any(i.more_data for i in cmd.items):
                out.append((cmd, msg.header.msg_id))
    return out


def test_500_notes_over_wbxml_syncml_1_1_md5_and_4k_messages(tmp_path: Path) -> None:
    lb = _server(tmp_path)
    notes = _notes(500)
    write_notes(lb.client_dir("a"), notes)

    report, rec = _sync(lb, "a")
    assert report.mode == "slow" and report.remote.add == len(notes) and report.remote.err == 0
    assert read_notes(lb.server_dir) == notes
    _check_wire(rec)
    assert 30 < len(rec.log) < 200, len(rec.log)  # really split, but not one note per message

    first = rec.log[0].request
    assert first.header.cred is not None and first.header.cred.type == AUTH_MD5
    assert first.header.cred.data == md5_digest(USER, PASSWORD, b"")  # first contact: empty nonce
    put = next(c for c in first.commands if isinstance(c, Put))
    assert put.items[0].source == "./devinf11" and isinstance(put.items[0].data, DevInf)
    assert (
        put.items[0].data.ver_dtd == "1.1"
        and put.meta
        and put.meta.type == "application/vnd.syncml-devinf+wbxml"
    )
    hdr = next(c for c in rec.log[0].reply.commands if isinstance(c, Status) and c.cmd == "SyncHdr")
    assert hdr.code == 212 and hdr.chal is not None and hdr.chal.next_nonce
    assert _hdr_codes(rec)[1:] == [200] * (len(rec.log) - 1)

    # one package 3 over many messages: NumberOfChanges for all of it, once; no Final until the end
    syncs = [(ex, c) for ex in rec.log for c in ex.request.commands if isinstance(c, Sync)]
    assert [c.number_of_changes for _, c in syncs if c.number_of_changes is not None] == [len(notes)]
    assert sum(len(c.commands) for _, c in syncs) == len(notes) + len(_more_data(rec, requests_=True))
    assert [ex.request.final for ex, _ in syncs].count(True) == 1 and syncs[-1][0].request.final
    # the server asks for the rest of the package with Alert 222 while it comes in
    alerts_222 = [
        c for ex, _ in syncs[:-1] for c in ex.reply.commands if isinstance(c, Alert) and c.code == 222
    ]
    assert len(alerts_222) == len(syncs) - 1

    # the big notes went as large objects: a Size on the first chunk, 213 for every chunk but the last
    chunks = _more_data(rec, requests_=True)
    assert len(chunks) >= 3
    firsts = [c for c, _ in chunks if c.meta is not None and c.meta.size is not None]
    assert len(firsts) == 3 and all(c.meta and c.meta.size and c.meta.size > MAX for c in firsts)
    codes = {
        (ex.request.header.msg_id, c.cmd_ref): c.code
        for ex in rec.log
        for c in ex.reply.commands
        if isinstance(c, Status) and c.cmd == "Add"
    }
    assert all(codes[(msg_id, c.cmd_id)] == 213 for c, msg_id in chunks)

    # a second device gets all 500 through 4 KB replies, big notes in chunks it answers 213
    report, rec = _sync(lb, "b")
    assert report.local.add == len(notes) and report.local.err == 0
    assert read_notes(lb.client_dir("b")) == notes
    _check_wire(rec)
    assert len(_more_data(rec, requests_=False)) >= 3
    replies = [c for ex in rec.log for c in ex.reply.commands if isinstance(c, Sync)]
    assert [c.number_of_changes for c in replies if c.number_of_changes is not None] == [len(notes)]
    assert git(lb.client_dir("b"), "status", "--porcelain") == ""

    # changes both ways, a big one among them, then both devices agree with the server
    write_notes(
        lb.client_dir("b"),
        {
            "\u00fcml\u00e4ut/note 001.txt": None,
            "sub/note 000.txt": "edited on b: \u00e4\u00f6\u00fc\n".encode(),
            "big/plain.txt": notes["big/plain.txt"] + b"one more line from b\n",
            "new from b.txt": b"hello from b\n",
        },
    )
    write_notes(lb.server_dir, {"note 002.txt": "server edit \u2713\n".encode()})
    report, rec = _sync(lb, "b")
    assert (report.remote.add, report.remote.mod, report.remote.dele) == (1, 2, 1)
    assert report.local.mod == 1
    assert len(_more_data(rec, requests_=True)) >= 1  # the edited big note as a chunked Replace
    _check_wire(rec)
    report, rec = _sync(lb, "a")
    assert report.mode == "two-way"
    _check_wire(rec)
    assert read_notes(lb.client_dir("a")) == read_notes(lb.server_dir) == read_notes(lb.client_dir("b"))
    assert read_notes(lb.server_dir)["big/plain.txt"].endswith(b"one more line from b\n")


def test_md5_nonce_is_kept_per_device_on_both_sides(tmp_path: Path) -> None:
    lb = _server(tmp_path)
    write_notes(lb.client_dir("a"), {"a.txt": b"a\n"})
    for name in ("a", "b", "a", "b"):
        _report, rec = _sync(lb, name)
        assert _hdr_codes(rec)[0] == 212  # never a 401: each device used the nonce it was given
        assert len(rec.log) == 3

    def nonces(name: str) -> tuple[str, str, bytes]:
        client = GitStore.open(lb.client_dir(name)).state_load("server")
        server = lb.server_store.state_load(f"device-dev-{name}")
        assert client is not None and server is not None
        got = parse_kv(client.files.get("state"))["nonce"]
        kept = parse_kv(server.files.get("state"))["nonce"]
        return got, kept, base64.b64decode(kept)

    got_a, kept_a, raw_a = nonces("a")
    got_b, kept_b, raw_b = nonces("b")
    assert got_a == kept_a and got_b == kept_b  # the client stored what the server will expect
    assert raw_a and raw_b and raw_a != raw_b

    # the next message of device a uses its own nonce
    _report, rec = _sync(lb, "a")
    cred = rec.log[0].request.header.cred
    assert cred is not None and cred.data == md5_digest(USER, PASSWORD, raw_a)
    assert _hdr_codes(rec)[0] == 212 and nonces("a")[2] not in (raw_a, b"")


def test_a_stale_nonce_costs_one_challenge_then_succeeds(tmp_path: Path) -> None:
    """The client's nonce is not the one the server expects (another server here): 401, retry, 212."""
    lb = _server(tmp_path / "one")
    write_notes(lb.client_dir("a"), {"a.txt": b"a\n"})
    _sync(lb, "a")
    other = _server(tmp_path / "two")  # same URL, a server that never gave this device a nonce
    other.client_dir = lb.client_dir  # type: ignore[method-assign]
    report, rec = _sync(other, "a")
    assert _hdr_codes(rec)[:2] == [401, 212]
    assert rec.log[0].request.commands == rec.log[1].request.commands  # package 1 again, new Cred
    assert read_notes(other.server_dir) == {"a.txt": b"a\n"}
    assert report.remote.add == 1


def test_wrong_password_fails_and_changes_nothing(tmp_path: Path) -> None:
    lb = _server(tmp_path)
    write_notes(lb.client_dir("a"), {"a.txt": b"a\n"})
    with pytest.raises(AuthError, match="401"):
        _sync(lb, "a", password="wrong")
    assert read_notes(lb.server_dir) == {}
    assert lb.server_store.state_load("device-dev-a") is None


class PeerDevInf(Recorder):
    """Our client, but announcing another DevInf (Man, Mod, SupportLargeObjs) to the server."""

    def __init__(self, app: object, **devinf: object) -> None:
        super().__init__(app)
        self.devinf = devinf

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        msg, _ = decode(body, content_type)
        cmds = []
        for cmd in msg.commands:
            if isinstance(cmd, Put) and isinstance(cmd.items[0].data, DevInf):
                devinf = dataclasses.replace(cmd.items[0].data, **self.devinf)  # type: ignore[arg-type]
                cmd = dataclasses.replace(cmd, items=(dataclasses.replace(cmd.items[0], data=devinf),))
            cmds.append(cmd)
        body = encode(dataclasses.replace(msg, commands=tuple(cmds)), content_type)
        return super().exchange(url, body, content_type)


@pytest.mark.parametrize(
    ("devinf", "splits"),
    [
        ({"man": "pysyncml", "mod": "pysyncml.cli.notes", "support_large_objs": True}, False),
        ({"man": "ACME", "mod": "Phone 1", "support_large_objs": False}, True),
    ],
    ids=["pysyncml", "no-SupportLargeObjs"],
)
def test_no_large_objects_toward_peers_that_cannot_take_them(
    tmp_path: Path, devinf: dict[str, object], splits: bool
) -> None:
    """pysyncml (its profile: whatever its DevInf claims) gets one message per package and whole
    objects; a phone whose DevInf lacks SupportLargeObjs gets split packages but whole objects."""
    lb = _server(tmp_path)
    write_notes(lb.server_dir, {f"n{i}.txt": b"x" * 300 for i in range(40)} | {"big.txt": b"y" * 20000})
    git(lb.server_dir, "add", "-A")
    git(lb.server_dir, "commit", "-qm", "notes")
    store = GitStore.open(lb.client_dir("p"))
    opts = ClientOptions(
        url=lb.url,
        device_id="peer-1",
        name="server",
        encoding=XML_TYPE,
        max_msg_size=MAX,
        username=USER,
        password=PASSWORD,
        auth_type="md5",
    )
    rec = PeerDevInf(lb.app, **devinf)
    report = sync_client(store, opts, rec)
    assert report.local.add == 41 and read_notes(store.root)["big.txt"] == b"y" * 20000
    replies = [ex.reply for ex in rec.log]
    assert not _more_data(rec, requests_=False)
    # a split package 4: replies without Final, the client asking for the rest with Alert 222
    requests_ = [ex.request for ex in rec.log]
    alerts_222 = [c for m in requests_ for c in m.commands if isinstance(c, Alert) and c.code == 222]
    oversized = [ex.sizes[1] for ex in rec.log if ex.sizes[1] > MAX]
    assert len(oversized) == 1 and oversized[0] > 20000  # the big note, whole
    if splits:
        assert alerts_222 and not all(m.final for m in replies)
    else:
        assert not alerts_222 and all(m.final for m in replies)


def test_real_http_server_answers_in_the_request_encoding(tmp_path: Path) -> None:
    """``gitsync-notes serve`` and ``gitsync-notes sync`` over a socket, forced into WBXML/1.1/MD5/4 KB."""
    users = tmp_path / "users"
    users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
    client = tmp_path / "client"
    notes = _notes(60)
    write_notes(client, notes)
    with peers.GitsyncServer(tmp_path / "server", extra=["--users", str(users), "--auth", "md5"]) as server:
        for media in (XML_TYPE, WBXML_TYPE):
            # a message the server cannot take in: still a SyncML reply, in the request's encoding
            probe = Message(
                header=SyncHdr(ver_dtd="1.1", ver_proto="SyncML/1.1", target=server.url, source=media)
            )
            resp = requests.post(
                server.url, data=encode(probe, media), headers={"Content-Type": media}, timeout=10
            )
            assert resp.status_code == 200
            assert resp.headers["Content-Type"] == media
            reply, encoding = decode(resp.content, resp.headers["Content-Type"])
            assert encoding == media and reply.commands[0].code == 407  # type: ignore[attr-defined]
        args: list[str | Path] = [
            "sync",
            client,
            "--remote",
            server.url,
            "--encoding",
            "wbxml",
            "--syncml",
            "1.1",
            "--auth",
            "md5",
        ]
        args += ["-u", USER, "-p", PASSWORD, "--max-msg-size", str(MAX), "--id", "cli-1", "-q"]
        peers.run_gitsync(*args)
        assert read_notes(tmp_path / "server") == notes
        write_notes(client, {"sub/note 000.txt": "changed \u00fc\n".encode()})
        peers.run_gitsync(*args)
        assert read_notes(tmp_path / "server")["sub/note 000.txt"] == "changed \u00fc\n".encode()
    assert "(status 401)" not in server.output()  # the client never needed a retry (a port may contain 401)
