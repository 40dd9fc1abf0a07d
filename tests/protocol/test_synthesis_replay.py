"""Captured SyncEvolution (Synthesis engine) client messages replayed against our server.

The captures (``../shared/reference/messages/synthesis/``, see its README) are what a real
SyncEvolution 2.0 client sent to a Synthesis server: WBXML, SyncML 1.2, MD5 credentials, Put+Get+Alert
in package 1, text/plain memos with CRLF plus an extra trailing CRLF, duplicate conflict handling.
The three ``local-*`` sessions form one history of one device (each session's Last anchor is the
previous one's Next), so they are replayed in order against one gitsync server repository, and every
reply is checked command by command.

The client's bytes go out exactly as captured, except where a message names something only the
server chose: the CmdIDs and GUIDs of the server's commands.  Those references are rewritten to our
server's (``_retarget``); a Status or MapItem for a command our server did not send is left out.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest

from gitsync.app.server import ServerOptions, SyncServer
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.formats.lineendings import canonical
from gitsync.protocol.auth import md5_digest
from gitsync.protocol.constants import AUTH_MD5
from gitsync.protocol.messages import (
    Add,
    Alert,
    Anchor,
    Command,
    DevInf,
    Map,
    Message,
    Put,
    Results,
    Status,
    Sync,
)
from gitsync.protocol.profiles import PROFILES, PYSYNCML, SYNTHESIS, Rule, profile_for
from gitsync.store.git import GitStore
from gitsync.sync.state import parse_kv, parse_rows
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import git, read_notes, shared_path, write_notes

CAPTURES = shared_path("reference", "messages", "synthesis")
DEVICE = "syncevolution-3b2425a0-1ac0-4818-9162-7564a49c4f38"
URL = "http://sync.test/syncml"

pytestmark = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"no captures at {CAPTURES}")


def _capture(scenario: str, name: str) -> bytes:
    return (CAPTURES / scenario / name).read_bytes()


class Replay:
    """Our server over a real Git repository, fed captured client messages over in-process HTTP."""

    def __init__(self, root: Path, options: ServerOptions | None = None) -> None:
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.store = GitStore.open(self.dir)
        self.server = SyncServer(self.store, options or ServerOptions())
        self.http = InProcessTransport(self.server.wsgi_app())
        self.url = URL
        self.media: list[str] = []

    def new_session(self) -> None:
        self.url = URL
        self.http.cookies.clear()

    def post(self, body: bytes, content_type: str = WBXML_TYPE) -> Message:
        data, media = self.http.exchange(self.url, body, content_type)
        self.media.append(media)
        reply, encoding = decode(data, media)
        assert encoding == media, "the reply's content type must name its encoding"
        if reply.header.resp_uri:
            self.url = reply.header.resp_uri
        return reply

    def state(self) -> tuple[dict[str, str], list[tuple[str, ...]]]:
        snap = self.store.state_load(f"device-{DEVICE}")
        assert snap is not None, "the session did not commit its state"
        return parse_kv(snap.files.get("state")), parse_rows(snap.files.get("map"), 3)


# ------------------------------------------------------------------------------------------ helpers


def _statuses(msg: Message) -> list[tuple[str, int, int, tuple[str, ...], tuple[str, ...]]]:
    """(Cmd, CmdRef, code, TargetRefs, SourceRefs) of every Status, in order."""
    return [
        (c.cmd, c.cmd_ref, c.code, c.target_refs, c.source_refs)
        for c in msg.commands
        if isinstance(c, Status)
    ]


def _names(msg: Message) -> list[str]:
    return [type(c).__name__ for c in msg.commands]


def _only(msg: Message, kind: type[Command]) -> Command:
    found = [c for c in msg.commands if isinstance(c, kind)]
    assert len(found) == 1, f"{len(found)} {kind.__name__} commands in {_names(msg)}"
    return found[0]


def _sync(msg: Message) -> Sync:
    sync = _only(msg, Sync)
    assert isinstance(sync, Sync)
    return sync


def _alert(msg: Message) -> Alert:
    alert = _only(msg, Alert)
    assert isinstance(alert, Alert)
    return alert


def _check_header(reply: Message, request: Message) -> None:
    """The echo discipline: same session, same MsgID, addresses swapped, a RespURI."""
    hdr, req = reply.header, request.header
    assert (hdr.ver_dtd, hdr.ver_proto) == (req.ver_dtd, req.ver_proto)
    assert (hdr.session_id, hdr.msg_id) == (req.session_id, req.msg_id)
    assert (hdr.target, hdr.source) == (req.source, req.target)
    assert hdr.resp_uri is not None and hdr.resp_uri.startswith(URL + "?sessionid=")
    assert reply.final


def _check_devinf_results(reply: Message, request_type: str, uri: str = "./devinf12") -> DevInf:
    results = _only(reply, Results)
    assert isinstance(results, Results)
    assert results.cmd_ref == 2 and results.msg_ref == 1
    assert results.meta is not None and results.meta.type == request_type
    (item,) = results.items
    assert item.source == uri
    assert isinstance(item.data, DevInf)
    assert item.data.ver_dtd == uri[-2] + "." + uri[-1]
    assert item.data.support_large_objs and item.data.support_number_of_changes
    (store,) = item.data.datastores
    assert "text/plain" in {ct.ct_type for ct in (*store.rx_pref, *store.rx)}
    return item.data


def _by_content(cmds: Iterable[Command], *, guid: bool) -> dict[bytes, str]:
    """Canonical text → the id an Add (Source GUID) or Replace/Delete (Target LUID) carries."""
    out: dict[bytes, str] = {}
    for cmd in cmds:
        for item in getattr(cmd, "items", ()):
            key = item.source if guid else item.target
            if isinstance(item.data, bytes) and key:
                out[canonical(item.data)] = key
    return out


def _retarget(captured: Message, ours: Message, guids: dict[str, str]) -> Message:
    """``captured`` with its references to the server's commands pointing at ``ours``.

    ``guids`` maps the GUIDs the captured server used to the ones our server chose.  Statuses and
    MapItems for commands our server did not send are dropped; everything else is untouched.
    """
    our_sync = next((c for c in ours.commands if isinstance(c, Sync)), None)
    subs = our_sync.commands if our_sync else ()
    by_kind = {type(c).__name__: c.cmd_id for c in ours.commands if isinstance(c, Alert | Results | Sync)}
    out: list[Command] = []
    for cmd in captured.commands:
        if isinstance(cmd, Status) and cmd.cmd in ("Add", "Replace", "Delete"):
            # the Status names an Add by its GUID (SourceRef), a Replace/Delete by its LUID (TargetRef)
            sources = tuple(guids.get(ref, "?") for ref in cmd.source_refs)
            match = [
                c.cmd_id
                for c in subs
                if type(c).__name__ == cmd.cmd
                and (
                    tuple(i.source for i in getattr(c, "items", ())) == sources
                    if cmd.cmd == "Add"
                    else tuple(i.target for i in getattr(c, "items", ())) == cmd.target_refs
                )
            ]
            if match:
                out.append(dataclasses.replace(cmd, cmd_ref=match[0], source_refs=sources))
        elif isinstance(cmd, Status) and cmd.cmd in by_kind:
            out.append(dataclasses.replace(cmd, cmd_ref=by_kind[cmd.cmd]))
        elif isinstance(cmd, Map):
            items = tuple(
                dataclasses.replace(m, target=guids[m.target]) for m in cmd.items if m.target in guids
            )
            if items:
                out.append(dataclasses.replace(cmd, items=items))
        else:
            out.append(cmd)
    return dataclasses.replace(captured, commands=tuple(out))


def _guid_map(scenario: str, captured_reply: str, ours: Message) -> dict[str, str]:
    """Captured server GUID → our GUID, pairing the two servers' Adds by their text."""
    theirs, _ = decode(_capture(scenario, captured_reply))
    capt = _by_content(_sync(theirs).commands, guid=True)
    mine = _by_content(_sync(ours).commands, guid=True)
    return {capt[text]: mine[text] for text in capt if text in mine}


