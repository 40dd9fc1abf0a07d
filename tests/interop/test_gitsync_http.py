"""gitsync-notes client ↔ gitsync-notes server over real HTTP on 127.0.0.1, as a user runs them.

This is where non-ASCII names and text, nested folders and large notes are checked end to end
over a socket (pysyncml, the reference peer, is ASCII-only and keeps no sub-folders).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import peers
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.interop

NOTES = {
    "caf\u00e9/\u00fcber \u2603.txt": "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e, \u2603\n".encode(),
    "r\u00e9sum\u00e9.txt": "na\u00efve caf\u00e9\n".encode(),
    "deep/er/still/n.txt": b"nested three levels\n",
    "empty.txt": b"",
    "big.txt": (b"0123456789abcdef" * 64 + b"\n") * 100,
    "crlf.txt": b"one\r\ntwo\r\n",
}


def test_two_devices_through_a_real_server(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_notes(a, NOTES)
    with peers.GitsyncServer(tmp_path / "server") as server:
        first = peers.run_gitsync("sync", a, "--remote", server.url, "--id", "dev-a")
        assert "Synchronization Summary" in first.stdout
        peers.run_gitsync("sync", b, "--remote", server.url, "--id", "dev-b", "-q")
        assert read_notes(server.dir) == NOTES
        assert read_notes(b) == NOTES

        write_notes(b, {"r\u00e9sum\u00e9.txt": "na\u00efve caf\u00e9, edited on b \u2713\n".encode(),
                        "neu/\u00e4\u00f6\u00fc.txt": "\u00e4\u00f6\u00fc\n".encode(), "empty.txt": None})
        quiet = peers.run_gitsync("sync", b, "-q")
        assert quiet.stdout == ""
        peers.run_gitsync("sync", a, "-q")
        assert read_notes(a) == read_notes(b) == read_notes(server.dir)
        assert "empty.txt" not in read_notes(a)
        for side in (a, b, server.dir):
            assert git(side, "status", "--porcelain") == ""
        # the sync history reads as such in git log
        subjects = git(a, "log", "--format=%s").splitlines()
        assert any(s.startswith("sync with") and "in," in s for s in subjects)
    assert "Traceback" not in server.output()
