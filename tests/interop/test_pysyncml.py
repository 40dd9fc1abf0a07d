"""Interop with the reference peer, pysyncml 0.2.0 ``sync-notes``, over real HTTP on 127.0.0.1.

Both roles: our client against its server, its client against our server. Notes are compared
byte for byte after the peer's own rules: it keeps no sub-folders (paths arrive flattened as
``a%2Fb.txt``), and it is ASCII-only in both roles (Python 2 raises UnicodeEncodeError on a
non-ASCII name or text even under a UTF-8 locale), so non-ASCII notes are tested between our
own client and server (tests/interop/test_gitsync_http.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import peers
from tests.helpers import git, read_notes, write_notes

pytestmark = pytest.mark.interop


def _fifty_notes() -> dict[str, bytes]:
    notes: dict[str, bytes] = {}
    for i in range(44):
        folder = ("", "work/", "work/deep/", "home/")[i % 4]
        notes[f"{folder}note-{i:02d}.txt"] = f"Note {i}\nline two of {i}\n".encode()
    notes["with space/and (parens).txt"] = b"odd but legal names\n"
    notes["empty.txt"] = b""
    notes["big.txt"] = (b"0123456789abcdef" * 64 + b"\n") * 100  # ~100 KB
    notes["markup.txt"] = b'<b>bold</b> & "quotes" ]]> done\n'
    notes["sub/also.txt"] = b"sub-folder note\n"
    return notes


def _server_view(notes: dict[str, bytes]) -> dict[str, bytes]:
    return peers.unflatten(notes)


def test_gitsync_client_against_pysyncml_server(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    client = tmp_path / "client"
    client.mkdir()
    notes = _fifty_notes()
    write_notes(client, notes)
    with peers.PysyncmlServer(tmp_path / "server") as server:
        res = peers.run_gitsync("sync", client, "--remote", server.url, "--id", "gitsync-dev-a")
        assert "Synchronization Summary" in res.stdout
        assert _server_view(read_notes(server.dir)) == notes
        assert git(client, "status", "--porcelain") == ""
        # a second gitsync device gets everything back, sub-folders included. (It joins before
        # any delete on the server: pysyncml's server then answers a new device's slow sync with
        # HTTP 500 — its own client too — because it keeps stale pending Deletes.)
        other = tmp_path / "other"
        other.mkdir()
        peers.run_gitsync("sync", other, "--remote", server.url, "--id", "gitsync-dev-b")
        assert read_notes(other) == notes

        # changes on both sides, then a two-way sync
        write_notes(
            client,
            {
                "note-00.txt": b"Note 0 edited by gitsync\n",
                "work/new.txt": b"new from us\n",
                "note-04.txt": None,
            },
        )
        (client / "home" / "note-03.txt").rename(client / "home" / "renamed-03.txt")
        write_notes(
            server.dir,
            {"from-server.txt": b"made on the server\n", "note-08.txt": b"Note 8 edited on the server\n"},
        )
        (server.dir / "note-12.txt").unlink()
        (server.dir / "note-16.txt").rename(server.dir / "renamed-on-server.txt")  # a rename there
        res = peers.run_gitsync("sync", client)  # URL and device id remembered in git config
        expected = dict(notes)
        del expected["note-04.txt"], expected["note-12.txt"]
        expected["home/renamed-03.txt"] = expected.pop("home/note-03.txt")
        expected["renamed-on-server.txt"] = expected.pop("note-16.txt")
        expected.update(
            {
                "note-00.txt": b"Note 0 edited by gitsync\n",
                "work/new.txt": b"new from us\n",
                "from-server.txt": b"made on the server\n",
                "note-08.txt": b"Note 8 edited on the server\n",
            }
        )
        assert read_notes(client) == expected
        assert _server_view(read_notes(server.dir)) == expected
        assert "sync with" in git(client, "log", "-1", "--format=%s")

        # the second device follows the changes with a two-way sync
        peers.run_gitsync("sync", other)
        assert read_notes(other) == expected


def test_pysyncml_client_against_gitsync_server(tmp_path: Path) -> None:
    peers.pysyncml_launcher()
    srv = tmp_path / "server"
    cli = tmp_path / "client"
    cli.mkdir()
    srv.mkdir()
    # its client is ASCII-only; our side has a sub-folder note the client has no folder for
    ours = {"server-a.txt": b"Server A\n", "srvsub/deep.txt": b"deep on server\n", "empty.txt": b""}
    theirs = {f"p{i:02d}.txt": f"pysyncml note {i}\nbody\n".encode() for i in range(20)}
    theirs["nest/inner.txt"] = b"nested on the client\n"
    theirs["big.txt"] = (b"x" * 99 + b"\n") * 1000
    write_notes(srv, ours)
    write_notes(cli, theirs)
    with peers.GitsyncServer(srv) as server:
        peers.run_pysyncml_client(cli, url=server.url, devid="pysyncml-dev-1", check=True)
        union = {**ours, **theirs}
        assert read_notes(srv) == union
        assert peers.unflatten(read_notes(cli)) == union
        assert git(srv, "status", "--porcelain") == ""

        # edits, a delete and a rename on its side; edits and a delete on ours
        write_notes(
            cli,
            {"p00.txt": b"pysyncml note 0\nedited by pysyncml\n", "p-new.txt": b"new p\n", "p01.txt": None},
        )
        (cli / "p02.txt").rename(cli / "p02-renamed.txt")
        write_notes(
            srv,
            {
                "server-a.txt": b"Server A\nedited on gitsync\n",
                "server-b.txt": b"Server B\n",
                "p03.txt": None,
            },
        )
        (srv / "p04.txt").rename(srv / "p04-renamed-on-server.txt")  # a rename on our side too
        git(srv, "add", "-A")
        git(srv, "commit", "-qm", "edits on the server")
        peers.run_pysyncml_client(cli, check=True)
        union.update(
            {
                "p00.txt": b"pysyncml note 0\nedited by pysyncml\n",
                "p-new.txt": b"new p\n",
                "server-a.txt": b"Server A\nedited on gitsync\n",
                "server-b.txt": b"Server B\n",
            }
        )
        del union["p01.txt"], union["p03.txt"]
        union["p02-renamed.txt"] = union.pop("p02.txt")
        union["p04-renamed-on-server.txt"] = union.pop("p04.txt")
        assert read_notes(srv) == union
        assert peers.unflatten(read_notes(cli)) == union
        # its client re-sends old Deletes every session: we answer 211 and carry on
        peers.run_pysyncml_client(cli, check=True)
        assert read_notes(srv) == union
    assert "Traceback" not in server.output()