# ------------------------------------------------------------------------------------------ sessions

SERVER_NOTES = {
    "SE memo one.txt": b"SE memo one\nbody of memo one\n",
    "SE memo two.txt": b"SE memo two\n",
}


def _slow_sync_first(rp: Replay) -> dict[str, str]:
    """local-slowsync-first: Put+Get+Alert 201, Adds both ways, one Map with two MapItems."""
    scenario = "local-slowsync-first"
    rp.new_session()
    pkg1 = _capture(scenario, "m1-c2s-pkg1.wbxml")
    request, _ = decode(pkg1, WBXML_TYPE)
    reply = rp.post(pkg1)
    _check_header(reply, request)
    assert reply.header.meta is not None and reply.header.meta.max_msg_size
    assert _statuses(reply) == [
        ("SyncHdr", 0, 200, (), (DEVICE,)),  # the captured Target LocURI is empty
        ("Alert", 3, 200, ("memo",), ("./memo",)),
        ("Put", 1, 200, (), ("./devinf12",)),
        ("Get", 2, 200, ("./devinf12",), ()),
    ]
    alert_status = next(c for c in reply.commands if isinstance(c, Status) and c.cmd == "Alert")
    assert [i.data for i in alert_status.items] == [Anchor(next="20261124T160516Z")]
    _check_devinf_results(reply, "application/vnd.syncml-devinf+wbxml")
    alert = _alert(reply)
    assert alert.code == 201  # first contact: slow sync
    (item,) = alert.items
    assert (item.target, item.source) == ("./memo", "memo")
    assert item.meta is not None and item.meta.anchor is not None
    assert item.meta.anchor.last is None and item.meta.anchor.next
    assert _names(reply) == ["Status", "Status", "Status", "Status", "Results", "Alert"]  # no Put/Get

    pkg3 = _capture(scenario, "m2-c2s-pkg3.wbxml")
    request, _ = decode(pkg3, WBXML_TYPE)
    reply = rp.post(pkg3)
    _check_header(reply, request)
    assert _statuses(reply) == [
        ("SyncHdr", 0, 200, (f"?sessionid={6547935179111951109}",), (DEVICE,)),
        ("Sync", 4, 200, ("memo",), ("./memo",)),
        ("Add", 5, 201, (), ("100",)),
    ]
    sync = _sync(reply)
    assert (sync.target, sync.source, sync.number_of_changes) == ("./memo", "memo", 2)
    assert [type(c).__name__ for c in sync.commands] == ["Add", "Add"]
    sent = {}
    for add in sync.commands:
        assert isinstance(add, Add) and add.meta is not None and add.meta.type == "text/plain"
        (it,) = add.items
        assert it.source and len(it.source) <= 64 and it.target is None and isinstance(it.data, bytes)
        sent[it.data] = it.source
    # CRLF on the wire, and no final line break: Synthesis adds one when it stores the memo
    assert set(sent) == {b"SE memo one\r\nbody of memo one", b"SE memo two"}

    guids = _guid_map(scenario, "m2-s2c-pkg4.wbxml", reply)
    assert sorted(guids) == ["1", "2"]
    pkg5 = _retarget(decode(_capture(scenario, "m3-c2s-pkg5.wbxml"))[0], reply, guids)
    assert [len(c.items) for c in pkg5.commands if isinstance(c, Map)] == [2]
    reply = rp.post(encode(pkg5, WBXML_TYPE))
    _check_header(reply, pkg5)
    assert _statuses(reply) == [
        ("SyncHdr", 0, 200, (f"?sessionid={6547935179111951109}",), (DEVICE,)),
        ("Map", 6, 200, ("memo",), ("./memo",)),
    ]
    assert _names(reply) == ["Status", "Status"]
    return guids


