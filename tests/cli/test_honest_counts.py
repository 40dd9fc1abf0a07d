"""Change counts say what changed on each side (issue 18): a slow sync, a refresh or a new peer URL
for the same server that re-sends notes both sides already hold reports no change, and a push-over
reports the edit and the deletions it made, not every note it sent.  Through the console scripts:
``gitsync-notes serve`` and ``gitsync-notes sync``, both summary tables read as a user reads them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import read_notes, write_notes
from tests.peers import GitsyncServer, run_gitsync

_TITLES = ("local add", "local mod", "local del", "local err", "remote add", "remote mod", "remote del",
           "remote err", "col", "mrg")


def _rows(text: str) -> list[dict[str, int]]:
    """The counts row of every summary table in ``text`` (``-`` is 0)."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\|\s+notes \|\s+\S\S\s+\|(.*)\|$", line)
        if m:
            cells = [c.strip() for c in m.group(1).split("|")]
            rows.append({t: (0 if c == "-" else int(c)) for t, c in zip(_TITLES, cells, strict=True)})
    return rows


def _changes(row: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in row.items() if v}


def _sync(client: Path, *args: str) -> dict[str, int]:
    res = run_gitsync("sync", client, *args)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "", res.stderr
    [row] = _rows(res.stdout)
    return _changes(row)


def test_counts_are_what_changed_on_each_side(tmp_path: Path) -> None:
    client = tmp_path / "client"
    notes = {f"n{i}.txt": f"note {i}\n".encode() for i in range(12)}
    write_notes(client, notes)
    with GitsyncServer(tmp_path / "server") as srv:
        port = srv.url.rsplit(":", 1)[1]
        assert _sync(client, "-r", srv.url, "-i", "dev-counts") == {"remote add": 12}
        # nothing changed anywhere: a slow sync, a refresh from the server, a two-way sync after
        # it, and a second URL for the same server (a new peer: slow sync) all say so
        assert _sync(client, "-m", "full") == {}
        assert _sync(client, "-m", "pull-over") == {}
        assert _sync(client) == {}  # the refresh recorded the notes both sides hold
        assert _sync(client, "-r", f"http://localhost:{port}") == {}
        # one edit and two deletions, pushed over: that is what the server sees
        (client / "n1.txt").write_bytes(b"note 1, edited\n")
        (client / "n2.txt").unlink()
        (client / "n3.txt").unlink()
        assert _sync(client, "-m", "push-over", "-r", srv.url) == {"remote mod": 1, "remote del": 2}
        assert _sync(client) == {}
    server_rows = [_changes(row) for row in _rows(srv.output())]
    # the server's own summary of the same six sessions (plus the last one)
    assert server_rows == [{"local add": 12}, {}, {}, {}, {}, {"local mod": 1, "local del": 2}, {}]
    expected = {k: v for k, v in notes.items() if k not in ("n2.txt", "n3.txt")}
    expected["n1.txt"] = b"note 1, edited\n"
    assert read_notes(client) == read_notes(tmp_path / "server") == expected
