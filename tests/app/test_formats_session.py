"""Whole sessions against our server with each note format, as the peers that use them send it.

The server is the real one over a real Git repository; the other end is a scripted device
built on our own sans-I/O ``ClientSession`` but with the device's DevInf (a phone that
speaks only vNote, a Synthesis client with text/plain only, Outlook with SIF-N), sending
payloads byte for byte as such devices do and keeping what it receives as it receives it.
The DevInf alone decides the format the server sends back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from gitsync.app.client import ClientOptions, sync_client
from gitsync.app.server import ServerOptions, SyncServer
from gitsync.codec import WBXML_TYPE, XML_TYPE, decode, encode
from gitsync.formats import NoteData, SifNoteFormat, VNoteFormat, negotiate
from gitsync.formats.names import safe_relpath
from gitsync.model import ChangeKind, SyncMode
from gitsync.protocol.client import ClientConfig, ClientSession
from gitsync.protocol.events import (
    Acknowledged,
    ChangesReceived,
    InChange,
    ItemResult,
    OutChange,
    PeerDevInf,
    SyncModeDecided,
    SyncRequested,
)
from gitsync.protocol.messages import Add, Anchor, CTInfo, DataStore, DevInf, Message, Meta, Replace, Sync
from gitsync.protocol.server import ServerConfig, ServerSession
from gitsync.store.git import GitStore
from gitsync.sync.devinf import our_devinf
from gitsync.sync.ids import peer_ref_name
from gitsync.sync.report import SyncReport
from gitsync.transport.inprocess import InProcessTransport
from tests.helpers import git, read_notes, write_notes

URL = "http://sync.test/notes"
SIFN = ("text/x-s4j-sifn", "1.1")
SIFN_10 = ("text/x-s4j-sifn", "1.0")
TEXT = ("text/plain", "1.0")
VNOTE = ("text/x-vnote", "1.1")


class Device:
    """A SyncML client device: its own DevInf, its own payloads, a note store keyed by LUID."""

    def __init__(
        self,
        app: Callable[..., object],
        *,
        man: str,
        mod: str = "model",
        formats: Sequence[tuple[str, str]],
        dev_id: str | None = None,
        encoding: str = XML_TYPE,
        ver_dtd: str = "1.2",
        local_uri: str = "./Notes",
    ) -> None:
        cts = tuple(CTInfo(ct_type=t, ver_ct=v) for t, v in formats)
        self.dev_id = dev_id or f"{man}-{mod}".lower().replace(" ", "-")
        self.devinf = DevInf(
            ver_dtd=ver_dtd,
            man=man,
            mod=mod,
            dev_id=self.dev_id,
            dev_typ="phone",
            datastores=(
                DataStore(
                    source_ref=local_uri,
                    rx_pref=cts[:1],
                    rx=cts[1:],
                    tx_pref=cts[:1],
                    tx=cts[1:],
                    sync_types=(1, 2),
                ),
            ),
        )
        self.transport = InProcessTransport(app)  # type: ignore[arg-type]
        self.encoding = encoding
        self.ver_dtd = ver_dtd
        self.local_uri = local_uri
        self.items: dict[str, InChange] = {}  # LUID → the last thing the server sent for it
        self.anchor: str | None = None
        self.server_devinf: DevInf | None = None
        self.statuses: dict[str, int] = {}  # our key → the server's status
        self.bodies: list[bytes] = []  # every message we sent, encoded
        self.transform: Callable[[Message], Message] | None = None
        self._n = 0

    def sync(self, *changes: OutChange, mode: SyncMode | None = None) -> list[InChange]:
        """One session; returns what the server sent."""
        self._n += 1
        nxt = f"anchor-{self._n}"
        mode = mode or (SyncMode.TWO_WAY if self.anchor else SyncMode.SLOW)
        config = ClientConfig(
            url=URL,
            device_id=self.dev_id,
            devinf=self.devinf,
            mode=mode,
            local_uri=self.local_uri,
            remote_uri="notes",
            last_anchor=self.anchor,
            next_anchor=nxt,
            session_id=str(self._n),
            ver_dtd=self.ver_dtd,
            peer_devinf=self.server_devinf,
        )
        session = ClientSession(config)
        session.use_wbxml_devinf(self.encoding != XML_TYPE)
        got: list[InChange] = []
        msg: Message | None = session.start()
        while msg is not None:
            if self.transform is not None:
                msg = self.transform(msg)
            body = encode(msg, self.encoding)
            self.bodies.append(body)
            reply, media = self.transport.exchange(session.resp_uri or URL, body, self.encoding)
            for ev in session.receive(decode(reply, media)[0]):
                if isinstance(ev, PeerDevInf):
                    self.server_devinf = ev.devinf
                elif isinstance(ev, SyncModeDecided):
                    session.provide_changes(list(changes))
                elif isinstance(ev, Acknowledged):
                    self.statuses.update({change.key: code for change, code in ev.results})
                elif isinstance(ev, ChangesReceived):
                    session.provide_results([self._take(ch) for ch in ev.changes])
                    got += ev.changes
            msg = session.next_message()
        self.anchor = nxt
        return got

    def _take(self, ch: InChange) -> ItemResult:
        if ch.kind is ChangeKind.ADD:
            luid = f"srv-{len(self.items) + 1}"
            self.items[luid] = ch
            return ItemResult(code=201, luid=luid)
        assert ch.luid is not None
        if ch.kind is ChangeKind.DELETE:
            self.items.pop(ch.luid, None)
        else:
            self.items[ch.luid] = ch
        return ItemResult(code=200)


def add(luid: str, data: bytes, ct: tuple[str, str]) -> OutChange:
    return OutChange(kind=ChangeKind.ADD, key=luid, data=data, content_type=ct[0], version=ct[1])


def replace(luid: str, data: bytes, ct: tuple[str, str]) -> OutChange:
    return OutChange(kind=ChangeKind.MODIFY, key=luid, data=data, content_type=ct[0], version=ct[1])


class Server:
    """Our server over a real repository, with the reports of its sessions."""

    def __init__(self, tmp: Path, notes: dict[str, bytes] | None = None) -> None:
        self.dir = tmp / "server"
        self.dir.mkdir()
        if notes:
            write_notes(self.dir, notes)
        self.reports: list[SyncReport] = []
        self.store = GitStore.open(self.dir)
        self.app = SyncServer(self.store, ServerOptions(on_report=self.reports.append)).wsgi_app()

    def notes(self) -> dict[str, bytes]:
        return read_notes(self.dir)

    def state_file(self, device: Device, name: str) -> bytes | None:
        snap = self.store.state_load("device-" + peer_ref_name(device.dev_id))
        return snap.files.get(name) if snap else None


def by_name(changes: Sequence[InChange], fmt: SifNoteFormat | VNoteFormat) -> dict[str | None, InChange]:
    return {fmt.parse(ch.data or b"").name: ch for ch in changes}


# ---------------------------------------------------------------- what we advertise


def test_we_advertise_sifn_11_preferred_then_the_others(tmp_path: Path) -> None:
    server = Server(tmp_path)
    phone = Device(server.app, man="Acme", formats=[TEXT])
    phone.sync()
    assert phone.server_devinf is not None
    (store,) = phone.server_devinf.datastores
    sifn_11 = CTInfo(ct_type="text/x-s4j-sifn", ver_ct="1.1")
    others = {SIFN_10, TEXT, ("text/plain", "1.1"), VNOTE}
    for pref, rest in ((store.rx_pref, store.rx), (store.tx_pref, store.tx)):
        assert pref == (sifn_11,)
        assert {(c.ct_type, c.ver_ct) for c in rest} == others
    # the client role advertises the same (as cached by a server it talked to)
    assert our_devinf("x", server=False).datastores[0].rx_pref == (sifn_11,)


def test_the_peers_preference_order_picks_the_format(tmp_path: Path) -> None:
    server = Server(tmp_path, {"a.txt": b"alpha\n"})
    for formats, expected in (
        ([TEXT, SIFN], "text/plain"),  # prefers text/plain though it could take SIF-N
        ([VNOTE, TEXT], "text/x-vnote"),
        ([("application/x-unknown", "9"), SIFN_10], "text/x-s4j-sifn"),
    ):
        device = Device(server.app, man="Acme", mod=expected, formats=formats)
        (got,) = device.sync()
        assert got.content_type == expected
        ds = device.devinf.datastores[0]
        assert negotiate(ds).content_type == expected
        assert f"content_type={expected}\n".encode() in (server.state_file(device, "state") or b"")


# ---------------------------------------------------------------- text/plain


def test_text_plain_only_device(tmp_path: Path) -> None:
    server = Server(tmp_path, {"todo.txt": b"Todo\nbuy milk\n", "sub/deep.txt": b"deep\n"})
    device = Device(server.app, man="Acme", mod="Memo", formats=[TEXT])
    got = device.sync(add("1", b"Groceries\nmilk\n", TEXT))
    assert sorted(ch.data or b"" for ch in got) == [b"Todo\nbuy milk\n", b"deep\n"]  # the body, nothing else
    assert {ch.content_type for ch in got} == {"text/plain"}
    assert server.notes()["Groceries.txt"] == b"Groceries\nmilk\n"  # named after its first line
    # a Replace keeps the file's name: text/plain carries none
    todo = next(luid for luid, ch in device.items.items() if ch.data == b"Todo\nbuy milk\n")
    device.sync(replace(todo, b"Shopping list\nbuy milk\n", TEXT))
    assert server.notes()["todo.txt"] == b"Shopping list\nbuy milk\n"
    assert "Shopping list.txt" not in server.notes()


def test_crlf_peer_gets_crlf_and_each_file_keeps_its_own_line_endings(tmp_path: Path) -> None:
    server = Server(tmp_path, {"unix.txt": b"Unix\nnote\n", "win.txt": b"Windows\r\nnote\r\n"})
    phone = Device(server.app, man="NOKIA", mod="6230i", formats=[TEXT, ("text/plain", "1.1")])
    got = phone.sync(add("100", b"Phone memo\r\nsecond line\r\n", TEXT))
    assert sorted(ch.data or b"" for ch in got) == [b"Unix\r\nnote\r\n", b"Windows\r\nnote\r\n"]
    assert server.notes()["Phone memo.txt"] == b"Phone memo\nsecond line\n"  # new notes: LF
    luid = {ch.data: key for key, ch in phone.items.items()}
    unix, win = luid[b"Unix\r\nnote\r\n"], luid[b"Windows\r\nnote\r\n"]

    # edits from the CRLF peer: each file keeps the convention it had
    phone.sync(
        replace(unix, b"Unix\r\nnote edited\r\n\r\n", TEXT),
        replace(win, b"Windows\r\nnote edited\r\n\r\n", TEXT),
    )
    notes = server.notes()
    assert notes["unix.txt"] == b"Unix\nnote edited\n\n"
    assert notes["win.txt"] == b"Windows\r\nnote edited\r\n\r\n"

    # a change of line endings (or of trailing blank lines) alone is no change
    head = git(server.dir, "rev-parse", "HEAD")
    phone.sync(replace(unix, b"Unix\nnote edited\n", TEXT), replace(win, b"Windows\nnote edited", TEXT))
    assert server.notes() == notes
    assert server.reports[-1].local.total() == 0
    assert git(server.dir, "rev-parse", "HEAD") == head

    # the server's user edits: the peer gets CRLF, never doubled
    write_notes(server.dir, {"win.txt": b"Windows\r\nnote\r\nthird\r\n", "unix.txt": b"Unix\nagain\n"})
    got = phone.sync()
    assert sorted(ch.data or b"" for ch in got) == [b"Unix\r\nagain\r\n", b"Windows\r\nnote\r\nthird\r\n"]


# ---------------------------------------------------------------- vNote


def test_vnote_phone_with_iso_8859_1(tmp_path: Path) -> None:
    server = Server(tmp_path, {"hello.txt": "Hello\nGrüße\n".encode()})
    phone = Device(
        server.app, man="SonyEricsson", mod="K800i", formats=[VNOTE], encoding=WBXML_TYPE, ver_dtd="1.1"
    )
    memo = (
        b"BEGIN:VNOTE\r\nVERSION:1.1\r\n"
        b"SUMMARY;CHARSET=ISO-8859-1:Einkauf f\xfcr K\xf6ln\r\n"
        b"BODY;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:Einkauf f=FCr K=F6ln=0D=0A=\r\n"
        b"Br=F6tchen, K=E4se\r\n"
        b"DCREATED:20260101T120000Z\r\nCATEGORIES:Personal\r\nX-IRMC-LUID:000000000012\r\n"
        b"END:VNOTE\r\n"
    )
    got = phone.sync(add("12", memo, VNOTE))
    # converted to UTF-8, CRLF → LF for a new file, named after SUMMARY
    assert server.notes()["Einkauf für Köln"] == "Einkauf für Köln\nBrötchen, Käse".encode()
    # the phone gets vNote (its only format), with CRLF
    (hello,) = got
    assert hello.content_type == "text/x-vnote"
    note = VNoteFormat(version="1.1").parse(hello.data or b"")
    assert note.name == "hello.txt" and note.body == "Hello\r\nGrüße\r\n".encode()

    # the server's user edits the phone's memo: the phone's own fields come back with it
    write_notes(server.dir, {"Einkauf für Köln": "Einkauf für Köln\nBrötchen, Käse, Milch\n".encode()})
    (back,) = phone.sync()
    assert back.kind is ChangeKind.MODIFY and back.luid == "12"
    note = VNoteFormat(version="1.1").parse(back.data or b"")
    assert note.body == "Einkauf für Köln\r\nBrötchen, Käse, Milch\r\n".encode()
    assert note.extra == (
        ("DCREATED", "20260101T120000Z"),
        ("CATEGORIES", "Personal"),
        ("X-IRMC-LUID", "000000000012"),
    )


# ---------------------------------------------------------------- SIF-N


OUTLOOK_NOTE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<note><SIFVersion>1.0</SIFVersion>'
    b"<Subject>Meeting.txt</Subject><Body>Agenda\r\n- budget\r\n</Body>"
    b"<Categories>Work</Categories><Color>3</Color><Height>200</Height><Width>240</Width>"
    b"<Left>80</Left><Top>60</Top><X-Funambol-Custom>keep me</X-Funambol-Custom></note>"
)
OUTLOOK_FIELDS = (
    ("Categories", "Work"),
    ("Color", "3"),
    ("Height", "200"),
    ("Width", "240"),
    ("Left", "80"),
    ("Top", "60"),
    ("X-Funambol-Custom", "keep me"),
)


def test_sif_fields_we_do_not_map_survive_a_round_trip(tmp_path: Path) -> None:
    server = Server(tmp_path)
    outlook = Device(server.app, man="Funambol", mod="Outlook Sync Client", formats=[SIFN_10, TEXT])
    outlook.sync(add("ol-1", OUTLOOK_NOTE, SIFN_10))
    assert server.notes() == {"Meeting.txt": b"Agenda\n- budget\n"}
    # kept in the device's sync state in git, not in the work tree
    assert git(server.dir, "ls-files").split() == [".gitattributes", "Meeting.txt"]
    assert b"X-Funambol-Custom" in (server.state_file(outlook, "extras") or b"")

    sif = SifNoteFormat(version="1.0")
    write_notes(server.dir, {"Meeting.txt": b"Agenda\n- budget\n- hiring\n"})
    (back,) = outlook.sync()
    assert back.luid == "ol-1" and back.content_type == "text/x-s4j-sifn"
    note = sif.parse(back.data or b"")
    assert note.name == "Meeting.txt"
    assert note.body == b"Agenda\r\n- budget\r\n- hiring\r\n"  # Outlook gets CRLF
    assert note.extra == OUTLOOK_FIELDS

    # Outlook changes only the colour: the file does not change, the new colour is kept
    recoloured = sif.render(dataclasses.replace(note, extra=(("Color", "1"), *OUTLOOK_FIELDS[2:])))
    head = git(server.dir, "rev-parse", "HEAD")
    outlook.sync(replace("ol-1", recoloured, SIFN_10))
    assert git(server.dir, "rev-parse", "HEAD") == head
    write_notes(server.dir, {"Meeting.txt": b"Agenda\n- hiring\n"})
    (back,) = outlook.sync()
    assert dict(sif.parse(back.data or b"").extra)["Color"] == "1"

    # a rename on the server keeps them too
    (server.dir / "Meeting.txt").rename(server.dir / "Meeting 2026.txt")
    (back,) = outlook.sync()
    note = sif.parse(back.data or b"")
    assert note.name == "Meeting 2026.txt" and dict(note.extra)["Color"] == "1"


def test_fields_are_not_sent_in_another_format(tmp_path: Path) -> None:
    server = Server(tmp_path)
    outlook = Device(server.app, man="Funambol", mod="Outlook Sync Client", formats=[SIFN_10])
    outlook.sync(add("ol-1", OUTLOOK_NOTE, SIFN_10))
    # the same device later only takes text/plain (a new DevInf): no XML fields leak into the text
    text_only = dataclasses.replace(outlook.devinf.datastores[0], rx_pref=(CTInfo(ct_type="text/plain"),))
    outlook.devinf = dataclasses.replace(outlook.devinf, datastores=(text_only,))
    outlook.server_devinf = None
    write_notes(server.dir, {"Meeting.txt": b"Agenda\n"})
    (back,) = outlook.sync()
    assert back.content_type == "text/plain" and back.data == b"Agenda\r\n"


# ---------------------------------------------------------------- encodings


def _command_level_b64(msg: Message) -> Message:
    """Move every Add/Replace to ``Meta/Format b64`` on the command, as Funambol clients send SIF."""

    def fix(cmd: object) -> object:
        if isinstance(cmd, Add | Replace):
            return dataclasses.replace(cmd, meta=dataclasses.replace(cmd.meta or Meta(), format="b64"))
        return cmd

    commands = tuple(
        dataclasses.replace(c, commands=tuple(fix(x) for x in c.commands)) if isinstance(c, Sync) else c  # type: ignore[misc]
        for c in msg.commands
    )
    return dataclasses.replace(msg, commands=commands)


def test_base64_items_and_undecodable_bytes(tmp_path: Path) -> None:
    raw = b"caf\xe9 \xff\xfe not UTF-8 \x01\n"  # XML cannot carry it: the codec sends it as b64
    server = Server(tmp_path, {"bytes.bin.txt": b"server side \xff\xfe\x00 raw\n"})
    device = Device(server.app, man="Acme", formats=[TEXT])
    got = device.sync(add("1", raw, TEXT))
    assert any(b"b64</Format>" in body for body in device.bodies)
    assert raw in server.notes().values()  # every byte kept
    # a text/plain phone would keep a lossy copy of the server's binary note: it is not sent
    # (issue 14), and it stays on the server as it is
    assert got == []
    assert server.notes()["bytes.bin.txt"] == b"server side \xff\xfe\x00 raw\n"

    # Format b64 on the command (Funambol) rather than on the item
    outlook = Device(server.app, man="Funambol", mod="Outlook Sync Client", formats=[SIFN])
    outlook.transform = _command_level_b64
    sif = SifNoteFormat(version="1.1").render
    outlook.sync(add("b1", sif(NoteData(name="b64 note.txt", body="über\r\n".encode())), SIFN))
    assert any(b"b64</Format>" in body for body in outlook.bodies)
    assert server.notes()["b64 note.txt"] == "über\n".encode()

    # vNote that claims UTF-8 but is not: the bytes are kept as they came
    phone = Device(server.app, man="Nokia", mod="6230i", formats=[VNOTE])
    phone.sync(
        add(
            "v1",
            b"BEGIN:VNOTE\r\nVERSION:1.1\r\nSUMMARY:bad.txt\r\n"
            b"BODY;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:ok =FF=FE end\r\nEND:VNOTE\r\n",
            VNOTE,
        )
    )
    assert server.notes()["bad.txt"] == b"ok \xff\xfe end"


# ---------------------------------------------------------------- names


HOSTILE = [
    "../escape.txt",
    "../../../../../../tmp/escape2.txt",
    "/etc/evil.txt",
    ".git/config",
    ".git/hooks/post-commit",
    ".GIT/HEAD",
    "sub/../../up.txt",
    "tab\there.txt",
    "ctl\x01\x1fname.txt",
    "CON.txt",
    "aux",
    "com1",
    "C:\\Windows\\win.ini",
    "trailing dot. ",
    ".gitattributes",
    "x" * 400 + ".txt",
    "",
    "   ",
]


def test_unsafe_names_from_peers_stay_inside_with_safe_names(tmp_path: Path) -> None:
    server = Server(tmp_path, {"keep.txt": b"keep\n"})
    config_before = (server.dir / ".git" / "config").read_bytes()
    gitattributes = (server.dir / ".gitattributes").read_bytes()
    vnote = VNoteFormat(version="1.1")
    phone = Device(server.app, man="Acme", formats=[VNOTE])  # vNote carries control characters (QP)
    changes = [
        add(f"h{i}", vnote.render(NoteData(name=name, body=f"hostile {i}\n".encode())), VNOTE)
        for i, name in enumerate(HOSTILE)
    ]
    phone.sync(*changes)
    assert all(phone.statuses[f"h{i}"] == 201 for i in range(len(HOSTILE)))
    notes = server.notes()
    # nothing dropped, nothing outside the folder, nothing in .git
    assert len(notes) == len(HOSTILE) + 1
    bodies = sorted(notes.values())
    assert bodies == sorted([b"keep\n", *(f"hostile {i}\n".encode() for i in range(len(HOSTILE)))])
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/escape2.txt").exists()
    assert not Path("/etc/evil.txt").exists()
    assert (server.dir / ".git" / "config").read_bytes() == config_before
    assert not (server.dir / ".git" / "hooks" / "post-commit").exists()
    assert (server.dir / ".gitattributes").read_bytes() == gitattributes
    for path in notes:
        assert safe_relpath(path) == path, path
        assert not any(c < " " for c in path)
        assert all(len(part.encode()) <= 255 for part in path.split("/"))
        # Windows device names are kept: this folder is on Linux, which holds them (issue 14)
    assert git(server.dir, "status", "--porcelain") == ""
    assert git(server.dir, "fsck", "--no-progress", "--no-dangling") == ""


# ---------------------------------------------------------------- SIF-N, our client's side


class SifServer:
    """A Funambol-like SIF-N server: one session at a time, its notes sent as given, what it gets kept.

    A transport for our client (``exchange``), built on our own sans-I/O ``ServerSession``
    with a Funambol DevInf that takes SIF-N 1.0 only.
    """

    def __init__(self, outgoing: Sequence[OutChange]) -> None:
        cts = (CTInfo(ct_type=SIFN_10[0], ver_ct=SIFN_10[1]),)
        store = DataStore(source_ref="snote", rx_pref=cts, tx_pref=cts, sync_types=(1, 2))
        self.devinf = DevInf(man="Funambol", mod="DS Server", dev_id="funambol", dev_typ="server",
                             datastores=(store,))
        self.outgoing = list(outgoing)
        self.got: list[InChange] = []
        self.session: ServerSession | None = None
        self.sessions = 0

    def exchange(self, url: str, body: bytes, content_type: str) -> tuple[bytes, str]:
        msg, encoding = decode(body, content_type)
        if self.session is None or self.session.done:
            self.sessions += 1
            config = ServerConfig(devinf=self.devinf, resp_uri=f"{URL}?s={self.sessions}",
                                  store_uris=frozenset({"notes", "snote"}))
            self.session = ServerSession(config)
        session = self.session
        for ev in session.receive(msg):
            if isinstance(ev, SyncRequested):
                session.accept_sync(mode=ev.mode, anchor=Anchor(next=f"s{self.sessions}"))
            elif isinstance(ev, ChangesReceived):
                self.got += ev.changes
                session.provide_results([ItemResult(code=201 if ch.kind is ChangeKind.ADD else 200)
                                         for ch in ev.changes])
                if session.wants_changes:
                    session.provide_changes(self.outgoing)
                    self.outgoing = []
        return encode(session.next_message(), encoding), encoding

    def close(self) -> None:
        """Nothing to release."""


def test_our_client_keeps_a_sif_servers_fields(tmp_path: Path) -> None:
    sif = SifNoteFormat(version="1.0")
    note = sif.render(NoteData(name="Meeting.txt", body=b"Agenda\r\n- budget\r\n", extra=OUTLOOK_FIELDS))
    server = SifServer([OutChange(kind=ChangeKind.ADD, key="g1", data=note, content_type=SIFN_10[0],
                                  version=SIFN_10[1])])
    folder = tmp_path / "client"
    folder.mkdir()
    store = GitStore.open(folder)
    opts = ClientOptions(url=URL, device_id="gitsync-dev", name="funambol")
    sync_client(store, opts, server)
    assert read_notes(folder) == {"Meeting.txt": b"Agenda\n- budget\n"}
    snap = store.state_load("funambol")
    assert snap is not None and b"X-Funambol-Custom" in snap.files["extras"]  # in git, not in the folder

    # the user edits and renames it: the server gets its fields back with the note
    write_notes(folder, {"Meeting.txt": b"Agenda\n- hiring\n"})
    (folder / "Meeting.txt").rename(folder / "Meeting 2026.txt")
    sync_client(store, opts, server)
    (back,) = server.got
    assert back.kind is ChangeKind.MODIFY and back.content_type == "text/x-s4j-sifn"
    parsed = sif.parse(back.data or b"")
    assert parsed.name == "Meeting 2026.txt"
    assert parsed.body == b"Agenda\r\n- hiring\r\n"
    assert parsed.extra == OUTLOOK_FIELDS