def test_three_captured_sessions_replay_against_our_server(tmp_path: Path) -> None:
    rp = Replay(tmp_path / "server")
    write_notes(rp.dir, SERVER_NOTES)

    # ---- session 1: slow sync; the client's memo arrives without Synthesis's extra line break
    _slow_sync_first(rp)
    assert read_notes(rp.dir) == {**SERVER_NOTES, "Server side memo.txt": b"Server side memo\nsecond line\n"}
    state, rows = rp.state()
    assert state["client_anchor"] == "20261124T160516Z"
    assert sorted(luid for _guid, luid, _path in rows) == ["100", "101", "102"]
    assert git(rp.dir, "status", "--porcelain") == ""
    first_server_anchor = state["server_anchor"]

    # meanwhile on the server: the memo the client sent gets a line, memo two goes
    write_notes(
        rp.dir,
        {
            "Server side memo.txt": b"Server side memo\nsecond line\nserver-role edit\n",
            "SE memo two.txt": None,
        },
    )

    # ---- session 2: two-way; the client edits that memo too (a conflict) and memo one, adds one
    scenario = "local-twoway-conflict-duplicate"
    rp.new_session()
    pkg1 = _capture(scenario, "m1-c2s-pkg1.wbxml")
    request, _ = decode(pkg1, WBXML_TYPE)
    reply = rp.post(pkg1)
    _check_header(reply, request)
    assert [s[:3] for s in _statuses(reply)] == [
        ("SyncHdr", 0, 200),
        ("Alert", 3, 200),
        ("Put", 1, 200),
        ("Get", 2, 200),
    ]
    alert = _alert(reply)
    assert alert.code == 200  # the client's Last is the Next we stored: no slow sync
    anchor = alert.items[0].meta.anchor if alert.items[0].meta else None
    assert anchor is not None and anchor.last == first_server_anchor and anchor.next != first_server_anchor

    pkg3 = _capture(scenario, "m2-c2s-pkg3.wbxml")
    reply = rp.post(pkg3)
    _check_header(reply, decode(pkg3)[0])
    assert [s for s in _statuses(reply) if s[0] != "SyncHdr"] == [
        ("Sync", 4, 200, ("memo",), ("./memo",)),
        ("Replace", 5, 207, (), ("100",)),  # both sides edited: merged
        ("Replace", 6, 200, (), ("101",)),
        ("Add", 7, 201, (), ("103",)),
    ]
    sync = _sync(reply)
    assert sync.number_of_changes == 2
    out = {(type(c).__name__, c.items[0].target): c.items[0].data for c in sync.commands}  # type: ignore[attr-defined]
    assert out == {
        ("Replace", "100"): b"Server side memo\r\nclient-role edit\r\nsecond line\r\nserver-role edit",
        ("Delete", "102"): None,
    }

    pkg5 = _retarget(decode(_capture(scenario, "m3-c2s-pkg5.wbxml"))[0], reply, {})
    reply = rp.post(encode(pkg5, WBXML_TYPE))
    _check_header(reply, pkg5)
    assert _names(reply) == ["Status"] and _statuses(reply)[0][:3] == ("SyncHdr", 0, 200)

    expected = {
        "SE memo one.txt": b"SE memo one\nbody of memo one\nclient-side edit\n",
        "Server side memo.txt": b"Server side memo\nclient-role edit\nsecond line\nserver-role edit\n",
        "New on client side.txt": b"New on client side\n",
    }
    assert read_notes(rp.dir) == expected
    state, rows = rp.state()
    assert state["client_anchor"] == "20261124T160543Z"
    assert sorted(luid for _guid, luid, _path in rows) == ["100", "101", "103"]
    # the merged Replace got no Status (the captured client answered a duplicate Add instead)
    subject = git(rp.dir, "log", "-1", "--format=%s").strip()
    assert subject == f"sync with device-{DEVICE}: +1 ~2 -0 in, +0 ~0 -1 out"

    # ---- session 3: the client deletes the note it added
    scenario = "local-twoway-client-delete"
    rp.new_session()
    reply = rp.post(_capture(scenario, "m1-c2s-pkg1.wbxml"))
    assert _alert(reply).code == 200
    pkg3 = _capture(scenario, "m2-c2s-pkg3.wbxml")
    reply = rp.post(pkg3)
    _check_header(reply, decode(pkg3)[0])
    assert [s for s in _statuses(reply) if s[0] != "SyncHdr"] == [
        ("Sync", 4, 200, ("memo",), ("./memo",)),
        ("Delete", 5, 200, (), ("103",)),
    ]
    sync = _sync(reply)
    assert sync.commands == () and sync.number_of_changes == 0
    reply = rp.post(_capture(scenario, "m3-c2s-pkg5.wbxml"))
    assert _names(reply) == ["Status"]
    del expected["New on client side.txt"]
    assert read_notes(rp.dir) == expected
    assert rp.state()[0]["client_anchor"] == "20261124T160649Z"
    assert git(rp.dir, "status", "--porcelain") == ""
    # every reply spoke the request's encoding, with exactly its content type
    assert set(rp.media) == {WBXML_TYPE}


