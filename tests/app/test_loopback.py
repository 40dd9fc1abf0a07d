"""gitsync client ↔ gitsync server end to end: real drivers, real Git repositories, no socket."""

from __future__ import annotations

from pathlib import Path

from gitsync.model import SyncMode
from tests.app.helpers import Loopback
from tests.helpers import git, read_notes, write_notes

FIRST = {
    "alpha.txt": b"Alpha\nfirst line\n",
    "sub/beta.txt": b"Beta in a sub-folder\n",
    "sub/deeper/gamma.md": b"# Gamma\n\n- item\n",
    "\u00fcml\u00e4ut/caf\u00e9 \u2603.txt": "Gr\u00fc\u00dfe, \u65e5\u672c\u8a9e\n".encode(),
    "empty.txt": b"",
    "big.txt": (b"0123456789abcdef" * 64 + b"\n") * 100,  # ~100 KB
    "crlf.txt": b"windows\r\nline endings\r\n",
}


def test_first_sync_then_changes_both_ways(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    client = lb.client_dir("a")
    write_notes(client, FIRST)
    report = lb.sync("a")
    assert report.mode == "slow"
    assert read_notes(lb.server_dir) == FIRST
    assert read_notes(client) == FIRST
    assert git(client, "status", "--porcelain") == ""
    assert git(lb.server_dir, "status", "--porcelain") == ""
    assert "sync with" in git(lb.server_dir, "log", "-1", "--format=%s")

    # edits on both sides, including a rename on the client
    write_notes(
        client,
        {"alpha.txt": b"Alpha\nfirst line\nclient edit\n", "new-c.txt": b"from client\n", "empty.txt": None},
    )
    (client / "sub" / "beta.txt").rename(client / "sub" / "beta-renamed.txt")
    write_notes(
        lb.server_dir, {"srv.txt": b"from server\n", "sub/deeper/gamma.md": b"# Gamma\n\n- item\n- two\n"}
    )
    report = lb.sync("a")
    assert report.mode == "two-way"
    expected = dict(FIRST)
    del expected["empty.txt"], expected["sub/beta.txt"]
    expected.update(
        {
            "alpha.txt": b"Alpha\nfirst line\nclient edit\n",
            "new-c.txt": b"from client\n",
            "srv.txt": b"from server\n",
            "sub/beta-renamed.txt": b"Beta in a sub-folder\n",
            "sub/deeper/gamma.md": b"# Gamma\n\n- item\n- two\n",
        }
    )
    assert read_notes(client) == expected
    assert read_notes(lb.server_dir) == expected
    assert git(client, "status", "--porcelain") == ""
    # a sync with nothing to do changes nothing and makes no commit
    head = git(client, "rev-parse", "HEAD")
    report = lb.sync("a")
    assert report.local.total() == 0 and report.remote.total() == 0
    assert git(client, "rev-parse", "HEAD") == head


def test_second_device_gets_everything_and_changes_flow_between(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), {"one.txt": b"1\n", "dir/two.txt": b"2\n"})
    lb.sync("a")
    lb.sync("b")
    assert read_notes(lb.client_dir("b")) == {"one.txt": b"1\n", "dir/two.txt": b"2\n"}
    write_notes(lb.client_dir("b"), {"one.txt": b"1 from b\n"})
    lb.sync("b")
    lb.sync("a")
    assert read_notes(lb.client_dir("a"))["one.txt"] == b"1 from b\n"


def test_conflict_clean_merge_reaches_both_sides(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    base = b"title\n\nline 1\nline 2\nline 3\nline 4\nline 5\n"
    write_notes(lb.client_dir("a"), {"n.txt": base})
    lb.sync("a")
    write_notes(lb.client_dir("a"), {"n.txt": base.replace(b"line 1", b"line 1 client")})
    write_notes(lb.server_dir, {"n.txt": base.replace(b"line 5", b"line 5 server")})
    report = lb.sync("a")
    merged = base.replace(b"line 1", b"line 1 client").replace(b"line 5", b"line 5 server")
    assert read_notes(lb.server_dir)["n.txt"] == merged
    assert read_notes(lb.client_dir("a"))["n.txt"] == merged
    assert report.conflicts == 1 and report.merged == 1


def test_conflict_overlapping_keeps_both_texts(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), {"n.txt": b"shopping\neggs\n"})
    lb.sync("a")
    write_notes(lb.client_dir("a"), {"n.txt": b"shopping\neggs (12)\n"})
    write_notes(lb.server_dir, {"n.txt": b"shopping\neggs (6)\n"})
    lb.sync("a")
    for side in (lb.server_dir, lb.client_dir("a")):
        text = read_notes(side)["n.txt"]
        assert b"eggs (12)" in text and b"eggs (6)" in text and b"<<<<<<<" in text


def test_one_way_and_refresh_modes(tmp_path: Path) -> None:
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), {"a.txt": b"a\n"})
    lb.sync("a")
    write_notes(lb.client_dir("a"), {"push.txt": b"pushed\n"})
    write_notes(lb.server_dir, {"pull.txt": b"pulled\n"})
    lb.sync("a", SyncMode.ONE_WAY_FROM_CLIENT)
    assert "push.txt" in read_notes(lb.server_dir)
    assert "pull.txt" not in read_notes(lb.client_dir("a"))
    lb.sync("a", SyncMode.ONE_WAY_FROM_SERVER)
    assert "pull.txt" in read_notes(lb.client_dir("a"))
    # refresh from server: the client ends with exactly the server's notes
    write_notes(lb.client_dir("a"), {"local-only.txt": b"x\n"})
    git(lb.client_dir("a"), "add", "-A")
    git(lb.client_dir("a"), "commit", "-qm", "local only")
    lb.sync("a", SyncMode.REFRESH_FROM_SERVER)
    assert read_notes(lb.client_dir("a")) == read_notes(lb.server_dir)
    # ... and the refresh is a commit that can be undone
    assert "local-only.txt" in git(lb.client_dir("a"), "show", "--stat", "HEAD")


def test_server_history_rewritten_falls_back_to_a_slow_sync(tmp_path: Path) -> None:
    """A `git reset` on the server that drops a sync commit must not turn into Deletes."""
    lb = Loopback(tmp_path)
    write_notes(lb.client_dir("a"), {"keep.txt": b"keep\n"})
    lb.sync("a")
    write_notes(lb.client_dir("a"), {"later.txt": b"came later\n"})
    lb.sync("a")
    assert "later.txt" in read_notes(lb.server_dir)
    git(lb.server_dir, "reset", "-q", "--hard", "HEAD~1")  # the user drops the last sync commit
    assert "later.txt" not in read_notes(lb.server_dir)
    report = lb.sync("a")
    assert report.mode == "slow"
    assert read_notes(lb.client_dir("a")) == {"keep.txt": b"keep\n", "later.txt": b"came later\n"}
    assert read_notes(lb.server_dir) == read_notes(lb.client_dir("a"))
