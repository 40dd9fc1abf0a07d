"""Note names between gitsync-notes devices over real HTTP (issue 14 §4).

Names this file system can hold arrive as they are, each way; a file/folder clash (``a`` on one
device, ``a/b`` on another) is resolved per note (``a (2)``), said once, and the session goes on;
the device that made a note never sees it renamed, also after edits travel both ways.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitsync.formats import TEXT_10, NoteData
from gitsync.sync.payload import Wire
from tests import peers
from tests.app.helpers import write_notes

pytestmark = pytest.mark.interop

PECULIAR = {
    "Shopping list.txt": b"milk\n",
    "nul.txt": b"not a device here\n",
    "what?:*<>|.txt": b"Windows would refuse this name\n",
    "CON": b"nor this one\n",
    " spaced  out .txt": b"spaces kept\n",
    "trailing dot.": b"dots kept\n",
    "MiXeD Case.TXT": b"case kept\n",
    "back\\slash.txt": b"a backslash\n",
    "caf\u00e9/\u65e5\u672c\u8a9e \u00fcn\u00efc\u00f6de.txt": "Unicode \u2603\n".encode(),
    "\u00e9" * 120 + ".txt": b"244 bytes of name\n",
}


def _sync(folder: Path, *args: str) -> str:
    res = peers.run_gitsync("sync", folder, *args)
    return res.stderr


def test_peculiar_names_arrive_as_they_are_both_ways(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_notes(a, PECULIAR)
    b.mkdir()
    with peers.GitsyncServer(tmp_path / "server") as server:
        quiet_a = _sync(a, "--remote", server.url, "--id", "dev-a", "-q")
        _sync(b, "--remote", server.url, "--id", "dev-b", "-q")
        peers.wait_settled(server.dir)
        assert peers.read_notes(server.dir) == PECULIAR
        assert peers.read_notes(b) == PECULIAR
        assert "stored as" not in quiet_a
        # edits travel back under the same names: nothing is renamed anywhere
        edited = {name: body + b"edited on b\n" for name, body in PECULIAR.items()}
        write_notes(b, edited)
        _sync(b, "-q")
        _sync(a, "-q")
        peers.wait_settled(server.dir)
        for side in (a, b, server.dir):
            assert peers.read_notes(side) == edited
    assert "Traceback" not in server.output()


@pytest.mark.parametrize("first", ["file", "folder"])
def test_a_file_folder_clash_is_resolved_per_note_and_the_session_goes_on(tmp_path: Path, first: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"  # a has the note "a", b the folder "a/"
    write_notes(a, {"a": b"file a\n", "only-a.txt": b"from a\n"})
    write_notes(b, {"a/b": b"file a/b\n", "only-b.txt": b"from b\n"})
    order = [(a, "dev-a"), (b, "dev-b")] if first == "file" else [(b, "dev-b"), (a, "dev-a")]
    with peers.GitsyncServer(tmp_path / "server") as server:
        said = ""
        for folder, dev in order:
            said += _sync(folder, "--remote", server.url, "--id", dev, "-q")
        _sync(order[0][0], "-q")  # the first device gets the second's notes
        peers.wait_settled(server.dir)
        # every note arrived everywhere; each device keeps its own names
        sa, sb, ss = peers.read_notes(a), peers.read_notes(b), peers.read_notes(server.dir)
        assert sa["a"] == b"file a\n" and sa["a (2)/b"] == b"file a/b\n"
        assert sb["a/b"] == b"file a/b\n" and sb["a (2)"] == b"file a\n"
        assert {sa["only-b.txt"], sb["only-a.txt"]} == {b"from b\n", b"from a\n"}
        assert len(sa) == len(sb) == len(ss) == 4
        assert sorted(ss.values()) == sorted(sa.values())
        assert "stored as 'a (2)" in said + server.output()  # said, where it happened
        # edits go both ways; the device that made a note never sees it renamed
        write_notes(a, {"a": b"file a, edited on a\n", "a (2)/b": b"a/b, edited on a\n"})
        _sync(a, "-q")
        _sync(b, "-q")
        peers.wait_settled(server.dir)
        sb = peers.read_notes(b)
        assert sb["a/b"] == b"a/b, edited on a\n" and sb["a (2)"] == b"file a, edited on a\n"
        write_notes(b, {"a/b": b"a/b, edited on b\n", "a (2)": b"file a, edited on b\n"})
        _sync(b, "-q")
        _sync(a, "-q")
        peers.wait_settled(server.dir)
        sa = peers.read_notes(a)
        assert sa["a"] == b"file a, edited on b\n" and sa["a (2)/b"] == b"a/b, edited on b\n"
        assert len(peers.read_notes(a)) == len(peers.read_notes(b)) == 4
    assert "Traceback" not in server.output() and '" 500 ' not in server.output()


def test_a_text_plain_title_keeps_its_spaces() -> None:
    """A text/plain peer carries no name: the first line is the title, kept as it is written."""
    wire = Wire(fmt=TEXT_10)
    note = wire.parse(b"Shopping list\nmilk\n", "text/plain")
    assert wire.path_for(note, set()) == "Shopping list.txt"
    taken = {"Shopping list.txt"}
    assert wire.path_for(NoteData(name=None, body=b"Shopping list\neggs\n"), taken) == "Shopping list (2).txt"


def test_a_name_rewritten_here_is_never_renamed_on_the_device_that_made_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    made = "tab\there.txt"  # a's file system holds it; ours rewrites control characters
    write_notes(a, {made: b"made on a\n"})
    b.mkdir()
    with peers.GitsyncServer(tmp_path / "server") as server:
        _sync(a, "--remote", server.url, "--id", "dev-a", "-q")
        peers.wait_settled(server.dir)
        assert peers.read_notes(server.dir) == {"tab_here.txt": b"made on a\n"}
        assert "stored as 'tab_here.txt'" in server.output()
        _sync(b, "--remote", server.url, "--id", "dev-b", "-q")
        write_notes(b, {"tab_here.txt": b"made on a, edited on b\n"})
        _sync(b, "-q")
        _sync(a, "-q")  # the edit comes back under a's own name
        assert peers.read_notes(a) == {made: b"made on a, edited on b\n"}
        write_notes(a, {made: b"edited on a\n"})
        _sync(a, "-q")  # and a's edit does not rename the note anywhere
        _sync(b, "-q")
        peers.wait_settled(server.dir)
        assert peers.read_notes(a) == {made: b"edited on a\n"}
        assert peers.read_notes(b) == peers.read_notes(server.dir) == {"tab_here.txt": b"edited on a\n"}
        lines = server.output().splitlines()
        said = [ln for ln in lines if ln.startswith("gitsync-notes:") and "stored as" in ln]
        assert len(said) == 1, said  # said once (in the summary of the session it happened in)