# ------------------------------------------------------------------------------------------ anchors


def _with_anchor(body: bytes, last: str | None, next_: str) -> bytes:
    msg, _ = decode(body)
    cmds = []
    for cmd in msg.commands:
        if isinstance(cmd, Alert):
            item = cmd.items[0]
            assert item.meta is not None
            meta = dataclasses.replace(item.meta, anchor=Anchor(last=last, next=next_))
            cmd = dataclasses.replace(cmd, items=(dataclasses.replace(item, meta=meta),))
        cmds.append(cmd)
    return encode(dataclasses.replace(msg, commands=tuple(cmds)), WBXML_TYPE)


@pytest.mark.parametrize(
    "anchor",
    ["1795536091", "2026-11-24 16:05:16 +01:00", "Ω anchor/with;odd=chars&<tags>", "x" * 64],
)
def test_anchors_are_opaque_strings(tmp_path: Path, anchor: str) -> None:
    """Anchors in any format: compared for equality only; a mismatch is a 508 to Synthesis."""
    rp = Replay(tmp_path / "server")
    rp.new_session()
    reply = rp.post(_with_anchor(_capture("local-slowsync-first", "m1-c2s-pkg1.wbxml"), None, anchor))
    status = next(c for c in reply.commands if isinstance(c, Status) and c.cmd == "Alert")
    assert [i.data for i in status.items] == [Anchor(next=anchor)]
    reply = rp.post(_capture("local-slowsync-first", "m2-c2s-pkg3.wbxml"))
    reply = rp.post(
        encode(
            _retarget(decode(_capture("local-slowsync-first", "m3-c2s-pkg5.wbxml"))[0], reply, {}), WBXML_TYPE
        )
    )
    assert rp.state()[0]["client_anchor"] == anchor

    pkg1 = _capture("local-twoway-conflict-duplicate", "m1-c2s-pkg1.wbxml")
    rp.new_session()
    reply = rp.post(_with_anchor(pkg1, anchor, "next-1"))
    assert [s[2] for s in _statuses(reply) if s[0] == "Alert"] == [200]
    assert _alert(reply).code == 200

    rp.new_session()  # the session above was abandoned; a wrong Last now means a slow sync
    reply = rp.post(_with_anchor(pkg1, anchor + "?", "next-2"))
    assert [s[2] for s in _statuses(reply) if s[0] == "Alert"] == [508]
    assert _alert(reply).code == 201


