"""Conflict markers as people read them, and said wherever they arrive (issue 18), through the
console scripts: ``gitsync-notes serve`` and two ``gitsync-notes sync`` devices.

The merge leaves the same text on the server and on the device, so its sides are named as both
know them: ``server HOST:PORT`` (the address the device reached) and ``device NAME`` (its --name),
never a state ref like ``device-gitsync-notes-2881...``.  A device that receives a note with
markers from the server (a merge of another device's edit) says so on stderr and in the summary
and exits 3, once; the server's log says so when a device sends it one."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.helpers import cli
from tests.helpers import write_notes
from tests.peers import GitsyncServer

HOW = "script"


def test_markers_name_both_sides_and_are_said_where_they_arrive(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_notes(a, {"list.txt": b"eggs\nmilk\n"})
    with GitsyncServer(tmp_path / "server") as srv:
        host = srv.url.split("/")[2]
        assert cli(HOW, "sync", a, "-r", srv.url, "-i", "dev-a", "-n", "laptop").code == 0
        assert cli(HOW, "sync", b, "-r", srv.url, "-i", "dev-b", "-n", "phone").code == 0
        (a / "list.txt").write_bytes(b"eggs (12)\nmilk\n")
        (b / "list.txt").write_bytes(b"eggs (6)\nmilk\n")
        assert cli(HOW, "sync", a).code == 0
        res = cli(HOW, "sync", b)  # the server merges phone's edit over laptop's: markers
        assert res.code == 3, (res.out, res.err)
        marked = (b / "list.txt").read_bytes()
        assert marked == (
            f"<<<<<<< server {host}\neggs (12)\n||||||| last sync\neggs\n=======\neggs (6)\n"
            ">>>>>>> device phone\nmilk\n"
        ).encode(), marked
        assert (tmp_path / "server" / "list.txt").read_bytes() == marked
        # laptop receives the note with markers: told on stderr and in the summary, exit 3
        res = cli(HOW, "sync", a)
        assert res.code == 3, (res.out, res.err)
        assert res.lines == [
            f"gitsync-notes: warning: conflict markers arrived from 127.0.0.1-{host.split(':')[1]} "
            "in: list.txt (edit to resolve them, then sync)"
        ], res.err
        assert "1 local change. 1 arrived with conflict markers." in res.out, res.out
        assert (a / "list.txt").read_bytes() == marked
        status = cli(HOW, "status", a).out
        assert re.search(r"\(cli\) ok: .*conflict markers arrived in: list\.txt", status), status
        res = cli(HOW, "sync", a)  # said once: nothing new arrived
        assert (res.code, res.err) == (0, ""), res.err
        # a device that sends a note with markers: the server's log says so
        (a / "list.txt").write_bytes(b"eggs (12)\nmilk\n")  # laptop resolves this one...
        write_notes(a, {"pasted.txt": b"<<<<<<< mine\nx\n=======\ny\n>>>>>>> theirs\n"})  # ...not this
        res = cli(HOW, "sync", a)
        assert res.code == 0, res.err
    assert re.search(r"WARNING: pasted\.txt arrived from dev-a with conflict markers in it", srv.output())
    assert "list.txt arrived" not in srv.output()  # a resolved note is no news
