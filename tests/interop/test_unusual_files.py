"""Issue 14 §2, end to end over real HTTP: binary and non-UTF-8 notes between gitsync peers arrive
byte for byte (client A → our server → client B, and back, and through a pull-over); toward a peer
that carries text only (pysyncml) they are not sent, are reported, and stay as they are."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from tests import peers
from tests.app.helpers import git, write_notes

pytestmark = pytest.mark.interop

UNUSUAL = {
    "photo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 80,  # ~20 KB
    "latin1.txt": "café crème brûlée\n".encode("latin-1"),
    "cp1252.txt": "“quoted” – 20 €\r\n".encode("cp1252"),
    "utf16.txt": "Grüße aus Köln\r\n".encode("utf-16"),
    "controls.txt": b"nul \x00 bell \x07 esc \x1b[0m form \x0c feed\n",
    "mixed.txt": b"crlf\r\nlf\nlone cr\rend\r\n",
}
TEXT = {"plain.txt": b"just text\n", "sub/nested.txt": b"nested\r\n"}


def test_unusual_files_survive_between_gitsync_peers(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_notes(a, {**UNUSUAL, **TEXT})
    with peers.GitsyncServer(tmp_path / "server") as server:
        first = peers.run_gitsync("sync", a, "--remote", server.url, "--id", "dev-a")
        assert "not sent" not in first.stderr
        peers.run_gitsync("sync", b, "--remote", server.url, "--id", "dev-b", "-q")
        assert peers.read_notes(server.dir) == peers.read_notes(b) == {**UNUSUAL, **TEXT}

        # edits of unusual files on B go back to A exactly, mixed line endings included
        edited = {
            "photo.png": UNUSUAL["photo.png"][::-1],
            "mixed.txt": b"now\nmore\r\nmixed\r",
            "latin1.txt": "café noir\n".encode("latin-1"),
            "new.bin": bytes(range(255, -1, -1)),
        }
        write_notes(b, edited)
        peers.run_gitsync("sync", b, "-q")
        peers.run_gitsync("sync", a, "-q")
        expected = {**UNUSUAL, **TEXT, **edited}
        assert peers.read_notes(a) == peers.read_notes(b) == peers.read_notes(server.dir) == expected

        # a refresh from the server changes nothing on the first device
        over = peers.run_gitsync("sync", a, "-m", "pull-over")
        assert peers.read_notes(a) == expected, over.stderr
        assert git(a, "status", "--porcelain") == ""
        # and nothing is sent again: the second sync of each side is empty
        again = peers.run_gitsync("sync", b)
        assert "No changes." in again.stdout
    assert "Traceback" not in server.output()


def test_a_text_only_peer_is_not_sent_what_it_cannot_carry(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    client.mkdir()
    unusual = {k: v for k, v in UNUSUAL.items() if k != "mixed.txt"}  # mixed line endings are text
    unusual.update({"ascii-name-utf8-text.txt": "non-ASCII ☃\n".encode(), "bom.txt": codecs.BOM_UTF16_LE})
    text = {"plain.txt": b"just text\n", "other.txt": b"more text\r\n"}
    notes = {**unusual, **text}
    write_notes(client, notes)
    with peers.PysyncmlServer(tmp_path / "server") as server:
        res = peers.run_gitsync("sync", client, "--remote", server.url, "--id", "gitsync-dev-a", check=False)
        assert res.returncode == 0, res.stderr  # a permanent skip is reported, not a failure
        skipped = [line for line in res.stderr.splitlines() if "not sent to" in line]
        assert sorted(line.split(": ")[2] for line in skipped) == sorted(unusual), res.stderr
        assert "not sent (see below)" in res.stdout
        assert peers.read_notes(server.dir) == text
        status = peers.run_gitsync("status", client).stdout
        assert "not sent" in status and "photo.png" in status

        # again next sync (once per sync), and a pull-over deletes none of them here
        res = peers.run_gitsync("sync", client, "-m", "pull-over", check=False)
        assert res.returncode == 0, res.stderr
        assert sum("not sent to" in line for line in res.stderr.splitlines()) == len(unusual)
        assert peers.read_notes(client) == notes
        assert peers.read_notes(server.dir) == text
        res = peers.run_gitsync("sync", client, check=False)
        assert res.returncode == 0 and peers.read_notes(client) == notes
        assert git(client, "status", "--porcelain") == ""