# ------------------------------------------------------------------------------------------ pkg1 over HTTP


HTTP_PKG1 = "http-pkg1-syncevolution-client"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("m1-c2s-pkg1.wbxml", WBXML_TYPE), ("m1-c2s-pkg1-enableWBXML0.xml", XML_TYPE)],
)
def test_real_http_pkg1_with_md5_and_empty_nonce(tmp_path: Path, name: str, content_type: str) -> None:
    """SyncEvolution's real first message: MD5 over an empty nonce, LocName = user, Alert to "notes"."""
    rp = Replay(tmp_path / "server", ServerOptions(users={"guest": "guest"}, auth_type=AUTH_MD5))
    body = _capture(HTTP_PKG1, name)
    request, _ = decode(body, content_type)
    reply = rp.post(body, content_type)
    assert rp.media == [content_type]  # the request's encoding, with exactly that type
    _check_header(reply, request)
    hdr_status = reply.commands[0]
    assert isinstance(hdr_status, Status) and (hdr_status.cmd, hdr_status.code) == ("SyncHdr", 212)
    assert hdr_status.chal is not None and hdr_status.chal.type == AUTH_MD5
    assert hdr_status.chal.format == "b64" and hdr_status.chal.next_nonce
    assert [s[:3] for s in _statuses(reply)[1:]] == [("Alert", 3, 200), ("Put", 1, 200), ("Get", 2, 200)]
    devinf_type = content_type.replace("syncml+", "syncml-devinf+")
    _check_devinf_results(reply, devinf_type)
    alert = _alert(reply)
    assert alert.code == 201 and (alert.items[0].target, alert.items[0].source) == ("./memo", "notes")


