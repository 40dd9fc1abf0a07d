"""Large notes between gitsync-notes client and server over real HTTP (issue 14 §5).

A 12 MB note travels each way byte-exact in a time that only an O(size) transfer allows (the
quadratic one took ~2 min), and MaxObjSize holds per item in both roles: a note over the peer's
limit is not sent, is reported, and everything else still arrives.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import peers
from tests.app.helpers import write_notes

pytestmark = pytest.mark.interop


def _big(size: int) -> bytes:
    line = "große Notiz <&> 0123456789 abcdefghij\n".encode()
    return (line * (size // len(line) + 1))[:size]


def test_a_12_mb_note_travels_both_ways_byte_exact(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    big = _big(12 * 1024 * 1024)
    write_notes(a, {"big.txt": big, "small.txt": b"small\n"})
    b.mkdir()
    with peers.GitsyncServer(tmp_path / "server") as server:
        # generous limits: before issue 14 this took ~2 minutes each way
        peers.run_gitsync("sync", a, "--remote", server.url, "--id", "dev-a", "-q", timeout=30)
        peers.run_gitsync("sync", b, "--remote", server.url, "--id", "dev-b", "-q", timeout=30)
        peers.wait_settled(server.dir)
        for side in (server.dir, b):
            assert peers.read_notes(side) == {"big.txt": big, "small.txt": b"small\n"}
    assert "Traceback" not in server.output()


def test_max_obj_size_refuses_per_item_both_ways(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    big = _big(300_000)
    write_notes(a, {"big.txt": big, "small.txt": b"small\n"})
    b.mkdir()
    with peers.GitsyncServer(tmp_path / "server", extra=["--max-obj-size", "100000"]) as server:
        # client -> server: the server takes at most 100,000 bytes per note
        res = peers.run_gitsync("sync", a, "--remote", server.url, "--id", "dev-a", check=False)
        assert "not sent: big.txt: " in res.stderr and "MaxObjSize (100,000 bytes per note)" in res.stderr
        peers.wait_settled(server.dir)
        assert peers.read_notes(server.dir) == {"small.txt": b"small\n"}
        assert peers.read_notes(a) == {"big.txt": big, "small.txt": b"small\n"}  # nothing lost here
        again = peers.run_gitsync("sync", a, check=False)  # still pending, and said so again
        assert "not sent: big.txt: " in again.stderr
    with peers.GitsyncServer(tmp_path / "server") as server:  # no limit on the server now
        peers.run_gitsync("sync", a, "--remote", server.url, "-q")
        peers.wait_settled(server.dir)
        assert peers.read_notes(server.dir)["big.txt"] == big
        write_notes(server.dir, {"more.txt": b"more\n"})
        # server -> client: this device takes at most 100,000 bytes per note
        res = peers.run_gitsync("sync", b, "--remote", server.url, "--id", "dev-b", "--max-obj-size",
                                "100000", check=False)
        assert peers.read_notes(b) == {"small.txt": b"small\n", "more.txt": b"more\n"}
        assert peers.read_notes(server.dir)["big.txt"] == big
    assert "not sent: big.txt: " in server.output() and "dev-b's MaxObjSize" in server.output()
