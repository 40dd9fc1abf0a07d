"""Issue 14 §3: an item we cannot read is kept as its raw payload (nothing lost), counted as an
error, and answered with success so the peer does not send it again every session; both roles."""

from __future__ import annotations

from pathlib import Path

from gitsync.app.client import ClientOptions, sync_client
from gitsync.codec import XML_TYPE, decode
from gitsync.codec.syncml import BAD_BASE64_TYPE
from gitsync.formats import TEXT_10, NoteData, SifNoteFormat
from gitsync.model import ChangeKind
from gitsync.protocol.events import OutChange
from gitsync.protocol.messages import Add, Sync
from gitsync.store.git import GitStore
from gitsync.sync.payload import Wire, parse_or_why
from tests.app.helpers import git, read_notes
from tests.app.test_formats_session import SIFN, SIFN_10, URL, Device, Server, SifServer, add, replace

BAD_SIF = b"<note><SIFVersion>1.1</SIFVersion><Subject>broken.txt</Subject><Body>no end tag \xe9\x00"


def test_our_server_keeps_what_it_cannot_read_and_is_not_sent_it_again(tmp_path: Path) -> None:
    server = Server(tmp_path, {"kept.txt": b"server note\n"})
    outlook = Device(server.app, man="Funambol", mod="Outlook Sync Client", formats=[SIFN])
    outlook.sync(add("ok-1", SifNoteFormat("1.1").render(NoteData(name="good.txt", body=b"good\n")), SIFN),
                 add("bad-1", BAD_SIF, SIFN))
    assert outlook.statuses == {"ok-1": 201, "bad-1": 201}  # accepted: the device will not re-send it
    notes = server.notes()
    assert notes["unreadable-bad-1.xml"] == BAD_SIF  # every byte of the payload
    assert notes["good.txt"] == b"good\n" and notes["kept.txt"] == b"server note\n"
    report = server.reports[-1]
    assert report.local.err == 1 and report.local.add == 1 and report.failed()
    assert report.unreadable[0][0] == "unreadable-bad-1.xml"
    assert git(server.dir, "status", "--porcelain") == ""

    # the next session has nothing to re-fetch; a readable Replace of that item lands on its file
    outlook.sync()
    assert server.reports[-1].local.err == 0
    fixed = SifNoteFormat("1.1").render(NoteData(name="unreadable-bad-1.xml", body=b"fixed on the device\n"))
    outlook.sync(replace("bad-1", fixed, SIFN))
    assert server.notes()["unreadable-bad-1.xml"] == b"fixed on the device\n"
    assert server.reports[-1].local.err == 0

    # an unreadable Replace of a note we have: that note stays, the payload is kept beside it
    outlook.sync(replace("ok-1", BAD_SIF, SIFN))
    notes = server.notes()
    assert notes["good.txt"] == b"good\n" and notes["unreadable-ok-1.xml"] == BAD_SIF
    assert outlook.statuses["ok-1"] == 200 and server.reports[-1].local.err == 1


def test_our_client_keeps_what_it_cannot_read(tmp_path: Path) -> None:
    bad = OutChange(kind=ChangeKind.ADD, key="g1", data=BAD_SIF, content_type=SIFN_10[0], version=SIFN_10[1])
    server = SifServer([bad])
    folder = tmp_path / "client"
    folder.mkdir()
    store = GitStore.open(folder)
    opts = ClientOptions(url=URL, device_id="gitsync-dev", name="funambol")
    report = sync_client(store, opts, server)
    assert read_notes(folder) == {"unreadable-g1.xml": BAD_SIF}
    assert report.local.err == 1 and report.failed()
    assert any("unreadable-g1.xml" in line for line in report.problems())
    assert git(folder, "status", "--porcelain") == ""
    # it was answered 201 and mapped: the next sync neither re-fetches it nor sends it back as new
    report = sync_client(store, opts, server)
    assert not report.failed() and server.got == []
    assert read_notes(folder) == {"unreadable-g1.xml": BAD_SIF}


def test_bad_base64_in_one_item_is_that_items_problem_only() -> None:
    body = (
        b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto>'
        b"<SessionID>1</SessionID><MsgID>2</MsgID><Target><LocURI>http://s/</LocURI></Target>"
        b"<Source><LocURI>dev</LocURI></Source></SyncHdr><SyncBody><Sync><CmdID>1</CmdID>"
        b"<Add><CmdID>2</CmdID><Meta><Type xmlns='syncml:metinf'>text/plain</Type>"
        b"<Format xmlns='syncml:metinf'>b64</Format></Meta>"
        b"<Item><Source><LocURI>good</LocURI></Source><Data>aGVsbG8K</Data></Item>"
        b"<Item><Source><LocURI>bad</LocURI></Source><Data>!!not base64!!</Data></Item>"
        b"</Add></Sync><Final/></SyncBody></SyncML>"
    )
    (sync,) = decode(body, XML_TYPE)[0].commands
    assert isinstance(sync, Sync)
    (add,) = sync.commands
    assert isinstance(add, Add)
    good, bad = add.items
    assert good.data == b"hello\n"
    assert bad.data == b"!!not base64!!" and bad.meta is not None and bad.meta.type == BAD_BASE64_TYPE
    why = parse_or_why(Wire(fmt=TEXT_10), bad.data, BAD_BASE64_TYPE)
    assert isinstance(why, str) and "not base64" in why