def test_wrong_md5_password_gets_401_with_a_fresh_nonce(tmp_path: Path) -> None:
    rp = Replay(tmp_path / "server", ServerOptions(users={"guest": "not guest"}, auth_type=AUTH_MD5))
    reply = rp.post(_capture(HTTP_PKG1, "m1-c2s-pkg1.wbxml"))
    assert _names(reply) == ["Status"]  # nothing else is looked at
    (status,) = reply.commands
    assert isinstance(status, Status) and status.code == 401
    assert status.chal is not None and status.chal.type == AUTH_MD5 and status.chal.next_nonce


def test_md5_retry_with_the_challenged_nonce_is_accepted(tmp_path: Path) -> None:
    """Missing credentials → 407 + nonce; the same message with MD5 over that nonce → 212."""
    rp = Replay(tmp_path / "server", ServerOptions(users={"guest": "guest"}, auth_type=AUTH_MD5))
    msg, _ = decode(_capture(HTTP_PKG1, "m1-c2s-pkg1.wbxml"))
    reply = rp.post(
        encode(dataclasses.replace(msg, header=dataclasses.replace(msg.header, cred=None)), WBXML_TYPE)
    )
    (status,) = reply.commands
    assert isinstance(status, Status) and status.code == 407 and status.chal and status.chal.next_nonce
    nonce = base64.b64decode(status.chal.next_nonce)
    assert msg.header.cred is not None
    cred = dataclasses.replace(msg.header.cred, data=md5_digest("guest", "guest", nonce))
    retry = dataclasses.replace(msg, header=dataclasses.replace(msg.header, cred=cred))
    reply = rp.post(encode(retry, WBXML_TYPE))
    assert _statuses(reply)[0][:3] == ("SyncHdr", 0, 212)
    assert _alert(reply).code == 201


# ------------------------------------------------------------------------------------------ variants


def _xml_pkg1(*replace: tuple[str, str]) -> bytes:
    """The captured XML pkg1 with some text replaced."""
    text = _capture(HTTP_PKG1, "m1-c2s-pkg1-enableWBXML0.xml").decode()
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    return text.encode()


@pytest.mark.parametrize("uri", ["Notes", "./notes", "note", "memo", "Memo", "./Memo", "pnote", "snote"])
def test_datastore_aliases_phones_use(tmp_path: Path, uri: str) -> None:
    rp = Replay(tmp_path / "server")
    target = "<Target><LocURI>{}</LocURI></Target><Source><LocURI>./memo"
    reply = rp.post(_xml_pkg1((target.format("notes"), target.format(uri))), XML_TYPE)
    assert [s[2] for s in _statuses(reply) if s[0] == "Alert"] == [200]
    assert _alert(reply).items[0].source == uri


def test_unknown_datastore_is_404(tmp_path: Path) -> None:
    rp = Replay(tmp_path / "server")
    target = "<Target><LocURI>{}</LocURI>"
    reply = rp.post(_xml_pkg1((target.format("notes"), target.format("contacts"))), XML_TYPE)
    assert [s[2] for s in _statuses(reply) if s[0] == "Alert"] == [404]
    assert not [c for c in reply.commands if isinstance(c, Alert)]


def test_syncml_1_1_gets_devinf_1_1_at_devinf11(tmp_path: Path) -> None:
    """The same pkg1 as SyncML 1.1 (what older phones speak): everything answers in 1.1."""
    body = _xml_pkg1(
        ("SYNCML:SYNCML1.2", "SYNCML:SYNCML1.1"),
        ("<VerProto>SyncML/1.2</VerProto>", "<VerProto>SyncML/1.1</VerProto>"),
        ("<VerDTD>1.2</VerDTD>", "<VerDTD>1.1</VerDTD>"),  # SyncHdr and DevInf
        ("devinf12", "devinf11"),
    )
    for encoding, payload in ((XML_TYPE, body), (WBXML_TYPE, encode(decode(body)[0], WBXML_TYPE))):
        rp = Replay(tmp_path / encoding.rsplit("+", 1)[1])
        reply = rp.post(payload, encoding)
        assert rp.media == [encoding]
        assert (reply.header.ver_dtd, reply.header.ver_proto) == ("1.1", "SyncML/1.1")
        assert [s[:3] for s in _statuses(reply)] == [
            ("SyncHdr", 0, 200),
            ("Alert", 3, 200),
            ("Put", 1, 200),
            ("Get", 2, 200),
        ]
        _check_devinf_results(reply, encoding.replace("syncml+", "syncml-devinf+"), "./devinf11")
        assert _alert(reply).code == 201


# ------------------------------------------------------------------------------------------ large objects


def _chunked_pkg3(parts: list[bytes], size: int | None) -> list[Message]:
    """The captured slow-sync pkg3, its one Add cut into ``parts`` over as many messages (MoreData)."""
    msg, _ = decode(_capture("local-slowsync-first", "m2-c2s-pkg3.wbxml"))
    sync = _sync(msg)
    (add,) = sync.commands
    assert isinstance(add, Add) and add.meta is not None
    out = []
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        item = dataclasses.replace(add.items[0], data=part, more_data=not last)
        meta = dataclasses.replace(add.meta, size=size) if n == 0 else add.meta
        chunk = dataclasses.replace(add, cmd_id=10 + n, meta=meta, items=(item,))
        cmds = [c for c in msg.commands if not isinstance(c, Sync)] if n == 0 else []
        cmds.append(dataclasses.replace(sync, cmd_id=9, number_of_changes=None, commands=(chunk,)))
        header = dataclasses.replace(msg.header, msg_id=2 + n)
        out.append(Message(header=header, commands=tuple(cmds), final=last))
    return out


@pytest.mark.parametrize("encoding", [WBXML_TYPE, XML_TYPE])
def test_large_object_in_chunks_is_acknowledged_213_and_stored_whole(tmp_path: Path, encoding: str) -> None:
    """Synthesis cuts at byte offsets: inside a UTF-8 sequence and between CR and LF.  In XML that
    makes a chunk that is not UTF-8, and a parser that turns the stray CR into LF."""
    text = ("Gr\u00fc\u00dfe\r\n" + "memo body line \u00e4\r\n" * 300 + "\r\n").encode()
    cut1 = text.index("\u00fc".encode()) + 1  # inside "ü"
    cut2 = text.index(b"\r\n", 2000) + 1  # between CR and LF
    parts = [text[:cut1], text[cut1:cut2], text[cut2:]]
    rp = Replay(tmp_path / "server")
    rp.post(_capture("local-slowsync-first", "m1-c2s-pkg1.wbxml"))
    for n, msg in enumerate(_chunked_pkg3(parts, len(text))):
        if encoding == XML_TYPE:
            # the way Synthesis writes it: raw bytes in CDATA, whatever the cut did to them
            body = encode(msg, XML_TYPE).replace(b"&#13;", b"\r")
        else:
            body = encode(msg, WBXML_TYPE)
        reply = rp.post(body, encoding)
        adds = [s for s in _statuses(reply) if s[0] == "Add"]
        if n < 2:
            assert adds == [("Add", 10 + n, 213, (), ("100",))]
            assert not reply.final
            assert any(isinstance(c, Alert) and c.code == 222 for c in reply.commands)
        else:
            assert adds == [("Add", 12, 201, (), ("100",))]
    reply = rp.post(
        encode(
            _retarget(decode(_capture("local-slowsync-first", "m3-c2s-pkg5.wbxml"))[0], reply, {}), WBXML_TYPE
        )
    )
    assert read_notes(rp.dir) == {
        "Gr\u00fc\u00dfe.txt": ("Gr\u00fc\u00dfe\n" + "memo body line \u00e4\n" * 300).encode()
    }


def test_large_object_of_the_wrong_size_is_refused_424(tmp_path: Path) -> None:
    text = b"0123456789\r\n" * 100
    rp = Replay(tmp_path / "server")
    rp.post(_capture("local-slowsync-first", "m1-c2s-pkg1.wbxml"))
    first, last = _chunked_pkg3([text[:500], text[500:]], len(text) + 7)
    assert [s[2] for s in _statuses(rp.post(encode(first, WBXML_TYPE))) if s[0] == "Add"] == [213]
    reply = rp.post(encode(last, WBXML_TYPE))
    assert [s[2] for s in _statuses(reply) if s[0] == "Add"] == [424]
    assert not [c for c in _sync(reply).commands if isinstance(c, Add) and c.items[0].data == text]
    rp.post(
        encode(
            _retarget(decode(_capture("local-slowsync-first", "m3-c2s-pkg5.wbxml"))[0], reply, {}), WBXML_TYPE
        )
    )
    assert read_notes(rp.dir) == {}


def test_the_captured_synthesis_devinf_selects_the_synthesis_profile() -> None:
    """Peer habits come from one table keyed by DevInf Man/Mod (and SwV where versions differ)."""
    msg, _ = decode(_capture("local-slowsync-first", "m1-c2s-pkg1.wbxml"))
    put = next(c for c in msg.commands if isinstance(c, Put))
    devinf = put.items[0].data
    assert isinstance(devinf, DevInf) and devinf.support_large_objs
    assert profile_for(devinf) is SYNTHESIS
    assert SYNTHESIS.adds_trailing_newline and SYNTHESIS.crlf_text and SYNTHESIS.large_objects
    assert profile_for(dataclasses.replace(devinf, man="pysyncml", mod="pysyncml.cli.notes")) is PYSYNCML
    assert not PYSYNCML.multi_message and not PYSYNCML.large_objects
    table = (Rule("syncevolution", PYSYNCML, sw_v_below="3.4.0.10"), *PROFILES)
    assert profile_for(devinf, table) is SYNTHESIS  # SwV 3.4.0.47 is not below 3.4.0.10
    assert profile_for(dataclasses.replace(devinf, sw_v="3.4.0.9"), table) is PYSYNCML
